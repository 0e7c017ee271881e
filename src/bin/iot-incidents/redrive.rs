//! `redrive`: process the batches kept in the failure queue; each message is
//! deleted only once processed, and every other one is handed back.

use std::io::Write;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Result};
use aws_sdk_sqs::types::Message;
use aws_smithy_types::error::display::DisplayErrorContext;
use clap::Args;

use iot_log_monitor::aws::entries::DynamoEntryStore;
use iot_log_monitor::aws::incidents::DynamoIncidentStore;
use iot_log_monitor::aws::sns::SnsPublisher;
use iot_log_monitor::config::{vars, Config};
use iot_log_monitor::pipeline::{Processor, Response};
use iot_log_monitor::tooling::redrive::parse_destination_record;

use crate::args::now_ms;
use crate::session::Session;

#[derive(Args)]
pub struct RedriveArgs {
    /// Show what would be processed; change nothing.
    #[arg(long)]
    dry_run: bool,
    /// At most this many batches.
    #[arg(long, default_value_t = 100)]
    max: usize,
    /// The alert topic (default: the stack's, or ALERT_TOPIC_ARN).
    #[arg(long, env = vars::ALERT_TOPIC_ARN)]
    topic_arn: Option<String>,
}

type DynamoProcessor = Processor<DynamoEntryStore, DynamoIncidentStore, SnsPublisher>;

/// The failure destination queue and the SQS calls made on it.
pub struct FailureQueue {
    sqs: aws_sdk_sqs::Client,
    url: String,
}

impl FailureQueue {
    pub async fn open(ctx: &mut Session) -> Result<Self> {
        let url = ctx.failed_batch_queue().await?;
        let sqs = aws_sdk_sqs::Client::new(ctx.sdk().await);
        Ok(FailureQueue { sqs, url })
    }

    /// Up to `max` (at most 10) messages, hidden while looked at, so each is
    /// seen once; a dry run hands them back at the end.
    async fn receive(&self, max: usize) -> Result<Vec<Message>> {
        let batch = self
            .sqs
            .receive_message()
            .queue_url(&self.url)
            .max_number_of_messages(max.min(10) as i32)
            .visibility_timeout(120)
            .wait_time_seconds(1)
            .send()
            .await
            .map_err(|e| {
                anyhow!(
                    "ReceiveMessage from {}: {}",
                    self.url,
                    DisplayErrorContext(e)
                )
            })?;
        Ok(batch.messages.unwrap_or_default())
    }

    async fn delete(&self, id: &str, receipt: &str) -> Result<()> {
        self.sqs
            .delete_message()
            .queue_url(&self.url)
            .receipt_handle(receipt)
            .send()
            .await
            .map_err(|e| {
                anyhow!(
                    "processed {id} but could not delete it: {}",
                    DisplayErrorContext(e)
                )
            })?;
        Ok(())
    }

    /// Makes a message visible again at once.
    async fn hand_back(&self, receipt: String) -> Result<()> {
        self.sqs
            .change_message_visibility()
            .queue_url(&self.url)
            .receipt_handle(receipt)
            .visibility_timeout(0)
            .send()
            .await
            .map_err(|e| anyhow!("could not hand a message back: {}", DisplayErrorContext(e)))?;
        Ok(())
    }

    pub async fn send(&self, body: String) -> Result<()> {
        self.sqs
            .send_message()
            .queue_url(&self.url)
            .message_body(body)
            .send()
            .await
            .map_err(|e| anyhow!("SendMessage: {}", DisplayErrorContext(e)))?;
        Ok(())
    }
}

