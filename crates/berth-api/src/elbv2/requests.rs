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
pub struct Action {
    pub action_type: String,
    pub target_group_arn: Option<String>,
    pub order: Option<i64>,
    /// `ForwardConfig.TargetGroups`, when the forward action was written that way.
    pub forward_target_groups: Vec<TargetGroupTuple>,
}

impl FromForm for Action {
    fn from_form(f: &FormView<'_>) -> Result<Self, FormError> {
        let forward_target_groups = f
            .structure("ForwardConfig")
            .members("TargetGroups")
            .iter()
            .map(|m| {
                Ok(TargetGroupTuple {
                    target_group_arn: m.string("TargetGroupArn"),
                    weight: m.int("Weight")?,
                })
            })
            .collect::<Result<_, FormError>>()?;
        Ok(Action {
            action_type: f.required_string("Type")?,
            target_group_arn: f.string("TargetGroupArn"),
            order: f.int("Order")?,
            forward_target_groups,
        })
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
        let default_actions = f
            .members("DefaultActions")
            .iter()
            .map(Action::from_form)
            .collect::<Result<_, FormError>>()?;
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
        let default_actions = f
            .members("DefaultActions")
            .iter()
            .map(Action::from_form)
            .collect::<Result<_, FormError>>()?;
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
            request.default_actions[1].forward_target_groups[0]
                .target_group_arn
                .as_deref(),
            Some("tg2")
        );
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
