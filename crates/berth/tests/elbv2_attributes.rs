//! Load balancer and listener attributes and ModifyListener, driven by the real `aws
//! elbv2` CLI v2 and boto3 against a real `berth dev`, with a real client on the
//! listener: ELBv2's documented defaults (API_LoadBalancerAttribute,
//! API_ListenerAttribute), a modify and describe round trip, ELBv2's errors with
//! nothing stored, deletion protection, an empty `ProtocolVersion` as unset (as
//! Terraform sends it), the idle timeout acted on, and a listener moved to a new port.

mod support;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::Output;
use std::time::{Duration, Instant};

use serde_json::Value;
use support::{assert_refused, str_at, Dev};

/// `Attributes` of a Describe/Modify*Attributes answer as (key, value) pairs.
fn attributes(answer: &Value) -> std::collections::BTreeMap<String, String> {
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

/// Runs a boto3 script against berth (the Debian aws CLI v2 predates the listener
/// attribute actions); `client` is an `elbv2` client. Returns what it printed.
fn boto3(dev: &Dev, script: &str) -> Output {
    let prelude = "import boto3, json, os, sys\n\
client = boto3.client('elbv2', endpoint_url=os.environ['BERTH_ENDPOINT'], region_name='us-east-1')\n";
    dev.boto3(&format!("{prelude}{script}"))
}

fn boto3_json(dev: &Dev, script: &str) -> Value {
    let out = boto3(dev, script);
    assert!(
        out.status.success(),
        "boto3 script failed: {}\n{script}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("the script printed JSON")
}

/// An HTTP/1.1 target on loopback that answers every request `200 ok` and keeps the
/// connection open, as a web server does. Its threads end with the test process.
fn start_target() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind the target");
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            std::thread::spawn(move || {
                let mut reader = BufReader::new(stream);
                loop {
                    let mut line = String::new();
                    // Read one request head; these clients send no bodies.
                    let mut head_done = false;
                    while !head_done {
                        line.clear();
                        match reader.read_line(&mut line) {
                            Ok(0) | Err(_) => return,
                            Ok(_) => head_done = line == "\r\n",
                        }
                    }
                    let response = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
                    if reader.get_mut().write_all(response.as_bytes()).is_err() {
                        return;
                    }
                }
            });
        }
    });
    port
}

/// One GET on a fresh keep-alive connection to the listener, then how long the
/// balancer lets the connection sit idle before closing it; `None` if it is still
/// open after `wait`.
fn idle_close_after(port: u16, wait: Duration) -> Option<Duration> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).expect("connect to the listener");
    stream
        .write_all(b"GET / HTTP/1.1\r\nHost: web\r\n\r\n")
        .unwrap();
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut status = String::new();
    reader.read_line(&mut status).unwrap();
    assert!(status.starts_with("HTTP/1.1 200"), "{status:?}");
    let mut length = 0usize;
    loop {
        let mut header = String::new();
        reader.read_line(&mut header).unwrap();
        if header == "\r\n" {
            break;
        }
        if let Some(value) = header.to_ascii_lowercase().strip_prefix("content-length:") {
            length = value.trim().parse().unwrap();
        }
    }
    let mut body = vec![0u8; length];
    reader.read_exact(&mut body).unwrap();
    let idle_since = Instant::now();
    stream.set_read_timeout(Some(wait)).unwrap();
    let mut byte = [0u8; 1];
    match reader.read(&mut byte) {
        Ok(0) => Some(idle_since.elapsed()),
        Ok(_) => panic!("bytes on an idle connection"),
        Err(error)
            if matches!(
                error.kind(),
                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
            ) =>
        {
            None
        }
        // A reset is a close too.
        Err(_) => Some(idle_since.elapsed()),
    }
}

fn served(port: u16) -> bool {
    matches!(support::http_get(port, "/"), Ok((200, body)) if body == "ok")
}

