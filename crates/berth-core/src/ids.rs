//! Ids and ARNs: how berth names every resource, in ECS's own ARN shapes.

use serde::{Deserialize, Serialize};

/// Where ids come from. The real one is random; tests use a counter.
pub trait IdSource {
    /// A task id: 32 lowercase hex digits, as ECS's.
    fn task_id(&mut self) -> String;
    /// A UUID-shaped id (container ARNs, event ids).
    fn uuid(&mut self) -> String;
    /// A deployment id's digits (`ecs-svc/<digits>`).
    fn deployment_digits(&mut self) -> u64;
}

/// Ids from a counter: deterministic, for tests.
#[derive(Debug, Default, Clone)]
pub struct SequentialIds {
    next: u64,
}

impl IdSource for SequentialIds {
    fn task_id(&mut self) -> String {
        self.next += 1;
        format!("{:032x}", self.next)
    }
    fn uuid(&mut self) -> String {
        self.next += 1;
        format!("00000000-0000-4000-8000-{:012x}", self.next)
    }
    fn deployment_digits(&mut self) -> u64 {
        self.next += 1;
        1_000_000_000_000_000_000 + self.next
    }
}

/// The region and account every ARN of this cluster carries.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ArnScope {
    pub region: String,
    pub account_id: String,
}

impl ArnScope {
    fn prefix(&self) -> String {
        format!("arn:aws:ecs:{}:{}:", self.region, self.account_id)
    }
    pub fn cluster(&self, name: &str) -> String {
        format!("{}cluster/{name}", self.prefix())
    }
    pub fn capacity_provider(&self, name: &str) -> String {
        format!("{}capacity-provider/{name}", self.prefix())
    }
    pub fn task_definition(&self, family: &str, revision: u32) -> String {
        format!("{}task-definition/{family}:{revision}", self.prefix())
    }
    pub fn service(&self, cluster: &str, name: &str) -> String {
        format!("{}service/{cluster}/{name}", self.prefix())
    }
    pub fn task(&self, cluster: &str, id: &str) -> String {
        format!("{}task/{cluster}/{id}", self.prefix())
    }
    pub fn container(&self, cluster: &str, task_id: &str, container_id: &str) -> String {
        format!(
            "{}container/{cluster}/{task_id}/{container_id}",
            self.prefix()
        )
    }
    pub fn container_instance(&self, cluster: &str, id: &str) -> String {
        format!("{}container-instance/{cluster}/{id}", self.prefix())
    }
    pub fn service_deployment(&self, cluster: &str, service: &str, id: &str) -> String {
        format!(
            "{}service-deployment/{cluster}/{service}/{id}",
            self.prefix()
        )
    }
    pub fn service_revision(&self, cluster: &str, service: &str, id: &str) -> String {
        format!("{}service-revision/{cluster}/{service}/{id}", self.prefix())
    }
}

/// What a service deployment or service revision ARN names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceHistoryRef {
    pub cluster: String,
    pub service: String,
    pub id: String,
}

/// Parses `arn:aws:ecs:R:A:<kind>/CLUSTER/SERVICE/ID`, `kind` being `service-deployment`
/// or `service-revision`; None for anything else.
pub fn service_history_arn(arn: &str, kind: &str) -> Option<ServiceHistoryRef> {
    let rest = arn_resource(arn)?.strip_prefix(kind)?.strip_prefix('/')?;
    match rest.split('/').collect::<Vec<_>>().as_slice() {
        [cluster, service, id] if [cluster, service, id].iter().all(|s| !s.is_empty()) => {
            Some(ServiceHistoryRef {
                cluster: cluster.to_string(),
                service: service.to_string(),
                id: id.to_string(),
            })
        }
        _ => None,
    }
}

/// What an ARN or short name given by a user points at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ResourceRef {
    Cluster(String),
    TaskDefinition {
        family: String,
        revision: Option<u32>,
    },
    Service {
        cluster: Option<String>,
        name: String,
    },
    Task {
        cluster: Option<String>,
        id: String,
    },
    ContainerInstance {
        cluster: Option<String>,
        id: String,
    },
    CapacityProvider(String),
}

/// The resource part of an ECS ARN (`cluster/x`, `service/c/s`, ...), or None when `arn`
/// is not an ECS ARN.
fn arn_resource(arn: &str) -> Option<&str> {
    let mut parts = arn.splitn(6, ':');
    let (arn_word, _partition, service, _region, _account) = (
        parts.next()?,
        parts.next()?,
        parts.next()?,
        parts.next()?,
        parts.next()?,
    );
    if arn_word != "arn" || service != "ecs" {
        return None;
    }
    parts.next()
}

