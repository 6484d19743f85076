//! The `[replay]` table of a realm: a full table parsed into the exact struct, the
//! defaults, every validation error with its position, the database URL resolution and
//! the shipped realm files' rules.

use std::path::Path;
use std::time::Duration;

use super::{err, errors, parse, temp_dir, write, MAIN};
use crate::config::{Config, GraphConfig, PolicyConfig, RealmConfig, ReplayConfig, TopicRetention};
use crate::wamp::uri::MatchPolicy;

/// Lines 1-2 of the tests below: a valid realm, so only the table under test shows.
const REALM: &str = "[[realms]]\nname = \"realm1\"\n";

/// The replay configuration of the single realm of `text`.
fn replay(text: &str) -> ReplayConfig {
    let mut c = parse(text).unwrap_or_else(|e| panic!("{e}"));
    c.realms.remove(0).replay
}

fn rule(uri: &str, policy: MatchPolicy, max_events: usize) -> TopicRetention {
    TopicRetention {
        uri: uri.to_string(),
        policy,
        max_events,
        max_age: None,
        max_bytes: None,
        durable: false,
    }
}

#[test]
fn a_full_table_in_file_order() {
    let text = format!(
        "{REALM}[realms.replay]\nbudget_bytes = 2097152\n\
         database_url = \"postgres://u:pw@db/events\"\n\
         [[realms.replay.topics]]\nuri = \"containers..logs\"\nmatch = \"wildcard\"\n\
         max_events = 10000\nmax_age_secs = 86400\nmax_bytes = 8192\ndurable = false\n\
         [[realms.replay.topics]]\nuri = \"containers.\"\nmatch = \"prefix\"\ndurable = true\n\
         [[realms.replay.topics]]\nuri = \"records.R1.changes\"\nmax_events = 1\n"
    );
    assert_eq!(
        replay(&text),
        ReplayConfig {
            budget_bytes: 2_097_152,
            database_url: Some("postgres://u:pw@db/events".to_string()),
            topics: vec![
                TopicRetention {
                    uri: "containers..logs".to_string(),
                    policy: MatchPolicy::Wildcard,
                    max_events: 10_000,
                    max_age: Some(Duration::from_secs(86_400)),
                    max_bytes: Some(8192),
                    durable: false,
                },
                TopicRetention {
                    durable: true,
                    ..rule("containers.", MatchPolicy::Prefix, 1000)
                },
                rule("records.R1.changes", MatchPolicy::Exact, 1),
            ],
        }
    );
}

#[test]
fn defaults() {
    // No [replay]: nothing stored.
    assert_eq!(replay(REALM), ReplayConfig::none());
    assert_eq!(
        ReplayConfig::none(),
        ReplayConfig {
            budget_bytes: 67_108_864,
            database_url: None,
            topics: vec![],
        }
    );
    // An empty [replay]: the same.
    assert_eq!(replay(&format!("{REALM}[realms.replay]\n")), ReplayConfig::none());
    // A rule with only its URI: exact, 1000 events, no age or byte limit, memory.
    assert_eq!(
        replay(&format!("{REALM}[[realms.replay.topics]]\nuri = \"a.b\"\n")),
        ReplayConfig {
            budget_bytes: 67_108_864,
            database_url: None,
            topics: vec![rule("a.b", MatchPolicy::Exact, 1000)],
        }
    );
    // The bounds themselves are accepted.
    let text = format!(
        "{REALM}[realms.replay]\nbudget_bytes = 1048576\n[[realms.replay.topics]]\nuri = \"a\"\n\
         max_events = 10000000\nmax_age_secs = 1\nmax_bytes = 1024\n"
    );
    assert_eq!(
        replay(&text),
        ReplayConfig {
            budget_bytes: 1_048_576,
            database_url: None,
            topics: vec![TopicRetention {
                max_age: Some(Duration::from_secs(1)),
                max_bytes: Some(1024),
                ..rule("a", MatchPolicy::Exact, 10_000_000)
            }],
        }
    );
}

#[test]
fn the_embedded_default_realm_stores_everything() {
    let realm = Config::default().realms.remove(0);
    assert_eq!(realm.replay, ReplayConfig::store_everything());
    assert_eq!(
        ReplayConfig::store_everything(),
        ReplayConfig {
            budget_bytes: 67_108_864,
            database_url: None,
            topics: vec![rule("", MatchPolicy::Prefix, 1000)],
        }
    );
    assert!(!realm.replay.any_durable());
}

