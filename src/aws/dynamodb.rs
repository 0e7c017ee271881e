//! The incident table (an [`IncidentStore`]) and the alert-state table (an
//! [`AlertGate`]) over DynamoDB.

use std::collections::HashMap;
use std::time::Instant;

use aws_sdk_dynamodb::types::{AttributeValue, PutRequest, ReturnValue, WriteRequest};
use aws_sdk_dynamodb::Client;
use futures_util::stream::{self, StreamExt, TryStreamExt};

use super::describe;
use crate::error::StoreError;
use crate::item::{write_chunks, Attr, Item};
use crate::ports::{AlertGate, Claim, GateDecision, IncidentStore, WriteStats};
use crate::retry::pause;

/// BatchWriteItem requests in flight at once per invocation.
pub const WRITE_CONCURRENCY: usize = 4;

pub fn to_attribute_value(attr: &Attr) -> AttributeValue {
    match attr {
        Attr::S(s) => AttributeValue::S(s.clone()),
        Attr::N(n) => AttributeValue::N(n.clone()),
        Attr::Bool(b) => AttributeValue::Bool(*b),
        Attr::Null => AttributeValue::Null(true),
    }
}

fn to_item(item: &Item) -> HashMap<String, AttributeValue> {
    item.attributes
        .iter()
        .map(|(name, value)| (name.clone(), to_attribute_value(value)))
        .collect()
}

#[derive(Clone, Debug)]
pub struct DynamoIncidentStore {
    client: Client,
    table: String,
}

impl DynamoIncidentStore {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
        }
    }

    /// Writes one chunk, resending unprocessed items and retryable failures
    /// with backoff until `deadline`.
    async fn write_chunk(
        &self,
        chunk: Vec<Item>,
        deadline: Instant,
    ) -> Result<WriteStats, StoreError> {
        let total = chunk.len();
        let mut pending = write_requests(&chunk);
        let mut stats = WriteStats {
            items: total,
            ..WriteStats::default()
        };
        let mut attempt = 0;
        loop {
            stats.requests += 1;
            let result = self
                .client
                .batch_write_item()
                .request_items(&self.table, std::mem::take(&mut pending))
                .send()
                .await;
            match result {
                Ok(output) => {
                    pending = output
                        .unprocessed_items
                        .and_then(|mut by_table| by_table.remove(&self.table))
                        .unwrap_or_default();
                    if pending.is_empty() {
                        return Ok(stats);
                    }
                }
                Err(error) => {
                    let (message, retryable) = describe(&error);
                    if !retryable {
                        return Err(StoreError::Request {
                            op: "BatchWriteItem",
                            table: self.table.clone(),
                            message,
                            retryable,
                        });
                    }
                    // The request as a whole failed: every write is still pending.
                    pending = write_requests(&chunk);
                    tracing::warn!(table = %self.table, error = %message, "BatchWriteItem failed; retrying");
                }
            }
            if !pause(attempt, deadline).await {
                let budget_ms = deadline
                    .saturating_duration_since(Instant::now())
                    .as_millis() as u64;
                return Err(StoreError::Unprocessed {
                    remaining: pending.len(),
                    total,
                    budget_ms,
                });
            }
            attempt += 1;
            stats.retries += 1;
        }
    }
}

fn write_requests(chunk: &[Item]) -> Vec<WriteRequest> {
    chunk
        .iter()
        .map(|item| {
            let put = PutRequest::builder()
                .set_item(Some(to_item(item)))
                .build()
                .expect("item is set");
            WriteRequest::builder().put_request(put).build()
        })
        .collect()
}

impl IncidentStore for DynamoIncidentStore {
    async fn put_items(
        &self,
        items: Vec<Item>,
        deadline: Instant,
    ) -> Result<WriteStats, StoreError> {
        let chunks = write_chunks(items);
        stream::iter(
            chunks
                .into_iter()
                .map(|chunk| self.write_chunk(chunk, deadline)),
        )
        .buffer_unordered(WRITE_CONCURRENCY)
        .try_fold(WriteStats::default(), |total, s| async move {
            Ok(WriteStats {
                items: total.items + s.items,
                requests: total.requests + s.requests,
                retries: total.retries + s.retries,
            })
        })
        .await
    }
}

