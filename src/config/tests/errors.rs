//! Validation errors of a single main file: each kind with its exact position and
//! message, and many errors in one file all reported in reading order.

use super::{err, errors, parse, MAIN};

/// Lines 1-2 of most tests below: a valid realm, so only the error under test shows.
const REALM: &str = "[[realms]]\nname = \"realm1\"\n";

#[test]
fn unknown_key_names_the_key_and_the_allowed_keys() {
    assert_eq!(
        errors("realms_dri = \"realms\"\n"),
        vec![err(
            MAIN,
            1,
            1,
            "unknown key `realms_dri`, expected one of `realms_dir`, `transport`, `tls`, `http`, `limits`, `log`, `realms`"
        )]
    );
    assert_eq!(
        errors("[transport]\nlisten = \"127.0.0.1:1\"\nlistne = \"x\"\n"),
        vec![err(
            MAIN,
            3,
            1,
            "unknown key `listne`, expected one of `listen`, `ws_path`, `rawsocket`, `unix`"
        )]
    );
}

#[test]
fn unknown_key_in_nested_tables() {
    let text = format!(
        "{REALM}[[realms.roles]]\nname = \"r\"\n[[realms.roles.permissions]]\n\
         uri = \"a\"\nallow = {{ call = true, cal = true }}\n"
    );
    assert_eq!(
        errors(&text),
        vec![err(
            MAIN,
            7,
            24,
            "unknown key `cal`, expected one of `call`, `register`, `publish`, `subscribe`"
        )]
    );
    let text = format!("{REALM}[[realms.principals]]\nauthid = \"a\"\nticket = \"t\"\nrole = \"r\"\nrealm = \"x\"\n");
    assert_eq!(
        errors(&text),
        vec![err(
            MAIN,
            7,
            1,
            "unknown key `realm`, expected one of `authid`, `ticket`, `role`, `secret`, `salt`, `iterations`, `keylen`, `cryptosign`"
        )]
    );
}

#[test]
fn missing_required_key() {
    let text = "[[realms]]\nanonymous = \"anonymous\"\n";
    assert_eq!(errors(text), vec![err(MAIN, 1, 1, "missing key `name`")]);
}

#[test]
fn syntax_error_is_one_line() {
    assert_eq!(
        errors("[log]\nlevel = [\n"),
        vec![err(MAIN, 3, 1, "invalid array: expected `]`")]
    );
}

#[test]
fn type_error_stops_the_file() {
    // The bad log format on line 4 is not reported: parsing ended at line 2.
    let text = "[limits]\nmax_message_size = \"big\"\n[log]\nformat = \"xml\"\n";
    assert_eq!(
        errors(text),
        vec![err(
            MAIN,
            2,
            20,
            "invalid type: string \"big\", expected i64"
        )]
    );
}

#[test]
fn http_workbench_is_a_boolean() {
    let text = format!("[http]\nworkbench = \"off\"\n{REALM}");
    assert_eq!(errors(&text), vec![err(MAIN, 2, 13, "invalid type: string \"off\", expected a boolean")]);
    let text = format!("[http]\nworkbnech = false\n{REALM}");
    assert_eq!(errors(&text), vec![err(MAIN, 2, 1, "unknown key `workbnech`, expected `workbench`")]);
    assert!(!parse(&format!("[http]\nworkbench = false\n{REALM}")).unwrap().workbench);
    assert!(parse(REALM).unwrap().workbench, "on by default");
}

#[test]
fn bad_socket_addresses() {
    let text = format!("[transport]\nlisten = \"localhost:8080\"\nrawsocket = \"8081\"\n{REALM}");
    assert_eq!(
        errors(&text),
        vec![
            err(
                MAIN,
                2,
                10,
                "invalid socket address `localhost:8080` for `listen`: expected IP:port such as \
                 127.0.0.1:8080 or [::1]:8080"
            ),
            err(
                MAIN,
                3,
                13,
                "invalid socket address `8081` for `rawsocket`: expected IP:port such as \
                 127.0.0.1:8080 or [::1]:8080 or \"off\""
            ),
        ]
    );
}

#[test]
fn listen_clashing_with_default_rawsocket() {
    let text = format!("[transport]\nlisten = \"127.0.0.1:8081\"\n{REALM}");
    assert_eq!(
        errors(&text),
        vec![err(
            MAIN,
            2,
            10,
            "`listen` and `rawsocket` are both 127.0.0.1:8081; give rawsocket another address or \"off\""
        )]
    );
    // Port 0 (any free port) cannot clash.
    let text =
        format!("[transport]\nlisten = \"127.0.0.1:0\"\nrawsocket = \"127.0.0.1:0\"\n{REALM}");
    assert!(parse(&text).is_ok());
}

