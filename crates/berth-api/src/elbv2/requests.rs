//! ELBv2 requests, decoded from the awsQuery form (botocore's `elbv2/2015-12-01` names).
//! Parameters berth has no use for (subnets, security groups, certificates) are kept
//! where ELBv2 echoes them and otherwise ignored.

use super::form::{FormError, FormView};

/// Decodes one request from its form.
pub trait FromForm: Sized {
    fn from_form(form: &FormView<'_>) -> Result<Self, FormError>;
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tag {
    pub key: String,
    pub value: Option<String>,
}

fn tags(form: &FormView<'_>, name: &str) -> Result<Vec<Tag>, FormError> {
    form.members(name)
        .iter()
        .map(|m| {
            Ok(Tag {
                key: m.required_string("Key")?,
                value: m.value("Value"),
            })
        })
        .collect()
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CreateLoadBalancerRequest {
    pub name: String,
    /// `Subnets` and `SubnetMappings.SubnetId`, kept and echoed, never used.
    pub subnets: Vec<String>,
    pub security_groups: Vec<String>,
    pub scheme: Option<String>,
    pub load_balancer_type: Option<String>,
    pub ip_address_type: Option<String>,
    pub tags: Vec<Tag>,
}

impl FromForm for CreateLoadBalancerRequest {
    fn from_form(f: &FormView<'_>) -> Result<Self, FormError> {
        let mut subnets = f.string_list("Subnets");
        subnets.extend(
            f.members("SubnetMappings")
                .iter()
                .filter_map(|m| m.string("SubnetId")),
        );
        Ok(CreateLoadBalancerRequest {
            name: f.required_string("Name")?,
            subnets,
            security_groups: f.string_list("SecurityGroups"),
            scheme: f.string("Scheme"),
            load_balancer_type: f.string("Type"),
            ip_address_type: f.string("IpAddressType"),
            tags: tags(f, "Tags")?,
        })
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DescribeLoadBalancersRequest {
    pub load_balancer_arns: Vec<String>,
    pub names: Vec<String>,
    pub marker: Option<String>,
    pub page_size: Option<i64>,
}

impl FromForm for DescribeLoadBalancersRequest {
    fn from_form(f: &FormView<'_>) -> Result<Self, FormError> {
        Ok(DescribeLoadBalancersRequest {
            load_balancer_arns: f.string_list("LoadBalancerArns"),
            names: f.string_list("Names"),
            marker: f.string("Marker"),
            page_size: f.int("PageSize")?,
        })
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeleteLoadBalancerRequest {
    pub load_balancer_arn: String,
}

impl FromForm for DeleteLoadBalancerRequest {
    fn from_form(f: &FormView<'_>) -> Result<Self, FormError> {
        Ok(DeleteLoadBalancerRequest {
            load_balancer_arn: f.required_string("LoadBalancerArn")?,
        })
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Matcher {
    pub http_code: Option<String>,
    pub grpc_code: Option<String>,
}

/// The health-check parameters CreateTargetGroup and ModifyTargetGroup share.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HealthCheckParameters {
    pub protocol: Option<String>,
    pub port: Option<String>,
    pub enabled: Option<bool>,
    pub path: Option<String>,
    pub interval_seconds: Option<i64>,
    pub timeout_seconds: Option<i64>,
    pub healthy_threshold_count: Option<i64>,
    pub unhealthy_threshold_count: Option<i64>,
    pub matcher: Option<Matcher>,
}

impl FromForm for HealthCheckParameters {
    fn from_form(f: &FormView<'_>) -> Result<Self, FormError> {
        let matcher = f.has_structure("Matcher").then(|| {
            let m = f.structure("Matcher");
            Matcher {
                http_code: m.string("HttpCode"),
                grpc_code: m.string("GrpcCode"),
            }
        });
        Ok(HealthCheckParameters {
            protocol: f.string("HealthCheckProtocol"),
            port: f.string("HealthCheckPort"),
            enabled: f.bool("HealthCheckEnabled")?,
            path: f.string("HealthCheckPath"),
            interval_seconds: f.int("HealthCheckIntervalSeconds")?,
            timeout_seconds: f.int("HealthCheckTimeoutSeconds")?,
            healthy_threshold_count: f.int("HealthyThresholdCount")?,
            unhealthy_threshold_count: f.int("UnhealthyThresholdCount")?,
            matcher,
        })
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CreateTargetGroupRequest {
    pub name: String,
    pub protocol: Option<String>,
    pub protocol_version: Option<String>,
    pub port: Option<i64>,
    pub vpc_id: Option<String>,
    pub health_check: HealthCheckParameters,
    pub target_type: Option<String>,
    pub ip_address_type: Option<String>,
    pub tags: Vec<Tag>,
}

impl FromForm for CreateTargetGroupRequest {
    fn from_form(f: &FormView<'_>) -> Result<Self, FormError> {
        Ok(CreateTargetGroupRequest {
            name: f.required_string("Name")?,
            protocol: f.string("Protocol"),
            protocol_version: f.string("ProtocolVersion"),
            port: f.int("Port")?,
            vpc_id: f.string("VpcId"),
            health_check: HealthCheckParameters::from_form(f)?,
            target_type: f.string("TargetType"),
            ip_address_type: f.string("IpAddressType"),
            tags: tags(f, "Tags")?,
        })
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DescribeTargetGroupsRequest {
    pub load_balancer_arn: Option<String>,
    pub target_group_arns: Vec<String>,
    pub names: Vec<String>,
    pub marker: Option<String>,
    pub page_size: Option<i64>,
}

impl FromForm for DescribeTargetGroupsRequest {
    fn from_form(f: &FormView<'_>) -> Result<Self, FormError> {
        Ok(DescribeTargetGroupsRequest {
            load_balancer_arn: f.string("LoadBalancerArn"),
            target_group_arns: f.string_list("TargetGroupArns"),
            names: f.string_list("Names"),
            marker: f.string("Marker"),
            page_size: f.int("PageSize")?,
        })
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ModifyTargetGroupRequest {
    pub target_group_arn: String,
    pub health_check: HealthCheckParameters,
}

impl FromForm for ModifyTargetGroupRequest {
    fn from_form(f: &FormView<'_>) -> Result<Self, FormError> {
        Ok(ModifyTargetGroupRequest {
            target_group_arn: f.required_string("TargetGroupArn")?,
            health_check: HealthCheckParameters::from_form(f)?,
        })
    }
}

/// Any request that names one target group and nothing else
/// (DeleteTargetGroup, DescribeTargetGroupAttributes).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TargetGroupArnRequest {
    pub target_group_arn: String,
}

impl FromForm for TargetGroupArnRequest {
    fn from_form(f: &FormView<'_>) -> Result<Self, FormError> {
        Ok(TargetGroupArnRequest {
            target_group_arn: f.required_string("TargetGroupArn")?,
        })
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Attribute {
    pub key: String,
    pub value: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ModifyTargetGroupAttributesRequest {
    pub target_group_arn: String,
    pub attributes: Vec<Attribute>,
}

/// `Attributes.member.N.Key` / `.Value`, as every Modify*Attributes request sends them.
fn attributes(f: &FormView<'_>) -> Result<Vec<Attribute>, FormError> {
    f.members("Attributes")
        .iter()
        .map(|m| {
            Ok(Attribute {
                key: m.required_string("Key")?,
                value: m.value("Value").unwrap_or_default(),
            })
        })
        .collect()
}

impl FromForm for ModifyTargetGroupAttributesRequest {
    fn from_form(f: &FormView<'_>) -> Result<Self, FormError> {
        Ok(ModifyTargetGroupAttributesRequest {
            target_group_arn: f.required_string("TargetGroupArn")?,
            attributes: attributes(f)?,
        })
    }
}

/// Any request that names one load balancer and nothing else
/// (DescribeLoadBalancerAttributes).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LoadBalancerArnRequest {
    pub load_balancer_arn: String,
}

impl FromForm for LoadBalancerArnRequest {
    fn from_form(f: &FormView<'_>) -> Result<Self, FormError> {
        Ok(LoadBalancerArnRequest {
            load_balancer_arn: f.required_string("LoadBalancerArn")?,
        })
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ModifyLoadBalancerAttributesRequest {
    pub load_balancer_arn: String,
    pub attributes: Vec<Attribute>,
}

impl FromForm for ModifyLoadBalancerAttributesRequest {
    fn from_form(f: &FormView<'_>) -> Result<Self, FormError> {
        Ok(ModifyLoadBalancerAttributesRequest {
            load_balancer_arn: f.required_string("LoadBalancerArn")?,
            attributes: attributes(f)?,
        })
    }
}

/// Any request that names one listener and nothing else (DescribeListenerAttributes).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListenerArnRequest {
    pub listener_arn: String,
}

impl FromForm for ListenerArnRequest {
    fn from_form(f: &FormView<'_>) -> Result<Self, FormError> {
        Ok(ListenerArnRequest {
            listener_arn: f.required_string("ListenerArn")?,
        })
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ModifyListenerAttributesRequest {
    pub listener_arn: String,
    pub attributes: Vec<Attribute>,
}

impl FromForm for ModifyListenerAttributesRequest {
    fn from_form(f: &FormView<'_>) -> Result<Self, FormError> {
        Ok(ModifyListenerAttributesRequest {
            listener_arn: f.required_string("ListenerArn")?,
            attributes: attributes(f)?,
        })
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TargetGroupTuple {
    pub target_group_arn: Option<String>,
    pub weight: Option<i64>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TargetGroupStickinessConfig {
    pub enabled: Option<bool>,
    pub duration_seconds: Option<i64>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ForwardConfig {
    pub target_groups: Vec<TargetGroupTuple>,
    pub stickiness: Option<TargetGroupStickinessConfig>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FixedResponseConfig {
    pub message_body: Option<String>,
    pub status_code: Option<String>,
    pub content_type: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RedirectConfig {
    pub protocol: Option<String>,
    pub port: Option<String>,
    pub host: Option<String>,
    pub path: Option<String>,
    pub query: Option<String>,
    pub status_code: Option<String>,
}

/// A listener's default action or a rule's action, as sent and as described (one
/// shape both ways, as in ELBv2).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Action {
    pub action_type: String,
    pub target_group_arn: Option<String>,
    pub order: Option<i64>,
    pub forward_config: Option<ForwardConfig>,
    pub fixed_response_config: Option<FixedResponseConfig>,
    pub redirect_config: Option<RedirectConfig>,
    /// The `authenticate-*` configurations, only noticed: berth refuses them.
    pub authenticate_config: bool,
}

impl FromForm for Action {
    fn from_form(f: &FormView<'_>) -> Result<Self, FormError> {
        let forward_config = if f.has_structure("ForwardConfig") {
            let forward = f.structure("ForwardConfig");
            let target_groups = forward
                .members("TargetGroups")
                .iter()
                .map(|m| {
                    Ok(TargetGroupTuple {
                        target_group_arn: m.string("TargetGroupArn"),
                        weight: m.int("Weight")?,
                    })
                })
                .collect::<Result<_, FormError>>()?;
            let stickiness = if forward.has_structure("TargetGroupStickinessConfig") {
                let s = forward.structure("TargetGroupStickinessConfig");
                Some(TargetGroupStickinessConfig {
                    enabled: s.bool("Enabled")?,
                    duration_seconds: s.int("DurationSeconds")?,
                })
            } else {
                None
            };
            Some(ForwardConfig {
                target_groups,
                stickiness,
            })
        } else {
            None
        };
        let fixed_response_config = f.has_structure("FixedResponseConfig").then(|| {
            let c = f.structure("FixedResponseConfig");
            FixedResponseConfig {
                message_body: c.value("MessageBody"),
                status_code: c.string("StatusCode"),
                content_type: c.string("ContentType"),
            }
        });
        let redirect_config = f.has_structure("RedirectConfig").then(|| {
            let c = f.structure("RedirectConfig");
            RedirectConfig {
                protocol: c.string("Protocol"),
                port: c.string("Port"),
                host: c.string("Host"),
                path: c.string("Path"),
                query: c.string("Query"),
                status_code: c.string("StatusCode"),
            }
        });
        Ok(Action {
            action_type: f.required_string("Type")?,
            target_group_arn: f.string("TargetGroupArn"),
            order: f.int("Order")?,
            forward_config,
            fixed_response_config,
            redirect_config,
            authenticate_config: f.has_structure("AuthenticateOidcConfig")
                || f.has_structure("AuthenticateCognitoConfig"),
        })
    }
}

fn actions(f: &FormView<'_>, name: &str) -> Result<Vec<Action>, FormError> {
    f.members(name).iter().map(Action::from_form).collect()
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HttpHeaderConditionConfig {
    pub http_header_name: Option<String>,
    pub values: Vec<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct QueryStringKeyValue {
    pub key: Option<String>,
    pub value: Option<String>,
}

/// A rule's condition, as sent and as described: `Field` with either the old
/// `Values` or the field's own `*Config`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RuleCondition {
    pub field: Option<String>,
    pub values: Vec<String>,
    pub host_header_config: Option<Vec<String>>,
    pub path_pattern_config: Option<Vec<String>>,
    pub http_header_config: Option<HttpHeaderConditionConfig>,
    pub query_string_config: Option<Vec<QueryStringKeyValue>>,
    pub http_request_method_config: Option<Vec<String>>,
    pub source_ip_config: Option<Vec<String>>,
}

impl FromForm for RuleCondition {
    fn from_form(f: &FormView<'_>) -> Result<Self, FormError> {
        let values_of = |name: &str| {
            f.has_structure(name)
                .then(|| f.structure(name).string_list("Values"))
        };
        Ok(RuleCondition {
            field: f.string("Field"),
            values: f.string_list("Values"),
            host_header_config: values_of("HostHeaderConfig"),
            path_pattern_config: values_of("PathPatternConfig"),
            http_header_config: f.has_structure("HttpHeaderConfig").then(|| {
                let c = f.structure("HttpHeaderConfig");
                HttpHeaderConditionConfig {
                    http_header_name: c.string("HttpHeaderName"),
                    values: c.string_list("Values"),
                }
            }),
            query_string_config: f.has_structure("QueryStringConfig").then(|| {
                f.structure("QueryStringConfig")
                    .members("Values")
                    .iter()
                    .map(|m| QueryStringKeyValue {
                        key: m.string("Key"),
                        value: m.value("Value"),
                    })
                    .collect()
            }),
            http_request_method_config: values_of("HttpRequestMethodConfig"),
            source_ip_config: values_of("SourceIpConfig"),
        })
    }
}

fn conditions(f: &FormView<'_>, name: &str) -> Result<Vec<RuleCondition>, FormError> {
    f.members(name)
        .iter()
        .map(RuleCondition::from_form)
        .collect()
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CreateRuleRequest {
    pub listener_arn: String,
    pub conditions: Vec<RuleCondition>,
    pub priority: Option<i64>,
    pub actions: Vec<Action>,
    pub tags: Vec<Tag>,
}

impl FromForm for CreateRuleRequest {
    fn from_form(f: &FormView<'_>) -> Result<Self, FormError> {
        Ok(CreateRuleRequest {
            listener_arn: f.required_string("ListenerArn")?,
            conditions: conditions(f, "Conditions")?,
            priority: f.int("Priority")?,
            actions: actions(f, "Actions")?,
            tags: tags(f, "Tags")?,
        })
    }
}

/// ModifyRule: conditions and actions not sent keep their value.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ModifyRuleRequest {
    pub rule_arn: String,
    /// None when not sent.
    pub conditions: Option<Vec<RuleCondition>>,
    /// None when not sent.
    pub actions: Option<Vec<Action>>,
}

impl FromForm for ModifyRuleRequest {
    fn from_form(f: &FormView<'_>) -> Result<Self, FormError> {
        let conditions = conditions(f, "Conditions")?;
        let actions = actions(f, "Actions")?;
        Ok(ModifyRuleRequest {
            rule_arn: f.required_string("RuleArn")?,
            conditions: (!conditions.is_empty()).then_some(conditions),
            actions: (!actions.is_empty()).then_some(actions),
        })
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DescribeRulesRequest {
    pub listener_arn: Option<String>,
    pub rule_arns: Vec<String>,
    pub marker: Option<String>,
    pub page_size: Option<i64>,
}

impl FromForm for DescribeRulesRequest {
    fn from_form(f: &FormView<'_>) -> Result<Self, FormError> {
        Ok(DescribeRulesRequest {
            listener_arn: f.string("ListenerArn"),
            rule_arns: f.string_list("RuleArns"),
            marker: f.string("Marker"),
            page_size: f.int("PageSize")?,
        })
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeleteRuleRequest {
    pub rule_arn: String,
}

impl FromForm for DeleteRuleRequest {
    fn from_form(f: &FormView<'_>) -> Result<Self, FormError> {
        Ok(DeleteRuleRequest {
            rule_arn: f.required_string("RuleArn")?,
        })
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RulePriorityPair {
    pub rule_arn: Option<String>,
    pub priority: Option<i64>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SetRulePrioritiesRequest {
    pub rule_priorities: Vec<RulePriorityPair>,
}

impl FromForm for SetRulePrioritiesRequest {
    fn from_form(f: &FormView<'_>) -> Result<Self, FormError> {
        let rule_priorities = f
            .members("RulePriorities")
            .iter()
            .map(|m| {
                Ok(RulePriorityPair {
                    rule_arn: m.string("RuleArn"),
                    priority: m.int("Priority")?,
                })
            })
            .collect::<Result<_, FormError>>()?;
        Ok(SetRulePrioritiesRequest { rule_priorities })
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CreateListenerRequest {
    pub load_balancer_arn: String,
    pub protocol: Option<String>,
    pub port: Option<i64>,
    pub ssl_policy: Option<String>,
    pub certificate_arns: Vec<String>,
    pub default_actions: Vec<Action>,
    pub tags: Vec<Tag>,
}

impl FromForm for CreateListenerRequest {
    fn from_form(f: &FormView<'_>) -> Result<Self, FormError> {
        let default_actions = actions(f, "DefaultActions")?;
        Ok(CreateListenerRequest {
            load_balancer_arn: f.required_string("LoadBalancerArn")?,
            protocol: f.string("Protocol"),
            port: f.int("Port")?,
            ssl_policy: f.string("SslPolicy"),
            certificate_arns: f
                .members("Certificates")
                .iter()
                .filter_map(|m| m.string("CertificateArn"))
                .collect(),
            default_actions,
            tags: tags(f, "Tags")?,
        })
    }
}

/// ModifyListener: every member but the listener is optional; what is not sent keeps
/// its value.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ModifyListenerRequest {
    pub listener_arn: String,
    pub protocol: Option<String>,
    pub port: Option<i64>,
    pub ssl_policy: Option<String>,
    pub certificate_arns: Vec<String>,
    /// Empty when not sent: the listener keeps its default actions.
    pub default_actions: Vec<Action>,
}

impl FromForm for ModifyListenerRequest {
    fn from_form(f: &FormView<'_>) -> Result<Self, FormError> {
        let default_actions = actions(f, "DefaultActions")?;
        Ok(ModifyListenerRequest {
            listener_arn: f.required_string("ListenerArn")?,
            protocol: f.string("Protocol"),
            port: f.int("Port")?,
            ssl_policy: f.string("SslPolicy"),
            certificate_arns: f
                .members("Certificates")
                .iter()
                .filter_map(|m| m.string("CertificateArn"))
                .collect(),
            default_actions,
        })
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DescribeListenersRequest {
    pub load_balancer_arn: Option<String>,
    pub listener_arns: Vec<String>,
    pub marker: Option<String>,
    pub page_size: Option<i64>,
}

impl FromForm for DescribeListenersRequest {
    fn from_form(f: &FormView<'_>) -> Result<Self, FormError> {
        Ok(DescribeListenersRequest {
            load_balancer_arn: f.string("LoadBalancerArn"),
            listener_arns: f.string_list("ListenerArns"),
            marker: f.string("Marker"),
            page_size: f.int("PageSize")?,
        })
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeleteListenerRequest {
    pub listener_arn: String,
}

impl FromForm for DeleteListenerRequest {
    fn from_form(f: &FormView<'_>) -> Result<Self, FormError> {
        Ok(DeleteListenerRequest {
            listener_arn: f.required_string("ListenerArn")?,
        })
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TargetDescription {
    pub id: String,
    pub port: Option<i64>,
    pub availability_zone: Option<String>,
}

fn targets(f: &FormView<'_>) -> Result<Vec<TargetDescription>, FormError> {
    f.members("Targets")
        .iter()
        .map(|m| {
            Ok(TargetDescription {
                id: m.required_string("Id")?,
                port: m.int("Port")?,
                availability_zone: m.string("AvailabilityZone"),
            })
        })
        .collect()
}

/// RegisterTargets, DeregisterTargets and DescribeTargetHealth: a target group and
/// targets (required for the first two, a filter for the last).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TargetsRequest {
    pub target_group_arn: String,
    pub targets: Vec<TargetDescription>,
}

impl FromForm for TargetsRequest {
    fn from_form(f: &FormView<'_>) -> Result<Self, FormError> {
        Ok(TargetsRequest {
            target_group_arn: f.required_string("TargetGroupArn")?,
            targets: targets(f)?,
        })
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AddTagsRequest {
    pub resource_arns: Vec<String>,
    pub tags: Vec<Tag>,
}

impl FromForm for AddTagsRequest {
    fn from_form(f: &FormView<'_>) -> Result<Self, FormError> {
        Ok(AddTagsRequest {
            resource_arns: f.string_list("ResourceArns"),
            tags: tags(f, "Tags")?,
        })
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RemoveTagsRequest {
    pub resource_arns: Vec<String>,
    pub tag_keys: Vec<String>,
}

impl FromForm for RemoveTagsRequest {
    fn from_form(f: &FormView<'_>) -> Result<Self, FormError> {
        Ok(RemoveTagsRequest {
            resource_arns: f.string_list("ResourceArns"),
            tag_keys: f.string_list("TagKeys"),
        })
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DescribeTagsRequest {
    pub resource_arns: Vec<String>,
}

impl FromForm for DescribeTagsRequest {
    fn from_form(f: &FormView<'_>) -> Result<Self, FormError> {
        Ok(DescribeTagsRequest {
            resource_arns: f.string_list("ResourceArns"),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::elbv2::Form;

    fn decode<T: FromForm>(body: &str) -> Result<T, FormError> {
        T::from_form(&Form::parse(body.as_bytes()).unwrap().root())
    }

    #[test]
    fn decodes_create_target_group_as_the_cli_sends_it() {
        let request: CreateTargetGroupRequest = decode(
            "Action=CreateTargetGroup&Version=2015-12-01&Name=web&Protocol=HTTP&Port=80\
&HealthCheckPath=%2Fhealth&HealthCheckIntervalSeconds=10&HealthCheckEnabled=true\
&Matcher.HttpCode=200-299&TargetType=ip&Tags.member.1.Key=team&Tags.member.1.Value=a",
        )
        .unwrap();
        assert_eq!(request.name, "web");
        assert_eq!(request.port, Some(80));
        assert_eq!(request.health_check.path.as_deref(), Some("/health"));
        assert_eq!(request.health_check.interval_seconds, Some(10));
        assert_eq!(request.health_check.enabled, Some(true));
        assert_eq!(
            request.health_check.matcher.unwrap().http_code.as_deref(),
            Some("200-299")
        );
        assert_eq!(request.target_type.as_deref(), Some("ip"));
        assert_eq!(
            request.tags,
            [Tag {
                key: "team".into(),
                value: Some("a".into())
            }]
        );
    }

    #[test]
    fn decodes_listener_actions_both_ways() {
        let request: CreateListenerRequest = decode(
            "LoadBalancerArn=lb&Port=80&DefaultActions.member.1.Type=forward\
&DefaultActions.member.1.TargetGroupArn=tg1\
&DefaultActions.member.2.Type=forward\
&DefaultActions.member.2.ForwardConfig.TargetGroups.member.1.TargetGroupArn=tg2\
&DefaultActions.member.2.ForwardConfig.TargetGroups.member.1.Weight=1",
        )
        .unwrap();
        assert_eq!(request.default_actions.len(), 2);
        assert_eq!(
            request.default_actions[0].target_group_arn.as_deref(),
            Some("tg1")
        );
        assert_eq!(
            request.default_actions[1]
                .forward_config
                .as_ref()
                .unwrap()
                .target_groups[0]
                .target_group_arn
                .as_deref(),
            Some("tg2")
        );
    }

    #[test]
    fn decodes_fixed_response_redirect_and_stickiness() {
        let request: CreateListenerRequest = decode(
            "LoadBalancerArn=lb&Port=80&DefaultActions.member.1.Type=fixed-response\
&DefaultActions.member.1.FixedResponseConfig.StatusCode=503\
&DefaultActions.member.1.FixedResponseConfig.ContentType=text%2Fplain\
&DefaultActions.member.1.FixedResponseConfig.MessageBody=down\
&DefaultActions.member.2.Type=redirect&DefaultActions.member.2.Order=2\
&DefaultActions.member.2.RedirectConfig.Host=example.com\
&DefaultActions.member.2.RedirectConfig.StatusCode=HTTP_301\
&DefaultActions.member.3.Type=forward\
&DefaultActions.member.3.ForwardConfig.TargetGroupStickinessConfig.Enabled=false\
&DefaultActions.member.3.ForwardConfig.TargetGroupStickinessConfig.DurationSeconds=60",
        )
        .unwrap();
        let fixed = request.default_actions[0]
            .fixed_response_config
            .as_ref()
            .unwrap();
        assert_eq!(fixed.status_code.as_deref(), Some("503"));
        assert_eq!(fixed.content_type.as_deref(), Some("text/plain"));
        assert_eq!(fixed.message_body.as_deref(), Some("down"));
        let redirect = request.default_actions[1].redirect_config.as_ref().unwrap();
        assert_eq!(redirect.host.as_deref(), Some("example.com"));
        assert_eq!(redirect.path, None);
        assert_eq!(request.default_actions[1].order, Some(2));
        let stickiness = request.default_actions[2]
            .forward_config
            .as_ref()
            .unwrap()
            .stickiness
            .as_ref()
            .unwrap();
        assert_eq!(stickiness.enabled, Some(false));
        assert_eq!(stickiness.duration_seconds, Some(60));
    }

    #[test]
    fn decodes_rule_conditions_in_both_forms() {
        let request: CreateRuleRequest = decode(
            "ListenerArn=l&Priority=5\
&Conditions.member.1.Field=path-pattern&Conditions.member.1.Values.member.1=%2Fapi%2F*\
&Conditions.member.2.Field=http-header&Conditions.member.2.HttpHeaderConfig.HttpHeaderName=X-Env\
&Conditions.member.2.HttpHeaderConfig.Values.member.1=beta\
&Conditions.member.3.Field=query-string&Conditions.member.3.QueryStringConfig.Values.member.1.Key=v\
&Conditions.member.3.QueryStringConfig.Values.member.1.Value=2\
&Conditions.member.3.QueryStringConfig.Values.member.2.Value=x\
&Conditions.member.4.Field=host-header&Conditions.member.4.HostHeaderConfig.Values.member.1=a.example\
&Actions.member.1.Type=forward&Actions.member.1.TargetGroupArn=tg",
        )
        .unwrap();
        assert_eq!(request.priority, Some(5));
        let c = &request.conditions;
        assert_eq!(c[0].values, ["/api/*"]);
        assert_eq!(c[0].path_pattern_config, None);
        let header = c[1].http_header_config.as_ref().unwrap();
        assert_eq!(header.http_header_name.as_deref(), Some("X-Env"));
        assert_eq!(header.values, ["beta"]);
        let query = c[2].query_string_config.as_ref().unwrap();
        assert_eq!(query[0].key.as_deref(), Some("v"));
        assert_eq!(query[1].key, None);
        assert_eq!(query[1].value.as_deref(), Some("x"));
        assert_eq!(
            c[3].host_header_config.as_deref(),
            Some(&["a.example".to_string()][..])
        );
        let modify: ModifyRuleRequest = decode("RuleArn=r&Actions.member.1.Type=forward").unwrap();
        assert_eq!(modify.conditions, None);
        assert_eq!(modify.actions.unwrap().len(), 1);
        let priorities: SetRulePrioritiesRequest =
            decode("RulePriorities.member.1.RuleArn=r1&RulePriorities.member.1.Priority=3")
                .unwrap();
        assert_eq!(priorities.rule_priorities[0].priority, Some(3));
    }

    #[test]
    fn an_empty_protocol_version_is_unset_as_terraform_sends_it() {
        let request: CreateTargetGroupRequest = decode(
            "Action=CreateTargetGroup&Name=web&Protocol=HTTP&Port=80&ProtocolVersion=&VpcId=&TargetType=ip",
        )
        .unwrap();
        assert_eq!(request.protocol_version, None);
        assert_eq!(request.vpc_id, None);
        assert_eq!(request.target_type.as_deref(), Some("ip"));
    }

    #[test]
    fn decodes_attributes_keeping_empty_values() {
        let request: ModifyLoadBalancerAttributesRequest = decode(
            "LoadBalancerArn=lb&Attributes.member.1.Key=idle_timeout.timeout_seconds\
&Attributes.member.1.Value=30&Attributes.member.2.Key=access_logs.s3.prefix&Attributes.member.2.Value=",
        )
        .unwrap();
        assert_eq!(
            request.attributes,
            [
                Attribute {
                    key: "idle_timeout.timeout_seconds".into(),
                    value: "30".into()
                },
                Attribute {
                    key: "access_logs.s3.prefix".into(),
                    value: String::new()
                }
            ]
        );
        let listener: ModifyListenerAttributesRequest =
            decode("ListenerArn=l&Attributes.member.1.Key=tcp.idle_timeout.seconds&Attributes.member.1.Value=120")
                .unwrap();
        assert_eq!(listener.listener_arn, "l");
        assert_eq!(listener.attributes[0].value, "120");
    }

    #[test]
    fn decodes_modify_listener_with_only_what_changes() {
        let request: ModifyListenerRequest = decode("ListenerArn=l&Port=8081").unwrap();
        assert_eq!(request.port, Some(8081));
        assert_eq!(request.protocol, None);
        assert!(request.default_actions.is_empty());
        let request: ModifyListenerRequest = decode(
            "ListenerArn=l&Protocol=HTTP&DefaultActions.member.1.Type=forward&DefaultActions.member.1.TargetGroupArn=tg",
        )
        .unwrap();
        assert_eq!(request.protocol.as_deref(), Some("HTTP"));
        assert_eq!(
            request.default_actions[0].target_group_arn.as_deref(),
            Some("tg")
        );
    }

    #[test]
    fn decodes_targets_and_names_missing_fields() {
        let request: TargetsRequest = decode(
            "TargetGroupArn=tg&Targets.member.1.Id=10.0.0.1&Targets.member.1.Port=8080&Targets.member.2.Id=10.0.0.2",
        )
        .unwrap();
        assert_eq!(request.targets.len(), 2);
        assert_eq!(request.targets[0].port, Some(8080));
        assert_eq!(request.targets[1].port, None);
        let missing =
            decode::<TargetsRequest>("TargetGroupArn=tg&Targets.member.1.Port=80").unwrap_err();
        assert_eq!(missing.field, "Targets.member.1.Id");
        let missing = decode::<CreateTargetGroupRequest>("Port=80").unwrap_err();
        assert_eq!(missing.field, "Name");
    }
}
