//! Drives one connection: a reader loop that feeds frames to the session state machine,
//! and a writer task that drains the session's outbox in batches (many frames, one
//! flush), sends keep-alive pings and detects dead peers.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

use super::outbox::{Outbox, Outgoing};
use super::session::{ConnInfo, Flow, Session};
use super::{Admission, Router};
use crate::transport::{FrameReader, FrameWriter, Inbound, TransportError};

/// Frames written per flush at most.
const BATCH: usize = 128;
/// How long a closing session waits for the peer's GOODBYE reply.
const GOODBYE_WAIT: Duration = Duration::from_secs(2);

/// Serves one connection until it ends. `admission` holds its place in `max_sessions`.
pub async fn serve<R: FrameReader, W: FrameWriter>(
    router: Arc<Router>,
    admission: Admission,
    conn: ConnInfo,
    mut reader: R,
    writer: W,
) {
    let outbox = Arc::new(Outbox::new(router.outbox_limits()));
    let kill = CancellationToken::new();
    let started = Instant::now();
    let last_seen = Arc::new(AtomicU64::new(0));
    let writer_task = tokio::spawn(write_loop(
        writer,
        outbox.clone(),
        kill.clone(),
        last_seen.clone(),
        started,
        router.limits.ping_interval,
        router.limits.write_timeout,
    ));

    let mut session = Session::new(router.clone(), conn, outbox.clone(), kill.clone());
    let hello_deadline = tokio::time::sleep(router.limits.hello_timeout);
    tokio::pin!(hello_deadline);
    let goodbye_deadline = tokio::time::sleep(Duration::MAX / 4);
    tokio::pin!(goodbye_deadline);
    // Created once: a fresh `cancelled()` future per loop turn would lock the token's
    // tree on every message.
    let shutdown_signal = router.shutdown.cancelled();
    tokio::pin!(shutdown_signal);
    let killed = kill.cancelled();
    tokio::pin!(killed);
    let mut shutting_down = false;
    loop {
        tokio::select! {
            inbound = reader.next() => {
                last_seen.store(started.elapsed().as_millis() as u64, Ordering::Relaxed);
                match inbound {
                    None => break,
                    Some(Ok(Inbound::Message(frame))) => {
                        if session.handle_frame(frame) == Flow::Close {
                            break;
                        }
                    }
                    Some(Ok(Inbound::Ping(payload))) => {
                        let _ = outbox.push(Outgoing::Pong(payload));
                    }
                    Some(Ok(Inbound::Alive)) => {}
                    Some(Err(TransportError::TooLarge { size, limit })) => {
                        router.metrics.oversized_messages.inc();
                        session.too_large(size, limit);
                        break;
                    }
                    Some(Err(e)) => {
                        tracing::debug!(session = %session.id(), error = %e, "transport error");
                        break;
                    }
                }
            }
            _ = &mut hello_deadline, if !session.is_established() => {
                session.hello_timeout();
                break;
            }
            _ = &mut shutdown_signal, if !shutting_down => {
                shutting_down = true;
                if !session.system_shutdown() {
                    break;
                }
                goodbye_deadline.as_mut().reset(tokio::time::Instant::now() + GOODBYE_WAIT);
            }
            _ = &mut goodbye_deadline => break,
            _ = &mut killed => break,
        }
    }
    session.leave();
    outbox.close();
    // The writer delivers what is queued (an ABORT or GOODBYE) and closes; a writer that
    // cannot finish within the write timeout is abandoned.
    let limit = router.limits.write_timeout + Duration::from_millis(100);
    if tokio::time::timeout(limit, writer_task).await.is_err() {
        kill.cancel();
    }
    drop(admission);
}

async fn write_loop<W: FrameWriter>(
    mut writer: W,
    outbox: Arc<Outbox>,
    kill: CancellationToken,
    last_seen: Arc<AtomicU64>,
    started: Instant,
    ping_interval: Duration,
    write_timeout: Duration,
) {
    let mut batch = Vec::with_capacity(BATCH);
    let pinging = !ping_interval.is_zero();
    let mut ticker = tokio::time::interval(if pinging { ping_interval } else { Duration::from_secs(3600) });
    ticker.tick().await;
    let killed = kill.cancelled();
    tokio::pin!(killed);
    loop {
        tokio::select! {
            more = outbox.next_batch(&mut batch, BATCH) => {
                if !more {
                    break;
                }
                // `send` drains the batch, on error too.
                let sent = tokio::time::timeout(write_timeout, writer.send(&mut batch)).await;
                match sent {
                    Ok(Ok(())) => {}
                    Ok(Err(e)) => {
                        tracing::debug!(error = %e, "write failed");
                        kill.cancel();
                        return;
                    }
                    Err(_) => {
                        tracing::warn!("peer did not read for {write_timeout:?}: closing the connection");
                        kill.cancel();
                        return;
                    }
                }
            }
            _ = ticker.tick(), if pinging => {
                let idle = started.elapsed().as_millis() as u64 - last_seen.load(Ordering::Relaxed);
                if idle > 2 * ping_interval.as_millis() as u64 {
                    tracing::info!("peer silent for {idle} ms: closing the connection");
                    kill.cancel();
                    return;
                }
                if !matches!(tokio::time::timeout(write_timeout, writer.ping()).await, Ok(Ok(()))) {
                    kill.cancel();
                    return;
                }
            }
            _ = &mut killed => return,
        }
    }
    writer.close().await;
}
