//! How a batch's delta is written: one TransactWriteItems that puts the
//! batch's marker item (only if there is none) and adds to the open
//! incident, or opens the next one. Both or neither: a marker says the
//! batch was counted, and which incident counted it.

use std::collections::BTreeSet;

use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::ReturnValuesOnConditionCheckFailure;

use super::*;
use crate::aws::incident_item::flag;
use crate::incident::clients::{key_hex, parse_key_hex, Sketch, EXACT_CLIENTS};
use crate::incident::lifecycle::Arrival;

/// What a writer knows of a key item: from its last read, or from this
/// container's last write to it (an incident a container feeds, it usually
/// feeds again). Only ever a lower bound of what is stored: every write
/// that relies on it is conditional on its incident id, and what it filters
/// out (client keys, sketch values) only ever grows within one incident.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Known {
    pub incident_id: String,
    pub generation: u64,
    pub open: bool,
    /// The exact client keys while the incident counts them exactly.
    pub exact: Option<BTreeSet<u64>>,
    pub sketch: Sketch,
    /// What decides whether a batch is a return (see `Plan::Add`'s `quiet`).
    pub last_activity_ms: i64,
    pub reopenings: u32,
    pub flapping: bool,
}

impl Known {
    /// What `item` (a key item) says, if it is one this code wrote.
    pub fn of(item: &Attributes) -> Option<Self> {
        // An earlier version's capped set (`clientsCapped`, 10,000 keys) is
        // read as an exact set all the same: the next write folds it into
        // the sketch and the estimate counts those clients too.
        let estimated = flag(item, "clientsEstimated");
        let exact = (!estimated).then(|| {
            item.get("clientHashes")
                .and_then(|v| v.as_ss().ok())
                .into_iter()
                .flatten()
                .filter_map(|k| parse_key_hex(k))
                .collect()
        });
        Some(Self {
            incident_id: text(item, "incidentId")?.to_owned(),
            generation: number(item, "incidentGeneration").unwrap_or(0) as u64,
            open: text(item, "incidentState") == Some(State::Open.as_str()),
            exact,
            sketch: stored_sketch(item).sketch,
            last_activity_ms: number(item, "lastActivityMs").unwrap_or(0),
            reopenings: number(item, "reopenings").unwrap_or(0) as u32,
            flapping: flag(item, "flapping"),
        })
    }

    /// What a write that opened `incident` with `delta` stored.
    pub fn opened(incident: &IncidentState, delta: &Delta) -> Self {
        Self {
            incident_id: incident.incident_id.clone(),
            generation: incident.generation,
            open: true,
            exact: delta.clients.exact().cloned(),
            sketch: delta.clients.sketch().clone(),
            last_activity_ms: incident.last_activity_ms,
            reopenings: 0,
            flapping: false,
        }
    }
}

/// What a batch's write does to the key item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Plan {
    /// Add to open incident `incident_id`: its entries, the client keys the
    /// exact set lacks (or, `estimated`, the switch to the estimate), the
    /// sketch values that raise a register.
    Add {
        incident_id: String,
        keys: Vec<u64>,
        estimated: bool,
        sketch: Vec<u32>,
        /// The incident counts as quiet if its last activity is at or
        /// before this (now less the resolve delay). The write is
        /// conditional on it either way, so exactly one of concurrent
        /// batches after a quiet period counts the return.
        quiet_since_ms: i64,
        /// A return: the reopenings it was known with, and what the write
        /// sets (the count one higher, flapping or not).
        reopen: Option<Reopen>,
        /// Past its whole quiet period but not yet resolved (the sweep runs
        /// once a minute): adds without counting a return, conditional on
        /// the reopenings it was known with (`Some`), which decide that
        /// quiet period. Its last activity is at or before `due_since_ms`.
        late: Option<u32>,
        due_since_ms: i64,
    },
    /// Open generation `generation` (the previous one, if any, resolved).
    Open { generation: u64 },
}

/// A batch that comes back to a quiet incident.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Reopen {
    /// Reopenings before it, as known (the write is conditional on them).
    pub was: u32,
    pub reopenings: u32,
    pub flapping: bool,
}

