//! A soak under a hostile mix: 32 writers registering task definition revisions, clients trickling their headers, clients
//! sending bodies of 1 MiB and more and stalling, clients with bad signatures, while a
//! few readers measure how long ListClusters and DescribeClusters take. Every reader and
//! writer request must be answered 200 and every acknowledged write must be there, also
//! after kill -9 and a restart. The latency and memory figures are printed for
//! BENCHMARKS.md (`bench/soak.sh` runs this with a release build and longer), never
//! asserted: the machine is shared.
//!
//! `BERTH_SOAK_SECS` sets how long the mix runs (default 15).

mod support;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use berth_auth::{sign_headers, Credentials};
use support::Dev;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const ECS: &str = "AmazonEC2ContainerServiceV20141113";
const WRITERS: usize = 32;
const READERS: usize = 4;
const SLOW_HEADER_CLIENTS: usize = 100;
const BIG_BODY_CLIENTS: usize = 20;
const BAD_SIGNATURE_CLIENTS: usize = 10;

/// A signed awsJson POST, as the aws CLI sends it.
async fn ecs(
    client: &reqwest::Client,
    port: u16,
    secret: &str,
    action: &str,
    body: &str,
) -> Result<(u16, String), String> {
    let host = format!("127.0.0.1:{port}");
    let headers = sign_headers(
        &Credentials::new(support::ACCESS_KEY_ID, secret),
        "us-east-1",
        "ecs",
        time::OffsetDateTime::now_utc(),
        "POST",
        &host,
        "/",
        vec![
            (
                "content-type".to_string(),
                "application/x-amz-json-1.1".to_string(),
            ),
            ("x-amz-target".to_string(), format!("{ECS}.{action}")),
        ],
        body.as_bytes(),
    );
    let mut request = client
        .post(format!("http://{host}/"))
        .body(body.to_string());
    for (name, value) in headers {
        if name != "host" {
            request = request.header(name, value);
        }
    }
    let response = request.send().await.map_err(|e| e.to_string())?;
    let status = response.status().as_u16();
    let text = response.text().await.map_err(|e| e.to_string())?;
    Ok((status, text))
}

#[derive(Default)]
struct Tally {
    reads_ms: Mutex<Vec<f64>>,
    read_failures: Mutex<Vec<String>>,
    acknowledged: Mutex<Vec<String>>,
    write_failures: Mutex<Vec<String>>,
    slow_connections: AtomicU64,
    big_bodies: AtomicU64,
    bad_signatures_refused: AtomicU64,
    bad_signatures_other: AtomicU64,
}

