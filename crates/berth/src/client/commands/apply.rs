//! `berth apply -f FILE`: makes clusters, load balancers, target groups, listeners, task
//! definitions and services match a file of ECS request bodies (and ELBv2 entries, in
//! `load_balancing`). First the whole file is parsed and checked, then everything it
//! names is read from berth and every step decided (`plan`), refusing what would fail
//! or take over what the file does not own; only then are the steps applied in that
//! order, each only when it differs from what berth already has.

mod load_balancing;
mod plan;
mod strict;

use std::collections::{BTreeSet, HashMap};
use std::io::Read;
use std::path::Path;

use anyhow::{anyhow, bail, Context};
use berth_api::{
    CreateClusterRequest, CreateServiceRequest, DeploymentConfiguration, DescribeClustersRequest,
    DescribeClustersResponse, ListTaskDefinitionsRequest, ListTaskDefinitionsResponse,
    LoadBalancer, RegisterTaskDefinitionRequest, Service, TaskDefinition, UpdateServiceRequest,
};
use berth_core::model::{ClusterStatus, ServiceStatus, TaskDefinitionStatus};
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use super::{find_service, rollout, task_definition_name};
use crate::client::{ApiClient, Endpoint};
use plan::{Action, Plan};

/// One thing of the file, with the words that point the user at it in messages.
#[derive(Debug)]
pub(super) struct Entry<T> {
    /// `taskDefinitions[1] (family member)`.
    pub(super) label: String,
    pub(super) body: T,
}

/// What the file asks for.
#[derive(Debug, Default)]
pub(super) struct Manifest {
    pub(super) cluster: Option<String>,
    pub(super) clusters: Vec<Entry<CreateClusterRequest>>,
    pub(super) task_definitions: Vec<Entry<RegisterTaskDefinitionRequest>>,
    pub(super) services: Vec<Entry<CreateServiceRequest>>,
    pub(super) load_balancers: Vec<Entry<load_balancing::LoadBalancerSpec>>,
    pub(super) target_groups: Vec<Entry<load_balancing::TargetGroupSpec>>,
    pub(super) listeners: Vec<Entry<load_balancing::ListenerSpec>>,
}

const MANIFEST_KEYS: [&str; 7] = [
    "cluster",
    "clusters",
    "loadBalancers",
    "targetGroups",
    "listeners",
    "taskDefinitions",
    "services",
];

/// Applies the file; with `dry_run`, prints what apply would do and changes nothing.
/// With `wait`, then follows the rollout of every service it created or gave a new
/// deployment, until all are COMPLETED (an error when one FAILED).
pub async fn run(
    endpoint: &Endpoint,
    file: &Path,
    dry_run: bool,
    wait: bool,
) -> anyhow::Result<()> {
    let (manifest, file_name) = load(file)?;
    let client = ApiClient::from_flags(endpoint)?;
    let default_cluster = manifest
        .cluster
        .clone()
        .unwrap_or_else(|| client.cluster.clone());
    let applier = Applier {
        client: &client,
        default_cluster,
        file_name,
    };
    let plan = applier.plan(&manifest).await?;
    if dry_run {
        for step in &plan.steps {
            println!("{}", step.words);
        }
        eprintln!("dry run: nothing was changed");
        return Ok(());
    }
    let rollouts = applier.execute(plan).await?;
    if wait {
        rollout::follow_all(&client, rollouts).await?;
    }
    Ok(())
}

/// Reads, parses and checks the file (`-`: standard input); also the name messages give it.
pub(super) fn load(file: &Path) -> anyhow::Result<(Manifest, String)> {
    let file_name = if file.as_os_str() == "-" {
        "<stdin>".to_string()
    } else {
        file.display().to_string()
    };
    let text = read_file(file).with_context(|| format!("cannot read {file_name}"))?;
    let manifest = parse_manifest(&text)
        .and_then(|m| validate(&m).map(|()| m))
        .context(file_name.clone())?;
    Ok((manifest, file_name))
}

fn read_file(file: &Path) -> std::io::Result<String> {
    if file.as_os_str() == "-" {
        let mut text = String::new();
        std::io::stdin().read_to_string(&mut text)?;
        Ok(text)
    } else {
        std::fs::read_to_string(file)
    }
}

// ---- parsing (pure) ----

