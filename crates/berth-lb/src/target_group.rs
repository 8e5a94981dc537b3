//! A running target group: its settings, registered and draining targets, and the
//! snapshot of healthy targets the request path selects from.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use arc_swap::ArcSwap;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::config::{TargetConfig, TargetGroupConfig};
use crate::health::{self, HealthRecord, TargetHealth, TargetState};
use crate::upstream::Target;

pub(crate) struct TargetGroup {
    pub id: String,
    settings: ArcSwap<TargetGroupConfig>,
    members: Mutex<Members>,
    /// Targets in state `Healthy`, rebuilt on every state change; read lock-free.
    pub(crate) healthy: ArcSwap<Vec<Arc<Target>>>,
    /// Round-robin position, shared by both algorithms (ties in least outstanding).
    pub(crate) cursor: AtomicUsize,
    /// Whether a listener forwards to this group; targets of an unused group report `Unused`.
    pub in_use: AtomicBool,
    events: watch::Sender<u64>,
    cancel: CancellationToken,
}

#[derive(Default)]
struct Members {
    registered: Vec<Arc<Target>>,
    draining: Vec<Arc<Target>>,
}

impl TargetGroup {
    pub fn new(
        config: TargetGroupConfig,
        events: watch::Sender<u64>,
        cancel: CancellationToken,
    ) -> Arc<TargetGroup> {
        let group = Arc::new(TargetGroup {
            id: config.id.clone(),
            settings: ArcSwap::from_pointee(TargetGroupConfig {
                targets: Vec::new(),
                ..config.clone()
            }),
            members: Mutex::default(),
            healthy: ArcSwap::from_pointee(Vec::new()),
            cursor: AtomicUsize::new(0),
            in_use: AtomicBool::new(false),
            events,
            cancel,
        });
        group.sync_targets(&config.targets);
        group
    }

    pub fn settings(&self) -> Arc<TargetGroupConfig> {
        self.settings.load_full()
    }

    /// Takes new settings and target list; unchanged targets keep their health.
    pub fn update(self: &Arc<Self>, config: &TargetGroupConfig) {
        let before = self.settings.load_full();
        self.settings.store(Arc::new(TargetGroupConfig {
            targets: Vec::new(),
            ..config.clone()
        }));
        if before.health_check.enabled != config.health_check.enabled {
            // Switching checks on or off starts every target's health afresh.
            for target in self.lock_members().registered.clone() {
                *target.health() = HealthRecord::registered(config.health_check.enabled);
            }
            self.rebuild_healthy();
            self.notify();
        }
        self.sync_targets(&config.targets);
    }

    fn lock_members(&self) -> MutexGuard<'_, Members> {
        self.members
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn sync_targets(self: &Arc<Self>, wanted: &[TargetConfig]) {
        let checks_enabled = self.settings.load().health_check.enabled;
        let mut removed = Vec::new();
        let mut added = Vec::new();
        {
            let mut members = self.lock_members();
            let (kept, gone): (Vec<_>, Vec<_>) = members.registered.drain(..).partition(|target| {
                wanted
                    .iter()
                    .any(|want| want.id == target.id && want.addr == target.addr)
            });
            members.registered = kept;
            for want in wanted {
                let present = members
                    .registered
                    .iter()
                    .any(|target| want.id == target.id && want.addr == target.addr);
                if !present {
                    let target = Arc::new(Target::new(
                        &self.id,
                        want.id.clone(),
                        want.addr,
                        checks_enabled,
                        self.cancel.child_token(),
                    ));
                    members.registered.push(target.clone());
                    added.push(target);
                }
            }
            for target in gone {
                target.health().start_draining();
                target.cancel.cancel();
                members.draining.push(target.clone());
                removed.push(target);
            }
        }
        for target in added {
            tokio::spawn(health::run_checker(self.clone(), target));
        }
        let delay = self.settings.load().deregistration_delay;
        for target in &removed {
            let group = self.clone();
            let target = target.clone();
            let cancel = self.cancel.clone();
            tokio::spawn(async move {
                tokio::select! {
                    _ = tokio::time::sleep(delay) => {}
                    _ = cancel.cancelled() => {}
                }
                group
                    .lock_members()
                    .draining
                    .retain(|draining| !Arc::ptr_eq(draining, &target));
                group.notify();
            });
        }
        self.rebuild_healthy();
        self.notify();
    }

    /// Applies `change` to a target's health record and republishes on a state change.
    pub fn update_health(&self, target: &Target, change: impl FnOnce(&mut HealthRecord) -> bool) {
        let changed = change(&mut target.health());
        if changed {
            tracing::debug!(
                target_group = %self.id,
                target_id = %target.id,
                state = ?target.health().state,
                "target state changed"
            );
            self.rebuild_healthy();
            self.notify();
        }
    }

    /// Counts a traffic failure against `target` (see the passive rule in `health`).
    pub fn record_passive_failure(&self, target: &Target) {
        let consecutive = target.add_passive_failure();
        let settings = self.settings.load();
        self.update_health(target, |record| {
            record.on_passive_failures(consecutive, &settings.health_check)
        });
    }

    fn rebuild_healthy(&self) {
        let members = self.lock_members();
        let healthy: Vec<Arc<Target>> = members
            .registered
            .iter()
            .filter(|target| target.health().state == TargetState::Healthy)
            .cloned()
            .collect();
        self.healthy.store(Arc::new(healthy));
    }

    pub fn notify(&self) {
        self.events
            .send_modify(|count| *count = count.wrapping_add(1));
    }

    pub fn health_report(&self) -> Vec<TargetHealth> {
        let in_use = self.in_use.load(Ordering::Relaxed);
        let members = self.lock_members();
        let report = |target: &Arc<Target>| {
            let record = target.health();
            let unused = !in_use && record.state != TargetState::Draining;
            TargetHealth {
                id: target.id.clone(),
                addr: target.addr,
                state: if unused {
                    TargetState::Unused
                } else {
                    record.state
                },
                reason: if unused {
                    Some(health::NOT_IN_USE)
                } else {
                    record.reason
                },
                description: if unused {
                    Some(
                        "Target group is not configured to receive traffic from the load balancer"
                            .to_string(),
                    )
                } else {
                    record.description.clone()
                },
            }
        };
        members
            .registered
            .iter()
            .chain(members.draining.iter())
            .map(report)
            .collect()
    }

    /// Stops health checks and drain timers of this group.
    pub fn close(&self) {
        self.cancel.cancel();
    }
}
