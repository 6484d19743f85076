//! Bearer tokens of the platform's users. The `tokens` table stores only the SHA-256
//! of each token, so a leaked table opens no session; the token itself is shown once,
//! when it is minted.

use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use sha2::{Digest, Sha256};
use thiserror::Error;

use super::{GraphError, GraphStore, PrincipalKind};

/// Tokens minted here start with this, so a leaked one is recognisable in a log or a
/// secret scanner. Tokens the platform mints may look otherwise: lookups accept any.
pub const TOKEN_PREFIX: &str = "sy_";

/// How a token is stored: the lower-case hex SHA-256 of its UTF-8 bytes.
pub fn hash_token(token: &str) -> String {
    let digest = Sha256::digest(token.as_bytes());
    let mut hex = String::with_capacity(2 * digest.len());
    for byte in digest {
        hex.push(char::from(HEX[usize::from(byte >> 4)]));
        hex.push(char::from(HEX[usize::from(byte & 0x0f)]));
    }
    hex
}

const HEX: &[u8; 16] = b"0123456789abcdef";

/// A new token: the prefix and 32 random bytes, URL-safe base64 without padding, so it
/// travels in a URL, a header or a WAMP ticket unescaped. `rand::rng()` is a CSPRNG
/// seeded from the operating system.
pub fn mint_token() -> String {
    let bytes: [u8; 32] = rand::random();
    format!("{TOKEN_PREFIX}{}", URL_SAFE_NO_PAD.encode(bytes))
}

/// Who a valid token belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenInfo {
    pub user_id: String,
    pub is_admin: bool,
    /// Unix epoch milliseconds; `None` for a token that never expires.
    pub expires_at_ms: Option<i64>,
}

/// Why a token opens no session. Each message says which, for the operator's log; a
/// client is told only `wamp.error.authentication_failed`.
#[derive(Debug, Error)]
pub enum TokenError {
    /// No stored hash matches, or the token belongs to a principal that is not a user.
    #[error("unknown token")]
    Unknown,
    #[error("token expired")]
    Expired,
    #[error("token revoked")]
    Revoked,
    #[error("token of disabled user {0:?}")]
    UserDisabled(String),
    #[error(transparent)]
    Graph(#[from] GraphError),
}

impl TokenError {
    pub fn uri(&self) -> &'static str {
        match self {
            TokenError::Graph(e) => e.uri(),
            TokenError::Unknown | TokenError::Expired | TokenError::Revoked | TokenError::UserDisabled(_) => {
                "wamp.error.authentication_failed"
            }
        }
    }
}

impl GraphStore {
    /// Mints a token for `user`, stores its hash and returns the token, which cannot
    /// be recovered later. `ttl: None` makes a token that never expires.
    pub async fn create_token(&self, user: &str, ttl: Option<Duration>) -> Result<String, GraphError> {
        match self.principal(user).await? {
            None => return Err(GraphError::NoSuchPrincipal(user.to_owned())),
            Some(p) if p.kind != Some(PrincipalKind::User) => {
                return Err(GraphError::NotAUser { id: user.to_owned(), kind: p.kind })
            }
            Some(_) => {}
        }
        let token = mint_token();
        // Milliseconds past i64 are beyond any clock: saturate rather than wrap.
        let ttl_ms = ttl.map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
        sqlx::query(
            "insert into tokens (token_sha256, user_id, expires_at) \
             values ($1, $2, now() + $3 * interval '1 millisecond')",
        )
        .bind(hash_token(&token))
        .bind(user)
        .bind(ttl_ms)
        .execute(&self.pool)
        .await?;
        Ok(token)
    }

    /// Marks the token revoked and returns its user, or `None` if no such token is
    /// stored. Revoking twice is not an error.
    pub async fn revoke_token(&self, token: &str) -> Result<Option<String>, GraphError> {
        let user = sqlx::query_scalar("update tokens set revoked = true where token_sha256 = $1 returning user_id")
            .bind(hash_token(token))
            .fetch_optional(&self.pool)
            .await?;
        Ok(user)
    }

    /// The user a token belongs to, if the token may open a session now.
    pub async fn lookup_token(&self, token: &str) -> Result<TokenInfo, TokenError> {
        self.lookup_token_hash(&hash_token(token)).await
    }

    /// `lookup_token` for a token already hashed (`hash_token`).
    pub async fn lookup_token_hash(&self, hash: &str) -> Result<TokenInfo, TokenError> {
        type Row = (String, bool, bool, Option<i64>, bool, bool);
        let row: Option<Row> = sqlx::query_as(
            "select t.user_id, t.revoked, coalesce(t.expires_at <= now(), false), \
                    (extract(epoch from t.expires_at) * 1000)::bigint, p.disabled, p.is_admin \
             from tokens t join principals p on p.id = t.user_id \
             where t.token_sha256 = $1 and p.kind = 'user'",
        )
        .bind(hash)
        .fetch_optional(&self.pool)
        .await
        .map_err(GraphError::from)?;
        let Some((user_id, revoked, expired, expires_at_ms, disabled, is_admin)) = row else {
            return Err(TokenError::Unknown);
        };
        if revoked {
            Err(TokenError::Revoked)
        } else if expired {
            Err(TokenError::Expired)
        } else if disabled {
            Err(TokenError::UserDisabled(user_id))
        } else {
            Ok(TokenInfo { user_id, is_admin, expires_at_ms })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_is_lower_case_hex_sha256_of_the_utf8_bytes() {
        // FIPS 180-2, appendix B.1.
        assert_eq!(hash_token("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
        assert_eq!(hash_token(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    }

    #[test]
    fn minted_tokens_are_prefixed_url_safe_and_distinct() {
        let a = mint_token();
        let b = mint_token();
        assert_ne!(a, b);
        let body = a.strip_prefix(TOKEN_PREFIX).expect("prefix");
        assert_eq!(body.len(), 43, "32 bytes in unpadded base64");
        assert!(body.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_'), "{a}");
        assert_eq!(URL_SAFE_NO_PAD.decode(body).map(|v| v.len()).ok(), Some(32));
    }
}
