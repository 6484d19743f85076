//! Drives one connection: a loop that feeds the session state machine with frames from
//! the peer and messages from its control inbox (and resumes work the session waits
//! for), and a writer task that drains the session's outbox in batches (many frames, one
//! flush), sends keep-alive pings and detects dead peers.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::oneshot;
use tokio_util::sync::CancellationToken;

use super::admission::Admission;
use super::frames::{CloseReason, ConnInfo, FrameReader, FrameWriter, Inbound, TransportError};
use super::outbox::Outbox;
use super::control::ControlInbox;
use super::session::{Flow, Session, Waiting};
use super::Router;

/// Frames written per flush at most.
const BATCH: usize = 128;
/// Bytes taken per batch at most (unless one frame is larger): what a writer holds
/// beyond its outbox.
const BATCH_BYTES: usize = 256 * 1024;
/// How often a lagging subscription that could not be refilled is tried again.
const LAG_RETRY: Duration = Duration::from_millis(200);
/// How long a closing session waits for the peer's GOODBYE reply.
const GOODBYE_WAIT: Duration = Duration::from_secs(2);

/// Serves one connection until it ends. `admission` holds its place among the
/// connections; it is marked established when the session is.
pub async fn serve<R: FrameReader, W: FrameWriter>(
    router: Arc<Router>,
    admission: Admission,
    conn: ConnInfo,
    mut reader: R,
    writer: W,
) {
    let outbox = Arc::new(Outbox::new(router.outbox_limits(), router.budget.clone()));
    let kill = CancellationToken::new();
    let started = Instant::now();
    let last_seen = Arc::new(AtomicU64::new(0));
    let (close_tx, close_rx) = oneshot::channel();
    let mut writer_task = tokio::spawn(write_loop(
        writer,
        outbox.clone(),
        kill.clone(),
        last_seen.clone(),
        started,
        (router.limits.ping_interval, router.limits.write_timeout),
        close_rx,
    ));

    let inbox = Arc::new(ControlInbox::new());
    let mut session = Session::new(router.clone(), conn, outbox.clone(), kill.clone(), inbox.clone());
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
    let evicted = admission.evicted().clone();
    let evicted = evicted.cancelled();
    tokio::pin!(evicted);
    let mut established = false;
    let mut shutting_down = false;
    let mut close_reason = CloseReason::Normal;
    // Work the session waits for (an authorization being decided); while it waits, no
    // frame is read, so the peer's messages stay in order.
    let mut waiting: Option<Waiting> = None;
    loop {
        let flow = tokio::select! {
            inbound = reader.next(), if waiting.is_none() => {
                last_seen.store(started.elapsed().as_millis() as u64, Ordering::Relaxed);
                match inbound {
                    None => break,
                    Some(Ok(Inbound::Message(frame))) => session.handle_frame(frame),
                    Some(Ok(Inbound::Ping(payload))) => {
                        // Dropped like an event when the peer does not read its PONGs.
                        let _ = outbox.push_pong(payload);
                        Flow::Continue
                    }
                    Some(Ok(Inbound::Alive)) => Flow::Continue,
                    Some(Err(e)) => {
                        close_reason = transport_error(&router, &mut session, e).unwrap_or_default();
                        break;
                    }
                }
            }
            rest = async { waiting.as_mut().expect("polled only while waiting").await }, if waiting.is_some() => {
                waiting = None;
                session.resume(rest)
            }
            control = inbox.recv() => session.control(control, waiting.is_some()),
            _ = &mut hello_deadline, if !established => {
                session.hello_timeout();
                break;
            }
            _ = &mut evicted, if !established => {
                session.evicted();
                break;
            }
            _ = &mut shutdown_signal, if !shutting_down => {
                shutting_down = true;
                session.system_shutdown()
            }
            _ = &mut goodbye_deadline => break,
            _ = &mut killed => break,
        };
        if !established && session.is_established() {
            established = true;
            admission.establish();
        }
        match flow {
            Flow::Continue => {}
            Flow::Wait(w) => waiting = Some(w),
            Flow::Closing => {
                // What the session waited for no longer matters: it has left.
                waiting = None;
                goodbye_deadline.as_mut().reset(tokio::time::Instant::now() + GOODBYE_WAIT);
            }
            Flow::Close => break,
        }
    }
    session.leave();
    let _ = close_tx.send(close_reason);
    outbox.close();
    // The writer delivers what is queued (an ABORT or GOODBYE) and closes; a writer that
    // cannot finish within the write timeout, or by the end of a shutdown's grace, is
    // abandoned.
    let limit = router.limits.write_timeout + Duration::from_millis(100);
    tokio::select! {
        _ = tokio::time::timeout(limit, &mut writer_task) => {}
        _ = router.force_close.cancelled() => {}
    }
    kill.cancel();
    drop(admission);
}