/// Parses YAML or JSON (YAML is a superset) holding a manifest, one
/// RegisterTaskDefinition body (also `describe-task-definition`'s output), or one
/// CreateService body.
pub(super) fn parse_manifest(text: &str) -> anyhow::Result<Manifest> {
    let value: Value =
        serde_yaml::from_str(text).map_err(|e| anyhow!("not valid YAML or JSON: {e}"))?;
    let Value::Object(mut top) = value else {
        bail!(
            "expected a mapping with taskDefinitions and services, a task definition or a service"
        );
    };
    // `aws ecs describe-task-definition` wraps the definition.
    if !top.contains_key("serviceName")
        && matches!(top.get("taskDefinition"), Some(Value::Object(_)))
    {
        if let Some(Value::Object(inner)) = top.remove("taskDefinition") {
            top = inner;
        }
    }
    let mut manifest = Manifest::default();
    if top.contains_key("containerDefinitions") {
        let label = format!("task definition (family {})", string_field(&top, "family"));
        manifest
            .task_definitions
            .push(entry(label, Value::Object(top))?);
        return Ok(manifest);
    }
    if top.contains_key("serviceName") {
        let label = format!("service {}", string_field(&top, "serviceName"));
        let mut item = Value::Object(top);
        load_balancing::fold_target_group_names(&mut item).context(label.clone())?;
        manifest.services.push(entry(label, item)?);
        return Ok(manifest);
    }
    if let Some(key) = top.keys().find(|k| !MANIFEST_KEYS.contains(&k.as_str())) {
        bail!(
            "unknown key '{key}' (expected {}, or a single task definition or service)",
            MANIFEST_KEYS.join(", ")
        );
    }
    manifest.cluster = match top.remove("cluster") {
        None | Some(Value::Null) => None,
        Some(Value::String(name)) => Some(name),
        Some(other) => bail!("cluster: expected a cluster name, found {other}"),
    };
    for (index, item) in list(&mut top, "clusters")?.into_iter().enumerate() {
        // A bare name is as good as `{clusterName: NAME}`.
        let item = match item {
            Value::String(name) => serde_json::json!({ "clusterName": name }),
            other => other,
        };
        let label = format!(
            "clusters[{index}] (cluster {})",
            object_string(&item, "clusterName")
        );
        manifest.clusters.push(entry(label, item)?);
    }
    for (index, item) in list(&mut top, "taskDefinitions")?.into_iter().enumerate() {
        let label = format!(
            "taskDefinitions[{index}] (family {})",
            object_string(&item, "family")
        );
        manifest.task_definitions.push(entry(label, item)?);
    }
    load_balancing::parse(&mut top, &mut manifest)?;
    for (index, mut item) in list(&mut top, "services")?.into_iter().enumerate() {
        let label = format!(
            "services[{index}] (service {})",
            object_string(&item, "serviceName")
        );
        load_balancing::fold_target_group_names(&mut item).context(label.clone())?;
        manifest.services.push(entry(label, item)?);
    }
    Ok(manifest)
}

fn list(top: &mut Map<String, Value>, key: &str) -> anyhow::Result<Vec<Value>> {
    match top.remove(key) {
        None | Some(Value::Null) => Ok(vec![]),
        Some(Value::Array(items)) => Ok(items),
        Some(other) => bail!("{key}: expected a list, found {}", kind(&other)),
    }
}

fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "a mapping",
    }
}

fn string_field(object: &Map<String, Value>, key: &str) -> String {
    object
        .get(key)
        .and_then(Value::as_str)
        .unwrap_or("?")
        .to_string()
}

fn object_string(value: &Value, key: &str) -> String {
    value
        .as_object()
        .map(|o| string_field(o, key))
        .unwrap_or_else(|| "?".to_string())
}

/// Reads one entry into its request type, refusing keys it does not know; the error
/// names the field at fault.
fn entry<T: DeserializeOwned>(label: String, value: Value) -> anyhow::Result<Entry<T>> {
    match strict::deserialize::<T>(value) {
        Ok(body) => Ok(Entry { label, body }),
        Err((path, message)) if path == "." => bail!("{label}: {message}"),
        Err((path, message)) => bail!("{label}: {path}: {message}"),
    }
}

// ---- checks before any change (pure) ----

fn validate(manifest: &Manifest) -> anyhow::Result<()> {
    if manifest.clusters.is_empty()
        && manifest.task_definitions.is_empty()
        && manifest.services.is_empty()
        && manifest.load_balancers.is_empty()
        && manifest.target_groups.is_empty()
        && manifest.listeners.is_empty()
    {
        bail!("the file declares nothing: it has no clusters, loadBalancers, targetGroups, listeners, taskDefinitions or services");
    }
    for cluster in &manifest.clusters {
        match cluster.body.cluster_name.as_deref() {
            Some(name) => berth_core::ecs::check_name("clusterName", name)
                .map_err(|e| anyhow!("{}: {}", cluster.label, e.message))?,
            None => bail!("{}: clusterName is missing", cluster.label),
        }
    }
    let mut families = BTreeSet::new();
    for definition in &manifest.task_definitions {
        berth_core::validate_task_definition(&definition.body)
            .map_err(|e| anyhow!("{}: {e}", definition.label))?;
        if !families.insert(definition.body.family.as_str()) {
            bail!(
                "{}: family '{}' appears twice in the file",
                definition.label,
                definition.body.family
            );
        }
    }
    let mut services = BTreeSet::new();
    for service in &manifest.services {
        let body = &service.body;
        let core_rule = |e: berth_core::EcsError| anyhow!("{}: {}", service.label, e.message);
        berth_core::ecs::check_name("serviceName", &body.service_name).map_err(core_rule)?;
        if body
            .task_definition
            .as_deref()
            .unwrap_or_default()
            .is_empty()
        {
            bail!("{}: taskDefinition is missing", service.label);
        }
        if let Some(count) = body.desired_count {
            berth_core::ecs::check_desired_count(count).map_err(core_rule)?;
        }
        if let Some(configuration) = &body.deployment_configuration {
            berth_core::ecs::check_deployment_configuration(configuration).map_err(core_rule)?;
        }
        if !services.insert((body.cluster.clone(), body.service_name.as_str())) {
            bail!(
                "{}: service '{}' appears twice in the file",
                service.label,
                body.service_name
            );
        }
    }
    load_balancing::validate(manifest)
}

