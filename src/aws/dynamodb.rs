//! The incident table (an [`IncidentStore`]) and the alert-state table (an
//! [`AlertGate`]) over DynamoDB.

use std::collections::HashMap;
use std::time::Instant;

use aws_sdk_dynamodb::types::{AttributeValue, PutRequest, ReturnValue, WriteRequest};
use aws_sdk_dynamodb::Client;
use futures_util::stream::{self, StreamExt, TryStreamExt};

use aws_smithy_types::error::metadata::ProvideErrorMetadata;

use super::describe;
use crate::error::StoreError;
use crate::ports::{AlertGate, Claim, GateDecision, IncidentStore, WriteStats};
use crate::retry::pause;
use crate::store::item::{write_chunks, Attr, Item};

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
                            source: Some(Box::new(error)),
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
/// - `alertKey` (partition key), `expiresAt` (TTL);
/// - `lastSentMs`: when the current claim was taken; the window runs from it;
/// - `suppressed`: entries held back since then; `sentSuppressed`: those held
///   back before it, which the claimed alert reports;
/// - `batches`: fingerprints of the batches counted or alerted in this window;
/// - `claimToken`, `claimBatch`, `claimLeaseMs`: who holds the claim, for
///   which batch, and until when (its invocation's deadline); `published`
///   once its alert went out.
#[derive(Clone, Debug)]
pub struct DynamoAlertGate {
    client: Client,
    table: String,
    window_ms: i64,
}

fn is_condition_failure<E, R>(
    error: &aws_smithy_runtime_api::client::result::SdkError<E, R>,
) -> bool
where
    E: ProvideErrorMetadata,
{
    error
        .as_service_error()
        .is_some_and(|e| e.code() == Some("ConditionalCheckFailedException"))
}

fn number(item: Option<&HashMap<String, AttributeValue>>, name: &str) -> u64 {
    item.and_then(|i| i.get(name))
        .and_then(|v| v.as_n().ok())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

fn text<'i>(item: &'i HashMap<String, AttributeValue>, name: &str) -> Option<&'i str> {
    item.get(name)
        .and_then(|v| v.as_s().ok())
        .map(String::as_str)
}

fn new_token() -> String {
    format!("{:016x}{:016x}", fastrand::u64(..), fastrand::u64(..))
}

impl DynamoAlertGate {
    pub fn new(client: Client, table: impl Into<String>, window: std::time::Duration) -> Self {
        Self {
            client,
            table: table.into(),
            window_ms: window.as_millis() as i64,
        }
    }

    fn key(key: &str) -> AttributeValue {
        AttributeValue::S(key.to_owned())
    }

    fn error<E, R>(
        &self,
        op: &'static str,
        error: aws_smithy_runtime_api::client::result::SdkError<E, R>,
    ) -> StoreError
    where
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
        R: std::fmt::Debug + Send + Sync + 'static,
    {
        let (message, retryable) = describe(&error);
        StoreError::Request {
            op,
            table: self.table.clone(),
            message,
            retryable,
            source: Some(Box::new(error)),
        }
    }

    fn claim_for(
        key: &str,
        fingerprint: &str,
        token: &str,
        state: Option<&HashMap<String, AttributeValue>>,
    ) -> Claim {
        Claim {
            key: key.to_owned(),
            fingerprint: fingerprint.to_owned(),
            token: token.to_owned(),
            suppressed_since_last: number(state, "sentSuppressed"),
        }
    }

