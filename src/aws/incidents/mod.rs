//! The incident table over DynamoDB (an [`IncidentStore`]).
//!
//! Three kinds of item, partition key `incidentKey`:
//! - the **key item** (`incidentKey` = the incident key's hash) holds the
//!   key's current incident: its id (`<hash>-<generation>`), state, counts,
//!   times, notification state and claim, in a size bounded whatever the
//!   devices and batches (the distinct clients in `incident::clients`, the
//!   history as its first and last lines). When it is resolved, the next
//!   entry opens the next generation on the same item.
//! - the **record** (`incidentKey` = the incident id) of a resolved incident,
//!   written with the resolution in one transaction, so history survives
//!   the next generation and the resolved notification has its own claim.
//! - a **batch marker** (`incidentKey` = `batch#<key hash>#<fingerprint>`)
//!   per batch counted into an incident, naming the incident, written in
//!   the same transaction as the count and kept 15 days (TTL): how a
//!   redelivered or re-driven batch is recognised and never counted twice.
//!
//! The sparse index `sweep` (`sweepShard`, `incidentKey`; eight partitions
//! by key) holds open incidents and records whose resolved notification is
//! pending, with only what the sweep decides on: the sweep queries it,
//! never scans the table. Items of the legacy index `watched` are read too.

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aws_sdk_dynamodb::types::{AttributeValue, Put, ReturnValue, TransactWriteItem, Update};
use aws_sdk_dynamodb::Client;

use super::incident_item::{
    is_folded_marker, list, marker_key, n, number, openings_key, record_item, s, state_of,
    stored_sketch, sweep_shard, sweep_shards, text, Attributes, LEGACY_WATCHED,
    LEGACY_WATCHED_INDEX, MARKER_DAYS, SWEEP_INDEX,
};
use super::silences::SilenceTable;
use crate::aws::{is_condition_failure, store_error};
use crate::error::StoreError;
use crate::incident::delta::Delta;

use crate::incident::lifecycle::{
    incident_id, IncidentState, State, Timing, Transition, MAX_LOG_GROUP_BYTES,
};
use crate::incident::silence::Silence;
use crate::model::time::format_rfc3339;
use crate::ports::{opening_minute, Counting, IncidentStore, NotificationClaim, Recorded};
use crate::retry::pause;
use crate::store::keys::truncate_str;

mod counted;
mod openings;
mod sweep_index;
mod write;
pub(crate) use sweep_index::query_watched;
use write::{counted_before_markers, plan_for, Known, Outcome, Plan};

/// A read-back finding this many redundant values in the clients' sketch
/// removes them (one UpdateItem): the sketch stays within one value per
/// register plus this, plus what one write adds, whatever the fleet.
pub const COMPACT_AT: usize = 32;
/// Key items whose last known state a container keeps (see `Known`); past
/// it, it forgets them all and reads again.
const KNOWN_ITEMS: usize = 1_024;
/// Rounds of writing a batch's count before giving up (the batch fails and
/// is retried): a round fails only when the item changed in between.
const ROUNDS: u32 = 8;

#[derive(Clone, Debug)]
pub struct DynamoIncidentStore {
    client: Client,
    table: String,
    retention_days: u32,
    silences: SilenceTable,
    /// What this container last read or wrote of each key item, so a batch
    /// of an incident it knows needs no read before its write.
    known: Arc<Mutex<HashMap<String, Known>>>,
    /// The last minute this container found its openings spent.
    spent_minute: Arc<AtomicI64>,
}

impl DynamoIncidentStore {
    /// The incident table `table`, and the silence table `silences`.
    pub fn new(
        client: Client,
        table: impl Into<String>,
        retention_days: u32,
        silences: impl Into<String>,
    ) -> Self {
        Self {
            silences: SilenceTable::new(client.clone(), silences),
            client,
            table: table.into(),
            retention_days,
            known: Arc::default(),
            spent_minute: Arc::new(AtomicI64::new(i64::MIN)),
        }
    }

