//! Validation of the main file: transport, limits and log settings, inline realms, and
//! loading the realm files of `realms_dir`. Errors are collected, never returned early,
//! except for TOML syntax/type errors, which end parsing of the file they occur in.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use toml::Spanned;

use super::error::{ConfigError, ConfigErrors, Source};
use super::raw::{RawLimits, RawLog, RawMain, RawRealm, RawTransport};
use super::limit_reader::LimitReader;
use super::realm::RealmSet;
use super::{Config, Limits, LogConfig, LogFormat};

/// Builds a `Config` from the text of the main file `file`.
pub(super) fn build(text: &str, file: &Path) -> Result<Config, ConfigErrors> {
    let src = Source::new(file, text);
    let raw: RawMain = src
        .parse()
        .map_err(|e| ConfigErrors(vec![top_level_hint(e)]))?;
    let mut errors = Vec::new();
    let mut config = Config {
        source: Some(file.to_path_buf()),
        realms: Vec::new(),
        ..Config::default()
    };
    transport(&src, &raw.transport, &mut config, &mut errors);
    if let Some(t) = &raw.tls {
        config.tls = super::tls::validate(&src, t, &mut errors);
    }
    if let Some(w) = raw.http.workbench {
        config.workbench = w;
    }
    config.limits = limits(&src, &raw.limits, &mut errors);
    config.log = log(&src, &raw.log, &mut errors);
    let mut realms = RealmSet::default();
    for realm in raw.realms {
        realms.add(&src, realm, &mut errors);
    }
    sort_by_position(&mut errors);
    // A realm file we could not read or parse may well have held the realm: saying
    // "no realm configured" on top of its error would only mislead.
    let mut realm_file_failed = false;
    if let Some(dir) = &raw.realms_dir {
        realm_file_failed = realms_dir(&src, dir, &mut realms, &mut errors);
    }
    if realms.is_empty() && !realm_file_failed {
        errors.push(match &raw.realms_dir {
            Some(dir) => src.error(
                dir.span(),
                format!(
                    "no realm configured: realms_dir `{}` holds no *.toml file",
                    dir.get_ref()
                ),
            ),
            None => {
                src.error_at_top("no realm configured: add a [[realms]] table or set realms_dir")
            }
        });
    }
    if errors.is_empty() {
        config.realms = realms.into_vec();
        Ok(config)
    } else {
        Err(ConfigErrors(errors))
    }
}

/// TOML assigns a bare key to the table above it, so `realms_dir` written after
/// `[log]` becomes `log.realms_dir`; the plain "unknown key" error would not say why.
fn top_level_hint(mut error: ConfigError) -> ConfigError {
    if error.message.starts_with("unknown key `realms_dir`") {
        error
            .message
            .push_str(" (realms_dir is a top-level key: write it before the first [table])");
    }
    error
}

/// Errors of one file are reported in reading order, whatever order the checks ran in.
fn sort_by_position(errors: &mut [ConfigError]) {
    // A realm file's errors may include its policy file's: each file's errors stay
    // together, files in the order their first error was found.
    let mut files: Vec<std::path::PathBuf> = Vec::new();
    for e in errors.iter() {
        if !files.contains(&e.file) {
            files.push(e.file.clone());
        }
    }
    errors.sort_by_key(|e| (files.iter().position(|f| *f == e.file), e.line, e.column));
}

fn transport(src: &Source, raw: &RawTransport, config: &mut Config, errors: &mut Vec<ConfigError>) {
    let mut addrs_ok = true;
    if let Some(v) = &raw.listen {
        match socket_addr(src, "listen", v, errors) {
            Some(addr) => config.listen = addr,
            None => addrs_ok = false,
        }
    }
    if let Some(v) = &raw.ws_path {
        if v.get_ref().starts_with('/') {
            config.ws_path = v.get_ref().clone();
        } else {
            errors.push(src.error(
                v.span(),
                format!("`ws_path` must start with `/`, got `{}`", v.get_ref()),
            ));
        }
    }
    if let Some(v) = &raw.rawsocket {
        if v.get_ref() == "off" {
            config.rawsocket = None;
        } else {
            match socket_addr(src, "rawsocket", v, errors) {
                Some(addr) => config.rawsocket = Some(addr),
                None => addrs_ok = false,
            }
        }
    }
    if let Some(v) = &raw.unix {
        if v.get_ref().is_empty() {
            errors.push(src.error(
                v.span(),
                "`unix` must not be empty; leave it out to disable",
            ));
        } else {
            config.unix = Some(PathBuf::from(v.get_ref()));
        }
    }
    // Both listeners on one address would fail at bind time with a less helpful error.
    // Port 0 means "any free port", which cannot clash.
    if addrs_ok && config.rawsocket == Some(config.listen) && config.listen.port() != 0 {
        let span = raw
            .rawsocket
            .as_ref()
            .or(raw.listen.as_ref())
            .map_or(0..0, Spanned::span);
        let msg = format!(
            "`listen` and `rawsocket` are both {}; give rawsocket another address or \"off\"",
            config.listen
        );
        errors.push(src.error(span, msg));
    }
}

