//! Whether the balancer serves each listener, and why not when it does not: the config
//! loop writes it after every `apply`, the ELBv2 API reads it (to answer CreateListener
//! and ModifyListener only once the port is bound, and to show it in DescribeListeners).
//! Runtime truth, not desired state: it lives beside the store, never in it.

use std::collections::HashMap;
use std::time::Duration;

use berth_lb::ListenerStatus;
use tokio::sync::watch;

/// How long CreateListener and ModifyListener wait for the balancer to bind.
pub(crate) const BIND_ANSWER_WAIT: Duration = Duration::from_secs(3);

/// The balancer's last word on its listeners.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ServingReport {
    /// The store revision the applied config was read at (or after).
    pub revision: u64,
    /// By listener id; a listener absent here is not (yet) configured in the balancer.
    pub listeners: HashMap<String, ListenerStatus>,
}

/// The shared handle; empty until a balancer runs beside this control plane.
pub struct ListenerServing {
    report: watch::Sender<Option<ServingReport>>,
}

impl Default for ListenerServing {
    fn default() -> Self {
        ListenerServing {
            report: watch::channel(None).0,
        }
    }
}

impl ListenerServing {
    /// Written by the load balancer's config loop.
    pub(crate) fn publish(&self, report: ServingReport) {
        self.report.send_if_modified(|current| {
            let changed = current.as_ref() != Some(&report);
            if changed {
                *current = Some(report);
            }
            changed
        });
    }

    /// A listener's status as the balancer last reported it; `None` when no balancer
    /// runs here or it does not know the listener (yet).
    pub fn status(&self, listener_id: &str) -> Option<ListenerStatus> {
        self.report
            .borrow()
            .as_ref()
            .and_then(|report| report.listeners.get(listener_id).cloned())
    }

    /// The listener's status once the balancer has applied the store at `revision` or
    /// later, waiting at most `within`; `None` when no balancer runs here or it gave no
    /// answer in time.
    pub async fn status_after(
        &self,
        revision: u64,
        listener_id: &str,
        within: Duration,
    ) -> Option<ListenerStatus> {
        let mut report = self.report.subscribe();
        report.borrow().as_ref()?;
        let answered = async {
            let report = report
                .wait_for(|report| {
                    report
                        .as_ref()
                        .is_some_and(|report| report.revision >= revision)
                })
                .await
                .ok()?;
            report
                .as_ref()
                .and_then(|report| report.listeners.get(listener_id).cloned())
        };
        tokio::time::timeout(within, answered).await.ok().flatten()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use berth_lb::BindFailure;

    fn not_serving() -> ListenerStatus {
        ListenerStatus::NotServing {
            failure: BindFailure {
                addr: "0.0.0.0:8300".parse().unwrap(),
                reason: "Address already in use".to_string(),
            },
            still_serving_at: None,
        }
    }

    #[tokio::test(start_paused = true)]
    async fn without_a_balancer_there_is_no_answer_and_no_wait() {
        let serving = ListenerServing::default();
        let started = tokio::time::Instant::now();
        assert_eq!(serving.status_after(1, "l", BIND_ANSWER_WAIT).await, None);
        assert_eq!(started.elapsed(), Duration::ZERO);
    }

    #[tokio::test(start_paused = true)]
    async fn the_answer_is_the_first_report_at_or_after_the_revision() {
        let serving = std::sync::Arc::new(ListenerServing::default());
        serving.publish(ServingReport {
            revision: 4,
            listeners: HashMap::new(),
        });
        let waiter = {
            let serving = serving.clone();
            tokio::spawn(async move { serving.status_after(5, "l", BIND_ANSWER_WAIT).await })
        };
        tokio::task::yield_now().await;
        serving.publish(ServingReport {
            revision: 5,
            listeners: HashMap::from([("l".to_string(), not_serving())]),
        });
        assert_eq!(waiter.await.unwrap(), Some(not_serving()));
        assert_eq!(serving.status("l"), Some(not_serving()));
    }

    #[tokio::test(start_paused = true)]
    async fn a_balancer_that_does_not_answer_in_time_gives_none() {
        let serving = ListenerServing::default();
        serving.publish(ServingReport {
            revision: 1,
            listeners: HashMap::from([("l".to_string(), not_serving())]),
        });
        // An old report does not answer for a newer write.
        assert_eq!(serving.status_after(2, "l", BIND_ANSWER_WAIT).await, None);
    }
}
