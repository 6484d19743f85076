//! Principals' credentials in the realm file: tickets, WAMP-CRA secrets (plain and
//! salted) and Cryptosign public keys, accepted with their values and refused with the
//! position of the value at fault.

use super::{err, errors, parse, MAIN};
use crate::config::{CraSalt, CraSecret, PrincipalConfig};

/// Lines 1-3: a realm with roles `user` and `reader`.
const REALM: &str = "[[realms]]\nname = \"realm1\"\nroles = [{ name = \"user\" }, { name = \"reader\" }]\n";
/// Public keys of the spec's first two Cryptosign test vectors' private keys.
const KEY_A: &str = "1adfc8bfe1d35616e64dffbd900096f23b066f914c8c2ffbb66f6075b96e116d";
const KEY_B: &str = "6ed32739ff04a6074044ff0b0e3bfc7c856bc9d5f1d25efc57363bda0af3a8b0";

fn bytes(hex: &str) -> [u8; 32] {
    let v: Vec<u8> = (0..32).map(|i| u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).unwrap()).collect();
    v.try_into().unwrap()
}

#[test]
fn every_credential_is_read() {
    let text = format!(
        r#"{REALM}
[[realms.principals]]
authid = "carol"
role = "user"
secret = "carol-secret"

[[realms.principals]]
authid = "erin"
role = "reader"
ticket = "erin-ticket"
secret = "64xfzBvZhGDT7PB0bQwDeI8/WR1M9x6Cw5dt0yP9koc="
salt = "salt123"
iterations = 1000
keylen = 32

[[realms.principals]]
authid = "dave"
role = "user"
cryptosign = ["{KEY_A}", "{}"]
"#,
        KEY_B.to_uppercase()
    );
    let config = parse(&text).unwrap_or_else(|e| panic!("{e}"));
    let principals = &config.realms[0].principals;
    assert_eq!(
        principals[0],
        PrincipalConfig {
            wampcra: Some(CraSecret { secret: "carol-secret".into(), salt: None }),
            ticket: None,
            ..PrincipalConfig::ticket("carol", "", "user")
        }
    );
    assert_eq!(
        principals[1],
        PrincipalConfig {
            wampcra: Some(CraSecret {
                secret: "64xfzBvZhGDT7PB0bQwDeI8/WR1M9x6Cw5dt0yP9koc=".into(),
                salt: Some(CraSalt { salt: "salt123".into(), iterations: 1000, keylen: 32 }),
            }),
            ..PrincipalConfig::ticket("erin", "erin-ticket", "reader")
        }
    );
    assert_eq!(
        principals[2],
        PrincipalConfig { cryptosign: vec![bytes(KEY_A), bytes(KEY_B)], ticket: None, ..PrincipalConfig::ticket("dave", "", "user") }
    );
    // Secrets stay out of logs.
    let shown = format!("{:?}", principals[1]);
    assert!(!shown.contains("erin-ticket") && !shown.contains("64xfz"), "{shown}");
}

#[test]
fn a_principal_needs_a_credential() {
    let text = format!("{REALM}[[realms.principals]]\nauthid = \"nobody\"\nrole = \"user\"\ncryptosign = []\n");
    assert_eq!(
        errors(&text),
        vec![err(
            MAIN,
            5,
            10,
            "principal `nobody` has no credential: give it a `ticket`, a `secret` (WAMP-CRA) or `cryptosign` public keys"
        )]
    );
}

#[test]
fn cryptosign_keys_are_checked() {
    let not_a_point = format!("02{}", "00".repeat(31));
    let text = format!(
        r#"{REALM}[[realms.principals]]
authid = "dave"
role = "user"
cryptosign = ["abcd", "{}", "{not_a_point}", "{KEY_A}"]

[[realms.principals]]
authid = "dora"
role = "user"
cryptosign = ["{KEY_A}"]
"#,
        "g".repeat(64)
    );
    let g = "g".repeat(64);
    assert_eq!(
        errors(&text),
        vec![
            err(MAIN, 7, 15, "cryptosign key must be 64 hex digits (32 bytes), got 4 characters"),
            err(MAIN, 7, 23, &format!("cryptosign key `{g}` is not hex: only 0-9 and a-f are allowed")),
            err(MAIN, 7, 91, &format!("cryptosign key `{not_a_point}` is not a valid Ed25519 public key")),
            err(MAIN, 12, 15, "cryptosign key already belongs to principal `dave`: a key identifies one principal"),
        ]
    );
}

#[test]
fn salt_parameters_come_together() {
    let text = format!(
        r#"{REALM}[[realms.principals]]
authid = "a"
role = "user"
secret = "s"
iterations = 1000

[[realms.principals]]
authid = "b"
role = "user"
ticket = "t"
salt = "x"

[[realms.principals]]
authid = "c"
role = "user"
secret = "64xfzBvZhGDT7PB0bQwDeI8/WR1M9x6Cw5dt0yP9koc="
salt = "salt123"
keylen = 32

[[realms.principals]]
authid = "d"
role = "user"
secret = "secret1"
salt = "salt123"
iterations = 0
keylen = 32

[[realms.principals]]
authid = "e"
role = "user"
secret = ""
salt = ""
iterations = 10
keylen = 8
"#
    );
    let derived = "must be the derived key: base64 of 32 bytes (PBKDF2-HMAC-SHA256 of the password; \
                   `switchyard wampcra-key` prints it), not the password";
    assert_eq!(
        errors(&text),
        vec![
            err(MAIN, 8, 14, "`iterations` of principal `a` needs a `salt`: it is a parameter of salted WAMP-CRA"),
            err(MAIN, 14, 8, "`salt` of principal `b` belongs to a WAMP-CRA `secret`, which it lacks"),
            err(MAIN, 20, 8, "salted secret of principal `c` needs `iterations` (clients derive the key with it)"),
            err(MAIN, 26, 10, &format!("with `salt`, the `secret` of principal `d` {derived}")),
            err(MAIN, 28, 14, "`iterations` of principal `d` must be between 1 and 4294967295, got 0"),
            err(MAIN, 34, 10, "principal `e` has an empty secret"),
            err(MAIN, 35, 8, "principal `e` has an empty salt"),
            err(MAIN, 37, 10, "`keylen` of principal `e` must be between 16 and 64, got 8"),
        ]
    );
}