    /// A silence (or its end) reaches this store at most `refresh` late.
    pub fn with_silences_refresh(mut self, refresh: std::time::Duration) -> Self {
        self.silences = self.silences.with_refresh(refresh);
        self
    }

    fn expiry(&self, now_ms: i64, extra_days: u32) -> AttributeValue {
        n(now_ms / 1000 + i64::from(self.retention_days + extra_days) * 86_400)
    }

    fn known_of(&self, item_key: &str) -> Option<Known> {
        self.known.lock().ok()?.get(item_key).cloned()
    }

    fn remember(&self, item_key: &str, known: Option<Known>) {
        let Ok(mut all) = self.known.lock() else {
            return;
        };
        match known {
            Some(known) => {
                if all.len() >= KNOWN_ITEMS && !all.contains_key(item_key) {
                    all.clear();
                }
                all.insert(item_key.to_owned(), known);
            }
            None => {
                all.remove(item_key);
            }
        }
    }

    /// The incident `incident_id` of key item `item_key`, as it stands: the
    /// key item while it holds that incident open, else its record (where a
    /// resolved incident's notification is claimed, never on the key item).
    async fn incident(
        &self,
        item_key: &str,
        incident_id: &str,
    ) -> Result<Option<IncidentState>, StoreError> {
        let current = self.read(item_key).await?;
        if let Some(item) = &current {
            self.remember(item_key, Known::of(item));
            if text(item, "incidentId") == Some(incident_id)
                && text(item, "incidentState") == Some(State::Open.as_str())
            {
                return Ok(state_of(item));
            }
        }
        Ok(self.read(incident_id).await?.as_ref().and_then(state_of))
    }

    async fn read(&self, item_key: &str) -> Result<Option<Attributes>, StoreError> {
        self.client
            .get_item()
            .table_name(&self.table)
            .key("incidentKey", s(item_key))
            .consistent_read(true)
            .send()
            .await
            .map(|o| o.item)
            .map_err(|e| store_error("GetItem", &self.table, e))
    }

    /// Sets `claim`'s item while its token holds it, retrying until
    /// `deadline`. A failed condition means the claim was taken over, or
    /// this update already applied by an attempt whose answer was lost.
    async fn update_claimed(
        &self,
        claim: &NotificationClaim,
        update: &str,
        values: Attributes,
        deadline: Instant,
    ) -> Result<(), StoreError> {
        let mut attempt = 0;
        loop {
            let mut values = values.clone();
            values.insert(":token".into(), s(&claim.token));
            let result = self
                .client
                .update_item()
                .table_name(&self.table)
                .key("incidentKey", s(&claim.item_key))
                .condition_expression("claimToken = :token")
                .update_expression(update)
                .set_expression_attribute_values(Some(values))
                .send()
                .await;
            let outcome = match result {
                Ok(_) => Ok(()),
                Err(e) if is_condition_failure(&e) => Ok(()),
                Err(e) => Err(store_error("UpdateItem", &self.table, e)),
            };
            match outcome {
                Err(e) if e.is_retryable() && pause(attempt, deadline).await => attempt += 1,
                outcome => return outcome,
            }
        }
    }
}