/// Parses any ECS ARN berth knows.
pub fn parse_arn(arn: &str) -> Option<ResourceRef> {
    let resource = arn_resource(arn)?;
    let (kind, rest) = resource.split_once('/')?;
    let segments: Vec<&str> = rest.split('/').collect();
    match (kind, segments.as_slice()) {
        ("cluster", [name]) => Some(ResourceRef::Cluster(name.to_string())),
        ("capacity-provider", [name]) => Some(ResourceRef::CapacityProvider(name.to_string())),
        ("task-definition", [family_revision]) => Some(parse_family_revision(family_revision)),
        ("service", [name]) => Some(ResourceRef::Service {
            cluster: None,
            name: name.to_string(),
        }),
        ("service", [cluster, name]) => Some(ResourceRef::Service {
            cluster: Some(cluster.to_string()),
            name: name.to_string(),
        }),
        ("task", [id]) => Some(ResourceRef::Task {
            cluster: None,
            id: id.to_string(),
        }),
        ("task", [cluster, id]) => Some(ResourceRef::Task {
            cluster: Some(cluster.to_string()),
            id: id.to_string(),
        }),
        ("container-instance", [id]) => Some(ResourceRef::ContainerInstance {
            cluster: None,
            id: id.to_string(),
        }),
        ("container-instance", [cluster, id]) => Some(ResourceRef::ContainerInstance {
            cluster: Some(cluster.to_string()),
            id: id.to_string(),
        }),
        _ => None,
    }
}

fn parse_family_revision(text: &str) -> ResourceRef {
    match text.rsplit_once(':') {
        Some((family, revision)) => match revision.parse::<u32>() {
            Ok(revision) => ResourceRef::TaskDefinition {
                family: family.to_string(),
                revision: Some(revision),
            },
            Err(_) => ResourceRef::TaskDefinition {
                family: text.to_string(),
                revision: None,
            },
        },
        None => ResourceRef::TaskDefinition {
            family: text.to_string(),
            revision: None,
        },
    }
}

/// A cluster given as a name or an ARN; `default` when absent.
pub fn cluster_name(given: Option<&str>) -> String {
    match given.map(str::trim).filter(|s| !s.is_empty()) {
        None => "default".to_string(),
        Some(text) => match parse_arn(text) {
            Some(ResourceRef::Cluster(name)) => name,
            _ => text.to_string(),
        },
    }
}

/// A task definition given as `family`, `family:revision` or an ARN.
pub fn task_definition_ref(given: &str) -> (String, Option<u32>) {
    let reference = if given.starts_with("arn:") {
        parse_arn(given)
    } else {
        Some(parse_family_revision(given))
    };
    match reference {
        Some(ResourceRef::TaskDefinition { family, revision }) => (family, revision),
        _ => (given.to_string(), None),
    }
}

/// A service given as a name or ARN: (cluster named in the ARN if any, service name).
pub fn service_ref(given: &str) -> (Option<String>, String) {
    match parse_arn(given) {
        Some(ResourceRef::Service { cluster, name }) => (cluster, name),
        _ => (None, given.to_string()),
    }
}

/// A task given as an id or ARN: (cluster named in the ARN if any, task id).
pub fn task_ref(given: &str) -> (Option<String>, String) {
    match parse_arn(given) {
        Some(ResourceRef::Task { cluster, id }) => (cluster, id),
        _ => (None, given.to_string()),
    }
}

/// A container instance given as an id or ARN.
pub fn container_instance_ref(given: &str) -> (Option<String>, String) {
    match parse_arn(given) {
        Some(ResourceRef::ContainerInstance { cluster, id }) => (cluster, id),
        _ => (None, given.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_arn_kind() {
        let scope = ArnScope {
            region: "us-east-1".into(),
            account_id: "000000000000".into(),
        };
        assert_eq!(
            parse_arn(&scope.cluster("c1")),
            Some(ResourceRef::Cluster("c1".into()))
        );
        assert_eq!(
            parse_arn(&scope.task_definition("web", 3)),
            Some(ResourceRef::TaskDefinition {
                family: "web".into(),
                revision: Some(3)
            })
        );
        assert_eq!(
            parse_arn(&scope.service("c1", "member")),
            Some(ResourceRef::Service {
                cluster: Some("c1".into()),
                name: "member".into()
            })
        );
        assert_eq!(
            task_ref(&scope.task("c1", "abc")),
            (Some("c1".into()), "abc".into())
        );
        assert_eq!(task_ref("abc"), (None, "abc".into()));
        assert_eq!(cluster_name(None), "default");
        assert_eq!(cluster_name(Some(&scope.cluster("x"))), "x");
        assert_eq!(task_definition_ref("web:7"), ("web".into(), Some(7)));
        assert_eq!(task_definition_ref("web"), ("web".into(), None));
        assert_eq!(parse_arn("arn:aws:s3:::bucket"), None);
    }
}
