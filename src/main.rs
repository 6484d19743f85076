//! The `switchyard` command: `serve` runs the router, `check-config` validates a
//! configuration file and its realms, reporting every error with file and line;
//! `migrate` and `token` manage the permission graph's database; `wampcra-key` derives
//! the key a salted WAMP-CRA principal's `secret` holds.

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use switchyard::auth::graph::GraphStore;
use switchyard::config::{Config, LogFormat, TlsConfig};
use switchyard::server::Server;
use tracing_subscriber::EnvFilter;

#[derive(Parser)]
#[command(name = "switchyard", version, about = "A WAMP v2 router")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the router (with no file: realm `realm1`, anonymous allowed everything).
    Serve {
        /// Configuration file (switchyard.toml).
        #[arg(long, env = "SWITCHYARD_CONFIG")]
        config: Option<PathBuf>,
        /// WebSocket + HTTP address (overrides the file).
        #[arg(long, env = "SWITCHYARD_LISTEN")]
        listen: Option<SocketAddr>,
        /// RawSocket TCP address, or `off` (overrides the file).
        #[arg(long, env = "SWITCHYARD_RAWSOCKET")]
        rawsocket: Option<String>,
        /// RawSocket Unix socket path (overrides the file).
        #[arg(long, env = "SWITCHYARD_UNIX")]
        unix: Option<PathBuf>,
        /// Log format: text or json (overrides the file).
        #[arg(long, env = "SWITCHYARD_LOG_FORMAT")]
        log_format: Option<String>,
        /// TLS certificate chain, PEM (overrides [tls] certificate; with --tls-key
        /// alone, turns TLS on for both TCP listeners).
        #[arg(long, env = "SWITCHYARD_TLS_CERTIFICATE", requires = "tls_key")]
        tls_certificate: Option<PathBuf>,
        /// TLS private key, PEM (overrides [tls] key).
        #[arg(long, env = "SWITCHYARD_TLS_KEY", requires = "tls_certificate")]
        tls_key: Option<PathBuf>,
        /// Do not serve the workbench page at / (overrides [http] workbench).
        #[arg(long, env = "SWITCHYARD_NO_WORKBENCH")]
        no_workbench: bool,
    },
    /// Check a configuration file and its realms; print every error with file and line.
    CheckConfig {
        #[arg(default_value = "switchyard.toml")]
        file: PathBuf,
    },
    /// Apply the permission graph's migrations (policies/migrations/) to the database.
    Migrate {
        #[command(flatten)]
        db: Database,
    },
    /// Create or revoke a user's bearer token.
    Token {
        #[command(subcommand)]
        command: TokenCommand,
    },
    /// Derive a salted WAMP-CRA key from a password read on stdin: prints the `secret`
    /// to put beside `salt`, `iterations` and `keylen` in the realm file.
    WampcraKey {
        #[arg(long)]
        salt: String,
        #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u32).range(1..))]
        iterations: u32,
        #[arg(long, default_value_t = 32, value_parser = clap::value_parser!(u32).range(16..=64))]
        keylen: u32,
    },
}

#[derive(Subcommand)]
enum TokenCommand {
    /// Mint a token for a user: prints the token (only it, on one line); stores its hash.
    Create {
        /// The user's principal id.
        #[arg(long)]
        user: String,
        /// Lifetime: a number and s, m, h or d (`30s`, `15m`, `24h`, `7d`). Default: none.
        #[arg(long, value_parser = parse_ttl)]
        ttl: Option<Duration>,
        #[command(flatten)]
        db: Database,
    },
    /// Revoke a token: it opens no session any more.
    Revoke {
        token: String,
        #[command(flatten)]
        db: Database,
    },
}

#[derive(Args)]
struct Database {
    /// PostgreSQL URL of the permission graph (else $SWITCHYARD_DATABASE_URL, else $DATABASE_URL).
    #[arg(long, env = "SWITCHYARD_DATABASE_URL")]
    database_url: Option<String>,
}

impl Database {
    fn url(self) -> Result<String, String> {
        self.database_url
            .or_else(|| std::env::var("DATABASE_URL").ok())
            .ok_or_else(|| "no database: pass --database-url, or set SWITCHYARD_DATABASE_URL or DATABASE_URL".to_owned())
    }
}