impl IncidentStore for DynamoIncidentStore {
    async fn record(&self, delta: &Delta, counting: &Counting<'_>) -> Result<Recorded, StoreError> {
        let Counting {
            log_group,
            fingerprint,
            now_ms,
            timing,
            openings_per_minute,
        } = *counting;
        // Openings of keys other than overflow keys draw on the minute's budget.
        let budget =
            (!delta.key.is_overflow()).then(|| (opening_minute(now_ms), openings_per_minute));
        let item_key = delta.key.hash();
        // What the write builds on: this container's last look at the item
        // (an incident it feeds costs no read), else one read.
        let mut known = self.known_of(&item_key);
        if known.is_none() {
            let item = self.read(&item_key).await?;
            if let Some(counted) = self.counted_by_fingerprint(item.as_ref(), fingerprint) {
                return counted;
            }
            known = item.as_ref().and_then(Known::of);
        }
        let mut stale_marker: Option<String> = None;
        let give_up = Instant::now() + Duration::from_secs(5);
        // At most one of the minute's openings per delta, however many rounds.
        let mut token = false;
        for round in 0..ROUNDS {
            let plan = plan_for(known.as_ref(), delta, now_ms, timing);
            let mut refused = false;
            if let (Plan::Open { .. }, Some((minute, per_minute)), false) = (&plan, budget, token) {
                // What this container knows spent costs no request.
                refused = self.spent_minute.load(Ordering::Relaxed) == minute
                    || !self
                        .take_opening(minute, per_minute, &item_key, give_up)
                        .await?;
                if refused {
                    self.spent_minute.store(minute, Ordering::Relaxed);
                } else {
                    token = true;
                }
            }
            let outcome = if refused {
                // Past the minute's openings: the refusal is remembered for
                // the batch, so a redelivery folds the same way, unless a
                // delivery of it left its marker first (read below).
                if self
                    .put_folded_marker(&item_key, fingerprint, now_ms, stale_marker.as_deref())
                    .await?
                {
                    return Ok(Recorded::Folded);
                }
                Outcome::Marked(None)
            } else {
                self.write(
                    &item_key,
                    &plan,
                    delta,
                    log_group,
                    fingerprint,
                    now_ms,
                    stale_marker.as_deref(),
                )
                .await?
            };
            match outcome {
                Outcome::Written => {
                    return self
                        .counted(&item_key, &plan, delta, log_group, now_ms)
                        .await
                }
                // Counted before: a redelivery, a re-drive, a concurrent
                // delivery, or this invocation's own write whose answer was
                // lost. Into the incident the marker names, whatever
                // became of it since, so the entries name that incident.
                Outcome::Marked(marker) => {
                    let marker = match marker {
                        Some(marker) => Some(marker),
                        None => self.read(&marker_key(&item_key, fingerprint)).await?,
                    };
                    if marker.as_ref().is_some_and(is_folded_marker) {
                        return Ok(Recorded::Folded);
                    }
                    let named = marker
                        .as_ref()
                        .and_then(|m| text(m, "incidentId"))
                        .map(str::to_owned);
                    if let Some(id) = named {
                        if let Some(incident) = self.incident(&item_key, &id).await? {
                            return Ok(Recorded::AlreadyCounted(incident));
                        }
                        // That incident is gone for good (its record expired
                        // before the marker): counting the batch again is all
                        // that is left, replacing the marker.
                        stale_marker = Some(id);
                    }
                    known = self.known_of(&item_key);
                }
                Outcome::Changed(item) => {
                    if let Some(counted) = self.counted_by_fingerprint(item.as_ref(), fingerprint) {
                        return counted;
                    }
                    known = item.as_ref().and_then(Known::of);
                    self.remember(&item_key, known.clone());
                }
                Outcome::Busy => {
                    if !pause(round, give_up).await {
                        break;
                    }
                    let item = self.read(&item_key).await?;
                    if let Some(counted) = self.counted_by_fingerprint(item.as_ref(), fingerprint) {
                        return counted;
                    }
                    known = item.as_ref().and_then(Known::of);
                }
            }
        }
        Err(StoreError::Request {
            op: "TransactWriteItems",
            table: self.table.clone(),
            message: format!("incident {item_key} kept changing; giving up after {ROUNDS} rounds"),
            retryable: true,
            source: None,
        })
    }

