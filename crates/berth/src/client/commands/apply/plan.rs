//! What `berth apply` will change, decided before the first change: one step per entry
//! of the file, in the order they are applied, each with the line apply prints for it.
//! `--dry-run` prints the steps; apply carries them out.

use std::collections::{BTreeSet, HashMap};

use anyhow::{bail, Context};
use berth_api::{
    ClusterResponse, CreateClusterRequest, CreateServiceRequest, RegisterTaskDefinitionRequest,
    Service, ServiceResponse, TaskDefinitionResponse,
};

use super::super::event_feed::EventFeed;
use super::super::rollout::{started_deployment, Watched};
use super::load_balancing::{ListenerSpec, LoadBalancerSpec, Resolved, TargetGroupSpec};
use super::{is_bare_family, service_update, task_definition_name, Applier};

/// Every step of an apply, and what the checks found on the server.
#[derive(Debug, Default)]
pub(super) struct Plan {
    pub steps: Vec<Step>,
    /// Load balancers and target groups that exist, by the name or ARN the file gives.
    pub references: Resolved,
    /// Task definition references (a family of the file, `family:revision`, an ARN)
    /// that exist, as ARNs.
    pub task_definitions: HashMap<String, String>,
    /// Target groups (as the file names them) a load balancer forwards to, or will.
    pub forwarded_target_groups: BTreeSet<String>,
    /// Clusters of the file that apply creates.
    pub new_clusters: BTreeSet<String>,
}

impl Plan {
    pub fn push(&mut self, label: &str, words: String, action: Action) {
        self.steps.push(Step {
            label: label.to_string(),
            words,
            action,
        });
    }
}

/// One entry of the file: the line apply prints, and the change (if any) behind it.
#[derive(Debug)]
pub(super) struct Step {
    /// The entry, as errors name it (`services[0] (service member)`).
    pub label: String,
    pub words: String,
    pub action: Action,
}

#[derive(Debug)]
pub(super) enum Action {
    /// The entry is as the file says.
    Nothing,
    CreateCluster(CreateClusterRequest),
    CreateLoadBalancer(LoadBalancerSpec),
    CreateTargetGroup(TargetGroupSpec),
    ModifyTargetGroup {
        arn: String,
        /// ModifyTargetGroup's parameters (none when only the delay differs).
        parameters: Vec<(String, String)>,
        deregistration_delay: Option<i64>,
    },
    CreateListener(ListenerSpec),
    RegisterTaskDefinition(RegisterTaskDefinitionRequest),
    /// The request as the file says it: target groups and task definition by reference.
    CreateService(CreateServiceRequest),
    UpdateService {
        wanted: CreateServiceRequest,
        current: Box<Service>,
    },
}

