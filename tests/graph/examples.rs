//! The platform's cases, each with exact levels: role membership, project sharing,
//! ownership chains, manage on a user, trash, disabled users, admins, cycles and
//! `read_via`.

use switchyard::auth::graph::Level::{Manage, None as NoLevel, Read, Write};
use switchyard::auth::graph::{GraphStore, Standing};

use crate::support::postgres::Postgres;
use crate::{assert_levels, sql};

async fn graph(rows: &str) -> (crate::support::postgres::TestDb, GraphStore) {
    let db = Postgres::shared().fresh_db().await;
    sql(&db.pool, rows).await;
    let store = db.store();
    (db, store)
}

#[tokio::test]
async fn a_role_gives_its_members_the_weaker_of_membership_and_its_grant() {
    let (_db, s) = graph(
        "insert into principals (id, kind) values
             ('sys', 'user'), ('alice', 'user'), ('bob', 'user'), ('carol', 'user'), ('staff', 'role');
         insert into objects values ('doc', 'file', 'sys'), ('report', 'file', 'sys');
         insert into grants values ('alice', 'staff', 2), ('bob', 'staff', 1), ('staff', 'doc', 3), ('staff', 'report', 1);",
    )
    .await;
    assert_levels(
        &s,
        &[
            ("alice", "staff", Write),
            ("alice", "doc", Write),
            ("alice", "report", Read),
            ("bob", "staff", Read),
            ("bob", "doc", Read),
            ("bob", "report", Read),
            ("carol", "staff", NoLevel),
            ("carol", "doc", NoLevel),
            ("sys", "doc", Manage),
            // A role holds no permissions of its own: only users do.
            ("staff", "doc", NoLevel),
        ],
    )
    .await;
    assert_eq!(s.closure("staff").await.unwrap().standing(), Standing::NotAUser(switchyard::auth::graph::PrincipalKind::Role));
    assert_eq!(s.closure("nobody").await.unwrap().standing(), Standing::Unknown);
}

#[tokio::test]
async fn a_shared_project_shares_everything_it_owns() {
    let (_db, s) = graph(
        "insert into principals (id, kind) values ('alice', 'user'), ('bob', 'user'), ('carol', 'user'), ('eng', 'role');
         insert into principals (id, kind, owner_id) values ('proj', 'project', 'alice'), ('sub', 'project', 'proj');
         insert into objects values ('data', 'file', 'proj'), ('subdata', 'file', 'sub');
         insert into grants values ('eng', 'proj', 1), ('bob', 'eng', 3), ('carol', 'proj', 2);",
    )
    .await;
    assert_levels(
        &s,
        &[
            ("alice", "proj", Manage),
            ("alice", "data", Manage),
            ("alice", "sub", Manage),
            ("alice", "subdata", Manage),
            ("bob", "eng", Manage),
            ("bob", "proj", Read),
            ("bob", "data", Read),
            ("bob", "subdata", Read),
            ("carol", "proj", Write),
            ("carol", "sub", Write),
            ("carol", "subdata", Write),
            ("carol", "eng", NoLevel),
        ],
    )
    .await;
}

#[tokio::test]
async fn ownership_chains_give_manage_all_the_way_down() {
    let (_db, s) = graph(
        "insert into principals (id, kind) values ('alice', 'user'), ('dave', 'user');
         insert into principals (id, kind, owner_id) values
             ('p1', 'project', 'alice'), ('p2', 'project', 'p1'), ('p3', 'project', 'p2');
         insert into objects values ('o', 'file', 'p3');
         insert into grants values ('dave', 'p2', 2);",
    )
    .await;
    assert_levels(
        &s,
        &[
            ("alice", "p3", Manage),
            ("alice", "o", Manage),
            ("dave", "p1", NoLevel),
            ("dave", "p2", Write),
            ("dave", "p3", Write),
            ("dave", "o", Write),
        ],
    )
    .await;
}

#[tokio::test]
async fn manage_on_a_user_gives_its_permissions_and_less_gives_nothing_beyond_it() {
    let (_db, s) = graph(
        "insert into principals (id, kind) values
             ('alice', 'user'), ('bob', 'user'), ('carol', 'user'), ('erin', 'user'), ('frank', 'user');
         insert into objects values ('bobs_doc', 'file', 'bob'), ('shared', 'file', 'erin');
         insert into grants values
             ('bob', 'shared', 1), ('alice', 'bob', 3), ('carol', 'bob', 1), ('erin', 'bob', 2), ('frank', 'alice', 3);",
    )
    .await;
    assert_levels(
        &s,
        &[
            ("alice", "bob", Manage),
            ("alice", "bobs_doc", Manage),
            ("alice", "shared", Read),
            ("carol", "bob", Read),
            ("carol", "bobs_doc", NoLevel),
            ("carol", "shared", NoLevel),
            ("erin", "bob", Write),
            ("erin", "bobs_doc", NoLevel),
            ("erin", "shared", Manage),
            // Manage on a user who manages a user.
            ("frank", "bob", Manage),
            ("frank", "bobs_doc", Manage),
        ],
    )
    .await;
}