#[test]
fn match_policy_and_permission_uris() {
    let text = format!(
        "{REALM}[[realms.roles]]\nname = \"r\"\npermissions = [\n\
         \x20 {{ uri = \"com..x\" }},\n\
         \x20 {{ uri = \"com.x\", match = \"regex\" }},\n\
         \x20 {{ uri = \"a..b\", match = \"prefix\" }},\n\
         \x20 {{ uri = \"a. .b\", match = \"wildcard\" }},\n\
         \x20 {{ uri = \"com..x\", match = \"wildcard\" }},\n\
         \x20 {{ uri = \"Com.X.\", match = \"prefix\" }},\n\
         ]\n"
    );
    assert_eq!(
        errors(&text),
        vec![
            err(
                MAIN,
                6,
                11,
                "URI `com..x` is not valid for match policy `exact`"
            ),
            err(
                MAIN,
                7,
                28,
                "unknown match policy `regex`, expected `exact`, `prefix` or `wildcard`"
            ),
            err(
                MAIN,
                8,
                11,
                "URI `a..b` is not valid for match policy `prefix`"
            ),
            err(
                MAIN,
                9,
                11,
                "URI `a. .b` is not valid for match policy `wildcard`"
            ),
        ]
    );
}

#[test]
fn realm_name_must_be_a_strict_uri() {
    let msg = |name: &str| {
        format!(
            "realm name `{name}` is not a valid URI (strict rules: lower-case letters, digits \
             and `_`, separated by dots)"
        )
    };
    let text =
        "[[realms]]\nname = \"Realm1\"\n[[realms]]\nname = \"a..b\"\n[[realms]]\nname = \"\"\n";
    assert_eq!(
        errors(text),
        vec![
            err(MAIN, 2, 8, &msg("Realm1")),
            err(MAIN, 4, 8, &msg("a..b")),
            err(MAIN, 6, 8, &msg(""))
        ]
    );
}

#[test]
fn duplicate_realm_in_one_file() {
    let text = format!("{REALM}{REALM}");
    assert_eq!(
        errors(&text),
        vec![err(
            MAIN,
            4,
            8,
            "duplicate realm `realm1`, first defined at conf/switchyard.toml:2:8"
        )]
    );
}

#[test]
fn roles_anonymous_and_principals() {
    let text = r#"[[realms]]
name = "realm1"
anonymous = "guest"
roles = [{ name = "user" }, { name = "admin" }, { name = "user" }, { name = "" }]

[[realms.principals]]
authid = "alice"
ticket = ""
role = "root"

[[realms.principals]]
authid = "alice"
ticket = "t"
role = "user"

[[realms.principals]]
authid = ""
ticket = "t"
role = "admin"
"#;
    assert_eq!(
        errors(text),
        vec![
            err(
                MAIN,
                3,
                13,
                "anonymous role `guest` is not defined in realm `realm1`"
            ),
            err(
                MAIN,
                4,
                58,
                "duplicate role `user`, first defined on line 4"
            ),
            err(MAIN, 4, 77, "role name must not be empty"),
            err(MAIN, 8, 10, "principal `alice` has an empty ticket"),
            err(
                MAIN,
                9,
                8,
                "role `root` of principal `alice` is not defined in realm `realm1`"
            ),
            err(
                MAIN,
                12,
                10,
                "duplicate principal `alice`, first defined on line 7"
            ),
            err(MAIN, 17, 10, "principal authid must not be empty"),
        ]
    );
}

#[test]
fn limits_that_cannot_be_zero_or_negative() {
    let text = format!(
        "{REALM}[limits]\nmax_message_size = 0\nhello_timeout_ms = 0\noutbox_messages = 0\n\
         outbox_bytes = 0\nrpc_outbox_bytes = 0\nwrite_timeout_ms = -5\nping_interval_ms = -1\n\
         max_sessions = 0\nmax_subscriptions_per_session = -2\n"
    );
    assert_eq!(
        errors(&text),
        vec![
            err(MAIN, 4, 20, "`max_message_size` must be greater than 0"),
            err(MAIN, 5, 20, "`hello_timeout_ms` must be greater than 0"),
            err(MAIN, 6, 19, "`outbox_messages` must be greater than 0"),
            err(MAIN, 7, 16, "`outbox_bytes` must be greater than 0"),
            err(MAIN, 8, 20, "`rpc_outbox_bytes` must be greater than 0"),
            err(
                MAIN,
                9,
                20,
                "`write_timeout_ms` must not be negative, got -5"
            ),
            err(
                MAIN,
                10,
                20,
                "`ping_interval_ms` must not be negative, got -1"
            ),
            err(MAIN, 11, 16, "`max_sessions` must be greater than 0"),
            err(
                MAIN,
                12,
                33,
                "`max_subscriptions_per_session` must not be negative, got -2"
            ),
        ]
    );
}

#[test]
fn zero_is_fine_where_it_means_off() {
    let text = format!(
        "{REALM}[limits]\nping_interval_ms = 0\nmax_subscriptions_per_session = 0\n\
         max_registrations_per_session = 0\n"
    );
    let limits = parse(&text).expect("valid config").limits;
    assert_eq!(limits.ping_interval, std::time::Duration::ZERO);
    assert_eq!(limits.max_subscriptions_per_session, 0);
    assert_eq!(limits.max_registrations_per_session, 0);
}

