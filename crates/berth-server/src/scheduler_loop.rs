use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Duration;

use berth_core::ecs::Context;
use berth_core::{Command, State};
use futures_util::FutureExt;

use crate::ControlPlane;

/// How long a loop waits after a panic before it runs again, so a bug that panics on
/// every round does not spin.
pub(crate) const PANIC_PAUSE: Duration = Duration::from_secs(1);

/// Runs the service scheduler on every change to the state, and at least every second
/// (backoff deadlines, grace periods and retention are time-driven).
pub async fn run_scheduler(control_plane: Arc<ControlPlane>, shutdown: impl Future<Output = ()>) {
    run_scheduler_with(control_plane, berth_core::reconcile, shutdown).await
}

/// The scheduler loop around any decision: a panic in a round is logged, counted
/// (`ControlPlane::loop_panics`) and the loop goes on; it never stops scheduling silently.
pub(crate) async fn run_scheduler_with(
    control_plane: Arc<ControlPlane>,
    decide: fn(&State, &mut Context) -> Vec<Command>,
    shutdown: impl Future<Output = ()>,
) {
    let mut changes = control_plane.store.watch();
    tokio::pin!(shutdown);
    loop {
        // Mark changes seen before deciding, so a write that lands while we decide
        // wakes us again (our own write costs one idle round).
        changes.borrow_and_update();
        let round = control_plane.transact(&control_plane.default_region, move |state, ctx| {
            Ok::<_, std::convert::Infallible>((decide(state, ctx), ()))
        });
        let mut panicked = false;
        match AssertUnwindSafe(round).catch_unwind().await {
            Ok(Ok(_)) => {}
            Ok(Err(error)) => {
                tracing::error!(%error, "the scheduler could not save its decisions; retrying");
            }
            Err(panic) => {
                let count = control_plane.loop_panicked(LoopName::Scheduler);
                tracing::error!(
                    panic = panic_text(&panic),
                    count,
                    "the scheduler hit a bug in berth and saved nothing of this round; it goes on"
                );
                panicked = true;
            }
        }
        tokio::select! {
            _ = &mut shutdown => return,
            changed = changes.changed(), if !panicked => {
                if changed.is_err() {
                    return;
                }
            }
            _ = tokio::time::sleep(if panicked { PANIC_PAUSE } else { Duration::from_secs(1) }) => {}
        }
    }
}

/// The long-running loops of the control plane whose panics are counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoopName {
    Scheduler,
    LoadBalancerConfig,
}

/// What a panic said, for the log.
pub(crate) fn panic_text(panic: &Box<dyn std::any::Any + Send>) -> String {
    if let Some(text) = panic.downcast_ref::<&str>() {
        text.to_string()
    } else if let Some(text) = panic.downcast_ref::<String>() {
        text.clone()
    } else {
        "a panic without a message".to_string()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use berth_core::model::{Cluster, ClusterStatus};
    use berth_core::Timestamp;

    use super::*;

    static ROUNDS: AtomicUsize = AtomicUsize::new(0);

    /// Panics in its first round, then creates a cluster named after the round.
    fn panics_once(state: &State, _: &mut Context) -> Vec<Command> {
        let round = ROUNDS.fetch_add(1, Ordering::SeqCst);
        if round == 0 {
            panic!("a bug in the first round");
        }
        if !state.clusters.is_empty() {
            return Vec::new();
        }
        vec![Command::PutCluster(Cluster {
            name: format!("round-{round}"),
            status: ClusterStatus::Active,
            tags: vec![],
            settings: vec![],
            configuration: None,
            capacity_providers: vec![],
            default_capacity_provider_strategy: vec![],
            created_at: Timestamp(1),
        })]
    }

    #[tokio::test(start_paused = true)]
    async fn a_panicking_round_is_counted_and_scheduling_goes_on() {
        let control_plane = Arc::new(ControlPlane::in_memory());
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let scheduler = tokio::spawn(run_scheduler_with(
            control_plane.clone(),
            panics_once,
            async {
                let _ = stopped.await;
            },
        ));
        let mut changes = control_plane.store.watch();
        tokio::time::timeout(Duration::from_secs(30), changes.changed())
            .await
            .expect("the scheduler ran again after its panic")
            .unwrap();
        assert_eq!(
            control_plane
                .store
                .read(|s| s.clusters.keys().cloned().collect::<Vec<_>>()),
            ["round-1"]
        );
        assert_eq!(control_plane.loop_panics(LoopName::Scheduler), 1);
        assert_eq!(control_plane.loop_panics(LoopName::LoadBalancerConfig), 0);
        stop.send(()).unwrap();
        scheduler.await.unwrap();
    }
}
