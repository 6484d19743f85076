//! Tests of the configuration module: defaults, a full round trip, the shipped example
//! files, and (in the submodules) every validation error and multi-file loading.

mod credentials;
mod errors;
mod files;
mod replay;
mod tls;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::*;

/// Main-file path used by tests that do not touch the disk.
pub(super) const MAIN: &str = "conf/switchyard.toml";

/// Parses `text` as the main file `MAIN`.
pub(super) fn parse(text: &str) -> Result<Config, ConfigErrors> {
    Config::from_str(text, Path::new(MAIN))
}

/// The errors `text` produces, or a panic naming the unexpected success.
pub(super) fn errors(text: &str) -> Vec<ConfigError> {
    match parse(text) {
        Ok(config) => panic!("expected errors, got {config:?}"),
        Err(ConfigErrors(errors)) => errors,
    }
}

pub(super) fn err(
    file: impl Into<PathBuf>,
    line: usize,
    column: usize,
    message: &str,
) -> ConfigError {
    ConfigError {
        file: file.into(),
        line,
        column,
        message: message.to_string(),
    }
}

/// A fresh, empty folder under the system temp dir, unique to this process and test,
/// removed again when the test ends (also when it panics).
pub(super) struct TempDir(PathBuf);

impl std::ops::Deref for TempDir {
    type Target = Path;
    fn deref(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

pub(super) fn temp_dir(test: &str) -> TempDir {
    let dir = std::env::temp_dir().join(format!("switchyard-config-{}-{test}", std::process::id()));
    // Left over only if a previous run with the same pid was killed; fine to ignore.
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create temp dir");
    TempDir(dir)
}

pub(super) fn write(path: &Path, text: &str) {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).expect("create parent dir");
    }
    std::fs::write(path, text).expect("write test file");
}

fn addr(s: &str) -> SocketAddr {
    s.parse().expect("test address")
}

/// A realm file/table granting everything to anonymous, like the default realm.
pub(super) const OPEN_REALM: &str = r#"
name = "realm1"
anonymous = "anonymous"

[[roles]]
name = "anonymous"

[[roles.permissions]]
uri = ""
match = "prefix"
allow = { call = true, register = true, publish = true, subscribe = true }
"#;

#[test]
fn default_config_values() {
    let c = Config::default();
    assert_eq!(c.source, None);
    assert_eq!(c.listen, addr("127.0.0.1:8080"));
    assert_eq!(c.ws_path, "/ws");
    assert_eq!(c.rawsocket, Some(addr("127.0.0.1:8081")));
    assert_eq!(c.unix, None);
    assert_eq!(
        c.log,
        LogConfig {
            format: LogFormat::Text,
            level: "info".to_string()
        }
    );
    let l = &c.limits;
    assert_eq!(l.max_message_size, 16_777_216);
    assert_eq!(l.max_hello_size, 65_536);
    assert_eq!(l.handshake_timeout, Duration::from_secs(5));
    assert_eq!(l.hello_timeout, Duration::from_secs(10));
    assert_eq!(l.frame_timeout, Duration::from_secs(30));
    assert_eq!(l.memory_budget, 268_435_456);
    assert_eq!(l.outbox_messages, 1024);
    assert_eq!(l.outbox_bytes, 8_388_608);
    assert_eq!(l.rpc_outbox_bytes, 67_108_864);
    assert_eq!(l.write_timeout, Duration::from_secs(10));
    assert_eq!(l.ping_interval, Duration::from_secs(30));
    assert_eq!(l.max_sessions, 100_000);
    assert_eq!(l.max_subscriptions_per_session, 10_000);
    assert_eq!(l.max_registrations_per_session, 10_000);
    assert_eq!(l.max_calls_per_session, 1_000);
    assert_eq!(l.max_uri_length, 4096);
    assert_eq!(l.auth_failures_per_minute, 10);
    assert!(l.strict_uris);
    let all = Allow {
        call: true,
        register: true,
        publish: true,
        subscribe: true,
    };
    let expected_realm = RealmConfig {
        name: "realm1".to_string(),
        anonymous: Some("anonymous".to_string()),
        roles: vec![RoleConfig {
            name: "anonymous".to_string(),
            permissions: vec![Permission {
                uri: String::new(),
                match_policy: MatchPolicy::Prefix,
                allow: all,
                disclose: Disclose {
                    caller: false,
                    publisher: false,
                },
            }],
        }],
        principals: vec![],
        graph: None,
        replay: ReplayConfig {
            budget_bytes: 67_108_864,
            database_url: None,
            topics: vec![TopicRetention {
                uri: String::new(),
                policy: MatchPolicy::Prefix,
                max_events: 1000,
                max_age: None,
                max_bytes: None,
                durable: false,
            }],
        },
        limits: Default::default(),
    };
    assert_eq!(c.realms, vec![expected_realm]);
}

