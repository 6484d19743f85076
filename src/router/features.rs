//! The roles and features the router announces in WELCOME. Each one listed here works
//! end to end and is covered by the autobahn suites; nothing is announced aspirationally.

use crate::wamp::{dict, Dict, Value};

const BROKER_FEATURES: &[&str] = &[
    "publisher_identification",
    "publisher_exclusion",
    "subscriber_blackwhite_listing",
    "pattern_based_subscription",
    // UNSUBSCRIBED with request 0 when a permission is withdrawn (tests/workbench,
    // tests/authorization, the interop suites' workbench tests).
    "subscription_revocation",
];

const DEALER_FEATURES: &[&str] =
    &["caller_identification", "progressive_call_results", "call_canceling", "registration_revocation"];

fn features(names: &[&str]) -> Value {
    let f: Dict = names.iter().map(|n| ((*n).to_owned(), Value::Bool(true))).collect();
    Value::Dict(dict([("features", Value::Dict(f))]))
}

/// `WELCOME.Details.roles`.
pub fn router_roles() -> Value {
    Value::Dict(dict([("broker", features(BROKER_FEATURES)), ("dealer", features(DEALER_FEATURES))]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_list_exactly_the_implemented_features() {
        let roles = router_roles();
        let broker = roles.as_dict().unwrap()["broker"].as_dict().unwrap()["features"].as_dict().unwrap();
        assert_eq!(broker.len(), 5);
        assert_eq!(broker["subscription_revocation"], Value::Bool(true));
        assert_eq!(broker["pattern_based_subscription"], Value::Bool(true));
        let dealer = roles.as_dict().unwrap()["dealer"].as_dict().unwrap()["features"].as_dict().unwrap();
        assert_eq!(dealer.keys().cloned().collect::<Vec<_>>(), vec!["call_canceling", "caller_identification", "progressive_call_results", "registration_revocation"]);
    }
}
