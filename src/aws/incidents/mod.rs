//! The incident table over DynamoDB (an [`IncidentStore`]).
//!
//! Two kinds of item, partition key `incidentKey`:
//! - the **key item** (`incidentKey` = the incident key's hash) holds the
//!   key's current incident: its id (`<hash>-<generation>`), state, counts,
//!   times, notification state and claim. A batch adds to it with one
//!   conditional UpdateItem; when it is resolved, the next entry opens the
//!   next generation on the same item.
//! - the **record** (`incidentKey` = the incident id) of a resolved incident,
//!   written with the resolution in one transaction, so history survives
//!   the next generation and the resolved notification has its own claim.
//!
//! The sparse index `watched` (`sweepKey`, `lastActivityMs`) holds open
//! incidents and records whose resolved notification is pending: the sweep
//! queries it, never scans the table.

use std::collections::HashMap;
use std::time::Instant;

use aws_sdk_dynamodb::types::{AttributeValue, Put, ReturnValue, TransactWriteItem, Update};
use aws_sdk_dynamodb::Client;

use super::incident_item::{list, n, number, record_item, s, state_of, text, Attributes, WATCHED};
use super::silences::SilenceTable;
use crate::aws::{is_condition_failure, store_error};
use crate::error::StoreError;
use crate::incident::delta::{Delta, MAX_COUNTED_CLIENTS};

use crate::incident::lifecycle::{
    incident_id, IncidentState, State, Transition, MAX_LOG_GROUP_BYTES,
};
use crate::incident::silence::Silence;
use crate::model::time::format_rfc3339;
use crate::ports::{IncidentStore, NotificationClaim, Recorded};
use crate::retry::pause;
use crate::store::keys::truncate_str;

mod write;
use write::{plan_for, Plan};

/// The name of the index the sweep queries.
pub const WATCHED_INDEX: &str = "watched";
/// At most this many batch fingerprints per incident; past it the set starts
/// afresh (a redelivery of a batch from before then would be counted again).
pub const MAX_FINGERPRINTS: usize = 1_000;

#[derive(Clone, Debug)]
pub struct DynamoIncidentStore {
    client: Client,
    table: String,
    retention_days: u32,
    silences: SilenceTable,
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
    async fn record(
        &self,
        delta: &Delta,
        log_group: &str,
        fingerprint: &str,
        now_ms: i64,
    ) -> Result<Recorded, StoreError> {
        let item_key = delta.key.hash();
        // The usual case first: the incident is open and this batch is new.
        let mut plan = Plan::Add {
            fresh_fingerprints: false,
            clients_full: false,
        };
        for _ in 0..4 {
            if let Some(item) = self
                .write(&item_key, plan, delta, log_group, fingerprint, now_ms)
                .await?
            {
                let incident = state_of(&item).ok_or_else(|| self.unreadable(&item_key))?;
                let opened = matches!(plan, Plan::Open { .. });
                return Ok(Recorded::Counted { incident, opened });
            }
            // The condition failed: read what is there and plan again. This
            // also settles our own write whose answer was lost (the SDK's
            // retry then fails the condition): its fingerprint is there.
            let item = self.read(&item_key).await?;
            plan = match plan_for(item.as_ref(), fingerprint) {
                Ok(plan) => plan,
                Err(counted) => return Ok(Recorded::AlreadyCounted(*counted)),
            };
        }
        Err(StoreError::Request {
            op: "UpdateItem",
            table: self.table.clone(),
            message: format!("incident {item_key} kept changing; giving up after 4 rounds"),
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
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("incidentKey", s(&incident.item_key))
            .condition_expression(condition)
            .update_expression("SET claimToken = :token, claimLeaseMs = :lease, claimStep = :step")
            .set_expression_attribute_values(Some(values))
            .return_values(ReturnValue::AllNew)
            .send()
            .await;
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
        let mut values: Attributes = HashMap::from([
            (
                ":h".into(),
                list([format!(
                    "{} {}",
                    claim.transition.name(),
                    format_rfc3339(now_ms)
                )]),
            ),
            (":empty".into(), AttributeValue::L(Vec::new())),
        ]);
        let history = "history = list_append(if_not_exists(history, :empty), :h)";
        let update = match claim.transition {
            Transition::Resolved => {
                values.insert(":yes".into(), AttributeValue::Bool(true));
                format!(
                    "SET resolvedSent = :yes, {history} \
                     REMOVE sweepKey, claimToken, claimLeaseMs, claimStep"
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
    ) -> Result<Option<IncidentState>, StoreError> {
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
                 REMOVE sweepKey, claimToken, claimLeaseMs, claimStep",
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
        let record = record_item(incident, now_ms, self.expiry(now_ms, 0));
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
            // A retry of this same resolution (its answer lost) is the same request.
            .client_request_token(format!(
                "{:016x}{:016x}",
                crate::store::keys::fnv1a(incident.incident_id.as_bytes()),
                incident.seq
            ))
            .send()
            .await;
        match result {
            Ok(_) => Ok(state_of(&record)),
            Err(e) if is_condition_failure(&e) => Ok(None),
            Err(e) => Err(store_error("TransactWriteItems", &self.table, e)),
        }
    }
}

impl DynamoIncidentStore {
    fn unreadable(&self, item_key: &str) -> StoreError {
        StoreError::Request {
            op: "UpdateItem",
            table: self.table.clone(),
            message: format!("incident item {item_key} is not one this function wrote"),
            retryable: false,
            source: None,
        }
    }
}

/// Every incident in the `watched` index (at most `limit`): one Query,
/// paged. The sweep's and the operator's view of what is open.
pub(crate) async fn query_watched(
    client: &Client,
    table: &str,
    limit: usize,
) -> Result<Vec<IncidentState>, StoreError> {
    let mut found = Vec::new();
    let mut start: Option<Attributes> = None;
    loop {
        let output = client
            .query()
            .table_name(table)
            .index_name(WATCHED_INDEX)
            .key_condition_expression("sweepKey = :w")
            .expression_attribute_values(":w", s(WATCHED))
            .set_exclusive_start_key(start.take())
            .send()
            .await
            .map_err(|e| super::store_error("Query", table, e))?;
        found.extend(output.items().iter().filter_map(state_of));
        match output.last_evaluated_key {
            Some(key) if !key.is_empty() && found.len() < limit => start = Some(key),
            _ => break,
        }
    }
    found.truncate(limit);
    Ok(found)
}