    /// The window is quiet (or the key new) and this batch has not been here:
    /// take it. After an expired window the batch list starts afresh; after
    /// a released claim it is kept, so batches counted since are not counted
    /// again when redelivered.
    async fn try_send(
        &self,
        key: &str,
        fingerprint: &str,
        token: &str,
        (now_ms, lease_until_ms): (i64, i64),
    ) -> Result<Option<Claim>, StoreError> {
        // `sentSuppressed` first: it reads the count that `suppressed = :zero` then resets.
        const TAKE: &str =
            "SET sentSuppressed = if_not_exists(suppressed, :zero), suppressed = :zero, \
             lastSentMs = :now, claimToken = :token, claimBatch = :fp, claimLeaseMs = :lease, \
             expiresAt = :exp";
        let variants = [
            (
                "attribute_not_exists(lastSentMs) AND NOT contains(batches, :fp)",
                format!("{TAKE} REMOVE published ADD batches :fps"),
                None,
            ),
            (
                "lastSentMs <= :cutoff AND NOT contains(batches, :fp)",
                format!("{TAKE}, batches = :fps REMOVE published"),
                Some(AttributeValue::N((now_ms - self.window_ms).to_string())),
            ),
        ];
        for (condition, update, cutoff) in variants {
            let mut values = HashMap::from([
                (":fp".to_owned(), AttributeValue::S(fingerprint.to_owned())),
                (
                    ":fps".to_owned(),
                    AttributeValue::Ss(vec![fingerprint.to_owned()]),
                ),
                (":now".to_owned(), AttributeValue::N(now_ms.to_string())),
                (":zero".to_owned(), AttributeValue::N("0".into())),
                (":token".to_owned(), AttributeValue::S(token.to_owned())),
                (":exp".to_owned(), AttributeValue::N(self.expiry(now_ms))),
                (
                    ":lease".to_owned(),
                    AttributeValue::N(lease_until_ms.to_string()),
                ),
            ]);
            if let Some(cutoff) = cutoff {
                values.insert(":cutoff".to_owned(), cutoff);
            }
            let result = self
                .client
                .update_item()
                .table_name(&self.table)
                .key("alertKey", Self::key(key))
                .condition_expression(condition)
                .update_expression(update)
                .set_expression_attribute_values(Some(values))
                .return_values(ReturnValue::AllNew)
                .send()
                .await;
            match result {
                Ok(output) => {
                    return Ok(Some(Self::claim_for(
                        key,
                        fingerprint,
                        token,
                        output.attributes.as_ref(),
                    )))
                }
                Err(e) if is_condition_failure(&e) => continue,
                Err(e) => return Err(self.error("UpdateItem", e)),
            }
        }
        Ok(None)
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
            .key("alertKey", Self::key(key))
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
            Err(e) if is_condition_failure(&e) => Ok(false),
            Err(e) => Err(self.error("UpdateItem", e)),
        }
    }

    /// Takes over the unconfirmed claim of an earlier delivery of this same
    /// batch whose lease ran out (it failed or timed out before publishing),
    /// so its alert is sent.
    async fn try_take_over(
        &self,
        key: &str,
        fingerprint: &str,
        token: &str,
        held_by: &str,
        (now_ms, lease_until_ms): (i64, i64),
    ) -> Result<Option<Claim>, StoreError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("alertKey", Self::key(key))
            .condition_expression(
                "claimToken = :held AND claimBatch = :fp AND attribute_not_exists(published) \
                 AND claimLeaseMs < :now",
            )
            .update_expression("SET claimToken = :token, claimLeaseMs = :lease")
            .expression_attribute_values(":now", AttributeValue::N(now_ms.to_string()))
            .expression_attribute_values(":lease", AttributeValue::N(lease_until_ms.to_string()))
            .expression_attribute_values(":held", AttributeValue::S(held_by.to_owned()))
            .expression_attribute_values(":fp", AttributeValue::S(fingerprint.to_owned()))
            .expression_attribute_values(":token", AttributeValue::S(token.to_owned()))
            .return_values(ReturnValue::AllNew)
            .send()
            .await;
        match result {
            Ok(output) => Ok(Some(Self::claim_for(
                key,
                fingerprint,
                token,
                output.attributes.as_ref(),
            ))),
            Err(e) if is_condition_failure(&e) => Ok(None),
            Err(e) => Err(self.error("UpdateItem", e)),
        }
    }

    async fn read_state(
        &self,
        key: &str,
    ) -> Result<Option<HashMap<String, AttributeValue>>, StoreError> {
        self.client
            .get_item()
            .table_name(&self.table)
            .key("alertKey", Self::key(key))
            .consistent_read(true)
            .send()
            .await
            .map(|o| o.item)
            .map_err(|e| self.error("GetItem", e))
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
        lease_until_ms: i64,
    ) -> Result<GateDecision, StoreError> {
        let token = new_token();
        let times = (now_ms, lease_until_ms);
        // The conditional writes decide race-free; reading the state settles
        // what they cannot tell apart: our own write whose answer was lost (the
        // SDK's retry then fails its condition), an earlier delivery's claim
        // left unpublished, a redelivery, or a window that closed in between.
        for _ in 0..3 {
            if let Some(claim) = self.try_send(key, fingerprint, &token, times).await? {
                return Ok(GateDecision::Send(claim));
            }
            if self
                .try_count(key, fingerprint, count, now_ms, true)
                .await?
            {
                return Ok(GateDecision::Suppressed);
            }
            let state = self.read_state(key).await?.unwrap_or_default();
            let holder = text(&state, "claimToken");
            if holder == Some(token.as_str()) {
                return Ok(GateDecision::Send(Self::claim_for(
                    key,
                    fingerprint,
                    &token,
                    Some(&state),
                )));
            }
            let lease_over = number(Some(&state), "claimLeaseMs") < now_ms.max(0) as u64;
            if let Some(held_by) = holder.filter(|_| {
                text(&state, "claimBatch") == Some(fingerprint)
                    && !state.contains_key("published")
                    && lease_over
            }) {
                if let Some(claim) = self
                    .try_take_over(key, fingerprint, &token, held_by, times)
                    .await?
                {
                    return Ok(GateDecision::Send(claim));
                }
                continue;
            }
            let batches = state.get("batches").and_then(|v| v.as_ss().ok());
            if batches.is_some_and(|set| set.iter().any(|f| f == fingerprint)) {
                return Ok(GateDecision::AlreadySeen);
            }
            let full = batches.is_some_and(|set| set.len() >= MAX_FINGERPRINTS);
            if full
                && self
                    .try_count(key, fingerprint, count, now_ms, false)
                    .await?
            {
                return Ok(GateDecision::Suppressed);
            }
        }
        Err(StoreError::Request {
            op: "UpdateItem",
            table: self.table.clone(),
            message: format!("alert state for {key:?} kept changing; giving up after 3 rounds"),
            retryable: true,
            source: None,
        })
    }

    async fn confirm(&self, claim: &Claim, deadline: Instant) -> Result<(), StoreError> {
        self.update_claim(
            claim,
            "claimToken = :token",
            "SET published = :yes",
            &[(":yes", AttributeValue::Bool(true))],
            deadline,
        )
        .await
    }

    async fn release(&self, claim: &Claim, deadline: Instant) -> Result<(), StoreError> {
        self.update_claim(
            claim,
            "claimToken = :token AND attribute_not_exists(published)",
            // ADD, not SET: other invocations may have counted entries since the claim.
            "REMOVE lastSentMs, claimToken, claimBatch, sentSuppressed \
             ADD suppressed :restored DELETE batches :fps",
            &[
                (":fps", AttributeValue::Ss(vec![claim.fingerprint.clone()])),
                (
                    ":restored",
                    AttributeValue::N(claim.suppressed_since_last.to_string()),
                ),
            ],
            deadline,
        )
        .await
    }
}

