//! `wamp.registration.*` procedures served by the router.

use super::events::registration_details;
use super::{by_policy, MetaCall, MetaResult};
use crate::router::dealer::RegistrationInfo;
use crate::router::error::WampError;
use crate::wamp::ids::RegistrationId;
use crate::wamp::Value;

/// `wamp.registration.list()`: `{exact, prefix, wildcard}` lists of ids.
pub fn list(call: &mut MetaCall<'_>) -> Result<MetaResult, WampError> {
    Ok(MetaResult::one(by_policy(call.realm.dealer.registration_ids())))
}

/// `wamp.registration.lookup(procedure, options?)`: the registration of exactly that
/// URI and match policy, or null.
pub fn lookup(call: &mut MetaCall<'_>) -> Result<MetaResult, WampError> {
    let policy = call.match_policy(1)?;
    let id = call.realm.dealer.lookup(call.string(0, "procedure")?, policy);
    Ok(MetaResult::one(id.map_or(Value::Null, |id| Value::UInt(id.0))))
}

/// `wamp.registration.match(procedure)`: the registration a call would go to, or null.
pub fn matching(call: &mut MetaCall<'_>) -> Result<MetaResult, WampError> {
    let id = call.realm.dealer.best_match(call.string(0, "procedure")?);
    Ok(MetaResult::one(id.map_or(Value::Null, |id| Value::UInt(id.0))))
}

fn registration(call: &MetaCall<'_>) -> Result<RegistrationInfo, WampError> {
    let id = call.id(0, "registration")?;
    call.realm.dealer.registration(RegistrationId(id)).ok_or(WampError::NoSuchRegistration(id))
}

/// `wamp.registration.get(id)`: `RegistrationDetails`.
pub fn get(call: &mut MetaCall<'_>) -> Result<MetaResult, WampError> {
    Ok(MetaResult::one(registration_details(&registration(call)?)))
}

pub fn list_callees(call: &mut MetaCall<'_>) -> Result<MetaResult, WampError> {
    let ids = registration(call)?.callees;
    Ok(MetaResult::one(Value::List(ids.into_iter().map(|s| Value::UInt(s.0)).collect())))
}

pub fn count_callees(call: &mut MetaCall<'_>) -> Result<MetaResult, WampError> {
    Ok(MetaResult::one(Value::UInt(registration(call)?.callees.len() as u64)))
}
