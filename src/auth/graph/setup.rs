//! Everything a realm of the permission graph needs, built from its configuration: the
//! cache, the authorizer, the token check, and the task that follows the database.
//! Nothing connects here: the task does, so the router starts (and the realm fails
//! closed) when the database is down.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use futures_util::future::BoxFuture;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};

use super::{follow, GraphAuthorizer, GraphCache, GraphStore, KeyError, Policy, TokenError};
use crate::auth::{AuthError, ChangeFeed, KeyHolder, StaticRoles, TokenCheck, TokenHolder};
use crate::config::RealmConfig;

/// A graph realm's parts; `follow` must be spawned for the realm to come online.
pub struct GraphRealm {
    pub authorizer: Arc<GraphAuthorizer>,
    pub tokens: Arc<GraphTokens>,
    pub follow: Option<BoxFuture<'static, ()>>,
}

/// Builds the parts of `realm` if it is authorized by the graph.
pub fn build(realm: &RealmConfig) -> Option<GraphRealm> {
    let cfg = realm.graph.as_ref()?;
    let (store, url_error) = match cfg.resolved_database_url().map(|url| GraphStore::connect_lazy(&url)) {
        Some(Ok(store)) => (Some(store), None),
        Some(Err(e)) => (None, Some(e.to_string())),
        None => (None, Some("no database URL: set [graph] database_url, SWITCHYARD_DATABASE_URL or DATABASE_URL".into())),
    };
    if let Some(e) = &url_error {
        tracing::error!(realm = %realm.name, "{e}; the realm refuses everything it cannot decide");
    }
    // Without a database the cache never comes online, so this pool is never used.
    let store = store.unwrap_or_else(|| GraphStore::from_pool(PgPoolOptions::new().connect_lazy_with(PgConnectOptions::new())));
    let cache = Arc::new(GraphCache::new(store, cfg.cache_principals, cfg.cache_objects));
    let feed = Arc::new(ChangeFeed::new());
    let policy = Policy::from_config(&cfg.policy);
    let authorizer = Arc::new(GraphAuthorizer::new(cache.clone(), policy, StaticRoles::from_config(realm), feed.clone()));
    let follow: Option<BoxFuture<'static, ()>> =
        url_error.is_none().then(|| Box::pin(follow(cache.clone(), feed, cfg.migrate)) as BoxFuture<'static, ()>);
    Some(GraphRealm { authorizer, tokens: Arc::new(GraphTokens { cache }), follow })
}

/// API tokens of the graph as WAMP-Ticket tickets, and its users' WAMP-Cryptosign keys.
#[derive(Debug)]
pub struct GraphTokens {
    cache: Arc<GraphCache>,
}

impl TokenCheck for GraphTokens {
    fn check(&self, token: &str) -> BoxFuture<'static, Result<TokenHolder, AuthError>> {
        let (cache, token) = (self.cache.clone(), token.to_owned());
        Box::pin(async move {
            if !cache.is_online() {
                return Err(AuthError::Unavailable("cannot check the token: the permission database is unavailable".into()));
            }
            let hash = super::hash_token(&token);
            let holder = |info: super::TokenInfo, token_id: String| TokenHolder {
                user: info.user_id,
                admin: info.is_admin,
                token_id,
                expires_at: info.expires_at_ms.map(|ms| SystemTime::UNIX_EPOCH + Duration::from_millis(ms.max(0) as u64)),
            };
            if let Some(info) = cache.tokens.get(&hash) {
                return Ok(holder(info, hash));
            }
            let epoch = cache.tokens.epoch();
            match cache.store.lookup_token_hash(&hash).await {
                Ok(info) => {
                    cache.tokens.insert(hash.clone(), info.clone(), epoch);
                    Ok(holder(info, hash))
                }
                Err(TokenError::Graph(e)) => Err(AuthError::Unavailable(format!("cannot check the token: {e}"))),
                Err(e) => Err(AuthError::Failed(e.to_string())),
            }
        })
    }

    fn check_key(&self, pubkey: &str) -> BoxFuture<'static, Result<KeyHolder, AuthError>> {
        let (cache, pubkey) = (self.cache.clone(), pubkey.to_owned());
        Box::pin(async move {
            // As for tokens: while the router cannot follow the graph, a user it would
            // have seen disabled could get in, so nobody does.
            if !cache.is_online() {
                return Err(AuthError::Unavailable("cannot check the key: the permission database is unavailable".into()));
            }
            match cache.store.lookup_key(&pubkey).await {
                Ok(info) => Ok(KeyHolder { user: info.user_id, admin: info.is_admin, key_id: super::keys::key_credential(&pubkey) }),
                Err(KeyError::Graph(e)) => Err(AuthError::Unavailable(format!("cannot check the key: {e}"))),
                Err(e) => Err(AuthError::Failed(e.to_string())),
            }
        })
    }
}
