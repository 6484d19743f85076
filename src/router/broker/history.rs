//! History: where a subscription that asks for it starts (`SUBSCRIBE.Options._replay`,
//! planned under the attach lock), and what `wamp.subscription.get_events` returns
//! (history up to the caller's attach point, with the spec's filters).
//!
//! Positions are per topic. For a pattern subscription, history from several topics is
//! merged by the realm's sequence (publication order), and a start point is turned into
//! one start position per topic.

use std::sync::Arc;
use std::time::SystemTime;

use super::subscription::{Subscriber, Subscription};
use crate::auth::Admit;
use crate::replay::{time, Position, Seq, Store, StoredEvent, StripeGuard, TopicLog};
use crate::router::error::WampError;
use crate::wamp::ids::PublicationId;
use crate::wamp::uri::MatchPolicy;
use crate::wamp::Dict;

/// Where history starts (`_replay`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplayFrom {
    /// The last N events.
    Last(u64),
    /// After this position (resume; exact subscriptions only, positions are per topic).
    AfterPos(Position),
    /// After this publication.
    AfterPublication(PublicationId),
    /// Published at or after this time.
    Since(SystemTime),
}

/// What a new subscriber asked for besides live events.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Start {
    pub replay: Option<ReplayFrom>,
    /// `get_retained: true` (spec: event retention).
    pub retained: bool,
}

impl Start {
    /// Reads `_replay` and `get_retained` from SUBSCRIBE.Options.
    pub fn from_options(options: &Dict, policy: MatchPolicy) -> Result<Start, WampError> {
        let retained = super::filter::flag(options, "get_retained", false)?;
        let Some(replay) = options.get("_replay") else { return Ok(Start { replay: None, retained }) };
        let bad = |why: &str| WampError::InvalidArgument(format!("_replay: {why}"));
        let d = replay.as_dict().ok_or_else(|| bad("must be a dict with one of last, after_pos, after_publication, since"))?;
        if d.len() != 1 {
            return Err(bad("give exactly one of last, after_pos, after_publication, since"));
        }
        let (key, v) = d.iter().next().ok_or_else(|| bad("empty"))?;
        let from = match key.as_str() {
            "last" => ReplayFrom::Last(v.as_u64().ok_or_else(|| bad("last must be a non-negative integer"))?),
            "after_pos" if policy != MatchPolicy::Exact => {
                return Err(bad("after_pos needs an exact subscription (positions are per topic); use after_publication or since"))
            }
            "after_pos" => ReplayFrom::AfterPos(Position(v.as_u64().ok_or_else(|| bad("after_pos must be a non-negative integer"))?)),
            "after_publication" => {
                ReplayFrom::AfterPublication(PublicationId(v.as_u64().ok_or_else(|| bad("after_publication must be a publication id"))?))
            }
            "since" => ReplayFrom::Since(v.as_str().and_then(time::parse).ok_or_else(|| bad("since must be an RFC 3339 time"))?),
            other => return Err(bad(&format!("unknown key '{other}'"))),
        };
        Ok(Start { replay: Some(from), retained })
    }
}

/// Where a new lagging subscriber starts: per topic, the first position to deliver,
/// and how many asked-for events the store no longer has.
#[derive(Debug, Default)]
pub(super) struct Plan {
    pub next: Vec<(Arc<str>, Position)>,
    pub gap: u64,
}

/// The guard holding `topic` among those taken for an attach (one, or all in order).
pub(super) fn stripe_for<'a, 'b>(stripes: &'a [StripeGuard<'b>], topic: &str) -> &'a StripeGuard<'b> {
    if stripes.len() == 1 {
        &stripes[0]
    } else {
        &stripes[Store::stripe_of(topic)]
    }
}

/// Every stored topic `sub` covers, with its log (all stripes are held for a pattern).
fn covered<'a>(sub: &'a Subscription, stripes: &'a [StripeGuard<'_>]) -> Vec<(&'a Arc<str>, &'a TopicLog)> {
    match sub.policy {
        MatchPolicy::Exact => stripe_for(stripes, &sub.uri).logs().filter(|(t, _)| ***t == *sub.uri).collect(),
        _ => stripes.iter().flat_map(|g| g.logs()).filter(|(t, _)| sub.matches(t)).collect(),
    }
}

