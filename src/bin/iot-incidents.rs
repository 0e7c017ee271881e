//! `iot-incidents`: query the incidents the processor stored, and build test events.

use std::io::{IsTerminal, Read};
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};

use iot_log_monitor::encode::{envelope, line_timestamp, wrap_envelope_json, BatchSpec};

#[derive(Parser)]
#[command(name = "iot-incidents", version, about = "Query AWS IoT incidents stored by iot-log-processor", after_help = EXAMPLES)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

const EXAMPLES: &str = "\
Examples:
  iot-incidents encode --log-stream demo < lines.jsonl > events/demo.json";

#[derive(Subcommand)]
enum Command {
    /// Turn raw IoT log lines (JSON lines, from a file or stdin) into a CloudWatch Logs subscription event.
    Encode(EncodeArgs),
}

#[derive(clap::Args)]
struct EncodeArgs {
    /// File of log lines, one per line; `-` or nothing reads stdin.
    input: Option<std::path::PathBuf>,
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
    /// Also write the readable decoded envelope to this file.
    #[arg(long)]
    decoded: Option<std::path::PathBuf>,
    /// The input is a decoded envelope (like events/*.decoded.json), not log lines: wrap it as is.
    #[arg(long, conflicts_with_all = ["decoded", "time", "seed"])]
    envelope: bool,
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
        let value: serde_json::Value =
            serde_json::from_str(&text).context("the envelope is not JSON")?;
        println!("{}", wrap_envelope_json(&serde_json::to_vec(&value)?));
        return Ok(());
    }
    let now = match args.time {
        Some(t) => t,
        None => std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)?
            .as_millis() as i64,
    };
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    let spec = BatchSpec {
        owner: args.owner,
        log_group: args.log_group,
        log_stream: args.log_stream,
        subscription_filter: "iot-log-monitor".into(),
        id_seed: args.seed,
    };
    let envelope = envelope(&spec, lines.iter().map(|l| (line_timestamp(l, now), *l)));
    let envelope_json = serde_json::to_vec(&envelope)?;
    if let Some(path) = &args.decoded {
        let pretty = serde_json::to_string_pretty(&envelope)? + "\n";
        std::fs::write(path, pretty).with_context(|| format!("cannot write {}", path.display()))?;
    }
    println!("{}", wrap_envelope_json(&envelope_json));
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

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Encode(args) => encode(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("iot-incidents: {e:#}");
            ExitCode::FAILURE
        }
    }
}