/// At most this many batch fingerprints per key and window; past it, counts
/// go on without redelivery protection rather than growing the item.
const MAX_FINGERPRINTS: usize = 2_000;

/// Alert suppression state, one item per alert key:
/// `alertKey` (partition key), `lastSentMs`, `suppressed` (entries held back
/// since `lastSentMs`), `batches` (fingerprints of the batches counted or
/// alerted in this window) and `expiresAt` (TTL).
#[derive(Clone, Debug)]
pub struct DynamoAlertGate {
    client: Client,
    table: String,
    window_ms: i64,
}

impl DynamoAlertGate {
    pub fn new(client: Client, table: impl Into<String>, window: std::time::Duration) -> Self {
        Self {
            client,
            table: table.into(),
            window_ms: window.as_millis() as i64,
        }
    }

    fn key(key: &str) -> (String, AttributeValue) {
        ("alertKey".to_owned(), AttributeValue::S(key.to_owned()))
    }

    fn error(&self, op: &'static str, message: String, retryable: bool) -> StoreError {
        StoreError::Request {
            op,
            table: self.table.clone(),
            message,
            retryable,
        }
    }

    /// The window is quiet (or the key new) and this batch has not been here: take it.
    async fn try_send(
        &self,
        key: &str,
        fingerprint: &str,
        now_ms: i64,
    ) -> Result<Option<u64>, StoreError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("alertKey", Self::key(key).1)
            .condition_expression(
                "(attribute_not_exists(lastSentMs) OR lastSentMs <= :cutoff) AND NOT contains(batches, :fp)",
            )
            .update_expression("SET lastSentMs = :now, suppressed = :zero, batches = :fps, expiresAt = :exp")
            .expression_attribute_values(":cutoff", AttributeValue::N((now_ms - self.window_ms).to_string()))
            .expression_attribute_values(":fp", AttributeValue::S(fingerprint.to_owned()))
            .expression_attribute_values(":fps", AttributeValue::Ss(vec![fingerprint.to_owned()]))
            .expression_attribute_values(":now", AttributeValue::N(now_ms.to_string()))
            .expression_attribute_values(":zero", AttributeValue::N("0".into()))
            .expression_attribute_values(":exp", AttributeValue::N(self.expiry(now_ms)))
            .return_values(ReturnValue::AllOld)
            .send()
            .await;
        match result {
            Ok(output) => {
                let suppressed = output
                    .attributes
                    .as_ref()
                    .and_then(|a| a.get("suppressed"))
                    .and_then(|v| v.as_n().ok())
                    .and_then(|n| n.parse().ok())
                    .unwrap_or(0);
                Ok(Some(suppressed))
            }
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_conditional_check_failed_exception()) =>
            {
                Ok(None)
            }
            Err(e) => {
                let (message, retryable) = describe(&e);
                Err(self.error("UpdateItem", message, retryable))
            }
        }
    }

    /// An alert went out within the window and this batch has not been counted: count it.
    async fn try_count(
        &self,
        key: &str,
        fingerprint: &str,
        count: u64,
        now_ms: i64,
        track: bool,
    ) -> Result<bool, StoreError> {
        let mut request = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("alertKey", Self::key(key).1)
            .expression_attribute_values(
                ":cutoff",
                AttributeValue::N((now_ms - self.window_ms).to_string()),
            )
            .expression_attribute_values(":n", AttributeValue::N(count.to_string()));
        request = if track {
            request
                .condition_expression(
                    "lastSentMs > :cutoff AND NOT contains(batches, :fp) AND size(batches) < :max",
                )
                .update_expression("ADD suppressed :n, batches :fps")
                .expression_attribute_values(":fp", AttributeValue::S(fingerprint.to_owned()))
                .expression_attribute_values(
                    ":fps",
                    AttributeValue::Ss(vec![fingerprint.to_owned()]),
                )
                .expression_attribute_values(
                    ":max",
                    AttributeValue::N(MAX_FINGERPRINTS.to_string()),
                )
        } else {
            request
                .condition_expression("lastSentMs > :cutoff")
                .update_expression("ADD suppressed :n")
        };
        match request.send().await {
            Ok(_) => Ok(true),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_conditional_check_failed_exception()) =>
            {
                Ok(false)
            }
            Err(e) => {
                let (message, retryable) = describe(&e);
                Err(self.error("UpdateItem", message, retryable))
            }
        }
    }

    async fn read_state(
        &self,
        key: &str,
    ) -> Result<Option<HashMap<String, AttributeValue>>, StoreError> {
        let (name, value) = Self::key(key);
        self.client
            .get_item()
            .table_name(&self.table)
            .key(name, value)
            .consistent_read(true)
            .send()
            .await
            .map(|o| o.item)
            .map_err(|e| {
                let (message, retryable) = describe(&e);
                self.error("GetItem", message, retryable)
            })
    }

    fn expiry(&self, now_ms: i64) -> String {
        ((now_ms + self.window_ms) / 1000 + 86_400).to_string()
    }
}

