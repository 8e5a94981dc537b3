//! The API listener over real sockets on 127.0.0.1: slow and stalled clients are
//! closed, the connection cap holds, anonymous requests are refused before their body
//! is read, requests are checked for the service of the API they address, and shutdown
//! returns. Timeouts are configured short; the tests assert outcomes, never timings.

use std::sync::Arc;
use std::time::Duration;

use berth_auth::{sign_headers, Credentials, Verifier};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;

use crate::{serve_with, ApiLimits, ApiTransport, ControlPlane};

const KEY_ID: &str = "AKIDLISTENERTEST";
const SECRET: &str = "listener-test-secret";

/// Longest a test waits for anything; far beyond every configured timeout.
const PATIENCE: Duration = Duration::from_secs(20);

fn credentials() -> Credentials {
    Credentials::new(KEY_ID, SECRET)
}

struct Server {
    address: std::net::SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    served: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl Server {
    async fn start(limits: ApiLimits) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        let served = tokio::spawn(serve_with(
            listener,
            Arc::new(ControlPlane::in_memory()),
            Verifier::from_credentials(credentials()),
            limits,
            ApiTransport::Plain,
            async move {
                let _ = stopped.await;
            },
        ));
        Server {
            address,
            stop: Some(stop),
            served,
        }
    }

    async fn connect(&self) -> TcpStream {
        TcpStream::connect(self.address).await.unwrap()
    }

    /// The head of a request signed over `body` (ECS ListClusters by default).
    fn signed_head(&self, service: &str, target: Option<&str>, body: &[u8]) -> String {
        self.signed_head_at(service, target, body, time::OffsetDateTime::now_utc())
    }

