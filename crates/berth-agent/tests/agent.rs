//! The agent against the runtime's in-memory fake and a fake control plane: no Docker,
//! paused clock.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use berth_agent::{Agent, AgentConfig, AgentHandle, Assignment, ControlPlaneLink, LinkError};
use berth_api::RegisterTaskDefinitionRequest;
use berth_core::model::{
    ContainerStatus as EcsContainerStatus, DesiredStatus, HealthStatus, StopCode, TaskStatus,
};
use berth_core::nodes::NodeRegistration;
use berth_core::TaskReport;
use berth_proto::{AssignedTask as Task, Assignments};
use berth_runtime::{
    ContainerRuntime, ContainerSpec, ContainerState, FakeRuntime, Health, NetworkSpec,
    RecordedCall, RuntimeError, Stream,
};
use serde_json::json;
use tokio::sync::{oneshot, Notify};
use tokio::task::JoinHandle;

const NODE: &str = "node-1";

#[derive(Default)]
struct LinkState {
    revision: u64,
    assignments: Vec<Assignment>,
    reports: Vec<TaskReport>,
    registrations: Vec<NodeRegistration>,
    failing_reports: usize,
    /// Reports about this task are refused (as a control plane refuses a report about
    /// a task not on the node), and so is any batch that holds one.
    refused_task: Option<String>,
}

/// The control plane, reduced to what the agent sees of it.
#[derive(Default)]
struct FakeLink {
    state: Mutex<LinkState>,
    changed: Notify,
}

impl FakeLink {
    fn change(&self, f: impl FnOnce(&mut Vec<Assignment>)) {
        let mut state = self.state.lock().unwrap();
        f(&mut state.assignments);
        state.revision += 1;
        drop(state);
        self.changed.notify_waiters();
    }
    fn assign(&self, assignment: Assignment) {
        self.change(|list| list.push(assignment));
    }
    fn stop_task(&self, task_id: &str) {
        self.change(|list| {
            for a in list.iter_mut().filter(|a| a.task.id == task_id) {
                a.task.desired_status = DesiredStatus::Stopped;
            }
        });
    }
    fn reports(&self, task_id: &str) -> Vec<TaskReport> {
        self.state
            .lock()
            .unwrap()
            .reports
            .iter()
            .filter(|r| r.task_id == task_id)
            .cloned()
            .collect()
    }
    fn statuses(&self, task_id: &str) -> Vec<TaskStatus> {
        self.reports(task_id)
            .iter()
            .map(|r| r.last_status)
            .collect()
    }
    fn last(&self, task_id: &str, status: TaskStatus) -> Option<TaskReport> {
        self.reports(task_id)
            .into_iter()
            .rev()
            .find(|r| r.last_status == status)
    }
    fn has(&self, task_id: &str, status: TaskStatus) -> bool {
        self.last(task_id, status).is_some()
    }
}

#[async_trait]
impl ControlPlaneLink for FakeLink {
    async fn register(&self, registration: NodeRegistration) -> Result<(), LinkError> {
        self.state.lock().unwrap().registrations.push(registration);
        Ok(())
    }

    async fn assignments(
        &self,
        _node: &str,
        since: u64,
        timeout: Duration,
    ) -> Result<Assignments, LinkError> {
        loop {
            let notified = self.changed.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            {
                let state = self.state.lock().unwrap();
                if state.revision + 1 != since || timeout.is_zero() {
                    return Ok(Assignments {
                        revision: state.revision + 1,
                        assignments: state.assignments.clone(),
                    });
                }
            }
            tokio::select! {
                () = &mut notified => continue,
                () = tokio::time::sleep(timeout) => {
                    let state = self.state.lock().unwrap();
                    return Ok(Assignments {
                        revision: state.revision + 1,
                        assignments: state.assignments.clone(),
                    });
                }
            }
        }
    }

    /// No service of these tests is discovered: the long-poll only waits.
    async fn service_endpoints(
        &self,
        _node: &str,
        _have: Option<&str>,
        timeout: Duration,
    ) -> Result<berth_proto::ServiceEndpoints, LinkError> {
        tokio::time::sleep(timeout).await;
        Ok(berth_proto::ServiceEndpoints::default())
    }

    async fn report(&self, reports: Vec<TaskReport>) -> Result<(), LinkError> {
        let mut state = self.state.lock().unwrap();
        if state.failing_reports > 0 {
            state.failing_reports -= 1;
            return Err(LinkError::Unavailable("fake outage".into()));
        }
        if let Some(refused) = &state.refused_task {
            if reports.iter().any(|r| &r.task_id == refused) {
                return Err(LinkError::Refused(format!(
                    "task {refused} is not on this node"
                )));
            }
        }
        // Like the control plane: the task's status follows the reports.
        for report in &reports {
            for a in state
                .assignments
                .iter_mut()
                .filter(|a| a.task.id == report.task_id)
            {
                if report.last_status > a.task.last_status {
                    a.task.last_status = report.last_status;
                }
            }
        }
        state.reports.extend(reports);
        Ok(())
    }
}

fn definition(value: serde_json::Value) -> RegisterTaskDefinitionRequest {
    serde_json::from_value(value).unwrap()
}

