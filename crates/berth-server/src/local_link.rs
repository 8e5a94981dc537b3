//! The agent's link to a control plane in the same process (`berth dev`): calls go
//! straight to the store.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use berth_core::ecs::effective_spec;
use berth_core::model::Task;
use berth_core::nodes::{instances_of_node, register_node};
use berth_core::service_discovery::discovered_services;
use berth_core::{apply_task_reports, State, Timestamp};
use berth_proto::{
    AssignedTask, Assignment, Assignments, ControlPlaneLink, LinkError, NodeRegistration,
    ServiceEndpoints, TaskReport,
};

use crate::load_balancing::content_version;

use crate::{now, ControlPlane};

/// Stopped tasks stay in a node's assignments this long, so its agent keeps their
/// containers (for `berth logs`) instead of taking them for orphans.
const STOPPED_ASSIGNMENT_MS: u64 = 60 * 60 * 1000;

pub struct LocalLink {
    control_plane: Arc<ControlPlane>,
}

impl LocalLink {
    pub fn new(control_plane: Arc<ControlPlane>) -> Self {
        LocalLink { control_plane }
    }
}

fn unavailable(error: impl std::fmt::Display) -> LinkError {
    LinkError::Unavailable(error.to_string())
}

/// A long-poll over a view of the state named by its content: the view as soon as its
/// version differs from `have` (at once if it does), else when `timeout` passes. Every
/// write wakes it to look again; only a changed view answers. `Err` carries the last
/// view when the store stopped.
pub(crate) async fn until_changed<T>(
    store: &berth_store::Store,
    have: Option<&str>,
    timeout: Duration,
    view: impl Fn(&State) -> T,
    version: impl Fn(&T) -> &String,
) -> Result<T, T> {
    let mut changes = store.watch();
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        changes.borrow_and_update();
        let current = store.read(&view);
        if have != Some(version(&current).as_str()) || tokio::time::Instant::now() >= deadline {
            return Ok(current);
        }
        tokio::select! {
            changed = changes.changed() => if changed.is_err() { return Err(current) },
            _ = tokio::time::sleep_until(deadline) => {}
        }
    }
}

/// Service discovery's endpoints as `node_id` serves them, named by their content.
pub fn service_endpoints(state: &State, node_id: &str) -> ServiceEndpoints {
    let services = discovered_services(state, node_id);
    ServiceEndpoints {
        version: content_version(&services),
        services,
    }
}

/// What an agent is told of one of its tasks, at `now`.
pub fn assigned_task(task: &Task, now: Timestamp) -> AssignedTask {
    AssignedTask {
        id: task.id.clone(),
        cluster: task.cluster.clone(),
        family: task.family.clone(),
        revision: task.revision,
        service: task.service.clone(),
        desired_status: task.desired_status,
        last_status: task.last_status,
        drain_ms: task
            .stop_after
            .map(|at| at.0.saturating_sub(now.0))
            .filter(|ms| *ms > 0),
        stopped_ms_ago: task.stopped_at.map(|at| now.millis_since(at)),
    }
}

/// The tasks a node runs, each with its effective spec. A definition is parsed once per
/// record (the record keeps its spec), so a poll only applies each task's overrides.
/// A task whose definition (stored before one of today's rules) yields no spec is left
/// out: the control plane places no new task of it, and nothing is started half-read.
pub fn assignments_of(state: &State, node_id: &str, now: Timestamp) -> Vec<Assignment> {
    let instances = instances_of_node(state, node_id);
    state
        .tasks
        .values()
        .filter(|t| {
            t.container_instance_id
                .as_ref()
                .is_some_and(|i| instances.contains(i))
        })
        .filter(|t| {
            t.stopped_at
                .is_none_or(|at| now.millis_since(at) < STOPPED_ASSIGNMENT_MS)
        })
        .filter_map(|t| {
            let definition = state.definition(&t.family, t.revision)?;
            match effective_spec(definition, t) {
                Ok(spec) => Some(Assignment {
                    task: assigned_task(t, now),
                    spec,
                }),
                Err(error) => {
                    tracing::error!(task = %t.id, %error, "a task's definition yields no spec; it is not assigned");
                    None
                }
            }
        })
        .collect()
}

#[async_trait]
impl ControlPlaneLink for LocalLink {
    async fn register(&self, registration: NodeRegistration) -> Result<(), LinkError> {
        self.control_plane
            .transact(&self.control_plane.default_region, move |state, ctx| {
                Ok::<_, std::convert::Infallible>((register_node(state, &registration, ctx), ()))
            })
            .await
            .map_err(unavailable)?
            .unwrap_or_else(|never| match never {});
        Ok(())
    }

