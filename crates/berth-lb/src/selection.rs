//! Picking a target for a request: round robin or least outstanding requests, over
//! the group's lock-free snapshot of healthy targets, or the one stickiness names.

use std::net::IpAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use crate::config::{Algorithm, Stickiness};
use crate::sticky;
use crate::target_group::TargetGroup;
use crate::upstream::Target;

impl TargetGroup {
    /// A healthy target other than `exclude`, or `None` when there is none.
    pub fn select(
        &self,
        algorithm: Algorithm,
        exclude: Option<&Arc<Target>>,
    ) -> Option<Arc<Target>> {
        let healthy = self.healthy.load();
        select_from(&healthy, algorithm, &self.cursor, exclude).cloned()
    }

    /// The target stickiness binds this client to, when it is healthy and registered
    /// (not draining): the one a cookie's token names, or the one the client's address
    /// hashes to. `None`: select as without stickiness.
    pub fn select_sticky(
        &self,
        stickiness: &Stickiness,
        cookie_token: Option<&str>,
        client: IpAddr,
    ) -> Option<Arc<Target>> {
        let healthy = self.healthy.load();
        match stickiness {
            Stickiness::Off => None,
            Stickiness::SourceIp => sticky::by_source(&healthy, client, None).cloned(),
            Stickiness::LbCookie { .. } | Stickiness::AppCookie { .. } => {
                let token = cookie_token?;
                healthy
                    .iter()
                    .find(|target| target.sticky_token == token)
                    .cloned()
            }
        }
    }
}

pub(crate) fn select_from<'a>(
    targets: &'a [Arc<Target>],
    algorithm: Algorithm,
    cursor: &std::sync::atomic::AtomicUsize,
    exclude: Option<&Arc<Target>>,
) -> Option<&'a Arc<Target>> {
    let count = targets.len();
    if count == 0 {
        return None;
    }
    let start = cursor.fetch_add(1, Ordering::Relaxed) % count;
    let candidates = (0..count)
        .map(|offset| &targets[(start + offset) % count])
        .filter(|target| exclude.is_none_or(|excluded| !Arc::ptr_eq(excluded, target)));
    match algorithm {
        Algorithm::RoundRobin => candidates.into_iter().next(),
        // The first minimum in cursor order: ties go round robin.
        Algorithm::LeastOutstandingRequests => {
            candidates.min_by_key(|target| target.outstanding.load(Ordering::Relaxed))
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicUsize;

    use tokio_util::sync::CancellationToken;

    use super::*;

    fn targets(count: usize) -> Vec<Arc<Target>> {
        (0..count)
            .map(|index| {
                Arc::new(Target::new(
                    "tg",
                    format!("t{index}"),
                    format!("127.0.0.1:{}", 1000 + index).parse().unwrap(),
                    false,
                    CancellationToken::new(),
                ))
            })
            .collect()
    }

    fn pick(targets: &[Arc<Target>], algorithm: Algorithm, cursor: &AtomicUsize) -> String {
        select_from(targets, algorithm, cursor, None)
            .unwrap()
            .id
            .clone()
    }

    #[test]
    fn round_robin_spreads_evenly() {
        let targets = targets(3);
        let cursor = AtomicUsize::new(0);
        let mut counts = std::collections::HashMap::new();
        for _ in 0..300 {
            *counts
                .entry(pick(&targets, Algorithm::RoundRobin, &cursor))
                .or_insert(0) += 1;
        }
        assert_eq!(
            counts.values().copied().collect::<Vec<_>>(),
            vec![100, 100, 100]
        );
    }

    #[test]
    fn least_outstanding_prefers_the_idle_target_and_rotates_ties() {
        let targets = targets(3);
        let cursor = AtomicUsize::new(0);
        targets[0].outstanding.store(2, Ordering::Relaxed);
        targets[2].outstanding.store(1, Ordering::Relaxed);
        for _ in 0..5 {
            assert_eq!(
                pick(&targets, Algorithm::LeastOutstandingRequests, &cursor),
                "t1"
            );
        }
        targets[0].outstanding.store(0, Ordering::Relaxed);
        targets[2].outstanding.store(0, Ordering::Relaxed);
        let picks: std::collections::HashSet<_> = (0..3)
            .map(|_| pick(&targets, Algorithm::LeastOutstandingRequests, &cursor))
            .collect();
        assert_eq!(picks.len(), 3);
    }

    #[test]
    fn exclude_skips_the_failed_target() {
        let targets = targets(2);
        let cursor = AtomicUsize::new(0);
        for _ in 0..4 {
            let chosen = select_from(&targets, Algorithm::RoundRobin, &cursor, Some(&targets[0]));
            assert_eq!(chosen.unwrap().id, "t1");
        }
        let only = &targets[..1];
        assert!(select_from(only, Algorithm::RoundRobin, &cursor, Some(&targets[0])).is_none());
        assert!(select_from(&[], Algorithm::RoundRobin, &cursor, None).is_none());
    }
}