/// Plans the history of a subscriber attaching now (all relevant stripes held).
/// `None` when no history was asked for.
pub(super) fn plan(sub: &Subscription, start: &Start, stripes: &[StripeGuard<'_>]) -> Option<Plan> {
    let from = start.replay?;
    let logs = covered(sub, stripes);
    let mut plan = Plan::default();
    match from {
        ReplayFrom::Last(n) => {
            // The last n by sequence across topics (one topic for an exact subscription):
            // each topic contributes a suffix, and the gap is what the asked-for window
            // lacks that the topics once had.
            let mut tail: Vec<(Seq, &Arc<str>, Position)> = logs
                .iter()
                .flat_map(|(t, log)| log.since(Position(0)).rev().take(n as usize).map(move |e| (e.seq, *t, e.pos)))
                .collect();
            tail.sort_unstable_by_key(|e| std::cmp::Reverse(e.0));
            tail.truncate(n as usize);
            for (_, topic, pos) in tail {
                match plan.next.iter_mut().find(|(t, _)| t == topic) {
                    Some((_, p)) => *p = (*p).min(pos),
                    None => plan.next.push((topic.clone(), pos)),
                }
            }
            let retained: u64 = logs.iter().map(|(_, l)| l.len() as u64).sum();
            let evicted: u64 = logs.iter().map(|(_, l)| l.first().0 - 1).sum();
            plan.gap = n.saturating_sub(retained).min(evicted);
        }
        ReplayFrom::AfterPos(p) => {
            if let Some((topic, log)) = logs.first() {
                let wanted = if p > log.head() { Position(1) } else { p.next() };
                let from = wanted.max(log.first());
                plan.gap = from.0 - wanted.0;
                plan.next.push(((*topic).clone(), from));
            }
        }
        ReplayFrom::AfterPublication(id) => {
            let found = logs.iter().find_map(|(_, log)| log.position_of(id).and_then(|p| log.get(p)).map(|e| e.seq));
            for (topic, log) in &logs {
                let from = match found {
                    Some(seq) => log.since(Position(0)).find(|e| e.seq > seq).map_or(log.next_position(), |e| e.pos),
                    None => {
                        // Not retained any more: everything retained, and at most every
                        // event the topic lost is what the client missed.
                        plan.gap += log.first().0 - 1;
                        log.first()
                    }
                };
                plan.next.push(((*topic).clone(), from));
            }
        }
        ReplayFrom::Since(t) => {
            for (topic, log) in &logs {
                plan.gap += log.lost_since(t);
                let from = log.since(Position(0)).find(|e| e.published_at >= t).map_or(log.next_position(), |e| e.pos);
                plan.next.push(((*topic).clone(), from));
            }
        }
    }
    plan.next.retain(|(topic, pos)| logs.iter().any(|(t, l)| *t == topic && *pos <= l.head()));
    Some(plan)
}

/// `wamp.subscription.get_events` filters (spec: event history).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HistoryQuery {
    pub limit: Option<u64>,
    pub reverse: bool,
    pub after_time: Option<SystemTime>,
    pub before_time: Option<SystemTime>,
    pub after_publication: Option<PublicationId>,
    pub before_publication: Option<PublicationId>,
}

/// The answer: events in the order asked, and how many events of the asked range the
/// store no longer has (only known for a start publication that is gone).
#[derive(Debug, Default)]
pub struct History {
    pub events: Vec<Arc<StoredEvent>>,
    pub gap: u64,
}

/// History of `subscriber` on `sub`: events stored up to its attach point, that it
/// may see, filtered by `q`.
pub(super) fn query(store: &Store, sub: &Subscription, subscriber: &Subscriber, q: &HistoryQuery) -> Result<History, WampError> {
    let until = subscriber.attached();
    let mut out = History::default();
    let mut events: Vec<Arc<StoredEvent>> = Vec::new();
    let mut after: Option<Seq> = None;
    let mut before: Option<Seq> = None;
    let mut after_found = q.after_publication.is_none();
    let mut evicted = 0;
    let guards = store.lock_covering(&sub.uri, sub.policy);
    for (_, log) in covered(sub, &guards) {
        evicted += log.first().0 - 1;
        for e in log.since(Position(0)) {
            if Some(e.publication) == q.after_publication {
                after = Some(e.seq);
                after_found = true;
            }
            if Some(e.publication) == q.before_publication {
                before = Some(e.seq);
            }
            if e.seq <= until {
                events.push(e.clone());
            }
        }
    }
    drop(guards);
    if q.before_publication.is_some() && before.is_none() {
        return Err(WampError::InvalidArgument("before_publication is not in this subscription's history".into()));
    }
    if !after_found {
        out.gap = evicted;
    }
    events.retain(|e| {
        after.is_none_or(|s| e.seq > s)
            && before.is_none_or(|s| e.seq < s)
            && q.after_time.is_none_or(|t| e.published_at > t)
            && q.before_time.is_none_or(|t| e.published_at < t)
    });
    // Authorized like live events; history that cannot be decided now is refused, not
    // returned with holes.
    let mut undecided = false;
    events.retain(|e| match subscriber.may_see(e) {
        Admit::Yes => true,
        Admit::No => false,
        Admit::Hold => {
            undecided = true;
            false
        }
    });
    if undecided {
        return Err(WampError::Unavailable("the permission of some of this history cannot be decided now; try again".into()));
    }
    events.sort_unstable_by_key(|e| e.seq);
    if let Some(limit) = q.limit {
        let keep = (limit as usize).min(events.len());
        events.drain(..events.len() - keep);
    }
    if q.reverse {
        events.reverse();
    }
    out.events = events;
    Ok(out)
}
