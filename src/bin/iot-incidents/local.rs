//! `local`: helpers for runs on a moto server (used by `make demo`), hidden
//! from help. The stack itself is deployed by `scripts/local_stack.py`.

use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Result;
use clap::Subcommand;

use iot_log_monitor::notify::display::escape;
use iot_log_monitor::tooling::inbox::{drain_inbox, ReceivedNotification};

use crate::session::Session;

#[derive(Subcommand)]
pub enum LocalCommand {
    /// Print (and remove) the notifications waiting in an inbox queue subscribed to the topic.
    Inbox {
        #[arg(long)]
        inbox_url: String,
        #[arg(long, default_value_t = 3)]
        wait_seconds: u64,
    },
    /// Write a synthetic subscription event (benchmarks, load tests).
    Synth {
        #[arg(long, default_value_t = 7000)]
        entries: usize,
        #[arg(long, default_value_t = 0)]
        failure_percent: u32,
        #[arg(long, default_value_t = 1)]
        seed: u64,
    },
    /// Write the log lines of subscription events into CloudWatch Logs, as
    /// AWS IoT wrote them before the subscription delivered them (so `trace`
    /// finds them).
    PutLogs {
        /// Subscription event files (events/*.json).
        #[arg(required = true)]
        events: Vec<PathBuf>,
    },
}

pub async fn run(ctx: &mut Session, command: LocalCommand) -> Result<()> {
    match command {
        LocalCommand::Inbox {
            inbox_url,
            wait_seconds,
        } => {
            let sqs = aws_sdk_sqs::Client::new(ctx.sdk().await);
            let notifications =
                drain_inbox(&sqs, &inbox_url, Duration::from_secs(wait_seconds)).await?;
            print_notifications(&mut std::io::stdout().lock(), &notifications)?;
            eprintln!("{} notification(s) in the inbox", notifications.len());
        }
        LocalCommand::Synth {
            entries,
            failure_percent,
            seed,
        } => {
            println!(
                "{}",
                iot_log_monitor::tooling::encode::synthetic_event(entries, failure_percent, seed)
            );
        }
        LocalCommand::PutLogs { events } => {
            let logs = aws_sdk_cloudwatchlogs::Client::new(ctx.sdk().await);
            let mut written = 0;
            for file in events {
                written += put_logs(&logs, &std::fs::read_to_string(&file)?).await?;
            }
            eprintln!("{written} log line(s) written");
        }
    }
    Ok(())
}

/// Writes one subscription event's log events to its group and stream.
async fn put_logs(logs: &aws_sdk_cloudwatchlogs::Client, event_json: &str) -> Result<usize> {
    use aws_smithy_types::error::display::DisplayErrorContext;
    use iot_log_monitor::ingest::decode::{
        decode_data, parse_batch, subscription_data, DEFAULT_MAX_DECOMPRESSED_BYTES,
    };
    let data = subscription_data(event_json)?;
    let buffer = decode_data(&data, DEFAULT_MAX_DECOMPRESSED_BYTES)?;
    let batch = parse_batch(&buffer)?;
    // Already there is fine: several events share a group and streams.
    let _ = logs
        .create_log_group()
        .log_group_name(&*batch.log_group)
        .send()
        .await;
    let _ = logs
        .create_log_stream()
        .log_group_name(&*batch.log_group)
        .log_stream_name(&*batch.log_stream)
        .send()
        .await;
    let mut events = Vec::new();
    let mut message = String::new();
    for e in &batch.log_events {
        e.message_into(&mut message)?;
        events.push(
            aws_sdk_cloudwatchlogs::types::InputLogEvent::builder()
                .timestamp(e.timestamp)
                .message(&message)
                .build()?,
        );
    }
    events.sort_by_key(|e| e.timestamp);
    let n = events.len();
    if n > 0 {
        logs.put_log_events()
            .log_group_name(&*batch.log_group)
            .log_stream_name(&*batch.log_stream)
            .set_log_events(Some(events))
            .send()
            .await
            .map_err(|e| anyhow::anyhow!("PutLogEvents: {}", DisplayErrorContext(e)))?;
    }
    Ok(n)
}

/// Notifications as an inbox shows them: subject, attributes, the email's text.
fn print_notifications(out: &mut impl Write, notifications: &[ReceivedNotification]) -> Result<()> {
    for alert in notifications {
        writeln!(out, "Subject: {}", escape(&alert.subject))?;
        let attributes: Vec<String> = alert
            .attributes
            .iter()
            .map(|(k, v)| format!("{}={}", escape(k), escape(v)))
            .collect();
        writeln!(out, "Attributes: {}", attributes.join(" "))?;
        match iot_log_monitor::notify::notification::email_text(&alert.message) {
            Ok(text) => {
                for line in text.trim_end().lines() {
                    writeln!(out, "    {}", escape(line))?;
                }
            }
            Err(_) => writeln!(out, "{}", escape(&alert.message))?,
        }
        writeln!(out, "{}", "─".repeat(72))?;
    }
    Ok(())
}
