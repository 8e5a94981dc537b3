//! Bad input at every action, generated: whatever the body, an ECS or ELBv2 action
//! answers without panicking, a refusal is a 4xx with a code and a message, and a
//! refused request stores nothing (the store's revision does not move).
//!
//! The bodies come from a fixed-seed generator, so a failure names a body that
//! reproduces it.

use std::panic::AssertUnwindSafe;

use futures_util::FutureExt;
use serde_json::{json, Map, Value};

use crate::dispatch::{dispatch, dispatch_query};
use crate::ControlPlane;

const ECS_ACTIONS: &[&str] = &[
    "CreateCluster",
    "DescribeClusters",
    "ListClusters",
    "DeleteCluster",
    "RegisterTaskDefinition",
    "DescribeTaskDefinition",
    "DeregisterTaskDefinition",
    "ListTaskDefinitions",
    "ListTaskDefinitionFamilies",
    "RunTask",
    "StopTask",
    "DescribeTasks",
    "ListTasks",
    "CreateService",
    "UpdateService",
    "DescribeServices",
    "ListServices",
    "DeleteService",
    "ListServiceDeployments",
    "DescribeServiceDeployments",
    "DescribeServiceRevisions",
    "TagResource",
    "UntagResource",
    "ListTagsForResource",
    "ListContainerInstances",
    "DescribeContainerInstances",
    "UpdateContainerInstancesState",
    "DeregisterContainerInstance",
    "PutAccountSetting",
    "PutAccountSettingDefault",
    "ListAccountSettings",
    "DeleteAccountSetting",
    "ListServicesByNamespace",
];

const ELBV2_ACTIONS: &[&str] = &[
    "CreateLoadBalancer",
    "DescribeLoadBalancers",
    "DeleteLoadBalancer",
    "CreateTargetGroup",
    "DescribeTargetGroups",
    "ModifyTargetGroup",
    "DeleteTargetGroup",
    "DescribeTargetGroupAttributes",
    "ModifyTargetGroupAttributes",
    "CreateListener",
    "DescribeListeners",
    "DeleteListener",
    "CreateRule",
    "DescribeRules",
    "ModifyRule",
    "DeleteRule",
    "SetRulePriorities",
    "RegisterTargets",
    "DeregisterTargets",
    "DescribeTargetHealth",
    "AddTags",
    "RemoveTags",
    "DescribeTags",
];

/// Field names the ECS actions read, at the top level or inside containers.
const ECS_FIELDS: &[&str] = &[
    "cluster",
    "name",
    "value",
    "principalArn",
    "effectiveSettings",
    "namespace",
    "clusterName",
    "clusters",
    "family",
    "taskDefinition",
    "containerDefinitions",
    "networkMode",
    "cpu",
    "memory",
    "volumes",
    "service",
    "serviceName",
    "services",
    "desiredCount",
    "count",
    "task",
    "tasks",
    "reason",
    "overrides",
    "containerOverrides",
    "deploymentConfiguration",
    "maximumPercent",
    "minimumHealthyPercent",
    "loadBalancers",
    "targetGroupArn",
    "containerName",
    "containerPort",
    "placementStrategy",
    "placementConstraints",
    "healthCheckGracePeriodSeconds",
    "forceNewDeployment",
    "force",
    "resourceArn",
    "tags",
    "tagKeys",
    "key",
    "value",
    "desiredStatus",
    "maxResults",
    "nextToken",
    "containerInstances",
    "containerInstance",
    "status",
    "name",
    "image",
    "essential",
    "portMappings",
    "hostPort",
    "protocol",
    "dependsOn",
    "condition",
    "healthCheck",
    "command",
    "interval",
    "timeout",
    "retries",
    "startPeriod",
    "environment",
    "mountPoints",
    "sourceVolume",
    "containerPath",
    "stopTimeout",
    "memoryReservation",
    "links",
    "secrets",
    "logConfiguration",
    "logDriver",
    "dockerLabels",
    "ulimits",
    "host",
    "sourcePath",
    "startedBy",
    "group",
    "revision",
    "serviceDeploymentArns",
    "serviceRevisionArns",
    "createdAt",
    "before",
    "after",
];

