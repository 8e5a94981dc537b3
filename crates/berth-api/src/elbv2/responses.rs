//! ELBv2 results, written as the XML botocore's query parser reads.

use super::requests::{Action, Attribute, Matcher, RuleCondition, Tag, TargetDescription};
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

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Listener {
    pub listener_arn: String,
    pub load_balancer_arn: String,
    pub port: i64,
    pub protocol: String,
    pub default_actions: Vec<Action>,
    /// berth's own element, not ELBv2's: whether berth's load balancer serves the
    /// listener at its port (the aws CLI, boto3 and the Go SDK skip elements they do
    /// not know). `None` when no balancer has answered for it.
    pub serving_state: Option<ServingState>,
}

/// Whether a listener's port is bound: `BerthServingState`, shaped like a load
/// balancer's `State` (`Code`, `Reason`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServingState {
    pub code: ServingCode,
    /// Why it does not serve, e.g. `0.0.0.0:8300: Address already in use`.
    pub reason: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServingCode {
    Serving,
    NotServing,
}

impl ServingCode {
    pub fn as_str(self) -> &'static str {
        match self {
            ServingCode::Serving => "serving",
            ServingCode::NotServing => "not_serving",
        }
    }
}

impl Action {
    fn write(&self, w: &mut XmlWriter) {
        w.text("Type", &self.action_type);
        w.optional_text("TargetGroupArn", self.target_group_arn.as_deref());
        w.optional_number("Order", self.order);
        if let Some(forward) = &self.forward_config {
            w.open("ForwardConfig");
            w.list("TargetGroups", &forward.target_groups, |w, group| {
                w.optional_text("TargetGroupArn", group.target_group_arn.as_deref());
                w.optional_number("Weight", group.weight);
            });
            if let Some(stickiness) = &forward.stickiness {
                w.open("TargetGroupStickinessConfig");
                w.boolean("Enabled", stickiness.enabled.unwrap_or(false));
                w.optional_number("DurationSeconds", stickiness.duration_seconds);
                w.close("TargetGroupStickinessConfig");
            }
            w.close("ForwardConfig");
        }
        if let Some(fixed) = &self.fixed_response_config {
            w.open("FixedResponseConfig");
            w.optional_text("MessageBody", fixed.message_body.as_deref());
            w.optional_text("StatusCode", fixed.status_code.as_deref());
            w.optional_text("ContentType", fixed.content_type.as_deref());
            w.close("FixedResponseConfig");
        }
        if let Some(redirect) = &self.redirect_config {
            w.open("RedirectConfig");
            w.optional_text("Protocol", redirect.protocol.as_deref());
            w.optional_text("Port", redirect.port.as_deref());
            w.optional_text("Host", redirect.host.as_deref());
            w.optional_text("Path", redirect.path.as_deref());
            w.optional_text("Query", redirect.query.as_deref());
            w.optional_text("StatusCode", redirect.status_code.as_deref());
            w.close("RedirectConfig");
        }
    }
}

impl RuleCondition {
    fn write(&self, w: &mut XmlWriter) {
        w.optional_text("Field", self.field.as_deref());
        if !self.values.is_empty() {
            w.string_list("Values", &self.values);
        }
        let values_config = |w: &mut XmlWriter, name: &str, values: &Option<Vec<String>>| {
            if let Some(values) = values {
                w.open(name);
                w.string_list("Values", values);
                w.close(name);
            }
        };
        values_config(w, "HostHeaderConfig", &self.host_header_config);
        values_config(w, "PathPatternConfig", &self.path_pattern_config);
        if let Some(header) = &self.http_header_config {
            w.open("HttpHeaderConfig");
            w.optional_text("HttpHeaderName", header.http_header_name.as_deref());
            w.string_list("Values", &header.values);
            w.close("HttpHeaderConfig");
        }
        if let Some(pairs) = &self.query_string_config {
            w.open("QueryStringConfig");
            w.list("Values", pairs, |w, pair| {
                w.optional_text("Key", pair.key.as_deref());
                w.optional_text("Value", pair.value.as_deref());
            });
            w.close("QueryStringConfig");
        }
        values_config(
            w,
            "HttpRequestMethodConfig",
            &self.http_request_method_config,
        );
        values_config(w, "SourceIpConfig", &self.source_ip_config);
    }
}

