//! ELBv2 ARNs: `arn:aws:elasticloadbalancing:REGION:ACCOUNT:loadbalancer/app/NAME/ID`,
//! `targetgroup/NAME/ID`, `listener/app/LB_NAME/LB_ID/ID`,
//! `listener-rule/app/LB_NAME/LB_ID/LISTENER_ID/ID` (ids: 16 hex digits).

use super::model::{ListenerRecord, LoadBalancerRecord, TargetGroupRecord};
use crate::ids::{ArnScope, IdSource};

fn prefix(scope: &ArnScope) -> String {
    format!(
        "arn:aws:elasticloadbalancing:{}:{}:",
        scope.region, scope.account_id
    )
}

/// A fresh ELBv2 resource id: 16 lowercase hex digits.
pub fn new_resource_id(ids: &mut dyn IdSource) -> String {
    let id = ids.task_id();
    id[id.len().saturating_sub(16)..].to_string()
}

pub fn load_balancer_arn(scope: &ArnScope, load_balancer: &LoadBalancerRecord) -> String {
    format!(
        "{}loadbalancer/{}/{}/{}",
        prefix(scope),
        load_balancer.load_balancer_type.arn_segment(),
        load_balancer.name,
        load_balancer.id
    )
}

pub fn target_group_arn(scope: &ArnScope, target_group: &TargetGroupRecord) -> String {
    format!(
        "{}targetgroup/{}/{}",
        prefix(scope),
        target_group.name,
        target_group.id
    )
}

pub fn listener_arn(
    scope: &ArnScope,
    load_balancer: &LoadBalancerRecord,
    listener: &ListenerRecord,
) -> String {
    format!(
        "{}listener/{}/{}/{}/{}",
        prefix(scope),
        load_balancer.load_balancer_type.arn_segment(),
        load_balancer.name,
        load_balancer.id,
        listener.id
    )
}

/// A rule's ARN; a listener's default rule has the listener's own id.
pub fn rule_arn(
    scope: &ArnScope,
    load_balancer: &LoadBalancerRecord,
    listener: &ListenerRecord,
    rule_id: &str,
) -> String {
    format!(
        "{}listener-rule/{}/{}/{}/{}/{rule_id}",
        prefix(scope),
        load_balancer.load_balancer_type.arn_segment(),
        load_balancer.name,
        load_balancer.id,
        listener.id
    )
}

/// What an ELBv2 ARN names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Elbv2Ref {
    LoadBalancer {
        name: String,
        id: String,
    },
    TargetGroup {
        name: String,
        id: String,
    },
    Listener {
        load_balancer_id: String,
        id: String,
    },
    Rule {
        load_balancer_id: String,
        listener_id: String,
        id: String,
    },
}

/// Parses any ELBv2 ARN berth hands out; None for anything else.
pub fn parse_elbv2_arn(arn: &str) -> Option<Elbv2Ref> {
    let mut parts = arn.splitn(6, ':');
    let (word, _partition, service, _region, _account, resource) = (
        parts.next()?,
        parts.next()?,
        parts.next()?,
        parts.next()?,
        parts.next()?,
        parts.next()?,
    );
    if word != "arn" || service != "elasticloadbalancing" {
        return None;
    }
    let segments: Vec<&str> = resource.split('/').collect();
    match segments.as_slice() {
        ["loadbalancer", "app" | "net", name, id] => Some(Elbv2Ref::LoadBalancer {
            name: name.to_string(),
            id: id.to_string(),
        }),
        ["targetgroup", name, id] => Some(Elbv2Ref::TargetGroup {
            name: name.to_string(),
            id: id.to_string(),
        }),
        ["listener", "app" | "net", _name, load_balancer_id, id] => Some(Elbv2Ref::Listener {
            load_balancer_id: load_balancer_id.to_string(),
            id: id.to_string(),
        }),
        ["listener-rule", "app" | "net", _name, load_balancer_id, listener_id, id] => {
            Some(Elbv2Ref::Rule {
                load_balancer_id: load_balancer_id.to_string(),
                listener_id: listener_id.to_string(),
                id: id.to_string(),
            })
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::SequentialIds;

    #[test]
    fn ids_are_16_hex_and_distinct() {
        let mut ids = SequentialIds::default();
        let a = new_resource_id(&mut ids);
        let b = new_resource_id(&mut ids);
        assert_eq!(a.len(), 16);
        assert_ne!(a, b);
    }

    #[test]
    fn parses_what_it_writes() {
        assert_eq!(
            parse_elbv2_arn(
                "arn:aws:elasticloadbalancing:us-east-1:1:loadbalancer/app/web/0123456789abcdef"
            ),
            Some(Elbv2Ref::LoadBalancer {
                name: "web".into(),
                id: "0123456789abcdef".into()
            })
        );
        assert_eq!(
            parse_elbv2_arn(
                "arn:aws:elasticloadbalancing:us-east-1:1:targetgroup/tg/00000000000000aa"
            ),
            Some(Elbv2Ref::TargetGroup {
                name: "tg".into(),
                id: "00000000000000aa".into()
            })
        );
        assert_eq!(
            parse_elbv2_arn("arn:aws:elasticloadbalancing:us-east-1:1:listener/net/web/lb1/l1"),
            Some(Elbv2Ref::Listener {
                load_balancer_id: "lb1".into(),
                id: "l1".into()
            })
        );
        assert_eq!(
            parse_elbv2_arn(
                "arn:aws:elasticloadbalancing:us-east-1:1:listener-rule/app/web/lb1/l1/r1"
            ),
            Some(Elbv2Ref::Rule {
                load_balancer_id: "lb1".into(),
                listener_id: "l1".into(),
                id: "r1".into()
            })
        );
        assert_eq!(parse_elbv2_arn("arn:aws:ecs:us-east-1:1:cluster/x"), None);
        assert_eq!(parse_elbv2_arn("web"), None);
    }
}