/// The pipeline the function runs, on the tables and topic of the stack.
async fn processor(ctx: &mut Session, args: &RedriveArgs) -> Result<DynamoProcessor> {
    let entries = ctx.entries_table().await?;
    let incidents = ctx.incidents_table().await?;
    let silences = ctx.silences_table().await?;
    let topic = ctx
        .resolve(args.topic_arn.clone(), "AlertTopicArn", "--topic-arn")
        .await?;
    let sdk = ctx.sdk().await;
    // The same key the function uses, from the same place, so redriven
    // entries are pseudonymised alike.
    let key = iot_log_monitor::aws::secrets::redaction_key_from_env(sdk, |n| std::env::var(n).ok())
        .await?;
    let config = Config::from_lookup(|name| match name {
        vars::ENTRIES_TABLE => Some(entries.clone()),
        vars::INCIDENTS_TABLE => Some(incidents.clone()),
        vars::SILENCES_TABLE => Some(silences.clone()),
        vars::ALERT_TOPIC_ARN => Some(topic.clone()),
        vars::REDACTION_KEY if key.is_some() => key.clone(),
        other => std::env::var(other).ok(),
    })?;
    let dynamodb = aws_sdk_dynamodb::Client::new(sdk);
    Ok(Processor {
        entries: DynamoEntryStore::new(dynamodb.clone(), &config.entries_table),
        incidents: DynamoIncidentStore::new(
            dynamodb,
            &config.incidents_table,
            config.retention_days,
            &config.silences_table,
        ),
        publisher: SnsPublisher::new(aws_sdk_sns::Client::new(sdk), &config.alert_topic_arn),
        config,
    })
}

/// What became of one message.
enum Outcome {
    Processed,
    /// Left in the queue: handed back at the end.
    Kept {
        failed: bool,
    },
}

async fn redrive_one(
    queue: &FailureQueue,
    processor: Option<&DynamoProcessor>,
    message: &Message,
    out: &mut impl Write,
) -> Result<Outcome> {
    let id = message.message_id().unwrap_or("?");
    let record = match parse_destination_record(message.body().unwrap_or_default()) {
        Ok(r) => r,
        Err(why) => {
            writeln!(out, "skip {id}: {why} (left in the queue)")?;
            return Ok(Outcome::Kept { failed: true });
        }
    };
    let what = format!(
        "{id}: request {} failed {} time(s) with {}",
        record.request_id.as_deref().unwrap_or("?"),
        record.attempts.unwrap_or(0),
        record.error_type.as_deref().unwrap_or("an unknown error")
    );
    let Some(processor) = processor else {
        writeln!(out, "would process {what}")?;
        return Ok(Outcome::Kept { failed: false });
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    match processor.process(&record.payload, now_ms(), deadline).await {
        // A Kinesis payload with records still failing is not done: keep it.
        Ok(Response::Stream(stream)) if !stream.batch_item_failures.is_empty() => {
            writeln!(
                out,
                "could not process {what}: {} of {} Kinesis records still fail",
                stream.batch_item_failures.len(),
                stream.summary.records
            )?;
            Ok(Outcome::Kept { failed: true })
        }
        Ok(response) => {
            let summary = response.summary();
            if let Some(receipt) = message.receipt_handle() {
                queue.delete(id, receipt).await?;
            }
            writeln!(
                out,
                "processed {what}: {} entries, {} stored, {} incidents, {} notifications sent",
                summary.entries, summary.stored, summary.incidents, summary.notifications_sent
            )?;
            Ok(Outcome::Processed)
        }
        Err(e) => {
            writeln!(out, "failed {what}: {e} (left in the queue)")?;
            Ok(Outcome::Kept { failed: true })
        }
    }
}

pub async fn run(ctx: &mut Session, args: RedriveArgs) -> Result<()> {
    let queue = FailureQueue::open(ctx).await?;
    let processor = if args.dry_run {
        None
    } else {
        Some(processor(ctx, &args).await?)
    };
    let (mut processed, mut failed, mut seen) = (0usize, 0usize, 0usize);
    let mut handed_back = Vec::new();
    let mut out = std::io::stdout().lock();
    while seen < args.max {
        let messages = queue.receive(args.max - seen).await?;
        if messages.is_empty() {
            break;
        }
        for message in messages {
            seen += 1;
            match redrive_one(&queue, processor.as_ref(), &message, &mut out).await? {
                Outcome::Processed => processed += 1,
                Outcome::Kept { failed: f } => {
                    failed += usize::from(f);
                    handed_back.extend(message.receipt_handle().map(str::to_owned));
                }
            }
        }
    }
    for receipt in handed_back {
        queue.hand_back(receipt).await?;
    }
    if failed > 0 && !args.dry_run {
        bail!("{failed} batch(es) could not be processed and stay in the queue; {processed} processed and removed");
    }
    match (seen, args.dry_run) {
        (0, _) => eprintln!("the failure queue is empty"),
        (_, true) => eprintln!("{seen} batch(es) would be processed; nothing changed"),
        (_, false) => eprintln!("{processed} batch(es) processed and removed"),
    }
    Ok(())
}
