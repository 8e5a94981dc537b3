//! A small world for integration tests: a `State`, deterministic ids, a hand-driven clock,
//! the ECS actions, the service scheduler and a fake agent that plays the containers.
//!
//! Everything is pure and runs in microseconds: no IO, no sleeps.

// Each test binary uses a different subset of these helpers.
#![allow(dead_code)]

use berth_core::api;
use berth_core::ecs::{self, Context, EcsResult};
use berth_core::elbv2::{Elbv2Error, Elbv2ErrorCode, Elbv2Result};
use berth_core::model::{ContainerStatus, DesiredStatus, HealthStatus, StopCode, Task, TaskStatus};
use berth_core::nodes::{register_node, NodeRegistration};
use berth_core::{
    apply_task_reports, present, reconcile, ArnScope, Command, ContainerReport, EcsError,
    PrivilegePolicy, SequentialIds, State, TaskReport, Timestamp,
};
use serde::de::DeserializeOwned;
use serde_json::{json, Value};

/// The cluster every helper works in unless told otherwise.
pub const CLUSTER: &str = "default";

/// How many scheduler rounds `settle` allows before it calls the scheduler unstable.
pub const MAX_ROUNDS: usize = 20;

/// Builds any request type from JSON, as a client would send it.
pub fn req<T: DeserializeOwned>(value: Value) -> T {
    serde_json::from_value(value.clone())
        .unwrap_or_else(|e| panic!("request {value} does not deserialize: {e}"))
}

pub struct World {
    pub state: State,
    pub ids: SequentialIds,
    pub scope: ArnScope,
    pub now: Timestamp,
    /// The operator's privilege policy; `berth dev`'s loopback default unless a test
    /// changes it.
    pub policy: PrivilegePolicy,
}

impl Default for World {
    fn default() -> Self {
        Self::new()
    }
}

impl World {
    pub fn new() -> Self {
        World {
            state: State::default(),
            ids: SequentialIds::default(),
            policy: PrivilegePolicy::allow_all(),
            scope: ArnScope {
                region: "us-east-1".to_string(),
                account_id: "000000000000".to_string(),
            },
            // 2024-03-01T00:00:00Z, in milliseconds.
            now: Timestamp(1_709_251_200_000),
        }
    }

    /// The default cluster with one node (2048 CPU units, 4096 MiB) in it.
    pub fn with_node() -> Self {
        let mut world = World::new();
        world.create_cluster(CLUSTER);
        world.add_node("node-1");
        world
    }

    pub fn advance_millis(&mut self, millis: u64) {
        self.now = self.now.plus_millis(millis);
    }

    pub fn advance_secs(&mut self, secs: u64) {
        self.now = self.now.plus_secs(secs);
    }

    pub fn apply(&mut self, commands: &[Command]) {
        for command in commands {
            self.state.apply(command.clone());
        }
    }

