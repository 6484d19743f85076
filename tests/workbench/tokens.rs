//! Authentication by API token or stored Cryptosign key, and sessions that end with
//! their token, their key or their user.

use super::*;
use switchyard::auth::graph::GraphStore;

#[tokio::test]
async fn tokens_that_open_no_session_say_why() {
    let db = support::postgres::Postgres::shared().fresh_db().await;
    lab(&db.pool).await;
    let store = GraphStore::from_pool(db.pool.clone());
    let server = start(&db.url).await;
    let expired = store.create_token("alice", None).await.unwrap();
    sql(&db.pool, "update tokens set expires_at = now() - interval '1 minute'").await;
    let revoked = store.create_token("alice", None).await.unwrap();
    store.revoke_token(&revoked).await.unwrap();
    let disabled = store.create_token("bob", None).await.unwrap();
    sql(&db.pool, "update principals set disabled = true where id = 'bob'").await;
    let good = store.create_token("alice", None).await.unwrap();
    let failed = |m: &str| Some(("wamp.error.authentication_failed".to_owned(), m.to_owned()));
    assert_eq!(join(&server, None, &expired, true).await.err(), failed("token expired"));
    assert_eq!(join(&server, None, &revoked, true).await.err(), failed("token revoked"));
    assert_eq!(join(&server, None, &disabled, true).await.err(), failed("token of disabled user \"bob\""));
    assert_eq!(join(&server, None, "sy_nonsense", true).await.err(), failed("unknown token"));
    assert_eq!(join(&server, Some("bob"), &good, true).await.err(), failed("the token does not belong to 'bob'"));
    let alice = join(&server, Some("alice"), &good, true).await.expect("alice's own token with her authid");
    assert_eq!(alice.welcome["authid"], Value::from("alice"));
    let carol = user(&server, &db.pool, "carol").await;
    assert_eq!(carol.welcome["authrole"], Value::from("admin"));
}

async fn expect_goodbye(c: &mut Client, message: &str) {
    match c.recv().await {
        Message::Goodbye { reason, details } => {
            assert_eq!(reason, "wamp.close.revoked");
            assert_eq!(details["message"], Value::from(message));
        }
        other => panic!("expected GOODBYE wamp.close.revoked, got {other:?}"),
    }
}

#[tokio::test]
async fn a_revoked_token_or_a_disabled_user_closes_their_sessions() {
    let db = support::postgres::Postgres::shared().fresh_db().await;
    lab(&db.pool).await;
    let store = GraphStore::from_pool(db.pool.clone());
    let server = start(&db.url).await;
    let t1 = store.create_token("alice", None).await.unwrap();
    let t2 = store.create_token("alice", None).await.unwrap();
    let mut a1 = join(&server, None, &t1, true).await.unwrap();
    let mut a2 = join(&server, None, &t2, true).await.unwrap();
    let mut bob = user(&server, &db.pool, "bob").await;

    store.revoke_token(&t1).await.unwrap();
    expect_goodbye(&mut a1, "the token was revoked").await;
    nothing_within(&mut a2, 100).await;

    sql(&db.pool, "update principals set disabled = true where id = 'alice'").await;
    expect_goodbye(&mut a2, "the user was disabled or removed").await;
    nothing_within(&mut bob, 50).await;
    assert_eq!(common::metric(&server, "sessions_closed_by_router"), 2);
}

#[tokio::test]
async fn a_session_ends_when_its_token_expires() {
    let db = support::postgres::Postgres::shared().fresh_db().await;
    lab(&db.pool).await;
    let store = GraphStore::from_pool(db.pool.clone());
    let server = start(&db.url).await;
    let token = store.create_token("alice", Some(Duration::from_millis(1500))).await.unwrap();
    let mut alice = join(&server, None, &token, true).await.unwrap();
    let started = std::time::Instant::now();
    expect_goodbye(&mut alice, "the token expired").await;
    let after = started.elapsed();
    assert!(after > Duration::from_millis(1000) && after < Duration::from_millis(2500), "{after:?}");
}

