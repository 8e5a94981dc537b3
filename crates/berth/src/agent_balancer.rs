//! `berth agent --load-balancer`: this machine also serves every listener of the
//! cluster's load balancer, so the address users are given need not be one machine's.
//!
//! The server's own balancer runs the health checks; this one is told the listeners and
//! the targets those checks pass (`berth_server::balancer_config`, a long-poll on the
//! agent listener) and routes to them, so every machine serving a listener routes by the
//! same verdicts. While the server cannot be reached it keeps serving what it was last
//! told; a target that stops answering is still taken out by its passive failures.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use berth_lb::LoadBalancer;
use berth_proto::LinkError;

use berth_remote_link::RemoteLink;

/// How long one ask for the config may be held by the server.
const LONG_POLL: Duration = Duration::from_secs(55);
/// The pause after a failed ask, or before retrying a listener that could not bind.
const RETRY: Duration = Duration::from_secs(2);

/// Serves the cluster's listeners on `bind_ip` until `shutdown`.
pub async fn run(
    link: Arc<RemoteLink>,
    balancer: LoadBalancer,
    bind_ip: IpAddr,
    shutdown: impl std::future::Future<Output = ()>,
) {
    tokio::pin!(shutdown);
    let mut have: Option<String> = None;
    let mut applied = None;
    let mut failing: Option<String> = None;
    let mut apply_error: Option<String> = None;
    loop {
        let asked = tokio::select! {
            _ = &mut shutdown => break,
            asked = link.balancer_config(have.as_deref(), LONG_POLL) => asked,
        };
        let config = match asked {
            Ok(config) => {
                if failing.take().is_some() {
                    tracing::info!("the load balancer's config reaches this agent again");
                }
                config
            }
            Err(error) => {
                let text = error.to_string();
                if failing.as_ref() != Some(&text) {
                    match error {
                        LinkError::Refused(_) => {
                            tracing::error!(%error, "the server refused this agent the load balancer's config; serving what it had")
                        }
                        LinkError::Unavailable(_) => {
                            tracing::warn!(%error, "cannot reach the server for the load balancer's config; serving what it had and retrying")
                        }
                    }
                    failing = Some(text);
                }
                if pause(&mut shutdown).await {
                    break;
                }
                continue;
            }
        };
        let wanted = berth_server::edge_lb_config(&config, bind_ip);
        if applied.as_ref() == Some(&wanted) {
            have = Some(config.version);
            continue;
        }
        match balancer.apply(wanted.clone()).await {
            Ok(()) => {
                if apply_error.take().is_some() {
                    tracing::info!("every listener of the load balancer serves on this machine");
                }
                tracing::debug!(
                    listeners = wanted.listeners.len(),
                    version = %config.version,
                    "serving the load balancer's listeners"
                );
                applied = Some(wanted);
                have = Some(config.version);
            }
            // A listener whose port is taken is left out and everything else serves;
            // ask again (at once, not waiting for a change) after a pause.
            Err(error) => {
                let text = error.to_string();
                if apply_error.as_ref() != Some(&text) {
                    tracing::error!(%error, "the load balancer could not serve all of its listeners on this machine");
                    apply_error = Some(text);
                }
                have = None;
                // What runs is neither the old config nor this one: apply again even
                // if the server goes back to the old one.
                applied = None;
                if pause(&mut shutdown).await {
                    break;
                }
            }
        }
    }
    balancer.shutdown().await;
}

/// Waits `RETRY`; true when `shutdown` came first.
async fn pause(shutdown: &mut std::pin::Pin<&mut impl std::future::Future<Output = ()>>) -> bool {
    tokio::select! {
        _ = shutdown.as_mut() => true,
        _ = tokio::time::sleep(RETRY) => false,
    }
}