/// What the session is told of a transport error; returns how to close (None: the
/// connection is gone).
fn transport_error(router: &Router, session: &mut Session, e: TransportError) -> Option<CloseReason> {
    let reason = e.close_reason();
    match e {
        TransportError::TooLarge { size, limit } => {
            router.metrics.oversized_messages.inc();
            session.too_large(size, limit);
        }
        TransportError::Incomplete(after) => {
            router.metrics.incomplete_messages.inc();
            session.incomplete(after);
        }
        TransportError::Protocol(ref m) | TransportError::InvalidData(ref m) => {
            router.metrics.protocol_violations.inc();
            tracing::info!(session = %session.id(), "transport protocol violation: {m}");
        }
        TransportError::Io(e) => tracing::debug!(session = %session.id(), error = %e, "transport error"),
    }
    reason
}

async fn write_loop<W: FrameWriter>(
    mut writer: W,
    outbox: Arc<Outbox>,
    kill: CancellationToken,
    last_seen: Arc<AtomicU64>,
    started: Instant,
    (ping_interval, write_timeout): (Duration, Duration),
    close_reason: oneshot::Receiver<CloseReason>,
) {
    let mut batch = Vec::with_capacity(BATCH);
    let pinging = !ping_interval.is_zero();
    let mut ticker = tokio::time::interval(if pinging { ping_interval } else { Duration::from_secs(3600) });
    ticker.tick().await;
    // A lagging subscription whose round could not go on (an event's permission not
    // decidable now, the memory budget spent) is retried on this tick.
    let mut lag_tick = tokio::time::interval(LAG_RETRY);
    lag_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let killed = kill.cancelled();
    tokio::pin!(killed);
    loop {
        tokio::select! {
            more = outbox.next_batch(&mut batch, BATCH, BATCH_BYTES) => {
                if !more {
                    break;
                }
                // `send` drains the batch, on error too. A kill (the session was closed for
                // overflowing its queue, say) interrupts a write the peer is not reading.
                let sent = tokio::select! {
                    sent = tokio::time::timeout(write_timeout, writer.send(&mut batch)) => sent,
                    _ = &mut killed => return,
                };
                outbox.written();
                outbox.refill();
                match sent {
                    Ok(Ok(())) => {
                        // The socket took the batch: the peer is reading, if slowly. A
                        // reader far behind gets our PING late and answers late; it is
                        // alive all the same (a dead one stops taking writes and meets
                        // the write timeout).
                        last_seen.store(started.elapsed().as_millis() as u64, Ordering::Relaxed);
                    }
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
                // Checked at each tick: a peer silent since just after one tick is closed at
                // the second tick after it, not at a coin toss between the second and the
                // third (its silence is a hair under or over two intervals then).
                let idle = started.elapsed().as_millis() as u64 - last_seen.load(Ordering::Relaxed);
                if idle > 3 * ping_interval.as_millis() as u64 / 2 {
                    tracing::info!("peer silent for {idle} ms: closing the connection");
                    kill.cancel();
                    return;
                }
                if !matches!(tokio::time::timeout(write_timeout, writer.ping()).await, Ok(Ok(()))) {
                    kill.cancel();
                    return;
                }
            }
            _ = lag_tick.tick(), if outbox.is_lagging() => outbox.refill(),
            _ = &mut killed => return,
        }
    }
    let reason = close_reason.await.unwrap_or_default();
    let _ = tokio::time::timeout(write_timeout, writer.close(reason)).await;
}