fn socket_addr(
    src: &Source,
    key: &str,
    value: &Spanned<String>,
    errors: &mut Vec<ConfigError>,
) -> Option<SocketAddr> {
    match value.get_ref().parse::<SocketAddr>() {
        Ok(addr) => Some(addr),
        Err(_) => {
            let off = if key == "rawsocket" {
                " or \"off\""
            } else {
                ""
            };
            let msg = format!(
                "invalid socket address `{}` for `{key}`: expected IP:port such as \
                 127.0.0.1:8080 or [::1]:8080{off}",
                value.get_ref()
            );
            errors.push(src.error(value.span(), msg));
            None
        }
    }
}

fn limits(src: &Source, raw: &RawLimits, errors: &mut Vec<ConfigError>) -> Limits {
    let d = Limits::default();
    let before = errors.len();
    let mut r = LimitReader { src, errors };
    // Zero is refused where it would make the router unusable (every message too
    // big, every event dropped, every session refused or timed out at once). Zero
    // subscriptions/registrations is a legitimate way to forbid them; zero ping
    // interval disables pings.
    let limits = Limits {
        max_message_size: r.count(
            "max_message_size",
            &raw.max_message_size,
            d.max_message_size,
            false,
        ),
        max_hello_size: r.count("max_hello_size", &raw.max_hello_size, d.max_hello_size, false),
        handshake_timeout: r.millis(
            "handshake_timeout_ms",
            &raw.handshake_timeout_ms,
            d.handshake_timeout,
            false,
        ),
        hello_timeout: r.millis(
            "hello_timeout_ms",
            &raw.hello_timeout_ms,
            d.hello_timeout,
            false,
        ),
        frame_timeout: r.millis("frame_timeout_ms", &raw.frame_timeout_ms, d.frame_timeout, false),
        memory_budget: r.count(
            "memory_budget_bytes",
            &raw.memory_budget_bytes,
            d.memory_budget,
            false,
        ),
        outbox_messages: r.count(
            "outbox_messages",
            &raw.outbox_messages,
            d.outbox_messages,
            false,
        ),
        outbox_bytes: r.count("outbox_bytes", &raw.outbox_bytes, d.outbox_bytes, false),
        rpc_outbox_bytes: r.count(
            "rpc_outbox_bytes",
            &raw.rpc_outbox_bytes,
            d.rpc_outbox_bytes,
            false,
        ),
        write_timeout: r.millis(
            "write_timeout_ms",
            &raw.write_timeout_ms,
            d.write_timeout,
            false,
        ),
        ping_interval: r.millis(
            "ping_interval_ms",
            &raw.ping_interval_ms,
            d.ping_interval,
            true,
        ),
        max_sessions: r.count("max_sessions", &raw.max_sessions, d.max_sessions, false),
        max_subscriptions_per_session: r.count(
            "max_subscriptions_per_session",
            &raw.max_subscriptions_per_session,
            d.max_subscriptions_per_session,
            true,
        ),
        max_registrations_per_session: r.count(
            "max_registrations_per_session",
            &raw.max_registrations_per_session,
            d.max_registrations_per_session,
            true,
        ),
        max_calls_per_session: r.count(
            "max_calls_per_session",
            &raw.max_calls_per_session,
            d.max_calls_per_session,
            false,
        ),
        max_uri_length: r.count("max_uri_length", &raw.max_uri_length, d.max_uri_length, false),
        auth_failures_per_minute: r
            .int("auth_failures_per_minute", &raw.auth_failures_per_minute, false)
            .map_or(d.auth_failures_per_minute, |n| u32::try_from(n).unwrap_or(u32::MAX)),
        strict_uris: raw.strict_uris.unwrap_or(d.strict_uris),
    };
    // Checks between limits run only when every limit was valid, so a fallback default
    // cannot cause one.
    let all_valid = errors.len() == before;
    // rpc_outbox_bytes is the hard cap on everything queued, events included: below
    // outbox_bytes, sessions would be closed before events are ever dropped.
    if all_valid && limits.rpc_outbox_bytes < limits.outbox_bytes {
        let at = raw.rpc_outbox_bytes.as_ref().or(raw.outbox_bytes.as_ref());
        let msg = format!(
            "`rpc_outbox_bytes` ({}) must not be smaller than `outbox_bytes` ({})",
            limits.rpc_outbox_bytes, limits.outbox_bytes
        );
        errors.push(src.error(at.map_or(0..0, Spanned::span), msg));
    }
    // Limits that only make sense below another one: a HELLO limit above the message
    // limit, or a message limit above the whole budget, would never apply.
    let below = [
        ("max_hello_size", &raw.max_hello_size, limits.max_hello_size, "max_message_size", &raw.max_message_size, limits.max_message_size),
        // Queues may take three quarters of the budget: a message must fit in the rest.
        (
            "max_message_size",
            &raw.max_message_size,
            limits.max_message_size,
            "a quarter of `memory_budget_bytes`",
            &raw.memory_budget_bytes,
            limits.memory_budget / 4,
        ),
    ];
    if all_valid {
        for (key, value, n, other_key, other, m) in below {
            if n > m {
                let at = value.as_ref().or(other.as_ref());
                let other_key = if other_key.starts_with('a') { other_key.to_owned() } else { format!("`{other_key}`") };
                let msg = format!("`{key}` ({n}) must not be larger than {other_key} ({m})");
                errors.push(src.error(at.map_or(0..0, Spanned::span), msg));
            }
        }
    }
    limits
}

