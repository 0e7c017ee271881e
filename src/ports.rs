//! What the pipeline needs from AWS, as small traits. `aws` implements them
//! over DynamoDB and SNS; the pipeline never sees an SDK type.

use std::future::Future;
use std::time::Instant;

use crate::error::{PublishError, StoreError};
use crate::incident::delta::Delta;
use crate::incident::lifecycle::{IncidentState, Timing, Transition};
use crate::incident::silence::Silence;
use crate::notify::notification::RenderedNotification;
use crate::store::item::Item;

/// What a store did, for the invocation summary and metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WriteStats {
    pub items: usize,
    pub requests: u32,
    pub retries: u32,
}

/// Durable, idempotent storage of entries.
pub trait EntryStore: Send + Sync {
    /// Writes every item (same key ⇒ overwrite) or fails. Retries throttling
    /// and unprocessed items until `deadline`.
    fn put_items(
        &self,
        items: Vec<Item>,
        deadline: Instant,
    ) -> impl Future<Output = Result<WriteStats, StoreError>> + Send;
}

/// What recording a batch's delta did to its incident.
#[derive(Debug, Clone, PartialEq)]
pub enum Recorded {
    /// Counted: the incident as it stands after the batch; `opened` when the
    /// batch opened it.
    Counted {
        incident: IncidentState,
        opened: bool,
    },
    /// A delivery of this batch was counted before (a redelivery, or this
    /// invocation's own write whose answer was lost).
    AlreadyCounted(IncidentState),
    /// Not counted: it would have opened an incident past the minute's
    /// openings budget (or a delivery of this batch was refused so before):
    /// the delta belongs to its category's overflow incident.
    Folded,
}

impl Recorded {
    /// The incident that counted the delta (none when it was folded).
    pub fn incident(&self) -> Option<&IncidentState> {
        match self {
            Self::Counted { incident, .. } | Self::AlreadyCounted(incident) => Some(incident),
            Self::Folded => None,
        }
    }
}

/// What a batch's deltas are counted with.
#[derive(Debug, Clone, Copy)]
pub struct Counting<'a> {
    pub log_group: &'a str,
    /// The batch's fingerprint: how its redeliveries are recognised.
    pub fingerprint: &'a str,
    pub now_ms: i64,
    pub timing: Timing,
    /// Incidents (other than overflow incidents) that may open per minute
    /// of `now_ms`, across invocations; one past it is folded.
    pub openings_per_minute: u32,
}

/// The minute (since the epoch) whose openings budget `now_ms` draws on.
pub fn opening_minute(now_ms: i64) -> i64 {
    now_ms.div_euclid(60_000)
}

/// The right to send one notification, held until confirmed (published)
/// or released (not published).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotificationClaim {
    /// The item that holds the claim (see [`IncidentState::item_key`]).
    pub item_key: String,
    pub incident_id: String,
    pub transition: Transition,
    /// Unique to this claim, so its holder recognises it when the answer to
    /// its write was lost, and no one else's claim is undone.
    pub token: String,
    /// The incident's entry count the notification told.
    pub entries: u64,
}

/// Incidents, their lifecycle and who notifies, across concurrent
/// invocations, sweeps and redeliveries.
pub trait IncidentStore: Send + Sync {
    /// Adds a batch's delta (batch `fingerprint`) to the open incident of its
    /// key, or opens a new incident when there is none: one conditional write
    /// in the usual case. A delta that comes back to a quiet incident
    /// (`timing`) reopens it: the same id, one more reopening, flapping
    /// from `timing.flap_reopenings` on. An opening (of a key other than an
    /// overflow key) past the minute's `openings_per_minute` is refused and
    /// remembered as such for the batch: [`Recorded::Folded`].
    fn record(
        &self,
        delta: &Delta,
        counting: &Counting<'_>,
    ) -> impl Future<Output = Result<Recorded, StoreError>> + Send;

    /// Claims the notification of `transition` for `incident` under `token`
    /// until `lease_until_ms`: `Some` (the incident as it stands) when this
    /// claim holds it, `None` when it is someone else's or no longer due.
    fn claim(
        &self,
        incident: &IncidentState,
        transition: Transition,
        token: &str,
        now_ms: i64,
        lease_until_ms: i64,
    ) -> impl Future<Output = Result<Option<IncidentState>, StoreError>> + Send;

    /// Records that the claimed notification went out (retrying until `deadline`).
    fn confirm(
        &self,
        claim: &NotificationClaim,
        now_ms: i64,
        deadline: Instant,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Gives a claim back (if it is still held by its token), so the next
    /// invocation or sweep sends the notification.
    fn release(
        &self,
        claim: &NotificationClaim,
        deadline: Instant,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Every open incident, and every resolved one whose notification has
    /// not gone out (at most `limit`): what a sweep looks at. A query, not a
    /// scan: its cost grows with open incidents, not with history.
    fn watched(
        &self,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<IncidentState>, StoreError>> + Send;

    /// The silences active at `now_ms`: at most one request, and none while
    /// a copy read within the last 30 s is at hand.
    fn silences(
        &self,
        now_ms: i64,
    ) -> impl Future<Output = Result<Vec<Silence>, StoreError>> + Send;

    /// Counts a notification of `incident` held back by `silence_id`.
    fn hold_back(
        &self,
        incident: &IncidentState,
        silence_id: &str,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Resolves `incident` if it is still exactly as read (no batch counted,
    /// no live claim, nothing notified since) and, as the whole item says,
    /// due to be resolved at `now_ms` (`timing`: a flapping incident waits
    /// longer, and the sweep's index does not say which incidents flap):
    /// `Some` (the resolved incident's record) when this call resolved it.
    fn resolve(
        &self,
        incident: &IncidentState,
        now_ms: i64,
        timing: Timing,
    ) -> impl Future<Output = Result<Option<IncidentState>, StoreError>> + Send;
}

/// What publishing did: the requests made, and the notifications the
/// service refused for good (a sender fault: sending them again cannot help).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PublishReport {
    pub requests: u32,
    /// Indexes of the refused notifications, with the service's reason.
    pub rejected: Vec<(usize, String)>,
}

/// Publishes rendered notifications.
pub trait NotificationPublisher: Send + Sync {
    /// Publishes all but those refused for good; on a failure that may pass
    /// (throttling, 5xx, time), says which were not published.
    fn publish(
        &self,
        notifications: &[RenderedNotification],
        deadline: Instant,
    ) -> impl Future<Output = Result<PublishReport, (Vec<usize>, PublishError)>> + Send;
}