/// The family a task definition reference names: `member`, `member:3` or an ARN.
pub(super) fn family_of(reference: &str) -> &str {
    let name = reference.rsplit('/').next().unwrap_or(reference);
    name.split(':').next().unwrap_or(name)
}

fn is_bare_family(reference: &str) -> bool {
    !reference.contains(':') && !reference.contains('/')
}

// ---- comparing with what berth has (pure) ----

/// The shape of a task definition as the user would write it, with the defaults ECS
/// echoes on describe (`cpu: 0`, `essential: true`, `protocol: tcp`, empty lists,
/// `networkMode: bridge`) taken out, so a file and its registered revision compare equal.
pub(super) fn comparable_task_definition(request: &RegisterTaskDefinitionRequest) -> Value {
    let mut request = request.clone();
    request.tags.clear(); // tags are not part of a revision's describe output
    if request.network_mode.as_deref() == Some("bridge") {
        request.network_mode = None;
    }
    let network_mode = request.network_mode.clone().unwrap_or_default();
    for container in &mut request.container_definitions {
        if container.cpu == Some(0) {
            container.cpu = None;
        }
        if container.essential == Some(true) {
            container.essential = None;
        }
        for mapping in container.port_mappings.iter_mut().flatten() {
            if mapping.protocol.as_deref() == Some("tcp") {
                mapping.protocol = None;
            }
            if matches!(network_mode.as_str(), "host" | "awsvpc")
                && mapping.host_port == mapping.container_port
            {
                mapping.host_port = None;
            }
        }
    }
    let mut value = serde_json::to_value(&request).unwrap_or(Value::Null);
    drop_empty(&mut value);
    value
}

/// A registered revision, read back as the request that would register it (every
/// field kept; `berth deploy` registers its next revision from it).
pub(super) fn registered_as_request(
    registered: &TaskDefinition,
) -> anyhow::Result<RegisterTaskDefinitionRequest> {
    // The request type ignores what only a registered revision has (arn, revision, status...).
    serde_json::to_value(registered)
        .and_then(serde_json::from_value)
        .with_context(|| {
            format!(
                "cannot read task definition {} back as a RegisterTaskDefinition request",
                task_definition_name(&registered.task_definition_arn)
            )
        })
}

fn drop_empty(value: &mut Value) {
    match value {
        Value::Object(map) => {
            map.values_mut().for_each(drop_empty);
            map.retain(|_, v| !is_empty(v));
        }
        Value::Array(items) => items.iter_mut().for_each(drop_empty),
        _ => {}
    }
}

fn is_empty(value: &Value) -> bool {
    match value {
        Value::Null => true,
        Value::Array(items) => items.is_empty(),
        Value::Object(map) => map.is_empty(),
        _ => false,
    }
}

/// The UpdateService call that makes `current` what the file asks for, and the words
/// for each change; `None` when nothing differs.
pub(super) fn service_update(
    wanted: &CreateServiceRequest,
    task_definition_arn: &str,
    current: &Service,
) -> Option<(UpdateServiceRequest, Vec<String>)> {
    let mut update = UpdateServiceRequest {
        cluster: Some(current.cluster_arn.clone()),
        service: current.service_name.clone(),
        ..Default::default()
    };
    let mut changes = Vec::new();
    if task_definition_arn != current.task_definition {
        changes.push(format!(
            "taskDefinition {} -> {}",
            task_definition_name(&current.task_definition),
            task_definition_name(task_definition_arn)
        ));
        update.task_definition = Some(task_definition_arn.to_string());
    }
    if let Some(count) = wanted
        .desired_count
        .filter(|count| *count != current.desired_count)
    {
        changes.push(format!("desiredCount {} -> {count}", current.desired_count));
        update.desired_count = Some(count);
    }
    if let Some(configuration) = &wanted.deployment_configuration {
        if comparable_deployment(configuration)
            != comparable_deployment(&current.deployment_configuration)
        {
            changes.push("deploymentConfiguration".to_string());
            update.deployment_configuration = Some(configuration.clone());
        }
    }
    let grace = wanted.health_check_grace_period_seconds.unwrap_or(0);
    if grace != current.health_check_grace_period_seconds.unwrap_or(0) {
        changes.push(format!(
            "healthCheckGracePeriodSeconds {} -> {grace}",
            current.health_check_grace_period_seconds.unwrap_or(0)
        ));
        update.health_check_grace_period_seconds = Some(grace);
    }
    if wanted.placement_constraints != current.placement_constraints {
        changes.push("placementConstraints".to_string());
        update.placement_constraints = Some(wanted.placement_constraints.clone());
    }
    if wanted.placement_strategy != current.placement_strategy {
        changes.push("placementStrategy".to_string());
        update.placement_strategy = Some(wanted.placement_strategy.clone());
    }
    if comparable_load_balancers(&wanted.load_balancers)
        != comparable_load_balancers(&current.load_balancers)
    {
        changes.push("loadBalancers".to_string());
        update.load_balancers = Some(wanted.load_balancers.clone());
    }
    (!changes.is_empty()).then_some((update, changes))
}

