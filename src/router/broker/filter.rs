//! Subscriber black- and whitelisting (PUBLISH.Options `exclude`, `eligible`,
//! `exclude_authid`, `eligible_authid`, `exclude_authrole`, `eligible_authrole`) and
//! publisher exclusion (`exclude_me`).

use crate::router::error::WampError;
use crate::router::handle::SessionHandle;
use crate::wamp::ids::SessionId;
use crate::wamp::{Dict, Value};

#[derive(Debug, Default)]
pub struct Recipients {
    publisher: Option<SessionId>,
    exclude: Vec<u64>,
    eligible: Option<Vec<u64>>,
    exclude_authid: Vec<String>,
    eligible_authid: Option<Vec<String>>,
    exclude_authrole: Vec<String>,
    eligible_authrole: Option<Vec<String>>,
}

impl Recipients {
    /// Reads the publish options; a list of the wrong type is an `invalid_argument`.
    pub fn from_options(publisher: SessionId, options: &Dict) -> Result<Recipients, WampError> {
        let exclude_me = flag(options, "exclude_me", true)?;
        Ok(Recipients {
            publisher: exclude_me.then_some(publisher),
            exclude: ids(options, "exclude")?.unwrap_or_default(),
            eligible: ids(options, "eligible")?,
            exclude_authid: strings(options, "exclude_authid")?.unwrap_or_default(),
            eligible_authid: strings(options, "eligible_authid")?,
            exclude_authrole: strings(options, "exclude_authrole")?.unwrap_or_default(),
            eligible_authrole: strings(options, "eligible_authrole")?,
        })
    }

    /// True when a list names who may or may not receive the event: such a publication
    /// is delivered but not stored (spec), since history has other readers.
    pub fn is_listed(&self) -> bool {
        !self.exclude.is_empty()
            || self.eligible.is_some()
            || !self.exclude_authid.is_empty()
            || self.eligible_authid.is_some()
            || !self.exclude_authrole.is_empty()
            || self.eligible_authrole.is_some()
    }

    /// The publisher, when it excluded itself (`exclude_me`, the default).
    pub fn excluded_publisher(&self) -> Option<SessionId> {
        self.publisher
    }

    /// True when the event goes to `s`. Exclusion wins over eligibility.
    pub fn admits(&self, s: &SessionHandle) -> bool {
        if self.publisher == Some(s.id) || self.exclude.contains(&s.id.0) {
            return false;
        }
        if self.exclude_authid.contains(&s.authid) || self.exclude_authrole.contains(&s.authrole) {
            return false;
        }
        self.eligible.as_ref().is_none_or(|e| e.contains(&s.id.0))
            && self.eligible_authid.as_ref().is_none_or(|e| e.contains(&s.authid))
            && self.eligible_authrole.as_ref().is_none_or(|e| e.contains(&s.authrole))
    }
}

/// A boolean option (`exclude_me`, `retain`, `get_retained`): `default` when absent, an
/// `invalid_argument` when not a bool.
pub fn flag(options: &Dict, key: &str, default: bool) -> Result<bool, WampError> {
    match options.get(key) {
        None => Ok(default),
        Some(Value::Bool(b)) => Ok(*b),
        Some(_) => Err(WampError::InvalidArgument(format!("{key} must be a bool"))),
    }
}

fn ids(options: &Dict, key: &str) -> Result<Option<Vec<u64>>, WampError> {
    let Some(v) = options.get(key) else { return Ok(None) };
    let bad = || WampError::InvalidArgument(format!("{key} must be a list of session ids"));
    let list = v.as_list().ok_or_else(bad)?;
    list.iter().map(|x| x.as_u64().ok_or_else(bad)).collect::<Result<Vec<_>, _>>().map(Some)
}

fn strings(options: &Dict, key: &str) -> Result<Option<Vec<String>>, WampError> {
    let Some(v) = options.get(key) else { return Ok(None) };
    let bad = || WampError::InvalidArgument(format!("{key} must be a list of strings"));
    let list = v.as_list().ok_or_else(bad)?;
    list.iter().map(|x| x.as_str().map(str::to_owned).ok_or_else(bad)).collect::<Result<Vec<_>, _>>().map(Some)
}