#[test]
fn numbers_out_of_range() {
    let text = format!(
        "{REALM}[realms.replay]\nbudget_bytes = 1048575\n\
         [[realms.replay.topics]]\nuri = \"a\"\nmax_events = 0\nmax_age_secs = 0\nmax_bytes = 1023\n\
         [[realms.replay.topics]]\nuri = \"b\"\nmax_events = 10000001\nmax_age_secs = -5\nmax_bytes = -1\n"
    );
    assert_eq!(
        errors(&text),
        vec![
            err(MAIN, 4, 16, "`budget_bytes` must be at least 1048576, got 1048575"),
            err(MAIN, 7, 14, "`max_events` must be between 1 and 10000000, got 0"),
            err(MAIN, 8, 16, "`max_age_secs` must be at least 1, got 0"),
            err(MAIN, 9, 13, "`max_bytes` must be at least 1024, got 1023"),
            err(MAIN, 12, 14, "`max_events` must be between 1 and 10000000, got 10000001"),
            err(MAIN, 13, 16, "`max_age_secs` must be at least 1, got -5"),
            err(MAIN, 14, 13, "`max_bytes` must be at least 1024, got -1"),
        ]
    );
}

#[test]
fn topic_bytes_above_the_realm_budget() {
    let text = format!(
        "{REALM}[realms.replay]\nbudget_bytes = 2000000\n\
         [[realms.replay.topics]]\nuri = \"a\"\nmax_bytes = 2000001\n"
    );
    assert_eq!(
        errors(&text),
        vec![err(
            MAIN,
            7,
            13,
            "`max_bytes` (2000001) must not be larger than the realm's `budget_bytes` (2000000)"
        )]
    );
    // Against the default budget when none is written.
    let text = format!("{REALM}[[realms.replay.topics]]\nuri = \"a\"\nmax_bytes = 67108865\n");
    assert_eq!(
        errors(&text),
        vec![err(
            MAIN,
            5,
            13,
            "`max_bytes` (67108865) must not be larger than the realm's `budget_bytes` (67108864)"
        )]
    );
    // An invalid budget is one error, not one more per rule.
    let text = format!(
        "{REALM}[realms.replay]\nbudget_bytes = 0\n\
         [[realms.replay.topics]]\nuri = \"a\"\nmax_bytes = 67108865\n"
    );
    assert_eq!(
        errors(&text),
        vec![err(MAIN, 4, 16, "`budget_bytes` must be at least 1048576, got 0")]
    );
}

#[test]
fn uris_match_policies_and_reserved_topics() {
    let text = format!(
        "{REALM}[realms.replay]\ntopics = [\n\
         \x20 {{ uri = \"com..x\" }},\n\
         \x20 {{ uri = \"com.x\", match = \"regex\" }},\n\
         \x20 {{ uri = \"a. .b\", match = \"wildcard\" }},\n\
         \x20 {{ uri = \"wamp.session.on_join\" }},\n\
         \x20 {{ uri = \"wamp.\", match = \"prefix\" }},\n\
         \x20 {{ uri = \"wamp..x\" }},\n\
         \x20 {{ uri = \"wampum.x\" }},\n\
         \x20 {{ uri = \"Com.X\" }},\n\
         ]\n"
    );
    let reserved = |uri: &str| {
        format!("topic `{uri}` is reserved (`wamp.` URIs belong to the protocol) and cannot be stored")
    };
    assert_eq!(
        errors(&text),
        vec![
            err(MAIN, 5, 11, "URI `com..x` is not valid for match policy `exact`"),
            err(MAIN, 6, 28, "unknown match policy `regex`, expected `exact`, `prefix` or `wildcard`"),
            err(MAIN, 7, 11, "URI `a. .b` is not valid for match policy `wildcard`"),
            err(MAIN, 8, 11, &reserved("wamp.session.on_join")),
            err(MAIN, 9, 11, &reserved("wamp.")),
            // Invalid and reserved: the first is enough.
            err(MAIN, 10, 11, "URI `wamp..x` is not valid for match policy `exact`"),
        ]
    );
}

#[test]
fn a_rule_repeated_would_never_apply() {
    let text = format!(
        "{REALM}[[realms.replay.topics]]\nuri = \"a.\"\nmatch = \"prefix\"\n\
         [[realms.replay.topics]]\nuri = \"a.\"\nmatch = \"wildcard\"\n\
         [[realms.replay.topics]]\nuri = \"a.\"\nmatch = \"prefix\"\nmax_events = 5\n"
    );
    assert_eq!(
        errors(&text),
        vec![err(
            MAIN,
            10,
            7,
            "duplicate rule for `a.` (match `prefix`), first on line 4: it would never apply"
        )]
    );
}

