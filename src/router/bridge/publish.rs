//! `POST /publish`: the same path as a session's PUBLISH (`session/requests.rs`): the
//! realm's rate, the topic's checks, the authorizer (awaited when it must ask the
//! database), a place in the durable writer's queue for a durable topic, then the
//! broker (position in the replay store, fan-out, disclosure). The HTTP answer is the
//! acknowledgement, so on a durable topic it waits for the commit, as PUBLISHED does.

use super::rates::Refused;
use super::{refuse_passthru, BridgeError, BridgeSession};
use crate::auth::Action;
use crate::router::broker::Publication;
use crate::router::checks;
use crate::router::error::WampError;
use crate::wamp::uri::MatchPolicy;
use crate::wamp::{Args, Dict};

/// What `POST /publish` asks for.
#[derive(Debug, Clone, PartialEq)]
pub struct PublishRequest {
    pub topic: String,
    /// PUBLISH.Options (`acknowledge` is moot: the answer is the acknowledgement).
    pub options: Dict,
    pub payload: Args,
}

impl BridgeSession {
    /// Publishes; returns the publication id.
    pub async fn publish(&self, req: PublishRequest) -> Result<u64, BridgeError> {
        let realm = &self.realm;
        if let Err(refused) = realm.bridge_rates.publication(&self.rate_key) {
            realm.metrics().quota_refused(&realm.name, "publication");
            return Err(rate_limited(refused, "publishes"));
        }
        checks::own_uri(&self.router.limits, &req.topic, MatchPolicy::Exact)?;
        refuse_passthru(&req.options)?;
        let decision = self.authorize(Action::Publish, &req.topic).await?;
        // A durable topic's publication first takes a place in the database writer's
        // bounded queue, waiting for one when it is full: the publisher's backpressure.
        let slot = match checks::durable_queue(realm.broker.store(), &self.router.metrics, &req.topic)? {
            None => None,
            Some(durable) => match durable.try_reserve() {
                Some(slot) => Some(slot),
                None => Some(durable.reserve().await.map_err(checks::no_place)?),
            },
        };
        let p = Publication::from_options(&self.handle, &req.topic, &req.options, req.payload, decision.disclose, None, slot)?;
        let published = realm.broker.publish(p);
        if let Some(commit) = published.commit {
            commit
                .wait()
                .await
                .map_err(|e| WampError::Unavailable(format!("the event was delivered but could not be made durable: {e}")))?;
        }
        Ok(published.publication)
    }
}

/// The refusal of a request over the realm's rate (`what`: "publishes", "calls").
pub(super) fn rate_limited(refused: Refused, what: &str) -> BridgeError {
    match refused {
        Refused::Over(retry_after) => BridgeError::RateLimited {
            message: format!("this client {what} faster than its realm allows"),
            retry_after,
        },
        Refused::Full => BridgeError::RateLimited {
            message: "too many clients are at their rate limit at once".into(),
            retry_after: std::time::Duration::from_secs(1),
        },
    }
}
