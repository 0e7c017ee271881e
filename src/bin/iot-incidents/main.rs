//! `iot-incidents`: ask what failed, when, for which rule or device, and what
//! happened to one message; re-drive failed batches; build test events.
//!
//! This file holds the command line and its dispatch; each command lives in
//! a module of its own, with the arguments only it takes.

mod args;
mod fixtures;
mod get;
mod incidents;
mod list;
mod local;
mod output;
mod redrive;
mod session;
mod silence;
mod summary;
mod trace;

use std::io::IsTerminal;
use std::process::ExitCode;

use anyhow::Result;
use clap::{Parser, Subcommand};

use iot_log_monitor::config::vars;

use crate::fixtures::{EncodeArgs, KinesisArgs};
use crate::incidents::{AckArgs, IncidentsArgs};
use crate::list::ListArgs;
use crate::local::LocalCommand;
use crate::output::Output;
use crate::redrive::RedriveArgs;
use crate::session::Session;
use crate::silence::{SilenceArgs, SilencesArgs};
use crate::summary::SummaryArgs;
use crate::trace::TraceArgs;

const EXAMPLES: &str = "\
Examples:
  iot-incidents --stack iot-log-monitor incidents
  iot-incidents --stack iot-log-monitor show 5e85ee0d7c22ee44-1
  iot-incidents --stack iot-log-monitor ack 5e85ee0d7c22ee44-1 --note 'rolling back the policy'
  iot-incidents --stack iot-log-monitor silence --rule StoreTelemetry --for 2h --reason 'table migration'
  iot-incidents --stack iot-log-monitor trace 30aa7ccc-1d23-0b97-aa7b-76196d83537e
  iot-incidents --stack iot-log-monitor list --since 6h
  iot-incidents --table MyEntries list --rule StoreTelemetry --since 7d --limit 20
  iot-incidents --stack iot-log-monitor list --category RuleNotFound --output csv > rule-errors.csv
  iot-incidents --stack iot-log-monitor get 30aa7ccc-1d23-0b97-aa7b-76196d83537e
  iot-incidents --stack iot-log-monitor summary --since 24h
  iot-incidents --stack iot-log-monitor redrive --dry-run
  iot-incidents encode --log-stream demo lines.jsonl > events/demo.json

Where the data is: --table/--incidents-table/--silences-table/--queue-url, else the
function's own variables ENTRIES_TABLE/INCIDENTS_TABLE/SILENCES_TABLE/FAILED_BATCH_QUEUE_URL, else
--stack (the stack's outputs). Region and credentials come from the standard AWS chain;
AWS_ENDPOINT_URL points every call at another endpoint (a local moto server, say).
redrive processes with the deployed function's own configuration: --stack or
redrive --function names the function.";

#[derive(Parser)]
#[command(name = "iot-incidents", version, about = "Query the AWS IoT entries and incidents that iot-log-processor stored", after_help = EXAMPLES)]
struct Cli {
    /// A stack deployed from template.yaml: its outputs say where the data is.
    #[arg(long, global = true, env = "IOT_INCIDENTS_STACK")]
    stack: Option<String>,
    /// The entries table.
    #[arg(long, global = true, env = vars::ENTRIES_TABLE)]
    table: Option<String>,
    /// The incidents table (incidents, show, ack, redrive).
    #[arg(long, global = true, env = vars::INCIDENTS_TABLE)]
    incidents_table: Option<String>,
    /// The silences table (silence, silences, unsilence, show, redrive).
    #[arg(long, global = true, env = vars::SILENCES_TABLE)]
    silences_table: Option<String>,
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

#[derive(Subcommand)]
enum Command {
    /// Every stored entry of one trace, oldest first, with all its fields.
    Get {
        /// A traceId (or a synthetic one: job:<jobId>, event:<CloudWatch event id>).
        trace_id: String,
    },
    /// Incidents: open ones first (--state resolved|all for the others).
    Incidents(IncidentsArgs),
    /// One incident: state, times, counts, clients, activity, notifications, acknowledgement, silences.
    Show {
        /// An incident id, as notifications and `incidents` show it.
        incident_id: String,
    },
    /// Acknowledge an open incident: no more reminders (its resolved notification still goes out).
    Ack(AckArgs),
    /// Hold back notifications of matching incidents for a while (entries are still stored).
    Silence(SilenceArgs),
    /// The silences in force (--all: ended ones too; --reindex: once after an upgrade).
    Silences(SilencesArgs),
    /// End a silence early.
    Unsilence { silence_id: String },
    /// What happened to one message: stored entries and its log lines, as a timeline.
    Trace(TraceArgs),
    /// Entries, newest first.
    List(ListArgs),
    /// Counts per category, top rules and clients, and entries per hour.
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

async fn run(cli: Cli) -> Result<()> {
    let output = cli.output.unwrap_or(if std::io::stdout().is_terminal() {
        Output::Table
    } else {
        Output::Json
    });
    let mut ctx = Session::new(cli.stack, cli.table, cli.queue_url, cli.region, output);
    ctx.incidents_table = cli.incidents_table;
    ctx.silences_table = cli.silences_table;
    match cli.command {
        Command::Incidents(args) => incidents::list(&mut ctx, args).await,
        Command::Show { incident_id } => incidents::show(&mut ctx, &incident_id).await,
        Command::Ack(args) => incidents::ack(&mut ctx, args).await,
        Command::Trace(args) => trace::run(&mut ctx, args).await,
        Command::Silence(args) => silence::silence(&mut ctx, args).await,
        Command::Silences(args) => silence::list(&mut ctx, args).await,
        Command::Unsilence { silence_id } => silence::unsilence(&mut ctx, &silence_id).await,
        Command::Get { trace_id } => get::run(&mut ctx, &trace_id).await,
        Command::List(args) => list::run(&mut ctx, args).await,
        Command::Summary(args) => summary::run(&mut ctx, args).await,
        Command::Encode(args) => fixtures::encode(args),
        Command::Kinesis(args) => fixtures::kinesis(args),
        Command::Redrive(args) => redrive::run(&mut ctx, args).await,
        Command::Local(command) => local::run(&mut ctx, command).await,
    }
}

/// Exit codes: 0 done (an empty result too), 1 the command failed (one
/// line on stderr), 2 a usage error (clap's).
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
            eprintln!("iot-incidents: {}", one_line(&e));
            ExitCode::FAILURE
        }
    }
}

/// The error and the causes that add to it, on one line: the library's
/// errors keep the SDK's error as their source and already quote what the
/// service said, so a cause already in the text is not said twice.
fn one_line(error: &anyhow::Error) -> String {
    let mut text = error.to_string();
    for cause in error.chain().skip(1) {
        let cause = cause.to_string();
        if !text.contains(&cause) && !matches!(cause.as_str(), "service error" | "dispatch failure")
        {
            text.push_str(": ");
            text.push_str(&cause);
        }
    }
    text
}
