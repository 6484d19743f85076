//! The database lost under the router: it fails closed, holds guarded events, and
//! catches up with every change made meanwhile before deciding again.

use super::*;
use common::expect_error_for;
use switchyard::wamp::message::code;

#[tokio::test]
async fn the_database_lost_mid_stream_and_mid_revocation() {
    let pg = support::postgres::Postgres::throwaway();
    let db = pg.fresh_db().await;
    lab(&db.pool).await;
    let server = start(&db.url).await;
    let mut controller = service(&server, "controller-1").await;
    let mut alice = user(&server, &db.pool, "alice").await;
    let mut bob = user(&server, &db.pool, "bob").await;
    let a = alice.subscribe("containers.c1.logs", Dict::new()).await;
    let b = bob.subscribe("containers.c1.logs", Dict::new()).await;
    publish(&mut controller, "containers.c1.logs", vec![1.into()]).await;
    assert_eq!(event(&mut alice).await, (a, None, vec![1.into()]));
    assert_eq!(event(&mut bob).await, (b, None, vec![1.into()]));

    // A revocation committed, and the database dies before (or while) it is applied.
    sql(&db.pool, "delete from grants where tail_id = 'alice' and head_id = 'lab'").await;
    pg.stop_immediately();
    db.pool.close().await;
    // Until the router has caught up, it decides nothing from the graph.
    for _ in 0..500 {
        if metric_text(&server).contains("switchyard_graph_online{realm=\"workbench\"} 0") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let held_before = common::metric(&server, "events_held");
    publish(&mut controller, "containers.c1.logs", vec![2.into()]).await;
    nothing_within(&mut bob, 100).await;
    assert!(common::metric(&server, "events_held") > held_before);
    let request = bob.request();
    bob.send(&Message::Subscribe { request, options: Dict::new(), topic: "containers.c2.logs".into() }).await;
    expect_error_for(&mut bob, code::SUBSCRIBE, request, "wamp.error.authorization_failed").await;

    pg.start();
    wait_online(&server).await;
    // Caught up (or applied before the database died): alice is revoked, bob reads again.
    expect_revoked(&mut alice, a).await;
    publish(&mut controller, "containers.c1.logs", vec![3.into()]).await;
    assert_eq!(event(&mut bob).await, (b, None, vec![3.into()]));
    nothing_within(&mut alice, 100).await;
}