#[tokio::test]
async fn a_trashed_project_or_role_gives_nothing_below_it() {
    let (_db, s) = graph(
        "insert into principals (id, kind) values ('alice', 'user'), ('bob', 'user'), ('carol', 'user'), ('r', 'role');
         insert into principals (id, kind, trashed) values ('gone', 'role', true);
         insert into principals (id, kind, owner_id, trashed) values ('bin', 'project', 'alice', true);
         insert into principals (id, kind, owner_id) values ('sub', 'project', 'bin');
         insert into objects values ('inside', 'file', 'bin'), ('deep', 'file', 'sub'), ('doc', 'file', 'alice');
         insert into grants values ('r', 'bin', 3), ('bob', 'r', 3), ('bin', 'doc', 2), ('carol', 'gone', 2), ('gone', 'doc', 3);",
    )
    .await;
    assert_levels(
        &s,
        &[
            // Its own level is still computed.
            ("alice", "bin", Manage),
            ("alice", "inside", NoLevel),
            ("alice", "sub", NoLevel),
            ("alice", "deep", NoLevel),
            ("alice", "doc", Manage),
            ("bob", "bin", Manage),
            ("bob", "inside", NoLevel),
            ("bob", "doc", NoLevel),
            ("carol", "gone", Write),
            ("carol", "doc", NoLevel),
        ],
    )
    .await;
}

#[tokio::test]
async fn a_disabled_user_has_nothing_and_passes_nothing_on() {
    let (_db, s) = graph(
        "insert into principals (id, kind, disabled) values ('alice', 'user', true);
         insert into principals (id, kind) values ('bob', 'user');
         insert into objects values ('doc', 'file', 'alice');
         insert into grants values ('bob', 'alice', 3);",
    )
    .await;
    assert_levels(
        &s,
        &[("alice", "alice", NoLevel), ("alice", "doc", NoLevel), ("bob", "alice", Manage), ("bob", "doc", NoLevel)],
    )
    .await;
    assert_eq!(s.closure("alice").await.unwrap().standing(), Standing::Disabled);
}

#[tokio::test]
async fn an_admin_manages_everything_unless_disabled() {
    let (_db, s) = graph(
        "insert into principals (id, kind, is_admin) values ('root', 'user', true), ('admins', 'role', true);
         insert into principals (id, kind, is_admin, disabled) values ('off', 'user', true, true);
         insert into principals (id, kind) values ('alice', 'user'), ('bob', 'user');
         insert into objects values ('doc', 'file', 'bob');
         insert into grants values ('alice', 'admins', 3);",
    )
    .await;
    assert_levels(
        &s,
        &[
            ("root", "root", Manage),
            ("root", "doc", Manage),
            ("root", "alice", Manage),
            ("root", "no-such-id", Manage),
            ("off", "off", NoLevel),
            ("off", "doc", NoLevel),
            // An admin role makes no admins of its members.
            ("alice", "doc", NoLevel),
            ("alice", "admins", Manage),
        ],
    )
    .await;
}

#[tokio::test]
async fn cycles_of_roles_and_of_owners_end() {
    let (_db, s) = graph(
        "insert into principals (id, kind) values
             ('alice', 'user'), ('bob', 'user'), ('carol', 'user'), ('r1', 'role'), ('r2', 'role'),
             ('p1', 'project'), ('p2', 'project');
         update principals set owner_id = 'p2' where id = 'p1';
         update principals set owner_id = 'p1' where id = 'p2';
         insert into objects values ('doc', 'file', 'carol'), ('memo', 'file', 'carol'), ('plan', 'file', 'p2');
         insert into grants values
             ('r1', 'r2', 3), ('r2', 'r1', 2), ('alice', 'r1', 3), ('bob', 'r2', 1), ('r2', 'doc', 3), ('r1', 'memo', 2),
             ('carol', 'p1', 2);",
    )
    .await;
    assert_levels(
        &s,
        &[
            ("alice", "r1", Manage),
            ("alice", "r2", Manage),
            ("alice", "doc", Manage),
            ("alice", "memo", Write),
            ("bob", "r2", Read),
            ("bob", "r1", Read),
            ("bob", "doc", Read),
            ("bob", "memo", Read),
            ("carol", "p1", Write),
            ("carol", "p2", Write),
            ("carol", "plan", Write),
        ],
    )
    .await;
}

#[tokio::test]
async fn read_via_gives_read_through_a_request_a_principal_and_a_cycle() {
    let (_db, s) = graph(
        "insert into principals (id, kind) values
             ('sys', 'user'), ('alice', 'user'), ('bob', 'user'), ('carol', 'user'), ('erin', 'user'), ('frank', 'user');
         insert into principals (id, kind, trashed) values ('team', 'role', true);
         insert into objects values
             ('request', 'container_request', 'alice'), ('container', 'container', 'sys'), ('log', 'file', 'sys'),
             ('o1', 'file', 'sys'), ('o2', 'file', 'sys'), ('o3', 'file', 'erin');
         insert into read_via values
             ('container', 'request'), ('log', 'container'), ('container', 'team'),
             ('o1', 'o2'), ('o2', 'o1'), ('o2', 'o3');
         insert into grants values ('carol', 'team', 1), ('erin', 'o1', 2);",
    )
    .await;
    assert_levels(
        &s,
        &[
            // Manage on the request is read on the container, and on its log through it.
            ("alice", "request", Manage),
            ("alice", "container", Read),
            ("alice", "log", Read),
            ("bob", "container", NoLevel),
            ("bob", "log", NoLevel),
            // Reading the via is enough, even a trashed role that passes nothing on.
            ("carol", "container", Read),
            ("carol", "log", Read),
            ("carol", "request", NoLevel),
            // o1 and o2 are readable through each other and through o3.
            ("erin", "o3", Manage),
            ("erin", "o2", Read),
            ("erin", "o1", Write),
            ("frank", "o1", NoLevel),
            ("frank", "o2", NoLevel),
        ],
    )
    .await;
}
