//! ELBv2 results, written as the XML botocore's query parser reads.

use super::requests::{Attribute, Matcher, Tag, TargetDescription};
use super::xml::{QueryResult, XmlWriter};

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LoadBalancer {
    pub load_balancer_arn: String,
    pub dns_name: String,
    pub created_time_millis: u64,
    pub load_balancer_name: String,
    pub scheme: String,
    pub state_code: String,
    pub load_balancer_type: String,
    /// Subnets the user named, echoed as availability zones.
    pub subnets: Vec<String>,
    pub security_groups: Vec<String>,
    pub ip_address_type: String,
}

impl LoadBalancer {
    fn write(&self, w: &mut XmlWriter) {
        w.text("LoadBalancerArn", &self.load_balancer_arn);
        w.text("DNSName", &self.dns_name);
        w.timestamp("CreatedTime", self.created_time_millis);
        w.text("LoadBalancerName", &self.load_balancer_name);
        w.text("Scheme", &self.scheme);
        w.open("State");
        w.text("Code", &self.state_code);
        w.close("State");
        w.text("Type", &self.load_balancer_type);
        w.list("AvailabilityZones", &self.subnets, |w, subnet| {
            w.text("SubnetId", subnet)
        });
        w.string_list("SecurityGroups", &self.security_groups);
        w.text("IpAddressType", &self.ip_address_type);
    }
}

/// CreateLoadBalancer and DescribeLoadBalancers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LoadBalancersResult {
    pub load_balancers: Vec<LoadBalancer>,
    pub next_marker: Option<String>,
}

impl QueryResult for LoadBalancersResult {
    fn write_result(&self, w: &mut XmlWriter) {
        w.list("LoadBalancers", &self.load_balancers, |w, lb| lb.write(w));
        w.optional_text("NextMarker", self.next_marker.as_deref());
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TargetGroup {
    pub target_group_arn: String,
    pub target_group_name: String,
    pub protocol: Option<String>,
    pub protocol_version: Option<String>,
    pub port: Option<i64>,
    pub vpc_id: Option<String>,
    pub health_check_protocol: Option<String>,
    pub health_check_port: String,
    pub health_check_enabled: bool,
    pub health_check_interval_seconds: i64,
    pub health_check_timeout_seconds: i64,
    pub healthy_threshold_count: i64,
    pub unhealthy_threshold_count: i64,
    pub health_check_path: Option<String>,
    pub matcher: Option<Matcher>,
    pub load_balancer_arns: Vec<String>,
    pub target_type: String,
    pub ip_address_type: String,
}

impl TargetGroup {
    fn write(&self, w: &mut XmlWriter) {
        w.text("TargetGroupArn", &self.target_group_arn);
        w.text("TargetGroupName", &self.target_group_name);
        w.optional_text("Protocol", self.protocol.as_deref());
        w.optional_text("ProtocolVersion", self.protocol_version.as_deref());
        w.optional_number("Port", self.port);
        w.optional_text("VpcId", self.vpc_id.as_deref());
        w.optional_text("HealthCheckProtocol", self.health_check_protocol.as_deref());
        w.text("HealthCheckPort", &self.health_check_port);
        w.boolean("HealthCheckEnabled", self.health_check_enabled);
        w.number(
            "HealthCheckIntervalSeconds",
            self.health_check_interval_seconds,
        );
        w.number(
            "HealthCheckTimeoutSeconds",
            self.health_check_timeout_seconds,
        );
        w.number("HealthyThresholdCount", self.healthy_threshold_count);
        w.number("UnhealthyThresholdCount", self.unhealthy_threshold_count);
        w.optional_text("HealthCheckPath", self.health_check_path.as_deref());
        if let Some(matcher) = &self.matcher {
            w.open("Matcher");
            w.optional_text("HttpCode", matcher.http_code.as_deref());
            w.optional_text("GrpcCode", matcher.grpc_code.as_deref());
            w.close("Matcher");
        }
        w.string_list("LoadBalancerArns", &self.load_balancer_arns);
        w.text("TargetType", &self.target_type);
        w.text("IpAddressType", &self.ip_address_type);
    }
}

/// CreateTargetGroup, DescribeTargetGroups and ModifyTargetGroup.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TargetGroupsResult {
    pub target_groups: Vec<TargetGroup>,
    pub next_marker: Option<String>,
}

impl QueryResult for TargetGroupsResult {
    fn write_result(&self, w: &mut XmlWriter) {
        w.list("TargetGroups", &self.target_groups, |w, tg| tg.write(w));
        w.optional_text("NextMarker", self.next_marker.as_deref());
    }
}

/// A listener's default action as stored: forward to one target group.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ForwardAction {
    pub target_group_arn: String,
    pub order: Option<i64>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Listener {
    pub listener_arn: String,
    pub load_balancer_arn: String,
    pub port: i64,
    pub protocol: String,
    pub default_actions: Vec<ForwardAction>,
}

impl Listener {
    fn write(&self, w: &mut XmlWriter) {
        w.text("ListenerArn", &self.listener_arn);
        w.text("LoadBalancerArn", &self.load_balancer_arn);
        w.number("Port", self.port);
        w.text("Protocol", &self.protocol);
        w.list("DefaultActions", &self.default_actions, |w, action| {
            w.text("Type", "forward");
            w.text("TargetGroupArn", &action.target_group_arn);
            w.optional_number("Order", action.order);
            w.open("ForwardConfig");
            w.list(
                "TargetGroups",
                std::slice::from_ref(&action.target_group_arn),
                |w, arn| {
                    w.text("TargetGroupArn", arn);
                    w.number("Weight", 1);
                },
            );
            w.open("TargetGroupStickinessConfig");
            w.boolean("Enabled", false);
            w.close("TargetGroupStickinessConfig");
            w.close("ForwardConfig");
        });
    }
}

/// CreateListener and DescribeListeners.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListenersResult {
    pub listeners: Vec<Listener>,
    pub next_marker: Option<String>,
}

