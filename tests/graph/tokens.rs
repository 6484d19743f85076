//! Tokens: only the hash is stored; a lookup says why a token fails; and the
//! `switchyard migrate` and `switchyard token` commands end to end.

use std::process::{Command, Output};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use switchyard::auth::graph::{hash_token, GraphError, TokenError, TokenInfo, TOKEN_PREFIX};

use crate::sql;
use crate::support::postgres::Postgres;

const BIN: &str = env!("CARGO_BIN_EXE_switchyard");

fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

#[test]
fn the_stored_hash_is_lower_case_hex_sha256_of_the_utf8_bytes() {
    assert_eq!(hash_token("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    // 'é' is two bytes of UTF-8 (c3 a9): the hash is of the bytes (vector from Python's hashlib).
    assert_eq!(hash_token("é"), "4a99557e4033c3539de2eb65472017cad5f9557f7a0625a09f1c3f6e2ba69c4c");
}

#[tokio::test]
async fn a_token_opens_a_session_until_it_expires_is_revoked_or_its_user_is_disabled() {
    let db = Postgres::shared().fresh_db().await;
    let s = db.store();
    sql(&db.pool, "insert into principals (id, kind) values ('alice', 'user'), ('bob', 'user'), ('staff', 'role');
                   insert into principals (id, kind, is_admin) values ('root', 'user', true);")
    .await;

    let before = now_ms();
    let token = s.create_token("alice", Some(Duration::from_secs(3600))).await.unwrap();
    let after = now_ms();
    assert!(token.starts_with(TOKEN_PREFIX), "{token}");
    let stored: Vec<(String, String)> = sqlx::query_as("select token_sha256, user_id from tokens").fetch_all(&db.pool).await.unwrap();
    assert_eq!(stored, vec![(hash_token(&token), "alice".to_owned())], "only the hash is stored");
    let info = s.lookup_token(&token).await.unwrap();
    assert_eq!((info.user_id.as_str(), info.is_admin), ("alice", false));
    let expires = info.expires_at_ms.expect("an expiry");
    // The database's clock and ours agree to within a second on this machine.
    assert!((before + 3_600_000 - 1000..=after + 3_600_000 + 1000).contains(&expires), "{expires} vs {before}..{after}");

    let forever = s.create_token("root", None).await.unwrap();
    assert_eq!(s.lookup_token(&forever).await.unwrap(), TokenInfo { user_id: "root".into(), is_admin: true, expires_at_ms: None });

    let expired = s.create_token("bob", Some(Duration::ZERO)).await.unwrap();
    assert!(matches!(s.lookup_token(&expired).await, Err(TokenError::Expired)));

    assert_eq!(s.revoke_token(&token).await.unwrap(), Some("alice".to_owned()));
    assert_eq!(s.revoke_token(&token).await.unwrap(), Some("alice".to_owned()), "revoking twice is fine");
    let revoked = s.lookup_token(&token).await.unwrap_err();
    assert!(matches!(revoked, TokenError::Revoked));
    assert_eq!((revoked.to_string().as_str(), revoked.uri()), ("token revoked", "wamp.error.authentication_failed"));
    assert_eq!(s.revoke_token("sy_never-minted").await.unwrap(), None);

    let bobs = s.create_token("bob", None).await.unwrap();
    sql(&db.pool, "update principals set disabled = true where id = 'bob'").await;
    let disabled = s.lookup_token(&bobs).await.unwrap_err();
    assert_eq!(disabled.to_string(), "token of disabled user \"bob\"");

    let unknown = s.lookup_token("sy_never-minted").await.unwrap_err();
    assert_eq!(unknown.to_string(), "unknown token");

    assert!(matches!(s.create_token("staff", None).await, Err(GraphError::NotAUser { .. })));
    assert!(matches!(s.create_token("nobody", None).await, Err(GraphError::NoSuchPrincipal(id)) if id == "nobody"));
}

fn switchyard(args: &[&str]) -> Output {
    Command::new(BIN).args(args).env_remove("DATABASE_URL").env_remove("SWITCHYARD_DATABASE_URL").output().unwrap()
}

fn text(bytes: &[u8]) -> &str {
    std::str::from_utf8(bytes).unwrap()
}

#[tokio::test]
async fn the_cli_migrates_and_creates_and_revokes_tokens() {
    let db = Postgres::shared().empty_db().await;
    let url = db.url.as_str();

    let out = switchyard(&["migrate", "--database-url", url]);
    assert_eq!((out.status.code(), text(&out.stdout)), (Some(0), "applied 1 permission graph\napplied 2 change log\napplied 3 user keys\napplied 4 user keys revocation\napplied 5 credential truncation\n"));
    let out = switchyard(&["migrate", "--database-url", url]);
    assert_eq!(text(&out.stdout), "the schema is up to date: nothing to apply\n");

    sql(&db.pool, "insert into principals (id, kind) values ('alice', 'user'), ('staff', 'role')").await;
    let out = switchyard(&["token", "create", "--user", "alice", "--ttl", "24h", "--database-url", url]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    let token = stdout.strip_suffix('\n').expect("one line");
    assert!(!token.contains('\n') && token.starts_with(TOKEN_PREFIX) && token.len() == 46, "{stdout:?}");
    let store = db.store();
    let info = store.lookup_token(token).await.unwrap();
    assert_eq!(info.user_id, "alice");
    let left = info.expires_at_ms.unwrap() - now_ms();
    assert!((86_400_000 - 60_000..=86_400_000).contains(&left), "{left} ms left");

    let out = switchyard(&["token", "create", "--user", "staff", "--database-url", url]);
    assert_eq!((out.status.code(), text(&out.stdout)), (Some(1), ""));
    assert_eq!(text(&out.stderr), "cannot create a token: \"staff\" is not a user but a role\n");
    let out = switchyard(&["token", "create", "--user", "nobody", "--database-url", url]);
    assert_eq!((out.status.code(), text(&out.stderr)), (Some(1), "cannot create a token: no principal \"nobody\"\n"));
    let out = switchyard(&["token", "create", "--user", "alice", "--ttl", "1w", "--database-url", url]);
    assert_eq!(out.status.code(), Some(2), "clap refuses a bad --ttl: {}", text(&out.stderr));

    let out = switchyard(&["token", "revoke", token, "--database-url", url]);
    assert_eq!((out.status.code(), text(&out.stderr)), (Some(0), "revoked a token of alice\n"));
    assert!(matches!(store.lookup_token(token).await, Err(TokenError::Revoked)));
    let out = switchyard(&["token", "revoke", "sy_nothing", "--database-url", url]);
    assert_eq!((out.status.code(), text(&out.stderr)), (Some(1), "unknown token: nothing revoked\n"));

    let out = switchyard(&["migrate"]);
    assert_eq!(
        (out.status.code(), text(&out.stderr)),
        (Some(1), "no database: pass --database-url, or set SWITCHYARD_DATABASE_URL or DATABASE_URL\n")
    );
    // The environment is the fallback.
    let out = Command::new(BIN).args(["migrate"]).env("DATABASE_URL", url).env_remove("SWITCHYARD_DATABASE_URL").output().unwrap();
    assert_eq!(text(&out.stdout), "the schema is up to date: nothing to apply\n");
}
