//! A listener whose port berth's load balancer cannot bind, against a real `berth dev`
//! and the real `aws` CLI: CreateListener and ModifyListener fail naming the port and
//! the system's reason and store nothing, `berth apply` exits non-zero naming the
//! listener, and a stored listener whose port another process holds after a restart is
//! shown as not serving by `berth ps` until the port is free, then serves again.
//! Each test holds its ports with a `TcpListener` of its own.

mod support;

use std::net::TcpListener;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use serde_json::Value;
use support::{http_get, Dev};

/// A port on the balancer's address (`127.0.0.1` in tests) held by this test.
fn hold_port() -> (TcpListener, u16) {
    let held = TcpListener::bind("127.0.0.1:0").expect("hold a port");
    let port = held.local_addr().unwrap().port();
    (held, port)
}

fn str_of<'a>(value: &'a Value, pointer: &str) -> &'a str {
    value
        .pointer(pointer)
        .and_then(Value::as_str)
        .unwrap_or_else(|| panic!("{pointer} missing in {value}"))
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// A load balancer named `name`; its ARN.
fn load_balancer(dev: &Dev, name: &str) -> String {
    let created = dev.aws_json(&["elbv2", "create-load-balancer", "--name", name]);
    str_of(&created, "/LoadBalancers/0/LoadBalancerArn").to_string()
}

/// `create-listener` with a fixed response, so a listener answers with no task behind it.
fn create_listener(dev: &Dev, load_balancer_arn: &str, port: u16) -> Output {
    dev.aws(&[
        "elbv2",
        "create-listener",
        "--load-balancer-arn",
        load_balancer_arn,
        "--protocol",
        "HTTP",
        "--port",
        &port.to_string(),
        "--default-actions",
        r#"[{"Type":"fixed-response","FixedResponseConfig":{"StatusCode":"200","ContentType":"text/plain","MessageBody":"served"}}]"#,
    ])
}

fn listener_ports(dev: &Dev, load_balancer_arn: &str) -> Vec<u64> {
    let described = dev.aws_json(&[
        "elbv2",
        "describe-listeners",
        "--load-balancer-arn",
        load_balancer_arn,
    ]);
    described["Listeners"]
        .as_array()
        .unwrap_or_else(|| panic!("no Listeners in {described}"))
        .iter()
        .map(|l| l["Port"].as_u64().unwrap())
        .collect()
}

/// The listener on `port` answers with its fixed response.
fn wait_served(dev: &Dev, port: u16) {
    dev.wait_for(
        &format!("the listener on port {port} to answer"),
        Duration::from_secs(30),
        || match http_get(port, "/") {
            Ok((200, body)) if body == "served" => Some(()),
            _ => None,
        },
    );
}

fn assert_refused_for_port(out: &Output, port: u16, words: &str) {
    let said = text(out);
    assert!(!out.status.success(), "the request succeeded: {said}");
    for expected in [
        "InvalidConfigurationRequest".to_string(),
        format!("Port {port} cannot be bound"),
        format!("127.0.0.1:{port}: Address already in use"),
        words.to_string(),
    ] {
        assert!(said.contains(&expected), "'{expected}' missing in: {said}");
    }
}

#[test]
fn create_listener_on_a_held_port_fails_naming_it_and_stores_nothing() {
    let dev = Dev::start();
    let lb = load_balancer(&dev, "bind-create");
    let (_held, held_port) = hold_port();

    let refused = create_listener(&dev, &lb, held_port);
    assert_refused_for_port(&refused, held_port, "the listener was not created");
    assert_eq!(listener_ports(&dev, &lb), Vec::<u64>::new());

    // A free port is created, binds and serves, as before.
    let free = support::free_port();
    let created = create_listener(&dev, &lb, free);
    assert!(created.status.success(), "{}", text(&created));
    wait_served(&dev, free);
    assert_eq!(listener_ports(&dev, &lb), vec![u64::from(free)]);

    // DescribeListeners carries berth's own BerthServingState; the aws CLI v1 and v2
    // and boto3 read the answer as ever (they skip elements they do not know).
    let raw = dev.boto3(&format!(
        r#"
import boto3, os
client = boto3.client('elbv2', endpoint_url=os.environ['BERTH_ENDPOINT'], region_name='us-east-1')
listeners = client.describe_listeners(LoadBalancerArn='{lb}')['Listeners']
assert [l['Port'] for l in listeners] == [{free}], listeners
assert listeners[0]['DefaultActions'][0]['Type'] == 'fixed-response', listeners
print('ok')
"#
    ));
    assert!(
        raw.status.success() && String::from_utf8_lossy(&raw.stdout).trim() == "ok",
        "boto3: {}",
        text(&raw)
    );
    let v1 = Command::new("python3")
        .args(["-m", "awscli", "--endpoint-url", &dev.endpoint()])
        .args(["--output", "json", "elbv2", "describe-listeners"])
        .args(["--load-balancer-arn", &lb])
        .env("AWS_ACCESS_KEY_ID", support::ACCESS_KEY_ID)
        .env("AWS_SECRET_ACCESS_KEY", support::SECRET_ACCESS_KEY)
        .env("AWS_DEFAULT_REGION", "us-east-1")
        .env("AWS_CONFIG_FILE", "/nonexistent/berth-test-config")
        .env(
            "AWS_SHARED_CREDENTIALS_FILE",
            "/nonexistent/berth-test-credentials",
        )
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env_remove("AWS_PROFILE")
        .env_remove("AWS_ENDPOINT_URL")
        .stdin(Stdio::null())
        .output()
        .expect("run the aws CLI v1 (python3 -m awscli)");
    let v1_listeners: Value = serde_json::from_slice(&v1.stdout)
        .unwrap_or_else(|e| panic!("aws v1 answered no JSON ({e}): {}", text(&v1)));
    assert_eq!(
        v1_listeners["Listeners"][0]["Port"].as_u64(),
        Some(u64::from(free)),
        "{v1_listeners}"
    );
}

