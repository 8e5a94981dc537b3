//! A target as the data plane sees it: its address, in-flight count, health record and
//! connection pool; and `Lease`, one request's hold on a target and its connection.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use tokio_util::sync::CancellationToken;

use crate::health::HealthRecord;
use crate::pool::{Pool, UpstreamSender};

pub(crate) struct Target {
    pub id: String,
    pub addr: SocketAddr,
    /// What a stickiness cookie carries to name this target (see `sticky`).
    pub sticky_token: String,
    /// Requests (or TCP connections) in flight, for least outstanding requests.
    pub outstanding: AtomicUsize,
    /// Consecutive traffic failures; reset by any response or a passing check.
    passive_failures: AtomicU32,
    health: Mutex<HealthRecord>,
    pub pool: Pool,
    /// Stops this target's health checker (when it starts draining or on shutdown).
    pub cancel: CancellationToken,
}

impl Target {
    pub fn new(
        group_id: &str,
        id: String,
        addr: SocketAddr,
        checks_enabled: bool,
        cancel: CancellationToken,
    ) -> Target {
        Target {
            sticky_token: crate::sticky::target_token(group_id, &id, addr),
            id,
            addr,
            outstanding: AtomicUsize::new(0),
            passive_failures: AtomicU32::new(0),
            health: Mutex::new(HealthRecord::registered(checks_enabled)),
            pool: Pool::default(),
            cancel,
        }
    }

    pub fn health(&self) -> MutexGuard<'_, HealthRecord> {
        self.health
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Counts one more traffic failure; returns the consecutive count.
    pub fn add_passive_failure(&self) -> u32 {
        self.passive_failures.fetch_add(1, Ordering::Relaxed) + 1
    }

    pub fn clear_passive_failures(&self) {
        // Read first: the common case writes nothing, so healthy traffic does not
        // bounce this cache line between cores.
        if self.passive_failures.load(Ordering::Relaxed) != 0 {
            self.passive_failures.store(0, Ordering::Relaxed);
        }
    }
}

/// One request's hold on a target: counts it as outstanding until dropped, and gives
/// its upstream connection back to the pool when the response ended cleanly.
pub(crate) struct Lease {
    pub target: Arc<Target>,
    sender: Option<UpstreamSender>,
    reusable: bool,
    idle_timeout: std::time::Duration,
}

impl Lease {
    pub fn new(target: Arc<Target>, idle_timeout: std::time::Duration) -> Lease {
        target.outstanding.fetch_add(1, Ordering::Relaxed);
        Lease {
            target,
            sender: None,
            reusable: false,
            idle_timeout,
        }
    }

    pub fn set_sender(&mut self, sender: UpstreamSender) {
        self.sender = Some(sender);
    }

    /// The response was read to its end: the connection may carry another request.
    pub fn mark_reusable(&mut self) {
        self.reusable = true;
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        self.target.outstanding.fetch_sub(1, Ordering::Relaxed);
        if let Some(sender) = self.sender.take() {
            if self.reusable {
                self.target.pool.put_back(sender, self.idle_timeout);
            }
        }
    }
}
