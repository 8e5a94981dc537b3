//! A load-test harness: three tiny hyper backends, a round-robin HTTP listener over
//! them, and a client that holds many idle keep-alive connections.
//!
//! - `lb_bench [BIND] [FIRST_PORT]` (default `127.0.0.1:8080 9001`): backends on ports
//!   FIRST_PORT..FIRST_PORT+2 and the balancer on BIND, in one process, until killed.
//! - `lb_bench backends FIRST_PORT`: the three backends only (so berth-lb, nginx and
//!   HAProxy can be pointed at the same ones, and the balancer measured on its own).
//! - `lb_bench balancer BIND FIRST_PORT`: the balancer only, over running backends.
//! - `lb_bench idle-clients ADDR COUNT`: opens COUNT connections to ADDR, sends one
//!   keep-alive `GET /` on each and reads its response, prints `ready COUNT`, then
//!   holds them all open until killed.
//!
//! `bench/lb.sh` drives all of these.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::time::Duration;

use berth_lb::{
    default_data_plane_threads, Algorithm, HealthCheckConfig, LbConfig, Limits, ListenerConfig,
    ListenerProtocol, LoadBalancer, TargetConfig, TargetGroupConfig,
};
use bytes::Bytes;
use http_body_util::Full;
use hyper::Response;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let arg = |index: usize, default: &str| args.get(index).cloned().unwrap_or(default.into());
    match args.first().map(String::as_str) {
        Some("backends") => {
            let first_port: u16 = arg(1, "9001").parse().expect("FIRST_PORT");
            start_backends(first_port).await;
            println!(
                "backends listening on ports {first_port}..{}",
                first_port + 2
            );
            wait_for_signal().await;
        }
        Some("balancer") => {
            let bind: SocketAddr = arg(1, "127.0.0.1:8080").parse().expect("BIND");
            let first_port: u16 = arg(2, "9001").parse().expect("FIRST_PORT");
            run_balancer(bind, first_port).await;
        }
        Some("idle-clients") => {
            let addr: SocketAddr = arg(1, "127.0.0.1:8080").parse().expect("ADDR");
            let count: usize = arg(2, "10000").parse().expect("COUNT");
            idle_clients(addr, count).await;
        }
        _ => {
            let bind: SocketAddr = arg(0, "127.0.0.1:8080").parse().expect("BIND");
            let first_port: u16 = arg(1, "9001").parse().expect("FIRST_PORT");
            start_backends(first_port).await;
            run_balancer(bind, first_port).await;
        }
    }
}

fn backend_addrs(first_port: u16) -> Vec<SocketAddr> {
    (0..3u16)
        .map(|index| ([127, 0, 0, 1], first_port + index).into())
        .collect()
}

/// Three backends answering every request with `backend N\n`.
async fn start_backends(first_port: u16) {
    for (index, addr) in backend_addrs(first_port).into_iter().enumerate() {
        let listener = TcpListener::bind(addr)
            .await
            .unwrap_or_else(|error| panic!("cannot bind backend on {addr}: {error}"));
        let body = Bytes::from(format!("backend {index}\n"));
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                };
                let _ = stream.set_nodelay(true);
                let body = body.clone();
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |_request| {
                        let body = body.clone();
                        async move { Ok::<_, Infallible>(Response::new(Full::new(body))) }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
    }
}

async fn run_balancer(bind: SocketAddr, first_port: u16) {
    let targets = backend_addrs(first_port)
        .into_iter()
        .enumerate()
        .map(|(index, addr)| TargetConfig {
            id: format!("backend-{index}"),
            addr,
        })
        .collect();
    // As `berth dev` runs it: client connections on the balancer's own threads.
    let lb = LoadBalancer::with_own_threads(Limits::default(), default_data_plane_threads())
        .expect("start the balancer's threads");
    lb.apply(LbConfig {
        listeners: vec![ListenerConfig::forwarding(
            "web",
            bind,
            ListenerProtocol::Http,
            "tg",
        )],
        target_groups: vec![TargetGroupConfig {
            id: "tg".into(),
            protocol: ListenerProtocol::Http,
            algorithm: Algorithm::RoundRobin,
            health_check: HealthCheckConfig {
                interval: Duration::from_secs(5),
                ..HealthCheckConfig::default()
            },
            deregistration_delay: Duration::from_secs(1),
            stickiness: berth_lb::Stickiness::Off,
            targets,
        }],
    })
    .await
    .unwrap();
    println!("berth-lb listening on {}", lb.local_addr("web").unwrap());
    wait_for_signal().await;
    lb.shutdown().await;
}

/// Opens `count` keep-alive connections, one request each, and holds them.
async fn idle_clients(addr: SocketAddr, count: usize) {
    const OPEN_AT_ONCE: usize = 200;
    let mut held = Vec::with_capacity(count);
    let mut opened = 0;
    while opened < count {
        let batch = OPEN_AT_ONCE.min(count - opened);
        let mut tasks = tokio::task::JoinSet::new();
        for _ in 0..batch {
            tasks.spawn(async move {
                let mut stream = TcpStream::connect(addr).await?;
                stream
                    .write_all(b"GET / HTTP/1.1\r\nHost: bench\r\n\r\n")
                    .await?;
                // The backends' answers are tiny: one read holds the whole response.
                let mut buffer = [0u8; 1024];
                let read = stream.read(&mut buffer).await?;
                if !buffer[..read].starts_with(b"HTTP/1.1 200") {
                    return Err(std::io::Error::other("no 200 response"));
                }
                Ok::<_, std::io::Error>(stream)
            });
        }
        while let Some(joined) = tasks.join_next().await {
            match joined.expect("client task panicked") {
                Ok(stream) => held.push(stream),
                Err(error) => {
                    eprintln!(
                        "idle client failed after {} connections: {error}",
                        held.len()
                    );
                    std::process::exit(1);
                }
            }
        }
        opened += batch;
    }
    println!("ready {}", held.len());
    wait_for_signal().await;
    drop(held);
}

async fn wait_for_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let mut terminate = signal(SignalKind::terminate()).expect("SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = terminate.recv() => {}
    }
}
