//! What the pipeline needs from AWS, as small traits. `aws` implements them
//! over DynamoDB and SNS; the pipeline never sees an SDK type.

use std::future::Future;
use std::time::Instant;

use crate::error::{PublishError, StoreError};
use crate::notify::alert::RenderedAlert;
use crate::store::item::Item;

/// What a store did, for the invocation summary and metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WriteStats {
    pub items: usize,
    pub requests: u32,
    pub retries: u32,
}

/// Durable, idempotent storage of incident items.
pub trait IncidentStore: Send + Sync {
    /// Writes every item (same key ⇒ overwrite) or fails. Retries throttling
    /// and unprocessed items until `deadline`.
    fn put_items(
        &self,
        items: Vec<Item>,
        deadline: Instant,
    ) -> impl Future<Output = Result<WriteStats, StoreError>> + Send;
}

/// The outcome of asking to alert for a key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GateDecision {
    /// This invocation sends the alert, under this claim.
    Send(Claim),
    /// An alert for the key went out within the window; the entries were counted.
    Suppressed,
    /// This batch was already counted or alerted for this key (a redelivery).
    AlreadySeen,
}

/// The right to send one alert, held by one invocation until it confirms
/// (published) or releases (not published) it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claim {
    pub key: String,
    /// The batch the alert is for: a redelivery of it may take over an
    /// unconfirmed claim, so an invocation that died before publishing
    /// does not lose the alert.
    pub fingerprint: String,
    /// Unique to this claim, so an invocation recognises its own claim when
    /// the answer to its write was lost, and no one else's is undone.
    pub token: String,
    /// Entries held back for the key since the previous alert.
    pub suppressed_since_last: u64,
}

/// Decides, across concurrent invocations and redeliveries, who alerts for a key.
pub trait AlertGate: Send + Sync {
    /// Claims the right to alert for `key` (`count` entries of batch
    /// `fingerprint`), or counts them as suppressed. A claim is held until
    /// `lease_until_ms` (when this invocation's time is up): only after it
    /// may a redelivery of the batch take an unconfirmed claim over.
    fn claim(
        &self,
        key: &str,
        fingerprint: &str,
        count: u64,
        now_ms: i64,
        lease_until_ms: i64,
    ) -> impl Future<Output = Result<GateDecision, StoreError>> + Send;

    /// Records that the claimed alert was published (retrying until `deadline`): a redelivery of the
    /// batch then sees it as sent.
    fn confirm(
        &self,
        claim: &Claim,
        deadline: Instant,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Undoes a claim whose alert was not published, so a retry sends it
    /// (retrying until `deadline`).
    fn release(
        &self,
        claim: &Claim,
        deadline: Instant,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
}

/// What publishing did: the requests made, and the alerts the service
/// refused for good (a sender fault: sending them again cannot help).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PublishReport {
    pub requests: u32,
    /// Indexes of the refused alerts, with the service's reason.
    pub rejected: Vec<(usize, String)>,
}

/// Publishes rendered alerts.
pub trait AlertPublisher: Send + Sync {
    /// Publishes all alerts but those refused for good; on a failure that
    /// may pass (throttling, 5xx, time), says which were not published.
    fn publish(
        &self,
        alerts: &[RenderedAlert],
        deadline: Instant,
    ) -> impl Future<Output = Result<PublishReport, (Vec<usize>, PublishError)>> + Send;
}
