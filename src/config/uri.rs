//! The URI and match policy written in a config table (`uri`, `match`), judged the same
//! way for role permissions and replay rules.

use toml::Spanned;

use super::error::{ConfigError, Source};
use crate::wamp::uri::{is_valid, MatchPolicy};

/// The policy written as `match` (exact when absent) if it is known and `uri` is valid
/// under it (loose rules: URIs in a realm file name the platform's topics, which need
/// not be strict); otherwise records why not and returns `None`. Shared by permissions
/// and replay rules, which are written alike.
pub(super) fn uri_and_policy(
    src: &Source,
    uri: &Spanned<String>,
    match_policy: Option<&Spanned<String>>,
    errors: &mut Vec<ConfigError>,
) -> Option<MatchPolicy> {
    let policy = match match_policy {
        None => MatchPolicy::Exact,
        Some(m) => match MatchPolicy::parse(m.get_ref()) {
            Some(policy) => policy,
            None => {
                let msg = format!(
                    "unknown match policy `{}`, expected `exact`, `prefix` or `wildcard`",
                    m.get_ref()
                );
                errors.push(src.error(m.span(), msg));
                // With an unknown policy the URI cannot be judged; one error for the
                // line is enough.
                return None;
            }
        },
    };
    if !is_valid(uri.get_ref(), policy, false) {
        let msg = format!(
            "URI `{}` is not valid for match policy `{policy}`",
            uri.get_ref()
        );
        errors.push(src.error(uri.span(), msg));
        return None;
    }
    Some(policy)
}
