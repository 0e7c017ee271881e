//! What the pipeline needs from AWS, as small traits. `aws` implements them
//! over DynamoDB and SNS; the pipeline never sees an SDK type.

use std::future::Future;
use std::time::Instant;

use crate::alert::RenderedAlert;
use crate::error::{PublishError, StoreError};
use crate::item::Item;

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
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GateDecision {
    /// This invocation sends the alert; `suppressed_since_last` entries were held back since the previous one.
    Send { suppressed_since_last: u64 },
    /// An alert for the key went out within the window; the entries were counted.
    Suppressed,
    /// This batch was already counted or alerted for this key (a redelivery).
    AlreadySeen,
}

/// A claim this invocation holds, to release if publishing fails.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claim {
    pub key: String,
    pub fingerprint: String,
    pub claimed_at_ms: i64,
    pub suppressed_since_last: u64,
}

/// Decides, across concurrent invocations and redeliveries, who alerts for a key.
pub trait AlertGate: Send + Sync {
    /// Claims the right to alert for `key` (`count` entries of batch `fingerprint`), or counts them as suppressed.
    fn claim(
        &self,
        key: &str,
        fingerprint: &str,
        count: u64,
        now_ms: i64,
    ) -> impl Future<Output = Result<GateDecision, StoreError>> + Send;

    /// Undoes a claim whose alert was not published, so a retry sends it.
    fn release(&self, claim: &Claim) -> impl Future<Output = Result<(), StoreError>> + Send;
}

/// Publishes rendered alerts.
pub trait AlertPublisher: Send + Sync {
    /// Publishes all alerts; on failure, says which were not published.
    fn publish(
        &self,
        alerts: &[RenderedAlert],
        deadline: Instant,
    ) -> impl Future<Output = Result<u32, (Vec<usize>, PublishError)>> + Send;
}
