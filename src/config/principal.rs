//! Validation of a realm's principals and their credentials: a ticket, a WAMP-CRA
//! secret (plain or salted) and WAMP-Cryptosign public keys. Mistakes here lock people
//! out (or worse, let a half-configured principal in), so everything that can be
//! checked without a client is checked here, with the position of the offending value.

use std::collections::HashMap;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use toml::Spanned;

use super::error::{ConfigError, Source};
use super::raw::RawPrincipal;
use super::{CraSalt, CraSecret, PrincipalConfig, RoleConfig};

/// PBKDF2 output lengths accepted for salted secrets, in bytes: below 16 the derived
/// key is weaker than the HMAC it feeds; past 64 SHA-256 adds nothing.
const KEYLEN: std::ops::RangeInclusive<i64> = 16..=64;

pub(super) fn principals(
    src: &Source,
    realm: &str,
    raw: Vec<RawPrincipal>,
    roles: &[RoleConfig],
    errors: &mut Vec<ConfigError>,
) -> Vec<PrincipalConfig> {
    // Name -> line of first definition; public key -> the authid that has it.
    let mut seen: HashMap<String, usize> = HashMap::new();
    let mut keys: HashMap<[u8; 32], String> = HashMap::new();
    let mut principals = Vec::with_capacity(raw.len());
    for p in raw {
        let authid = p.authid.get_ref().clone();
        if authid.is_empty() {
            errors.push(src.error(p.authid.span(), "principal authid must not be empty"));
        } else if let Some(first) = seen.get(&authid) {
            let msg = format!("duplicate principal `{authid}`, first defined on line {first}");
            errors.push(src.error(p.authid.span(), msg));
            continue;
        } else {
            seen.insert(authid.clone(), src.position(p.authid.span().start).0);
        }
        if let Some(ticket) = &p.ticket {
            if ticket.get_ref().is_empty() {
                errors.push(src.error(ticket.span(), format!("principal `{authid}` has an empty ticket")));
            }
        }
        if !roles.iter().any(|r| r.name == *p.role.get_ref()) {
            let msg = format!("role `{}` of principal `{authid}` is not defined in realm `{realm}`", p.role.get_ref());
            errors.push(src.error(p.role.span(), msg));
        }
        let wampcra = cra(src, &authid, &p, errors);
        let mut cryptosign = Vec::new();
        for key in p.cryptosign.iter().flatten() {
            let Some(bytes) = public_key(src, key, errors) else { continue };
            if let Some(owner) = keys.get(&bytes) {
                let msg = format!("cryptosign key already belongs to principal `{owner}`: a key identifies one principal");
                errors.push(src.error(key.span(), msg));
            } else {
                keys.insert(bytes, authid.clone());
                cryptosign.push(bytes);
            }
        }
        let listed_keys = p.cryptosign.as_ref().is_some_and(|k| !k.is_empty());
        if p.ticket.is_none() && p.secret.is_none() && !listed_keys {
            let msg = format!(
                "principal `{authid}` has no credential: give it a `ticket`, a `secret` (WAMP-CRA) \
                 or `cryptosign` public keys"
            );
            errors.push(src.error(p.authid.span(), msg));
        }
        principals.push(PrincipalConfig {
            authid,
            ticket: p.ticket.map(Spanned::into_inner),
            role: p.role.into_inner(),
            wampcra,
            cryptosign,
        });
    }
    principals
}

/// The WAMP-CRA secret of `p`, if it has one; `salt`, `iterations` and `keylen` come
/// together or not at all.
fn cra(src: &Source, authid: &str, p: &RawPrincipal, errors: &mut Vec<ConfigError>) -> Option<CraSecret> {
    let Some(secret) = &p.secret else {
        for (key, at) in [("salt", p.salt.as_ref().map(Spanned::span)), ("iterations", p.iterations.as_ref().map(Spanned::span)), ("keylen", p.keylen.as_ref().map(Spanned::span))] {
            if let Some(at) = at {
                errors.push(src.error(at, format!("`{key}` of principal `{authid}` belongs to a WAMP-CRA `secret`, which it lacks")));
            }
        }
        return None;
    };
    if secret.get_ref().is_empty() {
        errors.push(src.error(secret.span(), format!("principal `{authid}` has an empty secret")));
    }
    let salt = match &p.salt {
        Some(salt) => salted(src, authid, salt, secret, p, errors),
        None => {
            for (key, value) in [("iterations", &p.iterations), ("keylen", &p.keylen)] {
                if let Some(v) = value {
                    let msg = format!("`{key}` of principal `{authid}` needs a `salt`: it is a parameter of salted WAMP-CRA");
                    errors.push(src.error(v.span(), msg));
                }
            }
            None
        }
    };
    Some(CraSecret { secret: secret.get_ref().clone(), salt })
}