fn log(src: &Source, raw: &RawLog, errors: &mut Vec<ConfigError>) -> LogConfig {
    let mut log = LogConfig::default();
    if let Some(v) = &raw.format {
        match LogFormat::parse(v.get_ref()) {
            Some(format) => log.format = format,
            None => {
                let msg = format!(
                    "unknown log format `{}`, expected `text` or `json`",
                    v.get_ref()
                );
                errors.push(src.error(v.span(), msg));
            }
        }
    }
    if let Some(v) = &raw.level {
        // Checked here so a typo is reported with its line instead of at logger setup.
        if v.get_ref().trim().is_empty() {
            errors.push(src.error(v.span(), "log `level` must not be empty"));
        } else if let Err(e) = tracing_subscriber::EnvFilter::try_new(v.get_ref()) {
            errors.push(src.error(
                v.span(),
                format!("invalid log level `{}`: {e}", v.get_ref()),
            ));
        } else {
            log.level = v.get_ref().clone();
        }
    }
    log
}

/// Loads every `*.toml` file of `realms_dir` (sorted by file name) as one realm.
/// Returns true when some realm file could not be read or parsed.
fn realms_dir(
    main: &Source,
    dir: &Spanned<String>,
    realms: &mut RealmSet,
    errors: &mut Vec<ConfigError>,
) -> bool {
    if dir.get_ref().is_empty() {
        errors.push(main.error(dir.span(), "`realms_dir` must not be empty"));
        return true;
    }
    let path = main
        .file
        .parent()
        .unwrap_or(Path::new(""))
        .join(dir.get_ref());
    let files = match realm_files(&path) {
        Ok(files) => files,
        Err(e) => {
            let msg = format!("cannot read realms_dir `{}`: {e}", path.display());
            errors.push(main.error(dir.span(), msg));
            return true;
        }
    };
    let mut failed = false;
    for file in files {
        let start = errors.len();
        match std::fs::read_to_string(&file) {
            Ok(text) => {
                let src = Source::new(&file, &text);
                match src.parse::<RawRealm>() {
                    Ok(raw) => realms.add(&src, raw, errors),
                    Err(e) => {
                        errors.push(e);
                        failed = true;
                    }
                }
            }
            Err(e) => {
                let src = Source::new(&file, "");
                errors.push(src.error_at_top(format!("cannot read realm file: {e}")));
                failed = true;
            }
        }
        sort_by_position(&mut errors[start..]);
    }
    failed
}

/// The `*.toml` files directly in `dir`, sorted by file name so realm order (and error
/// order) does not depend on the file system.
fn realm_files(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.extension().is_some_and(|ext| ext == "toml") && path.is_file() {
            files.push(path);
        }
    }
    files.sort_by(|a, b| a.file_name().cmp(&b.file_name()));
    Ok(files)
}
