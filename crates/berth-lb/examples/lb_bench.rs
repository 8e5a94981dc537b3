//! A load-test harness: three tiny hyper backends and a round-robin HTTP listener.
//!
//! `cargo run --release -p berth-lb --example lb_bench -- 127.0.0.1:8080 9001`
//! binds the balancer on the first address and the backends on ports 9001..9003
//! (so nginx or HAProxy can be pointed at the same backends), then runs until killed.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::time::Duration;

use berth_lb::{
    Algorithm, HealthCheckConfig, LbConfig, Limits, ListenerConfig, ListenerProtocol, LoadBalancer,
    TargetConfig, TargetGroupConfig,
};
use bytes::Bytes;
use http_body_util::Full;
use hyper::Response;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

#[tokio::main]
async fn main() {
    let mut args = std::env::args().skip(1);
    let bind: SocketAddr = args
        .next()
        .unwrap_or("127.0.0.1:8080".into())
        .parse()
        .unwrap();
    let first_port: u16 = args.next().unwrap_or("9001".into()).parse().unwrap();
    let mut targets = Vec::new();
    for index in 0..3u16 {
        let addr: SocketAddr = ([127, 0, 0, 1], first_port + index).into();
        let listener = TcpListener::bind(addr).await.unwrap();
        tokio::spawn(async move {
            loop {
                let (stream, _) = listener.accept().await.unwrap();
                let _ = stream.set_nodelay(true);
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |_request| async move {
                        Ok::<_, Infallible>(Response::new(Full::new(Bytes::from(format!(
                            "backend {index}\n"
                        )))))
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        targets.push(TargetConfig {
            id: format!("backend-{index}"),
            addr,
        });
    }
    let lb = LoadBalancer::new(Limits::default());
    lb.apply(LbConfig {
        listeners: vec![ListenerConfig {
            id: "web".into(),
            bind,
            protocol: ListenerProtocol::Http,
            target_group_id: "tg".into(),
        }],
        target_groups: vec![TargetGroupConfig {
            id: "tg".into(),
            protocol: ListenerProtocol::Http,
            algorithm: Algorithm::RoundRobin,
            health_check: HealthCheckConfig {
                interval: Duration::from_secs(5),
                ..HealthCheckConfig::default()
            },
            deregistration_delay: Duration::from_secs(1),
            targets,
        }],
    })
    .await
    .unwrap();
    println!("berth-lb listening on {}", lb.local_addr("web").unwrap());
    tokio::signal::ctrl_c().await.ok();
    lb.shutdown().await;
}
