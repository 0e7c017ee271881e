//! Test events: `encode` (log lines into a CloudWatch Logs subscription
//! event) and `kinesis` (subscription events as the records of one Kinesis
//! event).

use std::io::{IsTerminal, Read};
use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use clap::Args;
use serde_json::Value;

use iot_log_monitor::ingest::decode::subscription_data;
use iot_log_monitor::tooling::encode::{
    envelope, kinesis_event_json, line_timestamp, retime_lines, wrap_envelope_json, BatchSpec,
};

use crate::args::now_ms;

#[derive(Args)]
pub struct EncodeArgs {
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
pub struct KinesisArgs {
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

pub fn kinesis(args: KinesisArgs) -> Result<()> {
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

pub fn encode(args: EncodeArgs) -> Result<()> {
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
