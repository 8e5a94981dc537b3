//! A listener bound in another network namespace: clients in that namespace reach it,
//! and it reaches targets from the balancer's own namespace. Needs root (setns and
//! `unshare --net`), as berth's agent does.

mod common;

use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::{Child, Command};
use std::time::Duration;

use berth_lb::{
    LbConfig, LbError, Limits, ListenerConfig, ListenerProtocol, LoadBalancer, TargetConfig,
};
use common::*;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpListener;

/// A process holding a network namespace of its own (loopback up), killed on drop.
struct Namespace {
    child: Child,
}

impl Namespace {
    fn start() -> Namespace {
        let child = Command::new("unshare")
            .args(["--net", "sh", "-c", "ip link set lo up && exec sleep 120"])
            .spawn()
            .expect("cannot run unshare (util-linux): this test needs it, and root");
        let namespace = Namespace { child };
        // Ready once the shell became `sleep`: loopback is up by then.
        let comm = format!("/proc/{}/comm", namespace.child.id());
        for _ in 0..200 {
            if std::fs::read_to_string(&comm).is_ok_and(|c| c.trim() == "sleep") {
                return namespace;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        panic!("`unshare --net` did not start: this test needs root");
    }

    fn path(&self) -> PathBuf {
        PathBuf::from(format!("/proc/{}/ns/net", self.child.id()))
    }
}

impl Drop for Namespace {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Connects to `port` on loopback from inside `namespace`, sends `ping` and reads what
/// comes back until the peer closes.
fn exchange_inside(namespace: PathBuf, port: u16) -> std::io::Result<String> {
    std::thread::spawn(move || -> std::io::Result<String> {
        let link = std::fs::File::open(&namespace)?;
        rustix::thread::move_into_link_name_space(
            std::os::fd::AsFd::as_fd(&link),
            Some(rustix::thread::LinkNameSpaceType::Network),
        )?;
        let mut stream = std::net::TcpStream::connect(("127.0.0.1", port))?;
        stream.set_read_timeout(Some(Duration::from_secs(5)))?;
        stream.write_all(b"ping")?;
        stream.shutdown(std::net::Shutdown::Write)?;
        let mut answer = String::new();
        stream.read_to_string(&mut answer)?;
        Ok(answer)
    })
    .join()
    .expect("the connecting thread panicked")
}

fn tcp_listener_in(namespace: Option<PathBuf>, port: u16) -> ListenerConfig {
    ListenerConfig {
        namespace,
        ..ListenerConfig::forwarding(
            "endpoint",
            std::net::SocketAddr::from(([0, 0, 0, 0], port)),
            ListenerProtocol::Tcp,
            "tcp",
        )
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_listener_in_another_namespace_serves_clients_there_and_reaches_targets_here() {
    // The target listens on this namespace's loopback only: the namespace's own
    // loopback has nothing on it, so an answer shows the proxy crossed over.
    let target = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let target_addr = target.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = target.accept().await {
            tokio::spawn(async move {
                let _ = stream.write_all(b"from the host namespace").await;
            });
        }
    });
    let namespace = Namespace::start();
    let lb = LoadBalancer::new(Limits::default());
    let mut group = group(
        "tcp",
        vec![TargetConfig {
            id: "target".into(),
            addr: target_addr,
        }],
    );
    group.protocol = ListenerProtocol::Tcp;
    group.health_check.enabled = false;
    // The same port as the target's: it is free in the other namespace.
    let port = target_addr.port();
    lb.apply(LbConfig {
        listeners: vec![tcp_listener_in(Some(namespace.path()), port)],
        target_groups: vec![group.clone()],
    })
    .await
    .unwrap();

    let path = namespace.path();
    let answer = tokio::task::spawn_blocking(move || exchange_inside(path, port))
        .await
        .unwrap()
        .expect("a client in the namespace reaches the listener");
    assert_eq!(answer, "from the host namespace");

    // A second apply with the same listener keeps its socket (nothing rebinds).
    lb.apply(LbConfig {
        listeners: vec![tcp_listener_in(Some(namespace.path()), port)],
        target_groups: vec![group],
    })
    .await
    .unwrap();
    let path = namespace.path();
    let again = tokio::task::spawn_blocking(move || exchange_inside(path, port))
        .await
        .unwrap()
        .expect("the listener still serves after an unchanged apply");
    assert_eq!(again, "from the host namespace");
    lb.shutdown().await;
}

#[test]
fn root_may_enter_network_namespaces() {
    berth_lb::check_namespace_entry().expect("this test runs as root, as berth's agent does");
}

#[tokio::test]
async fn a_namespace_that_cannot_be_entered_is_named_in_the_error() {
    let lb = LoadBalancer::new(Limits::default());
    let mut group = group("tcp", Vec::new());
    group.protocol = ListenerProtocol::Tcp;
    let missing = PathBuf::from("/proc/0/ns/net");
    let error = lb
        .apply(LbConfig {
            listeners: vec![tcp_listener_in(Some(missing.clone()), 0)],
            target_groups: vec![group],
        })
        .await
        .unwrap_err();
    assert!(
        matches!(&error, LbError::Namespace { namespace, .. } if *namespace == missing),
        "{error}"
    );
    assert!(error.to_string().contains("/proc/0/ns/net"), "{error}");
    lb.shutdown().await;
}