/// What to write at `now_ms`, from what is known of the key item.
pub(super) fn plan_for(known: Option<&Known>, delta: &Delta, now_ms: i64, timing: Timing) -> Plan {
    let Some(known) = known.filter(|k| k.open) else {
        return Plan::Open {
            generation: known.map_or(0, |k| k.generation) + 1,
        };
    };
    // The write's conditions hold the item to what this plan assumed.
    let quiet_since_ms = now_ms - timing.resolve_after_ms;
    let due_since_ms = now_ms - timing.resolves_after_ms(known.flapping);
    let arrival = timing.arrival(
        known.last_activity_ms,
        known.reopenings,
        known.flapping,
        now_ms,
    );
    let late = (arrival == Arrival::Late).then_some(known.reopenings);
    let reopen = match arrival {
        Arrival::Return {
            reopenings,
            flapping,
        } => Some(Reopen {
            was: known.reopenings,
            reopenings,
            flapping,
        }),
        Arrival::Active | Arrival::Late => None,
    };
    let clients = &delta.clients;
    let union = match (&known.exact, clients.exact()) {
        (Some(stored), Some(batch)) => {
            let new: Vec<u64> = batch.difference(stored).copied().collect();
            (stored.len() + new.len() <= EXACT_CLIENTS).then_some(new)
        }
        _ => None,
    };
    match union {
        Some(keys) => Plan::Add {
            incident_id: known.incident_id.clone(),
            keys,
            estimated: false,
            sketch: clients.sketch().raises_over(&known.sketch),
            quiet_since_ms,
            reopen,
            late,
            due_since_ms,
        },
        None => {
            // Past the exact set (or already past it): the sketch counts
            // from now on. It has every client a batch of this version
            // added; folding the exact set in as well covers an item whose
            // set an earlier version wrote without a sketch.
            let mut sketch = clients.sketch().clone();
            for key in known.exact.iter().flatten() {
                sketch.add_key(*key);
            }
            Plan::Add {
                incident_id: known.incident_id.clone(),
                keys: Vec::new(),
                estimated: true,
                sketch: sketch.raises_over(&known.sketch),
                quiet_since_ms,
                reopen,
                late,
                due_since_ms,
            }
        }
    }
}

/// Whether an item of an earlier version counted batch `fingerprint`
/// (its `batchFingerprints` set, kept on an incident open across the
/// upgrade until the incident is resolved).
pub(super) fn counted_before_markers(item: &Attributes, fingerprint: &str) -> bool {
    text(item, "incidentState") == Some(State::Open.as_str())
        && item
            .get("batchFingerprints")
            .and_then(|v| v.as_ss().ok())
            .is_some_and(|set| set.iter().any(|f| f == fingerprint))
}

