//! The layer 4 listener: each client connection is spliced to one healthy target.
//! A target that refuses the connection counts a passive failure, and the connection
//! tries one other target (nothing was sent yet, so this is always safe). With
//! source-address stickiness a client's connections go to the target its address hashes
//! to while that target is healthy.

use std::sync::Arc;

use tokio::net::TcpStream;

use crate::error::ProxyError;
use crate::listener::ListenerContext;
use crate::splice::copy_bidirectional_with_idle_timeout;
use crate::upstream::{Lease, Target};

pub(crate) async fn serve(mut client: TcpStream, context: Arc<ListenerContext>) {
    let routing = context.route.load_full();
    let Some(group) = &routing.only_group else {
        tracing::debug!("tcp listener with no single target group");
        return;
    };
    let settings = group.settings();
    let algorithm = settings.algorithm;
    // Only source-address stickiness means anything to a TCP connection.
    let stuck = match client.peer_addr() {
        Ok(peer) => group.select_sticky(&settings.stickiness, None, peer.ip()),
        Err(_) => None,
    };
    let Some(first) = stuck.or_else(|| group.select(algorithm, None)) else {
        tracing::debug!(target_group = %group.id, "no healthy target for tcp connection");
        return;
    };
    let (mut upstream, _lease) = match connect(&first, &context).await {
        Ok(connected) => connected,
        Err(error) => {
            tracing::debug!(target_id = %first.id, %error, "tcp connect failed");
            if error.counts_against_target() {
                group.record_passive_failure(&first);
            }
            let Some(second) = group.select(algorithm, Some(&first)) else {
                return;
            };
            match connect(&second, &context).await {
                Ok(connected) => connected,
                Err(error) => {
                    if error.counts_against_target() {
                        group.record_passive_failure(&second);
                    }
                    return;
                }
            }
        }
    };
    let idle_timeout = context.idle_timeout();
    if let Err(error) =
        copy_bidirectional_with_idle_timeout(&mut client, &mut upstream, idle_timeout).await
    {
        tracing::debug!(%error, "tcp proxy connection ended with an error");
    }
}

async fn connect(
    target: &Arc<Target>,
    context: &ListenerContext,
) -> Result<(TcpStream, Lease), ProxyError> {
    let lease = Lease::new(target.clone(), context.limits.idle_timeout);
    let timeout = context.limits.upstream_connect_timeout;
    match tokio::time::timeout(timeout, TcpStream::connect(target.addr)).await {
        Ok(Ok(stream)) => {
            let _ = stream.set_nodelay(true);
            target.clear_passive_failures();
            Ok((stream, lease))
        }
        Ok(Err(error)) => Err(ProxyError::from_connect(&error)),
        Err(_) => Err(ProxyError::from_connect(&std::io::Error::from(
            std::io::ErrorKind::TimedOut,
        ))),
    }
}
