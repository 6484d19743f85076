//! Users' Cryptosign keys (`user_keys`, migration 0003): a lookup names the user or
//! says why the key opens no session, and fails closed without a database.

use switchyard::auth::graph::{build, KeyError, KeyInfo};
use switchyard::auth::{AuthError, TokenCheck};
use switchyard::config::{Config, GraphConfig, PolicyConfig};

use crate::sql;
use crate::support::postgres::Postgres;

const K1: &str = "1adfc8bfe1d35616e64dffbd900096f23b066f914c8c2ffbb66f6075b96e116d";
const K2: &str = "6ed32739ff04a6074044ff0b0e3bfc7c856bc9d5f1d25efc57363bda0af3a8b0";
const K3: &str = "28e11f427b82b9a625ee7ac89a7d29326b505f2dc11dd88c1245f83b6da79a85";

#[tokio::test]
async fn a_key_names_its_user_unless_disabled_trashed_or_not_a_user() {
    let db = Postgres::shared().fresh_db().await;
    let s = db.store();
    sql(&db.pool, "insert into principals (id, kind) values ('alice', 'user'), ('bob', 'user'), ('lab', 'role');
                   insert into principals (id, kind, is_admin) values ('root', 'user', true);")
    .await;
    s.add_key("alice", K1).await.unwrap();
    s.add_key("root", K2).await.unwrap();
    assert_eq!(s.lookup_key(K1).await.unwrap(), KeyInfo { user_id: "alice".into(), is_admin: false });
    assert_eq!(s.lookup_key(K2).await.unwrap(), KeyInfo { user_id: "root".into(), is_admin: true });
    assert!(matches!(s.lookup_key(K3).await, Err(KeyError::Unknown)));

    sql(&db.pool, &format!("insert into user_keys (pubkey, user_id) values ('{K3}', 'lab')")).await;
    assert!(matches!(s.lookup_key(K3).await, Err(KeyError::Unknown)), "a role's key logs nobody in");
    sql(&db.pool, "update principals set disabled = true where id = 'alice'").await;
    assert_eq!(s.lookup_key(K1).await.unwrap_err().to_string(), "cryptosign key of disabled user \"alice\"");
    sql(&db.pool, "update principals set trashed = true where id = 'root'").await;
    assert_eq!(s.lookup_key(K2).await.unwrap_err().to_string(), "cryptosign key of trashed user \"root\"");

    // One user per key; keys are lower-case hex of 32 bytes; they go with their user.
    assert!(s.add_key("bob", K1).await.is_err());
    assert!(s.add_key("bob", &K1.to_uppercase()).await.is_err());
    assert!(s.add_key("bob", "abcd").await.is_err());
    sql(&db.pool, "delete from principals where id = 'alice'").await;
    let left: i64 = sqlx::query_scalar("select count(*) from user_keys").fetch_one(&db.pool).await.unwrap();
    assert_eq!(left, 2);
}

#[tokio::test]
async fn without_its_database_a_graph_realm_lets_no_key_in() {
    let mut realm = Config::default().realms.remove(0);
    realm.graph = Some(GraphConfig {
        database_url: Some("postgres://nobody@127.0.0.1:1/none".into()),
        migrate: false,
        cache_principals: 10,
        cache_objects: 10,
        policy: PolicyConfig { file: "policy.toml".into(), rules: vec![] },
    });
    // The task that would connect is not run: the graph never comes online.
    let graph = build(&realm).expect("a graph realm");
    let refused = graph.tokens.check_key(K1).await.unwrap_err();
    assert_eq!(refused, AuthError::Unavailable("cannot check the key: the permission database is unavailable".into()));
    assert_eq!(refused.uri(), "wamp.error.authentication_failed");
}
