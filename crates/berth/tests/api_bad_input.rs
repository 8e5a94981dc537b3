//! Bad input over the wire: malformed JSON, an unknown X-Amz-Target, an oversized body,
//! missing or wrong signatures, a wrong field type. Each gets a 4xx in ECS's error shape
//! naming the problem, nothing is stored, and the server keeps serving.

mod support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use berth_auth::{sign_headers, Credentials};
use serde_json::Value;
use support::Dev;

struct Answer {
    status: u16,
    error_type_header: Option<String>,
    body: Value,
}

fn post(dev: &Dev, target: &str, body: &[u8], signed: bool, secret: &str) -> Answer {
    let host = format!("127.0.0.1:{}", dev.port);
    let mut headers = vec![
        (
            "content-type".to_string(),
            "application/x-amz-json-1.1".to_string(),
        ),
        ("x-amz-target".to_string(), target.to_string()),
    ];
    if signed {
        let credentials = Credentials::new(support::ACCESS_KEY_ID, secret);
        headers = sign_headers(
            &credentials,
            "us-east-1",
            "ecs",
            time::OffsetDateTime::now_utc(),
            "POST",
            &host,
            "/",
            headers,
            body,
        );
    } else {
        headers.push(("host".to_string(), host.clone()));
    }
    let mut stream = TcpStream::connect(&host).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut request = format!(
        "POST / HTTP/1.1\r\ncontent-length: {}\r\nconnection: close\r\n",
        body.len()
    );
    for (name, value) in &headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    stream.write_all(request.as_bytes()).unwrap();
    // A server may refuse an oversized body before reading it all.
    let _ = stream.write_all(body);
    let mut response = Vec::new();
    let _ = stream.read_to_end(&mut response);
    let text = String::from_utf8_lossy(&response).to_string();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let error_type_header = head
        .lines()
        .find_map(|l| {
            l.split_once(':')
                .filter(|(n, _)| n.eq_ignore_ascii_case("x-amzn-errortype"))
        })
        .map(|(_, v)| v.trim().to_string());
    Answer {
        status,
        error_type_header,
        body: serde_json::from_str(body).unwrap_or(Value::Null),
    }
}

const ECS: &str = "AmazonEC2ContainerServiceV20141113";

fn assert_error(answer: &Answer, status: u16, error_type: &str, words: &str) {
    assert_eq!(answer.status, status, "{:?}", answer.body);
    assert_eq!(answer.body["__type"], error_type, "{:?}", answer.body);
    assert_eq!(answer.error_type_header.as_deref(), Some(error_type));
    let message = answer.body["message"].as_str().unwrap_or_default();
    assert!(message.contains(words), "'{words}' in '{message}'");
}

#[test]
fn bad_requests_get_clear_errors_and_change_nothing() {
    let dev = Dev::start();
    let secret = support::SECRET_ACCESS_KEY;
    let list_families = || {
        post(
            &dev,
            &format!("{ECS}.ListTaskDefinitionFamilies"),
            b"{}",
            true,
            secret,
        )
        .body
    };
    let families_before = list_families();

    let malformed = post(
        &dev,
        &format!("{ECS}.RegisterTaskDefinition"),
        b"{\"family\": ",
        true,
        secret,
    );
    assert_error(&malformed, 400, "SerializationException", "not valid JSON");

    let wrong_type = post(
        &dev,
        &format!("{ECS}.RegisterTaskDefinition"),
        br#"{"family":"x","containerDefinitions":[{"name":"a","image":"b","memory":"lots"}]}"#,
        true,
        secret,
    );
    assert_error(
        &wrong_type,
        400,
        "InvalidParameterException",
        "containerDefinitions[0].memory",
    );

    let unknown = post(&dev, &format!("{ECS}.LaunchRockets"), b"{}", true, secret);
    assert_error(&unknown, 400, "UnknownOperationException", "LaunchRockets");

    let big = vec![b' '; 2 * 1024 * 1024];
    let oversized = post(&dev, &format!("{ECS}.ListClusters"), &big, true, secret);
    assert_error(
        &oversized,
        413,
        "RequestEntityTooLargeException",
        "larger than",
    );

    let unsigned = post(&dev, &format!("{ECS}.ListClusters"), b"{}", false, secret);
    assert_eq!(unsigned.status, 403);
    assert_eq!(
        unsigned.body["__type"],
        "MissingAuthenticationTokenException"
    );

    let wrong = post(
        &dev,
        &format!("{ECS}.ListClusters"),
        b"{}",
        true,
        "wrong-secret",
    );
    assert_error(&wrong, 403, "InvalidSignatureException", "signature");
    assert!(
        !wrong.body.to_string().contains(secret),
        "the secret never appears in an error"
    );

    let invalid = post(
        &dev,
        &format!("{ECS}.RegisterTaskDefinition"),
        br#"{"family":"x","containerDefinitions":[{"name":"a","image":"b","memory":16,"essential":false}]}"#,
        true,
        secret,
    );
    assert_error(&invalid, 400, "ClientException", "essential");

    // Nothing was stored, and the server still answers.
    assert_eq!(list_families(), families_before);
    let ok = post(&dev, &format!("{ECS}.ListClusters"), b"{}", true, secret);
    assert_eq!(ok.status, 200);
    assert!(ok.body["clusterArns"].is_array());
    assert!(
        !dev.log_text().contains(secret),
        "the secret never appears in berth's log"
    );
}