#[test]
fn role_lookup() {
    let c = Config::default();
    let realm = &c.realms[0];
    assert_eq!(
        realm.role("anonymous").map(|r| r.name.as_str()),
        Some("anonymous")
    );
    assert_eq!(realm.role("admin"), None);
}

#[test]
fn minimal_file_takes_every_default() {
    let c = parse(&format!("[[realms]]\n{OPEN_REALM}").replace("[[roles", "[[realms.roles"))
        .expect("valid config");
    // A realm written without `[replay]` stores nothing: only the embedded realm, which
    // no operator wrote, stores everything.
    let mut realm = Config::default().realms.remove(0);
    realm.replay = ReplayConfig::none();
    assert_eq!(
        c,
        Config {
            source: Some(PathBuf::from(MAIN)),
            realms: vec![realm],
            ..Config::default()
        }
    );
}

#[test]
fn empty_file_has_no_realm() {
    assert_eq!(
        errors(""),
        vec![err(
            MAIN,
            1,
            1,
            "no realm configured: add a [[realms]] table or set realms_dir"
        )]
    );
}

const FULL: &str = r#"
[transport]
listen = "[::1]:9000"
ws_path = "/wamp"
rawsocket = "off"
unix = "/run/switchyard.sock"

[http]
workbench = false

[limits]
max_message_size = 1000
max_hello_size = 500
handshake_timeout_ms = 700
hello_timeout_ms = 1500
frame_timeout_ms = 900
memory_budget_bytes = 100000
outbox_messages = 10
outbox_bytes = 2000
rpc_outbox_bytes = 3000
write_timeout_ms = 2500
ping_interval_ms = 0
max_sessions = 7
max_subscriptions_per_session = 0
max_registrations_per_session = 3
max_calls_per_session = 4
max_uri_length = 50
auth_failures_per_minute = 6
strict_uris = false

[log]
format = "json"
level = "warn,switchyard=debug"

[[realms]]
name = "com.example.app"

[[realms.roles]]
name = "user"

[[realms.roles.permissions]]
uri = "com.example."
match = "prefix"
allow = { call = true, subscribe = true }
disclose = { caller = true }

[[realms.roles.permissions]]
uri = "com.example..chat"
match = "wildcard"
allow = { publish = true }
disclose = { publisher = true }

[[realms.roles.permissions]]
uri = "com.example.Register"
allow = { register = true }

[[realms.roles]]
name = "nobody"

[[realms.principals]]
authid = "alice"
ticket = "s3cret"
role = "user"

[[realms]]
name = "realm2"
anonymous = "guest"

[[realms.roles]]
name = "guest"
"#;

fn perm(uri: &str, match_policy: MatchPolicy, allow: Allow, disclose: Disclose) -> Permission {
    Permission {
        uri: uri.to_string(),
        match_policy,
        allow,
        disclose,
    }
}

