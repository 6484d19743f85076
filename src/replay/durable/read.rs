//! `load` and `prune`: both start from the realm's topics table, ask the realm's
//! retention (first matching rule, evaluated here since SQL cannot match WAMP
//! patterns) which topics are durable and how much of each to keep, and pass that to
//! one statement as arrays. Each topic's rows are then one range of the primary key.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use futures_util::stream::TryStreamExt;
use sqlx::postgres::{PgPool, PgRow};
use sqlx::Row;

use super::Loaded;
use crate::replay::event::micros;
use crate::replay::{Limits, Position, ReplayError, Retention, Seq, StoredEvent};
use crate::wamp::ids::PublicationId;
use crate::wamp::{Args, Dict, Payload, Serializer, Value};

/// Each topic of the realm with its head and last seq: the topic's newest event's, or
/// the floor its `replay_topics` row keeps when pruning removed every event (the
/// writer does not update that row per batch; see `writer.rs`). Within a topic, seq
/// grows with the position, so the newest event has both. One index probe per topic.
const TOPICS: &str = r#"
select h.topic, greatest(h.head, coalesce(m.pos, 0)), greatest(h.last_seq, coalesce(m.seq, 0))
from replay_topics h
left join lateral (
    select e.pos, e.seq from replay_events e
    where e.realm = h.realm and e.topic = h.topic
    order by e.pos desc limit 1
) m on true
where h.realm = $1
order by h.topic collate "C"
"#;

/// Rows within each topic's window: the last `max_events` positions below the head,
/// none older than `max_age`. Unordered: rows come topic by topic in position order,
/// and sorting by seq is cheaper in memory than in the server's (spilling) sort.
const EVENTS: &str = r#"
select e.topic, e.pos, e.seq, e.publication, e.published_at, e.publisher, e.serializer, e.args, e.kwargs, e.retain
from unnest($2::text[], $3::int8[], $4::int8[]) as t (topic, min_pos, min_time)
join replay_events e
  on e.realm = $1 and e.topic = t.topic and e.pos >= t.min_pos and e.published_at >= t.min_time
"#;

/// Deletes, per topic, every row before the first one that is both within the last
/// `keep` positions of the head and not older than `min_time` (all of them when there
/// is none). Age is cut as a prefix: finding the first young row reads only the rows
/// about to go, where testing every row's age would read the whole retained window on
/// each prune. Times only go back with the clock; a row stamped older than a row
/// before it then stays until the rows before it go (`load` filters it meanwhile).
/// The head is the topic's newest row, read in the same snapshot as the rows, so
/// batches committed meanwhile are neither seen nor deleted; it is first written to
/// the topic's `replay_topics` row (only ever raised), so that positions continue
/// after a restart even when every row of the topic goes.
const PRUNE: &str = r#"
with heads as (
    select t.topic, t.keep, t.min_time, m.pos as head, m.seq as last_seq
    from unnest($2::text[], $3::int8[], $4::int8[]) as t (topic, keep, min_time)
    join lateral (
        select e.pos, e.seq from replay_events e
        where e.realm = $1 and e.topic = t.topic
        order by e.pos desc limit 1
    ) m on true
),
raised as (
    update replay_topics h
    set head = greatest(h.head, heads.head), last_seq = greatest(h.last_seq, heads.last_seq)
    from heads
    where h.realm = $1 and h.topic = heads.topic and (h.head < heads.head or h.last_seq < heads.last_seq)
),
cut as (
    select heads.topic, coalesce(
        (select e.pos from replay_events e
         where e.realm = $1 and e.topic = heads.topic and e.pos > heads.head - heads.keep
           and e.published_at >= heads.min_time
         order by e.pos limit 1),
        heads.head + 1) as keep_from
    from heads
)
delete from replay_events e using cut
where e.realm = $1 and e.topic = cut.topic and e.pos < cut.keep_from
"#;

/// A durable topic's row in `replay_topics` and its limits.
struct Topic {
    name: Arc<str>,
    head: i64,
    limits: Limits,
}

