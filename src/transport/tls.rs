//! TLS on the TCP listeners (rustls with the `ring` provider). The certificate sits
//! behind a resolver that hands out the current `CertifiedKey`, so a reload (SIGHUP)
//! swaps it for the next handshakes while open connections keep the session keys they
//! agreed on: nothing is torn down. The handshake runs inside the connection's place at
//! the limit and its handshake deadline, like the HTTP request or the RawSocket
//! handshake after it, so a peer that never finishes TLS is closed like one that never
//! sends a request.

use std::sync::{Arc, PoisonError, RwLock};

use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls::ServerConfig;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::time::Instant;
use tokio_rustls::server::TlsStream;
use tokio_rustls::TlsAcceptor;

use crate::config::certificate::{self, CertificateError, LoadedCertificate};
use crate::config::TlsConfig;
use crate::router::admission::Admission;
use crate::router::metrics::Metrics;
use crate::router::Router;

/// Why TLS could not be set up at start.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error(transparent)]
    Certificate(#[from] CertificateError),
    #[error("cannot set up TLS: {0}")]
    Rustls(#[from] rustls::Error),
}

/// The certificate being served; replaced whole on reload.
#[derive(Debug)]
struct CurrentCertificate(RwLock<Arc<CertifiedKey>>);

impl CurrentCertificate {
    fn get(&self) -> Arc<CertifiedKey> {
        self.0.read().unwrap_or_else(PoisonError::into_inner).clone()
    }

    fn set(&self, certified: Arc<CertifiedKey>) {
        *self.0.write().unwrap_or_else(PoisonError::into_inner) = certified;
    }
}

impl ResolvesServerCert for CurrentCertificate {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.get())
    }
}

/// The TLS side of the router: one acceptor per listener that uses TLS, sharing the
/// certificate.
pub struct Tls {
    config: TlsConfig,
    current: Arc<CurrentCertificate>,
    websocket: Option<TlsAcceptor>,
    rawsocket: Option<TlsAcceptor>,
    metrics: Arc<Metrics>,
}

impl std::fmt::Debug for Tls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tls").field("config", &self.config).finish_non_exhaustive()
    }
}

impl Tls {
    /// Loads the certificate and builds the acceptors of the listeners `config` names.
    pub fn start(config: &TlsConfig, metrics: Arc<Metrics>) -> Result<Tls, TlsError> {
        let loaded = certificate::load(&config.certificate, &config.key)?;
        let current = Arc::new(CurrentCertificate(RwLock::new(loaded.certified.clone())));
        // The WebSocket port speaks HTTP/1.1 only: a client that asks for h2 alone is
        // refused in the handshake rather than sent HTTP/1.1 it cannot read.
        let websocket = config.websocket.then(|| acceptor(&current, vec![b"http/1.1".to_vec()])).transpose()?;
        // RawSocket has no registered ALPN name: none is negotiated.
        let rawsocket = config.rawsocket.then(|| acceptor(&current, Vec::new())).transpose()?;
        let tls = Tls { config: config.clone(), current, websocket, rawsocket, metrics };
        tls.installed(&loaded);
        // Both results show (as 0) before the first reload, so alerts can use them.
        for result in ["ok", "failed"] {
            let _ = tls.metrics.tls_reloads.get_or_create(&vec![("result".to_owned(), result.to_owned())]);
        }
        Ok(tls)
    }

    pub fn websocket(&self) -> Option<&TlsAcceptor> {
        self.websocket.as_ref()
    }

    pub fn rawsocket(&self) -> Option<&TlsAcceptor> {
        self.rawsocket.as_ref()
    }

    /// Re-reads the certificate and key files: new handshakes get the new certificate;
    /// a file that fails the checks leaves the old one in place. Counted and logged
    /// either way.
    pub fn reload(&self) -> Result<(), CertificateError> {
        let result = |r: &str| vec![("result".to_owned(), r.to_owned())];
        match certificate::load(&self.config.certificate, &self.config.key) {
            Ok(loaded) => {
                self.current.set(loaded.certified.clone());
                self.installed(&loaded);
                self.metrics.tls_reloads.get_or_create(&result("ok")).inc();
                tracing::info!(certificate = %self.config.certificate.display(), not_after = ?loaded.not_after, "TLS certificate reloaded");
                Ok(())
            }
            Err(e) => {
                self.metrics.tls_reloads.get_or_create(&result("failed")).inc();
                tracing::error!(error = %e, "TLS certificate reload failed; still serving the previous certificate");
                Err(e)
            }
        }
    }

    fn installed(&self, loaded: &LoadedCertificate) {
        self.metrics.tls_certificate_expiry.set(loaded.not_after.unwrap_or(0));
        if let Some(t) = loaded.not_after {
            let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64);
            if t <= now {
                tracing::warn!(certificate = %self.config.certificate.display(), not_after = t, "the TLS certificate has expired");
            }
        }
    }
}

fn acceptor(current: &Arc<CurrentCertificate>, alpn: Vec<Vec<u8>>) -> Result<TlsAcceptor, rustls::Error> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_cert_resolver(current.clone());
    config.alpn_protocols = alpn;
    Ok(TlsAcceptor::from(Arc::new(config)))
}

/// The TLS handshake of an admitted connection, by `deadline` (the connection's
/// handshake deadline). `None` when it failed or timed out (both counted: a plain
/// client on a TLS port ends here), or when the connection was evicted or the router
/// is shutting down.
pub async fn handshake<S>(
    acceptor: &TlsAcceptor,
    stream: S,
    deadline: Instant,
    admission: &Admission,
    router: &Router,
    peer: &str,
) -> Option<TlsStream<S>>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    tokio::select! {
        done = tokio::time::timeout_at(deadline, acceptor.accept(stream)) => match done {
            Ok(Ok(tls)) => Some(tls),
            Ok(Err(e)) => {
                router.metrics.tls_handshakes_failed.inc();
                tracing::debug!(peer, error = %e, "TLS handshake failed");
                None
            }
            Err(_) => {
                router.metrics.tls_handshakes_failed.inc();
                tracing::debug!(peer, "TLS handshake not finished within the handshake deadline");
                None
            }
        },
        _ = admission.evicted().cancelled() => None,
        _ = router.shutdown.cancelled() => None,
    }
}

/// The handshake of a refused connection, so it can be told why in its own protocol;
/// bounded by `wait`. Not counted: the refusal is.
pub async fn handshake_refused<S>(acceptor: &TlsAcceptor, stream: S, wait: std::time::Duration) -> Option<TlsStream<S>>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    tokio::time::timeout(wait, acceptor.accept(stream)).await.ok()?.ok()
}