/// The realms of `FULL`, as they must come out.
fn full_realms() -> Vec<RealmConfig> {
    let no = Allow::default();
    let user = RoleConfig {
        name: "user".to_string(),
        permissions: vec![
            perm(
                "com.example.",
                MatchPolicy::Prefix,
                Allow {
                    call: true,
                    subscribe: true,
                    ..no
                },
                Disclose {
                    caller: true,
                    publisher: false,
                },
            ),
            perm(
                "com.example..chat",
                MatchPolicy::Wildcard,
                Allow {
                    publish: true,
                    ..no
                },
                Disclose {
                    caller: false,
                    publisher: true,
                },
            ),
            perm(
                "com.example.Register",
                MatchPolicy::Exact,
                Allow {
                    register: true,
                    ..no
                },
                Disclose::default(),
            ),
        ],
    };
    let alice = PrincipalConfig::ticket("alice", "s3cret", "user");
    let nobody = RoleConfig {
        name: "nobody".to_string(),
        permissions: vec![],
    };
    let guest = RoleConfig {
        name: "guest".to_string(),
        permissions: vec![],
    };
    vec![
        RealmConfig {
            name: "com.example.app".to_string(),
            anonymous: None,
            roles: vec![user, nobody],
            principals: vec![alice],
            graph: None,
            replay: ReplayConfig::none(),
            limits: Default::default(),
        },
        RealmConfig {
            name: "realm2".to_string(),
            anonymous: Some("guest".to_string()),
            roles: vec![guest],
            principals: vec![],
            graph: None,
            replay: ReplayConfig::none(),
            limits: Default::default(),
        },
    ]
}

#[test]
fn full_file_round_trip() {
    let expected = Config {
        source: Some(PathBuf::from(MAIN)),
        listen: addr("[::1]:9000"),
        ws_path: "/wamp".to_string(),
        rawsocket: None,
        unix: Some(PathBuf::from("/run/switchyard.sock")),
        tls: None,
        workbench: false,
        limits: Limits {
            max_message_size: 1000,
            max_hello_size: 500,
            handshake_timeout: Duration::from_millis(700),
            hello_timeout: Duration::from_millis(1500),
            frame_timeout: Duration::from_millis(900),
            memory_budget: 100_000,
            outbox_messages: 10,
            outbox_bytes: 2000,
            rpc_outbox_bytes: 3000,
            write_timeout: Duration::from_millis(2500),
            ping_interval: Duration::ZERO,
            max_sessions: 7,
            max_subscriptions_per_session: 0,
            max_registrations_per_session: 3,
            max_calls_per_session: 4,
            max_uri_length: 50,
            auth_failures_per_minute: 6,
            strict_uris: false,
        },
        log: LogConfig {
            format: LogFormat::Json,
            level: "warn,switchyard=debug".to_string(),
        },
        realms: full_realms(),
    };
    let c = parse(FULL).expect("valid config");
    assert_eq!(c, expected);
    assert_eq!(
        c.realms[0].role("nobody").map(|r| r.permissions.len()),
        Some(0)
    );
}

#[test]
fn shipped_example_files_load_as_the_default() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("switchyard.toml");
    let mut c = Config::load(&path).unwrap_or_else(|e| panic!("shipped config invalid:\n{e}"));
    // Beside realm1, the shipped files serve the workbench realm on the permission graph.
    let workbench = c.realms.pop().expect("two realms");
    assert_eq!(workbench.name, "workbench");
    let graph = workbench.graph.expect("authorized by the graph");
    let rules: Vec<String> = graph.policy.rules.iter().map(|r| r.uri()).collect();
    assert_eq!(
        rules,
        [
            "containers.{object}.logs",
            "containers.{object}.events",
            "records.{object}.changes",
            "dispatch.containers",
            "dispatch.dispatchers.gone",
            "wamp.session.{object}",
            "wamp.subscription.{object}",
            "wamp.registration.{object}",
            "wamp.session.add_testament",
            "wamp.session.flush_testaments"
        ]
    );
    assert_eq!((graph.migrate, graph.database_url), (true, None));
    // The shipped files spell out every default, and realms/realm1.toml grants
    // anonymous everything, exactly like the embedded default.
    assert_eq!(
        c,
        Config {
            source: Some(path),
            ..Config::default()
        }
    );
}

