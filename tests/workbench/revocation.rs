//! A permission withdrawn ends exactly what depended on it: the subscription stops at
//! once and the client is told; another path to the same object keeps it.

use super::*;
use common::{call, expect_error_for};
use switchyard::wamp::message::code;

#[tokio::test]
async fn removed_from_the_role_while_tailing_a_log() {
    let db = support::postgres::Postgres::shared().fresh_db().await;
    lab(&db.pool).await;
    let server = start(&db.url).await;
    let mut controller = service(&server, "controller-1").await;
    let mut alice = user(&server, &db.pool, "alice").await;
    assert_eq!(alice.welcome["authid"], Value::from("alice"));
    assert_eq!(alice.welcome["authrole"], Value::from("user"));
    assert_eq!(alice.welcome["authprovider"], Value::from("graph"));
    let mut bob = user(&server, &db.pool, "bob").await;
    let a = alice.subscribe("containers.c1.logs", Dict::new()).await;
    let b = bob.subscribe("containers.c1.logs", Dict::new()).await;

    publish(&mut controller, "containers.c1.logs", vec!["line 1".into()]).await;
    assert_eq!(event(&mut alice).await, (a, None, vec!["line 1".into()]));
    assert_eq!(event(&mut bob).await, (b, None, vec!["line 1".into()]));

    sql(&db.pool, "delete from grants where tail_id = 'alice' and head_id = 'lab'").await;
    expect_revoked(&mut alice, a).await;
    publish(&mut controller, "containers.c1.logs", vec!["line 2".into()]).await;
    assert_eq!(event(&mut bob).await, (b, None, vec!["line 2".into()]));
    nothing_within(&mut alice, 100).await;
    // Subscribing again is refused now.
    let request = alice.request();
    alice.send(&Message::Subscribe { request, options: Dict::new(), topic: "containers.c1.logs".into() }).await;
    expect_error_for(&mut alice, code::SUBSCRIBE, request, "wamp.error.not_authorized").await;
}

#[tokio::test]
async fn another_path_to_the_object_keeps_the_subscription() {
    let db = support::postgres::Postgres::shared().fresh_db().await;
    lab(&db.pool).await;
    sql(&db.pool, "insert into grants (tail_id, head_id, level) values ('alice', 'c1', 1)").await;
    let server = start(&db.url).await;
    let mut controller = service(&server, "controller-1").await;
    let mut alice = user(&server, &db.pool, "alice").await;
    let c1 = alice.subscribe("containers.c1.logs", Dict::new()).await;
    let c2 = alice.subscribe("containers.c2.logs", Dict::new()).await;

    sql(&db.pool, "delete from grants where tail_id = 'alice' and head_id = 'lab'").await;
    // c2 was readable only through the role; c1 also directly.
    expect_revoked(&mut alice, c2).await;
    publish(&mut controller, "containers.c1.logs", vec!["still".into()]).await;
    assert_eq!(event(&mut alice).await, (c1, None, vec!["still".into()]));
    publish(&mut controller, "containers.c2.logs", vec!["gone".into()]).await;
    nothing_within(&mut alice, 100).await;
}