    async fn assignments(
        &self,
        node_id: &str,
        since: u64,
        timeout: Duration,
    ) -> Result<Assignments, LinkError> {
        let mut changes = self.control_plane.store.watch();
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            changes.borrow_and_update();
            // Every write wakes this loop, but only one that changed this node's feed
            // answers: the agent hears of its own work only.
            {
                let view = self.control_plane.store.node_view(node_id);
                if view.revision != since || tokio::time::Instant::now() >= deadline {
                    return Ok(Assignments {
                        revision: view.revision,
                        assignments: assignments_of(&view.state, node_id, now()),
                    });
                }
            }
            // The view is dropped before waiting: a fleet's long-polls, each holding the
            // snapshot it last looked at, would keep as many old states alive, a whole
            // state each (1,000 agents over 10,000 tasks: several hundred MB).
            tokio::select! {
                changed = changes.changed() => {
                    if changed.is_err() {
                        return Err(LinkError::Unavailable("the control plane stopped".to_string()));
                    }
                }
                _ = tokio::time::sleep_until(deadline) => {}
            }
        }
    }

    async fn report(&self, reports: Vec<TaskReport>) -> Result<(), LinkError> {
        self.control_plane
            .store
            .transact_async(move |state| {
                Ok::<_, std::convert::Infallible>((apply_task_reports(state, &reports, now()), ()))
            })
            .await
            .map_err(unavailable)?
            .unwrap_or_else(|never| match never {});
        Ok(())
    }

    async fn service_endpoints(
        &self,
        node_id: &str,
        have: Option<&str>,
        timeout: Duration,
    ) -> Result<ServiceEndpoints, LinkError> {
        until_changed(
            &self.control_plane.store,
            have,
            timeout,
            |state| service_endpoints(state, node_id),
            |endpoints| &endpoints.version,
        )
        .await
        .map_err(|_| LinkError::Unavailable("the control plane stopped".to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A link to an in-memory control plane with the cluster `default` and `node`
    /// registered in it.
    async fn link_with_node(node: &str) -> Arc<LocalLink> {
        let link = Arc::new(LocalLink::new(Arc::new(ControlPlane::in_memory())));
        call(
            &link,
            "CreateCluster",
            serde_json::json!({"clusterName": "default"}),
        )
        .await;
        link.register(registration(node)).await.unwrap();
        link
    }

    fn registration(node: &str) -> NodeRegistration {
        NodeRegistration {
            node_id: node.to_string(),
            hostname: node.to_string(),
            cpu: 2048,
            memory: 4096,
            agent_version: "1.0.0".to_string(),
            docker_version: "27.0.0".to_string(),
            cluster: "default".to_string(),
            joins_every_cluster: false,
            address: None,
            attributes: Default::default(),
            capacity_provider: None,
        }
    }

    async fn call(link: &LocalLink, action: &str, body: serde_json::Value) -> serde_json::Value {
        let answer = crate::dispatch(
            &link.control_plane,
            &format!("AmazonEC2ContainerServiceV20141113.{action}"),
            "us-east-1",
            body.to_string().as_bytes(),
        )
        .await
        .unwrap_or_else(|error| panic!("{action}: {}", error.message));
        serde_json::from_slice(&answer).unwrap()
    }

    /// A waiting long-poll holds no snapshot of the state: a thousand agents' polls
    /// would otherwise keep a thousand old states alive while writes go on.
    #[tokio::test]
    async fn a_waiting_long_poll_holds_no_state() {
        let link = link_with_node("n1").await;
        let since = link
            .assignments("n1", 0, Duration::ZERO)
            .await
            .unwrap()
            .revision;
        let poll = tokio::spawn({
            let link = link.clone();
            async move { link.assignments("n1", since, Duration::from_secs(60)).await }
        });
        // A write that is not n1's wakes the poll, which looks and waits again.
        call(
            &link,
            "CreateCluster",
            serde_json::json!({"clusterName": "other"}),
        )
        .await;
        for _ in 0..100 {
            tokio::task::yield_now().await;
        }
        assert!(
            !poll.is_finished(),
            "the poll answers only for n1's changes"
        );
        let view = link.control_plane.store.node_view("n1");
        assert_eq!(
            Arc::strong_count(&view.state),
            2,
            "only the store and this test hold the state"
        );
        poll.abort();
    }

    /// A node waiting on the endpoints it has is answered when a service it must serve
    /// by name appears, not at the end of its wait.
    #[tokio::test]
    async fn the_endpoints_long_poll_answers_when_a_discoverable_service_appears() {
        let link = link_with_node("n1").await;
        let empty = link
            .service_endpoints("n1", None, Duration::ZERO)
            .await
            .unwrap();
        assert_eq!(empty.services, []);
        let waiting = {
            let link = link.clone();
            let have = empty.version.clone();
            tokio::spawn(async move {
                link.service_endpoints("n1", Some(&have), Duration::from_secs(60))
                    .await
            })
        };
        call(
            &link,
            "RegisterTaskDefinition",
            serde_json::json!({
                "family": "api",
                "containerDefinitions": [{"name": "app", "image": "app:1", "memory": 16,
                    "portMappings": [{"containerPort": 8080}]}]
            }),
        )
        .await;
        call(
            &link,
            "CreateService",
            serde_json::json!({"serviceName": "api", "taskDefinition": "api", "desiredCount": 0}),
        )
        .await;
        let answer = waiting.await.unwrap().unwrap();
        assert_ne!(answer.version, empty.version);
        let [service] = answer.services.as_slice() else {
            panic!("one service: {:?}", answer.services)
        };
        assert_eq!(
            (service.cluster.as_str(), service.name.as_str()),
            ("default", "api")
        );
        assert_eq!(service.ports[0].container_port, 8080);
        assert_eq!(service.ports[0].endpoints, []);
    }

    /// The agent is sent what the task runs: its definition's typed spec with the
    /// task's RunTask overrides applied, and no request string to read again.
    #[tokio::test]
    async fn an_assignment_carries_the_tasks_effective_spec() {
        use berth_core::spec::{NetworkMode, Protocol};

        let link = LocalLink::new(Arc::new(ControlPlane::in_memory()));
        call(
            &link,
            "CreateCluster",
            serde_json::json!({"clusterName": "default"}),
        )
        .await;
        link.register(registration("n1")).await.unwrap();
        call(
            &link,
            "RegisterTaskDefinition",
            serde_json::json!({
                "family": "web", "networkMode": "host", "memory": "256",
                "containerDefinitions": [{
                    "name": "app", "image": "app:1", "command": ["serve"],
                    "portMappings": [{"containerPort": 8080, "protocol": "udp"}],
                    "environment": [{"name": "MODE", "value": "prod"}]
                }]
            }),
        )
        .await;
        call(
            &link,
            "RunTask",
            serde_json::json!({
                "taskDefinition": "web:1",
                "overrides": {"memory": "512", "containerOverrides": [{
                    "name": "app", "command": ["migrate"],
                    "environment": [{"name": "MODE", "value": "test"}]
                }]}
            }),
        )
        .await;
        let assignments = link.assignments("n1", 0, Duration::ZERO).await.unwrap();
        let [assignment] = assignments.assignments.as_slice() else {
            panic!("one task: {:?}", assignments.assignments)
        };
        let spec = &assignment.spec;
        assert_eq!(spec.network_mode, NetworkMode::Host);
        assert_eq!(spec.memory, Some(512), "the task's memory override");
        let app = &spec.container_definitions[0];
        assert_eq!(app.command, Some(vec!["migrate".to_string()]));
        assert_eq!(
            (
                app.environment[0].name.as_str(),
                app.environment[0].value.as_str()
            ),
            ("MODE", "test")
        );
        assert_eq!(app.port_mappings[0].container_port, 8080);
        assert_eq!(app.port_mappings[0].protocol, Protocol::Udp);
    }

    #[tokio::test]
    async fn an_agent_wakes_only_for_changes_to_its_own_node() {
        let link = LocalLink::new(Arc::new(ControlPlane::in_memory()));
        link.register(registration("n1")).await.unwrap();
        link.register(registration("n2")).await.unwrap();
        let first = link.assignments("n1", 0, Duration::ZERO).await.unwrap();
        assert!(first.revision > 0);

        // n2 re-registers (its resources change): a write, but none of n1's business.
        let poll = link.assignments("n1", first.revision, Duration::from_millis(300));
        let mut other = registration("n2");
        other.memory = 8192;
        let (polled, ()) = tokio::join!(poll, async {
            link.register(other).await.unwrap();
        });
        let polled = polled.unwrap();
        assert!(*link.control_plane.store.watch().borrow() > first.revision);
        assert_eq!(
            polled.revision, first.revision,
            "n1's long-poll ran to its timeout through n2's write"
        );

        // A change to n1 itself answers at once, with a new revision.
        let started = tokio::time::Instant::now();
        let poll = link.assignments("n1", first.revision, Duration::from_secs(20));
        let mut mine = registration("n1");
        mine.memory = 8192;
        let (polled, ()) = tokio::join!(poll, async {
            tokio::time::sleep(Duration::from_millis(50)).await;
            link.register(mine).await.unwrap();
        });
        assert!(polled.unwrap().revision > first.revision);
        assert!(started.elapsed() < Duration::from_secs(10));
    }
}
