//! Byte splicing between two connections (TCP listeners, upgraded HTTP connections),
//! ended when either side closes or when nothing moves either way for the idle
//! timeout, so a silent peer never holds a connection and a target's outstanding
//! count forever.

use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::Instant;

/// Copies both ways until one side closes (then finishes the other direction as
/// `copy_bidirectional` does), or fails with `TimedOut` after `idle_timeout` without a
/// byte read from either side.
pub(crate) async fn copy_bidirectional_with_idle_timeout<A, B>(
    a: &mut A,
    b: &mut B,
    idle_timeout: Duration,
) -> io::Result<()>
where
    A: AsyncRead + AsyncWrite + Unpin + ?Sized,
    B: AsyncRead + AsyncWrite + Unpin + ?Sized,
{
    let clock = Arc::new(Activity {
        started: Instant::now(),
        last_read_millis: AtomicU64::new(0),
    });
    let mut a = Tracked {
        inner: a,
        clock: clock.clone(),
    };
    let mut b = Tracked {
        inner: b,
        clock: clock.clone(),
    };
    let copy = tokio::io::copy_bidirectional(&mut a, &mut b);
    tokio::pin!(copy);
    let idle = tokio::time::sleep_until(clock.deadline(idle_timeout));
    tokio::pin!(idle);
    loop {
        tokio::select! {
            result = copy.as_mut() => return result.map(|_| ()),
            _ = idle.as_mut() => {
                let deadline = clock.deadline(idle_timeout);
                if deadline <= Instant::now() {
                    return Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        format!("nothing moved for {idle_timeout:?}"),
                    ));
                }
                idle.as_mut().reset(deadline);
            }
        }
    }
}

struct Activity {
    started: Instant,
    last_read_millis: AtomicU64,
}

impl Activity {
    fn deadline(&self, idle_timeout: Duration) -> Instant {
        self.started
            + Duration::from_millis(self.last_read_millis.load(Ordering::Relaxed))
            + idle_timeout
    }
}

/// One side of the splice, noting every read that brings bytes.
struct Tracked<'a, T: ?Sized> {
    inner: &'a mut T,
    clock: Arc<Activity>,
}

impl<T: AsyncRead + Unpin + ?Sized> AsyncRead for Tracked<'_, T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        context: &mut Context<'_>,
        buffer: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buffer.filled().len();
        let result = Pin::new(&mut *self.inner).poll_read(context, buffer);
        if buffer.filled().len() > before {
            let now = self.clock.started.elapsed().as_millis() as u64;
            self.clock.last_read_millis.store(now, Ordering::Relaxed);
        }
        result
    }
}

impl<T: AsyncWrite + Unpin + ?Sized> AsyncWrite for Tracked<'_, T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        context: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut *self.inner).poll_write(context, data)
    }

    fn poll_flush(mut self: Pin<&mut Self>, context: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut *self.inner).poll_flush(context)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, context: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut *self.inner).poll_shutdown(context)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[tokio::test(start_paused = true)]
    async fn a_silent_pair_is_cut_after_the_idle_timeout_and_traffic_keeps_it_alive() {
        let (mut client, mut client_side) = tokio::io::duplex(1024);
        let (mut upstream_side, mut upstream) = tokio::io::duplex(1024);
        let splice = tokio::spawn(async move {
            copy_bidirectional_with_idle_timeout(
                &mut client_side,
                &mut upstream_side,
                Duration::from_secs(10),
            )
            .await
        });
        // Bytes every 6 s keep it going past the 10 s idle timeout...
        for _ in 0..3 {
            tokio::time::sleep(Duration::from_secs(6)).await;
            client.write_all(b"ping").await.unwrap();
            let mut buffer = [0u8; 4];
            upstream.read_exact(&mut buffer).await.unwrap();
            assert_eq!(&buffer, b"ping");
        }
        assert!(!splice.is_finished());
        // ...then 10 s of silence ends it.
        tokio::time::sleep(Duration::from_secs(11)).await;
        let result = splice.await.unwrap();
        assert_eq!(result.unwrap_err().kind(), io::ErrorKind::TimedOut);
    }
}
