//! Validation of `[tls]`: the paths (relative to the main file's folder, like
//! `realms_dir`), which listeners use TLS, and the files themselves, loaded exactly as
//! the router will load them, so `check-config` catches a missing file, a missing key
//! or a key that does not match the certificate, at the setting that names the file.

use std::path::{Path, PathBuf};

use toml::Spanned;

use super::certificate;
use super::error::{ConfigError, Source};
use super::raw::RawTls;
use super::TlsConfig;

pub(super) fn validate(src: &Source, raw: &RawTls, errors: &mut Vec<ConfigError>) -> Option<TlsConfig> {
    let before = errors.len();
    let certificate = path(src, "certificate", &raw.certificate, errors);
    let key = path(src, "key", &raw.key, errors);
    let websocket = raw.websocket.as_ref().is_none_or(|v| *v.get_ref());
    let rawsocket = raw.rawsocket.as_ref().is_none_or(|v| *v.get_ref());
    if !websocket && !rawsocket {
        // A [tls] table that secures nothing is more likely a mistake than a wish;
        // leaving the table out is how TLS is turned off.
        let at = raw.websocket.as_ref().or(raw.rawsocket.as_ref()).map_or(0..0, Spanned::span);
        errors.push(src.error(at, "[tls] with `websocket = false` and `rawsocket = false` secures no listener: remove the table to serve plain TCP"));
    }
    if errors.len() != before {
        return None;
    }
    let (certificate, key) = (certificate?, key?);
    if let Err(e) = certificate::load(&certificate, &key) {
        let at = if e.is_about_key() { raw.key.span() } else { raw.certificate.span() };
        errors.push(src.error(at, e.to_string()));
        return None;
    }
    Some(TlsConfig { certificate, key, websocket, rawsocket })
}

fn path(src: &Source, key: &str, value: &Spanned<String>, errors: &mut Vec<ConfigError>) -> Option<PathBuf> {
    if value.get_ref().is_empty() {
        errors.push(src.error(value.span(), format!("[tls] `{key}` must not be empty")));
        return None;
    }
    Some(src.file.parent().unwrap_or(Path::new("")).join(value.get_ref()))
}
