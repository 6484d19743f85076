//! WAMP-Cryptosign public keys of the platform's users (`user_keys`, migration 0003):
//! which user a key logs in as. Read once per login, never cached, so a key the
//! platform deletes, or a user it disables, opens no new session; the sessions a key
//! opened end when it is deleted or given to another user (migration 0004, `follow.rs`).

use thiserror::Error;

use super::{GraphError, GraphStore};
pub use crate::auth::changes::KEY_CREDENTIAL;

/// Who a usable key belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyInfo {
    pub user_id: String,
    pub is_admin: bool,
}

/// Why a key opens no session. The message is for the operator's log and the ABORT;
/// the URI is `wamp.error.authentication_failed` whatever the reason.
#[derive(Debug, Error)]
pub enum KeyError {
    /// No such key, or it belongs to a principal that is not a user.
    #[error("unknown cryptosign key")]
    Unknown,
    #[error("cryptosign key of disabled user {0:?}")]
    UserDisabled(String),
    #[error("cryptosign key of trashed user {0:?}")]
    UserTrashed(String),
    #[error(transparent)]
    Graph(#[from] GraphError),
}

/// The credential identity of `pubkey` (64 lower-case hex digits).
pub fn key_credential(pubkey: &str) -> String {
    format!("{KEY_CREDENTIAL}{pubkey}")
}

impl GraphStore {
    /// The user `pubkey` now belongs to, whatever their state (`None`: no such key).
    pub async fn key_user(&self, pubkey: &str) -> Result<Option<String>, GraphError> {
        Ok(sqlx::query_scalar("select user_id from user_keys where pubkey = $1")
            .bind(pubkey)
            .fetch_optional(&self.pool)
            .await?)
    }

    /// The user `pubkey` (64 lower-case hex digits) logs in as, if it may now.
    pub async fn lookup_key(&self, pubkey: &str) -> Result<KeyInfo, KeyError> {
        let row: Option<(String, bool, bool, bool)> = sqlx::query_as(
            "select k.user_id, p.disabled, p.trashed, p.is_admin \
             from user_keys k join principals p on p.id = k.user_id \
             where k.pubkey = $1 and p.kind = 'user'",
        )
        .bind(pubkey)
        .fetch_optional(&self.pool)
        .await
        .map_err(GraphError::from)?;
        match row {
            None => Err(KeyError::Unknown),
            Some((user, true, _, _)) => Err(KeyError::UserDisabled(user)),
            Some((user, _, true, _)) => Err(KeyError::UserTrashed(user)),
            Some((user_id, false, false, is_admin)) => Ok(KeyInfo { user_id, is_admin }),
        }
    }

    /// Stores `pubkey` for `user` (what the platform does; here for tests and tools).
    pub async fn add_key(&self, user: &str, pubkey: &str) -> Result<(), GraphError> {
        sqlx::query("insert into user_keys (pubkey, user_id) values ($1, $2)")
            .bind(pubkey)
            .bind(user)
            .execute(&self.pool)
            .await?;
        Ok(())
    }
}