#[test]
fn load_balancer_and_listener_attributes_and_modify_listener_as_elbv2_has_them() {
    let dev = Dev::start();

    // Defaults, as ELBv2 documents them for an application load balancer.
    let created = dev.aws_json(&["elbv2", "create-load-balancer", "--name", "web-lb"]);
    let lb_arn = str_at(&created, "/LoadBalancers/0/LoadBalancerArn").to_string();
    let describe_lb = || {
        attributes(&dev.aws_json(&[
            "elbv2",
            "describe-load-balancer-attributes",
            "--load-balancer-arn",
            &lb_arn,
        ]))
    };
    let defaults = describe_lb();
    for (key, value) in [
        ("idle_timeout.timeout_seconds", "60"),
        ("deletion_protection.enabled", "false"),
        ("routing.http2.enabled", "true"),
        ("load_balancing.cross_zone.enabled", "true"),
        ("access_logs.s3.enabled", "false"),
        ("access_logs.s3.bucket", ""),
        ("routing.http.drop_invalid_header_fields.enabled", "false"),
        ("routing.http.desync_mitigation_mode", "defensive"),
        ("client_keep_alive.seconds", "3600"),
    ] {
        assert_eq!(
            defaults.get(key).map(String::as_str),
            Some(value),
            "{key} in {defaults:?}"
        );
    }

    // Modify, then describe: the same values, the rest untouched.
    let modified = attributes(&dev.aws_json(&[
        "elbv2",
        "modify-load-balancer-attributes",
        "--load-balancer-arn",
        &lb_arn,
        "--attributes",
        "Key=idle_timeout.timeout_seconds,Value=2",
        "Key=routing.http2.enabled,Value=false",
        "Key=routing.http.drop_invalid_header_fields.enabled,Value=true",
    ]));
    assert_eq!(modified["idle_timeout.timeout_seconds"], "2");
    let described = describe_lb();
    assert_eq!(described, modified);
    assert_eq!(described["routing.http2.enabled"], "false");
    assert_eq!(
        described["routing.http.drop_invalid_header_fields.enabled"],
        "true"
    );
    assert_eq!(described["client_keep_alive.seconds"], "3600");

    // An unknown key and an out-of-range value: ELBv2's ValidationError naming the key,
    // and nothing of the request stored (not even its good attributes).
    assert_refused(
        &dev.aws(&[
            "elbv2",
            "modify-load-balancer-attributes",
            "--load-balancer-arn",
            &lb_arn,
            "--attributes",
            "Key=idle_timeout.timeout_seconds,Value=30",
            "Key=no_such.attribute,Value=1",
        ]),
        "ValidationError",
        "no_such.attribute",
    );
    assert_refused(
        &dev.aws(&[
            "elbv2",
            "modify-load-balancer-attributes",
            "--load-balancer-arn",
            &lb_arn,
            "--attributes",
            "Key=idle_timeout.timeout_seconds,Value=4001",
        ]),
        "ValidationError",
        "idle_timeout.timeout_seconds",
    );
    assert_eq!(describe_lb(), described, "a refused modify stores nothing");

    // An empty ProtocolVersion is unset, as Terraform sends it: boto3 sends the empty
    // member as `ProtocolVersion=`.
    let group = boto3_json(
        &dev,
        "r = client.create_target_group(Name='web-tg', Protocol='HTTP', Port=80, \
         ProtocolVersion='', TargetType='ip', VpcId='', HealthCheckIntervalSeconds=5, \
         HealthCheckTimeoutSeconds=2, HealthyThresholdCount=2)\n\
         print(json.dumps(r['TargetGroups'][0]))",
    );
    let tg_arn = str_at(&group, "/TargetGroupArn").to_string();
    assert!(group.get("ProtocolVersion").is_none(), "{group}");
    assert!(group.get("VpcId").is_none(), "{group}");

    // A listener in front of a real target.
    let target_port = start_target();
    dev.aws_json(&[
        "elbv2",
        "register-targets",
        "--target-group-arn",
        &tg_arn,
        "--targets",
        &format!("Id=127.0.0.1,Port={target_port}"),
    ]);
    let first_port = support::free_port();
    let listener = dev.aws_json(&[
        "elbv2",
        "create-listener",
        "--load-balancer-arn",
        &lb_arn,
        "--protocol",
        "HTTP",
        "--port",
        &first_port.to_string(),
        "--default-actions",
        &format!("Type=forward,TargetGroupArn={tg_arn}"),
    ]);
    let listener_arn = str_at(&listener, "/Listeners/0/ListenerArn").to_string();
    dev.wait_targets_healthy(&tg_arn, 1);
    dev.wait_for("the listener to serve", Duration::from_secs(30), || {
        served(first_port).then_some(())
    });

    // idle_timeout.timeout_seconds=2 is the client idle timeout: an idle keep-alive
    // connection is closed after about 2 s (well before the 10 s a silent new
    // connection gets, and the 60 s default).
    let closed = idle_close_after(first_port, Duration::from_secs(20));
    println!("idle_timeout.timeout_seconds=2: idle connection closed after {closed:?}");
    let closed = closed.expect("an idle connection is closed after the idle timeout");
    assert!(
        closed >= Duration::from_secs(1) && closed < Duration::from_secs(8),
        "closed after {closed:?}"
    );
    dev.aws_json(&[
        "elbv2",
        "modify-load-balancer-attributes",
        "--load-balancer-arn",
        &lb_arn,
        "--attributes",
        "Key=idle_timeout.timeout_seconds,Value=30",
    ]);
    dev.wait_for("the longer idle timeout", Duration::from_secs(30), || {
        let closed = idle_close_after(first_port, Duration::from_secs(5));
        println!("idle_timeout.timeout_seconds=30: closed within 5 s after {closed:?}");
        closed.is_none().then_some(())
    });

    // Listener attributes (boto3): ELBv2's HTTP listener keys, an unknown one refused.
    let listener_attributes = attributes(&boto3_json(
        &dev,
        &format!(
            "print(json.dumps(client.describe_listener_attributes(ListenerArn='{listener_arn}')))"
        ),
    ));
    assert_eq!(
        listener_attributes["routing.http.response.server.enabled"],
        "true"
    );
    assert!(!listener_attributes.contains_key("tcp.idle_timeout.seconds"));
    let changed = attributes(&boto3_json(
        &dev,
        &format!(
            "print(json.dumps(client.modify_listener_attributes(ListenerArn='{listener_arn}', \
             Attributes=[{{'Key': 'routing.http.response.server.enabled', 'Value': 'false'}}])))"
        ),
    ));
    assert_eq!(changed["routing.http.response.server.enabled"], "false");
    let refused = boto3(
        &dev,
        &format!(
            "from botocore.exceptions import ClientError\n\
             try:\n    client.modify_listener_attributes(ListenerArn='{listener_arn}', \
             Attributes=[{{'Key': 'tcp.idle_timeout.seconds', 'Value': '120'}}])\n\
             except ClientError as e:\n    print(e.response['Error']['Code'], e.response['Error']['Message'])\n    sys.exit(0)\n\
             sys.exit('accepted')"
        ),
    );
    let refused_text = String::from_utf8_lossy(&refused.stdout);
    assert!(refused.status.success(), "{refused:?}");
    assert!(
        refused_text.contains("InvalidConfigurationRequest")
            && refused_text.contains("tcp.idle_timeout.seconds"),
        "{refused_text}"
    );

    // ModifyListener to a new port: served there, and the old port is let go.
    let second_port = support::free_port();
    let moved = dev.aws_json(&[
        "elbv2",
        "modify-listener",
        "--listener-arn",
        &listener_arn,
        "--port",
        &second_port.to_string(),
    ]);
    assert_eq!(moved["Listeners"][0]["Port"], second_port);
    assert_eq!(
        str_at(&moved, "/Listeners/0/DefaultActions/0/TargetGroupArn"),
        tg_arn
    );
    let started = Instant::now();
    dev.wait_for("the new port to serve", Duration::from_secs(30), || {
        served(second_port).then_some(())
    });
    dev.wait_for("the old port to close", Duration::from_secs(30), || {
        TcpStream::connect(("127.0.0.1", first_port))
            .is_err()
            .then_some(())
    });
    println!(
        "modify-listener {first_port} -> {second_port}: moved in {:?}",
        started.elapsed()
    );
    let listeners = dev.aws_json(&[
        "elbv2",
        "describe-listeners",
        "--load-balancer-arn",
        &lb_arn,
    ]);
    assert_eq!(listeners["Listeners"][0]["Port"], second_port);

    // A network load balancer's TCP listener: ELBv2's 350 s default, changed by boto3.
    let nlb = dev.aws_json(&[
        "elbv2",
        "create-load-balancer",
        "--name",
        "tcp-lb",
        "--type",
        "network",
    ]);
    let nlb_arn = str_at(&nlb, "/LoadBalancers/0/LoadBalancerArn").to_string();
    let nlb_attributes = attributes(&dev.aws_json(&[
        "elbv2",
        "describe-load-balancer-attributes",
        "--load-balancer-arn",
        &nlb_arn,
    ]));
    assert_eq!(nlb_attributes["load_balancing.cross_zone.enabled"], "false");
    assert!(!nlb_attributes.contains_key("idle_timeout.timeout_seconds"));
    let tcp_group = dev.aws_json(&[
        "elbv2",
        "create-target-group",
        "--name",
        "tcp-tg",
        "--protocol",
        "TCP",
        "--port",
        "80",
        "--target-type",
        "ip",
    ]);
    let tcp_tg_arn = str_at(&tcp_group, "/TargetGroups/0/TargetGroupArn").to_string();
    let tcp_listener = dev.aws_json(&[
        "elbv2",
        "create-listener",
        "--load-balancer-arn",
        &nlb_arn,
        "--protocol",
        "TCP",
        "--port",
        &support::free_port().to_string(),
        "--default-actions",
        &format!("Type=forward,TargetGroupArn={tcp_tg_arn}"),
    ]);
    let tcp_listener_arn = str_at(&tcp_listener, "/Listeners/0/ListenerArn").to_string();
    let tcp_attributes = boto3_json(
        &dev,
        &format!(
            "before = client.describe_listener_attributes(ListenerArn='{tcp_listener_arn}')\n\
             client.modify_listener_attributes(ListenerArn='{tcp_listener_arn}', \
             Attributes=[{{'Key': 'tcp.idle_timeout.seconds', 'Value': '120'}}])\n\
             after = client.describe_listener_attributes(ListenerArn='{tcp_listener_arn}')\n\
             print(json.dumps({{'before': before['Attributes'], 'after': after['Attributes']}}))"
        ),
    );
    assert_eq!(
        tcp_attributes["before"],
        serde_json::json!([{"Key": "tcp.idle_timeout.seconds", "Value": "350"}])
    );
    assert_eq!(
        tcp_attributes["after"],
        serde_json::json!([{"Key": "tcp.idle_timeout.seconds", "Value": "120"}])
    );

    // Deletion protection: DeleteLoadBalancer refused with ELBv2's code until it is off.
    dev.aws_json(&[
        "elbv2",
        "modify-load-balancer-attributes",
        "--load-balancer-arn",
        &lb_arn,
        "--attributes",
        "Key=deletion_protection.enabled,Value=true",
    ]);
    assert_refused(
        &dev.aws(&[
            "elbv2",
            "delete-load-balancer",
            "--load-balancer-arn",
            &lb_arn,
        ]),
        "OperationNotPermitted",
        "deletion protection",
    );
    assert!(served(second_port), "a refused delete changes nothing");
    dev.aws_json(&[
        "elbv2",
        "modify-load-balancer-attributes",
        "--load-balancer-arn",
        &lb_arn,
        "--attributes",
        "Key=deletion_protection.enabled,Value=false",
    ]);

    // Teardown leaves nothing.
    for arn in [&lb_arn, &nlb_arn] {
        dev.aws_json(&["elbv2", "delete-load-balancer", "--load-balancer-arn", arn]);
    }
    for arn in [&tg_arn, &tcp_tg_arn] {
        dev.aws_json(&["elbv2", "delete-target-group", "--target-group-arn", arn]);
    }
    let left = dev.aws_json(&["elbv2", "describe-load-balancers"]);
    assert_eq!(left["LoadBalancers"], Value::Array(vec![]), "{left}");
    dev.wait_for(
        "the listener port to close",
        Duration::from_secs(30),
        || {
            TcpStream::connect(("127.0.0.1", second_port))
                .is_err()
                .then_some(())
        },
    );
}