/// Opens a connection and sends a request head one byte at a time, forever; opens
/// another when the server closes it.
async fn trickle_headers(port: u16, until: Instant, tally: Arc<Tally>) {
    let head = b"POST / HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/x-amz-json-1.1\r\nx-amz-target: AmazonEC2ContainerServiceV20141113.ListClusters\r\n";
    while Instant::now() < until {
        let Ok(mut stream) = TcpStream::connect(("127.0.0.1", port)).await else {
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        };
        tally.slow_connections.fetch_add(1, Ordering::Relaxed);
        for byte in head.iter().cycle() {
            if Instant::now() >= until || stream.write_all(&[*byte]).await.is_err() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

/// Sends a request that claims berth's own access key but carries a bad signature,
/// with a body of about 1 MiB sent slowly, or one over the limit; then stalls.
async fn big_bodies(port: u16, until: Instant, oversized: bool, tally: Arc<Tally>) {
    let size = if oversized {
        2 * 1024 * 1024
    } else {
        1000 * 1024
    };
    let chunk = vec![b' '; 64 * 1024];
    while Instant::now() < until {
        let Ok(mut stream) = TcpStream::connect(("127.0.0.1", port)).await else {
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        };
        tally.big_bodies.fetch_add(1, Ordering::Relaxed);
        // Signed now (a stale date is refused before the body), with a wrong signature:
        // berth reads the body before it can tell.
        let now = time::OffsetDateTime::now_utc();
        let day = format!(
            "{:04}{:02}{:02}",
            now.year(),
            u8::from(now.month()),
            now.day()
        );
        let amz_date = format!(
            "{day}T{:02}{:02}{:02}Z",
            now.hour(),
            now.minute(),
            now.second()
        );
        let head = format!(
            "POST / HTTP/1.1\r\nhost: 127.0.0.1:{port}\r\ncontent-type: application/x-amz-json-1.1\r\n\
             x-amz-target: {ECS}.ListClusters\r\nx-amz-date: {amz_date}\r\n\
             authorization: AWS4-HMAC-SHA256 Credential={}/{day}/us-east-1/ecs/aws4_request, \
             SignedHeaders=content-type;host;x-amz-date;x-amz-target, Signature={}\r\n\
             content-length: {size}\r\n\r\n",
            support::ACCESS_KEY_ID,
            "0".repeat(64)
        );
        if stream.write_all(head.as_bytes()).await.is_err() {
            continue;
        }
        let mut sent = 0;
        while sent + chunk.len() < size && Instant::now() < until {
            if stream.write_all(&chunk).await.is_err() {
                break;
            }
            sent += chunk.len();
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        // Stall with the body unfinished until the server gives up on it.
        let mut answer = [0u8; 1024];
        let _ = tokio::time::timeout(
            until.saturating_duration_since(Instant::now()),
            stream.read(&mut answer),
        )
        .await;
    }
}

async fn bad_signatures(port: u16, until: Instant, tally: Arc<Tally>) {
    let client = reqwest::Client::new();
    while Instant::now() < until {
        match ecs(&client, port, "not-the-secret", "ListClusters", "{}").await {
            Ok((403, _)) => tally.bad_signatures_refused.fetch_add(1, Ordering::Relaxed),
            _ => tally.bad_signatures_other.fetch_add(1, Ordering::Relaxed),
        };
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Registers revisions of its own family, as a CI pipeline does: each acknowledged
/// revision must be listed afterwards.
async fn writer(port: u16, index: usize, until: Instant, tally: Arc<Tally>) {
    let client = reqwest::Client::new();
    let family = format!("soak-{index:02}");
    while Instant::now() < until {
        let body = format!(
            r#"{{"family": "{family}", "containerDefinitions": [{{"name": "app",
                "image": "berth/busybox:latest", "memory": 16,
                "environment": [{{"name": "WRITER", "value": "{index}"}}]}}]}}"#
        );
        match ecs(
            &client,
            port,
            support::SECRET_ACCESS_KEY,
            "RegisterTaskDefinition",
            &body,
        )
        .await
        {
            Ok((200, text)) => {
                let answer: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
                match answer["taskDefinition"]["revision"].as_i64() {
                    Some(revision) => tally
                        .acknowledged
                        .lock()
                        .unwrap()
                        .push(format!("{family}:{revision}")),
                    None => tally
                        .write_failures
                        .lock()
                        .unwrap()
                        .push(format!("{family}: no revision in {text}")),
                }
            }
            Ok((status, text)) => tally
                .write_failures
                .lock()
                .unwrap()
                .push(format!("{family}: {status} {text}")),
            Err(error) => tally
                .write_failures
                .lock()
                .unwrap()
                .push(format!("{family}: {error}")),
        }
    }
}

async fn reader(port: u16, index: usize, until: Instant, tally: Arc<Tally>) {
    let client = reqwest::Client::new();
    while Instant::now() < until {
        let (action, body) = if index.is_multiple_of(2) {
            ("ListClusters", r#"{"maxResults": 10}"#)
        } else {
            ("DescribeClusters", r#"{"clusters": ["default"]}"#)
        };
        let started = Instant::now();
        let outcome = ecs(&client, port, support::SECRET_ACCESS_KEY, action, body).await;
        let took = started.elapsed().as_secs_f64() * 1000.0;
        match outcome {
            Ok((200, _)) => tally.reads_ms.lock().unwrap().push(took),
            Ok((status, text)) => tally
                .read_failures
                .lock()
                .unwrap()
                .push(format!("{action}: {status} {text}")),
            Err(error) => tally
                .read_failures
                .lock()
                .unwrap()
                .push(format!("{action}: {error}")),
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}

fn rss_mb(pid: u32) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<f64>().ok())
        })
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

/// Every task definition revision the API lists, through the aws CLI's own pagination.
fn listed_revisions(dev: &Dev) -> std::collections::BTreeSet<String> {
    let listed = dev.aws_json(&["ecs", "list-task-definitions"]);
    listed["taskDefinitionArns"]
        .as_array()
        .expect("taskDefinitionArns")
        .iter()
        .filter_map(|arn| arn.as_str()?.rsplit('/').next().map(str::to_string))
        .collect()
}

#[test]
fn a_hostile_mix_loses_nothing_and_readers_keep_being_answered() {
    let seconds: u64 = std::env::var("BERTH_SOAK_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(15);
    let mut dev = Dev::start();
    let port = dev.port;
    let pid = dev.pid().expect("berth dev runs");
    let idle_rss = rss_mb(pid);
    let tally = Arc::new(Tally::default());
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_all()
        .build()
        .unwrap();

    // Readers alone first: the idle figure the loaded one is compared with.
    let quiet = Arc::new(Tally::default());
    runtime.block_on(async {
        let until = Instant::now() + Duration::from_secs(3);
        let readers: Vec<_> = (0..READERS)
            .map(|i| tokio::spawn(reader(port, i, until, quiet.clone())))
            .collect();
        for task in readers {
            task.await.unwrap();
        }
    });

    let started = Instant::now();
    let peak_rss = Arc::new(Mutex::new(idle_rss));
    runtime.block_on(async {
        let until = Instant::now() + Duration::from_secs(seconds);
        let mut tasks = Vec::new();
        for _ in 0..SLOW_HEADER_CLIENTS {
            tasks.push(tokio::spawn(trickle_headers(port, until, tally.clone())));
        }
        for i in 0..BIG_BODY_CLIENTS {
            tasks.push(tokio::spawn(big_bodies(
                port,
                until,
                i % 2 == 1,
                tally.clone(),
            )));
        }
        for _ in 0..BAD_SIGNATURE_CLIENTS {
            tasks.push(tokio::spawn(bad_signatures(port, until, tally.clone())));
        }
        for i in 0..WRITERS {
            tasks.push(tokio::spawn(writer(port, i, until, tally.clone())));
        }
        // Readers start once the hostile clients are in place.
        tokio::time::sleep(Duration::from_millis(500)).await;
        for i in 0..READERS {
            tasks.push(tokio::spawn(reader(port, i, until, tally.clone())));
        }
        let peak = peak_rss.clone();
        tasks.push(tokio::spawn(async move {
            while Instant::now() < until {
                let now = rss_mb(pid);
                {
                    let mut peak = peak.lock().unwrap();
                    if now > *peak {
                        *peak = now;
                    }
                }
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
        }));
        for task in tasks {
            task.await.unwrap();
        }
    });
    let elapsed = started.elapsed().as_secs_f64();
    let after_rss = rss_mb(pid);

    let mut quiet_reads = quiet.reads_ms.lock().unwrap().clone();
    quiet_reads.sort_by(f64::total_cmp);
    let mut reads = tally.reads_ms.lock().unwrap().clone();
    reads.sort_by(f64::total_cmp);
    let acknowledged: Vec<String> = tally.acknowledged.lock().unwrap().clone();
    println!(
        "soak: {seconds} s; {WRITERS} writers, {READERS} readers, {SLOW_HEADER_CLIENTS} slow-header \
         clients, {BIG_BODY_CLIENTS} big-body clients, {BAD_SIGNATURE_CLIENTS} bad-signature clients"
    );
    println!(
        "soak: reads alone: {} answered, p50 {:.1} ms, p99 {:.1} ms",
        quiet_reads.len(),
        percentile(&quiet_reads, 50.0),
        percentile(&quiet_reads, 99.0)
    );
    println!(
        "soak: reads under the mix: {} answered, p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        reads.len(),
        percentile(&reads, 50.0),
        percentile(&reads, 99.0),
        reads.last().copied().unwrap_or(f64::NAN)
    );
    println!(
        "soak: writes acknowledged: {} ({:.0}/s); slow-header connections {}, big bodies {}, \
         bad signatures refused {} (other answers {})",
        acknowledged.len(),
        acknowledged.len() as f64 / elapsed,
        tally.slow_connections.load(Ordering::Relaxed),
        tally.big_bodies.load(Ordering::Relaxed),
        tally.bad_signatures_refused.load(Ordering::Relaxed),
        tally.bad_signatures_other.load(Ordering::Relaxed),
    );
    println!("soak: berth dev RSS: idle {idle_rss:.1} MB, peak {peak_rss:.1} MB, after {after_rss:.1} MB",
        peak_rss = *peak_rss.lock().unwrap());

    // One line for bench/soak.sh.
    println!(
        "soak-json: {}",
        serde_json::json!({
            "seconds": seconds,
            "quiet_reads": quiet_reads.len(),
            "quiet_p50_ms": percentile(&quiet_reads, 50.0),
            "quiet_p99_ms": percentile(&quiet_reads, 99.0),
            "reads": reads.len(),
            "p50_ms": percentile(&reads, 50.0),
            "p99_ms": percentile(&reads, 99.0),
            "max_ms": reads.last().copied().unwrap_or(f64::NAN),
            "writes": acknowledged.len(),
            "writes_per_s": acknowledged.len() as f64 / elapsed,
            "read_failures": tally.read_failures.lock().unwrap().len(),
            "write_failures": tally.write_failures.lock().unwrap().len(),
            "slow_connections": tally.slow_connections.load(Ordering::Relaxed),
            "big_bodies": tally.big_bodies.load(Ordering::Relaxed),
            "bad_signatures_refused": tally.bad_signatures_refused.load(Ordering::Relaxed),
            "rss_idle_mb": idle_rss,
            "rss_peak_mb": *peak_rss.lock().unwrap(),
            "rss_after_mb": after_rss,
        })
    );
    let read_failures = tally.read_failures.lock().unwrap();
    assert!(
        read_failures.is_empty(),
        "{} reads failed, e.g. {:?}",
        read_failures.len(),
        &read_failures[..read_failures.len().min(5)]
    );
    let write_failures = tally.write_failures.lock().unwrap();
    assert!(
        write_failures.is_empty(),
        "{} writes failed, e.g. {:?}",
        write_failures.len(),
        &write_failures[..write_failures.len().min(5)]
    );
    assert!(!reads.is_empty() && !acknowledged.is_empty());
    assert_eq!(
        tally.bad_signatures_other.load(Ordering::Relaxed),
        0,
        "every bad signature is refused with 403"
    );

    // Nothing acknowledged is lost: not now, and not after kill -9.
    let listed = listed_revisions(&dev);
    let missing: Vec<_> = acknowledged
        .iter()
        .filter(|n| !listed.contains(*n))
        .collect();
    assert!(
        missing.is_empty(),
        "acknowledged but not listed: {missing:?}"
    );
    dev.kill();
    dev.spawn();
    let listed = listed_revisions(&dev);
    let missing: Vec<_> = acknowledged
        .iter()
        .filter(|n| !listed.contains(*n))
        .collect();
    assert!(missing.is_empty(), "lost in kill -9: {missing:?}");
}
