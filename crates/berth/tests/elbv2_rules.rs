//! ELBv2 listener rules end to end: the real aws CLI v2 and boto3 create, describe,
//! modify, reorder and delete rules on a `berth dev` listener, and real HTTP requests
//! through it reach two services' containers by path, host, header and query string,
//! split 3:1 by a weighted forward, and get a fixed response and a redirect.

mod support;

use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use serde_json::{json, Value};
use support::{assert_refused, http_request, str_at, Dev, HttpResponse};

const LOOPBACK: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

/// A GET through the listener with `headers`.
fn get(port: u16, path: &str, headers: &[(&str, &str)]) -> HttpResponse {
    let mut all = vec![("Host", "web.example.test")];
    all.retain(|(name, _)| !headers.iter().any(|(n, _)| n.eq_ignore_ascii_case(name)));
    all.extend_from_slice(headers);
    http_request(LOOPBACK, port, "GET", path, &all)
        .unwrap_or_else(|error| panic!("GET {path} through the listener: {error}"))
}

/// Which service answered: its containers serve their colour at every page.
fn colour(port: u16, path: &str, headers: &[(&str, &str)]) -> String {
    let response = get(port, path, headers);
    assert_eq!(response.status, 200, "GET {path} {headers:?}: {response:?}");
    response.body.trim().to_string()
}

/// Waits until `path` with `headers` is answered by `want` (rule changes reach the data
/// plane on its next apply).
fn wait_colour(dev: &Dev, port: u16, path: &str, headers: &[(&str, &str)], want: &str) {
    dev.wait_for(
        &format!("GET {path} {headers:?} to reach {want}"),
        Duration::from_secs(30),
        || {
            let response = get(port, path, headers);
            (response.status == 200 && response.body.trim() == want).then_some(())
        },
    );
}

fn create_target_group(dev: &Dev, name: &str) -> String {
    let tg = dev.aws_json(&[
        "elbv2",
        "create-target-group",
        "--name",
        name,
        "--protocol",
        "HTTP",
        "--port",
        "8080",
        "--target-type",
        "instance",
        "--vpc-id",
        "vpc-berth",
        "--health-check-path",
        "/health.html",
        "--health-check-interval-seconds",
        "5",
        "--health-check-timeout-seconds",
        "2",
        "--healthy-threshold-count",
        "2",
    ]);
    str_at(&tg, "/TargetGroups/0/TargetGroupArn").to_string()
}

/// A service of one task whose httpd answers `colour` at /, /api/, /v2/, /split/ and
/// /maintenance/.
fn start_service(dev: &Dev, colour: &str, target_group_arn: &str) {
    let pages = "/www /www/api /www/v2 /www/split /www/maintenance";
    let command = format!(
        "for d in {pages}; do mkdir -p $d && echo {colour} > $d/index.html; done \
         && echo ok > /www/health.html && exec httpd -f -p 8080 -h /www"
    );
    let containers = json!([{
        "name": "web", "image": "berth/busybox:latest", "memory": 16, "stopTimeout": 2,
        "portMappings": [{"containerPort": 8080, "hostPort": 0}],
        "command": ["sh", "-c", command],
    }]);
    dev.aws_json(&[
        "ecs",
        "register-task-definition",
        "--family",
        colour,
        "--container-definitions",
        &containers.to_string(),
    ]);
    dev.aws_json(&[
        "ecs",
        "create-service",
        "--service-name",
        colour,
        "--task-definition",
        colour,
        "--desired-count",
        "1",
        "--health-check-grace-period-seconds",
        "600",
        "--load-balancers",
        &format!("targetGroupArn={target_group_arn},containerName=web,containerPort=8080"),
    ]);
}

