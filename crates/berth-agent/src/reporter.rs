//! Sends task reports to the control plane: batches what happens together and retries
//! until the control plane has it, so no report (above all no STOPPED) is lost.

use std::sync::Arc;
use std::time::Duration;

use berth_core::TaskReport;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use berth_proto::{ControlPlaneLink, LinkError};

const FIRST_RETRY: Duration = Duration::from_millis(50);
const LAST_RETRY: Duration = Duration::from_secs(5);

#[derive(Clone)]
pub(crate) struct Reporter {
    sender: mpsc::UnboundedSender<TaskReport>,
}

impl Reporter {
    /// Starts the sender; it ends once every `Reporter` is dropped and all is sent.
    pub(crate) fn spawn(link: Arc<dyn ControlPlaneLink>) -> (Reporter, JoinHandle<()>) {
        let (sender, receiver) = mpsc::unbounded_channel();
        (
            Reporter { sender },
            tokio::spawn(send_reports(link, receiver)),
        )
    }

    pub(crate) fn send(&self, report: TaskReport) {
        if self.sender.send(report).is_err() {
            tracing::error!("task report dropped: the reporter has stopped");
        }
    }
}

async fn send_reports(
    link: Arc<dyn ControlPlaneLink>,
    mut receiver: mpsc::UnboundedReceiver<TaskReport>,
) {
    let mut batch: Vec<TaskReport> = Vec::new();
    let mut retry = FIRST_RETRY;
    loop {
        if batch.is_empty() {
            match receiver.recv().await {
                Some(report) => batch.push(report),
                None => return,
            }
        }
        // Whatever else is already queued goes in the same call.
        while let Ok(report) = receiver.try_recv() {
            batch.push(report);
        }
        match link.report(batch.clone()).await {
            Ok(()) => {
                batch.clear();
                retry = FIRST_RETRY;
            }
            // Refused is final: sending it again cannot help, and it must not hold up
            // every report after it. One by one, the refused ones are dropped (said
            // loudly) and the others go through.
            Err(LinkError::Refused(reason)) => {
                for report in std::mem::take(&mut batch) {
                    match link.report(vec![report.clone()]).await {
                        Ok(()) => {}
                        Err(LinkError::Refused(why)) => tracing::error!(
                            task = %report.task_id,
                            reason = %why,
                            "the control plane refused this task's report; it is dropped"
                        ),
                        // Unreachable again: keep it for the next attempt.
                        Err(LinkError::Unavailable(_)) => batch.push(report),
                    }
                }
                if !batch.is_empty() {
                    tracing::warn!(%reason, reports = batch.len(), "reporting task state failed; retrying");
                    tokio::time::sleep(retry).await;
                    retry = (retry * 2).min(LAST_RETRY);
                }
            }
            Err(error) => {
                tracing::warn!(%error, reports = batch.len(), "reporting task state failed; retrying");
                tokio::time::sleep(retry).await;
                retry = (retry * 2).min(LAST_RETRY);
            }
        }
    }
}
