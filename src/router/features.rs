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
    // The meta API (router/meta; tests/meta.rs and the interop suites' meta tests).
    "session_meta_api",
    "subscription_meta_api",
    // ppt_* attributes passed on, payload untouched (wamp/ppt.rs; tests/passthru.rs).
    "payload_passthru_mode",
];

/// Announced by realms that store events (a `[replay]` rule): history through
/// `wamp.subscription.get_events`, retained events, and `_replay` (tests/replay.rs, the
/// interop suites' replay tests).
const STORE_FEATURES: &[&str] = &["event_history", "event_retention"];

const DEALER_FEATURES: &[&str] = &[
    "caller_identification",
    "progressive_call_results",
    "call_canceling",
    "registration_revocation",
    // router/dealer; tests/rpc_advanced.rs and the interop suites' RPC tests.
    "shared_registration",
    "pattern_based_registration",
    "call_timeout",
    // router/meta.
    "session_meta_api",
    "registration_meta_api",
    "testament_meta_api",
    "payload_passthru_mode",
];

fn features(names: &[&str]) -> Value {
    let f: Dict = names.iter().map(|n| ((*n).to_owned(), Value::Bool(true))).collect();
    Value::Dict(dict([("features", Value::Dict(f))]))
}

/// `WELCOME.Details.roles` of a realm; `stores`: the realm has a replay store.
pub fn router_roles(stores: bool) -> Value {
    let broker: Vec<&str> = BROKER_FEATURES.iter().chain(if stores { STORE_FEATURES } else { &[] }).copied().collect();
    Value::Dict(dict([("broker", features(&broker)), ("dealer", features(DEALER_FEATURES))]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_list_exactly_the_implemented_features() {
        let roles = router_roles(false);
        let broker = roles.as_dict().unwrap()["broker"].as_dict().unwrap()["features"].as_dict().unwrap();
        assert_eq!(broker.len(), 8);
        assert_eq!(broker.get("event_history"), None, "a realm that stores nothing has no history");
        let roles = router_roles(true);
        let broker = roles.as_dict().unwrap()["broker"].as_dict().unwrap()["features"].as_dict().unwrap();
        assert_eq!((broker.len(), &broker["event_history"], &broker["event_retention"]), (10, &Value::Bool(true), &Value::Bool(true)));
        assert_eq!(broker["subscription_revocation"], Value::Bool(true));
        assert_eq!(broker["pattern_based_subscription"], Value::Bool(true));
        let dealer = roles.as_dict().unwrap()["dealer"].as_dict().unwrap()["features"].as_dict().unwrap();
        assert_eq!(
            dealer.keys().cloned().collect::<Vec<_>>(),
            vec![
                "call_canceling",
                "call_timeout",
                "caller_identification",
                "pattern_based_registration",
                "payload_passthru_mode",
                "progressive_call_results",
                "registration_meta_api",
                "registration_revocation",
                "session_meta_api",
                "shared_registration",
                "testament_meta_api"
            ]
        );
    }
}
