//! `redrive`: process the batches kept by the failure destinations: the
//! failure queue (records of failed invocations) and, on the Kinesis path,
//! the bucket where failed stream batches are kept whole. A message or an
//! object is deleted only once processed; every other one stays.
//!
//! A batch is processed as the deployed function would process it: with the
//! function's own configuration (GetFunctionConfiguration), never the
//! operator's shell, which knows nothing of the stack's redaction,
//! categories or retention. Whatever a record, a message or an object key
//! says is shown through [`escape`]: they are written by whoever could make
//! a batch fail, or put an object in the bucket.

use std::io::Write;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Result};
use aws_sdk_s3::types::EncodingType;
use aws_sdk_sqs::types::Message;
use aws_smithy_types::error::display::DisplayErrorContext;
use clap::Args;

use iot_log_monitor::aws::entries::DynamoEntryStore;
use iot_log_monitor::aws::incidents::DynamoIncidentStore;
use iot_log_monitor::aws::secrets;
use iot_log_monitor::aws::sns::SnsPublisher;
use iot_log_monitor::config::{vars, Config};
use iot_log_monitor::notify::display::escape;
use iot_log_monitor::pipeline::{Processor, Response};
use iot_log_monitor::tooling::redrive::{
    decode_listed_key, parse_destination_record, UndecodableKey,
};

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
    /// The deployed processor function whose configuration the batches are
    /// processed with (default: the stack's ProcessorFunctionName).
    #[arg(long)]
    function: Option<String>,
    /// The bucket of failed Kinesis batches (default: the stack's
    /// FailedStreamBatchBucketName, when it uses the Kinesis path).
    #[arg(long, env = "FAILED_STREAM_BATCH_BUCKET")]
    bucket: Option<String>,
}

/// An S3 client; path-style addressing on a custom endpoint (a local one
/// has no DNS name per bucket).
pub fn s3_client(sdk: &aws_config::SdkConfig) -> aws_sdk_s3::Client {
    let config = aws_sdk_s3::config::Builder::from(sdk)
        .force_path_style(sdk.endpoint_url().is_some())
        .build();
    aws_sdk_s3::Client::from_conf(config)
}

/// Where Lambda writes a Kinesis event source mapping's failure records.
const FAILED_BATCH_PREFIX: &str = "aws/lambda/";

/// The bucket where the Kinesis path's on-failure destination keeps batches.
pub struct FailureBucket {
    s3: aws_sdk_s3::Client,
    bucket: String,
}

impl FailureBucket {
    /// Up to `max` keys of kept batches, oldest name first; a key no
    /// request could name is listed as such, to be reported and skipped.
    async fn keys(&self, max: usize) -> Result<Vec<Result<String, UndecodableKey>>> {
        let mut keys = Vec::new();
        // Encoded, so a key holding a character XML 1.0 cannot carry does
        // not make the whole listing unreadable.
        let mut pages = self
            .s3
            .list_objects_v2()
            .bucket(&self.bucket)
            .prefix(FAILED_BATCH_PREFIX)
            .encoding_type(EncodingType::Url)
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| {
                anyhow!(
                    "ListObjectsV2 s3://{}: {}",
                    escape(&self.bucket),
                    DisplayErrorContext(e)
                )
            })?;
            // Decoded only when the answer says it is encoded: a store
            // that ignores the request sends keys as they are, and decoding
            // those would turn a `+` into a space.
            let encoded = page.encoding_type() == Some(&EncodingType::Url);
            keys.extend(page.contents().iter().filter_map(|o| o.key()).map(|key| {
                if encoded {
                    decode_listed_key(key)
                } else {
                    Ok(key.to_owned())
                }
            }));
            if keys.len() >= max {
                keys.truncate(max);
                break;
            }
        }
        Ok(keys)
    }

    /// The object's text, refused past the size of the largest invocation
    /// record Lambda writes (a 6 MB payload with its metadata).
    async fn read(&self, key: &str) -> Result<String> {
        const MAX_RECORD_BYTES: i64 = 8 << 20;
        let object = self
            .s3
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
            .map_err(|e| anyhow!("GetObject {key}: {}", DisplayErrorContext(e)))?;
        if object.content_length().unwrap_or(0) > MAX_RECORD_BYTES {
            bail!("{key} is larger than a failure record can be ({MAX_RECORD_BYTES} bytes)");
        }
        let bytes = object
            .body
            .collect()
            .await
            .map_err(|e| anyhow!("reading {key}: {e}"))?
            .into_bytes();
        Ok(String::from_utf8(bytes.to_vec())?)
    }

    async fn delete(&self, key: &str) -> Result<()> {
        self.s3
            .delete_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
            .map_err(|e| {
                anyhow!(
                    "processed {} but could not delete it: {}",
                    escape(key),
                    DisplayErrorContext(e)
                )
            })?;
        Ok(())
    }
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
                    "processed {} but could not delete it: {}",
                    escape(id),
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
}

