//! Alerts through SNS PublishBatch.

use std::collections::HashMap;
use std::time::Instant;

use aws_sdk_sns::types::{MessageAttributeValue, PublishBatchRequestEntry};
use aws_sdk_sns::Client;

use super::describe;
use crate::alert::{publish_batches, RenderedAlert};
use crate::error::PublishError;
use crate::ports::AlertPublisher;
use crate::retry::pause;

#[derive(Clone, Debug)]
pub struct SnsPublisher {
    client: Client,
    topic_arn: String,
}

impl SnsPublisher {
    pub fn new(client: Client, topic_arn: impl Into<String>) -> Self {
        Self {
            client,
            topic_arn: topic_arn.into(),
        }
    }

    fn entry(id: usize, alert: &RenderedAlert) -> PublishBatchRequestEntry {
        let attributes: HashMap<String, MessageAttributeValue> = alert
            .attributes
            .iter()
            .map(|(name, value)| {
                let value = MessageAttributeValue::builder()
                    .data_type("String")
                    .string_value(value)
                    .build()
                    .expect("data type is set");
                ((*name).to_owned(), value)
            })
            .collect();
        PublishBatchRequestEntry::builder()
            .id(id.to_string())
            .subject(&alert.subject)
            .message(&alert.message)
            .message_structure("json")
            .set_message_attributes(Some(attributes))
            .build()
            .expect("id and message are set")
    }

    /// Publishes `indexes` of `alerts` in one request, resending entries SNS
    /// failed on its side until `deadline`. Returns the requests made and the
    /// entries left unpublished with the first reason.
    async fn publish_one_batch(
        &self,
        alerts: &[RenderedAlert],
        mut indexes: Vec<usize>,
        deadline: Instant,
    ) -> (u32, Vec<usize>, Option<String>) {
        let mut requests = 0;
        let mut attempt = 0;
        loop {
            requests += 1;
            let entries = indexes
                .iter()
                .map(|&i| Self::entry(i, &alerts[i]))
                .collect();
            let result = self
                .client
                .publish_batch()
                .topic_arn(&self.topic_arn)
                .set_publish_batch_request_entries(Some(entries))
                .send()
                .await;
            let (retry, reason) = match result {
                Ok(output) => {
                    let mut retry = Vec::new();
                    let mut reason = None;
                    let mut permanent = false;
                    for failed in output.failed.into_iter().flatten() {
                        let Ok(i) = failed.id.parse::<usize>() else {
                            continue;
                        };
                        reason.get_or_insert_with(|| {
                            format!("{}: {}", failed.code, failed.message.unwrap_or_default())
                        });
                        // A sender fault means our request is wrong: resending cannot help.
                        permanent |= failed.sender_fault;
                        retry.push(i);
                    }
                    if permanent {
                        return (requests, retry, reason);
                    }
                    (retry, reason)
                }
                Err(error) => {
                    let (message, retryable) = describe(&error);
                    if !retryable {
                        return (requests, indexes, Some(message));
                    }
                    (indexes, Some(message))
                }
            };
            if retry.is_empty() {
                return (requests, Vec::new(), None);
            }
            tracing::warn!(topic = %self.topic_arn, unsent = retry.len(), reason = ?reason, "PublishBatch incomplete; retrying");
            if !pause(attempt, deadline).await {
                return (requests, retry, reason);
            }
            attempt += 1;
            indexes = retry;
        }
    }
}

impl AlertPublisher for SnsPublisher {
    async fn publish(
        &self,
        alerts: &[RenderedAlert],
        deadline: Instant,
    ) -> Result<u32, (Vec<usize>, PublishError)> {
        let batches = publish_batches(alerts);
        let results = futures_util::future::join_all(
            batches
                .into_iter()
                .map(|range| self.publish_one_batch(alerts, range.collect(), deadline)),
        )
        .await;
        let mut requests = 0;
        let mut unsent = Vec::new();
        let mut first_error = None;
        for (n, failed, reason) in results {
            requests += n;
            unsent.extend(failed);
            if first_error.is_none() {
                first_error = reason;
            }
        }
        if unsent.is_empty() {
            return Ok(requests);
        }
        let error = PublishError::Rejected {
            failed: unsent.len(),
            total: alerts.len(),
            first_error: first_error
                .unwrap_or_else(|| format!("unknown error publishing to {}", self.topic_arn)),
        };
        Err((unsent, error))
    }
}