#[test]
fn modify_listener_to_a_held_port_fails_and_the_listener_keeps_serving_on_its_port() {
    let dev = Dev::start();
    let lb = load_balancer(&dev, "bind-modify");
    let port = support::free_port();
    let created = create_listener(&dev, &lb, port);
    assert!(created.status.success(), "{}", text(&created));
    let created: Value = serde_json::from_slice(&created.stdout).unwrap();
    let listener_arn = str_of(&created, "/Listeners/0/ListenerArn").to_string();
    wait_served(&dev, port);

    let (_held, held_port) = hold_port();
    let refused = dev.aws(&[
        "elbv2",
        "modify-listener",
        "--listener-arn",
        &listener_arn,
        "--port",
        &held_port.to_string(),
    ]);
    assert_refused_for_port(
        &refused,
        held_port,
        &format!("the listener keeps port {port}"),
    );
    assert_eq!(listener_ports(&dev, &lb), vec![u64::from(port)]);
    assert_eq!(http_get(port, "/").ok(), Some((200, "served".to_string())));
    // Put back, the balancer serves it where it was and `berth ps` has nothing to say.
    dev.wait_for(
        "berth ps to show every listener serving",
        Duration::from_secs(30),
        || {
            let ps = dev.berth(&["ps"]);
            (ps.status.success() && !text(&ps).contains("not serving")).then_some(())
        },
    );
}

#[test]
fn berth_apply_of_a_listener_on_a_held_port_exits_non_zero_naming_it() {
    let dev = Dev::start();
    let (_held, held_port) = hold_port();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("held.yaml");
    std::fs::write(
        &file,
        format!(
            r#"
loadBalancers:
  - name: bind-apply
targetGroups:
  - name: bind-apply-web
    protocol: HTTP
    port: 8080
listeners:
  - loadBalancer: bind-apply
    port: {held_port}
    targetGroup: bind-apply-web
"#
        ),
    )
    .unwrap();
    let out = dev.berth(&["apply", "-f", file.to_str().unwrap()]);
    let said = text(&out);
    assert!(!out.status.success(), "berth apply succeeded: {said}");
    for expected in [
        format!("listener bind-apply:{held_port}"),
        format!("127.0.0.1:{held_port}: Address already in use"),
    ] {
        assert!(said.contains(&expected), "'{expected}' missing in: {said}");
    }
    let described = dev.aws_json(&["elbv2", "describe-load-balancers", "--names", "bind-apply"]);
    let lb = str_of(&described, "/LoadBalancers/0/LoadBalancerArn");
    assert_eq!(listener_ports(&dev, lb), Vec::<u64>::new());
}

#[test]
fn a_stored_listener_whose_port_is_held_after_a_restart_is_shown_not_serving_until_it_is_free() {
    let mut dev = Dev::start();
    let lb = load_balancer(&dev, "bind-restart");
    let port = support::free_port();
    let created = create_listener(&dev, &lb, port);
    assert!(created.status.success(), "{}", text(&created));
    wait_served(&dev, port);

    // Another process takes the port while berth is down.
    dev.kill();
    let held = TcpListener::bind(("127.0.0.1", port)).expect("hold the listener's port");
    dev.spawn();

    // Still stored, shown as not serving under its load balancer with the reason.
    let expected = format!(
        "load balancer bind-restart\n  listener HTTP:{port}  not serving: 127.0.0.1:{port}: Address already in use"
    );
    dev.wait_for(
        "berth ps to show the listener not serving",
        Duration::from_secs(30),
        || {
            let ps = dev.berth(&["ps"]);
            (ps.status.success() && text(&ps).contains(&expected)).then_some(())
        },
    );
    assert_eq!(listener_ports(&dev, &lb), vec![u64::from(port)]);

    // Once the port is free, the balancer binds it on its own.
    drop(held);
    wait_served(&dev, port);
    dev.wait_for(
        "berth ps to stop showing the listener",
        Duration::from_secs(30),
        || {
            let ps = dev.berth(&["ps"]);
            (ps.status.success() && !text(&ps).contains("not serving")).then_some(())
        },
    );
}