fn main() -> ExitCode {
    switchyard::trim::tune_allocator();
    match Cli::parse().command {
        Command::CheckConfig { file } => match Config::load(&file) {
            Ok(cfg) => {
                println!("{}: ok ({} realm{})", file.display(), cfg.realms.len(), if cfg.realms.len() == 1 { "" } else { "s" });
                ExitCode::SUCCESS
            }
            Err(errors) => {
                eprintln!("{errors}");
                ExitCode::FAILURE
            }
        },
        Command::Migrate { db } => graph_command(db, |store| async move {
            let applied = store.migrate().await.map_err(|e| e.to_string())?;
            if applied.is_empty() {
                println!("the schema is up to date: nothing to apply");
            }
            for m in applied {
                println!("applied {} {}", m.version, m.description);
            }
            Ok(())
        }),
        Command::Token { command: TokenCommand::Create { user, ttl, db } } => graph_command(db, |store| async move {
            let token = store.create_token(&user, ttl).await.map_err(|e| format!("cannot create a token: {e}"))?;
            println!("{token}");
            Ok(())
        }),
        Command::Token { command: TokenCommand::Revoke { token, db } } => graph_command(db, |store| async move {
            match store.revoke_token(&token).await {
                Ok(Some(user)) => {
                    eprintln!("revoked a token of {user}");
                    Ok(())
                }
                Ok(None) => Err("unknown token: nothing revoked".to_owned()),
                Err(e) => Err(format!("cannot revoke the token: {e}")),
            }
        }),
        Command::WampcraKey { salt, iterations, keylen } => {
            // The password comes on stdin, not as an argument, so it stays out of the
            // shell history and the process list.
            let mut password = String::new();
            if let Err(e) = std::io::stdin().read_line(&mut password) {
                eprintln!("cannot read the password from stdin: {e}");
                return ExitCode::FAILURE;
            }
            let password = password.strip_suffix('\n').unwrap_or(&password);
            let password = password.strip_suffix('\r').unwrap_or(password);
            println!("{}", switchyard::auth::cra::derive_key(password, &salt, iterations, keylen as usize));
            ExitCode::SUCCESS
        }
        Command::Serve { config, listen, rawsocket, unix, log_format, tls_certificate, tls_key, no_workbench } => {
            let mut cfg = match &config {
                Some(path) => match Config::load(path) {
                    Ok(c) => c,
                    Err(errors) => {
                        eprintln!("{errors}");
                        return ExitCode::FAILURE;
                    }
                },
                None => Config::default(),
            };
            if let Some(l) = listen {
                cfg.listen = l;
            }
            match rawsocket.as_deref() {
                None => {}
                Some("off") => cfg.rawsocket = None,
                Some(addr) => match addr.parse() {
                    Ok(a) => cfg.rawsocket = Some(a),
                    Err(e) => {
                        eprintln!("--rawsocket {addr}: {e}");
                        return ExitCode::FAILURE;
                    }
                },
            }
            if unix.is_some() {
                cfg.unix = unix;
            }
            if no_workbench {
                cfg.workbench = false;
            }
            if let (Some(certificate), Some(key)) = (tls_certificate, tls_key) {
                // The files are checked when the server starts, as the file's are.
                cfg.tls = Some(match cfg.tls.take() {
                    Some(t) => TlsConfig { certificate, key, ..t },
                    None => TlsConfig::both(certificate, key),
                });
            }
            if let Some(f) = log_format {
                match LogFormat::parse(&f) {
                    Some(f) => cfg.log.format = f,
                    None => {
                        eprintln!("--log-format {f}: expected text or json");
                        return ExitCode::FAILURE;
                    }
                }
            }
            init_logging(&cfg);
            let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
                Ok(rt) => rt,
                Err(e) => {
                    eprintln!("cannot start the runtime: {e}");
                    return ExitCode::FAILURE;
                }
            };
            runtime.block_on(serve(cfg))
        }
    }
}

/// Runs one command against the permission graph's database on a small runtime; an
/// error is printed on stderr and makes the exit status 1.
fn graph_command<F, Fut>(db: Database, run: F) -> ExitCode
where
    F: FnOnce(GraphStore) -> Fut,
    Fut: std::future::Future<Output = Result<(), String>>,
{
    let result = db.url().and_then(|url| {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| format!("cannot start the runtime: {e}"))?;
        runtime.block_on(async {
            let store = GraphStore::connect(&url).await.map_err(|e| e.to_string())?;
            let result = run(store.clone()).await;
            store.pool().close().await;
            result
        })
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{e}");
            ExitCode::FAILURE
        }
    }
}