#[test]
fn hello_size_and_message_size_must_fit_under_their_bounds() {
    let text = format!("{REALM}[limits]\nmax_message_size = 1000\nmax_hello_size = 2000\n");
    assert_eq!(
        errors(&text),
        vec![err(MAIN, 5, 18, "`max_hello_size` (2000) must not be larger than `max_message_size` (1000)")]
    );
    // Against the default budget (256 MiB) the error points at max_message_size.
    let text = format!("{REALM}[limits]\nmax_message_size = 67108865\n");
    assert_eq!(
        errors(&text),
        vec![err(
            MAIN,
            4,
            20,
            "`max_message_size` (67108865) must not be larger than a quarter of `memory_budget_bytes` (67108864)"
        )]
    );
}

#[test]
fn rpc_outbox_below_event_outbox() {
    let text = format!("{REALM}[limits]\noutbox_bytes = 2048\nrpc_outbox_bytes = 1024\n");
    assert_eq!(
        errors(&text),
        vec![err(
            MAIN,
            5,
            20,
            "`rpc_outbox_bytes` (1024) must not be smaller than `outbox_bytes` (2048)"
        )]
    );
    // Against the default rpc_outbox_bytes (64 MiB) the error points at outbox_bytes.
    let text = format!("{REALM}[limits]\noutbox_bytes = 67108865\n");
    assert_eq!(
        errors(&text),
        vec![err(
            MAIN,
            4,
            16,
            "`rpc_outbox_bytes` (67108864) must not be smaller than `outbox_bytes` (67108865)"
        )]
    );
}

#[test]
fn log_format_and_level() {
    let text = format!("{REALM}[log]\nformat = \"xml\"\nlevel = \"info,switchyard=loud\"\n");
    let errs = errors(&text);
    assert_eq!(errs.len(), 2);
    assert_eq!(
        errs[0],
        err(
            MAIN,
            4,
            10,
            "unknown log format `xml`, expected `text` or `json`"
        )
    );
    assert_eq!((errs[1].line, errs[1].column), (5, 9));
    assert!(
        errs[1]
            .message
            .starts_with("invalid log level `info,switchyard=loud`: "),
        "{}",
        errs[1].message
    );
    let text = format!("{REALM}[log]\nlevel = \" \"\n");
    assert_eq!(
        errors(&text),
        vec![err(MAIN, 4, 9, "log `level` must not be empty")]
    );
}

#[test]
fn transport_paths() {
    let text = format!("[transport]\nws_path = \"ws\"\nunix = \"\"\n{REALM}");
    assert_eq!(
        errors(&text),
        vec![
            err(MAIN, 2, 11, "`ws_path` must start with `/`, got `ws`"),
            err(
                MAIN,
                3,
                8,
                "`unix` must not be empty; leave it out to disable"
            ),
        ]
    );
}

/// Errors from every section of one file come back together, in reading order.
#[test]
fn many_errors_in_one_file_are_all_reported() {
    let text = r#"[transport]
listen = "127.0.0.1"

[limits]
max_sessions = 0

[log]
format = "yaml"

[[realms]]
name = "Bad Realm"
anonymous = "nobody"

[[realms.roles]]
name = "user"

[[realms.roles.permissions]]
uri = "com..x"
match = "prefix"

[[realms.principals]]
authid = "bob"
ticket = ""
role = "user"

[[realms]]
name = "Bad Realm"
"#;
    let realm_msg = "realm name `Bad Realm` is not a valid URI (strict rules: lower-case letters, \
                     digits and `_`, separated by dots)";
    assert_eq!(
        errors(text),
        vec![
            err(
                MAIN,
                2,
                10,
                "invalid socket address `127.0.0.1` for `listen`: expected IP:port such as \
                 127.0.0.1:8080 or [::1]:8080"
            ),
            err(MAIN, 5, 16, "`max_sessions` must be greater than 0"),
            err(
                MAIN,
                8,
                10,
                "unknown log format `yaml`, expected `text` or `json`"
            ),
            err(MAIN, 11, 8, realm_msg),
            err(
                MAIN,
                12,
                13,
                "anonymous role `nobody` is not defined in realm `Bad Realm`"
            ),
            err(
                MAIN,
                18,
                7,
                "URI `com..x` is not valid for match policy `prefix`"
            ),
            err(MAIN, 23, 10, "principal `bob` has an empty ticket"),
            err(MAIN, 27, 8, realm_msg),
            err(
                MAIN,
                27,
                8,
                "duplicate realm `Bad Realm`, first defined at conf/switchyard.toml:11:8"
            ),
        ]
    );
}

#[test]
fn realms_dir_below_a_table_gets_a_hint() {
    let text = "[log]\nlevel = \"info\"\nrealms_dir = \"realms\"\n";
    assert_eq!(
        errors(text),
        vec![err(
            MAIN,
            3,
            1,
            "unknown key `realms_dir`, expected `format` or `level` (realms_dir is a top-level \
             key: write it before the first [table])"
        )]
    );
}
