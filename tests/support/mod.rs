//! Shared helpers of the integration tests that need more than a router.

pub mod postgres;