impl DynamoAlertGate {
    /// Updates the state of `claim`'s key while `condition` (on `:token`,
    /// the claim's token) holds, retrying until `deadline`. A failed
    /// condition means the claim was taken over, or this update already
    /// applied by an attempt whose answer was lost: nothing left to do.
    async fn update_claim(
        &self,
        claim: &Claim,
        condition: &str,
        update: &str,
        values: &[(&str, AttributeValue)],
        deadline: Instant,
    ) -> Result<(), StoreError> {
        retrying(deadline, || async {
            let mut request = self
                .client
                .update_item()
                .table_name(&self.table)
                .key("alertKey", Self::key(&claim.key))
                .condition_expression(condition)
                .update_expression(update)
                .expression_attribute_values(":token", AttributeValue::S(claim.token.clone()));
            for (name, value) in values {
                request = request.expression_attribute_values(*name, value.clone());
            }
            match request.send().await {
                Ok(_) => Ok(()),
                Err(e) if is_condition_failure(&e) => Ok(()),
                Err(e) => Err(self.error("UpdateItem", e)),
            }
        })
        .await
    }
}

/// Runs `op` until it succeeds, fails for good, or `deadline` leaves no time
/// for another try: confirming and releasing are worth a few backoffs, as
/// each one left undone may cost a duplicate or a delayed alert.
async fn retrying<F, Fut>(deadline: Instant, mut op: F) -> Result<(), StoreError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<(), StoreError>>,
{
    let mut attempt = 0;
    loop {
        match op().await {
            Err(e) if e.is_retryable() && pause(attempt, deadline).await => attempt += 1,
            outcome => return outcome,
        }
    }
}