/// A value nested `levels` lists deep.
fn nested(levels: usize) -> Value {
    let mut value = serde_json::json!("bottom");
    for _ in 0..levels {
        value = Value::Array(vec![value]);
    }
    value
}

/// The deepest and largest input berth accepts is stored, survives kill -9 and serves
/// after the restart; one level deeper is refused by name. A record that cannot be read
/// (written behind berth's back) is quarantined, and berth still starts and serves.
#[test]
fn the_largest_allowed_input_survives_kill_and_restart() {
    use berth_api::limits::{MAX_COLLECTION_LEN, MAX_JSON_DEPTH, MAX_STRING_BYTES};

    let mut dev = Dev::start();
    let secret = support::SECRET_ACCESS_KEY;
    let register = format!("{ECS}.RegisterTaskDefinition");
    // The request object is the first level of nesting.
    let definition = |levels: usize| {
        let environment: Vec<Value> = (0..MAX_COLLECTION_LEN)
            .map(|i| serde_json::json!({"name": format!("V{i}"), "value": "x"}))
            .collect();
        let labels: serde_json::Map<String, Value> = (0..MAX_COLLECTION_LEN)
            .map(|i| (format!("label.{i}"), Value::from("y")))
            .collect();
        let tags: Vec<Value> = (0..50)
            .map(|i| serde_json::json!({"key": format!("k{i}"), "value": "v".repeat(256)}))
            .collect();
        serde_json::json!({
            "family": "limits",
            "ephemeralStorage": nested(levels),
            "tags": tags,
            "containerDefinitions": [{
                "name": "app", "image": "berth/busybox:latest", "memory": 16,
                "command": ["sh", "-c", "x".repeat(MAX_STRING_BYTES)],
                "environment": environment,
                "dockerLabels": labels,
            }]
        })
    };

    let too_deep = serde_json::to_vec(&definition(MAX_JSON_DEPTH)).unwrap();
    let refused = post(&dev, &register, &too_deep, true, secret);
    assert_error(
        &refused,
        400,
        "InvalidParameterException",
        "field 'ephemeralStorage[0]",
    );

    let deepest = serde_json::to_vec(&definition(MAX_JSON_DEPTH - 1)).unwrap();
    assert!(deepest.len() < 1024 * 1024, "{} bytes", deepest.len());
    let accepted = post(&dev, &register, &deepest, true, secret);
    assert_eq!(accepted.status, 200, "{}", accepted.body);
    let describe = |dev: &Dev| {
        post(
            dev,
            &format!("{ECS}.DescribeTaskDefinition"),
            br#"{"taskDefinition": "limits:1", "include": ["TAGS"]}"#,
            true,
            secret,
        )
    };

    dev.kill();
    dev.spawn();
    let described = describe(&dev);
    assert_eq!(described.status, 200, "{}", described.body);
    assert_eq!(
        described.body["taskDefinition"]["ephemeralStorage"],
        nested(MAX_JSON_DEPTH - 1)
    );
    assert_eq!(described.body["tags"].as_array().map(Vec::len), Some(50));
    let container = &described.body["taskDefinition"]["containerDefinitions"][0];
    assert_eq!(
        container["environment"].as_array().map(Vec::len),
        Some(MAX_COLLECTION_LEN)
    );
    assert_eq!(
        container["command"][2].as_str().map(str::len),
        Some(MAX_STRING_BYTES)
    );

    // A record that cannot be read back must not keep berth down: it is set aside
    // with a loud error and everything else serves.
    dev.kill();
    {
        let backend = berth_store::RedbBackend::open(&dev.data_dir.path().join("state.redb"))
            .expect("open the store while berth is down");
        use berth_store::Backend;
        let revision = backend.revision().unwrap();
        backend
            .write(
                &[berth_store::Record {
                    key: "task-definition/broken:1".to_string(),
                    value: Some(format!("{{\"family\": {}}}", nested(200)).into_bytes()),
                }],
                revision,
            )
            .unwrap();
    }
    dev.spawn();
    assert_eq!(describe(&dev).status, 200);
    let clusters = post(&dev, &format!("{ECS}.ListClusters"), b"{}", true, secret);
    assert_eq!(clusters.status, 200);
    let log = dev.log_text();
    assert!(
        log.contains("quarantine") && log.contains("task-definition/broken:1"),
        "{}",
        support::tail(&log, 30)
    );
}