/// The public key (lower-case hex) of the Ed25519 key of `seed`.
fn public_hex(seed: &[u8; 32]) -> String {
    switchyard::auth::cryptosign::encode_hex(&ed25519_dalek::SigningKey::from_bytes(seed).verifying_key().to_bytes())
}

#[tokio::test]
async fn a_deleted_or_reassigned_key_closes_the_sessions_it_opened() {
    let db = support::postgres::Postgres::shared().fresh_db().await;
    lab(&db.pool).await;
    let store = GraphStore::from_pool(db.pool.clone());
    let server = start(&db.url).await;
    let (k1, k2) = ([11u8; 32], [12u8; 32]);
    store.add_key("alice", &public_hex(&k1)).await.unwrap();
    store.add_key("alice", &public_hex(&k2)).await.unwrap();
    let mut a1 = join_with_key(&server, &k1).await.expect("alice by her first key");
    let mut a2 = join_with_key(&server, &k2).await.expect("alice by her second key");
    assert_eq!((a1.welcome["authid"].as_str(), a1.welcome["authmethod"].as_str()), (Some("alice"), Some("cryptosign")));
    let mut by_token = user(&server, &db.pool, "alice").await;

    // A comment changes nothing.
    sql(&db.pool, &format!("update user_keys set comment = 'laptop' where pubkey = '{}'", public_hex(&k1))).await;
    nothing_within(&mut a1, 100).await;

    sql(&db.pool, &format!("delete from user_keys where pubkey = '{}'", public_hex(&k1))).await;
    expect_goodbye(&mut a1, "the key was deleted").await;
    nothing_within(&mut a2, 100).await;
    assert_eq!(join_with_key(&server, &k1).await.err(), Some(("wamp.error.authentication_failed".into(), "unknown cryptosign key".into())));

    sql(&db.pool, &format!("update user_keys set user_id = 'bob' where pubkey = '{}'", public_hex(&k2))).await;
    expect_goodbye(&mut a2, "the key was given to another user").await;
    nothing_within(&mut by_token, 100).await;
    let bob = join_with_key(&server, &k2).await.expect("bob by the key now his");
    assert_eq!(bob.welcome["authid"].as_str(), Some("bob"));
    assert_eq!(common::metric(&server, "sessions_closed_by_router"), 2);
}

#[tokio::test]
async fn emptying_a_credential_table_closes_every_session_its_credentials_opened() {
    let db = support::postgres::Postgres::shared().fresh_db().await;
    lab(&db.pool).await;
    let store = GraphStore::from_pool(db.pool.clone());
    let server = start(&db.url).await;
    let seed = [13u8; 32];
    store.add_key("alice", &public_hex(&seed)).await.unwrap();
    let mut by_key = join_with_key(&server, &seed).await.expect("alice by her key");
    let mut alice = user(&server, &db.pool, "alice").await;
    let mut bob = user(&server, &db.pool, "bob").await;
    let mut by_ticket = service(&server, "dispatcher-1").await;
    // The tokens' own inserts are applied first (else one may be read back after the
    // TRUNCATE, and its session end as "the token was deleted").
    settle(&server, &db.pool).await;

    // A TRUNCATE names no token: every session opened with a token ends, no other.
    sql(&db.pool, "truncate tokens").await;
    expect_goodbye(&mut alice, "every API token was deleted").await;
    expect_goodbye(&mut bob, "every API token was deleted").await;
    nothing_within(&mut by_key, 100).await;

    sql(&db.pool, "truncate user_keys").await;
    expect_goodbye(&mut by_key, "every key was deleted").await;
    nothing_within(&mut by_ticket, 100).await;
    assert_eq!(join_with_key(&server, &seed).await.err(), Some(("wamp.error.authentication_failed".into(), "unknown cryptosign key".into())));
    assert_eq!(common::metric(&server, "sessions_closed_by_router"), 3);
}