impl Listener {
    fn write(&self, w: &mut XmlWriter) {
        w.text("ListenerArn", &self.listener_arn);
        w.text("LoadBalancerArn", &self.load_balancer_arn);
        w.number("Port", self.port);
        w.text("Protocol", &self.protocol);
        w.list("DefaultActions", &self.default_actions, |w, action| {
            action.write(w)
        });
        if let Some(state) = &self.serving_state {
            w.open("BerthServingState");
            w.text("Code", state.code.as_str());
            w.optional_text("Reason", state.reason.as_deref());
            w.close("BerthServingState");
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Rule {
    pub rule_arn: String,
    /// A number, or `default` for the listener's default rule.
    pub priority: String,
    pub conditions: Vec<RuleCondition>,
    pub actions: Vec<Action>,
    pub is_default: bool,
}

/// CreateRule, DescribeRules, ModifyRule and SetRulePriorities.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RulesResult {
    pub rules: Vec<Rule>,
    pub next_marker: Option<String>,
}

impl QueryResult for RulesResult {
    fn write_result(&self, w: &mut XmlWriter) {
        w.list("Rules", &self.rules, |w, rule| {
            w.text("RuleArn", &rule.rule_arn);
            w.text("Priority", &rule.priority);
            w.list("Conditions", &rule.conditions, |w, c| c.write(w));
            w.list("Actions", &rule.actions, |w, a| a.write(w));
            w.boolean("IsDefault", rule.is_default);
        });
        w.optional_text("NextMarker", self.next_marker.as_deref());
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
    fn writes_rules_with_their_conditions_and_actions() {
        use crate::elbv2::{FixedResponseConfig, HttpHeaderConditionConfig};
        let result = RulesResult {
            rules: vec![Rule {
                rule_arn: "arn:r".into(),
                priority: "5".into(),
                conditions: vec![
                    RuleCondition {
                        field: Some("path-pattern".into()),
                        values: vec!["/api/*".into()],
                        path_pattern_config: Some(vec!["/api/*".into()]),
                        ..Default::default()
                    },
                    RuleCondition {
                        field: Some("http-header".into()),
                        http_header_config: Some(HttpHeaderConditionConfig {
                            http_header_name: Some("X-Env".into()),
                            values: vec!["beta".into()],
                        }),
                        ..Default::default()
                    },
                ],
                actions: vec![Action {
                    action_type: "fixed-response".into(),
                    order: Some(1),
                    fixed_response_config: Some(FixedResponseConfig {
                        message_body: Some("no".into()),
                        status_code: Some("404".into()),
                        content_type: None,
                    }),
                    ..Default::default()
                }],
                is_default: false,
            }],
            next_marker: None,
        };
        let doc = response_document("DescribeRules", &result, "r");
        assert!(doc.contains("<Rules><member><RuleArn>arn:r</RuleArn><Priority>5</Priority><Conditions><member><Field>path-pattern</Field><Values><member>/api/*</member></Values><PathPatternConfig><Values><member>/api/*</member></Values></PathPatternConfig></member>"), "{doc}");
        assert!(doc.contains("<HttpHeaderConfig><HttpHeaderName>X-Env</HttpHeaderName><Values><member>beta</member></Values></HttpHeaderConfig>"), "{doc}");
        assert!(doc.contains("<Actions><member><Type>fixed-response</Type><Order>1</Order><FixedResponseConfig><MessageBody>no</MessageBody><StatusCode>404</StatusCode></FixedResponseConfig></member></Actions><IsDefault>false</IsDefault>"), "{doc}");
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
