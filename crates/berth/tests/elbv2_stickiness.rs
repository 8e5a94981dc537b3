//! Target group stickiness through a real `berth dev`: the real aws CLI sets
//! `stickiness.*` with modify-target-group-attributes (a bad value is refused and
//! changes nothing), and real HTTP through the listener to two real containers shows
//! the `AWSALB` cookie keeping a client on one task while clients without it are
//! spread over both.

mod support;

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use serde_json::Value;
use support::{assert_refused, Dev};

fn str_at<'a>(value: &'a Value, pointer: &str) -> &'a str {
    value
        .pointer(pointer)
        .and_then(Value::as_str)
        .unwrap_or_else(|| panic!("{pointer} in {value}"))
}

fn attributes(answer: &Value) -> BTreeMap<String, String> {
    answer["Attributes"]
        .as_array()
        .unwrap_or_else(|| panic!("no Attributes in {answer}"))
        .iter()
        .map(|a| {
            (
                str_at(a, "/Key").to_string(),
                str_at(a, "/Value").to_string(),
            )
        })
        .collect()
}

struct Answer {
    status: u16,
    body: String,
    set_cookies: Vec<String>,
}

/// One HTTP/1.1 GET on a new connection to the listener, with `cookie` if given.
fn get(port: u16, cookie: Option<&str>) -> Answer {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).expect("the listener accepts");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let cookie = cookie
        .map(|cookie| format!("Cookie: {cookie}\r\n"))
        .unwrap_or_default();
    write!(
        stream,
        "GET / HTTP/1.1\r\nHost: web.test\r\n{cookie}Connection: close\r\n\r\n"
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let (head, body) = response.split_once("\r\n\r\n").unwrap_or((&response, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let set_cookies = head
        .lines()
        .filter_map(|line| line.split_once(':'))
        .filter(|(name, _)| name.eq_ignore_ascii_case("set-cookie"))
        .map(|(_, value)| value.trim().to_string())
        .collect();
    Answer {
        status,
        body: body.trim().to_string(),
        set_cookies,
    }
}

impl Answer {
    fn cookie(&self, name: &str) -> Option<String> {
        self.set_cookies.iter().find_map(|cookie| {
            let (pair, _) = cookie.split_once(';').unwrap_or((cookie, ""));
            let (key, value) = pair.split_once('=')?;
            (key == name).then(|| value.to_string())
        })
    }
}

#[test]
fn the_lb_cookie_keeps_a_client_on_one_task() {
    let dev = Dev::start();
    let port = support::free_port();

    let lb = dev.aws_json(&[
        "elbv2",
        "create-load-balancer",
        "--name",
        "sticky-lb",
        "--subnets",
        "subnet-berth",
    ]);
    let lb_arn = str_at(&lb, "/LoadBalancers/0/LoadBalancerArn").to_string();
    let tg = dev.aws_json(&[
        "elbv2",
        "create-target-group",
        "--name",
        "sticky-tg",
        "--protocol",
        "HTTP",
        "--port",
        "8080",
        "--target-type",
        "instance",
        "--vpc-id",
        "vpc-berth",
        "--health-check-interval-seconds",
        "5",
        "--health-check-timeout-seconds",
        "2",
        "--healthy-threshold-count",
        "2",
    ]);
    let tg_arn = str_at(&tg, "/TargetGroups/0/TargetGroupArn").to_string();

    // ELBv2's defaults, then a bad request that stores nothing, then the real one.
    let described = attributes(&dev.aws_json(&[
        "elbv2",
        "describe-target-group-attributes",
        "--target-group-arn",
        &tg_arn,
    ]));
    assert_eq!(described["stickiness.enabled"], "false");
    assert_eq!(described["stickiness.type"], "lb_cookie");
    assert_eq!(described["stickiness.lb_cookie.duration_seconds"], "86400");
    assert_eq!(described["stickiness.app_cookie.cookie_name"], "");
    let refused = dev.aws(&[
        "elbv2",
        "modify-target-group-attributes",
        "--target-group-arn",
        &tg_arn,
        "--attributes",
        "Key=stickiness.enabled,Value=true",
        "Key=stickiness.lb_cookie.duration_seconds,Value=604801",
    ]);
    assert_refused(
        &refused,
        "ValidationError",
        "stickiness.lb_cookie.duration_seconds",
    );
    let refused = dev.aws(&[
        "elbv2",
        "modify-target-group-attributes",
        "--target-group-arn",
        &tg_arn,
        "--attributes",
        "Key=stickiness.enabled,Value=true",
        "Key=stickiness.type,Value=app_cookie",
    ]);
    assert_refused(
        &refused,
        "InvalidConfigurationRequest",
        "stickiness.app_cookie.cookie_name",
    );
    let unchanged = attributes(&dev.aws_json(&[
        "elbv2",
        "describe-target-group-attributes",
        "--target-group-arn",
        &tg_arn,
    ]));
    assert_eq!(unchanged, described, "a refused request stores nothing");
    let modified = attributes(&dev.aws_json(&[
        "elbv2",
        "modify-target-group-attributes",
        "--target-group-arn",
        &tg_arn,
        "--attributes",
        "Key=stickiness.enabled,Value=true",
        "Key=stickiness.type,Value=lb_cookie",
        "Key=stickiness.lb_cookie.duration_seconds,Value=600",
        "Key=deregistration_delay.timeout_seconds,Value=2",
    ]));
    assert_eq!(modified["stickiness.enabled"], "true");
    assert_eq!(modified["stickiness.lb_cookie.duration_seconds"], "600");

    dev.aws_json(&[
        "elbv2",
        "create-listener",
        "--load-balancer-arn",
        &lb_arn,
        "--protocol",
        "HTTP",
        "--port",
        &port.to_string(),
        "--default-actions",
        &format!("Type=forward,TargetGroupArn={tg_arn}"),
    ]);
    dev.aws_json(&[
        "ecs", "register-task-definition", "--family", "sticky", "--container-definitions",
        r#"[{"name":"web","image":"berth/busybox:latest","memory":16,"stopTimeout":2,
            "portMappings":[{"containerPort":8080,"hostPort":0}],
            "command":["sh","-c","mkdir -p /www && hostname > /www/index.html && exec httpd -f -p 8080 -h /www"]}]"#,
    ]);
    dev.aws_json(&[
        "ecs",
        "create-service",
        "--service-name",
        "sticky",
        "--task-definition",
        "sticky",
        "--desired-count",
        "2",
        "--load-balancers",
        &format!("targetGroupArn={tg_arn},containerName=web,containerPort=8080"),
    ]);
    dev.wait_targets_healthy(&tg_arn, 2);

    // Without the cookie, requests spread over both tasks; each answer sets one.
    let mut tokens: BTreeMap<String, String> = BTreeMap::new();
    for _ in 0..6 {
        let answer = get(port, None);
        assert_eq!(answer.status, 200, "{}", answer.body);
        let token = answer.cookie("AWSALB").expect("the balancer sets AWSALB");
        assert!(
            answer
                .set_cookies
                .contains(&format!("AWSALB={token}; Max-Age=600; Path=/")),
            "{:?}",
            answer.set_cookies
        );
        assert!(answer.cookie("AWSALBCORS").is_some());
        tokens.insert(answer.body, token);
    }
    assert_eq!(tokens.len(), 2, "both tasks answer: {tokens:?}");

    // With the cookie, every request goes to the task it names.
    for (host, token) in &tokens {
        for _ in 0..6 {
            let answer = get(port, Some(&format!("AWSALB={token}")));
            assert_eq!(&answer.body, host, "the cookie of {host} sticks");
        }
    }
    // A forged cookie is ignored: the client is placed as without one.
    let forged = get(port, Some("AWSALB=127.0.0.1:1"));
    assert_eq!(forged.status, 200);
    assert!(tokens.contains_key(&forged.body));
    assert_eq!(forged.cookie("AWSALB"), tokens.get(&forged.body).cloned());
}
