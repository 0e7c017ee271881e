//! Notifications through SNS PublishBatch.

use std::collections::HashMap;
use std::time::Instant;

use aws_sdk_sns::types::{MessageAttributeValue, PublishBatchRequestEntry};
use aws_sdk_sns::Client;
use futures_util::stream::{self, StreamExt};

use super::describe;
use crate::error::PublishError;
use crate::notify::notification::{publish_batches, RenderedNotification};
use crate::ports::{NotificationPublisher, PublishReport};
use crate::retry::pause;

/// PublishBatch requests in flight at once, like the incident store's
/// requests (`pipeline::INCIDENT_CONCURRENCY`): a hundred at once met the
/// function's deadline as timeouts, not as throughput.
pub const PUBLISH_CONCURRENCY: usize = 4;

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

    fn entry(id: usize, alert: &RenderedNotification) -> PublishBatchRequestEntry {
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
    /// failed on its side until `deadline`. Returns the requests made, the
    /// entries left unpublished with the first reason, and the entries SNS
    /// refused for good (a sender fault names one entry: only that alert is
    /// lost, never the others).
    async fn publish_one_batch(
        &self,
        alerts: &[RenderedNotification],
        mut indexes: Vec<usize>,
        deadline: Instant,
    ) -> (u32, Vec<usize>, Option<Failure>, Vec<(usize, String)>) {
        let mut requests = 0;
        let mut attempt = 0;
        let mut rejected = Vec::new();
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
                        let why =
                            format!("{}: {}", failed.code, failed.message.unwrap_or_default());
                        if failed.sender_fault && entry_refused(&failed.code) {
                            // This entry is wrong: resending cannot help, and
                            // the others are not affected.
                            tracing::error!(topic = %self.topic_arn, notification = %crate::notify::display::escape(&alerts[i].id), reason = %why, "SNS refused this notification for good; the batch's others go on");
                            rejected.push((i, why));
                        } else {
                            permanent |= failed.sender_fault;
                            reason.get_or_insert((why, None));
                            retry.push(i);
                        }
                    }
                    if permanent {
                        // Refused for good for a reason every entry shares
                        // (authorisation, the topic's key): fail the batch.
                        return (requests, retry, reason, rejected);
                    }
                    (retry, reason)
                }
                Err(error) => {
                    let (message, retryable) = describe(&error);
                    let failure: Failure = (message, Some(Box::new(error)));
                    if !retryable {
                        return (requests, indexes, Some(failure), rejected);
                    }
                    (indexes, Some(failure))
                }
            };
            if retry.is_empty() {
                return (requests, Vec::new(), None, rejected);
            }
            let why = reason.as_ref().map(|(message, _)| message.as_str());
            tracing::warn!(topic = %self.topic_arn, unsent = retry.len(), reason = ?why, "PublishBatch incomplete; retrying");
            if !pause(attempt, deadline).await {
                return (requests, retry, reason, rejected);
            }
            attempt += 1;
            indexes = retry;
        }
    }
}

/// Why entries were left unpublished: what SNS said, and the SDK's error
/// when the request itself failed.
type Failure = (String, Option<crate::error::SdkFailure>);

/// An entry SNS refused for what it holds (a parameter, an attribute),
/// rather than for a reason every entry shares (authorisation, KMS, the topic).
fn entry_refused(code: &str) -> bool {
    code.starts_with("InvalidParameter") || code.starts_with("Validation")
}

impl NotificationPublisher for SnsPublisher {
    async fn publish(
        &self,
        alerts: &[RenderedNotification],
        deadline: Instant,
    ) -> Result<PublishReport, (Vec<usize>, PublishError)> {
        let batches = publish_batches(alerts);
        let results: Vec<_> = stream::iter(batches)
            .map(|range| self.publish_one_batch(alerts, range.collect(), deadline))
            .buffer_unordered(PUBLISH_CONCURRENCY)
            .collect()
            .await;
        let mut report = PublishReport::default();
        let mut unsent = Vec::new();
        let mut first_error = None;
        for (n, failed, reason, rejected) in results {
            report.requests += n;
            unsent.extend(failed);
            report.rejected.extend(rejected);
            if first_error.is_none() {
                first_error = reason;
            }
        }
        if unsent.is_empty() {
            return Ok(report);
        }
        let (first_error, source) = first_error.unwrap_or_else(|| {
            (
                format!("unknown error publishing to {}", self.topic_arn),
                None,
            )
        });
        let error = PublishError::Rejected {
            failed: unsent.len(),
            total: alerts.len(),
            first_error,
            source,
        };
        Err((unsent, error))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    use aws_sdk_sns::config::{BehaviorVersion, Credentials, Region};
    use aws_smithy_runtime_api::client::http::{
        http_client_fn, HttpConnector, HttpConnectorFuture, SharedHttpConnector,
    };
    use aws_smithy_runtime_api::client::orchestrator::HttpRequest;
    use aws_smithy_runtime_api::http::{Response, StatusCode};
    use aws_smithy_types::body::SdkBody;

    use super::*;

    /// SNS as a connector that counts the requests it is answering at once.
    #[derive(Debug, Default)]
    struct InFlight {
        now: AtomicUsize,
        most: AtomicUsize,
        requests: AtomicUsize,
    }

    #[derive(Debug, Clone)]
    struct Sns(Arc<InFlight>);

    impl HttpConnector for Sns {
        fn call(&self, _: HttpRequest) -> HttpConnectorFuture {
            let counts = self.0.clone();
            HttpConnectorFuture::new(async move {
                let now = counts.now.fetch_add(1, Ordering::SeqCst) + 1;
                counts.most.fetch_max(now, Ordering::SeqCst);
                counts.requests.fetch_add(1, Ordering::SeqCst);
                // On this one thread, every request the publisher lets start
                // starts before this one answers.
                for _ in 0..32 {
                    tokio::task::yield_now().await;
                }
                counts.now.fetch_sub(1, Ordering::SeqCst);
                let body = "<PublishBatchResponse><PublishBatchResult><Successful></Successful><Failed></Failed></PublishBatchResult></PublishBatchResponse>";
                Ok(Response::new(
                    StatusCode::try_from(200).expect("a status"),
                    SdkBody::from(body),
                ))
            })
        }
    }

    /// A storm's notifications go out a few PublishBatch requests at a
    /// time: a hundred at once met the function's deadline as timeouts.
    #[tokio::test]
    async fn publishing_keeps_at_most_the_bound_in_flight() {
        let counts = Arc::new(InFlight::default());
        let sns = Sns(counts.clone());
        let config = aws_sdk_sns::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new("us-east-1"))
            .credentials_provider(Credentials::new("a", "b", None, None, "test"))
            .http_client(http_client_fn(move |_, _| {
                SharedHttpConnector::new(sns.clone())
            }))
            .build();
        let publisher = SnsPublisher::new(
            Client::from_conf(config),
            "arn:aws:sns:us-east-1:123456789012:t",
        );
        let notifications: Vec<RenderedNotification> = (0..95)
            .map(|i| RenderedNotification {
                id: format!("i-{i}#opened"),
                subject: "s".into(),
                message: r#"{"default":"{}"}"#.into(),
                attributes: Vec::new(),
            })
            .collect();
        let deadline = Instant::now() + std::time::Duration::from_secs(30);
        let report = publisher.publish(&notifications, deadline).await.unwrap();
        assert_eq!(report.requests, 10);
        assert_eq!(counts.requests.load(Ordering::SeqCst), 10);
        assert_eq!(counts.most.load(Ordering::SeqCst), PUBLISH_CONCURRENCY);
    }
}
