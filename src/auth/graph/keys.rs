//! WAMP-Cryptosign public keys of the platform's users (`user_keys`, migration 0003):
//! which user a key logs in as. Read once per login, never cached, so a key the
//! platform deletes, or a user it disables, opens no new session.

use thiserror::Error;

use super::{GraphError, GraphStore};

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

impl GraphStore {
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