/// `30s`, `15m`, `24h`, `7d`: a whole number and one unit.
fn parse_ttl(s: &str) -> Result<Duration, String> {
    let unit_at = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (number, unit) = s.split_at(unit_at);
    let n: u64 = number.parse().map_err(|_| format!("{s:?}: expected a number and s, m, h or d, like 24h"))?;
    let seconds = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86400,
        _ => return Err(format!("{s:?}: the unit must be s, m, h or d")),
    };
    n.checked_mul(seconds).map(Duration::from_secs).ok_or_else(|| format!("{s:?}: too long"))
}

fn init_logging(cfg: &Config) {
    let filter = EnvFilter::try_from_env("SWITCHYARD_LOG").unwrap_or_else(|_| EnvFilter::new(&cfg.log.level));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    match cfg.log.format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Text => builder.init(),
    }
}

async fn serve(cfg: Config) -> ExitCode {
    let server = match Server::start(&cfg).await {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(error = %e, "cannot start the listeners");
            return ExitCode::FAILURE;
        }
    };
    tracing::info!(
        websocket = %server.websocket_url(),
        rawsocket = ?server.rawsocket,
        rawsocket_tls = server.rawsocket_tls(),
        unix = ?server.unix,
        realms = cfg.realms.len(),
        max_connections = server.router.max_connections(),
        "switchyard listening"
    );
    // The handlers are installed before the ready line: a script that reads it and
    // sends SIGTERM at once must get a graceful shutdown, not the default death.
    let signals = Signals::install();
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{}", server.ready_line());
    let _ = out.flush();
    drop(out);

    signals.wait(|| server.reload_tls()).await;
    tracing::info!("shutting down: GOODBYE wamp.close.system_shutdown to every session");
    server.shut_down(Duration::from_secs(5)).await;
    ExitCode::SUCCESS
}

/// SIGTERM and SIGINT (shut down) and SIGHUP (reload the TLS certificate), listened
/// for from the moment `install` returns. SIGHUP is caught even without TLS, so a
/// reload sent to a router without it does not kill it.
struct Signals {
    term: Option<tokio::signal::unix::Signal>,
    int: Option<tokio::signal::unix::Signal>,
    hup: Option<tokio::signal::unix::Signal>,
}

impl Signals {
    fn install() -> Signals {
        use tokio::signal::unix::{signal, SignalKind};
        let listen = |kind: SignalKind, name: &str| match signal(kind) {
            Ok(s) => Some(s),
            Err(e) => {
                tracing::warn!(error = %e, "cannot listen for {name}");
                None
            }
        };
        Signals {
            term: listen(SignalKind::terminate(), "SIGTERM"),
            int: listen(SignalKind::interrupt(), "SIGINT"),
            hup: listen(SignalKind::hangup(), "SIGHUP"),
        }
    }

    /// Until SIGTERM or SIGINT, calling `reload` on each SIGHUP.
    async fn wait(mut self, reload: impl Fn()) {
        async fn recv(s: &mut Option<tokio::signal::unix::Signal>) {
            match s {
                Some(s) => drop(s.recv().await),
                None => std::future::pending().await,
            }
        }
        loop {
            tokio::select! {
                _ = recv(&mut self.term) => return,
                _ = recv(&mut self.int) => return,
                _ = recv(&mut self.hup) => {
                    tracing::info!("SIGHUP: reloading the TLS certificate");
                    reload();
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ttl_is_a_number_and_a_unit() {
        assert_eq!(parse_ttl("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_ttl("15m"), Ok(Duration::from_secs(900)));
        assert_eq!(parse_ttl("24h"), Ok(Duration::from_secs(86400)));
        assert_eq!(parse_ttl("7d"), Ok(Duration::from_secs(604800)));
        for bad in ["", "h", "24", "24x", "1.5h", "-1h", "24hh", "99999999999999999999d"] {
            assert!(parse_ttl(bad).is_err(), "{bad:?}");
        }
    }
}