impl Applier<'_> {
    /// Carries out the steps in order, printing each step's line as it is done; returns
    /// the rollouts the steps started (a service created, or updated into a new
    /// deployment), for `--wait` to follow.
    pub(super) async fn execute(&self, plan: Plan) -> anyhow::Result<Vec<Watched>> {
        let Plan {
            steps,
            mut references,
            mut task_definitions,
            ..
        } = plan;
        let mut rollouts = Vec::new();
        for step in steps {
            let words = self
                .execute_step(
                    step.action,
                    &mut references,
                    &mut task_definitions,
                    &mut rollouts,
                )
                .await
                .with_context(|| format!("{}: {}", self.file_name, step.label))?;
            println!("{}", words.unwrap_or(step.words));
        }
        Ok(rollouts)
    }

    /// Does one step; returns the line to print when the result decides it (the
    /// revision registered, a service's changes against the real ARNs).
    async fn execute_step(
        &self,
        action: Action,
        references: &mut Resolved,
        task_definitions: &mut HashMap<String, String>,
        rollouts: &mut Vec<Watched>,
    ) -> anyhow::Result<Option<String>> {
        match action {
            Action::Nothing => Ok(None),
            Action::CreateCluster(request) => {
                let _: ClusterResponse = self.client.ecs("CreateCluster", &request).await?;
                Ok(None)
            }
            Action::CreateLoadBalancer(spec) => {
                let arn = self.create_load_balancer(&spec).await?;
                references.load_balancers.insert(spec.name, arn);
                Ok(None)
            }
            Action::CreateTargetGroup(spec) => {
                let arn = self.create_target_group(&spec).await?;
                references.target_groups.insert(spec.name, arn);
                Ok(None)
            }
            Action::ModifyTargetGroup {
                arn,
                parameters,
                deregistration_delay,
            } => {
                self.modify_target_group(&arn, parameters, deregistration_delay)
                    .await?;
                Ok(None)
            }
            Action::CreateListener(spec) => {
                let load_balancer_arn = references.load_balancer_arn(&spec.load_balancer);
                let target_group_arn = references.target_group_arn(&spec.target_group);
                self.create_listener(&spec, &load_balancer_arn, &target_group_arn)
                    .await?;
                Ok(None)
            }
            Action::RegisterTaskDefinition(request) => {
                let response: TaskDefinitionResponse =
                    self.client.ecs("RegisterTaskDefinition", &request).await?;
                let arn = response.task_definition.task_definition_arn;
                task_definitions.insert(request.family.clone(), arn.clone());
                Ok(Some(format!(
                    "task definition {} registered",
                    task_definition_name(&arn)
                )))
            }
            Action::CreateService(wanted) => {
                let mut request = self
                    .resolved_service(&wanted, references, task_definitions)
                    .await?;
                let cluster = self.cluster_of(&wanted);
                request.cluster = Some(cluster.clone());
                let created: ServiceResponse = self.client.ecs("CreateService", &request).await?;
                if let Some(id) = started_deployment(None, &created.service) {
                    // A new service: every event it has is news.
                    let feed = EventFeed::after(&Service::default());
                    rollouts.push(Watched::new(&cluster, &wanted.service_name, &id, feed));
                }
                Ok(None)
            }
            Action::UpdateService { wanted, current } => {
                let wanted = self
                    .resolved_service(&wanted, references, task_definitions)
                    .await?;
                let arn = wanted.task_definition.clone().unwrap_or_default();
                let name = &wanted.service_name;
                Ok(Some(match service_update(&wanted, &arn, &current) {
                    None => format!("service {name} unchanged"),
                    Some((update, changes)) => {
                        let updated: ServiceResponse =
                            self.client.ecs("UpdateService", &update).await?;
                        if let Some(id) = started_deployment(Some(&current), &updated.service) {
                            let cluster = self.cluster_of(&wanted);
                            let feed = EventFeed::after(&current);
                            rollouts.push(Watched::new(&cluster, name, &id, feed));
                        }
                        format!("service {name} updated ({})", changes.join(", "))
                    }
                }))
            }
        }
    }

    /// The service as the file says it, with its target groups and task definition as
    /// the ARNs they have now.
    async fn resolved_service(
        &self,
        wanted: &CreateServiceRequest,
        references: &Resolved,
        task_definitions: &HashMap<String, String>,
    ) -> anyhow::Result<CreateServiceRequest> {
        let mut request = wanted.clone();
        for load_balancer in &mut request.load_balancers {
            if let Some(reference) = load_balancer.target_group_arn.as_mut() {
                *reference = references.target_group_arn(reference);
            }
        }
        let reference = wanted.task_definition.clone().unwrap_or_default();
        let arn = match task_definitions.get(&reference) {
            Some(arn) => arn.clone(),
            // `family:revision` of a family of the file: known once it is registered.
            None if !is_bare_family(&reference) => {
                self.describe_task_definition(&reference)
                    .await?
                    .task_definition_arn
            }
            None => bail!("task definition '{reference}' not found"),
        };
        request.task_definition = Some(arn);
        Ok(request)
    }
}