#[test]
fn database_urls() {
    let text = format!(
        "{REALM}[realms.replay]\ndatabase_url = \"\"\n\
         [[realms.replay.topics]]\nuri = \"a\"\ndurable = true\n"
    );
    assert_eq!(
        errors(&text),
        vec![err(
            MAIN,
            4,
            16,
            "database_url must not be empty: leave it out to use the realm's [graph] database, \
             else SWITCHYARD_DATABASE_URL or DATABASE_URL"
        )]
    );
    let text = format!("{REALM}[realms.replay]\ndatabase_url = \"mysql://db\"\n");
    assert_eq!(
        errors(&text),
        vec![err(MAIN, 4, 16, "database_url must be a postgres:// or postgresql:// URL")]
    );
    // A durable rule with no URL in the file is accepted, as for [graph]: the
    // environment may supply one at start.
    let text = format!("{REALM}[[realms.replay.topics]]\nuri = \"a\"\ndurable = true\n");
    let r = replay(&text);
    assert_eq!((r.database_url.as_deref(), r.any_durable()), (None, true));
}

#[test]
fn unknown_keys() {
    let text = format!("{REALM}retention = 1\n");
    assert_eq!(
        errors(&text),
        vec![err(
            MAIN,
            3,
            1,
            "unknown key `retention`, expected one of `name`, `anonymous`, `roles`, `principals`, `graph`, `replay`, `limits`"
        )]
    );
    let text = format!("{REALM}[realms.replay]\nbudget = 1\n");
    assert_eq!(
        errors(&text),
        vec![err(
            MAIN,
            4,
            1,
            "unknown key `budget`, expected one of `budget_bytes`, `database_url`, `topics`"
        )]
    );
    let text = format!("{REALM}[[realms.replay.topics]]\nuri = \"a\"\nmax_age = 5\n");
    assert_eq!(
        errors(&text),
        vec![err(
            MAIN,
            5,
            1,
            "unknown key `max_age`, expected one of `uri`, `match`, `max_events`, `max_age_secs`, `max_bytes`, `durable`"
        )]
    );
}

#[test]
fn the_replay_database_is_the_realms_own_else_the_graphs() {
    let graph = GraphConfig {
        database_url: Some("postgres://graph".into()),
        migrate: false,
        cache_principals: 1,
        cache_objects: 1,
        policy: PolicyConfig { file: "p.toml".into(), rules: vec![] },
    };
    let mut realm = RealmConfig {
        graph: Some(graph),
        ..Config::default().realms.remove(0)
    };
    assert_eq!(realm.replay_database_url().as_deref(), Some("postgres://graph"));
    realm.replay.database_url = Some("postgres://replay".into());
    assert_eq!(realm.replay_database_url().as_deref(), Some("postgres://replay"));
}

#[test]
fn debug_hides_the_database_url() {
    let r = ReplayConfig {
        database_url: Some("postgres://u:s3cret@db/x".into()),
        ..ReplayConfig::none()
    };
    let shown = format!("{r:?}");
    assert!(shown.contains("<redacted>") && !shown.contains("s3cret"), "{shown}");
}

#[test]
fn the_shipped_workbench_realm_stores_its_topics() {
    let shipped = Path::new(env!("CARGO_MANIFEST_DIR")).join("switchyard.toml");
    let mut c = Config::load(&shipped).unwrap_or_else(|e| panic!("shipped config invalid:\n{e}"));
    let workbench = c.realms.pop().expect("two realms");
    assert_eq!(workbench.name, "workbench");
    let expected = ReplayConfig {
        budget_bytes: 67_108_864,
        database_url: None,
        topics: vec![
            TopicRetention {
                max_age: Some(Duration::from_secs(86_400)),
                ..rule("containers..logs", MatchPolicy::Wildcard, 10_000)
            },
            TopicRetention {
                durable: true,
                ..rule("containers..events", MatchPolicy::Wildcard, 1000)
            },
            rule("records..changes", MatchPolicy::Wildcard, 100),
        ],
    };
    assert_eq!(workbench.replay, expected);
    // realm1, written out, stores everything like the embedded realm.
    assert_eq!(c.realms[0].replay, ReplayConfig::store_everything());
    // The interop suites' copy of the realm keeps the same rules; their harness lays it
    // out like the shipped files.
    let clients = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/interop");
    let read = |name: &str| std::fs::read_to_string(clients.join(name)).expect("tests/interop file");
    let dir = temp_dir("replay-clients-workbench");
    write(&dir.join("switchyard.toml"), "realms_dir = \"realms\"\n");
    write(&dir.join("realms/workbench.toml"), &read("workbench-realm.toml"));
    write(&dir.join("policies/workbench.toml"), &read("workbench-policy.toml"));
    let c = Config::load(&dir.join("switchyard.toml")).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(c.realms[0].replay, expected);
}
