//! The credentials of a realm file's principals, indexed the way logins look them up:
//! tickets and WAMP-CRA secrets by authid, Cryptosign public keys by key. Also the
//! decoys for authids that do not exist, so that a WAMP-CRA challenge (which names the
//! principal's role and salt) looks the same whether or not the authid is known.

use std::collections::HashMap;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::config::{CraSalt, RealmConfig};

/// A WAMP-CRA principal: its HMAC key (the secret's text, or the derived key's base64
/// text when salted), its role, and the salt parameters the client needs.
#[derive(Debug)]
pub(super) struct CraEntry {
    pub key: Vec<u8>,
    pub role: String,
    pub salt: Option<CraSalt>,
}

/// Who a static public key belongs to.
#[derive(Debug)]
pub(super) struct KeyOwner {
    pub authid: String,
    pub role: String,
}

#[derive(Debug)]
pub(super) struct Credentials {
    /// authid -> (ticket, role)
    tickets: HashMap<String, (String, String)>,
    cra: HashMap<String, CraEntry>,
    /// WAMP-CRA authids sorted, so a decoy's choice of template does not depend on
    /// hash map order.
    cra_ids: Vec<String>,
    keys: HashMap<[u8; 32], KeyOwner>,
    /// Per-process secret behind the decoys: the same unknown authid always gets the
    /// same role and salt (as a real one would), but no one can predict which.
    decoy_seed: [u8; 32],
}

/// What an unknown authid is challenged with.
pub(super) struct Decoy {
    pub role: String,
    pub salt: Option<CraSalt>,
    /// An HMAC key that nothing matches, checked like a real one so that the time of
    /// the answer does not tell the authid is unknown.
    pub key: Vec<u8>,
}

impl Credentials {
    pub fn from_config(realm: &RealmConfig) -> Credentials {
        let mut creds = Credentials {
            tickets: HashMap::new(),
            cra: HashMap::new(),
            cra_ids: Vec::new(),
            keys: HashMap::new(),
            decoy_seed: rand::random(),
        };
        for p in &realm.principals {
            if let Some(ticket) = &p.ticket {
                creds.tickets.insert(p.authid.clone(), (ticket.clone(), p.role.clone()));
            }
            if let Some(cra) = &p.wampcra {
                let entry = CraEntry { key: cra.secret.as_bytes().to_vec(), role: p.role.clone(), salt: cra.salt.clone() };
                creds.cra.insert(p.authid.clone(), entry);
                creds.cra_ids.push(p.authid.clone());
            }
            for key in &p.cryptosign {
                creds.keys.insert(*key, KeyOwner { authid: p.authid.clone(), role: p.role.clone() });
            }
        }
        creds.cra_ids.sort();
        creds
    }

    pub fn has_tickets(&self) -> bool {
        !self.tickets.is_empty()
    }

    pub fn has_cra(&self) -> bool {
        !self.cra.is_empty()
    }

    pub fn has_keys(&self) -> bool {
        !self.keys.is_empty()
    }

    /// The ticket and role of `authid`.
    pub fn ticket(&self, authid: &str) -> Option<(&str, &str)> {
        self.tickets.get(authid).map(|(t, r)| (t.as_str(), r.as_str()))
    }

    /// The principals whose ticket is `ticket` (an HTTP bridge's Bearer credential names
    /// no authid), as (authid, role). Every ticket is compared, without an early exit,
    /// so the time taken does not tell how close a guess came.
    pub fn ticket_owners(&self, ticket: &str) -> Vec<(&str, &str)> {
        let mut owners = Vec::new();
        for (authid, (t, role)) in &self.tickets {
            if constant_time_eq(t.as_bytes(), ticket.as_bytes()) {
                owners.push((authid.as_str(), role.as_str()));
            }
        }
        owners
    }

    pub fn cra(&self, authid: &str) -> Option<&CraEntry> {
        self.cra.get(authid)
    }

    pub fn key_owner(&self, pubkey: &[u8; 32]) -> Option<&KeyOwner> {
        self.keys.get(pubkey)
    }

    /// The challenge parameters of an unknown `authid`: those of a real principal picked
    /// by a keyed hash of the authid, with a salt of the same length made up likewise.
    pub fn decoy(&self, authid: &str) -> Decoy {
        let pick = self.keyed(b"template", authid);
        let index = u64::from_le_bytes([pick[0], pick[1], pick[2], pick[3], pick[4], pick[5], pick[6], pick[7]]);
        let template = match self.cra_ids.len() {
            0 => None,
            n => self.cra_ids.get((index % n as u64) as usize).and_then(|id| self.cra.get(id)),
        };
        let salt = template.and_then(|t| t.salt.as_ref()).map(|s| {
            let mut made_up = STANDARD.encode(self.keyed(b"salt", authid));
            made_up.truncate(s.salt.len().clamp(1, made_up.len()));
            CraSalt { salt: made_up, iterations: s.iterations, keylen: s.keylen }
        });
        Decoy {
            role: template.map(|t| t.role.clone()).unwrap_or_default(),
            salt,
            key: self.keyed(b"key", authid).to_vec(),
        }
    }

    fn keyed(&self, label: &[u8], authid: &str) -> [u8; 32] {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.decoy_seed).unwrap_or_else(|_| unreachable!("HMAC accepts any key length"));
        mac.update(label);
        mac.update(&[0]);
        mac.update(authid.as_bytes());
        mac.finalize().into_bytes().into()
    }
}

/// Compares secrets without an early exit, so timing does not reveal a common prefix.
pub(super) fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}