/// The configuration the deployed `function` runs with: its environment
/// (GetFunctionConfiguration) and its redaction key, read from the same SSM
/// parameter the same way (`src/bin/iot-log-processor.rs`). The shell's
/// variables play no part; a table named by flag or variable that is not
/// the function's is refused rather than written to.
async fn function_config(ctx: &mut Session, function: &str) -> Result<Config> {
    let env = ctx.function_environment(function).await?;
    for (flag, var, given) in ctx.given_tables() {
        let Some(given) = given else { continue };
        let theirs = env.get(var).map(String::as_str);
        if theirs != Some(given) {
            bail!(
                "{flag} (or {var}) names {}, but function {} writes to {}: \
                 redrive writes where the function does; leave {flag} out",
                escape(given),
                escape(function),
                escape(theirs.unwrap_or("no table"))
            );
        }
    }
    let lookup = |name: &str| env.get(name).cloned();
    let key = secrets::redaction_key_from_env(ctx.sdk().await, lookup)
        .await
        .map_err(|e| anyhow!("the configuration of function {}: {e}", escape(function)))?;
    Config::from_lookup(|name| match (name, &key) {
        (vars::REDACTION_KEY, Some(key)) => Some(key.clone()),
        _ => lookup(name),
    })
    .map_err(|e| anyhow!("the configuration of function {}: {e}", escape(function)))
}

/// The pipeline wired as the function wires it, silences refresh included.
fn processor(sdk: &aws_config::SdkConfig, config: Config) -> DynamoProcessor {
    let dynamodb = aws_sdk_dynamodb::Client::new(sdk);
    Processor {
        entries: DynamoEntryStore::new(dynamodb.clone(), &config.entries_table),
        incidents: DynamoIncidentStore::new(
            dynamodb,
            &config.incidents_table,
            config.retention_days,
            &config.silences_table,
        )
        .with_silences_refresh(config.silences_refresh),
        publisher: SnsPublisher::new(aws_sdk_sns::Client::new(sdk), &config.alert_topic_arn),
        config,
    }
}

/// What became of one message.
enum Outcome {
    Processed,
    /// Left in the queue: handed back at the end.
    Kept {
        failed: bool,
    },
}

/// Processes one kept batch (`id` names it in the report).
async fn redrive_one(
    processor: Option<&DynamoProcessor>,
    id: &str,
    body: &str,
    out: &mut impl Write,
) -> Result<Outcome> {
    let id = escape(id);
    let record = match parse_destination_record(body) {
        Ok(r) => r,
        Err(why) => {
            // The reason quotes the record (a Kinesis record's shard).
            let why = why.to_string();
            writeln!(out, "skip {id}: {} (left where it is)", escape(&why))?;
            return Ok(Outcome::Kept { failed: true });
        }
    };
    let what = format!(
        "{id}: request {} failed {} time(s) with {}",
        escape(record.request_id.as_deref().unwrap_or("?")),
        record.attempts.unwrap_or(0),
        escape(record.error_type.as_deref().unwrap_or("an unknown error"))
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
            writeln!(
                out,
                "processed {what}: {} entries, {} stored, {} incidents, {} notifications sent",
                summary.entries, summary.stored, summary.incidents, summary.notifications_sent
            )?;
            Ok(Outcome::Processed)
        }
        Err(e) => {
            // An error may quote the batch it failed on.
            let e = e.to_string();
            writeln!(out, "failed {what}: {} (left where it is)", escape(&e))?;
            Ok(Outcome::Kept { failed: true })
        }
    }
}

/// What a run did, over both sources.
#[derive(Default)]
struct Tally {
    seen: usize,
    processed: usize,
    failed: usize,
}

impl Tally {
    fn count(&mut self, outcome: &Outcome) {
        self.seen += 1;
        match outcome {
            Outcome::Processed => self.processed += 1,
            Outcome::Kept { failed } => self.failed += usize::from(*failed),
        }
    }
}