const ELBV2_PARAMETERS: &[&str] = &[
    "Name",
    "Names.member.1",
    "Type",
    "Scheme",
    "Protocol",
    "Port",
    "VpcId",
    "TargetType",
    "HealthCheckProtocol",
    "HealthCheckPort",
    "HealthCheckPath",
    "HealthCheckIntervalSeconds",
    "HealthCheckTimeoutSeconds",
    "HealthyThresholdCount",
    "UnhealthyThresholdCount",
    "HealthCheckEnabled",
    "Matcher.HttpCode",
    "LoadBalancerArn",
    "LoadBalancerArns.member.1",
    "TargetGroupArn",
    "TargetGroupArns.member.1",
    "ListenerArn",
    "ListenerArns.member.1",
    "DefaultActions.member.1.Type",
    "DefaultActions.member.1.TargetGroupArn",
    "DefaultActions.member.2.Type",
    "Targets.member.1.Id",
    "Targets.member.1.Port",
    "Targets.member.2.Id",
    "Targets.member.999999999999.Id",
    "Attributes.member.1.Key",
    "Attributes.member.1.Value",
    "ResourceArns.member.1",
    "Tags.member.1.Key",
    "Tags.member.1.Value",
    "TagKeys.member.1",
    "Version",
];

/// xorshift64*: a small, fixed-seed generator, so every run sends the same bodies.
struct Generator(u64);

impl Generator {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len())]
    }

    fn text(&mut self) -> String {
        match self.below(11) {
            0 => String::new(),
            1 => "x".repeat(300),
            2 => "arn:aws:ecs:us-east-1:000000000000:service/default/web".to_string(),
            3 => "arn:aws:elasticloadbalancing:us-east-1:000000000000:targetgroup/tg/0".to_string(),
            4 => "ünïcødé/../\u{0}".to_string(),
            5 => "default".to_string(),
            6 => "web:1".to_string(),
            7 => "-1".to_string(),
            8 => "CMD-SHELL".to_string(),
            9 => match self.below(3) {
                0 => "arn:aws:ecs:us-east-1:000000000000:service-deployment/default/web/1",
                1 => "arn:aws:ecs:us-east-1:000000000000:service-revision/default/web/1",
                _ => "SUCCESSFUL",
            }
            .to_string(),
            _ => format!("{}", self.next()),
        }
    }

    fn value(&mut self, depth: usize) -> Value {
        let kinds = if depth > 3 { 6 } else { 9 };
        match self.below(kinds) {
            0 => Value::Null,
            1 => json!(self.below(2) == 0),
            2 => json!(self.next() as i64),
            3 => json!([-1, 0, 65535, 65536, i64::MAX, i64::MIN][self.below(6)]),
            4 => json!(f64::from(self.below(1000) as u32) / 7.0),
            5 => json!(self.text()),
            6 | 7 => {
                let fields = self.below(5);
                let mut object = Map::new();
                for _ in 0..fields {
                    object.insert(self.pick(ECS_FIELDS).to_string(), self.value(depth + 1));
                }
                Value::Object(object)
            }
            _ => {
                let items = self.below(4);
                Value::Array((0..items).map(|_| self.value(depth + 1)).collect())
            }
        }
    }

    fn ecs_body(&mut self) -> Vec<u8> {
        match self.below(12) {
            0 => b"{".to_vec(),
            1 => b"null".to_vec(),
            2 => b"[]".to_vec(),
            3 => b"\xff\xfe{}".to_vec(),
            4 => b"{\"cluster\": 1e999}".to_vec(),
            _ => {
                let mut object = Map::new();
                for _ in 0..self.below(6) {
                    object.insert(self.pick(ECS_FIELDS).to_string(), self.value(0));
                }
                serde_json::to_vec(&Value::Object(object)).unwrap()
            }
        }
    }

    fn elbv2_body(&mut self, action: &str) -> Vec<u8> {
        let mut body = format!("Action={action}");
        if self.below(4) > 0 {
            body.push_str("&Version=2015-12-01");
        }
        for _ in 0..self.below(8) {
            let name = self.pick(ELBV2_PARAMETERS);
            let value = match self.below(6) {
                0 => String::new(),
                1 => "%ZZ%".to_string(),
                2 => format!("{}", self.next() as i64),
                3 => "99999999999999999999".to_string(),
                _ => self.text().replace('&', "%26"),
            };
            body.push_str(&format!("&{name}={value}"));
        }
        body.into_bytes()
    }
}

