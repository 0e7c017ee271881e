//! `iot-incidents`: ask what failed, when, for which rule or device, and what
//! happened to one message; re-drive failed batches; build test events.

use std::io::{IsTerminal, Read, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{anyhow, bail, Context, Result};
use clap::{Args, Parser, Subcommand, ValueEnum};
use serde_json::{json, Value};

use iot_log_monitor::aws::dynamodb::{DynamoAlertGate, DynamoIncidentStore};
use iot_log_monitor::aws::reader::{time_of, IncidentReader, Row};
use iot_log_monitor::aws::sdk_config_loader;
use iot_log_monitor::aws::sns::SnsPublisher;
use iot_log_monitor::aws::stack::StackOutputs;
use iot_log_monitor::config::{vars, Config};
use iot_log_monitor::ingest::decode::subscription_data;
use iot_log_monitor::model::category::Category;
use iot_log_monitor::model::time::format_rfc3339;
use iot_log_monitor::notify::display::{csv_cell, escape, json_for_terminal};
use iot_log_monitor::pipeline::{Processor, Response};
use iot_log_monitor::store::query::{bar, parse_time, plan, summarize, Counted, ListFilter};
use iot_log_monitor::tooling::encode::{
    envelope, kinesis_event_json, line_timestamp, retime_lines, wrap_envelope_json, BatchSpec,
};
use iot_log_monitor::tooling::local::{drain_inbox, provision, Template};
use iot_log_monitor::tooling::redrive::parse_destination_record;

const EXAMPLES: &str = "\
Examples:
  iot-incidents --stack iot-log-monitor list --since 6h
  iot-incidents --table MyIncidents list --rule StoreTelemetry --since 7d --limit 20
  iot-incidents --stack iot-log-monitor list --category RuleNotFound --output csv > rule-errors.csv
  iot-incidents --stack iot-log-monitor get 30aa7ccc-1d23-0b97-aa7b-76196d83537e
  iot-incidents --stack iot-log-monitor summary --since 24h
  iot-incidents --stack iot-log-monitor redrive --dry-run
  iot-incidents encode --log-stream demo lines.jsonl > events/demo.json

Where the data is: --table/--queue-url, else INCIDENTS_TABLE/FAILED_BATCH_QUEUE_URL, else
--stack (the stack's outputs). Region and credentials come from the standard AWS chain;
AWS_ENDPOINT_URL points every call at another endpoint (a local moto server, say).";

#[derive(Parser)]
#[command(name = "iot-incidents", version, about = "Query the AWS IoT incidents that iot-log-processor stored", after_help = EXAMPLES)]
struct Cli {
    /// A stack deployed from template.yaml: its outputs say where the data is.
    #[arg(long, global = true, env = "IOT_INCIDENTS_STACK")]
    stack: Option<String>,
    /// The incidents table.
    #[arg(long, global = true, env = vars::INCIDENTS_TABLE)]
    table: Option<String>,
    /// The failure destination queue (for redrive).
    #[arg(long, global = true, env = "FAILED_BATCH_QUEUE_URL")]
    queue_url: Option<String>,
    /// AWS region (default: the standard chain).
    #[arg(long, global = true)]
    region: Option<String>,
    /// table on a terminal, JSON lines when piped.
    #[arg(long, short, global = true, value_enum)]
    output: Option<Output>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Output {
    Table,
    Json,
    Csv,
}

#[derive(Subcommand)]
enum Command {
    /// Every stored entry of one trace, oldest first, with all its fields.
    Get {
        /// A traceId (or a synthetic one: job:<jobId>, event:<CloudWatch event id>).
        trace_id: String,
    },
    /// Incidents, newest first.
    List(ListArgs),
    /// Counts per category, top rules and clients, and incidents per hour.
    Summary(SummaryArgs),
    /// Turn raw IoT log lines (JSON lines) into a CloudWatch Logs subscription event.
    Encode(EncodeArgs),
    /// Wrap subscription events (like events/*.json) as the records of one Kinesis event.
    Kinesis(KinesisArgs),
    /// Process the batches kept in the failure queue; each message is deleted only once processed.
    Redrive(RedriveArgs),
    /// Local runs on a moto server (used by `make demo`).
    #[command(hide = true, subcommand)]
    Local(LocalCommand),
}

#[derive(Args)]
struct Period {
    /// Start: a duration back from now (15m, 6h, 7d) or RFC 3339.
    #[arg(long, default_value = "24h")]
    since: String,
    /// End: `now`, a duration back from now, or RFC 3339.
    #[arg(long, default_value = "now")]
    until: String,
}

#[derive(Args)]
struct ListArgs {
    #[arg(long)]
    category: Option<Category>,
    /// A rule name.
    #[arg(long)]
    rule: Option<String>,
    /// A client id.
    #[arg(long)]
    client: Option<String>,
    #[command(flatten)]
    period: Period,
    #[arg(long, default_value_t = 50)]
    limit: usize,
    /// Items per DynamoDB page.
    #[arg(long, default_value_t = 500, hide = true)]
    page_size: i32,
}

#[derive(Args)]
struct SummaryArgs {
    #[command(flatten)]
    period: Period,
    /// How many rules and clients to rank.
    #[arg(long, default_value_t = 5)]
    top: usize,
}

#[derive(Args)]
struct EncodeArgs {
    /// File of log lines, one per line; `-` or nothing reads stdin.
    input: Option<PathBuf>,
    #[arg(long, default_value = "AWSIotLogsV2")]
    log_group: String,
    #[arg(long, default_value = "iot-log-stream")]
    log_stream: String,
    #[arg(long, default_value = "123456789012")]
    owner: String,
    /// Makes the event ids of this batch distinct from another built from the same lines.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// CloudWatch timestamp (epoch ms) for lines without a valid `timestamp`; default now.
    #[arg(long)]
    time: Option<i64>,
    /// Shift the lines' timestamps so the newest is now (or --time): replay recorded lines as fresh ones.
    #[arg(long)]
    retime: bool,
    /// Also write the readable decoded envelope to this file.
    #[arg(long)]
    decoded: Option<PathBuf>,
    /// The input is a decoded envelope (like events/*.decoded.json), not log lines: wrap it as is.
    #[arg(long, conflicts_with_all = ["decoded", "time", "seed", "retime"])]
    envelope: bool,
}

#[derive(Args)]
struct KinesisArgs {
    /// Subscription event files, one record each, in order.
    #[arg(required = true)]
    events: Vec<PathBuf>,
    /// Also put a record whose data is not gzip at this position (0 = first).
    #[arg(long)]
    corrupt_at: Option<usize>,
    /// Sequence number of the first record.
    #[arg(long, default_value_t = 49_650_000_000_000_000_000)]
    first_sequence: u128,
    /// Arrival time (epoch ms) stamped on the records.
    #[arg(long, default_value_t = 1_763_802_000_000)]
    time: i64,
}

#[derive(Args)]
struct RedriveArgs {
    /// Show what would be processed; change nothing.
    #[arg(long)]
    dry_run: bool,
    /// At most this many batches.
    #[arg(long, default_value_t = 100)]
    max: usize,
    /// The alert state table (default: the stack's, or ALERT_STATE_TABLE).
    #[arg(long, env = vars::ALERT_STATE_TABLE)]
    alert_state_table: Option<String>,
    /// The alert topic (default: the stack's, or ALERT_TOPIC_ARN).
    #[arg(long, env = vars::ALERT_TOPIC_ARN)]
    topic_arn: Option<String>,
}

#[derive(Subcommand)]
enum LocalCommand {
    /// Create template.yaml's tables, topic and queues on AWS_ENDPOINT_URL; print the function's environment.
    Setup {
        #[arg(long, default_value = "template.yaml")]
        template: PathBuf,
        #[arg(long, default_value = "demo")]
        prefix: String,
    },
    /// Print (and remove) the alerts waiting in an inbox queue subscribed to the topic.
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
    /// Put a batch into the failure queue as Lambda's OnFailure destination would.
    FailBatch {
        /// A subscription event file (events/*.json).
        event: PathBuf,
        #[arg(long, default_value = "IotLogMonitor.Store.Unprocessed")]
        error_type: String,
    },
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

struct Session {
    cli_stack: Option<String>,
    table: Option<String>,
    queue_url: Option<String>,
    region: Option<String>,
    output: Output,
    sdk: Option<aws_config::SdkConfig>,
    outputs: Option<StackOutputs>,
}

impl Session {
    async fn sdk(&mut self) -> &aws_config::SdkConfig {
        if self.sdk.is_none() {
            let mut loader = sdk_config_loader();
            if let Some(region) = &self.region {
                loader = loader.region(aws_config::Region::new(region.clone()));
            }
            self.sdk = Some(loader.load().await);
        }
        self.sdk.as_ref().expect("just set")
    }

    /// A value from a flag or the environment, else the stack's output.
    async fn resolve(
        &mut self,
        given: Option<String>,
        output: &'static str,
        flag: &str,
    ) -> Result<String> {
        if let Some(value) = given {
            return Ok(value);
        }
        let Some(stack) = self.cli_stack.clone() else {
            bail!("say where the data is: {flag}, or --stack NAME");
        };
        if self.outputs.is_none() {
            let client = aws_sdk_cloudformation::Client::new(self.sdk().await);
            self.outputs = Some(StackOutputs::load(&client, &stack).await?);
        }
        Ok(self
            .outputs
            .as_ref()
            .expect("just set")
            .get(&stack, output)?)
    }

    async fn reader(&mut self) -> Result<IncidentReader> {
        let table = self
            .resolve(self.table.clone(), "IncidentsTableName", "--table")
            .await?;
        Ok(IncidentReader::new(
            aws_sdk_dynamodb::Client::new(self.sdk().await),
            table,
        ))
    }
}

const MAX_PERIOD_DAYS: i64 = 92;

fn period(p: &Period) -> Result<(i64, i64)> {
    let now = now_ms();
    let since = parse_time(&p.since, now).map_err(|e| anyhow!("--since: {e}"))?;
    let until = parse_time(&p.until, now).map_err(|e| anyhow!("--until: {e}"))?;
    if since > until {
        bail!(
            "--since ({}) is after --until ({})",
            format_rfc3339(since),
            format_rfc3339(until)
        );
    }
    // The indexes are keyed by day: a period costs one Query per day, shard and category.
    if until - since > MAX_PERIOD_DAYS * 86_400_000 {
        bail!(
            "the period is longer than {MAX_PERIOD_DAYS} days; narrow it with --since and --until"
        );
    }
    Ok((since, until))
}

const LIST_COLUMNS: &[(&str, &str)] = &[
    ("time", "timeMs"),
    ("category", "category"),
    ("eventType", "eventType"),
    ("rule", "ruleName"),
    ("client", "clientId"),
    ("traceId", "traceId"),
    ("reason", "reason"),
    ("details", "details"),
];

fn cell(row: &Row, attribute: &str) -> String {
    match (attribute, row.get(attribute)) {
        ("timeMs", _) => format_rfc3339(time_of(row)),
        (_, Some(Value::String(s))) => s.clone(),
        (_, Some(Value::Null)) | (_, None) => String::new(),
        (_, Some(other)) => other.to_string(),
    }
}

/// A CSV cell that a spreadsheet shows as text (see `display::csv_cell`).
fn csv_field(s: &str) -> String {
    csv_cell(s)
}

/// Terminal cells: one line, bounded width, control and bidirectional
/// characters shown as escapes (`\u{202e}`), never acted on.
fn table_cell(s: &str, width: usize) -> String {
    let flat = escape(s);
    if flat.chars().count() <= width {
        return flat.into_owned();
    }
    let mut cut: String = flat.chars().take(width.saturating_sub(1)).collect();
    cut.push('…');
    cut
}

fn print_table(
    out: &mut impl Write,
    headers: &[&str],
    rows: &[Vec<String>],
    max_width: usize,
) -> Result<()> {
    let cells: Vec<Vec<String>> = rows
        .iter()
        .map(|r| r.iter().map(|c| table_cell(c, max_width)).collect())
        .collect();
    let widths: Vec<usize> = headers
        .iter()
        .enumerate()
        .map(|(i, h)| {
            cells
                .iter()
                .map(|r| r[i].chars().count())
                .max()
                .unwrap_or(0)
                .max(h.len())
        })
        .collect();
    let line = |values: Vec<&str>| -> String {
        values
            .iter()
            .zip(&widths)
            .map(|(v, w)| format!("{v:<w$}", w = *w))
            .collect::<Vec<_>>()
            .join("  ")
            .trim_end()
            .to_owned()
    };
    writeln!(out, "{}", line(headers.to_vec()))?;
    for row in &cells {
        writeln!(out, "{}", line(row.iter().map(String::as_str).collect()))?;
    }
    Ok(())
}

fn print_rows(out: &mut impl Write, rows: &[Row], format: Output) -> Result<()> {
    match format {
        Output::Json => {
            for row in rows {
                let json = Value::Object(row.clone()).to_string();
                writeln!(out, "{}", json_for_terminal(&json))?;
            }
        }
        Output::Csv => {
            writeln!(
                out,
                "{}",
                LIST_COLUMNS
                    .iter()
                    .map(|(h, _)| *h)
                    .collect::<Vec<_>>()
                    .join(",")
            )?;
            for row in rows {
                let fields: Vec<String> = LIST_COLUMNS
                    .iter()
                    .map(|(_, a)| csv_field(&cell(row, a)))
                    .collect();
                writeln!(out, "{}", fields.join(","))?;
            }
        }
        Output::Table => {
            let headers: Vec<&str> = LIST_COLUMNS.iter().map(|(h, _)| *h).collect();
            let cells: Vec<Vec<String>> = rows
                .iter()
                .map(|r| LIST_COLUMNS.iter().map(|(_, a)| cell(r, a)).collect())
                .collect();
            print_table(out, &headers, &cells, 40)?;
        }
    }
    Ok(())
}

/// `get` in a table: one block per entry, the attributes that matter first.
fn print_entries(out: &mut impl Write, rows: &[Row], format: Output) -> Result<()> {
    if format != Output::Table {
        if format == Output::Csv {
            let mut names: Vec<&String> = rows.iter().flat_map(|r| r.keys()).collect();
            names.sort();
            names.dedup();
            writeln!(
                out,
                "{}",
                names
                    .iter()
                    .map(|n| csv_field(n))
                    .collect::<Vec<_>>()
                    .join(",")
            )?;
            for row in rows {
                writeln!(
                    out,
                    "{}",
                    names
                        .iter()
                        .map(|n| csv_field(&cell(row, n)))
                        .collect::<Vec<_>>()
                        .join(",")
                )?;
            }
            return Ok(());
        }
        return print_rows(out, rows, format);
    }
    const FIRST: &[&str] = &[
        "category",
        "eventType",
        "status",
        "logLevel",
        "ruleName",
        "ruleAction",
        "clientId",
        "reason",
        "details",
    ];
    const HIDDEN: &[&str] = &[
        "entryKey",
        "categoryDay",
        "ruleDay",
        "clientDay",
        "rawMessage",
        "timeMs",
    ];
    for (n, row) in rows.iter().enumerate() {
        writeln!(
            out,
            "── {} ── {} ({} of {})",
            format_rfc3339(time_of(row)),
            escape(&cell(row, "traceId")),
            n + 1,
            rows.len()
        )?;
        let mut names: Vec<&String> = row
            .keys()
            .filter(|k| !HIDDEN.contains(&k.as_str()))
            .collect();
        names.sort_by_key(|k| {
            (
                FIRST.iter().position(|f| f == k).unwrap_or(FIRST.len()),
                k.to_string(),
            )
        });
        for name in names {
            writeln!(
                out,
                "  {:<22} {}",
                table_cell(name, 60),
                table_cell(&cell(row, name), 200)
            )?;
        }
        writeln!(
            out,
            "  {:<22} {}",
            "rawMessage",
            escape(&cell(row, "rawMessage"))
        )?;
    }
    Ok(())
}

async fn list(ctx: &mut Session, args: ListArgs) -> Result<()> {
    let (since_ms, until_ms) = period(&args.period)?;
    let filter = ListFilter {
        category: args.category,
        rule: args.rule,
        client: args.client,
        since_ms,
        until_ms,
    };
    let mut reader = ctx.reader().await?;
    reader.page_size = args.page_size.max(1);
    let rows = reader.list(&filter, &plan(&filter), args.limit).await?;
    if rows.is_empty() {
        eprintln!(
            "no incidents match, {} to {}",
            format_rfc3339(since_ms),
            format_rfc3339(until_ms)
        );
        return Ok(());
    }
    print_rows(&mut std::io::stdout().lock(), &rows, ctx.output)
}

async fn get(ctx: &mut Session, trace_id: &str) -> Result<()> {
    // Stored as the function stores it: an over-long id as a prefix and a hash.
    let key = iot_log_monitor::store::item::bounded_key_part(trace_id);
    let rows = ctx.reader().await?.trace(&key).await?;
    if rows.is_empty() {
        eprintln!("no stored entries for trace {}", escape(trace_id));
        return Ok(());
    }
    print_entries(&mut std::io::stdout().lock(), &rows, ctx.output)
}

async fn summary(ctx: &mut Session, args: SummaryArgs) -> Result<()> {
    let (since_ms, until_ms) = period(&args.period)?;
    let filter = ListFilter {
        since_ms,
        until_ms,
        ..ListFilter::default()
    };
    let rows = ctx
        .reader()
        .await?
        .list(&filter, &plan(&filter), usize::MAX)
        .await?;
    let text = |r: &Row, k: &str| r.get(k).and_then(Value::as_str).map(str::to_owned);
    let owned: Vec<(i64, String, Option<String>, Option<String>)> = rows
        .iter()
        .map(|r| {
            (
                time_of(r),
                text(r, "category").unwrap_or_default(),
                text(r, "ruleName"),
                text(r, "clientId"),
            )
        })
        .collect();
    let s = summarize(
        owned.iter().map(|(t, c, r, cl)| Counted {
            time_ms: *t,
            category: c,
            rule: r.as_deref(),
            client: cl.as_deref(),
        }),
        since_ms,
        until_ms,
        args.top,
    );
    let mut out = std::io::stdout().lock();
    match ctx.output {
        Output::Json => {
            let hours: Vec<Value> = s
                .per_hour
                .iter()
                .map(|(h, c)| json!({"hour": format_rfc3339(*h), "count": c}))
                .collect();
            let ranked = |v: &[(String, u64)]| {
                v.iter()
                    .map(|(k, n)| json!({"name": k, "count": n}))
                    .collect::<Vec<_>>()
            };
            let doc = json!({
                "since": format_rfc3339(since_ms), "until": format_rfc3339(until_ms), "total": s.total,
                "byCategory": s.by_category, "topRules": ranked(&s.top_rules), "topClients": ranked(&s.top_clients),
                "perHour": hours,
            });
            writeln!(out, "{}", json_for_terminal(&doc.to_string()))?;
        }
        Output::Csv => {
            writeln!(out, "section,name,count")?;
            for (category, n) in &s.by_category {
                writeln!(out, "category,{},{n}", csv_field(category))?;
            }
            for (rule, n) in &s.top_rules {
                writeln!(out, "rule,{},{n}", csv_field(rule))?;
            }
            for (client, n) in &s.top_clients {
                writeln!(out, "client,{},{n}", csv_field(client))?;
            }
            for (hour, n) in &s.per_hour {
                writeln!(out, "hour,{},{n}", format_rfc3339(*hour))?;
            }
        }
        Output::Table => {
            writeln!(
                out,
                "{} incidents, {} to {}",
                s.total,
                format_rfc3339(since_ms),
                format_rfc3339(until_ms)
            )?;
            writeln!(out, "\nBy category")?;
            for c in Category::ALL {
                writeln!(
                    out,
                    "  {:<22} {:>8}",
                    c.as_str(),
                    s.by_category.get(c.as_str()).copied().unwrap_or(0)
                )?;
            }
            for (title, ranked) in [("Top rules", &s.top_rules), ("Top clients", &s.top_clients)] {
                writeln!(out, "\n{title}")?;
                if ranked.is_empty() {
                    writeln!(out, "  (none)")?;
                }
                for (name, n) in ranked {
                    writeln!(out, "  {:<40} {n:>8}", table_cell(name, 40))?;
                }
            }
            writeln!(out, "\nPer hour (UTC)")?;
            let max = s.per_hour.iter().map(|(_, c)| *c).max().unwrap_or(0);
            // Two days of hours fit a screen; past that, runs of quiet hours fold into one line.
            let fold = s.per_hour.len() > 48;
            let mut quiet = 0;
            for (hour, n) in &s.per_hour {
                if fold && *n == 0 {
                    quiet += 1;
                    continue;
                }
                if quiet > 0 {
                    writeln!(out, "  {:<16}  {:>7}  ({quiet} quiet hours)", "…", 0)?;
                    quiet = 0;
                }
                let label = &format_rfc3339(*hour)[..16];
                writeln!(out, "  {label}  {n:>7}  {}", bar(*n, max, 50))?;
            }
            if quiet > 0 {
                writeln!(out, "  {:<16}  {:>7}  ({quiet} quiet hours)", "…", 0)?;
            }
        }
    }
    Ok(())
}

fn kinesis(args: KinesisArgs) -> Result<()> {
    let mut datas = Vec::new();
    for path in &args.events {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        let data = subscription_data(&text)
            .with_context(|| format!("{} is not a subscription event", path.display()))?;
        datas.push(data.into_owned());
    }
    if let Some(at) = args.corrupt_at {
        if at > datas.len() {
            bail!("--corrupt-at {at} is past the {} records", datas.len());
        }
        datas.insert(
            at,
            base64_simd::STANDARD.encode_to_string(b"this record is not gzip"),
        );
    }
    let datas: Vec<&str> = datas.iter().map(String::as_str).collect();
    println!(
        "{}",
        kinesis_event_json(&datas, args.first_sequence, args.time)
    );
    Ok(())
}

fn encode(args: EncodeArgs) -> Result<()> {
    let text = match args.input.as_deref() {
        None => read_stdin()?,
        Some(p) if p.as_os_str() == "-" => read_stdin()?,
        Some(p) => {
            std::fs::read_to_string(p).with_context(|| format!("cannot read {}", p.display()))?
        }
    };
    if args.envelope {
        let value: Value = serde_json::from_str(&text).context("the envelope is not JSON")?;
        println!("{}", wrap_envelope_json(&serde_json::to_vec(&value)?));
        return Ok(());
    }
    let fallback = args.time.unwrap_or_else(now_ms);
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    if lines.is_empty() {
        bail!("no log lines in the input");
    }
    let retimed;
    let lines: Vec<&str> = if args.retime {
        retimed = retime_lines(&lines, fallback);
        retimed.iter().map(String::as_str).collect()
    } else {
        lines
    };
    let spec = BatchSpec {
        owner: args.owner,
        log_group: args.log_group,
        log_stream: args.log_stream,
        subscription_filter: "iot-log-monitor".into(),
        id_seed: args.seed,
    };
    let envelope = envelope(
        &spec,
        lines.iter().map(|l| (line_timestamp(l, fallback), *l)),
    );
    if let Some(path) = &args.decoded {
        let pretty = serde_json::to_string_pretty(&envelope)? + "\n";
        std::fs::write(path, pretty).with_context(|| format!("cannot write {}", path.display()))?;
    }
    println!("{}", wrap_envelope_json(&serde_json::to_vec(&envelope)?));
    Ok(())
}

fn read_stdin() -> Result<String> {
    let mut stdin = std::io::stdin();
    if stdin.is_terminal() {
        eprintln!("reading log lines from the terminal; end with Ctrl-D");
    }
    let mut text = String::new();
    stdin
        .read_to_string(&mut text)
        .context("cannot read stdin")?;
    Ok(text)
}

async fn redrive(ctx: &mut Session, args: RedriveArgs) -> Result<()> {
    let queue_url = ctx
        .resolve(ctx.queue_url.clone(), "FailedBatchQueueUrl", "--queue-url")
        .await?;
    let sqs = aws_sdk_sqs::Client::new(ctx.sdk().await);
    let processor = if args.dry_run {
        None
    } else {
        let incidents = ctx
            .resolve(ctx.table.clone(), "IncidentsTableName", "--table")
            .await?;
        let alert_state = ctx
            .resolve(
                args.alert_state_table.clone(),
                "AlertStateTableName",
                "--alert-state-table",
            )
            .await?;
        let topic = ctx
            .resolve(args.topic_arn.clone(), "AlertTopicArn", "--topic-arn")
            .await?;
        let config = Config::from_lookup(|name| match name {
            vars::INCIDENTS_TABLE => Some(incidents.clone()),
            vars::ALERT_STATE_TABLE => Some(alert_state.clone()),
            vars::ALERT_TOPIC_ARN => Some(topic.clone()),
            other => std::env::var(other).ok(),
        })?;
        let sdk = ctx.sdk().await;
        let dynamodb = aws_sdk_dynamodb::Client::new(sdk);
        Some(Processor {
            store: DynamoIncidentStore::new(dynamodb.clone(), &config.incidents_table),
            gate: DynamoAlertGate::new(dynamodb, &config.alert_state_table, config.alert_window),
            publisher: SnsPublisher::new(aws_sdk_sns::Client::new(sdk), &config.alert_topic_arn),
            config,
        })
    };
    let (mut processed, mut failed, mut seen) = (0usize, 0usize, 0usize);
    let mut handed_back = Vec::new();
    let mut out = std::io::stdout().lock();
    while seen < args.max {
        let batch = sqs
            .receive_message()
            .queue_url(&queue_url)
            .max_number_of_messages(((args.max - seen).min(10)) as i32)
            // Hidden while looked at, so each is seen once; a dry run hands them back at the end.
            .visibility_timeout(120)
            .wait_time_seconds(1)
            .send()
            .await
            .map_err(|e| {
                anyhow!(
                    "ReceiveMessage from {queue_url}: {}",
                    aws_smithy_types::error::display::DisplayErrorContext(e)
                )
            })?;
        let messages = batch.messages.unwrap_or_default();
        if messages.is_empty() {
            break;
        }
        for message in messages {
            seen += 1;
            let id = message.message_id().unwrap_or("?").to_owned();
            let record = match parse_destination_record(message.body().unwrap_or_default()) {
                Ok(r) => r,
                Err(why) => {
                    failed += 1;
                    writeln!(out, "skip {id}: {why} (left in the queue)")?;
                    handed_back.extend(message.receipt_handle().map(str::to_owned));
                    continue;
                }
            };
            let what = format!(
                "{id}: request {} failed {} time(s) with {}",
                record.request_id.as_deref().unwrap_or("?"),
                record.attempts.unwrap_or(0),
                record.error_type.as_deref().unwrap_or("an unknown error")
            );
            let Some(processor) = &processor else {
                writeln!(out, "would process {what}")?;
                handed_back.extend(message.receipt_handle().map(str::to_owned));
                continue;
            };
            let deadline = Instant::now() + Duration::from_secs(60);
            match processor.process(&record.payload, now_ms(), deadline).await {
                // A Kinesis payload with records still failing is not done: keep it.
                Ok(Response::Stream(stream)) if !stream.batch_item_failures.is_empty() => {
                    handed_back.extend(message.receipt_handle().map(str::to_owned));
                    writeln!(
                        out,
                        "could not process {what}: {} of {} Kinesis records still fail",
                        stream.batch_item_failures.len(),
                        stream.summary.records
                    )?;
                    failed += 1;
                }
                Ok(response) => {
                    let summary = response.summary();
                    if let Some(receipt) = message.receipt_handle() {
                        sqs.delete_message()
                            .queue_url(&queue_url)
                            .receipt_handle(receipt)
                            .send()
                            .await
                            .map_err(|e| {
                                anyhow!(
                                    "processed {id} but could not delete it: {}",
                                    aws_smithy_types::error::display::DisplayErrorContext(e)
                                )
                            })?;
                    }
                    processed += 1;
                    writeln!(
                        out,
                        "processed {what}: {} entries, {} incidents stored, {} alerts sent",
                        summary.entries, summary.stored, summary.alerts_sent
                    )?;
                }
                Err(e) => {
                    failed += 1;
                    writeln!(out, "failed {what}: {e} (left in the queue)")?;
                    handed_back.extend(message.receipt_handle().map(str::to_owned));
                }
            }
        }
    }
    for receipt in handed_back {
        sqs.change_message_visibility()
            .queue_url(&queue_url)
            .receipt_handle(receipt)
            .visibility_timeout(0)
            .send()
            .await
            .map_err(|e| {
                anyhow!(
                    "could not hand a message back: {}",
                    aws_smithy_types::error::display::DisplayErrorContext(e)
                )
            })?;
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

async fn local(ctx: &mut Session, command: LocalCommand) -> Result<()> {
    match command {
        LocalCommand::Setup { template, prefix } => {
            let template = Template::load(&template)?;
            let provisioned = provision(&template, ctx.sdk().await, &prefix).await?;
            for (name, value) in provisioned.environment(&template, "ProcessorFunction")? {
                println!("{name}={value}");
            }
            println!("INBOX_QUEUE_URL={}", provisioned.inbox_queue_url);
            println!(
                "FAILED_BATCH_QUEUE_URL={}",
                provisioned
                    .refs
                    .get("FailedBatchQueue")
                    .cloned()
                    .unwrap_or_default()
            );
        }
        LocalCommand::Inbox {
            inbox_url,
            wait_seconds,
        } => {
            let sqs = aws_sdk_sqs::Client::new(ctx.sdk().await);
            let alerts = drain_inbox(&sqs, &inbox_url, Duration::from_secs(wait_seconds)).await?;
            let mut out = std::io::stdout().lock();
            for alert in &alerts {
                writeln!(out, "Subject: {}", escape(&alert.subject))?;
                let attributes: Vec<String> = alert
                    .attributes
                    .iter()
                    .map(|(k, v)| format!("{}={}", escape(k), escape(v)))
                    .collect();
                writeln!(out, "Attributes: {}", attributes.join(" "))?;
                match iot_log_monitor::notify::alert::email_text(&alert.message) {
                    Ok(text) => {
                        for line in text.trim_end().lines() {
                            writeln!(out, "    {}", escape(line))?;
                        }
                    }
                    Err(_) => writeln!(out, "{}", escape(&alert.message))?,
                }
                writeln!(out, "{}", "─".repeat(72))?;
            }
            eprintln!("{} alert(s) in the inbox", alerts.len());
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
        LocalCommand::FailBatch { event, error_type } => {
            let queue_url = ctx
                .resolve(ctx.queue_url.clone(), "FailedBatchQueueUrl", "--queue-url")
                .await?;
            let payload: Value = serde_json::from_str(&std::fs::read_to_string(&event)?)?;
            let body = iot_log_monitor::tooling::redrive::destination_record(
                "local-failed-invocation",
                &payload,
                &error_type,
                "simulated: every attempt failed",
            );
            let sqs = aws_sdk_sqs::Client::new(ctx.sdk().await);
            sqs.send_message()
                .queue_url(&queue_url)
                .message_body(body)
                .send()
                .await
                .map_err(|e| {
                    anyhow!(
                        "SendMessage: {}",
                        aws_smithy_types::error::display::DisplayErrorContext(e)
                    )
                })?;
        }
    }
    Ok(())
}

async fn run(cli: Cli) -> Result<()> {
    let output = cli.output.unwrap_or(if std::io::stdout().is_terminal() {
        Output::Table
    } else {
        Output::Json
    });
    let mut ctx = Session {
        cli_stack: cli.stack,
        table: cli.table,
        queue_url: cli.queue_url,
        region: cli.region,
        output,
        sdk: None,
        outputs: None,
    };
    match cli.command {
        Command::Get { trace_id } => get(&mut ctx, &trace_id).await,
        Command::List(args) => list(&mut ctx, args).await,
        Command::Summary(args) => summary(&mut ctx, args).await,
        Command::Encode(args) => encode(args),
        Command::Kinesis(args) => kinesis(args),
        Command::Redrive(args) => redrive(&mut ctx, args).await,
        Command::Local(command) => local(&mut ctx, command).await,
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("iot-incidents: cannot start: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // One line, no backtrace: the chain of causes joined.
            eprintln!("iot-incidents: {e:#}");
            ExitCode::FAILURE
        }
    }
}