/// What the control plane sends: the definition through validation's one parse.
fn assignment(task_id: &str, definition: RegisterTaskDefinitionRequest) -> Assignment {
    let spec = berth_core::task_spec(&definition).expect("test definition must validate");
    let task = Task {
        id: task_id.into(),
        cluster: "default".into(),
        family: definition.family.clone(),
        revision: 1,
        service: None,
        desired_status: DesiredStatus::Running,
        last_status: TaskStatus::Provisioning,
        drain_ms: None,
        stopped_ms_ago: None,
    };
    Assignment { task, spec }
}

fn web_definition() -> RegisterTaskDefinitionRequest {
    definition(json!({
        "family": "web",
        "containerDefinitions": [
            {"name": "nginx", "image": "nginx:1", "memory": 64, "portMappings": [{"containerPort": 80, "hostPort": 0}],
             "dependsOn": [{"containerName": "app", "condition": "START"}]},
            {"name": "app", "image": "app:1", "memory": 64, "portMappings": [{"containerPort": 8080, "hostPort": 8080}], "stopTimeout": 7}
        ]
    }))
}

const TASK: &str = "aaaaaaaaaaaabbbbbbbbbbbbcccccccc";
const OTHER: &str = "dddddddddddd0000000000000000ffff";

struct Harness {
    runtime: Arc<FakeRuntime>,
    link: Arc<FakeLink>,
    handle: AgentHandle,
    stop: Option<oneshot::Sender<()>>,
    join: JoinHandle<()>,
}

impl Harness {
    fn start(runtime: Arc<FakeRuntime>, link: Arc<FakeLink>) -> Harness {
        let mut config = AgentConfig::new(NODE, "default");
        config.task_cleanup_wait = Duration::from_secs(60);
        let agent = Agent::new(config, runtime.clone(), link.clone());
        let handle = agent.handle();
        let (stop, stopped) = oneshot::channel::<()>();
        let join = tokio::spawn(async move {
            agent
                .run(async {
                    let _ = stopped.await;
                })
                .await
                .unwrap();
        });
        Harness {
            runtime,
            link,
            handle,
            stop: Some(stop),
            join,
        }
    }

    fn new(images: &[&str]) -> Harness {
        Harness::start(
            Arc::new(FakeRuntime::with_images(images.iter().copied())),
            Arc::new(FakeLink::default()),
        )
    }

    async fn shutdown(mut self) -> (Arc<FakeRuntime>, Arc<FakeLink>) {
        let _ = self.stop.take().unwrap().send(());
        self.join.await.unwrap();
        (self.runtime, self.link)
    }

    /// The `berth.container` label of every container started, in start order.
    fn started(&self) -> Vec<String> {
        let containers = self.runtime.containers();
        self.runtime
            .calls()
            .into_iter()
            .filter_map(|c| match c {
                RecordedCall::StartContainer(id) => containers
                    .iter()
                    .find(|c| c.id == id)
                    .map(|c| c.labels["berth.container"].clone()),
                _ => None,
            })
            .collect()
    }

    fn created(&self) -> Vec<ContainerSpec> {
        self.runtime
            .calls()
            .into_iter()
            .filter_map(|c| match c {
                RecordedCall::CreateContainer(spec) => Some(spec),
                _ => None,
            })
            .collect()
    }

    fn id_of(&self, container: &str) -> String {
        self.runtime
            .containers()
            .into_iter()
            .find(|c| c.labels.get("berth.container").map(String::as_str) == Some(container))
            .unwrap_or_else(|| panic!("no container {container}"))
            .id
    }
}