#[test]
fn load_reports_unreadable_main_file() {
    let dir = temp_dir("unreadable-main");
    let path = dir.join("missing.toml");
    let ConfigErrors(errs) = Config::load(&path).expect_err("missing file");
    assert_eq!(errs.len(), 1);
    assert_eq!(
        (errs[0].file.as_path(), errs[0].line, errs[0].column),
        (path.as_path(), 1, 1)
    );
    assert!(
        errs[0]
            .message
            .starts_with("cannot read configuration file: "),
        "{}",
        errs[0].message
    );
}

#[test]
fn error_display_is_file_line_column_message() {
    let one = err("a/b.toml", 3, 14, "bad thing");
    assert_eq!(one.to_string(), "a/b.toml:3:14: bad thing");
    let all = ConfigErrors(vec![one, err("c.toml", 1, 1, "worse thing")]);
    assert_eq!(
        all.to_string(),
        "a/b.toml:3:14: bad thing\nc.toml:1:1: worse thing"
    );
    let boxed: Box<dyn std::error::Error> = Box::new(all);
    assert!(boxed.to_string().contains('\n'));
}

#[test]
fn principal_debug_hides_ticket() {
    let p = PrincipalConfig {
        wampcra: Some(CraSecret { secret: "cra-s3cret".into(), salt: None }),
        ..PrincipalConfig::ticket("alice", "s3cret", "user")
    };
    let shown = format!("{p:?}");
    assert!(
        shown.contains("alice") && !shown.contains("s3cret") && shown.contains("<redacted>"),
        "{shown}"
    );
}

#[test]
fn column_counts_characters_not_bytes() {
    // "é" is two bytes in UTF-8: a byte count would put `"nope"` at column 38.
    let text = "[[realms]]\nname = \"a\"\n[[realms.roles]]\nname = \"r\"\n\
                permissions = [{ uri = \"é\", match = \"nope\" }]\n";
    assert_eq!(
        errors(text),
        vec![err(
            MAIN,
            5,
            37,
            "unknown match policy `nope`, expected `exact`, `prefix` or `wildcard`"
        )]
    );
}

#[test]
fn realm_limits_are_read_and_checked() {
    let cfg = parse(
        "[[realms]]\nname = \"r\"\n[realms.limits]\nmax_call_timeout_ms = 2500\nmax_sessions = 100\nmax_sessions_per_authid = 3\n\
         publications_per_second = 1000\npublication_burst = 50\ncalls_per_second = 200\n",
    )
    .unwrap();
    assert_eq!(
        cfg.realms[0].limits,
        RealmLimits {
            max_call_timeout: Some(Duration::from_millis(2500)),
            max_sessions: Some(100),
            max_sessions_per_authid: Some(3),
            publications: Some(Rate { per_second: 1000, burst: 50 }),
            calls: Some(Rate { per_second: 200, burst: 200 }),
        }
    );
    let cfg = parse("[[realms]]\nname = \"r\"\n").unwrap();
    assert_eq!(cfg.realms[0].limits, RealmLimits::default());
    assert_eq!(
        errors("[[realms]]\nname = \"r\"\n[realms.limits]\nmax_call_timeout_ms = 0\n"),
        vec![err(MAIN, 4, 23, "`max_call_timeout_ms` must be greater than 0")]
    );
    assert_eq!(
        errors("[[realms]]\nname = \"r\"\n[realms.limits]\ncall_burst = 10\nmax_sessions = -1\n"),
        vec![err(MAIN, 4, 14, "`call_burst` needs `calls_per_second`"), err(MAIN, 5, 16, "`max_sessions` must not be negative, got -1")]
    );
}