/// A service's target groups as a set (order does not matter to ECS).
fn comparable_load_balancers(load_balancers: &[LoadBalancer]) -> BTreeSet<(String, String, i64)> {
    load_balancers
        .iter()
        .map(|lb| {
            (
                lb.target_group_arn.clone().unwrap_or_default(),
                lb.container_name.clone().unwrap_or_default(),
                lb.container_port.unwrap_or_default(),
            )
        })
        .collect()
}

/// ECS's defaults filled in (200 / 100, breaker off), so leaving a field out and
/// writing its default compare equal.
fn comparable_deployment(configuration: &DeploymentConfiguration) -> DeploymentConfiguration {
    let mut shown = configuration.clone();
    shown.maximum_percent.get_or_insert(200);
    shown.minimum_healthy_percent.get_or_insert(100);
    if shown
        .deployment_circuit_breaker
        .as_ref()
        .is_some_and(|b| !b.enable && !b.rollback)
    {
        shown.deployment_circuit_breaker = None;
    }
    shown
}

// ---- planning: every check and every read, before any change ----

struct Applier<'a> {
    client: &'a ApiClient,
    /// The file's `cluster`, else `--cluster`, else `default`.
    default_cluster: String,
    file_name: String,
}

/// A task definition a service of the file may run: how messages name it, and its
/// containers.
struct Runnable {
    name: String,
    containers: Vec<berth_api::ContainerDefinition>,
}