    /// Runs one ECS action as the server does (its cluster checked first); on success
    /// applies its commands to the state.
    pub fn act<Q: ecs::EcsRequest, R>(
        &mut self,
        action: impl FnOnce(&State, Q, &mut Context<'_>) -> EcsResult<R>,
        request: Q,
    ) -> Result<R, EcsError> {
        let mut ctx = Context {
            now: self.now,
            scope: &self.scope,
            ids: &mut self.ids,
            policy: &self.policy,
        };
        let outcome = ecs::run_action(&self.state, request, &mut ctx, action)?;
        self.apply(&outcome.commands);
        Ok(outcome.response)
    }

    /// Runs an action that must succeed.
    pub fn ok<Q: ecs::EcsRequest, R>(
        &mut self,
        action: impl FnOnce(&State, Q, &mut Context<'_>) -> EcsResult<R>,
        request: Q,
    ) -> R {
        self.act(action, request)
            .unwrap_or_else(|e| panic!("action failed: {e}"))
    }

    /// Runs an action that must fail, and checks that it left the state as it was.
    pub fn fails<Q: ecs::EcsRequest, R: std::fmt::Debug>(
        &mut self,
        action: impl FnOnce(&State, Q, &mut Context<'_>) -> EcsResult<R>,
        request: Q,
    ) -> EcsError {
        let before = self.state.clone();
        let error = match self.act(action, request) {
            Ok(response) => panic!("action succeeded but should fail: {response:?}"),
            Err(error) => error,
        };
        assert!(self.state == before, "a failed action changed the state");
        error
    }

    /// Runs an ELBv2 action and applies its commands.
    pub fn elbv2_act<Q, R>(
        &mut self,
        action: impl FnOnce(&State, Q, &mut Context<'_>) -> Elbv2Result<R>,
        request: Q,
    ) -> Result<R, Elbv2Error> {
        let mut ctx = Context {
            now: self.now,
            scope: &self.scope,
            ids: &mut self.ids,
            policy: &self.policy,
        };
        let outcome = action(&self.state, request, &mut ctx)?;
        self.apply(&outcome.commands);
        Ok(outcome.response)
    }

    pub fn elbv2_ok<Q, R>(
        &mut self,
        action: impl FnOnce(&State, Q, &mut Context<'_>) -> Elbv2Result<R>,
        request: Q,
    ) -> R {
        self.elbv2_act(action, request)
            .unwrap_or_else(|e| panic!("action failed: {e}"))
    }

    /// Runs an ELBv2 action that must fail with `code`; checks nothing changed;
    /// returns the message.
    pub fn elbv2_fails<Q, R: std::fmt::Debug>(
        &mut self,
        action: impl FnOnce(&State, Q, &mut Context<'_>) -> Elbv2Result<R>,
        request: Q,
        code: Elbv2ErrorCode,
    ) -> String {
        let before = self.state.clone();
        let error = match self.elbv2_act(action, request) {
            Ok(response) => panic!("action succeeded but should fail: {response:?}"),
            Err(error) => error,
        };
        assert_eq!(error.code, code, "{}", error.message);
        assert!(self.state == before, "a failed action changed the state");
        error.message
    }

    pub fn create_cluster(&mut self, name: &str) -> api::Cluster {
        self.ok(ecs::create_cluster, req(json!({ "clusterName": name })))
            .cluster
    }

    /// Registers a node that joins every cluster, with 2048 CPU units and 4096 MiB.
    pub fn add_node(&mut self, node_id: &str) -> Vec<Command> {
        let registration = NodeRegistration {
            node_id: node_id.to_string(),
            hostname: format!("host-{node_id}"),
            cpu: 2048,
            memory: 4096,
            agent_version: "1.0.0".to_string(),
            docker_version: "27.0.0".to_string(),
            cluster: CLUSTER.to_string(),
            joins_every_cluster: true,
            address: None,
            attributes: Default::default(),
            capacity_provider: None,
        };
        let mut ctx = Context {
            now: self.now,
            scope: &self.scope,
            ids: &mut self.ids,
            policy: &self.policy,
        };
        let commands = register_node(&self.state, &registration, &mut ctx);
        self.apply(&commands);
        commands
    }

    /// Changes `node`'s container instance as its agent or an operator would (its
    /// connection, its status, its attributes); returns the instance id.
    pub fn change_instance(
        &mut self,
        node: &str,
        change: impl FnOnce(&mut berth_core::model::ContainerInstance),
    ) -> String {
        let mut instance = self
            .state
            .container_instances
            .values()
            .find(|i| i.node_id == node)
            .map(|i| berth_core::model::ContainerInstance::clone(i))
            .unwrap_or_else(|| panic!("no container instance of {node}"));
        change(&mut instance);
        instance.version += 1;
        let id = instance.id.clone();
        self.apply(&[Command::PutContainerInstance(instance)]);
        id
    }

    /// Registers a task definition given as the JSON body of RegisterTaskDefinition;
    /// returns its ARN.
    pub fn register(&mut self, body: Value) -> String {
        self.ok(ecs::register_task_definition, req(body))
            .task_definition
            .task_definition_arn
    }

    /// `family` with one essential container `app` (128 CPU units, 128 MiB).
    pub fn register_simple(&mut self, family: &str) -> String {
        self.register(json!({
            "family": family,
            "containerDefinitions": [
                { "name": "app", "image": "nginx:1.27", "cpu": 128, "memory": 128, "essential": true }
            ]
        }))
    }

    /// `family` with one essential container `app` that has a health check.
    pub fn register_with_health_check(&mut self, family: &str) -> String {
        self.register(json!({
            "family": family,
            "containerDefinitions": [{
                "name": "app", "image": "nginx:1.27", "cpu": 128, "memory": 128, "essential": true,
                "healthCheck": { "command": ["CMD-SHELL", "curl -f http://localhost/ || exit 1"] }
            }]
        }))
    }

    /// Creates a service from the JSON body of CreateService.
    pub fn create_service(&mut self, body: Value) -> api::Service {
        self.ok(ecs::create_service, req(body)).service
    }

    pub fn update_service(&mut self, body: Value) -> api::Service {
        self.ok(ecs::update_service, req(body)).service
    }

    // ---- the scheduler ----

    /// One scheduler pass; its commands are applied and returned.
    pub fn reconcile_once(&mut self) -> Vec<Command> {
        let mut ctx = Context {
            now: self.now,
            scope: &self.scope,
            ids: &mut self.ids,
            policy: &self.policy,
        };
        let commands = reconcile(&self.state, &mut ctx);
        self.apply(&commands);
        commands
    }

    /// Runs the scheduler until it has nothing more to do; returns every command it gave.
    /// Fails when it does not settle within `MAX_ROUNDS` passes.
    pub fn settle(&mut self) -> Vec<Command> {
        let mut all = Vec::new();
        for _ in 0..MAX_ROUNDS {
            let commands = self.reconcile_once();
            if commands.is_empty() {
                return all;
            }
            all.extend(commands);
        }
        let last = self.reconcile_once();
        panic!("the scheduler did not settle in {MAX_ROUNDS} rounds; it still says: {last:#?}");
    }

    // ---- the fake agent ----

    fn report(&mut self, reports: &[TaskReport]) -> Vec<Command> {
        let commands = apply_task_reports(&self.state, reports, self.now);
        self.apply(&commands);
        commands
    }

    /// Applies arbitrary reports (for tests of the report merge itself).
    pub fn send_reports(&mut self, reports: &[TaskReport]) -> Vec<Command> {
        self.report(reports)
    }

    /// Every not-yet-running task with desired RUNNING becomes RUNNING, started now; its
    /// containers run, the ones with a health check report `health`.
    pub fn agent_start_all(&mut self, health: HealthStatus) -> Vec<String> {
        let ids: Vec<String> = self
            .state
            .tasks
            .values()
            .filter(|t| t.desired_status == DesiredStatus::Running)
            .filter(|t| t.last_status < TaskStatus::Running)
            .map(|t| t.id.clone())
            .collect();
        let reports: Vec<TaskReport> = ids
            .iter()
            .map(|id| self.running_report(id, |_| health))
            .collect();
        self.report(&reports);
        ids
    }

    /// A RUNNING report for one task, the health of each checked container chosen by `health`.
    pub fn running_report(
        &self,
        task_id: &str,
        health: impl Fn(&str) -> HealthStatus,
    ) -> TaskReport {
        let task = self.task(task_id);
        let mut report = TaskReport::status(task_id, TaskStatus::Running);
        report.pull_started_at = Some(self.now);
        report.pull_stopped_at = Some(self.now);
        report.started_at = Some(self.now);
        report.containers = task
            .containers
            .iter()
            .map(|c| ContainerReport {
                name: c.name.clone(),
                runtime_id: Some(format!("docker-{}", c.id)),
                image_digest: None,
                last_status: ContainerStatus::Running,
                exit_code: None,
                reason: None,
                network_bindings: vec![],
                health_status: if c.has_health_check {
                    health(&c.name)
                } else {
                    HealthStatus::Unknown
                },
            })
            .collect();
        report
    }

    /// The health checks of a running task's containers now say `health`.
    pub fn agent_set_health(&mut self, task_id: &str, health: HealthStatus) -> Vec<Command> {
        let report = self.running_report(task_id, |_| health);
        self.report(&[report])
    }

    /// The task's first essential container exits with `exit_code`: the agent stops the task.
    pub fn agent_exit(&mut self, task_id: &str, exit_code: i64) -> Vec<Command> {
        let task = self.task(task_id);
        let essential = task
            .containers
            .iter()
            .find(|c| c.essential)
            .map(|c| c.name.clone())
            .expect("task has an essential container");
        let mut report = TaskReport::status(task_id, TaskStatus::Stopped);
        report.execution_stopped_at = Some(self.now);
        report.stop_code = Some(StopCode::EssentialContainerExited);
        report.stopped_reason = Some("Essential container in task exited".to_string());
        report.containers = task
            .containers
            .iter()
            .map(|c| ContainerReport {
                name: c.name.clone(),
                runtime_id: None,
                image_digest: None,
                last_status: ContainerStatus::Stopped,
                exit_code: Some(if c.name == essential { exit_code } else { 137 }),
                reason: None,
                network_bindings: vec![],
                health_status: c.health_status,
            })
            .collect();
        self.report(&[report])
    }

    /// Every task with desired STOPPED that is not STOPPED yet stops (exit 0 on SIGTERM).
    pub fn agent_stop_all(&mut self) -> Vec<String> {
        let tasks: Vec<Task> = self
            .state
            .tasks
            .values()
            .filter(|t| t.desired_status == DesiredStatus::Stopped && !t.is_stopped())
            .map(|t| Task::clone(t))
            .collect();
        let reports: Vec<TaskReport> = tasks
            .iter()
            .map(|task| {
                let mut report = TaskReport::status(&task.id, TaskStatus::Stopped);
                report.execution_stopped_at = Some(self.now);
                report.containers = task
                    .containers
                    .iter()
                    .map(|c| ContainerReport {
                        name: c.name.clone(),
                        runtime_id: None,
                        image_digest: None,
                        last_status: ContainerStatus::Stopped,
                        exit_code: Some(0),
                        reason: None,
                        network_bindings: vec![],
                        health_status: c.health_status,
                    })
                    .collect();
                report
            })
            .collect();
        self.report(&reports);
        tasks.into_iter().map(|t| t.id).collect()
    }

    // ---- looking at the world ----

    pub fn task(&self, id: &str) -> &Task {
        self.state
            .tasks
            .get(id)
            .unwrap_or_else(|| panic!("no task {id}"))
    }

    pub fn tasks_of(&self, service: &str) -> Vec<Task> {
        self.state
            .tasks_of_service(CLUSTER, service)
            .cloned()
            .collect()
    }

    /// Tasks wanted running and not yet stopped.
    pub fn live_tasks(&self, service: &str) -> Vec<Task> {
        self.tasks_of(service)
            .into_iter()
            .filter(Task::is_live)
            .collect()
    }

    /// RUNNING tasks that are wanted running and whose health checks (if any) pass.
    pub fn healthy_tasks(&self, service: &str) -> Vec<Task> {
        self.tasks_of(service)
            .into_iter()
            .filter(|t| t.desired_status == DesiredStatus::Running)
            .filter(|t| t.last_status == TaskStatus::Running)
            .filter(|t| match t.health_status {
                HealthStatus::Healthy => true,
                HealthStatus::Unhealthy => false,
                HealthStatus::Unknown => !t.has_health_checks(),
            })
            .collect()
    }

    pub fn model_service(&self, name: &str) -> &berth_core::model::Service {
        self.state
            .service(CLUSTER, name)
            .unwrap_or_else(|| panic!("no service {name}"))
    }

    /// The service as DescribeServices shows it.
    pub fn service(&self, name: &str) -> api::Service {
        present::service(&self.state, &self.scope, self.model_service(name))
    }

    /// The service's event messages, oldest first.
    pub fn events(&self, name: &str) -> Vec<String> {
        self.model_service(name)
            .events
            .iter()
            .rev()
            .map(|e| e.message.clone())
            .collect()
    }

    pub fn count_events(&self, name: &str, message: &str) -> usize {
        self.events(name)
            .iter()
            .filter(|m| m.as_str() == message)
            .count()
    }

    /// DescribeTasks' view of one task.
    pub fn describe_task(&self, id: &str) -> api::Task {
        present::task(&self.scope, self.task(id))
    }
}

/// The ServicesStable waiter's test for one service (botocore's waiters-2.json).
pub fn services_stable(service: &api::Service) -> bool {
    service.deployments.len() == 1 && service.running_count == service.desired_count
}
