//! The writer task: it takes the oldest queued batch, inserts its events (and the rows
//! of topics seen for the first time) with one statement (one round trip, its own transaction), then
//! resolves the batch's commits and gives its places in the queue back.
//!
//! While a batch is in flight the next one fills up, so under load batches grow
//! toward `batch` by themselves and an idle store commits each event at once: group
//! commit without a timer.

use std::io;
use std::ops::Range;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use sqlx::postgres::{PgConnectOptions, PgConnection};
use sqlx::Connection;

use super::{Shared, CONNECT_TIMEOUT};
use crate::replay::{ReplayError, StoredEvent};
use crate::wamp::{Dict, Serializer};

/// Column arrays in, rows out: `unnest` turns the arrays back into rows, so a batch of
/// any size is one statement with eleven parameters. A topic's first batch also gives
/// it its row in `replay_topics` (what `load` and `prune` enumerate); later batches
/// leave that row alone: its head is only a floor, raised by `prune` before it deletes
/// rows, and the topic's newest event holds the rest (`read.rs`). Updating the row for
/// every batch was a row version per topic per batch, the largest part of the
/// database's work when a batch spans a thousand topics.
const INSERT: &str = r#"
with written as (
    insert into replay_events
        (realm, topic, pos, seq, publication, published_at, publisher, serializer, args, kwargs, retain)
    select $1, t.*
    from unnest($2::text[], $3::int8[], $4::int8[], $5::int8[], $6::int8[], $7::bytea[], $8::int2[],
                $9::bytea[], $10::bytea[], $11::bool[]) as t
    returning topic, pos, seq
)
insert into replay_topics (realm, topic, head, last_seq)
select $1, topic, max(pos), max(seq) from written group by topic
on conflict (realm, topic) do nothing
"#;

pub(super) async fn connect(options: &PgConnectOptions) -> Result<PgConnection, ReplayError> {
    match tokio::time::timeout(CONNECT_TIMEOUT, PgConnection::connect_with(options)).await {
        Ok(conn) => Ok(conn?),
        Err(_) => Err(ReplayError::Unavailable(Arc::new(sqlx::Error::Io(io::Error::new(
            io::ErrorKind::TimedOut,
            "connecting to the replay database timed out",
        ))))),
    }
}

enum Next {
    Batch(super::Batch),
    Sleep,
    Stop,
}

pub(super) async fn run(shared: Arc<Shared>, options: PgConnectOptions, conn: PgConnection) {
    let _stopped = Stopped(shared.clone());
    let mut conn = Some(conn);
    loop {
        // The lock is released before any await.
        let next = {
            let mut queue = shared.queue();
            match queue.batches.pop_front() {
                Some(batch) => Next::Batch(batch),
                None if queue.closing => Next::Stop,
                None => Next::Sleep,
            }
        };
        let batch = match next {
            Next::Batch(batch) => batch,
            Next::Sleep => {
                shared.wake.notified().await;
                continue;
            }
            Next::Stop => break,
        };
        let n = batch.events.len();
        let result = commit(&mut conn, &options, &shared.realm, &batch.events).await;
        let count = u64::try_from(n).unwrap_or(u64::MAX);
        match &result {
            Ok(()) => {
                shared.rows_committed.fetch_add(count, Ordering::Relaxed);
                shared.batches_committed.fetch_add(1, Ordering::Relaxed);
            }
            Err(e) => {
                tracing::warn!(realm = %shared.realm, events = n, error = %e, uri = e.uri(), "replay: a batch was not committed");
                shared.commit_failures.fetch_add(1, Ordering::Relaxed);
                shared.rows_failed.fetch_add(count, Ordering::Relaxed);
                if e.is_unavailable() {
                    // Reconnect for the next batch rather than reuse a connection
                    // that may be dead.
                    conn = None;
                }
            }
        }
        shared.queued.fetch_sub(n, Ordering::Relaxed);
        shared.room.add_permits(n);
        batch.done.finish(result);
    }
    if let Some(conn) = conn {
        let _ = conn.close().await;
    }
}

/// However the writer ends (the last `Durable` dropped, a panic, the runtime shutting
/// down and dropping the task), batches still queued fail with `WriterStopped`, later
/// writes fail at once, and `reserve` stops waiting.
struct Stopped(Arc<Shared>);

impl Drop for Stopped {
    fn drop(&mut self) {
        let orphans = {
            let mut queue = self.0.queue();
            queue.stopped = true;
            std::mem::take(&mut queue.batches)
        };
        for batch in orphans {
            batch.done.finish(Err(ReplayError::WriterStopped));
        }
        self.0.room.close();
    }
}

async fn commit(
    conn: &mut Option<PgConnection>,
    options: &PgConnectOptions,
    realm: &str,
    events: &[Arc<StoredEvent>],
) -> Result<(), ReplayError> {
    let encoded = Encoded::new(events)?;
    let c = encoded.columns(events);
    let live = match conn {
        Some(live) => live,
        None => conn.insert(connect(options).await?),
    };
    sqlx::query(INSERT)
        .bind(realm)
        .bind(&c.topic)
        .bind(c.pos)
        .bind(c.seq)
        .bind(c.publication)
        .bind(&c.published_at)
        .bind(&c.publisher)
        .bind(c.serializer)
        .bind(&c.args)
        .bind(&c.kwargs)
        .bind(&c.retain)
        .execute(live)
        .await?;
    Ok(())
}