/// The realm's topics the retention makes durable, and the seq after every seq used
/// (whatever the retention says now).
async fn durable_topics(pool: &PgPool, realm: &str, retention: &Retention) -> Result<(Vec<Topic>, Seq), ReplayError> {
    let rows: Vec<(String, i64, i64)> = sqlx::query_as(TOPICS).bind(realm).fetch_all(pool).await?;
    let mut last_seq = None;
    let mut topics = Vec::new();
    for (name, head, seq) in rows {
        let seq = unsigned(&name, head, "last seq", seq)?;
        last_seq = last_seq.max(Some(seq));
        let Some(limits) = retention.limits(&name).filter(|l| l.durable) else { continue };
        topics.push(Topic { name: name.into(), head, limits });
    }
    let next_seq = match last_seq {
        Some(s) => s.checked_add(1).ok_or(ReplayError::OutOfRange { what: "seq", value: s })?,
        None => 1,
    };
    Ok((topics, Seq(next_seq)))
}

pub(super) async fn load(pool: &PgPool, realm: &str, retention: &Retention) -> Result<Loaded, ReplayError> {
    let (topics, next_seq) = durable_topics(pool, realm, retention).await?;
    let now = micros(SystemTime::now());
    let names: Vec<&str> = topics.iter().map(|t| &*t.name).collect();
    let min_pos: Vec<i64> = topics.iter().map(|t| t.head.saturating_sub(keep(t.limits)).saturating_add(1)).collect();
    let min_time: Vec<i64> = topics.iter().map(|t| oldest(t.limits, now)).collect();
    let mut heads = Vec::with_capacity(topics.len());
    for t in &topics {
        heads.push((t.name.clone(), Position(unsigned(&t.name, t.head, "head", t.head)?)));
    }
    let interned: HashSet<Arc<str>> = topics.iter().map(|t| t.name.clone()).collect();
    let mut publishers = HashMap::new();
    let mut events = Vec::new();
    let mut rows = sqlx::query(EVENTS).bind(realm).bind(&names).bind(&min_pos).bind(&min_time).fetch(pool);
    while let Some(row) = rows.try_next().await? {
        events.push(event(&row, &interned, &mut publishers)?);
    }
    events.sort_by_key(|e| e.seq);
    Ok(Loaded { events, heads, next_seq })
}

pub(super) async fn prune(pool: &PgPool, realm: &str, retention: &Retention) -> Result<u64, ReplayError> {
    let (topics, _) = durable_topics(pool, realm, retention).await?;
    if topics.is_empty() {
        return Ok(0);
    }
    let now = micros(SystemTime::now());
    let names: Vec<&str> = topics.iter().map(|t| &*t.name).collect();
    let keep: Vec<i64> = topics.iter().map(|t| keep(t.limits)).collect();
    let min_time: Vec<i64> = topics.iter().map(|t| oldest(t.limits, now)).collect();
    let done = sqlx::query(PRUNE).bind(realm).bind(&names).bind(&keep).bind(&min_time).execute(pool).await?;
    Ok(done.rows_affected())
}

/// How many positions below the head (inclusive) a topic keeps.
fn keep(limits: Limits) -> i64 {
    i64::try_from(limits.max_events).unwrap_or(i64::MAX)
}

/// The oldest `published_at` (microseconds) a topic keeps.
fn oldest(limits: Limits, now: i64) -> i64 {
    match limits.max_age {
        Some(age) => now.saturating_sub(i64::try_from(age.as_micros()).unwrap_or(i64::MAX)),
        None => i64::MIN,
    }
}