/// What opening generation `generation` of key item `item_key` with
/// `delta` sets, and what it removes (what an earlier generation or
/// version left), at `now_ms`.
pub(super) fn opening(
    item_key: &str,
    generation: u64,
    delta: &Delta,
    log_group: &str,
    now_ms: i64,
) -> (Vec<(&'static str, AttributeValue)>, Vec<&'static str>) {
    let key = &delta.key;
    let id = incident_id(item_key, generation);
    let clients = &delta.clients;
    let mut set = vec![
        ("incidentId", s(&id)),
        ("incidentGeneration", n(generation)),
        ("incidentState", s(State::Open.as_str())),
        ("sweepShard", s(sweep_shard(item_key))),
        ("category", s(key.category.as_str())),
        ("keyKind", s(key.kind.as_str())),
        ("keyFirst", s(&key.first)),
        ("logGroup", s(truncate_str(log_group, MAX_LOG_GROUP_BYTES))),
        ("openedMs", n(now_ms)),
        ("firstSeenMs", n(delta.first_ms)),
        ("lastSeenMs", n(delta.last_ms)),
        ("lastActivityMs", n(now_ms)),
        ("entryCount", n(delta.entries)),
        ("batchSeq", n(1)),
        (
            "topClients",
            list(delta.top_clients.iter().map(|(c, _)| c.clone())),
        ),
        (
            "sampleTraceIds",
            list(delta.sample_trace_ids.iter().cloned()),
        ),
        ("notificationsSent", n(0)),
        ("notifiedEntries", n(0)),
    ];
    let mut remove = vec![
        "resolvedMs",
        "lastNotifiedMs",
        "resolvedSent",
        "claimToken",
        "claimLeaseMs",
        "claimStep",
        "ackedBy",
        "ackedMs",
        "heldBack",
        "lastSilenceId",
        "ackNote",
        "history",
        "lastReminder",
        "expiresAt",
        "reopenings",
        "lastReopenedMs",
        "flapping",
        // What earlier versions kept: the batches counted, the
        // legacy index's key, the exact set's cap.
        "batchFingerprints",
        "sweepKey",
        "clientsCapped",
    ];
    let exact = clients
        .exact()
        .and_then(|keys| sets(keys.iter().map(|k| key_hex(*k))));
    let optional = [
        ("keySecond", key.second.clone().map(s)),
        ("clientHashes", exact.map(AttributeValue::Ss)),
        (
            "clientsEstimated",
            clients
                .exact()
                .is_none()
                .then_some(AttributeValue::Bool(true)),
        ),
        ("clientSketch", sketch_set(&clients.sketch().values())),
        ("details", delta.details.clone().map(s)),
        ("accountId", delta.account_id.clone().map(s)),
    ];
    for (name, value) in optional {
        match value {
            Some(value) => set.push((name, value)),
            None => remove.push(name),
        }
    }
    (set, remove)
}

/// What became of one transaction.
#[derive(Debug)]
pub(super) enum Outcome {
    /// Written: the marker and the incident's change.
    Written,
    /// The batch's marker is there: counted before, into the incident it
    /// names, or folded (the marker, when the answer carried it).
    Marked(Option<Attributes>),
    /// The key item changed since it was known: what it holds now (`None`:
    /// there is none).
    Changed(Option<Attributes>),
    /// Refused for now (a concurrent transaction on the item, throttling):
    /// to be tried again after a pause.
    Busy,
}

/// Sketch values as stored: a binary set of two bytes each (a value is
/// below 2^13), a third smaller than the same numbers in decimal, which is
/// what keeps a typical key item within one KB. `None` for none (DynamoDB
/// has no empty sets).
fn sketch_set(values: &[u32]) -> Option<AttributeValue> {
    (!values.is_empty()).then(|| {
        AttributeValue::Bs(
            values
                .iter()
                .map(|v| aws_sdk_dynamodb::primitives::Blob::new((*v as u16).to_be_bytes()))
                .collect(),
        )
    })
}

/// A set's values, if any: DynamoDB has no empty sets.
fn sets(values: impl IntoIterator<Item = String>) -> Option<Vec<String>> {
    let values: Vec<String> = values.into_iter().collect();
    (!values.is_empty()).then_some(values)
}

impl DynamoIncidentStore {
    /// Sends one planned write with the batch's marker. `stale_marker`: the
    /// id a marker names whose incident is gone for good (its record
    /// expired), which this write may replace.
    #[allow(clippy::too_many_arguments)]
    pub(super) async fn write(
        &self,
        item_key: &str,
        plan: &Plan,
        delta: &Delta,
        log_group: &str,
        fingerprint: &str,
        now_ms: i64,
        stale_marker: Option<&str>,
    ) -> Result<Outcome, StoreError> {
        // Only the values an expression uses may be sent.
        let (counted_into, condition, update, values) = match plan {
            Plan::Add {
                incident_id,
                keys,
                estimated,
                sketch,
                quiet_since_ms,
                reopen,
                late,
                due_since_ms,
            } => {
                let mut values: Attributes = HashMap::from([
                    (":id".into(), s(incident_id)),
                    (":fp".into(), s(fingerprint)),
                    (":one".into(), n(1)),
                    (":n".into(), n(delta.entries)),
                    (":now".into(), n(now_ms)),
                    (":last".into(), n(delta.last_ms)),
                    (":open".into(), s(State::Open.as_str())),
                    (":shard".into(), s(sweep_shard(item_key))),
                ]);
                // `batchFingerprints`: only on an item an earlier version
                // wrote, which counted batches by it.
                let mut condition = "incidentId = :id AND incidentState = :open \
                                 AND NOT contains(batchFingerprints, :fp)"
                    .to_owned();
                let mut set =
                    "lastSeenMs = :last, lastActivityMs = :now, sweepShard = :shard".to_owned();
                // Quiet or not is part of the condition: a write planned on
                // a stale look fails and is planned again on the item.
                values.insert(":quiet".into(), n(quiet_since_ms));
                let known_reopenings = |was: u32, values: &mut Attributes| {
                    if was == 0 {
                        "attribute_not_exists(reopenings)"
                    } else {
                        values.insert(":was".into(), n(was));
                        "reopenings = :was"
                    }
                };
                match (reopen, late) {
                    (_, Some(was)) => {
                        values.insert(":due".into(), n(*due_since_ms));
                        condition.push_str(" AND lastActivityMs <= :due AND ");
                        condition.push_str(known_reopenings(*was, &mut values));
                    }
                    (None, None) => condition.push_str(" AND lastActivityMs > :quiet"),
                    (Some(reopen), None) => {
                        values.insert(":due".into(), n(*due_since_ms));
                        condition.push_str(
                            " AND lastActivityMs <= :quiet AND lastActivityMs > :due AND ",
                        );
                        condition.push_str(known_reopenings(reopen.was, &mut values));
                        values.insert(":reopenings".into(), n(reopen.reopenings));
                        set.push_str(", reopenings = :reopenings, lastReopenedMs = :now");
                        if reopen.flapping {
                            values.insert(":flapping".into(), AttributeValue::Bool(true));
                            set.push_str(", flapping = :flapping");
                        }
                    }
                }
                let mut add = "entryCount :n, batchSeq :one".to_owned();
                // An item of the legacy index moves to `sweep` with its first write.
                let mut remove = "sweepKey".to_owned();
                if let Some(keys) = sets(keys.iter().map(|k| key_hex(*k))) {
                    values.insert(":cs".into(), AttributeValue::Ss(keys));
                    add.push_str(", clientHashes :cs");
                }
                if *estimated {
                    values.insert(":yes".into(), AttributeValue::Bool(true));
                    set.push_str(", clientsEstimated = :yes");
                    remove.push_str(", clientHashes");
                }
                if let Some(sketch) = sketch_set(sketch) {
                    values.insert(":sk".into(), sketch);
                    add.push_str(", clientSketch :sk");
                }
                (
                    incident_id.clone(),
                    condition,
                    format!("SET {set} ADD {add} REMOVE {remove}"),
                    values,
                )
            }
            Plan::Open { generation } => {
                let id = incident_id(item_key, *generation);
                let (set, remove) = opening(item_key, *generation, delta, log_group, now_ms);
                let mut values: Attributes = HashMap::new();
                let mut assignments = Vec::with_capacity(set.len());
                for (i, (name, value)) in set.into_iter().enumerate() {
                    values.insert(format!(":v{i}"), value);
                    assignments.push(format!("{name} = :v{i}"));
                }
                values.insert(":resolved".into(), s(State::Resolved.as_str()));
                values.insert(":prev".into(), n(generation.saturating_sub(1)));
                (
                    id,
                    "attribute_not_exists(incidentKey) OR \
                     (incidentState = :resolved AND incidentGeneration = :prev)"
                        .to_owned(),
                    format!(
                        "SET {} REMOVE {}",
                        assignments.join(", "),
                        remove.join(", ")
                    ),
                    values,
                )
            }
        };
        let mut marker = Put::builder()
            .table_name(&self.table)
            .item("incidentKey", s(marker_key(item_key, fingerprint)))
            .item("incidentId", s(&counted_into))
            .item("expiresAt", n(now_ms / 1000 + MARKER_DAYS * 86_400))
            .condition_expression("attribute_not_exists(incidentKey)")
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld);
        if let Some(stale) = stale_marker {
            marker = marker
                .condition_expression("attribute_not_exists(incidentKey) OR incidentId = :stale")
                .expression_attribute_values(":stale", s(stale));
        }
        let count = Update::builder()
            .table_name(&self.table)
            .key("incidentKey", s(item_key))
            .condition_expression(condition)
            .update_expression(update)
            .set_expression_attribute_values(Some(values))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .build()
            .expect("table, key and expression are set");
        // No ClientRequestToken of ours: the SDK sets one per call, the same
        // on each of its retries, so a retry whose first attempt was applied
        // (answer lost) succeeds without applying twice. One derived from
        // the batch would be reused by a redelivery within 10 minutes with
        // other values (`:now`), which DynamoDB refuses
        // (IdempotentParameterMismatch); the marker decides redeliveries.
        let request = self
            .client
            .transact_write_items()
            .transact_items(
                TransactWriteItem::builder()
                    .put(marker.build().expect("table and item are set"))
                    .build(),
            )
            .transact_items(TransactWriteItem::builder().update(count).build());
        let result = request.send().await;
        let error = match result {
            Ok(_) => return Ok(Outcome::Written),
            Err(error) => error,
        };
        let canceled = match error.as_service_error() {
            Some(TransactWriteItemsError::TransactionCanceledException(c)) => c,
            Some(TransactWriteItemsError::TransactionInProgressException(_)) => {
                return Ok(Outcome::Busy)
            }
            _ => return Err(store_error("TransactWriteItems", &self.table, error)),
        };
        let reasons = canceled.cancellation_reasons();
        let code = |i: usize| reasons.get(i).and_then(|r| r.code()).unwrap_or("None");
        if code(0) == "ConditionalCheckFailed" {
            return Ok(Outcome::Marked(reasons[0].item().cloned()));
        }
        if code(1) == "ConditionalCheckFailed" {
            return Ok(Outcome::Changed(reasons[1].item().cloned()));
        }
        let items = 2;
        let busy = (0..items).any(|i| {
            matches!(
                code(i),
                "TransactionConflict" | "ThrottlingError" | "ProvisionedThroughputExceeded"
            )
        });
        if busy {
            return Ok(Outcome::Busy);
        }
        // A request DynamoDB will never accept for this key (what
        // `ValidationException` means for a single write) costs this
        // incident only; anything else fails the batch.
        let kind = if (0..items).any(|i| code(i) == "ValidationError") {
            "ValidationException"
        } else {
            "TransactionCanceledException"
        };
        Err(StoreError::Request {
            op: "TransactWriteItems",
            table: self.table.clone(),
            message: format!(
                "{kind}: {} (reasons {}, {})",
                canceled.message().unwrap_or_default(),
                code(0),
                code(1)
            ),
            retryable: false,
            source: Some(Box::new(error)),
        })
    }

    /// Removes sketch values that a larger value of their register makes
    /// redundant: the estimate does not change, the item shrinks. Safe
    /// beside concurrent writes (a register's largest value is never among
    /// them, and a value added again is merely redundant again); only the
    /// same incident's sketch (`incidentId`).
    pub(super) async fn compact(&self, item_key: &str, incident_id: &str, dominated: &[u32]) {
        let Some(values) = sketch_set(dominated) else {
            return;
        };
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("incidentKey", s(item_key))
            .condition_expression("incidentId = :id")
            .update_expression("DELETE clientSketch :d")
            .expression_attribute_values(":id", s(incident_id))
            .expression_attribute_values(":d", values)
            .send()
            .await;
        match result {
            Ok(_) => {}
            Err(e) if is_condition_failure(&e) => {}
            // Housekeeping: the next read-back tries again.
            Err(e) => {
                let e = store_error("UpdateItem", &self.table, e);
                tracing::warn!(incident = %incident_id, error = %e, "could not compact the clients' sketch");
            }
        }
    }
}

#[cfg(test)]
mod tests;
