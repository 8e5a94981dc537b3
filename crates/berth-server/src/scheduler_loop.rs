use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use berth_core::ecs::Context;

use crate::{now, ControlPlane, RandomIds};

/// Runs the service scheduler on every change to the state, and at least every second
/// (backoff deadlines, grace periods and retention are time-driven).
pub async fn run_scheduler(control_plane: Arc<ControlPlane>, shutdown: impl Future<Output = ()>) {
    let mut changes = control_plane.store.watch();
    tokio::pin!(shutdown);
    loop {
        // Mark changes seen before deciding, so a write that lands while we decide
        // wakes us again (our own write costs one idle round).
        changes.borrow_and_update();
        let scope = control_plane.scope(&control_plane.default_region);
        let result = control_plane.store.transact(|state| {
            let mut ids = RandomIds;
            let mut ctx = Context {
                now: now(),
                scope: &scope,
                ids: &mut ids,
                policy: &control_plane.privilege_policy,
            };
            Ok::<_, std::convert::Infallible>((berth_core::reconcile(state, &mut ctx), ()))
        });
        if let Err(error) = result {
            tracing::error!(%error, "the scheduler could not save its decisions; retrying");
        }
        tokio::select! {
            _ = &mut shutdown => return,
            changed = changes.changed() => {
                if changed.is_err() {
                    return;
                }
            }
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
        }
    }
}