impl AlertGate for DynamoAlertGate {
    async fn claim(
        &self,
        key: &str,
        fingerprint: &str,
        count: u64,
        now_ms: i64,
    ) -> Result<GateDecision, StoreError> {
        // Two conditional writes race-free decide; a third look settles the
        // rare case where the window closed between them.
        for _ in 0..3 {
            if let Some(suppressed_since_last) = self.try_send(key, fingerprint, now_ms).await? {
                return Ok(GateDecision::Send {
                    suppressed_since_last,
                });
            }
            if self
                .try_count(key, fingerprint, count, now_ms, true)
                .await?
            {
                return Ok(GateDecision::Suppressed);
            }
            let state = self.read_state(key).await?.unwrap_or_default();
            let seen = state
                .get("batches")
                .and_then(|v| v.as_ss().ok())
                .is_some_and(|set| set.iter().any(|f| f == fingerprint));
            if seen {
                return Ok(GateDecision::AlreadySeen);
            }
            let full = state
                .get("batches")
                .and_then(|v| v.as_ss().ok())
                .is_some_and(|set| set.len() >= MAX_FINGERPRINTS);
            if full
                && self
                    .try_count(key, fingerprint, count, now_ms, false)
                    .await?
            {
                return Ok(GateDecision::Suppressed);
            }
        }
        Err(self.error(
            "UpdateItem",
            format!("alert state for {key:?} kept changing; giving up after 3 rounds"),
            true,
        ))
    }

    async fn release(&self, claim: &Claim) -> Result<(), StoreError> {
        self.client
            .update_item()
            .table_name(&self.table)
            .key("alertKey", Self::key(&claim.key).1)
            .condition_expression("lastSentMs = :claimed AND contains(batches, :fp)")
            // ADD, not SET: other invocations may have counted entries since the claim.
            .update_expression("REMOVE lastSentMs ADD suppressed :restored DELETE batches :fps")
            .expression_attribute_values(
                ":claimed",
                AttributeValue::N(claim.claimed_at_ms.to_string()),
            )
            .expression_attribute_values(":fp", AttributeValue::S(claim.fingerprint.clone()))
            .expression_attribute_values(
                ":fps",
                AttributeValue::Ss(vec![claim.fingerprint.clone()]),
            )
            .expression_attribute_values(
                ":restored",
                AttributeValue::N(claim.suppressed_since_last.to_string()),
            )
            .send()
            .await
            .map(|_| ())
            .or_else(|e| {
                if e.as_service_error()
                    .is_some_and(|s| s.is_conditional_check_failed_exception())
                {
                    // Someone else has since taken the key; nothing of ours to undo.
                    return Ok(());
                }
                let (message, retryable) = describe(&e);
                Err(self.error("UpdateItem", message, retryable))
            })
    }
}
