//! The `switchyard` command: `serve` runs the router, `check-config` validates a
//! configuration file and its realms, reporting every error with file and line.

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};
use switchyard::config::{Config, LogFormat};
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
    },
    /// Check a configuration file and its realms; print every error with file and line.
    CheckConfig {
        #[arg(default_value = "switchyard.toml")]
        file: PathBuf,
    },
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
        Command::Serve { config, listen, rawsocket, unix, log_format } => {
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
            tracing::error!(error = %e, "cannot bind the listeners");
            return ExitCode::FAILURE;
        }
    };
    tracing::info!(
        websocket = %server.websocket_url(),
        rawsocket = ?server.rawsocket,
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

    signals.wait().await;
    tracing::info!("shutting down: GOODBYE wamp.close.system_shutdown to every session");
    server.shut_down(Duration::from_secs(5)).await;
    ExitCode::SUCCESS
}

/// SIGTERM and SIGINT, listened for from the moment `install` returns.
struct Signals {
    term: Option<tokio::signal::unix::Signal>,
    int: Option<tokio::signal::unix::Signal>,
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
        Signals { term: listen(SignalKind::terminate(), "SIGTERM"), int: listen(SignalKind::interrupt(), "SIGINT") }
    }

    async fn wait(mut self) {
        async fn recv(s: &mut Option<tokio::signal::unix::Signal>) {
            match s {
                Some(s) => drop(s.recv().await),
                None => std::future::pending().await,
            }
        }
        tokio::select! {
            _ = recv(&mut self.term) => {}
            _ = recv(&mut self.int) => {}
        }
    }
}