async fn redrive_queue(
    queue: &FailureQueue,
    processor: Option<&DynamoProcessor>,
    max: usize,
    tally: &mut Tally,
    out: &mut impl Write,
) -> Result<()> {
    let mut handed_back = Vec::new();
    while tally.seen < max {
        let messages = queue.receive(max - tally.seen).await?;
        if messages.is_empty() {
            break;
        }
        for message in messages {
            let id = message.message_id().unwrap_or("?");
            let body = message.body().unwrap_or_default();
            let mut outcome = redrive_one(processor, id, body, out).await?;
            match (&outcome, message.receipt_handle()) {
                (Outcome::Processed, Some(receipt)) => {
                    // Not removed: it comes back after its visibility
                    // timeout (processing it again counts nothing twice).
                    if let Err(e) = queue.delete(id, receipt).await {
                        writeln!(out, "{e}")?;
                        outcome = Outcome::Kept { failed: true };
                    }
                }
                (_, receipt) => handed_back.extend(receipt.map(str::to_owned)),
            }
            tally.count(&outcome);
        }
    }
    for receipt in handed_back {
        queue.hand_back(receipt).await?;
    }
    Ok(())
}

async fn redrive_bucket(
    bucket: &FailureBucket,
    processor: Option<&DynamoProcessor>,
    max: usize,
    tally: &mut Tally,
    out: &mut impl Write,
) -> Result<()> {
    if tally.seen >= max {
        return Ok(());
    }
    // One object that cannot be named, read or processed is reported and
    // left; the others go on.
    for listed in bucket.keys(max - tally.seen).await? {
        let key = match listed {
            Ok(key) => key,
            Err(odd) => {
                let id = format!("s3://{}/{}", bucket.bucket, odd.encoded);
                let why = odd.to_string();
                writeln!(
                    out,
                    "skip {}: {} (left where it is)",
                    escape(&id),
                    escape(&why)
                )?;
                tally.count(&Outcome::Kept { failed: true });
                continue;
            }
        };
        let id = format!("s3://{}/{key}", bucket.bucket);
        let mut outcome = match bucket.read(&key).await {
            Ok(body) => redrive_one(processor, &id, &body, out).await?,
            Err(e) => {
                let e = e.to_string();
                writeln!(
                    out,
                    "skip {}: {} (left where it is)",
                    escape(&id),
                    escape(&e)
                )?;
                Outcome::Kept { failed: true }
            }
        };
        if let Outcome::Processed = outcome {
            if let Err(e) = bucket.delete(&key).await {
                writeln!(out, "{e}")?;
                outcome = Outcome::Kept { failed: true };
            }
        }
        tally.count(&outcome);
    }
    Ok(())
}

pub async fn run(ctx: &mut Session, args: RedriveArgs) -> Result<()> {
    // First, before any message is hidden: a dry run too, so it finds out
    // what a real run would lack.
    let function = ctx.processor_function(args.function.clone()).await?;
    let config = function_config(ctx, &function).await?;
    let bucket = ctx
        .optional(args.bucket.clone(), "FailedStreamBatchBucketName")
        .await?;
    // The queue is required unless only a bucket was named.
    let queue = if bucket.is_none() || ctx.names_a_queue() {
        Some(FailureQueue::open(ctx).await?)
    } else {
        None
    };
    let bucket = match bucket {
        Some(bucket) => Some(FailureBucket {
            s3: s3_client(ctx.sdk().await),
            bucket,
        }),
        None => None,
    };
    let processor = if args.dry_run {
        None
    } else {
        Some(processor(ctx.sdk().await, config))
    };
    let mut tally = Tally::default();
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "with the configuration of function {}",
        escape(&function)
    )?;
    if let Some(queue) = &queue {
        redrive_queue(queue, processor.as_ref(), args.max, &mut tally, &mut out).await?;
    }
    if let Some(bucket) = &bucket {
        redrive_bucket(bucket, processor.as_ref(), args.max, &mut tally, &mut out).await?;
    }
    let Tally {
        seen,
        processed,
        failed,
    } = tally;
    if failed > 0 && !args.dry_run {
        bail!("{failed} batch(es) could not be processed and were kept (or could not be removed); {processed} processed and removed");
    }
    match (seen, args.dry_run) {
        (0, _) => eprintln!("no failed batches are kept"),
        (_, true) => eprintln!("{seen} batch(es) would be processed; nothing changed"),
        (_, false) => eprintln!("{processed} batch(es) processed and removed"),
    }
    Ok(())
}
