//! What the fuzz targets share: a control plane over an in-memory store, seeded with a
//! cluster, a container instance, a task definition, a service and ELBv2 records, made
//! anew for every input from the same records; and the check that everything an
//! accepted request stored reads back when the store opens again.

use std::sync::{Arc, OnceLock};

use berth_server::ControlPlane;
use berth_store::{Backend, MemoryBackend, Store};

pub const ECS_PREFIX: &str = "AmazonEC2ContainerServiceV20141113";

fn runtime() -> &'static tokio::runtime::Runtime {
    static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("a tokio runtime")
    })
}

pub fn block_on<F: std::future::Future>(future: F) -> F::Output {
    runtime().block_on(future)
}

fn control_plane_over(backend: Arc<MemoryBackend>) -> ControlPlane {
    let store = Store::open(Box::new(backend)).expect("the seed records open");
    ControlPlane::new(
        Arc::new(store),
        "000000000000".to_string(),
        "us-east-1".to_string(),
        berth_core::PrivilegePolicy::allow_all(),
    )
}

fn seed_records() -> &'static Vec<(String, Vec<u8>)> {
    static SEED: OnceLock<Vec<(String, Vec<u8>)>> = OnceLock::new();
    SEED.get_or_init(|| {
        let backend = Arc::new(MemoryBackend::default());
        let control_plane = control_plane_over(backend.clone());
        let ecs = |action: &str, body: &str| {
            let target = format!("{ECS_PREFIX}.{action}");
            block_on(berth_server::dispatch(
                &control_plane,
                &target,
                "us-east-1",
                body.as_bytes(),
            ))
            .unwrap_or_else(|e| panic!("seeding {action}: {e:?}"));
        };
        ecs("CreateCluster", r#"{"clusterName": "default"}"#);
        ecs(
            "RegisterTaskDefinition",
            r#"{"family": "web", "containerDefinitions": [{"name": "app",
                "image": "web", "memory": 64,
                "portMappings": [{"containerPort": 80, "hostPort": 0}]}]}"#,
        );
        ecs(
            "CreateService",
            r#"{"serviceName": "web", "taskDefinition": "web", "desiredCount": 1}"#,
        );
        for body in [
            "Action=CreateLoadBalancer&Name=lb",
            "Action=CreateTargetGroup&Name=tg&Protocol=HTTP&Port=80&VpcId=vpc-1",
        ] {
            let answer = block_on(berth_server::dispatch_query(
                &control_plane,
                "us-east-1",
                body.as_bytes(),
                "seed",
            ));
            assert_eq!(answer.status, 200, "seeding: {}", answer.document);
        }
        backend.read_all().expect("the seed records")
    })
}

/// A fresh control plane holding the seed, and its backend.
pub fn seeded() -> (ControlPlane, Arc<MemoryBackend>) {
    let backend = Arc::new(MemoryBackend::with_records(seed_records().clone()));
    (control_plane_over(backend.clone()), backend)
}

/// Everything stored reads back: no accepted request may leave a record that keeps
/// the store from opening, or that it would have to quarantine.
pub fn assert_store_reopens(backend: &Arc<MemoryBackend>) {
    let store = Store::open(Box::new(backend.clone())).expect("the store opens");
    assert!(
        store.quarantined().is_empty(),
        "an accepted request stored a record that cannot be read back: {:?}",
        store
            .quarantined()
            .iter()
            .map(|q| (&q.key, &q.reason))
            .collect::<Vec<_>>()
    );
}