async fn ecs(control_plane: &ControlPlane, action: &str, body: Value) {
    let target = format!("{}.{action}", berth_api::ECS_TARGET_PREFIX);
    let body = serde_json::to_vec(&body).unwrap();
    if let Err(error) = dispatch(control_plane, &target, "us-east-1", &body).await {
        panic!("{action} failed: {}", error.message);
    }
}

/// A cluster with a task definition, a service and a load balancer, so generated
/// requests that name them reach deep into the actions.
async fn seeded() -> ControlPlane {
    let control_plane = ControlPlane::in_memory();
    ecs(
        &control_plane,
        "CreateCluster",
        json!({"clusterName": "default"}),
    )
    .await;
    ecs(
        &control_plane,
        "RegisterTaskDefinition",
        json!({"family": "web", "containerDefinitions": [
            {"name": "web", "image": "busybox", "memory": 16,
             "portMappings": [{"containerPort": 80, "hostPort": 0}]}]}),
    )
    .await;
    ecs(
        &control_plane,
        "CreateService",
        json!({"serviceName": "web", "taskDefinition": "web", "desiredCount": 2}),
    )
    .await;
    for body in [
        "Action=CreateLoadBalancer&Version=2015-12-01&Name=lb",
        "Action=CreateTargetGroup&Version=2015-12-01&Name=tg&Protocol=HTTP&Port=80&VpcId=vpc-1",
    ] {
        let answer = dispatch_query(&control_plane, "us-east-1", body.as_bytes(), "seed").await;
        assert_eq!(answer.status, 200, "{}", answer.document);
    }
    control_plane
}

fn revision(control_plane: &ControlPlane) -> u64 {
    *control_plane.store.watch().borrow()
}

#[tokio::test]
async fn generated_ecs_requests_never_panic_and_refusals_store_nothing() {
    let control_plane = seeded().await;
    let mut generator = Generator(0x9E37_79B9_7F4A_7C15);
    let mut refused = 0;
    for round in 0..150 {
        for action in ECS_ACTIONS {
            let body = generator.ecs_body();
            let target = format!("{}.{action}", berth_api::ECS_TARGET_PREFIX);
            let before = revision(&control_plane);
            let outcome = AssertUnwindSafe(dispatch(&control_plane, &target, "us-east-1", &body))
                .catch_unwind()
                .await;
            let shown = String::from_utf8_lossy(&body);
            let Ok(result) = outcome else {
                panic!("{action} panicked on round {round} with body {shown}");
            };
            if let Err(error) = result {
                refused += 1;
                assert!(
                    (400..500).contains(&error.status),
                    "{action} answered {} to {shown}: {}",
                    error.status,
                    error.message
                );
                assert!(!error.error_type.is_empty(), "{action}: no error code");
                assert!(!error.message.is_empty(), "{action}: no message");
                assert_eq!(
                    revision(&control_plane),
                    before,
                    "{action} refused {shown} but stored something"
                );
            }
        }
    }
    // The generator is not so tame that everything passes.
    assert!(refused > 1000, "only {refused} requests were refused");
}

#[tokio::test]
async fn generated_elbv2_requests_never_panic_and_refusals_store_nothing() {
    let control_plane = seeded().await;
    let mut generator = Generator(0xD1B5_4A32_D192_ED03);
    let mut refused = 0;
    for round in 0..150 {
        for action in ELBV2_ACTIONS {
            let body = generator.elbv2_body(action);
            let before = revision(&control_plane);
            let shown = String::from_utf8_lossy(&body).into_owned();
            let answer = AssertUnwindSafe(dispatch_query(
                &control_plane,
                "us-east-1",
                &body,
                "generated",
            ))
            .catch_unwind()
            .await
            .unwrap_or_else(|_| panic!("{action} panicked on round {round} with body {shown}"));
            if answer.status != 200 {
                refused += 1;
                assert!(
                    (400..500).contains(&answer.status),
                    "{action} answered {} to {shown}: {}",
                    answer.status,
                    answer.document
                );
                assert!(
                    answer.document.contains("<Code>") && answer.document.contains("<Message>"),
                    "{action}: {}",
                    answer.document
                );
                assert_eq!(
                    revision(&control_plane),
                    before,
                    "{action} refused {shown} but stored something"
                );
            }
        }
    }
    assert!(refused > 1000, "only {refused} requests were refused");
}
