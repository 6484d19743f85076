//! Following the permission graph: the task that keeps a realm's cache true to the
//! database, and fails closed when it cannot.
//!
//! It connects (applying the migrations first when the realm asks), LISTENs on the
//! change channel, and applies every change-log row after the last one it applied:
//! the cache drops and reloads what the rows touch, then the realm is told whose
//! holdings to re-check and which sessions to end. A NOTIFY wakes it at once; a poll
//! every second catches a notification lost with a connection.
//!
//! When the database or the listening connection is lost, the cache goes offline:
//! nothing graph-based is decided (`wamp.error.authorization_failed`) and guarded
//! events are held. The task reconnects with backoff, replays the change log from the
//! last row it applied (or, when the log was pruned past it, reloads everything and ends
//! the sessions opened with a token or key, which it can no longer check), and only
//! then goes online and has everything re-checked. A row
//! counts as applied only once its reloads and announcements are done, so a loss in
//! the middle of one replays it.

use std::sync::Arc;
use std::time::Duration;

use sqlx::postgres::PgListener;

use super::cache::{Applied, GraphCache};
use super::keys::KEY_CREDENTIAL;
use super::{GraphError, GraphStore, CHANNEL};
use crate::auth::{ChangeFeed, CredentialKind, Ending};

/// Change-log rows read per query.
const BATCH: i64 = 1000;
/// How often the log is read without a notification.
const POLL: Duration = Duration::from_secs(1);
const BACKOFF_MIN: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_secs(5);

/// Why sessions opened with a token or key end when the change log was pruned past
/// this router's position.
pub const LOST_TRACK: &str = "the router lost track of the permission graph's changes: join again";