    /// The same, signed at `signed_at`.
    fn signed_head_at(
        &self,
        service: &str,
        target: Option<&str>,
        body: &[u8],
        signed_at: time::OffsetDateTime,
    ) -> String {
        let mut headers = Vec::new();
        match target {
            Some(target) => {
                headers.push((
                    "content-type".to_string(),
                    "application/x-amz-json-1.1".to_string(),
                ));
                headers.push(("x-amz-target".to_string(), target.to_string()));
            }
            None => headers.push((
                "content-type".to_string(),
                "application/x-www-form-urlencoded; charset=utf-8".to_string(),
            )),
        }
        let signed = sign_headers(
            &credentials(),
            "us-east-1",
            service,
            signed_at,
            "POST",
            &self.address.to_string(),
            "/",
            headers,
            body,
        );
        let mut head = String::from("POST / HTTP/1.1\r\n");
        for (name, value) in signed {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        head.push_str(&format!("content-length: {}\r\n\r\n", body.len()));
        head
    }

    async fn stop(mut self) -> bool {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        matches!(
            tokio::time::timeout(PATIENCE, &mut self.served).await,
            Ok(Ok(Ok(())))
        )
    }
}

const LIST_CLUSTERS: &str = "AmazonEC2ContainerServiceV20141113.ListClusters";

/// Everything the server sends until it closes the connection, or `None` if it
/// neither answers nor closes within `PATIENCE`.
async fn read_until_closed(stream: &mut TcpStream) -> Option<String> {
    let mut received = Vec::new();
    let mut buffer = [0u8; 4096];
    loop {
        match tokio::time::timeout(PATIENCE, stream.read(&mut buffer)).await {
            Err(_) => return None,
            Ok(Ok(0)) | Ok(Err(_)) => return Some(String::from_utf8_lossy(&received).into()),
            Ok(Ok(count)) => received.extend_from_slice(&buffer[..count]),
        }
    }
}

/// One response head and body read from `stream` (which stays open), by content-length.
async fn read_response(stream: &mut TcpStream) -> Option<String> {
    let mut received = Vec::new();
    let mut buffer = [0u8; 4096];
    loop {
        let text = String::from_utf8_lossy(&received).to_string();
        if let Some((head, body)) = text.split_once("\r\n\r\n") {
            let length = head
                .lines()
                .find_map(|line| {
                    let (name, value) = line.split_once(':')?;
                    name.eq_ignore_ascii_case("content-length")
                        .then(|| value.trim().parse::<usize>().ok())?
                })
                .unwrap_or(0);
            if body.len() >= length {
                return Some(text);
            }
        }
        match tokio::time::timeout(PATIENCE, stream.read(&mut buffer)).await {
            Ok(Ok(count)) if count > 0 => received.extend_from_slice(&buffer[..count]),
            _ => return None,
        }
    }
}

fn status_of(response: &str) -> Option<u16> {
    response.split(' ').nth(1)?.parse().ok()
}

#[tokio::test]
async fn a_client_trickling_its_head_is_closed_after_the_header_timeout() {
    let server = Server::start(ApiLimits {
        request_header_timeout: Duration::from_millis(300),
        idle_timeout: Duration::from_secs(60),
        ..ApiLimits::default()
    })
    .await;
    let mut stream = server.connect().await;
    // Bytes keep coming, so only the header timeout can end this connection.
    let trickle = async {
        for line in ["POST / HTTP/1.1\r\n", "host: x\r\n", "x-a: 1\r\n"]
            .iter()
            .cycle()
        {
            if stream.write_all(line.as_bytes()).await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };
    let closed = tokio::time::timeout(PATIENCE, trickle).await;
    assert!(
        closed.is_ok(),
        "the server never closed the trickling client"
    );

    // On a keep-alive connection, the next head's clock starts at its first byte (the
    // idle timeout, far longer, does not stand in for it).
    let mut stream = server.connect().await;
    let request = server.signed_head("ecs", Some(LIST_CLUSTERS), b"{}") + "{}";
    stream.write_all(request.as_bytes()).await.unwrap();
    let answer = read_response(&mut stream).await.unwrap_or_default();
    assert_eq!(status_of(&answer), Some(200), "{answer}");
    let trickle = async {
        for line in ["POST / HTTP/1.1\r\n", "host: x\r\n", "x-a: 1\r\n"]
            .iter()
            .cycle()
        {
            if stream.write_all(line.as_bytes()).await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };
    let closed = tokio::time::timeout(PATIENCE, trickle).await;
    assert!(
        closed.is_ok(),
        "the server never closed the second trickling head"
    );
    assert!(server.stop().await);
}

#[tokio::test]
async fn a_stalled_body_is_closed_after_the_idle_timeout() {
    // Only the idle timeout is shorter than the test's patience.
    let server = Server::start(ApiLimits {
        idle_timeout: Duration::from_millis(300),
        request_header_timeout: Duration::from_secs(60),
        body_read_timeout: Duration::from_secs(60),
        ..ApiLimits::default()
    })
    .await;
    let body = br#"{"maxResults": 10}"#;
    let mut stream = server.connect().await;
    let head = server.signed_head("ecs", Some(LIST_CLUSTERS), body);
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.write_all(&body[..4]).await.unwrap();
    let answer = read_until_closed(&mut stream).await;
    assert_eq!(answer.as_deref(), Some(""), "closed without an answer");

    // The same request sent whole is answered: the head was good.
    let mut stream = server.connect().await;
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.write_all(body).await.unwrap();
    let answer = read_response(&mut stream).await.unwrap_or_default();
    assert_eq!(status_of(&answer), Some(200), "{answer}");
    assert!(server.stop().await);
}

#[tokio::test]
async fn a_body_trickling_past_the_body_timeout_gets_408() {
    let server = Server::start(ApiLimits {
        idle_timeout: Duration::from_secs(60),
        body_read_timeout: Duration::from_millis(300),
        ..ApiLimits::default()
    })
    .await;
    let body = vec![b' '; 200];
    let mut stream = server.connect().await;
    let head = server.signed_head("ecs", Some(LIST_CLUSTERS), &body);
    stream.write_all(head.as_bytes()).await.unwrap();
    let (mut reader, mut writer) = stream.split();
    let trickle = async {
        for byte in &body {
            if writer.write_all(&[*byte]).await.is_err() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        std::future::pending::<()>().await;
    };
    let answer = tokio::select! {
        _ = trickle => unreachable!(),
        answer = async {
            let mut received = Vec::new();
            let _ = tokio::time::timeout(PATIENCE, reader.read_to_end(&mut received)).await;
            String::from_utf8_lossy(&received).to_string()
        } => answer,
    };
    assert_eq!(status_of(&answer), Some(408), "{answer}");
    assert!(answer.contains("RequestTimeout"), "{answer}");
    assert!(server.stop().await);
}

#[tokio::test]
async fn connections_beyond_the_cap_are_closed_until_one_frees() {
    let server = Server::start(ApiLimits {
        max_connections: 2,
        ..ApiLimits::default()
    })
    .await;
    let body = b"{}";
    let request = server.signed_head("ecs", Some(LIST_CLUSTERS), body) + "{}";

    let mut first = server.connect().await;
    let mut second = server.connect().await;
    // Both are served (which also means both hold a slot).
    for stream in [&mut first, &mut second] {
        stream.write_all(request.as_bytes()).await.unwrap();
        let answer = read_response(stream).await.unwrap_or_default();
        assert_eq!(status_of(&answer), Some(200), "{answer}");
    }
    // A third is closed without an answer while the two stay open.
    let mut third = server.connect().await;
    let _ = third.write_all(request.as_bytes()).await;
    let answer = read_until_closed(&mut third).await;
    assert_eq!(
        answer.as_deref(),
        Some(""),
        "a connection beyond the cap was served"
    );
    // The open ones are still served.
    first.write_all(request.as_bytes()).await.unwrap();
    let answer = read_response(&mut first).await.unwrap_or_default();
    assert_eq!(status_of(&answer), Some(200), "{answer}");

    // Once one closes, a new connection is served (its slot frees when the server sees
    // the close, so allow a few tries).
    drop(second);
    let mut served = false;
    for _ in 0..100 {
        let mut stream = server.connect().await;
        let _ = stream.write_all(request.as_bytes()).await;
        if read_response(&mut stream)
            .await
            .is_some_and(|answer| status_of(&answer) == Some(200))
        {
            served = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(served, "no connection was served after one freed");
    assert!(server.stop().await);
}

#[tokio::test]
async fn an_anonymous_request_is_refused_before_its_body_is_read() {
    let server = Server::start(ApiLimits::default()).await;
    for (content_type, declared) in [
        ("application/x-amz-json-1.1", 500_000),
        ("application/x-www-form-urlencoded", 500_000),
        ("application/x-amz-json-1.1", 100_000_000),
    ] {
        let mut stream = server.connect().await;
        let head = format!(
            "POST / HTTP/1.1\r\nhost: {}\r\ncontent-type: {content_type}\r\n\
             content-length: {declared}\r\n\r\n",
            server.address
        );
        stream.write_all(head.as_bytes()).await.unwrap();
        // No body is sent: an answer proves the server did not wait to read one.
        let answer = read_response(&mut stream).await.unwrap_or_default();
        assert_eq!(status_of(&answer), Some(403), "{answer}");
        assert!(
            answer.contains("MissingAuthenticationToken"),
            "{content_type}: {answer}"
        );
    }
    // A signed head with an oversized declared body still gets 413, unread.
    let mut stream = server.connect().await;
    let head = server
        .signed_head("ecs", Some(LIST_CLUSTERS), b"{}")
        .replace("content-length: 2", "content-length: 2000000");
    stream.write_all(head.as_bytes()).await.unwrap();
    let answer = read_response(&mut stream).await.unwrap_or_default();
    assert_eq!(status_of(&answer), Some(413), "{answer}");
    assert!(server.stop().await);
}

#[tokio::test]
async fn each_api_must_be_signed_for_its_own_service() {
    let server = Server::start(ApiLimits::default()).await;
    let form = b"Action=DescribeLoadBalancers&Version=2015-12-01";
    let cases: [(&str, Option<&str>, &[u8], u16); 4] = [
        ("ecs", Some(LIST_CLUSTERS), b"{}", 200),
        ("elasticloadbalancing", None, form, 200),
        ("elasticloadbalancing", Some(LIST_CLUSTERS), b"{}", 403),
        ("ecs", None, form, 403),
    ];
    for (service, target, body, status) in cases {
        let mut stream = server.connect().await;
        let head = server.signed_head(service, target, body);
        stream.write_all(head.as_bytes()).await.unwrap();
        stream.write_all(body).await.unwrap();
        let answer = read_response(&mut stream).await.unwrap_or_default();
        assert_eq!(status_of(&answer), Some(status), "{service}: {answer}");
        if status == 403 {
            assert!(answer.contains("InvalidSignatureException"), "{answer}");
            assert!(answer.contains("correct service"), "{answer}");
        }
    }
    // berth's own actions are signed for ecs too.
    let mut stream = server.connect().await;
    let head = server.signed_head("s3", Some("BerthV1.GetTaskLogs"), b"{}");
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.write_all(b"{}").await.unwrap();
    let answer = read_response(&mut stream).await.unwrap_or_default();
    assert_eq!(status_of(&answer), Some(403), "{answer}");
    assert!(answer.contains("'ecs', 'elasticloadbalancing'"), "{answer}");
    assert!(server.stop().await);
}

#[tokio::test]
async fn shutdown_returns_with_idle_and_stalled_connections_open() {
    let server = Server::start(ApiLimits {
        shutdown_grace: Duration::from_millis(200),
        ..ApiLimits::default()
    })
    .await;
    let mut idle = server.connect().await;
    let request = server.signed_head("ecs", Some(LIST_CLUSTERS), b"{}") + "{}";
    idle.write_all(request.as_bytes()).await.unwrap();
    assert!(read_response(&mut idle).await.is_some());
    let mut stalled = server.connect().await;
    stalled
        .write_all(
            server
                .signed_head("ecs", Some(LIST_CLUSTERS), b"{}")
                .as_bytes(),
        )
        .await
        .unwrap();
    assert!(server.stop().await, "serve did not return after shutdown");
    // Both connections are closed once serve has returned.
    assert!(read_until_closed(&mut idle).await.is_some());
    assert!(read_until_closed(&mut stalled).await.is_some());
}

/// A signed ListClusters whose head (request line, headers, blank line) is exactly
/// `length` bytes long, padded with an unsigned header.
fn head_of_length(server: &Server, length: usize) -> String {
    let head = server.signed_head("ecs", Some(LIST_CLUSTERS), b"{}");
    let (request_line, rest) = head.split_once("\r\n").unwrap();
    let pad_line = "x-pad: \r\n".len();
    let padding = length - head.len() - pad_line;
    let padded = format!("{request_line}\r\nx-pad: {}\r\n{rest}", "p".repeat(padding));
    assert_eq!(padded.len(), length);
    padded
}

#[tokio::test]
async fn the_documented_head_limit_is_the_one_enforced() {
    let limits = ApiLimits::default();
    assert_eq!(limits.max_header_bytes, 64 * 1024, "the documented default");
    // The API's, the agent listener's (hyper's smallest read buffer) and one below it.
    let agent = crate::agent_api::agent_limits().max_header_bytes;
    assert_eq!(agent, 8 * 1024, "the agent listener's documented limit");
    for max_header_bytes in [limits.max_header_bytes, agent, 4096] {
        let server = Server::start(ApiLimits {
            max_header_bytes,
            ..ApiLimits::default()
        })
        .await;
        let mut stream = server.connect().await;
        let at_limit = head_of_length(&server, max_header_bytes) + "{}";
        stream.write_all(at_limit.as_bytes()).await.unwrap();
        let answer = read_response(&mut stream).await.unwrap_or_default();
        assert_eq!(
            status_of(&answer),
            Some(200),
            "{max_header_bytes}: {answer}"
        );
        for over in [1, 1024] {
            let mut stream = server.connect().await;
            let head = head_of_length(&server, max_header_bytes + over) + "{}";
            let _ = stream.write_all(head.as_bytes()).await;
            let answer = read_until_closed(&mut stream).await.unwrap_or_default();
            assert_eq!(
                status_of(&answer),
                Some(431),
                "{max_header_bytes} + {over}: {:?}",
                &answer[..answer.len().min(80)]
            );
        }
        assert!(server.stop().await);
    }
}

/// Whether `response` (a whole answer) tells the client the connection closes.
fn says_close(response: &str) -> bool {
    let head = response.split("\r\n\r\n").next().unwrap_or("");
    head.lines()
        .any(|line| line.eq_ignore_ascii_case("connection: close"))
}

#[tokio::test]
async fn refused_requests_close_their_connection() {
    let server = Server::start(ApiLimits::default()).await;
    let address = server.address;
    let signed = server.signed_head("ecs", Some(LIST_CLUSTERS), b"{}");
    let replayed = server.signed_head_at(
        "ecs",
        Some(LIST_CLUSTERS),
        b"{}",
        time::OffsetDateTime::now_utc() - time::Duration::minutes(20),
    );
    let cases: Vec<(&str, String, u16)> = vec![
        (
            "anonymous",
            format!(
                "POST / HTTP/1.1\r\nhost: {address}\r\ncontent-type: \
                 application/x-amz-json-1.1\r\ncontent-length: 2\r\n\r\n"
            ),
            403,
        ),
        (
            "anonymous awsQuery",
            format!(
                "POST / HTTP/1.1\r\nhost: {address}\r\ncontent-type: \
                 application/x-www-form-urlencoded\r\ncontent-length: 9\r\n\r\n"
            ),
            403,
        ),
        ("replayed head", replayed.clone(), 403),
        (
            "not POST",
            format!("GET / HTTP/1.1\r\nhost: {address}\r\n\r\n"),
            405,
        ),
        (
            "declared too large",
            signed.replace("content-length: 2", "content-length: 2000000"),
            413,
        ),
        // The body is read here, and its signature does not cover it.
        ("bad signature", signed.clone() + "[]", 403),
    ];
    for (case, request, status) in cases {
        let mut stream = server.connect().await;
        stream.write_all(request.as_bytes()).await.unwrap();
        // No body is sent where the answer comes before one: a close proves berth did
        // not wait for it and keeps no connection for the refused client.
        let answer = read_until_closed(&mut stream).await;
        let answer = answer.unwrap_or_else(|| panic!("{case}: the connection stayed open"));
        assert_eq!(status_of(&answer), Some(status), "{case}: {answer}");
        assert!(says_close(&answer), "{case}: {answer}");
    }
    // A served request keeps its connection.
    let mut stream = server.connect().await;
    stream
        .write_all((signed.clone() + "{}").as_bytes())
        .await
        .unwrap();
    let answer = read_response(&mut stream).await.unwrap_or_default();
    assert_eq!(status_of(&answer), Some(200), "{answer}");
    assert!(!says_close(&answer), "{answer}");
    stream.write_all((signed + "{}").as_bytes()).await.unwrap();
    let answer = read_response(&mut stream).await.unwrap_or_default();
    assert_eq!(status_of(&answer), Some(200), "{answer}");
    assert!(server.stop().await);
}

#[tokio::test]
async fn anonymous_keep_alive_clients_cannot_take_every_slot() {
    let server = Server::start(ApiLimits {
        max_connections: 4,
        max_connections_per_client: 4,
        ..ApiLimits::default()
    })
    .await;
    let anonymous = format!(
        "POST / HTTP/1.1\r\nhost: {}\r\ncontent-type: application/x-amz-json-1.1\r\n\
         content-length: 2\r\n\r\n{{}}",
        server.address
    );
    // The refused clients keep their end open, as keep-alive clients do.
    let mut refused = Vec::new();
    for _ in 0..4 {
        let mut stream = server.connect().await;
        stream.write_all(anonymous.as_bytes()).await.unwrap();
        let answer = read_response(&mut stream).await.unwrap_or_default();
        assert_eq!(status_of(&answer), Some(403), "{answer}");
        refused.push(stream);
    }
    let request = server.signed_head("ecs", Some(LIST_CLUSTERS), b"{}") + "{}";
    let mut served = false;
    for _ in 0..100 {
        let mut stream = server.connect().await;
        let _ = stream.write_all(request.as_bytes()).await;
        if read_response(&mut stream)
            .await
            .is_some_and(|answer| status_of(&answer) == Some(200))
        {
            served = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(served, "the refused clients kept every slot");
    drop(refused);
    assert!(server.stop().await);
}

/// A connection to `server` from `source`, another loopback address of this machine.
async fn connect_from(server: &Server, source: &str) -> TcpStream {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind(format!("{source}:0").parse().unwrap()).unwrap();
    socket.connect(server.address).await.unwrap()
}

#[tokio::test]
async fn one_client_cannot_hold_more_than_its_share_of_connections() {
    let server = Server::start(ApiLimits {
        max_connections: 10,
        max_connections_per_client: 2,
        ..ApiLimits::default()
    })
    .await;
    assert_eq!(ApiLimits::default().max_connections_per_client, 64);
    let request = server.signed_head("ecs", Some(LIST_CLUSTERS), b"{}") + "{}";
    let mut held = Vec::new();
    for _ in 0..2 {
        let mut stream = connect_from(&server, "127.0.0.1").await;
        stream.write_all(request.as_bytes()).await.unwrap();
        let answer = read_response(&mut stream).await.unwrap_or_default();
        assert_eq!(status_of(&answer), Some(200), "{answer}");
        held.push(stream);
    }
    // A third from the same address is closed without an answer.
    let mut third = connect_from(&server, "127.0.0.1").await;
    let _ = third.write_all(request.as_bytes()).await;
    let answer = read_until_closed(&mut third).await;
    assert_eq!(answer.as_deref(), Some(""), "a third connection was served");
    // Another client is served meanwhile.
    let mut other = connect_from(&server, "127.0.0.2").await;
    other.write_all(request.as_bytes()).await.unwrap();
    let answer = read_response(&mut other).await.unwrap_or_default();
    assert_eq!(status_of(&answer), Some(200), "{answer}");
    // Once one of the first client's connections closes, it may open another.
    drop(held.pop());
    let mut served = false;
    for _ in 0..100 {
        let mut stream = connect_from(&server, "127.0.0.1").await;
        let _ = stream.write_all(request.as_bytes()).await;
        if read_response(&mut stream)
            .await
            .is_some_and(|answer| status_of(&answer) == Some(200))
        {
            served = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(served, "no connection was served after one freed");
    assert!(server.stop().await);
}