impl Applier<'_> {
    /// Reads what berth has and decides every step. Whatever would fail, and whatever
    /// would take over something the file does not own, is refused here, before the
    /// first change.
    async fn plan(&self, manifest: &Manifest) -> anyhow::Result<Plan> {
        let mut plan = Plan::default();
        for cluster in &manifest.clusters {
            let name = cluster.body.cluster_name.clone().unwrap_or_default();
            if self.cluster_exists(&name).await? {
                plan.push(
                    &cluster.label,
                    format!("cluster {name} unchanged"),
                    Action::Nothing,
                );
            } else {
                plan.new_clusters.insert(name.clone());
                plan.push(
                    &cluster.label,
                    format!("cluster {name} created"),
                    Action::CreateCluster(cluster.body.clone()),
                );
            }
        }
        let created: BTreeSet<&str> = manifest
            .clusters
            .iter()
            .filter_map(|c| c.body.cluster_name.as_deref())
            .collect();
        let mut checked = BTreeSet::new();
        for service in &manifest.services {
            let cluster = self.cluster_of(&service.body);
            if !created.contains(cluster.as_str())
                && checked.insert(cluster.clone())
                && !self.cluster_exists(&cluster).await?
            {
                bail!(
                    "{}: {}: cluster '{cluster}' not found (list it under clusters: to create it)",
                    self.file_name,
                    service.label
                );
            }
        }

        self.plan_load_balancing(manifest, &mut plan).await?;

        // What each service may run, by the references a service may give: the family
        // and `family:revision` of each task definition of the file.
        let mut runnable: HashMap<String, Runnable> = HashMap::new();
        for definition in &manifest.task_definitions {
            let body = &definition.body;
            let (name, existing) = self
                .plan_task_definition(body)
                .await
                .with_context(|| format!("{}: {}", self.file_name, definition.label))?;
            match existing {
                Some(arn) => {
                    plan.task_definitions.insert(body.family.clone(), arn);
                    plan.push(
                        &definition.label,
                        format!("task definition {name} unchanged"),
                        Action::Nothing,
                    );
                }
                None => plan.push(
                    &definition.label,
                    format!("task definition {name} registered"),
                    Action::RegisterTaskDefinition(body.clone()),
                ),
            }
            for reference in [body.family.clone(), name.clone()] {
                runnable.insert(
                    reference,
                    Runnable {
                        name: name.clone(),
                        containers: body.container_definitions.clone(),
                    },
                );
            }
        }
        for service in &manifest.services {
            self.plan_service(service, &runnable, &mut plan)
                .await
                .with_context(|| format!("{}: {}", self.file_name, service.label))?;
        }
        Ok(plan)
    }

    fn cluster_of(&self, service: &CreateServiceRequest) -> String {
        service
            .cluster
            .clone()
            .unwrap_or_else(|| self.default_cluster.clone())
    }

    async fn cluster_exists(&self, cluster: &str) -> anyhow::Result<bool> {
        let request = DescribeClustersRequest {
            clusters: Some(vec![cluster.to_string()]),
            include: vec![],
        };
        let response: DescribeClustersResponse =
            self.client.ecs("DescribeClusters", &request).await?;
        Ok(response
            .clusters
            .iter()
            .any(|c| ClusterStatus::from_ecs(&c.status) == Some(ClusterStatus::Active)))
    }

    async fn describe_task_definition(&self, reference: &str) -> anyhow::Result<TaskDefinition> {
        super::describe_task_definition(self.client, reference).await
    }

    /// The family's highest revision and its ARN, among those of `status` (every
    /// revision berth keeps when `None`).
    async fn highest_revision(
        &self,
        family: &str,
        status: Option<TaskDefinitionStatus>,
    ) -> anyhow::Result<Option<(i64, String)>> {
        let mut highest: Option<(i64, String)> = None;
        let mut next_token = None;
        loop {
            let request = ListTaskDefinitionsRequest {
                family_prefix: Some(family.to_string()),
                status: status.map(|s| s.as_ecs().to_string()),
                next_token: next_token.take(),
                ..Default::default()
            };
            let response: ListTaskDefinitionsResponse =
                self.client.ecs("ListTaskDefinitions", &request).await?;
            for arn in response.task_definition_arns {
                // familyPrefix may match longer families: keep this family's revisions only.
                let Some((arn_family, revision)) = task_definition_name(&arn).split_once(':')
                else {
                    continue;
                };
                let Ok(revision) = revision.parse::<i64>() else {
                    continue;
                };
                if arn_family == family && highest.as_ref().is_none_or(|(best, _)| revision > *best)
                {
                    highest = Some((revision, arn));
                }
            }
            match response.next_token {
                Some(token) if !token.is_empty() => next_token = Some(token),
                _ => return Ok(highest),
            }
        }
    }

    /// `family:revision` of the definition once applied, and the ARN of its latest
    /// revision when that already says the same (else it is registered anew, as the
    /// family's next revision).
    async fn plan_task_definition(
        &self,
        wanted: &RegisterTaskDefinitionRequest,
    ) -> anyhow::Result<(String, Option<String>)> {
        let family = &wanted.family;
        let active = Some(TaskDefinitionStatus::Active);
        if let Some((_, arn)) = self.highest_revision(family, active).await? {
            let current = self.describe_task_definition(&arn).await?;
            if comparable_task_definition(&registered_as_request(&current)?)
                == comparable_task_definition(wanted)
            {
                let name = task_definition_name(&current.task_definition_arn).to_string();
                return Ok((name, Some(current.task_definition_arn)));
            }
        }
        let next = self
            .highest_revision(family, None)
            .await?
            .map_or(1, |(revision, _)| revision + 1);
        Ok((format!("{family}:{next}"), None))
    }

    /// The service's step, after checking what it names: its task definition (of the
    /// file or berth's), the containers and ports its load balancers name in it, and
    /// that each of its target groups is forwarded to by a load balancer.
    async fn plan_service(
        &self,
        service: &Entry<CreateServiceRequest>,
        runnable: &HashMap<String, Runnable>,
        plan: &mut Plan,
    ) -> anyhow::Result<()> {
        let wanted = &service.body;
        let reference = wanted.task_definition.clone().unwrap_or_default();
        let (definition, task_definition_arn) = match runnable.get(&reference) {
            Some(definition) => {
                // Compared by name: the ARN of a revision still to register is not known.
                let arn = plan
                    .task_definitions
                    .get(family_of(&reference))
                    .cloned()
                    .unwrap_or_else(|| definition.name.clone());
                (
                    Runnable {
                        name: definition.name.clone(),
                        containers: definition.containers.clone(),
                    },
                    arn,
                )
            }
            None => {
                let current = self
                    .describe_task_definition(&reference)
                    .await
                    .map_err(|e| anyhow!("task definition '{reference}' not found: {e:#}"))?;
                plan.task_definitions
                    .insert(reference.clone(), current.task_definition_arn.clone());
                (
                    Runnable {
                        name: task_definition_name(&current.task_definition_arn).to_string(),
                        containers: current.container_definitions,
                    },
                    current.task_definition_arn,
                )
            }
        };
        for (index, load_balancer) in wanted.load_balancers.iter().enumerate() {
            berth_core::ecs::check_load_balancer_container(
                index,
                load_balancer,
                &definition.containers,
                &definition.name,
            )
            .map_err(|e| anyhow!(e.message))?;
            let target_group = load_balancer
                .target_group_arn
                .as_deref()
                .unwrap_or_default();
            if !plan.forwarded_target_groups.contains(target_group) {
                bail!(
                    "loadBalancers[{index}]: no load balancer forwards to target group '{target_group}' (add a listener for it under listeners:)"
                );
            }
        }
        let mut resolved = wanted.clone();
        for load_balancer in &mut resolved.load_balancers {
            if let Some(reference) = load_balancer.target_group_arn.as_mut() {
                *reference = plan.references.target_group_arn(reference);
            }
        }
        let cluster = self.cluster_of(wanted);
        let name = &wanted.service_name;
        let current = if plan.new_clusters.contains(&cluster) {
            None // a cluster still to create has no services
        } else {
            find_service(self.client, &cluster, name).await?
        };
        let (words, action) = match current {
            None => (
                format!("service {name} created"),
                Action::CreateService(wanted.clone()),
            ),
            Some(current)
                if ServiceStatus::from_ecs(&current.status) == Some(ServiceStatus::Draining) =>
            {
                bail!("service '{name}' is being deleted (DRAINING); apply again once it is gone")
            }
            Some(current) => match service_update(&resolved, &task_definition_arn, &current) {
                None => (format!("service {name} unchanged"), Action::Nothing),
                Some((_, changes)) => (
                    format!("service {name} updated ({})", changes.join(", ")),
                    Action::UpdateService {
                        wanted: wanted.clone(),
                        current: Box::new(current),
                    },
                ),
            },
        };
        plan.push(&service.label, words, action);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_example_reads_strictly_and_a_typo_in_it_is_named() {
        let example = include_str!("../../../../../examples/our-project.yaml");
        let manifest = parse_manifest(example).unwrap();
        assert!(!manifest.services.is_empty());
        validate(&manifest).unwrap();
        let typo = example.replacen("desiredCount:", "desiredCont:", 1);
        assert_ne!(typo, example, "the example sets a desiredCount");
        let error = parse_manifest(&typo).unwrap_err().to_string();
        assert!(
            error.contains(
                "desiredCont: unknown field `desiredCont` (did you mean `desiredCount`?)"
            ),
            "{error}"
        );
    }

    const MANIFEST: &str = r#"
cluster: our-project
clusters: [ {clusterName: our-project}, other ]
taskDefinitions:
  - family: member
    containerDefinitions:
      - name: web
        image: member:latest
        memory: 128
        portMappings: [ {containerPort: 8080} ]
services:
  - serviceName: member
    taskDefinition: member
    desiredCount: 3
"#;

    fn error_of(text: &str) -> String {
        match parse_manifest(text).and_then(|m| validate(&m)) {
            Ok(()) => panic!("expected an error for {text}"),
            Err(error) => format!("{error:#}"),
        }
    }

    #[test]
    fn a_manifest_is_read_in_full() {
        let manifest = parse_manifest(MANIFEST).unwrap();
        validate(&manifest).unwrap();
        assert_eq!(manifest.cluster.as_deref(), Some("our-project"));
        assert_eq!(manifest.clusters.len(), 2);
        assert_eq!(
            manifest.clusters[1].body.cluster_name.as_deref(),
            Some("other")
        );
        assert_eq!(
            manifest.task_definitions[0].label,
            "taskDefinitions[0] (family member)"
        );
        assert_eq!(
            manifest.task_definitions[0].body.container_definitions[0].memory,
            Some(128)
        );
        assert_eq!(manifest.services[0].body.desired_count, Some(3));
        assert_eq!(manifest.services[0].label, "services[0] (service member)");
    }

    #[test]
    fn json_and_single_bodies_are_accepted() {
        let definition = r#"{"family": "member", "containerDefinitions": [{"name": "web", "image": "x", "memory": 64}]}"#;
        let manifest = parse_manifest(definition).unwrap();
        assert_eq!(manifest.task_definitions.len(), 1);
        assert_eq!(
            manifest.task_definitions[0].label,
            "task definition (family member)"
        );

        let described = format!(r#"{{"taskDefinition": {definition}, "tags": []}}"#);
        assert_eq!(
            parse_manifest(&described).unwrap().task_definitions[0]
                .body
                .family,
            "member"
        );

        let service = "serviceName: member\ntaskDefinition: member:2\ndesiredCount: 1\n";
        let manifest = parse_manifest(service).unwrap();
        assert_eq!(
            manifest.services[0].body.task_definition.as_deref(),
            Some("member:2")
        );
        assert!(manifest.task_definitions.is_empty());
    }

    #[test]
    fn a_wrong_field_is_named_with_its_entry() {
        let text = r#"
taskDefinitions:
  - family: ok
    containerDefinitions: [ {name: a, image: a, memory: 64} ]
  - family: member
    containerDefinitions:
      - name: web
        image: x
        memory: lots
"#;
        let message = error_of(text);
        assert!(
            message.starts_with(
                "taskDefinitions[1] (family member): containerDefinitions[0].memory: invalid type"
            ),
            "{message}"
        );
    }

    #[test]
    fn bad_files_are_refused_before_any_change() {
        assert!(error_of("services: {serviceName: x}")
            .contains("services: expected a list, found a mapping"));
        assert!(error_of("servics: []").contains("unknown key 'servics'"));
        assert!(error_of("[1, 2]").contains("expected a mapping"));
        assert!(error_of("a: [").contains("not valid YAML or JSON"));
        assert!(error_of("cluster: x").contains("the file declares nothing: it has no clusters"));
        let no_image = "taskDefinitions: [ {family: member, containerDefinitions: [ {name: web, memory: 64} ]} ]";
        assert!(
            error_of(no_image).starts_with("taskDefinitions[0] (family member): "),
            "{}",
            error_of(no_image)
        );
        // A file's definition is a RegisterTaskDefinition body: no memory is made up.
        let no_memory = "taskDefinitions: [ {family: member, containerDefinitions: [ {name: web, image: x} ]} ]";
        assert_eq!(
            error_of(no_memory),
            "taskDefinitions[0] (family member): Invalid setting for container 'web'. At least one of 'memory' or 'memoryReservation' must be specified."
        );
        let no_task_definition = "services: [ {serviceName: member} ]";
        assert_eq!(
            error_of(no_task_definition),
            "services[0] (service member): taskDefinition is missing"
        );
        let twice = "services: [ {serviceName: a, taskDefinition: a}, {serviceName: a, taskDefinition: b} ]";
        assert!(error_of(twice).contains("appears twice"));
        assert!(error_of("clusters: [ 'bad name' ]").contains("clusterName 'bad name'"));
    }

    #[test]
    fn echoed_defaults_do_not_count_as_changes() {
        let written: RegisterTaskDefinitionRequest = serde_json::from_value(serde_json::json!({
            "family": "member",
            "containerDefinitions": [{"name": "web", "image": "x", "memory": 64,
                "portMappings": [{"containerPort": 80}]}],
            "tags": [{"key": "team", "value": "a"}]
        }))
        .unwrap();
        let registered: TaskDefinition = serde_json::from_value(serde_json::json!({
            "taskDefinitionArn": "arn:aws:ecs:us-east-1:0:task-definition/member:2",
            "family": "member", "revision": 2, "status": "ACTIVE", "networkMode": "bridge",
            "containerDefinitions": [{"name": "web", "image": "x", "memory": 64, "cpu": 0,
                "essential": true, "environment": [], "mountPoints": [], "volumesFrom": [],
                "portMappings": [{"containerPort": 80, "protocol": "tcp"}]}],
            "volumes": [], "requiresAttributes": [], "placementConstraints": [],
            "compatibilities": ["EC2"], "registeredAt": 1709242525.051
        }))
        .unwrap();
        let current = comparable_task_definition(&registered_as_request(&registered).unwrap());
        assert_eq!(current, comparable_task_definition(&written));

        let mut changed = written.clone();
        changed.container_definitions[0].image = Some("y".to_string());
        assert_ne!(current, comparable_task_definition(&changed));
        let mut changed = written;
        changed.container_definitions[0].essential = Some(false);
        assert_ne!(current, comparable_task_definition(&changed));
    }

    fn current_service() -> Service {
        Service {
            service_name: "member".to_string(),
            cluster_arn: "arn:aws:ecs:us-east-1:0:cluster/our-project".to_string(),
            status: "ACTIVE".to_string(),
            desired_count: 2,
            task_definition: "arn:aws:ecs:us-east-1:0:task-definition/member:2".to_string(),
            deployment_configuration: DeploymentConfiguration {
                maximum_percent: Some(200),
                minimum_healthy_percent: Some(100),
                ..Default::default()
            },
            ..Default::default()
        }
    }

    #[test]
    fn a_service_is_updated_only_where_it_differs() {
        let current = current_service();
        let same = CreateServiceRequest {
            service_name: "member".to_string(),
            desired_count: Some(2),
            ..Default::default()
        };
        assert!(service_update(&same, &current.task_definition, &current).is_none());

        let wanted = CreateServiceRequest {
            desired_count: Some(3),
            ..same.clone()
        };
        let (update, changes) = service_update(
            &wanted,
            "arn:aws:ecs:us-east-1:0:task-definition/member:3",
            &current,
        )
        .unwrap();
        assert_eq!(
            changes,
            ["taskDefinition member:2 -> member:3", "desiredCount 2 -> 3"]
        );
        assert_eq!(update.desired_count, Some(3));
        assert_eq!(
            update.task_definition.as_deref(),
            Some("arn:aws:ecs:us-east-1:0:task-definition/member:3")
        );
        assert_eq!(update.service, "member");
        assert!(update.deployment_configuration.is_none());

        let explicit_defaults = CreateServiceRequest {
            deployment_configuration: Some(DeploymentConfiguration {
                deployment_circuit_breaker: Some(berth_api::DeploymentCircuitBreaker {
                    enable: false,
                    rollback: false,
                }),
                ..Default::default()
            }),
            health_check_grace_period_seconds: Some(0),
            ..same.clone()
        };
        assert!(service_update(&explicit_defaults, &current.task_definition, &current).is_none());

        let spread = CreateServiceRequest {
            placement_strategy: vec![berth_api::PlacementStrategy {
                strategy_type: Some("spread".to_string()),
                field: Some("instanceId".to_string()),
            }],
            ..same
        };
        let (_, changes) = service_update(&spread, &current.task_definition, &current).unwrap();
        assert_eq!(changes, ["placementStrategy"]);
    }

    #[test]
    fn load_balancing_entries_are_read_and_checked() {
        let text = r#"
loadBalancers: [our-project]
targetGroups:
  - {Name: member, Protocol: HTTP, Port: 80, HealthCheckPath: /}
listeners:
  - {loadBalancer: our-project, port: 8000, targetGroup: member}
services:
  - serviceName: member
    taskDefinition: member
    loadBalancers: [{targetGroup: member, containerName: nginx, containerPort: 80}]
"#;
        let manifest = parse_manifest(text).unwrap();
        validate(&manifest).unwrap();
        assert_eq!(
            manifest.load_balancers[0].label,
            "loadBalancers[0] (load balancer our-project)"
        );
        assert_eq!(
            manifest.target_groups[0].label,
            "targetGroups[0] (target group member)"
        );
        assert_eq!(
            manifest.listeners[0].label,
            "listeners[0] (listener our-project:8000)"
        );
        assert_eq!(
            manifest.services[0].body.load_balancers[0]
                .target_group_arn
                .as_deref(),
            Some("member")
        );

        let typo = text.replace("HealthCheckPath", "HealthCheckPth");
        assert!(error_of(&typo).starts_with(
            "targetGroups[0] (target group member): healthCheckPth: unknown field `healthCheckPth`"
        ));
        let same_port = text.replace(
            "listeners:\n",
            "listeners:\n  - {loadBalancer: other, port: 8000, targetGroup: board}\n",
        );
        assert!(error_of(&same_port).contains("port 8000 is already taken"));
        let no_port = text.replace(", containerPort: 80", "");
        assert_eq!(
            error_of(&no_port),
            "services[0] (service member): loadBalancers[0]: containerPort is missing"
        );
        let bad_name = text.replace("[our-project]", "[-bad]");
        assert!(error_of(&bad_name).contains("name '-bad' must be 1-32 letters"));
        let slow = text.replace("HealthCheckPath: /", "healthCheckTimeoutSeconds: 40");
        assert!(error_of(&slow).contains("must be less than healthCheckIntervalSeconds 30"));
        let two_balancers = text.replace(
            "listeners:\n",
            "listeners:\n  - {loadBalancer: other, port: 8001, targetGroup: member}\n",
        );
        assert!(error_of(&two_balancers).contains("a target group belongs to one load balancer"));
    }

    #[test]
    fn a_services_target_groups_compare_as_a_set() {
        let current = Service {
            load_balancers: vec![LoadBalancer {
                target_group_arn: Some("arn:tg".to_string()),
                container_name: Some("nginx".to_string()),
                container_port: Some(80),
                ..Default::default()
            }],
            ..current_service()
        };
        let wanted = CreateServiceRequest {
            service_name: "member".to_string(),
            load_balancers: current.load_balancers.clone(),
            ..Default::default()
        };
        assert!(service_update(&wanted, &current.task_definition, &current).is_none());
        let other_port = CreateServiceRequest {
            load_balancers: vec![LoadBalancer {
                container_port: Some(8080),
                ..current.load_balancers[0].clone()
            }],
            ..wanted
        };
        let (update, changes) =
            service_update(&other_port, &current.task_definition, &current).unwrap();
        assert_eq!(changes, ["loadBalancers"]);
        assert_eq!(update.load_balancers.unwrap()[0].container_port, Some(8080));
    }

    #[test]
    fn task_definition_references_name_their_family() {
        assert_eq!(family_of("member"), "member");
        assert_eq!(family_of("member:3"), "member");
        assert_eq!(
            family_of("arn:aws:ecs:us-east-1:0:task-definition/member:3"),
            "member"
        );
        assert!(is_bare_family("member"));
        assert!(!is_bare_family("member:3"));
    }
}
