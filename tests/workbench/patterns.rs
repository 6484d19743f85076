//! A prefix subscription over protected topics: allowed, and each event reaches only
//! those who may read its object, decided from memory.

use super::*;

#[tokio::test]
async fn a_prefix_subscription_gets_only_readable_objects_and_survives_a_revocation() {
    let db = support::postgres::Postgres::shared().fresh_db().await;
    lab(&db.pool).await;
    let server = start(&db.url).await;
    let mut controller = service(&server, "controller-1").await;
    let mut alice = user(&server, &db.pool, "alice").await;
    let mut dispatcher = service(&server, "dispatcher-1").await;
    let all = alice.subscribe("containers.", dict([("match", "prefix".into())])).await;
    let events = dispatcher.subscribe("containers..events", dict([("match", "wildcard".into())])).await;

    for (topic, line) in [("containers.c1.events", "queued"), ("containers.c3.events", "secret"), ("containers.c2.logs", "hello"), ("containers.c3.logs", "hidden")] {
        publish(&mut controller, topic, vec![line.into()]).await;
    }
    assert_eq!(event(&mut alice).await, (all, Some("containers.c1.events".into()), vec!["queued".into()]));
    assert_eq!(event(&mut alice).await, (all, Some("containers.c2.logs".into()), vec!["hello".into()]));
    nothing_within(&mut alice, 50).await;
    // The dispatcher's role reads every container's events, and no logs.
    assert_eq!(event(&mut dispatcher).await, (events, Some("containers.c1.events".into()), vec!["queued".into()]));
    assert_eq!(event(&mut dispatcher).await, (events, Some("containers.c3.events".into()), vec!["secret".into()]));
    nothing_within(&mut dispatcher, 50).await;

    // c2 is moved out of alice's reach: its events stop; the subscription stays.
    sql(&db.pool, "update objects set owner_id = 'carol' where id = 'c2'").await;
    settle(&server, &db.pool).await;
    publish(&mut controller, "containers.c2.logs", vec!["after".into()]).await;
    publish(&mut controller, "containers.c1.logs", vec!["still".into()]).await;
    assert_eq!(event(&mut alice).await, (all, Some("containers.c1.logs".into()), vec!["still".into()]));
    nothing_within(&mut alice, 50).await;
}