impl QueryResult for ListenersResult {
    fn write_result(&self, w: &mut XmlWriter) {
        w.list("Listeners", &self.listeners, |w, l| l.write(w));
        w.optional_text("NextMarker", self.next_marker.as_deref());
    }
}

/// The Describe* and Modify*Attributes actions of load balancers, listeners and target
/// groups: one shape.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AttributesResult {
    pub attributes: Vec<Attribute>,
}

impl QueryResult for AttributesResult {
    fn write_result(&self, w: &mut XmlWriter) {
        w.list("Attributes", &self.attributes, |w, a| {
            w.text("Key", &a.key);
            w.text("Value", &a.value);
        });
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TargetHealthDescription {
    pub target: TargetDescription,
    pub health_check_port: String,
    /// initial | healthy | unhealthy | unused | draining | unavailable
    pub state: String,
    pub reason: Option<String>,
    pub description: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TargetHealthResult {
    pub target_health_descriptions: Vec<TargetHealthDescription>,
}

impl QueryResult for TargetHealthResult {
    fn write_result(&self, w: &mut XmlWriter) {
        w.list(
            "TargetHealthDescriptions",
            &self.target_health_descriptions,
            |w, d| {
                w.open("Target");
                w.text("Id", &d.target.id);
                w.optional_number("Port", d.target.port);
                w.optional_text("AvailabilityZone", d.target.availability_zone.as_deref());
                w.close("Target");
                w.text("HealthCheckPort", &d.health_check_port);
                w.open("TargetHealth");
                w.text("State", &d.state);
                w.optional_text("Reason", d.reason.as_deref());
                w.optional_text("Description", d.description.as_deref());
                w.close("TargetHealth");
            },
        );
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TagDescription {
    pub resource_arn: String,
    pub tags: Vec<Tag>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TagsResult {
    pub tag_descriptions: Vec<TagDescription>,
}

impl QueryResult for TagsResult {
    fn write_result(&self, w: &mut XmlWriter) {
        w.list("TagDescriptions", &self.tag_descriptions, |w, d| {
            w.text("ResourceArn", &d.resource_arn);
            w.list("Tags", &d.tags, |w, tag| {
                w.text("Key", &tag.key);
                w.optional_text("Value", tag.value.as_deref());
            });
        });
    }
}

/// The empty result of Delete*, RegisterTargets, DeregisterTargets, AddTags, RemoveTags.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EmptyResult;

impl QueryResult for EmptyResult {
    fn write_result(&self, _: &mut XmlWriter) {}
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::elbv2::response_document;

    #[test]
    fn writes_a_target_group_as_botocore_reads_it() {
        let result = TargetGroupsResult {
            target_groups: vec![TargetGroup {
                target_group_arn: "arn:tg".into(),
                target_group_name: "web".into(),
                protocol: Some("HTTP".into()),
                port: Some(80),
                health_check_protocol: Some("HTTP".into()),
                health_check_port: "traffic-port".into(),
                health_check_enabled: true,
                health_check_interval_seconds: 30,
                health_check_timeout_seconds: 5,
                healthy_threshold_count: 5,
                unhealthy_threshold_count: 2,
                health_check_path: Some("/".into()),
                matcher: Some(Matcher {
                    http_code: Some("200".into()),
                    grpc_code: None,
                }),
                target_type: "ip".into(),
                ip_address_type: "ipv4".into(),
                ..Default::default()
            }],
            next_marker: None,
        };
        let doc = response_document("CreateTargetGroup", &result, "r");
        assert!(doc.contains("<CreateTargetGroupResult><TargetGroups><member><TargetGroupArn>arn:tg</TargetGroupArn><TargetGroupName>web</TargetGroupName><Protocol>HTTP</Protocol><Port>80</Port>"));
        assert!(doc.contains("<Matcher><HttpCode>200</HttpCode></Matcher><LoadBalancerArns></LoadBalancerArns><TargetType>ip</TargetType>"));
        assert!(!doc.contains("NextMarker"));
    }

    #[test]
    fn writes_target_health() {
        let result = TargetHealthResult {
            target_health_descriptions: vec![TargetHealthDescription {
                target: TargetDescription {
                    id: "10.0.0.1".into(),
                    port: Some(8080),
                    availability_zone: None,
                },
                health_check_port: "8080".into(),
                state: "draining".into(),
                reason: Some("Target.DeregistrationInProgress".into()),
                description: Some("Target deregistration is in progress".into()),
            }],
        };
        let doc = response_document("DescribeTargetHealth", &result, "r");
        assert!(doc.contains("<member><Target><Id>10.0.0.1</Id><Port>8080</Port></Target><HealthCheckPort>8080</HealthCheckPort><TargetHealth><State>draining</State><Reason>Target.DeregistrationInProgress</Reason>"));
    }
}