fn create_rule(
    dev: &Dev,
    listener: &str,
    priority: u32,
    conditions: Value,
    actions: Value,
) -> String {
    let rule = dev.aws_json(&[
        "elbv2",
        "create-rule",
        "--listener-arn",
        listener,
        "--priority",
        &priority.to_string(),
        "--conditions",
        &conditions.to_string(),
        "--actions",
        &actions.to_string(),
    ]);
    str_at(&rule, "/Rules/0/RuleArn").to_string()
}

fn forward(target_group_arn: &str) -> Value {
    json!([{"Type": "forward", "TargetGroupArn": target_group_arn}])
}

#[test]
fn listener_rules_route_real_requests_and_change_with_the_api() {
    let dev = Dev::start();
    let port = support::free_port();

    let lb = dev.aws_json(&[
        "elbv2",
        "create-load-balancer",
        "--name",
        "rules-lb",
        "--subnets",
        "subnet-berth",
    ]);
    let lb_arn = str_at(&lb, "/LoadBalancers/0/LoadBalancerArn").to_string();
    let blue = create_target_group(&dev, "blue");
    let green = create_target_group(&dev, "green");
    let listener = dev.aws_json(&[
        "elbv2",
        "create-listener",
        "--load-balancer-arn",
        &lb_arn,
        "--protocol",
        "HTTP",
        "--port",
        &port.to_string(),
        "--default-actions",
        &format!("Type=forward,TargetGroupArn={blue}"),
    ]);
    let listener_arn = str_at(&listener, "/Listeners/0/ListenerArn").to_string();

    // The green group is reached only through rules; that makes it the load
    // balancer's, so a service may register with it.
    let api_rule = create_rule(
        &dev,
        &listener_arn,
        10,
        json!([{"Field": "path-pattern", "Values": ["/api/*"]}]),
        forward(&green),
    );
    create_rule(
        &dev,
        &listener_arn,
        20,
        json!([{"Field": "host-header", "HostHeaderConfig": {"Values": ["green.example.test"]}}]),
        forward(&green),
    );
    create_rule(
        &dev,
        &listener_arn,
        30,
        json!([{"Field": "http-header",
                "HttpHeaderConfig": {"HttpHeaderName": "X-Colour", "Values": ["gr?en"]}}]),
        forward(&green),
    );
    create_rule(
        &dev,
        &listener_arn,
        40,
        json!([{"Field": "query-string",
                "QueryStringConfig": {"Values": [{"Key": "colour", "Value": "green"}]}}]),
        forward(&green),
    );
    let maintenance_rule = create_rule(
        &dev,
        &listener_arn,
        5,
        json!([{"Field": "path-pattern", "PathPatternConfig": {"Values": ["/maintenance*"]}}]),
        json!([{"Type": "fixed-response", "FixedResponseConfig": {
            "StatusCode": "503", "ContentType": "text/plain",
            "MessageBody": "down for maintenance"}}]),
    );
    create_rule(
        &dev,
        &listener_arn,
        6,
        json!([{"Field": "path-pattern", "Values": ["/old/*"]}]),
        json!([{"Type": "redirect", "RedirectConfig": {
            "Protocol": "HTTPS", "Port": "443", "Host": "new.example.test",
            "StatusCode": "HTTP_301"}}]),
    );
    create_rule(
        &dev,
        &listener_arn,
        50,
        json!([{"Field": "path-pattern", "Values": ["/split/*"]},
               {"Field": "http-request-method",
                "HttpRequestMethodConfig": {"Values": ["GET", "HEAD"]}}]),
        json!([{"Type": "forward", "ForwardConfig": {"TargetGroups": [
            {"TargetGroupArn": blue, "Weight": 3},
            {"TargetGroupArn": green, "Weight": 1}]}}]),
    );
    assert_refused(
        &dev.aws(&[
            "elbv2",
            "create-rule",
            "--listener-arn",
            &listener_arn,
            "--priority",
            "10",
            "--conditions",
            r#"[{"Field":"path-pattern","Values":["/x"]}]"#,
            "--actions",
            &forward(&green).to_string(),
        ]),
        "PriorityInUse",
        "Priority '10' is currently in use",
    );

    start_service(&dev, "blue", &blue);
    start_service(&dev, "green", &green);
    dev.wait_targets_healthy(&blue, 1);
    dev.wait_targets_healthy(&green, 1);

    // DescribeRules: by priority, the default rule last.
    let rules = dev.aws_json(&["elbv2", "describe-rules", "--listener-arn", &listener_arn]);
    let rules = rules["Rules"].as_array().expect("Rules");
    let priorities: Vec<&str> = rules.iter().map(|r| str_at(r, "/Priority")).collect();
    assert_eq!(
        priorities,
        ["5", "6", "10", "20", "30", "40", "50", "default"]
    );
    assert_eq!(rules[7]["IsDefault"], json!(true));
    assert_eq!(str_at(&rules[2], "/RuleArn"), api_rule);
    assert_eq!(
        rules[6].pointer("/Actions/0/ForwardConfig/TargetGroups/0/Weight"),
        Some(&json!(3))
    );
    assert_eq!(
        str_at(&rules[4], "/Conditions/0/HttpHeaderConfig/HttpHeaderName"),
        "X-Colour"
    );

    // Real requests, routed by each rule.
    wait_colour(&dev, port, "/api/", &[], "green");
    assert_eq!(colour(port, "/", &[]), "blue");
    assert_eq!(
        colour(port, "/", &[("Host", "green.example.test")]),
        "green"
    );
    assert_eq!(
        colour(port, "/", &[("Host", "GREEN.example.test:8080")]),
        "green"
    );
    assert_eq!(colour(port, "/", &[("Host", "blue.example.test")]), "blue");
    assert_eq!(colour(port, "/", &[("X-Colour", "green")]), "green");
    assert_eq!(colour(port, "/", &[("X-Colour", "blue")]), "blue");
    assert_eq!(colour(port, "/?colour=green", &[]), "green");
    assert_eq!(colour(port, "/?colour=blue", &[]), "blue");

    let fixed = get(port, "/maintenance/", &[]);
    assert_eq!(fixed.status, 503, "{fixed:?}");
    assert_eq!(fixed.body, "down for maintenance");
    assert!(
        fixed
            .header("content-type")
            .is_some_and(|t| t.starts_with("text/plain")),
        "{fixed:?}"
    );
    let moved = get(port, "/old/page?x=1", &[]);
    assert_eq!(moved.status, 301, "{moved:?}");
    assert_eq!(
        moved.header("location"),
        Some("https://new.example.test/old/page?x=1")
    );

    // The weighted forward: exactly 3 of every 4 requests to blue.
    let mut split = std::collections::BTreeMap::<String, usize>::new();
    for _ in 0..40 {
        *split.entry(colour(port, "/split/", &[])).or_default() += 1;
    }
    assert_eq!(split.get("blue"), Some(&30), "{split:?}");
    assert_eq!(split.get("green"), Some(&10), "{split:?}");

    // boto3: ModifyRule, SetRulePriorities, and ELBv2's refusals.
    let default_rule = str_at(&rules[7], "/RuleArn").to_string();
    dev.boto3_checks(&format!(
        r#"
import boto3, os
from botocore.exceptions import ClientError
client = boto3.client('elbv2', endpoint_url=os.environ['BERTH_ENDPOINT'], region_name='us-east-1')
def refused(code, call, **kwargs):
    try:
        call(**kwargs)
    except ClientError as error:
        assert error.response['Error']['Code'] == code, error.response
        return error.response['Error']['Message']
    raise AssertionError('expected ' + code)

modified = client.modify_rule(RuleArn='{api_rule}',
    Conditions=[{{'Field': 'path-pattern', 'PathPatternConfig': {{'Values': ['/v2/*']}}}}])
assert modified['Rules'][0]['Conditions'][0]['PathPatternConfig']['Values'] == ['/v2/*'], modified
moved = client.set_rule_priorities(RulePriorities=[{{'RuleArn': '{maintenance_rule}', 'Priority': 45}}])
assert moved['Rules'][0]['Priority'] == '45', moved
message = refused('OperationNotPermitted', client.delete_rule, RuleArn='{default_rule}')
assert 'default rule' in message, message
refused('OperationNotPermitted', client.set_rule_priorities,
    RulePriorities=[{{'RuleArn': '{default_rule}', 'Priority': 1}}])
refused('PriorityInUse', client.set_rule_priorities,
    RulePriorities=[{{'RuleArn': '{api_rule}', 'Priority': 20}}])
refused('ValidationError', client.create_rule, ListenerArn='{listener_arn}', Priority=60,
    Conditions=[{{'Field': 'path-pattern', 'Values': ['/a', '/b', '/c', '/d']}}],
    Actions=[{{'Type': 'forward', 'TargetGroupArn': '{green}'}}])
refused('TargetGroupNotFound', client.create_rule, ListenerArn='{listener_arn}', Priority=60,
    Conditions=[{{'Field': 'path-pattern', 'Values': ['/a']}}],
    Actions=[{{'Type': 'forward', 'TargetGroupArn': '{green}'.replace('/green/', '/gone/')}}])
# Reached only by rules, green is in use by the load balancer.
refused('ResourceInUse', client.delete_target_group, TargetGroupArn='{green}')
group = client.describe_target_groups(TargetGroupArns=['{green}'])['TargetGroups'][0]
assert group['LoadBalancerArns'] == ['{lb_arn}'], group
paged = client.describe_rules(ListenerArn='{listener_arn}', PageSize=3)
assert len(paged['Rules']) == 3 and 'NextMarker' in paged, paged
rest = client.describe_rules(ListenerArn='{listener_arn}', Marker=paged['NextMarker'])
assert len(rest['Rules']) == 5 and rest['Rules'][-1]['IsDefault'], rest
print('ok')
"#
    ));

    // The data plane follows: /api/ falls to the default, /v2/ is green, and with the
    // fixed response now after the header rule, the header wins.
    wait_colour(&dev, port, "/api/", &[], "blue");
    assert_eq!(colour(port, "/v2/", &[]), "green");
    wait_colour(
        &dev,
        port,
        "/maintenance/",
        &[("X-Colour", "green")],
        "green",
    );
    assert_eq!(get(port, "/maintenance/", &[]).status, 503);

    // DeleteRule: the fixed response is gone.
    dev.aws_json(&["elbv2", "delete-rule", "--rule-arn", &maintenance_rule]);
    wait_colour(&dev, port, "/maintenance/", &[], "blue");
    let rules = dev.aws_json(&["elbv2", "describe-rules", "--listener-arn", &listener_arn]);
    assert_eq!(rules["Rules"].as_array().map(Vec::len), Some(7));

    // The default action itself may be a fixed response.
    dev.aws_json(&[
        "elbv2",
        "modify-listener",
        "--listener-arn",
        &listener_arn,
        "--default-actions",
        r#"[{"Type":"fixed-response","FixedResponseConfig":{"StatusCode":"404","MessageBody":"no route"}}]"#,
    ]);
    dev.wait_for(
        "the default fixed response",
        Duration::from_secs(30),
        || {
            let response = get(port, "/", &[]);
            (response.status == 404 && response.body == "no route").then_some(())
        },
    );
    assert_eq!(colour(port, "/v2/", &[]), "green");

    // Deleting the listener deletes its rules.
    dev.aws_json(&["elbv2", "delete-listener", "--listener-arn", &listener_arn]);
    assert_refused(
        &dev.aws(&["elbv2", "describe-rules", "--rule-arns", &api_rule]),
        "RuleNotFound",
        "not found",
    );
}