#[tokio::test]
async fn unsharing_trashing_and_moving_a_project_revoke_every_member_below_it() {
    let db = support::postgres::Postgres::shared().fresh_db().await;
    lab(&db.pool).await;
    let server = start(&db.url).await;
    let mut alice = user(&server, &db.pool, "alice").await;
    let mut bob = user(&server, &db.pool, "bob").await;

    // Unsharing the project with the role: both members lose both containers.
    let subs = [alice.subscribe("containers.c1.logs", Dict::new()).await, alice.subscribe("containers.c2.events", Dict::new()).await];
    let bsub = bob.subscribe("containers.c1.logs", Dict::new()).await;
    sql(&db.pool, "delete from grants where tail_id = 'lab' and head_id = 'p1'").await;
    let mut revoked = vec![revoked_id(&mut alice).await, revoked_id(&mut alice).await];
    revoked.sort();
    let mut expected = subs.to_vec();
    expected.sort();
    assert_eq!(revoked, expected);
    expect_revoked(&mut bob, bsub).await;

    // Shared again, then trashed: nothing below a trashed project is readable.
    sql(&db.pool, "insert into grants (tail_id, head_id, level) values ('lab', 'p1', 1)").await;
    settle(&server, &db.pool).await;
    let s = alice.subscribe("containers.c1.logs", Dict::new()).await;
    sql(&db.pool, "update principals set trashed = true where id = 'p1'").await;
    expect_revoked(&mut alice, s).await;

    // Untrashed, then moved to another owner (a project of carol's, not shared): the
    // containers go with it, out of the role's reach.
    sql(&db.pool, "update principals set trashed = false where id = 'p1'").await;
    settle(&server, &db.pool).await;
    let s = alice.subscribe("containers.c2.logs", Dict::new()).await;
    sql(&db.pool, "insert into principals (id, kind, owner_id) values ('p9', 'project', 'carol');
                   update objects set owner_id = 'p9' where id in ('c1', 'c2')").await;
    expect_revoked(&mut alice, s).await;
}

async fn revoked_id(c: &mut Client) -> u64 {
    match c.recv().await {
        Message::Unsubscribed { request: 0, details: Some(d) } => d["subscription"].as_u64().unwrap(),
        other => panic!("expected UNSUBSCRIBED 0, got {other:?}"),
    }
}

#[tokio::test]
async fn role_chains_cycles_and_manage_on_a_user() {
    let db = support::postgres::Postgres::shared().fresh_db().await;
    lab(&db.pool).await;
    // dave reaches p1 through r2 → r3 → lab (a cycle r3 → r2 too); erin manages bob.
    sql(&db.pool, "insert into principals (id, kind) values ('dave', 'user'), ('erin', 'user'), ('r2', 'role'), ('r3', 'role');
                   insert into grants (tail_id, head_id, level) values ('dave', 'r2', 2), ('r2', 'r3', 3), ('r3', 'r2', 3), ('r3', 'lab', 2), ('erin', 'bob', 3)").await;
    let server = start(&db.url).await;
    let mut dave = user(&server, &db.pool, "dave").await;
    let mut erin = user(&server, &db.pool, "erin").await;
    let d = dave.subscribe("containers.c1.logs", Dict::new()).await;
    let e = erin.subscribe("containers.c2.logs", Dict::new()).await;
    // Manage on bob gives erin bob's read; read on bob would give nothing.
    sql(&db.pool, "update grants set level = 1 where tail_id = 'erin' and head_id = 'bob'").await;
    expect_revoked(&mut erin, e).await;
    // Breaking the chain in the middle (the cycle does not keep it alive).
    sql(&db.pool, "delete from grants where tail_id = 'r3' and head_id = 'lab'").await;
    expect_revoked(&mut dave, d).await;
}

#[tokio::test]
async fn read_via_removed_revokes_the_container() {
    let db = support::postgres::Postgres::shared().fresh_db().await;
    lab(&db.pool).await;
    // c3 is carol's; alice reads it because request q1 (in p1) uses it.
    sql(&db.pool, "insert into objects (id, kind, owner_id) values ('q1', 'request', 'p1');
                   insert into read_via (object_id, via_id) values ('c3', 'q1')").await;
    let server = start(&db.url).await;
    let mut alice = user(&server, &db.pool, "alice").await;
    let s = alice.subscribe("containers.c3.logs", Dict::new()).await;
    // Read through a request is read only: publishing needs write.
    let request = alice.publish("containers.c3.logs", ack(), vec![]).await;
    expect_error_for(&mut alice, code::PUBLISH, request, "wamp.error.not_authorized").await;
    sql(&db.pool, "delete from read_via where object_id = 'c3'").await;
    expect_revoked(&mut alice, s).await;
}

#[tokio::test]
async fn a_write_to_read_downgrade_keeps_the_subscription_and_refuses_the_next_publish() {
    let db = support::postgres::Postgres::shared().fresh_db().await;
    lab(&db.pool).await;
    sql(&db.pool, "update grants set level = 2 where tail_id = 'lab' and head_id = 'p1';
                   update grants set level = 2 where tail_id = 'alice' and head_id = 'lab'").await;
    let server = start(&db.url).await;
    let mut alice = user(&server, &db.pool, "alice").await;
    let mut bob = user(&server, &db.pool, "bob").await;
    let s = bob.subscribe("containers.c1.logs", Dict::new()).await;
    let own = alice.subscribe("containers.c1.logs", dict([("match", "exact".into())])).await;
    let r = alice.publish("containers.c1.logs", dict([("acknowledge", true.into()), ("exclude_me", false.into())]), vec!["w".into()]).await;
    let mut got = vec![alice.recv().await, alice.recv().await];
    got.sort_by_key(|m| m.name());
    assert!(matches!(&got[0], Message::Event { subscription, .. } if *subscription == own), "{got:?}");
    assert!(matches!(&got[1], Message::Published { request, .. } if *request == r), "{got:?}");
    assert_eq!(event(&mut bob).await, (s, None, vec!["w".into()]));

    sql(&db.pool, "update grants set level = 1 where tail_id = 'alice' and head_id = 'lab'").await;
    settle(&server, &db.pool).await;
    let request = alice.publish("containers.c1.logs", ack(), vec!["late".into()]).await;
    expect_error_for(&mut alice, code::PUBLISH, request, "wamp.error.not_authorized").await;
    nothing_within(&mut bob, 50).await;
    // Still subscribed: a controller's line reaches alice.
    let mut controller = service(&server, "controller-1").await;
    publish(&mut controller, "containers.c1.logs", vec!["read".into()]).await;
    assert_eq!(event(&mut alice).await, (own, None, vec!["read".into()]));
}

#[tokio::test]
async fn a_revoked_registration_cancels_its_calls() {
    // Registrations are guarded like subscriptions when a rule gives `register` a level.
    let db = support::postgres::Postgres::shared().fresh_db().await;
    lab(&db.pool).await;
    let mut cfg = config(&db.url);
    let rules = &mut cfg.realms[0].graph.as_mut().unwrap().policy.rules;
    rules.push(PolicyRule {
        template: vec![Some("containers".into()), None, Some("inspect".into())],
        publish: Requirement::default(),
        subscribe: Requirement::default(),
        call: Requirement { level: Some(LevelName::Read), roles: vec![] },
        register: Requirement { level: Some(LevelName::Read), roles: vec![] },
    });
    let server = Server::start(&cfg).await.unwrap();
    wait_online(&server).await;
    let mut alice = user(&server, &db.pool, "alice").await;
    let mut bob = user(&server, &db.pool, "bob").await;
    let reg = alice.register("containers.c1.inspect").await;
    let request = call(&mut bob, "containers.c1.inspect", Dict::new(), vec![]).await;
    let _ = common::invocation(&mut alice).await;
    sql(&db.pool, "delete from grants where tail_id = 'alice' and head_id = 'lab'").await;
    common::expect_error(&mut bob, request, "wamp.error.canceled").await;
    match alice.recv().await {
        Message::Unregistered { request: 0, details: Some(d) } => {
            assert_eq!(d, dict([("registration", Value::UInt(reg)), ("reason", "wamp.error.not_authorized".into())]))
        }
        other => panic!("expected UNREGISTERED 0, got {other:?}"),
    }
}
