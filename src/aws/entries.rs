//! The entry table over DynamoDB (an [`EntryStore`]): BatchWriteItem in
//! chunks of 25, a bounded number in flight, unprocessed items resent.

use std::collections::HashMap;
use std::time::Instant;

use aws_sdk_dynamodb::types::{AttributeValue, PutRequest, WriteRequest};
use aws_sdk_dynamodb::Client;
use futures_util::stream::{self, StreamExt, TryStreamExt};

use super::describe;
use crate::error::StoreError;
use crate::ports::{EntryStore, WriteStats};
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
pub struct DynamoEntryStore {
    client: Client,
    table: String,
}

impl DynamoEntryStore {
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

impl EntryStore for DynamoEntryStore {
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