#[tokio::test]
async fn a_token_found_valid_is_not_looked_up_again_until_a_change_names_it() {
    let db = support::postgres::Postgres::shared().fresh_db().await;
    lab(&db.pool).await;
    let store = GraphStore::from_pool(db.pool.clone());
    let server = start(&db.url).await;
    let used = store.create_token("alice", None).await.unwrap();
    let unused = store.create_token("bob", None).await.unwrap();
    settle(&server, &db.pool).await;
    join(&server, None, &used, true).await.expect("alice's token, looked up");

    // Token lookups cannot be answered now (the router still follows the change log):
    // the token found valid joins from memory, the other one needs the database.
    sql(&db.pool, "alter table tokens rename to tokens_elsewhere").await;
    let again = join(&server, None, &used, true).await.expect("alice's token, from memory");
    assert_eq!(again.welcome["authid"], Value::from("alice"));
    let (reason, message) = join(&server, None, &unused, true).await.err().expect("bob's token needs the database");
    assert_eq!(reason, "wamp.error.authentication_failed");
    assert!(message.starts_with("cannot check the token: "), "{message}");
    sql(&db.pool, "alter table tokens_elsewhere rename to tokens").await;

    // A change naming the token makes the router ask again.
    store.revoke_token(&used).await.unwrap();
    settle(&server, &db.pool).await;
    assert_eq!(join(&server, None, &used, true).await.err(), Some(("wamp.error.authentication_failed".into(), "token revoked".into())));
}

#[tokio::test]
async fn a_router_that_missed_pruned_changes_ends_the_sessions_of_tokens_and_keys() {
    use sqlx::{Connection, Executor};
    let db = support::postgres::Postgres::shared().fresh_db().await;
    lab(&db.pool).await;
    let store = GraphStore::from_pool(db.pool.clone());
    let server = start(&db.url).await;
    let seed = [21u8; 32];
    store.add_key("alice", &public_hex(&seed)).await.unwrap();
    let mut by_key = join_with_key(&server, &seed).await.expect("alice by her key");
    let mut by_token = user(&server, &db.pool, "alice").await;
    let mut by_ticket = service(&server, "dispatcher-1").await;
    settle(&server, &db.pool).await;

    // The router loses its connections and cannot open new ones, while a change is
    // made and the change log pruned past it: it cannot know what that change was.
    let mut admin = sqlx::PgConnection::connect(&db.url).await.unwrap();
    let mut maintenance = sqlx::PgConnection::connect(&db.url.replacen(&format!("/{}", db.name), "/postgres", 1)).await.unwrap();
    let allow = |yes: bool| format!("alter database \"{}\" allow_connections {yes}", db.name);
    maintenance.execute(allow(false).as_str()).await.unwrap();
    admin
        .execute("select pg_terminate_backend(pid) from pg_stat_activity where datname = current_database() and pid <> pg_backend_pid()")
        .await
        .unwrap();
    for _ in 0..500 {
        if metric_text(&server).contains("switchyard_graph_online{realm=\"workbench\"} 0") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(metric_text(&server).contains("switchyard_graph_online{realm=\"workbench\"} 0"));
    admin.execute("insert into principals (id, kind) values ('zed', 'user')").await.unwrap();
    admin.execute("select switchyard_graph_prune_changes('0 seconds')").await.unwrap();
    maintenance.execute(allow(true).as_str()).await.unwrap();

    let lost = switchyard::auth::graph::LOST_TRACK;
    expect_goodbye(&mut by_token, lost).await;
    expect_goodbye(&mut by_key, lost).await;
    nothing_within(&mut by_ticket, 100).await;
    // The credentials still work: their clients join again.
    join_with_key(&server, &seed).await.expect("alice by her key, again");
}