    async fn claim(
        &self,
        incident: &IncidentState,
        transition: Transition,
        token: &str,
        now_ms: i64,
        lease_until_ms: i64,
    ) -> Result<Option<IncidentState>, StoreError> {
        let step = transition.name();
        let mut values: Attributes = HashMap::from([
            (":id".into(), s(&incident.incident_id)),
            (":token".into(), s(token)),
            (":lease".into(), n(lease_until_ms)),
            (":step".into(), s(&step)),
            (":now".into(), n(now_ms)),
        ]);
        let free = "(attribute_not_exists(claimToken) OR claimLeaseMs < :now)";
        let condition = match transition {
            Transition::Resolved => {
                format!("incidentId = :id AND attribute_not_exists(resolvedSent) AND {free}")
            }
            _ => {
                values.insert(":open".into(), s(State::Open.as_str()));
                values.insert(":sent".into(), n(transition.step()));
                format!(
                    "incidentId = :id AND incidentState = :open AND notificationsSent = :sent AND {free}"
                )
            }
        };
        // A batch's count is a transaction on the same item: a claim sent
        // while one is under way is refused (TransactionConflictException,
        // which the SDK does not retry) and is tried again shortly.
        let mut attempt = 0;
        let result = loop {
            let result = self
                .client
                .update_item()
                .table_name(&self.table)
                .key("incidentKey", s(&incident.item_key))
                .condition_expression(&condition)
                .update_expression(
                    "SET claimToken = :token, claimLeaseMs = :lease, claimStep = :step",
                )
                .set_expression_attribute_values(Some(values.clone()))
                .return_values(ReturnValue::AllNew)
                .send()
                .await;
            match result {
                Err(e)
                    if crate::aws::is_transaction_conflict(&e)
                        && attempt < 4
                        && pause(attempt, Instant::now() + Duration::from_secs(2)).await =>
                {
                    attempt += 1
                }
                result => break result,
            }
        };
        let item = match result {
            Ok(output) => output.attributes.unwrap_or_default(),
            Err(e) if is_condition_failure(&e) => {
                // Someone else's claim, a transition already made — or our
                // own claim whose answer was lost: its token says.
                match self.read(&incident.item_key).await? {
                    Some(item)
                        if text(&item, "claimToken") == Some(token)
                            && text(&item, "claimStep") == Some(step.as_str()) =>
                    {
                        item
                    }
                    _ => return Ok(None),
                }
            }
            Err(e) => return Err(store_error("UpdateItem", &self.table, e)),
        };
        state_of(&item)
            .map(Some)
            .ok_or_else(|| self.unreadable(&incident.item_key))
    }

    async fn confirm(
        &self,
        claim: &NotificationClaim,
        now_ms: i64,
        deadline: Instant,
    ) -> Result<(), StoreError> {
        // The history stays bounded (as `IncidentState::remember` says):
        // the opening and the resolution are appended, a reminder replaces
        // the last one (`lastReminder`; its number counts them).
        let line = format!("{} {}", claim.transition.name(), format_rfc3339(now_ms));
        let mut values: Attributes = HashMap::new();
        let history = match claim.transition {
            Transition::Reminder(_) => {
                values.insert(":h".into(), s(line));
                "lastReminder = :h"
            }
            _ => {
                values.insert(":h".into(), list([line]));
                values.insert(":empty".into(), AttributeValue::L(Vec::new()));
                "history = list_append(if_not_exists(history, :empty), :h)"
            }
        };
        let update = match claim.transition {
            Transition::Resolved => {
                values.insert(":yes".into(), AttributeValue::Bool(true));
                format!(
                    "SET resolvedSent = :yes, {history} \
                     REMOVE sweepShard, sweepKey, claimToken, claimLeaseMs, claimStep"
                )
            }
            transition => {
                values.insert(":next".into(), n(transition.step() + 1));
                values.insert(":now".into(), n(now_ms));
                values.insert(":told".into(), n(claim.entries));
                format!(
                    "SET notificationsSent = :next, lastNotifiedMs = :now, \
                     notifiedEntries = :told, {history} \
                     REMOVE claimToken, claimLeaseMs, claimStep"
                )
            }
        };
        self.update_claimed(claim, &update, values, deadline).await
    }

    async fn release(
        &self,
        claim: &NotificationClaim,
        deadline: Instant,
    ) -> Result<(), StoreError> {
        self.update_claimed(
            claim,
            "REMOVE claimToken, claimLeaseMs, claimStep",
            HashMap::new(),
            deadline,
        )
        .await
    }

