"""Values the router is expected to announce / send."""

# The features these tests exercise end to end.  WELCOME.Details.roles must
# announce exactly these as true (no more, no less).
BROKER_FEATURES = {
    "publisher_identification",      # tests/test_pubsub.py::test_disclose_me*, test_user_role*
    "publisher_exclusion",           # tests/test_pubsub.py::test_exclude_me*
    "subscriber_blackwhite_listing", # tests/test_pubsub.py::test_black_white_listing
    "pattern_based_subscription",    # tests/test_patterns.py
    "subscription_revocation",       # tests/test_workbench.py
    "session_meta_api",              # tests/test_meta.py
    "subscription_meta_api",         # tests/test_meta.py
    "payload_passthru_mode",         # tests/passthru.rs (Rust client)
    # Announced by realms that store events (realm1 stores every topic):
    "event_history",                 # tests/test_replay.py (get_events)
    "event_retention",               # tests/test_replay.py (retain / get_retained)
}
DEALER_FEATURES = {
    "caller_identification",         # tests/test_rpc.py::test_caller_identification*
    "progressive_call_results",      # tests/test_rpc.py::test_progressive_call_results*
    "call_canceling",                # tests/test_rpc.py::test_call_cancel*
    "registration_revocation",       # tests/test_workbench.py
    "shared_registration",           # tests/test_rpc_advanced.py
    "pattern_based_registration",    # tests/test_rpc_advanced.py
    "call_timeout",                  # tests/test_rpc_advanced.py
    "session_meta_api",              # tests/test_meta.py
    "registration_meta_api",         # tests/test_meta.py
    "testament_meta_api",            # tests/test_meta.py
    "payload_passthru_mode",         # tests/passthru.rs (Rust client)
}

# Announced, but autobahn-python's role objects drop them (it knows the feature as
# `payload_transparency`): tests that read WELCOME through autobahn cannot see them.
UNKNOWN_TO_AUTOBAHN = {"payload_passthru_mode"}

MAX_SESSION_ID = 2 ** 53