fn event(
    row: &PgRow,
    topics: &HashSet<Arc<str>>,
    publishers: &mut HashMap<Vec<u8>, Arc<Dict>>,
) -> Result<StoredEvent, ReplayError> {
    let name: &str = row.try_get(0)?;
    let pos: i64 = row.try_get(1)?;
    let bad = |what: String| ReplayError::Malformed { topic: name.to_owned(), pos, what };
    // The statement joins on these names, so a row of another topic cannot come.
    let topic = topics.get(name).cloned().ok_or_else(|| bad("a topic that was not asked for".into()))?;
    let seq: i64 = row.try_get(2)?;
    let publication: i64 = row.try_get(3)?;
    let published_at: i64 = row.try_get(4)?;
    let publisher: &[u8] = row.try_get(5)?;
    let serializer: i16 = row.try_get(6)?;
    let args: Option<Vec<u8>> = row.try_get(7)?;
    let kwargs: Option<Vec<u8>> = row.try_get(8)?;
    let retain: bool = row.try_get(9)?;

    let serializer = u8::try_from(serializer)
        .ok()
        .and_then(Serializer::from_rawsocket_id)
        .ok_or_else(|| bad(format!("serializer {serializer}")))?;
    let publisher = match publishers.get(publisher) {
        Some(d) => d.clone(),
        None => {
            let d = match Serializer::MsgPack.decode_checked(publisher) {
                Ok(Value::Dict(d)) => Arc::new(d),
                Ok(_) => return Err(bad("publisher details are not a dict".into())),
                Err(e) => return Err(bad(format!("publisher details: {e}"))),
            };
            publishers.insert(publisher.to_vec(), d.clone());
            d
        }
    };
    // Payloads were checked when they were published and are kept as received; only
    // their kind is checked here (one byte), not decoded, and JSON's text for UTF-8: a
    // JSON frame goes out to WebSocket peers without another check
    // (transport/websocket.rs), so a row changed in the database must not bring bytes
    // that are not text.
    let text = |b: &[u8]| serializer != Serializer::Json || std::str::from_utf8(b).is_ok();
    let args = match args {
        Some(b) if !serializer.is_list(&b) => return Err(bad("args are not a list".into())),
        Some(b) if !text(&b) => return Err(bad("args are not UTF-8".into())),
        b => b.map(|b| Payload::from_encoded(serializer, Bytes::from(b))),
    };
    let kwargs = match kwargs {
        Some(b) if !serializer.is_dict(&b) => return Err(bad("kwargs are not a dict".into())),
        Some(b) if !text(&b) => return Err(bad("kwargs are not UTF-8".into())),
        b => b.map(|b| Payload::from_encoded(serializer, Bytes::from(b))),
    };
    Ok(StoredEvent {
        pos: Position(unsigned(name, pos, "position", pos)?),
        seq: Seq(unsigned(name, pos, "seq", seq)?),
        publication: PublicationId(unsigned(name, pos, "publication id", publication)?),
        published_at: time(published_at).ok_or_else(|| bad(format!("time {published_at}")))?,
        topic,
        publisher,
        payload: Args { args, kwargs },
        retain,
        // Not stored: the publishing session did not outlive the router.
        excluded: None,
    })
}

fn unsigned(topic: &str, pos: i64, what: &str, value: i64) -> Result<u64, ReplayError> {
    u64::try_from(value).map_err(|_| ReplayError::Malformed {
        topic: topic.to_owned(),
        pos,
        what: format!("{what} {value}"),
    })
}

/// Microseconds since the Unix epoch back to a time (`StoredEvent::micros` inverted).
fn time(micros: i64) -> Option<SystemTime> {
    let d = Duration::from_micros(micros.unsigned_abs());
    if micros >= 0 {
        SystemTime::UNIX_EPOCH.checked_add(d)
    } else {
        SystemTime::UNIX_EPOCH.checked_sub(d)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_come_back_as_they_were_stored() {
        for m in [0, 1, 1_700_000_000_123_456, -5_000_001] {
            assert_eq!(time(m).map(micros), Some(m));
        }
    }

    #[test]
    fn windows_saturate_instead_of_overflowing() {
        let l = Limits {
            max_events: usize::MAX,
            max_age: Some(Duration::from_secs(u64::MAX)),
            max_bytes: None,
            durable: true,
        };
        assert_eq!((keep(l), oldest(l, 10)), (i64::MAX, i64::MIN + 11));
        let none = Limits { max_events: 3, max_age: None, max_bytes: None, durable: true };
        assert_eq!((keep(none), oldest(none, 10)), (3, i64::MIN));
    }
}