/// The bytes a batch needs that its events do not hold as such: publisher dicts in
/// MessagePack and, rarely, kwargs transcoded to the args' serializer; all in one
/// buffer, so a batch costs a few allocations whatever its size.
struct Encoded {
    buf: Vec<u8>,
    publisher: Vec<Range<usize>>,
    kwargs: Vec<Option<Range<usize>>>,
    pos: Vec<i64>,
    seq: Vec<i64>,
    publication: Vec<i64>,
    serializer: Vec<i16>,
}

/// One statement's parameters, borrowing from the events and `Encoded`.
struct Columns<'a> {
    topic: Vec<&'a str>,
    pos: &'a [i64],
    seq: &'a [i64],
    publication: &'a [i64],
    published_at: Vec<i64>,
    publisher: Vec<&'a [u8]>,
    serializer: &'a [i16],
    args: Vec<Option<&'a [u8]>>,
    kwargs: Vec<Option<&'a [u8]>>,
    retain: Vec<bool>,
}

impl Encoded {
    fn new(events: &[Arc<StoredEvent>]) -> Result<Encoded, ReplayError> {
        let n = events.len();
        let mut e = Encoded {
            buf: Vec::with_capacity(n * 8),
            publisher: Vec::with_capacity(n),
            kwargs: Vec::with_capacity(n),
            pos: Vec::with_capacity(n),
            seq: Vec::with_capacity(n),
            publication: Vec::with_capacity(n),
            serializer: Vec::with_capacity(n),
        };
        let mut last_publisher: Option<(&Arc<Dict>, Range<usize>)> = None;
        for ev in events {
            e.pos.push(bigint("position", ev.pos.0)?);
            e.seq.push(bigint("seq", ev.seq.0)?);
            e.publication.push(bigint("publication id", ev.publication.0)?);
            // Consecutive events of one publisher share their details' Arc: encode once.
            let range = match &last_publisher {
                Some((dict, range)) if Arc::ptr_eq(dict, &ev.publisher) => range.clone(),
                _ => {
                    let start = e.buf.len();
                    encode_dict(&ev.publisher, &mut e.buf);
                    start..e.buf.len()
                }
            };
            last_publisher = Some((&ev.publisher, range.clone()));
            e.publisher.push(range);
            let serializer = payload_serializer(ev);
            e.serializer.push(i16::from(serializer.rawsocket_id()));
            let kwargs = match &ev.payload.kwargs {
                Some(kw) if kw.serializer() != serializer => {
                    let start = e.buf.len();
                    kw.write_to(serializer, &mut e.buf).map_err(|err| ReplayError::Malformed {
                        topic: ev.topic.to_string(),
                        pos: e.pos.last().copied().unwrap_or_default(),
                        what: format!("kwargs cannot be transcoded to the args' serializer: {err}"),
                    })?;
                    Some(start..e.buf.len())
                }
                _ => None,
            };
            e.kwargs.push(kwargs);
        }
        Ok(e)
    }

    fn columns<'a>(&'a self, events: &'a [Arc<StoredEvent>]) -> Columns<'a> {
        Columns {
            topic: events.iter().map(|e| &*e.topic).collect(),
            pos: &self.pos,
            seq: &self.seq,
            publication: &self.publication,
            published_at: events.iter().map(|e| e.micros()).collect(),
            publisher: self.publisher.iter().map(|r| &self.buf[r.clone()]).collect(),
            serializer: &self.serializer,
            args: events.iter().map(|e| e.payload.args.as_ref().map(|p| &p.bytes()[..])).collect(),
            kwargs: events
                .iter()
                .zip(&self.kwargs)
                .map(|(e, transcoded)| match transcoded {
                    Some(r) => Some(&self.buf[r.clone()]),
                    None => e.payload.kwargs.as_ref().map(|p| &p.bytes()[..]),
                })
                .collect(),
            retain: events.iter().map(|e| e.retain).collect(),
        }
    }
}

/// The serializer of the row: the args', else the kwargs', else any (no payload).
/// Arguments and ArgumentsKw of one received message share its serializer.
fn payload_serializer(ev: &StoredEvent) -> Serializer {
    ev.payload.args.as_ref().or(ev.payload.kwargs.as_ref()).map_or(Serializer::MsgPack, |p| p.serializer())
}

fn bigint(what: &'static str, value: u64) -> Result<i64, ReplayError> {
    i64::try_from(value).map_err(|_| ReplayError::OutOfRange { what, value })
}

/// The dict as `Serializer::MsgPack.encode_value(&Value::Dict(..))` would write it,
/// without cloning it into a `Value` first.
fn encode_dict(dict: &Dict, out: &mut Vec<u8>) {
    // Writes into a Vec cannot fail. A dict of 2^32 entries or more cannot be a
    // session's publisher details.
    let _ = rmp::encode::write_map_len(out, u32::try_from(dict.len()).unwrap_or(u32::MAX));
    for (k, v) in dict {
        let _ = rmp::encode::write_str(out, k);
        Serializer::MsgPack.encode_value(v, out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wamp::{dict, Value};

    #[test]
    fn publisher_details_encode_as_the_msgpack_serializer_would() {
        let d = dict([("publisher", Value::UInt(7)), ("publisher_authid", Value::Str("alice".into()))]);
        let mut ours = Vec::new();
        encode_dict(&d, &mut ours);
        let mut theirs = Vec::new();
        Serializer::MsgPack.encode_value(&Value::Dict(d), &mut theirs);
        assert_eq!(ours, theirs);
    }
}
