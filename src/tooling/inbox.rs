//! The operator's inbox on a local stack: an SQS queue subscribed to the
//! stack's topics (`scripts/local_stack.py` creates it), read back the way a
//! subscriber receives notifications.

use std::collections::BTreeMap;

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct InboxError(String);

fn sdk_error(what: &str, e: impl std::error::Error) -> InboxError {
    InboxError(format!(
        "{what}: {}",
        aws_smithy_types::error::display::DisplayErrorContext(e)
    ))
}

/// An alert as an SQS subscriber of the topic receives it.
#[derive(Debug, Clone, PartialEq)]
pub struct ReceivedNotification {
    pub subject: String,
    /// What SQS subscribers get: the JSON body.
    pub message: String,
    pub attributes: BTreeMap<String, String>,
}

/// Receives (and deletes) what is in the inbox, waiting up to `wait` for the first message.
pub async fn drain_inbox(
    sqs: &aws_sdk_sqs::Client,
    queue_url: &str,
    wait: std::time::Duration,
) -> Result<Vec<ReceivedNotification>, InboxError> {
    let mut alerts = Vec::new();
    let started = std::time::Instant::now();
    loop {
        let output = sqs
            .receive_message()
            .queue_url(queue_url)
            .max_number_of_messages(10)
            .wait_time_seconds(if alerts.is_empty() && started.elapsed() < wait {
                1
            } else {
                0
            })
            .send()
            .await
            .map_err(|e| sdk_error("ReceiveMessage", e))?;
        let messages = output.messages.unwrap_or_default();
        if messages.is_empty() {
            if alerts.is_empty() && started.elapsed() < wait {
                continue;
            }
            return Ok(alerts);
        }
        for message in messages {
            let body: serde_json::Value = serde_json::from_str(message.body().unwrap_or_default())
                .map_err(|e| {
                    InboxError(format!("inbox message is not an SNS notification: {e}"))
                })?;
            let attributes = body["MessageAttributes"]
                .as_object()
                .into_iter()
                .flatten()
                .map(|(k, v)| {
                    (
                        k.clone(),
                        v["Value"].as_str().unwrap_or_default().to_owned(),
                    )
                })
                .collect();
            alerts.push(ReceivedNotification {
                subject: body["Subject"].as_str().unwrap_or_default().to_owned(),
                message: body["Message"].as_str().unwrap_or_default().to_owned(),
                attributes,
            });
            if let Some(receipt) = message.receipt_handle() {
                sqs.delete_message()
                    .queue_url(queue_url)
                    .receipt_handle(receipt)
                    .send()
                    .await
                    .map_err(|e| sdk_error("DeleteMessage", e))?;
            }
        }
    }
}
