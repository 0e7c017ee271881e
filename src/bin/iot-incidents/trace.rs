//! `trace`: what happened to one message, as a timeline. The entries the
//! function stored (failures and warnings), and, when the log group is
//! reachable, every log line with that traceId from CloudWatch Logs
//! (successes included: Publish-In → RuleMatch → RuleExecution …), with the
//! step where it stopped marked.

use std::io::Write;

use anyhow::{anyhow, Result};
use aws_smithy_types::error::display::DisplayErrorContext;
use clap::Args;
use serde_json::{json, Value};

use iot_log_monitor::aws::reader::time_of;
use iot_log_monitor::model::time::{format_rfc3339, parse_iot_timestamp};
use iot_log_monitor::notify::display::{escape, json_for_terminal};

use crate::output::{cell, Output};
use crate::session::Session;

/// At most this many log lines are read for one trace.
const MAX_LINES: usize = 1_000;

#[derive(Args)]
pub struct TraceArgs {
    /// The message's traceId.
    trace_id: String,
    /// The IoT log group (default: where the stored entries came from, else AWSIotLogsV2).
    #[arg(long)]
    log_group: Option<String>,
    /// How far back to search CloudWatch Logs when nothing is stored (30m, 6h, 2d).
    #[arg(long, default_value = "24h")]
    since: String,
}

/// One step of the timeline.
struct Step {
    time_ms: i64,
    event_type: String,
    status: String,
    detail: String,
    source: &'static str,
}

fn text(v: &Value, name: &str) -> String {
    v.get(name)
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned()
}

/// The log lines of the trace: a term search for the id (what every
/// CloudWatch Logs implementation supports), kept only when the line's own
/// `traceId` is the id.
async fn log_lines(
    ctx: &mut Session,
    log_group: &str,
    trace_id: &str,
    (since_ms, until_ms): (i64, i64),
) -> Result<Vec<Step>> {
    let client = aws_sdk_cloudwatchlogs::Client::new(ctx.sdk().await);
    let pattern = format!("\"{}\"", trace_id.replace(['"', '\\'], ""));
    let mut steps = Vec::new();
    let mut token = None;
    loop {
        let page = client
            .filter_log_events()
            .log_group_name(log_group)
            .filter_pattern(&pattern)
            .start_time(since_ms)
            .end_time(until_ms)
            .set_next_token(token)
            .send()
            .await
            .map_err(|e| anyhow!("FilterLogEvents on {log_group}: {}", DisplayErrorContext(e)))?;
        for event in page.events() {
            let Ok(line) = serde_json::from_str::<Value>(event.message().unwrap_or_default())
            else {
                continue;
            };
            if line.get("traceId").and_then(Value::as_str) != Some(trace_id) {
                continue;
            }
            let time_ms = line
                .get("timestamp")
                .and_then(Value::as_str)
                .and_then(parse_iot_timestamp)
                .or(event.timestamp())
                .unwrap_or(0);
            let detail = [
                text(&line, "reason"),
                text(&line, "details"),
                text(&line, "ruleName"),
            ]
            .into_iter()
            .filter(|s| !s.is_empty())
            .collect::<Vec<_>>()
            .join(" · ");
            steps.push(Step {
                time_ms,
                event_type: text(&line, "eventType"),
                status: text(&line, "status"),
                detail,
                source: "log",
            });
        }
        token = page.next_token.filter(|_| steps.len() < MAX_LINES);
        if token.is_none() {
            return Ok(steps);
        }
    }
}

pub async fn run(ctx: &mut Session, args: TraceArgs) -> Result<()> {
    let stored = ctx.reader().await?.trace(&args.trace_id).await?;
    let log_group = args
        .log_group
        .clone()
        .or_else(|| stored.first().map(|r| cell(r, "logGroup")))
        .filter(|g| !g.is_empty())
        .unwrap_or_else(|| "AWSIotLogsV2".into());
    let now = crate::args::now_ms();
    let window = match (
        stored.iter().map(time_of).min(),
        stored.iter().map(time_of).max(),
    ) {
        (Some(first), Some(last)) => (first - 3_600_000, last + 3_600_000),
        _ => {
            let since = iot_log_monitor::store::query::parse_time(&args.since, now)
                .map_err(|e| anyhow!("--since: {e}"))?;
            (since, now)
        }
    };
    let mut steps: Vec<Step> = Vec::new();
    let mut unreachable = None;
    match log_lines(ctx, &log_group, &args.trace_id, window).await {
        Ok(lines) => steps.extend(lines),
        Err(e) => unreachable = Some(e),
    }
    // Stored entries the log search did not return (the log group expired
    // them, or is not reachable) still belong on the timeline.
    for row in &stored {
        let time_ms = time_of(row);
        let event_type = cell(row, "eventType");
        if steps
            .iter()
            .any(|s| s.time_ms == time_ms && s.event_type == event_type)
        {
            continue;
        }
        steps.push(Step {
            time_ms,
            event_type,
            status: cell(row, "status"),
            detail: [cell(row, "reason"), cell(row, "details")]
                .into_iter()
                .filter(|s| !s.is_empty())
                .collect::<Vec<_>>()
                .join(" · "),
            source: "stored",
        });
    }
    if let Some(e) = &unreachable {
        eprintln!("log group {log_group} not read ({e}); showing stored entries only");
    }
    if steps.is_empty() {
        eprintln!(
            "trace {} is nowhere: no stored entry, no log line in {log_group} from {} to {}",
            escape(&args.trace_id),
            format_rfc3339(window.0),
            format_rfc3339(window.1)
        );
        return Ok(());
    }
    steps.sort_by_key(|s| s.time_ms);
    // Where it stopped: the first failure, else the last step.
    let stopped = steps
        .iter()
        .position(|s| s.status.eq_ignore_ascii_case("failure"))
        .unwrap_or(steps.len() - 1);
    let out = &mut std::io::stdout().lock();
    if ctx.output == Output::Json {
        for (n, s) in steps.iter().enumerate() {
            let value = json!({
                "time": format_rfc3339(s.time_ms), "eventType": s.event_type,
                "status": s.status, "detail": s.detail, "source": s.source,
                "stoppedHere": n == stopped,
            });
            writeln!(out, "{}", json_for_terminal(&value.to_string()))?;
        }
        return Ok(());
    }
    writeln!(out, "Trace {} in {log_group}", escape(&args.trace_id))?;
    for (n, s) in steps.iter().enumerate() {
        let arrow = if n == 0 { " " } else { "→" };
        let mark = if n == stopped {
            "  ◀ stopped here"
        } else {
            ""
        };
        writeln!(
            out,
            "  {arrow} {}  {:<24} {:<8} {:<7} {}{mark}",
            format_rfc3339(s.time_ms),
            escape(&s.event_type),
            escape(&s.status),
            s.source,
            escape(&s.detail)
        )?;
    }
    Ok(())
}
