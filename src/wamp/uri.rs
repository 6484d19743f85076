//! WAMP URIs and match policies: the spec's strict and loose URI rules, and the
//! `exact` / `prefix` / `wildcard` match policies used by subscriptions, registrations
//! and permissions. Pure functions, no I/O.

use std::fmt;

/// How a subscription, registration or permission URI is matched against a concrete URI.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub enum MatchPolicy {
    #[default]
    Exact,
    Prefix,
    Wildcard,
}

impl MatchPolicy {
    /// Parses the `match` option as sent in SUBSCRIBE/REGISTER options or written in config.
    pub fn parse(s: &str) -> Option<MatchPolicy> {
        match s {
            "exact" => Some(MatchPolicy::Exact),
            "prefix" => Some(MatchPolicy::Prefix),
            "wildcard" => Some(MatchPolicy::Wildcard),
            _ => None,
        }
    }

    /// The `match` of SUBSCRIBE/REGISTER options (exact when absent), or why not.
    pub fn from_options(options: &super::Dict) -> Result<MatchPolicy, String> {
        match options.get("match") {
            None => Ok(MatchPolicy::Exact),
            Some(super::Value::Str(s)) => MatchPolicy::parse(s).ok_or_else(|| format!("unknown match policy '{s}'")),
            Some(_) => Err("match must be a string".into()),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            MatchPolicy::Exact => "exact",
            MatchPolicy::Prefix => "prefix",
            MatchPolicy::Wildcard => "wildcard",
        }
    }
}

impl fmt::Display for MatchPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Strict URI component: lower-case letters, digits and `_` (spec: `^[0-9a-z_]+$`).
fn strict_component(c: &str) -> bool {
    !c.is_empty() && c.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

/// Loose URI component: anything but whitespace, `.` and `#` (spec: `^[^\s\.#]+$`).
fn loose_component(c: &str) -> bool {
    !c.is_empty() && !c.chars().any(|ch| ch.is_whitespace() || ch == '.' || ch == '#')
}

/// Checks a URI under a match policy.
///
/// - `exact`: every component non-empty.
/// - `prefix`: like exact, but the URI may end in a dot-free partial component and may be
///   empty (the empty prefix matches everything). A trailing `.` is allowed
///   (`com.example.` is a valid prefix).
/// - `wildcard`: components may be empty (an empty component matches any one component).
pub fn is_valid(uri: &str, policy: MatchPolicy, strict: bool) -> bool {
    let component_ok = |c: &str| if strict { strict_component(c) } else { loose_component(c) };
    match policy {
        MatchPolicy::Exact => uri.split('.').all(component_ok),
        MatchPolicy::Prefix => {
            if uri.is_empty() {
                return true;
            }
            let body = uri.strip_suffix('.').unwrap_or(uri);
            !body.is_empty() && body.split('.').all(component_ok)
        }
        MatchPolicy::Wildcard => {
            // At least one separator or component; empty components are wildcards.
            uri.split('.').all(|c| c.is_empty() || component_ok(c))
        }
    }
}

/// True for URIs whose first component is `wamp`: the spec reserves them for URIs the
/// protocol itself defines (errors, meta events and procedures), so applications must
/// not publish or register them.
pub fn is_reserved(uri: &str) -> bool {
    uri.split('.').next() == Some("wamp")
}

/// True when `pattern` under `policy` matches the concrete `uri`.
pub fn matches(pattern: &str, policy: MatchPolicy, uri: &str) -> bool {
    match policy {
        MatchPolicy::Exact => pattern == uri,
        MatchPolicy::Prefix => uri.starts_with(pattern),
        MatchPolicy::Wildcard => wildcard_matches(pattern, uri),
    }
}

/// Wildcard semantics of the spec: same number of components, an empty pattern
/// component matches any single component.
pub fn wildcard_matches(pattern: &str, uri: &str) -> bool {
    let mut p = pattern.split('.');
    let mut u = uri.split('.');
    loop {
        match (p.next(), u.next()) {
            (None, None) => return true,
            (Some(pc), Some(uc)) => {
                if !pc.is_empty() && pc != uc {
                    return false;
                }
            }
            _ => return false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strict_and_loose_exact() {
        assert!(is_valid("com.myapp.topic1", MatchPolicy::Exact, true));
        assert!(!is_valid("com.myapp.Topic1", MatchPolicy::Exact, true));
        assert!(is_valid("com.myapp.Topic1", MatchPolicy::Exact, false));
        assert!(!is_valid("com..topic", MatchPolicy::Exact, true));
        assert!(!is_valid("", MatchPolicy::Exact, false));
        assert!(!is_valid("com.my app", MatchPolicy::Exact, false));
        assert!(!is_valid("com.a#b", MatchPolicy::Exact, false));
        assert!(!is_valid(".com", MatchPolicy::Exact, false));
    }

    #[test]
    fn the_wamp_namespace_is_reserved() {
        assert!(is_reserved("wamp"));
        assert!(is_reserved("wamp.session.count"));
        assert!(!is_reserved("wampx.session"));
        assert!(!is_reserved("com.wamp.x"));
        assert!(!is_reserved(""));
    }

    #[test]
    fn prefix_and_wildcard_validity() {
        assert!(is_valid("", MatchPolicy::Prefix, true));
        assert!(is_valid("com.myapp.", MatchPolicy::Prefix, true));
        assert!(is_valid("com.myapp.top", MatchPolicy::Prefix, true));
        assert!(!is_valid("com..x", MatchPolicy::Prefix, true));
        assert!(is_valid("com..topic", MatchPolicy::Wildcard, true));
        assert!(is_valid("com.myapp..update", MatchPolicy::Wildcard, true));
        assert!(!is_valid("com.My..x", MatchPolicy::Wildcard, true));
    }

    #[test]
    fn matching() {
        assert!(matches("com.myapp", MatchPolicy::Prefix, "com.myapp.topic1"));
        assert!(matches("com.myapp", MatchPolicy::Prefix, "com.myapp2"));
        assert!(!matches("com.myapp", MatchPolicy::Prefix, "com.other"));
        assert!(matches("com.myapp..update", MatchPolicy::Wildcard, "com.myapp.user.update"));
        assert!(!matches("com.myapp..update", MatchPolicy::Wildcard, "com.myapp.user.x.update"));
        assert!(!matches("com.myapp..update", MatchPolicy::Wildcard, "com.myapp.update"));
        assert!(matches("..", MatchPolicy::Wildcard, "a.b.c"));
        assert!(!matches("a.b", MatchPolicy::Exact, "a.b.c"));
    }
}