fn salted(
    src: &Source,
    authid: &str,
    salt: &Spanned<String>,
    secret: &Spanned<String>,
    p: &RawPrincipal,
    errors: &mut Vec<ConfigError>,
) -> Option<CraSalt> {
    let before = errors.len();
    if salt.get_ref().is_empty() {
        errors.push(src.error(salt.span(), format!("principal `{authid}` has an empty salt")));
    }
    let mut param = |key: &str, value: &Option<Spanned<i64>>, range: std::ops::RangeInclusive<i64>| -> Option<u32> {
        let Some(v) = value else {
            let msg = format!("salted secret of principal `{authid}` needs `{key}` (clients derive the key with it)");
            errors.push(src.error(salt.span(), msg));
            return None;
        };
        if !range.contains(v.get_ref()) {
            let msg = format!("`{key}` of principal `{authid}` must be between {} and {}, got {}", range.start(), range.end(), v.get_ref());
            errors.push(src.error(v.span(), msg));
            return None;
        }
        u32::try_from(*v.get_ref()).ok()
    };
    let iterations = param("iterations", &p.iterations, 1..=i64::from(u32::MAX));
    let keylen = param("keylen", &p.keylen, KEYLEN);
    // The secret of a salted principal is the derived key, never the password: a
    // password pasted here would never match what clients compute.
    if let Some(keylen) = keylen {
        let decoded = STANDARD.decode(secret.get_ref()).ok();
        if decoded.as_ref().map(Vec::len) != Some(keylen as usize) {
            let msg = format!(
                "with `salt`, the `secret` of principal `{authid}` must be the derived key: base64 of {keylen} bytes \
                 (PBKDF2-HMAC-SHA256 of the password; `switchyard wampcra-key` prints it), not the password"
            );
            errors.push(src.error(secret.span(), msg));
        }
    }
    match (iterations, keylen) {
        (Some(iterations), Some(keylen)) if errors.len() == before => {
            Some(CraSalt { salt: salt.get_ref().clone(), iterations, keylen })
        }
        _ => None,
    }
}

/// An Ed25519 public key in hex (64 digits, either case), checked to be a point of the
/// curve so that a typo is found now rather than at the first login.
fn public_key(src: &Source, key: &Spanned<String>, errors: &mut Vec<ConfigError>) -> Option<[u8; 32]> {
    let text = key.get_ref();
    let problem = if text.len() != 64 {
        format!("cryptosign key must be 64 hex digits (32 bytes), got {} characters", text.chars().count())
    } else if let Some(bytes) = decode_hex32(text) {
        if ed25519_dalek::VerifyingKey::from_bytes(&bytes).is_ok() {
            return Some(bytes);
        }
        format!("cryptosign key `{text}` is not a valid Ed25519 public key")
    } else {
        format!("cryptosign key `{text}` is not hex: only 0-9 and a-f are allowed")
    };
    errors.push(src.error(key.span(), problem));
    None
}

fn decode_hex32(text: &str) -> Option<[u8; 32]> {
    // from_str_radix alone would take a sign ("+f"): only digits are hex here.
    if !text.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let digits = text.as_bytes();
    let mut out = [0u8; 32];
    for (i, byte) in out.iter_mut().enumerate() {
        let pair = std::str::from_utf8(digits.get(2 * i..2 * i + 2)?).ok()?;
        *byte = u8::from_str_radix(pair, 16).ok()?;
    }
    Some(out)
}
