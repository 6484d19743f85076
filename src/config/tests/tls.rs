//! `[tls]`: paths resolved against the main file's folder, listener defaults, and each
//! way the certificate and key files can be unusable, reported at the setting that
//! names the file.

use std::path::Path;

use super::{err, temp_dir, write, OPEN_REALM};
use crate::config::{Config, ConfigError, ConfigErrors, TlsConfig};

/// A self-signed certificate for localhost and its key, as PEM.
fn self_signed() -> (String, String) {
    let key = rcgen::KeyPair::generate().expect("key");
    let params = rcgen::CertificateParams::new(vec!["localhost".to_owned()]).expect("params");
    let cert = params.self_signed(&key).expect("certificate");
    (cert.pem(), key.serialize_pem())
}

/// A main file in `dir` whose `[tls]` table is `tls` (from line 1), with a realm after it.
fn main_file(dir: &Path, tls: &str) -> std::path::PathBuf {
    let main = dir.join("switchyard.toml");
    let realm = OPEN_REALM.replace("[[roles", "[[realms.roles").replace("\nname = \"realm1\"", "[[realms]]\nname = \"realm1\"");
    write(&main, &format!("{tls}\n{realm}"));
    main
}

fn load_errors(main: &Path) -> Vec<ConfigError> {
    match Config::load(main) {
        Ok(config) => panic!("expected errors, got {config:?}"),
        Err(ConfigErrors(errors)) => errors,
    }
}

#[test]
fn paths_are_relative_to_the_main_file_and_both_listeners_default_on() {
    let dir = temp_dir("tls-ok");
    let (cert, key) = self_signed();
    write(&dir.join("tls/cert.pem"), &cert);
    write(&dir.join("tls/key.pem"), &key);
    let main = main_file(&dir, "[tls]\ncertificate = \"tls/cert.pem\"\nkey = \"tls/key.pem\"\n");
    let config = Config::load(&main).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(config.tls, Some(TlsConfig::both(dir.join("tls/cert.pem"), dir.join("tls/key.pem"))));

    let main = main_file(&dir, "[tls]\ncertificate = \"tls/cert.pem\"\nkey = \"tls/key.pem\"\nrawsocket = false\n");
    let tls = Config::load(&main).unwrap_or_else(|e| panic!("{e}")).tls.expect("tls");
    assert_eq!((tls.websocket, tls.rawsocket), (true, false));
}

#[test]
fn unreadable_files_point_at_their_setting() {
    let dir = temp_dir("tls-unreadable");
    let (_, key) = self_signed();
    write(&dir.join("key.pem"), &key);
    let main = main_file(&dir, "[tls]\ncertificate = \"missing.pem\"\nkey = \"key.pem\"\n");
    let missing = dir.join("missing.pem");
    assert_eq!(
        load_errors(&main),
        vec![err(&main, 2, 15, &format!("cannot read certificate file `{}`: No such file or directory (os error 2)", missing.display()))]
    );
}

#[test]
fn a_file_without_a_key_or_without_a_certificate() {
    let dir = temp_dir("tls-empty");
    let (cert, _) = self_signed();
    write(&dir.join("cert.pem"), &cert);
    let main = main_file(&dir, "[tls]\ncertificate = \"cert.pem\"\nkey    = \"cert.pem\"\n");
    let path = dir.join("cert.pem");
    assert_eq!(
        load_errors(&main),
        vec![err(&main, 3, 10, &format!("key file `{}` holds no PEM private key (unencrypted PKCS#8, RSA or SEC1)", path.display()))]
    );

    write(&dir.join("notes.pem"), "just text\n");
    let (_, key) = self_signed();
    write(&dir.join("key.pem"), &key);
    let main = main_file(&dir, "[tls]\ncertificate = \"notes.pem\"\nkey = \"key.pem\"\n");
    let path = dir.join("notes.pem");
    assert_eq!(
        load_errors(&main),
        vec![err(&main, 2, 15, &format!("certificate file `{}` holds no PEM certificate (-----BEGIN CERTIFICATE-----)", path.display()))]
    );
}

#[test]
fn a_key_that_does_not_match_the_certificate() {
    let dir = temp_dir("tls-mismatch");
    let (cert, _) = self_signed();
    let (_, other_key) = self_signed();
    write(&dir.join("cert.pem"), &cert);
    write(&dir.join("key.pem"), &other_key);
    let main = main_file(&dir, "[tls]\ncertificate = \"cert.pem\"\nkey = \"key.pem\"\n");
    assert_eq!(
        load_errors(&main),
        vec![err(
            &main,
            3,
            7,
            &format!("the private key in `{}` does not match the certificate in `{}`", dir.join("key.pem").display(), dir.join("cert.pem").display())
        )]
    );
}

#[test]
fn table_errors() {
    let dir = temp_dir("tls-table");
    let main = main_file(&dir, "[tls]\ncertificate = \"\"\nkey = \"k.pem\"\nwebsocket = false\nrawsocket = false\n");
    assert_eq!(
        load_errors(&main),
        vec![
            err(&main, 2, 15, "[tls] `certificate` must not be empty"),
            err(&main, 4, 13, "[tls] with `websocket = false` and `rawsocket = false` secures no listener: remove the table to serve plain TCP"),
        ]
    );
    let main = main_file(&dir, "[tls]\ncertificate = \"c.pem\"\n");
    assert_eq!(load_errors(&main), vec![err(&main, 1, 1, "missing key `key`")]);
    let main = main_file(&dir, "[tls]\ncertificate = \"c.pem\"\nkey = \"k.pem\"\ncert = \"x\"\n");
    let errors = load_errors(&main);
    assert_eq!((errors[0].line, errors[0].column), (4, 1), "{errors:?}");
    assert!(errors[0].message.starts_with("unknown key `cert`"), "{errors:?}");
}