/// Runs until the task is dropped.
pub async fn follow(cache: Arc<GraphCache>, feed: Arc<ChangeFeed>, migrate: bool) {
    let mut migrated = !migrate;
    let mut started = false;
    let mut backoff = BACKOFF_MIN;
    loop {
        let result = run(&cache, &feed, (&mut migrated, &mut started), &mut backoff).await;
        let was_online = cache.is_online();
        cache.set_online(false);
        match result {
            Err(e) if was_online => tracing::warn!(error = %e, "permission graph lost: failing closed until it is back"),
            Err(e) => tracing::debug!(error = %e, "permission graph still unavailable"),
            Ok(()) => {}
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(BACKOFF_MAX);
    }
}

async fn run(
    cache: &GraphCache,
    feed: &ChangeFeed,
    (migrated, started): (&mut bool, &mut bool),
    backoff: &mut Duration,
) -> Result<(), GraphError> {
    let store = &cache.store;
    if !*migrated {
        for m in store.migrate().await? {
            tracing::info!(version = m.version, description = %m.description, "permission graph migration applied");
        }
        *migrated = true;
    }
    let mut listener = PgListener::connect_with(store.pool()).await?;
    listener.listen(CHANNEL).await?;
    if !*started {
        // First connection: nothing is cached yet, so the log before now is of no use.
        cache.commit(store.last_seq().await?);
        *started = true;
    } else {
        catch_up(cache, feed).await?;
    }
    cache.set_online(true);
    *backoff = BACKOFF_MIN;
    tracing::info!(seq = cache.applied_seq(), "permission graph followed");
    // What was decided before the loss may have changed meanwhile.
    feed.recheck_all();
    loop {
        match tokio::time::timeout(POLL, listener.try_recv()).await {
            Ok(Ok(Some(_))) | Err(_) => {}
            // The listening connection was lost (sqlx reconnects it, but notifications
            // may have been missed): catch up, as after any loss.
            Ok(Ok(None)) => return Err(GraphError::Offline),
            Ok(Err(e)) => return Err(e.into()),
        }
        catch_up(cache, feed).await?;
    }
}

/// Applies every change after the last one applied.
async fn catch_up(cache: &GraphCache, feed: &ChangeFeed) -> Result<(), GraphError> {
    let store = &cache.store;
    loop {
        let from = cache.applied_seq();
        if store.pruned_through().await? > from {
            // Rows this router has not applied were pruned: start over from nothing.
            tracing::warn!(from, "permission graph change log pruned past this router's position: reloading everything");
            let last = store.last_seq().await?;
            let dropped = cache.drop_all();
            let applied = cache.reload(dropped).await?;
            announce(store, feed, applied).await?;
            feed.recheck_all();
            // A token or key deleted meanwhile left no row to find: every session
            // opened with one ends (fail closed), and its client joins again.
            for kind in [CredentialKind::ApiToken, CredentialKind::Key] {
                feed.end_opened_with(kind, LOST_TRACK);
            }
            cache.commit(last);
            continue;
        }
        let changes = store.changes_since(from, BATCH).await?;
        let Some(last) = changes.last().map(|c| c.seq) else { return Ok(()) };
        let dropped = cache.apply(&changes);
        let applied = cache.reload(dropped).await?;
        announce(store, feed, applied).await?;
        cache.commit(last);
    }
}

/// Tells the realm whose holdings to re-check and which sessions end.
async fn announce(store: &GraphStore, feed: &ChangeFeed, applied: Applied) -> Result<(), GraphError> {
    for user in &applied.gone {
        feed.end(Ending { authid: user.clone(), token: None, message: "the user was disabled or removed".into() });
    }
    for user in applied.recheck.difference(&applied.gone) {
        feed.recheck(user);
    }
    for kind in &applied.truncated {
        let message = match kind {
            CredentialKind::ApiToken => "every API token was deleted",
            CredentialKind::Key => "every key was deleted",
        };
        feed.end_opened_with(*kind, message);
    }
    for (credentials, users) in &applied.tokens {
        for credential in credentials {
            match credential.strip_prefix(KEY_CREDENTIAL) {
                Some(pubkey) => end_key_sessions(store, feed, credential, pubkey, users).await?,
                None => end_token_sessions(store, feed, credential, users).await?,
            }
        }
    }
    Ok(())
}

/// A key deleted, or now another user's: the sessions its user (old or new, among the
/// nodes the change touched) opened with it end.
async fn end_key_sessions(store: &GraphStore, feed: &ChangeFeed, credential: &str, pubkey: &str, users: &[String]) -> Result<(), GraphError> {
    let owner = store.key_user(pubkey).await?;
    for user in users.iter().filter(|u| owner.as_ref() != Some(*u)) {
        let message = if owner.is_some() { "the key was given to another user" } else { "the key was deleted" };
        feed.end(Ending { authid: user.clone(), token: Some(credential.to_owned()), message: message.into() });
    }
    Ok(())
}

/// A token revoked, expired or deleted: the sessions opened with it end.
async fn end_token_sessions(store: &GraphStore, feed: &ChangeFeed, hash: &str, users: &[String]) -> Result<(), GraphError> {
    match store.token_withdrawn(hash).await? {
        Withdrawn::No => {}
        Withdrawn::Yes(user, why) => feed.end(Ending { authid: user, token: Some(hash.to_owned()), message: why.into() }),
        // Deleted: the change names its user among the nodes it touched.
        Withdrawn::Deleted => {
            for user in users {
                feed.end(Ending { authid: user.clone(), token: Some(hash.to_owned()), message: "the token was deleted".into() });
            }
        }
    }
    Ok(())
}

enum Withdrawn {
    No,
    Yes(String, &'static str),
    Deleted,
}

impl GraphStore {
    /// Whether the token with this hash may no longer open sessions: its user and why.
    async fn token_withdrawn(&self, hash: &str) -> Result<Withdrawn, GraphError> {
        let row: Option<(String, bool, bool)> = sqlx::query_as(
            "select user_id, revoked, coalesce(expires_at <= now(), false) from tokens where token_sha256 = $1",
        )
        .bind(hash)
        .fetch_optional(&self.pool)
        .await?;
        Ok(match row {
            Some((user, true, _)) => Withdrawn::Yes(user, "the token was revoked"),
            Some((user, _, true)) => Withdrawn::Yes(user, "the token expired"),
            Some(_) => Withdrawn::No,
            None => Withdrawn::Deleted,
        })
    }
}
