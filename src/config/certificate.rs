//! Loading the TLS certificate chain and private key from PEM files, checked the same
//! way by `check-config`, at start and on every SIGHUP reload: readable files, at least
//! one certificate, a private key rustls can sign with (PKCS#8, RSA or SEC1), and that
//! key matching the certificate. It lives beside the configuration, which reports these
//! errors at the setting that named the file; the transport only installs the result.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::sign::CertifiedKey;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

/// A certificate chain and its key, ready to serve.
#[derive(Debug, Clone)]
pub struct LoadedCertificate {
    pub certified: Arc<CertifiedKey>,
    /// `notAfter` of the end-entity certificate, in Unix seconds; `None` if it could
    /// not be read (the certificate is still served).
    pub not_after: Option<i64>,
}

/// Why a certificate or key file cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum CertificateError {
    #[error("cannot read certificate file `{}`: {source}", .path.display())]
    ReadCertificate { path: PathBuf, source: std::io::Error },
    #[error("cannot read key file `{}`: {source}", .path.display())]
    ReadKey { path: PathBuf, source: std::io::Error },
    #[error("certificate file `{}` is not valid PEM: {reason}", .path.display())]
    CertificatePem { path: PathBuf, reason: String },
    #[error("certificate file `{}` holds no PEM certificate (-----BEGIN CERTIFICATE-----)", .path.display())]
    NoCertificate { path: PathBuf },
    #[error("certificate file `{}` holds an invalid certificate: {reason}", .path.display())]
    BadCertificate { path: PathBuf, reason: String },
    #[error("key file `{}` holds no PEM private key (unencrypted PKCS#8, RSA or SEC1)", .path.display())]
    NoKey { path: PathBuf },
    #[error("key file `{}` holds a private key that cannot be used: {reason}", .path.display())]
    BadKey { path: PathBuf, reason: String },
    #[error("the private key in `{}` does not match the certificate in `{}`", .key.display(), .certificate.display())]
    KeyMismatch { key: PathBuf, certificate: PathBuf },
}

impl CertificateError {
    /// Whether the key file (rather than the certificate file) is at fault, so that
    /// configuration errors point at the right setting.
    pub fn is_about_key(&self) -> bool {
        matches!(self, CertificateError::ReadKey { .. } | CertificateError::NoKey { .. } | CertificateError::BadKey { .. } | CertificateError::KeyMismatch { .. })
    }
}

/// Reads `certificate` (PEM chain, end-entity certificate first) and `key` (PEM).
pub fn load(certificate: &Path, key: &Path) -> Result<LoadedCertificate, CertificateError> {
    let cert_pem = std::fs::read(certificate)
        .map_err(|source| CertificateError::ReadCertificate { path: certificate.to_path_buf(), source })?;
    let key_pem = std::fs::read(key).map_err(|source| CertificateError::ReadKey { path: key.to_path_buf(), source })?;

    let chain = CertificateDer::pem_slice_iter(&cert_pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| CertificateError::CertificatePem { path: certificate.to_path_buf(), reason: e.to_string() })?;
    let Some(leaf) = chain.first() else {
        return Err(CertificateError::NoCertificate { path: certificate.to_path_buf() });
    };
    let not_after = super::x509::not_after(leaf);

    let private = match PrivateKeyDer::from_pem_slice(&key_pem) {
        Ok(k) => k,
        Err(rustls_pki_types::pem::Error::NoItemsFound) => return Err(CertificateError::NoKey { path: key.to_path_buf() }),
        Err(e) => return Err(CertificateError::BadKey { path: key.to_path_buf(), reason: e.to_string() }),
    };
    let signer = rustls::crypto::ring::sign::any_supported_type(&private)
        .map_err(|e| CertificateError::BadKey { path: key.to_path_buf(), reason: e.to_string() })?;
    let certified = CertifiedKey::new(chain, signer);
    match certified.keys_match() {
        Ok(()) => {}
        // Only a key type that cannot tell its public key; rustls serves those too.
        Err(rustls::Error::InconsistentKeys(rustls::InconsistentKeys::Unknown)) => {}
        Err(rustls::Error::InconsistentKeys(rustls::InconsistentKeys::KeyMismatch)) => {
            return Err(CertificateError::KeyMismatch { key: key.to_path_buf(), certificate: certificate.to_path_buf() });
        }
        Err(e) => return Err(CertificateError::BadCertificate { path: certificate.to_path_buf(), reason: e.to_string() }),
    }
    Ok(LoadedCertificate { certified: Arc::new(certified), not_after })
}