    async fn watched(&self, limit: usize) -> Result<Vec<IncidentState>, StoreError> {
        query_watched(&self.client, &self.table, limit).await
    }

    async fn silences(&self, now_ms: i64) -> Result<Vec<Silence>, StoreError> {
        self.silences.active(now_ms).await
    }

    async fn hold_back(
        &self,
        incident: &IncidentState,
        silence_id: &str,
    ) -> Result<(), StoreError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("incidentKey", s(&incident.item_key))
            .condition_expression("incidentId = :id")
            .update_expression("ADD heldBack :one SET lastSilenceId = :silence")
            .expression_attribute_values(":id", s(&incident.incident_id))
            .expression_attribute_values(":one", n(1))
            .expression_attribute_values(":silence", s(silence_id))
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(e) if is_condition_failure(&e) => Ok(()),
            Err(e) => Err(store_error("UpdateItem", &self.table, e)),
        }
    }

    async fn resolve(
        &self,
        incident: &IncidentState,
        now_ms: i64,
        timing: Timing,
    ) -> Result<Option<IncidentState>, StoreError> {
        // The sweep read the index, which holds only what it decides on;
        // the record is written from the whole item, read as it stands. If
        // it changed since the sweep's read, the transaction's condition
        // would fail anyway: nothing to write.
        let Some(item) = self.read(&incident.item_key).await? else {
            return Ok(None);
        };
        let Some(current) = state_of(&item) else {
            return Err(self.unreadable(&incident.item_key));
        };
        let unchanged = current.incident_id == incident.incident_id
            && current.state == State::Open
            && current.seq == incident.seq
            && current.sent == incident.sent
            && current.is_due_to_resolve(now_ms, timing);
        if !unchanged {
            return Ok(None);
        }
        let resolve_key = Update::builder()
            .table_name(&self.table)
            .key("incidentKey", s(&incident.item_key))
            .condition_expression(
                "incidentId = :id AND incidentState = :open AND batchSeq = :seq \
                 AND notificationsSent = :sent \
                 AND (attribute_not_exists(claimToken) OR claimLeaseMs < :now)",
            )
            .update_expression(
                "SET incidentState = :resolved, resolvedMs = :now, expiresAt = :exp \
                 REMOVE sweepShard, sweepKey, claimToken, claimLeaseMs, claimStep",
            )
            .expression_attribute_values(":id", s(&incident.incident_id))
            .expression_attribute_values(":open", s(State::Open.as_str()))
            .expression_attribute_values(":resolved", s(State::Resolved.as_str()))
            .expression_attribute_values(":seq", n(incident.seq))
            .expression_attribute_values(":sent", n(incident.sent))
            .expression_attribute_values(":now", n(now_ms))
            // The key item outlives its records, so a generation's id is
            // never handed out twice while a record of it may remain.
            .expression_attribute_values(":exp", self.expiry(now_ms, 2))
            .build()
            .expect("table, key and expression are set");
        let record = record_item(&current, now_ms, self.expiry(now_ms, 0));
        let put_record = Put::builder()
            .table_name(&self.table)
            .set_item(Some(record.clone()))
            .condition_expression("attribute_not_exists(incidentKey)")
            .build()
            .expect("table and item are set");
        let result = self
            .client
            .transact_write_items()
            .transact_items(TransactWriteItem::builder().update(resolve_key).build())
            .transact_items(TransactWriteItem::builder().put(put_record).build())
            // The SDK's own ClientRequestToken makes its retry of this request
            // (first answer lost) the same request. One derived from the
            // incident would be shared by a concurrent sweep's resolution at
            // another `:now`, which DynamoDB refuses (IdempotentParameterMismatch).
            .send()
            .await;
        match result {
            Ok(_) => Ok(state_of(&record)),
            Err(e) if is_condition_failure(&e) => Ok(None),
            Err(e) => Err(store_error("TransactWriteItems", &self.table, e)),
        }
    }
}