async fn eventually(what: &str, mut condition: impl FnMut() -> bool) {
    for _ in 0..2000 {
        if condition() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("never happened: {what}");
}

/// Lets every ready task run (the clock is paused, so this costs nothing).
async fn settle() {
    tokio::time::sleep(Duration::from_millis(100)).await;
}

#[tokio::test(start_paused = true)]
async fn starts_sandbox_then_containers_joined_to_it_and_reports_running_with_bindings() {
    let h = Harness::new(&["nginx:1", "app:1"]);
    h.link.assign(assignment(TASK, web_definition()));
    eventually("RUNNING", || h.link.has(TASK, TaskStatus::Running)).await;

    let registration = h.link.state.lock().unwrap().registrations[0].clone();
    assert_eq!((registration.cpu, registration.memory), (2048, 4096));
    assert_eq!(registration.node_id, NODE);

    let statuses = h.link.statuses(TASK);
    assert_eq!(statuses[0], TaskStatus::Pending);
    assert!(h.link.reports(TASK)[0].pull_started_at.is_some());
    assert!(h
        .link
        .reports(TASK)
        .iter()
        .any(|r| r.pull_stopped_at.is_some()));
    assert!(!statuses.contains(&TaskStatus::Stopped));

    let created = h.created();
    assert_eq!(created.len(), 3);
    let sandbox = &created[0];
    assert_eq!(sandbox.name, "berth-web-aaaaaaaaaaaa-sandbox");
    assert_eq!(sandbox.labels["berth.container"], "~sandbox");
    let NetworkSpec::Bridge { ports, .. } = &sandbox.network else {
        panic!("{:?}", sandbox.network)
    };
    assert_eq!(
        ports
            .iter()
            .map(|p| (p.container_port, p.host_port))
            .collect::<Vec<_>>(),
        vec![(80, 0), (8080, 8080)]
    );
    let sandbox_id = h.id_of("~sandbox");
    // Both are created in the sandbox's namespace; app starts first (nginx depends on
    // its START), after the sandbox.
    assert_eq!(created[1].name, "berth-web-aaaaaaaaaaaa-nginx");
    assert_eq!(created[2].name, "berth-web-aaaaaaaaaaaa-app");
    assert_eq!(h.started(), vec!["~sandbox", "app", "nginx"]);
    for spec in &created[1..] {
        assert_eq!(spec.network, NetworkSpec::Container(sandbox_id.clone()));
    }
    for spec in &created {
        for (key, value) in [
            ("berth.managed", "true"),
            ("berth.node", NODE),
            ("berth.cluster", "default"),
            ("berth.task", TASK),
            ("berth.family", "web"),
            ("berth.revision", "1"),
        ] {
            assert_eq!(
                spec.labels.get(key).map(String::as_str),
                Some(value),
                "{key} on {}",
                spec.name
            );
        }
    }

    let running = h.link.last(TASK, TaskStatus::Running).unwrap();
    assert!(running.started_at.is_some());
    let nginx = running
        .containers
        .iter()
        .find(|c| c.name == "nginx")
        .unwrap();
    assert_eq!(nginx.last_status, EcsContainerStatus::Running);
    assert_eq!(nginx.runtime_id.as_deref(), Some(h.id_of("nginx").as_str()));
    assert!(nginx.image_digest.is_some());
    assert_eq!(
        nginx.network_bindings[0].host_port,
        Some(32768),
        "dynamic port"
    );
    assert_eq!(nginx.network_bindings[0].container_port, Some(80));
    let app = running.containers.iter().find(|c| c.name == "app").unwrap();
    assert_eq!(app.network_bindings[0].host_port, Some(8080));
    h.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn depends_on_success_waits_for_a_zero_exit() {
    let def = definition(json!({"family": "job", "containerDefinitions": [
        {"name": "migrate", "image": "app:1", "memory": 64, "essential": false},
        {"name": "app", "image": "app:1", "memory": 64, "dependsOn": [{"containerName": "migrate", "condition": "SUCCESS"}]}
    ]}));
    let h = Harness::new(&["app:1"]);
    h.link.assign(assignment(TASK, def.clone()));
    eventually("migrate started", || h.started().len() == 2).await;
    settle().await;
    assert_eq!(
        h.started(),
        vec!["~sandbox", "migrate"],
        "app waits for migrate"
    );
    assert!(!h.link.has(TASK, TaskStatus::Running));
    h.runtime.exit(&h.id_of("migrate"), 0);
    eventually("RUNNING", || h.link.has(TASK, TaskStatus::Running)).await;
    assert_eq!(h.started()[2], "app");
    let running = h.link.last(TASK, TaskStatus::Running).unwrap();
    let migrate = running
        .containers
        .iter()
        .find(|c| c.name == "migrate")
        .unwrap();
    assert_eq!(
        (migrate.last_status, migrate.exit_code),
        (EcsContainerStatus::Stopped, Some(0))
    );

    // A failed dependency stops the task before app ever starts.
    h.link.assign(assignment(OTHER, def));
    eventually("second migrate", || h.started().len() == 5).await;
    let migrate = h
        .runtime
        .containers()
        .into_iter()
        .find(|c| c.labels["berth.task"] == OTHER && c.labels["berth.container"] == "migrate")
        .unwrap();
    h.runtime.exit(&migrate.id, 1);
    eventually("STOPPED", || h.link.has(OTHER, TaskStatus::Stopped)).await;
    let stopped = h.link.last(OTHER, TaskStatus::Stopped).unwrap();
    assert_eq!(stopped.stop_code, Some(StopCode::TaskFailedToStart));
    let reason = stopped.stopped_reason.unwrap();
    assert!(
        reason.contains("app") && reason.contains("migrate") && reason.contains("SUCCESS"),
        "{reason}"
    );
    assert_eq!(h.started().len(), 5, "app never started");
    h.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn depends_on_healthy_waits_for_health_and_times_out() {
    let def = definition(json!({"family": "db", "containerDefinitions": [
        {"name": "db", "image": "db:1", "memory": 64, "startTimeout": 5,
         "healthCheck": {"command": ["CMD-SHELL", "true"]}},
        {"name": "web", "image": "web:1", "memory": 64, "dependsOn": [{"containerName": "db", "condition": "HEALTHY"}]}
    ]}));
    let h = Harness::new(&["db:1", "web:1"]);
    h.link.assign(assignment(TASK, def.clone()));
    eventually("db started", || h.started().len() == 2).await;
    settle().await;
    assert_eq!(
        h.started(),
        vec!["~sandbox", "db"],
        "web waits for db's health"
    );
    h.runtime.set_health(&h.id_of("db"), Health::Healthy);
    eventually("RUNNING", || h.link.has(TASK, TaskStatus::Running)).await;
    let db = h
        .link
        .last(TASK, TaskStatus::Running)
        .unwrap()
        .containers
        .into_iter()
        .find(|c| c.name == "db")
        .unwrap();
    assert_eq!(db.health_status, HealthStatus::Healthy);

    // Never healthy: after db's startTimeout (5 s) the task gives up.
    h.link.assign(assignment(OTHER, def));
    eventually("STOPPED", || h.link.has(OTHER, TaskStatus::Stopped)).await;
    let stopped = h.link.last(OTHER, TaskStatus::Stopped).unwrap();
    assert_eq!(stopped.stop_code, Some(StopCode::TaskFailedToStart));
    let reason = stopped.stopped_reason.unwrap();
    assert!(
        reason.contains("web") && reason.contains("db") && reason.contains("HEALTHY"),
        "{reason}"
    );
    // Health changes while running are reported.
    h.runtime.set_health(&h.id_of("db"), Health::Unhealthy);
    eventually("unhealthy reported", || {
        h.link.reports(TASK).iter().any(|r| {
            r.containers
                .iter()
                .any(|c| c.health_status == HealthStatus::Unhealthy)
        })
    })
    .await;
    h.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn an_essential_exit_stops_the_task_with_exit_codes() {
    let h = Harness::new(&["nginx:1", "app:1"]);
    h.link.assign(assignment(TASK, web_definition()));
    eventually("RUNNING", || h.link.has(TASK, TaskStatus::Running)).await;
    h.runtime.exit(&h.id_of("app"), 2);
    eventually("STOPPED", || h.link.has(TASK, TaskStatus::Stopped)).await;
    let stopped = h.link.last(TASK, TaskStatus::Stopped).unwrap();
    assert_eq!(stopped.stop_code, Some(StopCode::EssentialContainerExited));
    assert_eq!(
        stopped.stopped_reason.as_deref(),
        Some("Essential container in task exited")
    );
    let codes: Vec<(String, Option<i64>, EcsContainerStatus)> = stopped
        .containers
        .iter()
        .map(|c| (c.name.clone(), c.exit_code, c.last_status))
        .collect();
    assert!(
        codes.contains(&("app".into(), Some(2), EcsContainerStatus::Stopped)),
        "{codes:?}"
    );
    assert!(
        codes.contains(&("nginx".into(), Some(143), EcsContainerStatus::Stopped)),
        "{codes:?}"
    );
    assert!(!h.link.statuses(TASK).contains(&TaskStatus::Deactivating));
    h.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn an_essential_exit_is_reported_at_once_before_the_other_containers_are_stopped() {
    let h = Harness::new(&["nginx:1", "app:1"]);
    h.link.assign(assignment(TASK, web_definition()));
    eventually("RUNNING", || h.link.has(TASK, TaskStatus::Running)).await;
    h.runtime.exit(&h.id_of("app"), 2);
    eventually("STOPPED", || h.link.has(TASK, TaskStatus::Stopped)).await;
    // The first report after the exit: STOPPING, the exited container STOPPED with its
    // exit code, nginx still RUNNING (it gets its SIGTERM after this report), and why.
    let reports = h.link.reports(TASK);
    let first = reports
        .iter()
        .find(|r| r.last_status > TaskStatus::Running)
        .expect("a report after the exit");
    assert_eq!(first.last_status, TaskStatus::Stopping, "{reports:?}");
    assert_eq!(first.stop_code, Some(StopCode::EssentialContainerExited));
    let containers: Vec<(String, EcsContainerStatus, Option<i64>)> = first
        .containers
        .iter()
        .map(|c| (c.name.clone(), c.last_status, c.exit_code))
        .collect();
    assert!(
        containers.contains(&("app".into(), EcsContainerStatus::Stopped, Some(2))),
        "{containers:?}"
    );
    assert!(
        containers.contains(&("nginx".into(), EcsContainerStatus::Running, None)),
        "{containers:?}"
    );
    h.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn a_non_essential_exit_keeps_the_task_running_and_oom_is_reported() {
    let def = definition(json!({"family": "web", "containerDefinitions": [
        {"name": "app", "image": "app:1", "memory": 64},
        {"name": "sidecar", "image": "app:1", "memory": 64, "essential": false}
    ]}));
    let h = Harness::new(&["app:1"]);
    h.link.assign(assignment(TASK, def));
    eventually("RUNNING", || h.link.has(TASK, TaskStatus::Running)).await;
    h.runtime.oom(&h.id_of("sidecar"));
    eventually("sidecar STOPPED", || {
        h.link.reports(TASK).iter().any(|r| {
            r.containers
                .iter()
                .any(|c| c.name == "sidecar" && c.last_status == EcsContainerStatus::Stopped)
        })
    })
    .await;
    settle().await;
    assert!(!h.link.has(TASK, TaskStatus::Stopped));
    let report = h.link.reports(TASK).into_iter().last().unwrap();
    assert_eq!(report.last_status, TaskStatus::Running);
    assert_eq!(report.containers[0].exit_code, Some(137));
    assert_eq!(
        report.containers[0].reason.as_deref(),
        Some("OutOfMemoryError: Container killed due to memory usage")
    );
    h.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn stop_task_goes_through_stopping_in_reverse_order_with_stop_timeout_then_cleans_up() {
    let mut def = web_definition();
    def.volumes = vec![serde_json::from_value(json!({"name": "data"})).unwrap()];
    def.container_definitions[1].mount_points = Some(vec![serde_json::from_value(
        json!({"sourceVolume": "data", "containerPath": "/data"}),
    )
    .unwrap()]);
    let h = Harness::new(&["nginx:1", "app:1"]);
    h.link.assign(assignment(TASK, def));
    eventually("RUNNING", || h.link.has(TASK, TaskStatus::Running)).await;
    let volume = format!("berth-{TASK}-data");
    assert!(h
        .runtime
        .volumes()
        .iter()
        .any(|v| v.name == volume && v.labels["berth.task"] == TASK));
    let (app, nginx, sandbox) = (h.id_of("app"), h.id_of("nginx"), h.id_of("~sandbox"));
    h.runtime.clear_calls();
    h.link.stop_task(TASK);
    eventually("STOPPED", || h.link.has(TASK, TaskStatus::Stopped)).await;
    let statuses = h.link.statuses(TASK);
    let tail: Vec<TaskStatus> = statuses
        .iter()
        .copied()
        .skip_while(|s| *s != TaskStatus::Deactivating)
        .collect();
    assert_eq!(
        tail,
        vec![
            TaskStatus::Deactivating,
            TaskStatus::Stopping,
            TaskStatus::Stopped
        ]
    );
    let stops: Vec<(String, Duration)> = h
        .runtime
        .calls()
        .into_iter()
        .filter_map(|c| match c {
            RecordedCall::StopContainer { id, timeout } => Some((id, timeout)),
            _ => None,
        })
        .collect();
    assert_eq!(
        stops[0],
        (nginx, Duration::from_secs(30)),
        "nginx depends on app: stopped first"
    );
    assert_eq!(stops[1], (app, Duration::from_secs(7)), "app's stopTimeout");
    assert_eq!(stops[2].0, sandbox, "sandbox last");
    let stopped = h.link.last(TASK, TaskStatus::Stopped).unwrap();
    assert!(stopped.containers.iter().all(|c| c.exit_code == Some(143)));

    // Kept for `berth logs` until the cleanup wait (60 s here), then removed.
    assert_eq!(h.runtime.containers().len(), 3);
    tokio::time::sleep(Duration::from_secs(59)).await;
    assert_eq!(h.runtime.containers().len(), 3);
    eventually("removed", || {
        h.runtime.containers().is_empty() && h.runtime.volumes().is_empty()
    })
    .await;
    h.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn a_failed_pull_stops_the_task_with_cannot_pull_container_error() {
    let h = Harness::new(&["nginx:1"]);
    h.runtime
        .fail_next_pull("app:1", "pull access denied for app");
    h.link.assign(assignment(TASK, web_definition()));
    eventually("STOPPED", || h.link.has(TASK, TaskStatus::Stopped)).await;
    let stopped = h.link.last(TASK, TaskStatus::Stopped).unwrap();
    assert_eq!(stopped.stop_code, Some(StopCode::TaskFailedToStart));
    assert_eq!(
        stopped.stopped_reason.as_deref(),
        Some("CannotPullContainerError: pull access denied for app")
    );
    let app = stopped.containers.iter().find(|c| c.name == "app").unwrap();
    assert_eq!(app.reason, stopped.stopped_reason);
    assert!(h.created().is_empty());
    h.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn secrets_stop_the_task_before_any_container_starts() {
    let def = definition(json!({"family": "web", "containerDefinitions": [
        {"name": "app", "image": "app:1", "memory": 64, "secrets": [{"name": "DB_PASSWORD", "valueFrom": "arn:aws:ssm:us-east-1:123:parameter/db"}]}
    ]}));
    let h = Harness::new(&["app:1"]);
    h.link.assign(assignment(TASK, def));
    eventually("STOPPED", || h.link.has(TASK, TaskStatus::Stopped)).await;
    let stopped = h.link.last(TASK, TaskStatus::Stopped).unwrap();
    assert_eq!(stopped.stop_code, Some(StopCode::TaskFailedToStart));
    let reason = stopped.stopped_reason.unwrap();
    assert!(
        reason.contains("DB_PASSWORD") && reason.contains("arn:aws:ssm:us-east-1:123:parameter/db"),
        "{reason}"
    );
    assert!(h.created().is_empty());
    h.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn awslogs_is_not_passed_to_the_runtime_and_logs_are_readable() {
    let def = definition(json!({"family": "web", "containerDefinitions": [
        {"name": "app", "image": "app:1", "memory": 64, "logConfiguration": {"logDriver": "awslogs", "options": {"awslogs-group": "/ecs/web"}}},
        {"name": "side", "image": "app:1", "memory": 64, "essential": false}
    ]}));
    let h = Harness::new(&["app:1"]);
    h.link.assign(assignment(TASK, def));
    eventually("RUNNING", || h.link.has(TASK, TaskStatus::Running)).await;
    assert!(h.created().iter().all(|spec| spec.log_driver.is_none()));

    h.runtime.push_log(&h.id_of("app"), Stream::Stdout, "one");
    h.runtime.advance(Duration::from_secs(1));
    h.runtime.push_log(&h.id_of("side"), Stream::Stderr, "two");
    h.runtime.advance(Duration::from_secs(1));
    h.runtime.push_log(&h.id_of("app"), Stream::Stdout, "three");
    let all = h.handle.logs(TASK, None, None, None).await.unwrap();
    let lines: Vec<(&str, &str)> = all
        .iter()
        .map(|(c, e)| (c.as_str(), e.message.as_str()))
        .collect();
    assert_eq!(
        lines,
        vec![("app", "one"), ("side", "two"), ("app", "three")]
    );
    let app = h
        .handle
        .logs(TASK, Some("app"), None, Some(1))
        .await
        .unwrap();
    assert_eq!(app.len(), 1);
    assert_eq!(app[0].1.message, "three");
    assert!(h.handle.logs(TASK, Some("nope"), None, None).await.is_err());
    assert!(h
        .handle
        .logs("unknown", None, None, None)
        .await
        .unwrap()
        .is_empty());
    h.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn stats_are_read_for_a_tasks_running_containers_only() {
    let def = definition(json!({"family": "web", "containerDefinitions": [
        {"name": "app", "image": "app:1", "memory": 64},
        {"name": "side", "image": "app:1", "memoryReservation": 32, "essential": false}
    ]}));
    let h = Harness::new(&["app:1"]);
    h.link.assign(assignment(TASK, def));
    eventually("RUNNING", || h.link.has(TASK, TaskStatus::Running)).await;

    let figures = h.handle.stats(TASK).await.unwrap();
    let names: Vec<&str> = figures.iter().map(|(name, _)| name.as_str()).collect();
    // The sandbox that holds the task's namespace is no container of the task.
    assert_eq!(names, ["app", "side"]);
    let (_, app) = &figures[0];
    assert_eq!(app.cpu_percent, berth_runtime::FAKE_CPU_PERCENT);
    assert_eq!(
        app.memory_usage_bytes,
        berth_runtime::FAKE_MEMORY_USAGE_BYTES
    );
    // The limit is the container's memory; without one, the machine's.
    assert_eq!(app.memory_limit_bytes, 64 * 1024 * 1024);
    assert_eq!(
        figures[1].1.memory_limit_bytes,
        berth_runtime::FAKE_MACHINE_MEMORY_BYTES
    );

    // A container that exited uses nothing and is not shown.
    h.runtime.exit(&h.id_of("side"), 0);
    eventually("side exited", || {
        h.runtime
            .containers()
            .iter()
            .any(|c| c.name.ends_with("side") && c.state != berth_runtime::ContainerState::Running)
    })
    .await;
    let figures = h.handle.stats(TASK).await.unwrap();
    let names: Vec<&str> = figures.iter().map(|(name, _)| name.as_str()).collect();
    assert_eq!(names, ["app"]);
    assert!(h.handle.stats("unknown").await.unwrap().is_empty());
    h.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn a_create_failure_fails_only_that_task() {
    let h = Harness::new(&["nginx:1", "app:1"]);
    h.runtime.fail_next(
        "start_container",
        RuntimeError::Engine("no space left on device".into()),
    );
    h.link.assign(assignment(TASK, web_definition()));
    eventually("STOPPED", || h.link.has(TASK, TaskStatus::Stopped)).await;
    let stopped = h.link.last(TASK, TaskStatus::Stopped).unwrap();
    assert_eq!(stopped.stop_code, Some(StopCode::TaskFailedToStart));
    assert!(stopped
        .stopped_reason
        .unwrap()
        .contains("no space left on device"));

    h.runtime
        .fail_next("create_container", RuntimeError::Conflict("boom".into()));
    h.link.assign(assignment(OTHER, web_definition()));
    eventually("OTHER STOPPED", || h.link.has(OTHER, TaskStatus::Stopped)).await;
    let reason = h
        .link
        .last(OTHER, TaskStatus::Stopped)
        .unwrap()
        .stopped_reason
        .unwrap();
    assert!(reason.contains("boom"), "{reason}");

    // The agent keeps going.
    let third = "eeeeeeeeeeee0000000000000000eeee";
    h.link.assign(assignment(third, web_definition()));
    eventually("third RUNNING", || h.link.has(third, TaskStatus::Running)).await;
    h.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn desired_stopped_before_it_ever_ran_is_reported_stopped() {
    let h = Harness::new(&["app:1"]);
    let mut a = assignment(TASK, web_definition());
    a.task.desired_status = DesiredStatus::Stopped;
    h.link.assign(a);
    eventually("STOPPED", || h.link.has(TASK, TaskStatus::Stopped)).await;
    assert!(h.created().is_empty());
    h.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn after_a_restart_running_tasks_are_adopted_and_orphans_removed() {
    let h = Harness::new(&["nginx:1", "app:1"]);
    h.link.assign(assignment(TASK, web_definition()));
    eventually("RUNNING", || h.link.has(TASK, TaskStatus::Running)).await;
    let (runtime, link) = h.shutdown().await;
    // An orphan: a container of a task this node no longer has.
    let mut orphan = ContainerSpec::new("berth-old-000000000000-app", "app:1");
    orphan.labels.insert("berth.node".into(), NODE.into());
    orphan.labels.insert("berth.task".into(), "ghost".into());
    let orphan_id = runtime.create_container(&orphan).await.unwrap();
    runtime.start_container(&orphan_id).await.unwrap();
    let before: Vec<String> = runtime.containers().iter().map(|c| c.id.clone()).collect();
    runtime.clear_calls();

    let h = Harness::start(runtime, link);
    eventually("orphan removed", || {
        h.runtime.inspect_container_now(&orphan_id).is_none()
    })
    .await;
    settle().await;
    assert!(h.created().is_empty(), "adopted: nothing created");
    assert!(!h.link.has(TASK, TaskStatus::Stopped));
    assert!(h
        .runtime
        .containers()
        .iter()
        .all(|c| c.state == ContainerState::Running));
    assert_eq!(h.runtime.containers().len(), before.len() - 1);
    // Still watched: an exit now stops the task.
    h.runtime.exit(&h.id_of("app"), 1);
    eventually("STOPPED", || h.link.has(TASK, TaskStatus::Stopped)).await;
    assert_eq!(
        h.link.last(TASK, TaskStatus::Stopped).unwrap().stop_code,
        Some(StopCode::EssentialContainerExited)
    );
    h.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn a_task_given_up_while_the_agent_was_away_is_stopped_when_it_returns() {
    let h = Harness::new(&["nginx:1", "app:1"]);
    h.link.assign(assignment(TASK, web_definition()));
    eventually("RUNNING", || h.link.has(TASK, TaskStatus::Running)).await;
    let (runtime, link) = h.shutdown().await;
    // While this agent was away the control plane gave the task up (its machine lost
    // contact) and replaced it elsewhere: it is STOPPED, its containers still run.
    link.change(|list| {
        for a in list.iter_mut().filter(|a| a.task.id == TASK) {
            a.task.desired_status = DesiredStatus::Stopped;
            a.task.last_status = TaskStatus::Stopped;
            a.task.stopped_ms_ago = Some(1_000);
        }
    });
    runtime.clear_calls();
    let h = Harness::start(runtime, link);
    eventually("its containers stopped", || {
        h.runtime
            .containers()
            .iter()
            .all(|c| c.state != ContainerState::Running)
    })
    .await;
    assert!(h.created().is_empty(), "nothing of it starts again");
    // And removed once the cleanup wait (60 s here) has passed.
    tokio::time::sleep(Duration::from_secs(61)).await;
    eventually("its containers removed", || {
        h.runtime.containers().is_empty()
    })
    .await;
    h.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn a_container_that_vanished_while_down_stops_the_task() {
    let h = Harness::new(&["nginx:1", "app:1"]);
    h.link.assign(assignment(TASK, web_definition()));
    eventually("RUNNING", || h.link.has(TASK, TaskStatus::Running)).await;
    let app = h.id_of("app");
    let (runtime, link) = h.shutdown().await;
    runtime.remove_container(&app).await.unwrap();

    let h = Harness::start(runtime, link);
    eventually("STOPPED", || h.link.has(TASK, TaskStatus::Stopped)).await;
    let stopped = h.link.last(TASK, TaskStatus::Stopped).unwrap();
    assert_eq!(stopped.stop_code, Some(StopCode::EssentialContainerExited));
    assert_eq!(
        stopped.stopped_reason.as_deref(),
        Some("Container app vanished while berth was down")
    );
    assert!(h
        .runtime
        .containers()
        .iter()
        .all(|c| c.state != ContainerState::Running));
    h.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn a_task_that_had_not_reached_running_is_started_again_from_scratch() {
    let runtime = Arc::new(FakeRuntime::with_images(["nginx:1", "app:1"]));
    let link = Arc::new(FakeLink::default());
    // Leftovers of a half-started task (as a crashed agent leaves them).
    let mut leftover = ContainerSpec::new("berth-web-aaaaaaaaaaaa-app", "app:1");
    leftover.labels.insert("berth.node".into(), NODE.into());
    leftover.labels.insert("berth.task".into(), TASK.into());
    leftover
        .labels
        .insert("berth.container".into(), "app".into());
    let leftover_id = runtime.create_container(&leftover).await.unwrap();
    let mut a = assignment(TASK, web_definition());
    a.task.last_status = TaskStatus::Pending;
    link.assign(a);
    let h = Harness::start(runtime, link);
    eventually("RUNNING", || h.link.has(TASK, TaskStatus::Running)).await;
    assert!(h.runtime.inspect_container_now(&leftover_id).is_none());
    assert_eq!(h.runtime.containers().len(), 3);
    h.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn events_missed_while_the_stream_was_down_are_caught_by_a_resync() {
    let h = Harness::new(&["nginx:1", "app:1"]);
    h.link.assign(assignment(TASK, web_definition()));
    eventually("RUNNING", || h.link.has(TASK, TaskStatus::Running)).await;
    // The stream drops and the exit happens before the agent subscribes again.
    h.runtime.disconnect_events();
    h.runtime.exit(&h.id_of("app"), 4);
    eventually("STOPPED", || h.link.has(TASK, TaskStatus::Stopped)).await;
    let stopped = h.link.last(TASK, TaskStatus::Stopped).unwrap();
    assert_eq!(stopped.stop_code, Some(StopCode::EssentialContainerExited));
    assert!(stopped
        .containers
        .iter()
        .any(|c| c.name == "app" && c.exit_code == Some(4)));
    h.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn reports_are_retried_until_the_control_plane_takes_them() {
    let h = Harness::new(&["nginx:1", "app:1"]);
    h.link.state.lock().unwrap().failing_reports = 3;
    h.link.assign(assignment(TASK, web_definition()));
    eventually("RUNNING", || h.link.has(TASK, TaskStatus::Running)).await;
    assert_eq!(h.link.statuses(TASK)[0], TaskStatus::Pending, "order kept");
    h.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn a_refused_report_is_dropped_and_holds_up_no_other() {
    let h = Harness::new(&["nginx:1", "app:1"]);
    h.link.state.lock().unwrap().refused_task = Some(OTHER.to_string());
    h.link.assign(assignment(OTHER, web_definition()));
    h.link.assign(assignment(TASK, web_definition()));
    eventually("the other task's reports get through", || {
        h.link.has(TASK, TaskStatus::Running)
    })
    .await;
    assert!(
        h.link.reports(OTHER).is_empty(),
        "refused ones are not taken"
    );
    h.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn awsvpc_reports_the_sandbox_address() {
    let def = definition(
        json!({"family": "web", "networkMode": "awsvpc", "containerDefinitions": [
            {"name": "app", "image": "app:1", "memory": 64, "portMappings": [{"containerPort": 8080}]}
        ]}),
    );
    let h = Harness::new(&["app:1"]);
    h.link.assign(assignment(TASK, def));
    eventually("RUNNING", || h.link.has(TASK, TaskStatus::Running)).await;
    let running = h.link.last(TASK, TaskStatus::Running).unwrap();
    assert!(running
        .private_ipv4_address
        .as_deref()
        .is_some_and(|ip| ip.starts_with("172.17.")));
    h.shutdown().await;
}

trait InspectNow {
    fn inspect_container_now(&self, id: &str) -> Option<berth_runtime::ContainerStatus>;
}

impl InspectNow for FakeRuntime {
    fn inspect_container_now(&self, id: &str) -> Option<berth_runtime::ContainerStatus> {
        self.containers().into_iter().find(|c| c.id == id)
    }
}

#[tokio::test(start_paused = true)]
async fn a_single_container_task_holds_its_own_namespace_without_a_sandbox() {
    let def = definition(json!({"family": "solo", "containerDefinitions": [
        {"name": "web", "image": "app:1", "memory": 64, "hostname": "solo-host",
         "portMappings": [{"containerPort": 8080, "hostPort": 0}]}
    ]}));
    let h = Harness::new(&["app:1"]);
    h.link.assign(assignment(TASK, def));
    eventually("RUNNING", || h.link.has(TASK, TaskStatus::Running)).await;

    let created = h.created();
    assert_eq!(created.len(), 1, "no sandbox: {created:?}");
    let spec = &created[0];
    assert_eq!(spec.labels["berth.container"], "web");
    assert_eq!(spec.hostname.as_deref(), Some("solo-host"));
    let NetworkSpec::Bridge { ports, .. } = &spec.network else {
        panic!("the container publishes its own ports: {:?}", spec.network)
    };
    assert_eq!(
        ports.iter().map(|p| p.container_port).collect::<Vec<_>>(),
        vec![8080]
    );
    let running = h.link.last(TASK, TaskStatus::Running).unwrap();
    let web = &running.containers[0];
    assert_eq!(
        web.network_bindings.len(),
        1,
        "bindings read from the container itself"
    );

    h.runtime.exit(&h.id_of("web"), 4);
    eventually("STOPPED", || h.link.has(TASK, TaskStatus::Stopped)).await;
    let stopped = h.link.last(TASK, TaskStatus::Stopped).unwrap();
    assert_eq!(stopped.stop_code, Some(StopCode::EssentialContainerExited));
    assert_eq!(
        stopped.stopped_reason.as_deref(),
        Some("Essential container in task exited")
    );
    assert_eq!(stopped.containers[0].exit_code, Some(4));
    h.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn a_draining_task_keeps_running_until_its_targets_have_drained() {
    let h = Harness::new(&["nginx:1", "app:1"]);
    h.link.assign(assignment(TASK, web_definition()));
    eventually("RUNNING", || h.link.has(TASK, TaskStatus::Running)).await;
    h.runtime.clear_calls();
    h.link.change(|list| {
        for a in list.iter_mut().filter(|a| a.task.id == TASK) {
            a.task.desired_status = DesiredStatus::Stopped;
            a.task.drain_ms = Some(5_000);
        }
    });
    let asked = tokio::time::Instant::now();
    eventually("DEACTIVATING", || {
        h.link.has(TASK, TaskStatus::Deactivating)
    })
    .await;
    tokio::time::sleep(Duration::from_secs(4)).await;
    let stops = h
        .runtime
        .calls()
        .into_iter()
        .filter(|c| matches!(c, RecordedCall::StopContainer { .. }))
        .count();
    assert_eq!(stops, 0, "no SIGTERM while the targets drain");
    eventually("STOPPED", || h.link.has(TASK, TaskStatus::Stopped)).await;
    assert!(
        asked.elapsed() >= Duration::from_millis(4_900),
        "stopped only after the drain"
    );
    h.shutdown().await;
}
