//! `silence`, `silences` and `unsilence`: maintenance windows and known
//! problems. While a silence matches an incident its notifications are held
//! back (and counted); the function reads silences at most every 30 s.

use std::io::Write;
use std::time::Duration;

use anyhow::{bail, Result};
use clap::{ArgGroup, Args};
use serde_json::json;

use iot_log_monitor::incident::silence::{Matchers, Silence, MAX_SILENCE_MS};
use iot_log_monitor::model::category::Category;
use iot_log_monitor::model::time::format_rfc3339;
use iot_log_monitor::notify::display::{json_for_terminal, quoted};

use crate::args::now_ms;
use crate::output::{print_grid, Output};
use crate::session::Session;

/// A silence's length: a duration (90m, 8h, 2d) of at most 30 days.
fn silence_length(text: &str) -> Result<Duration, String> {
    let d = humantime::parse_duration(text).map_err(|e| format!("{text:?}: {e}"))?;
    if d.is_zero() {
        return Err("a silence must last a while".into());
    }
    if d.as_millis() > MAX_SILENCE_MS as u128 {
        return Err(format!("{text} is longer than 30 days"));
    }
    Ok(d)
}

#[derive(Args)]
#[command(group(ArgGroup::new("matcher").required(true).multiple(true)
    .args(["rule", "client", "category", "event_type", "log_reason", "all"])))]
pub struct SilenceArgs {
    /// Incidents of this rule.
    #[arg(long)]
    rule: Option<String>,
    /// Incidents whose named clients are all this client.
    #[arg(long)]
    client: Option<String>,
    #[arg(long)]
    category: Option<Category>,
    /// Incidents of this event type (Connect, Publish-In, an API name …).
    #[arg(long)]
    event_type: Option<String>,
    /// Incidents of this failure reason as logged (AUTHORIZATION_FAILURE …,
    /// or a CloudTrail errorCode).
    #[arg(long)]
    log_reason: Option<String>,
    /// Every incident (only with this flag: a silence must say what it mutes).
    #[arg(long)]
    all: bool,
    /// How long: 90m, 8h, 2d (at most 30 days).
    #[arg(long = "for", value_parser = silence_length)]
    length: Duration,
    /// Why, for whoever finds it later.
    #[arg(long)]
    reason: String,
    /// Who silences (default: $USER).
    #[arg(long)]
    by: Option<String>,
}

pub async fn silence(ctx: &mut Session, args: SilenceArgs) -> Result<()> {
    let now = now_ms();
    let silence = Silence {
        id: format!("s-{:012x}", fastrand::u64(..) & 0xffff_ffff_ffff),
        matchers: Matchers {
            all: args.all,
            category: args.category,
            rule: args.rule,
            event_type: args.event_type,
            reason: args.log_reason,
            client: args.client,
        },
        starts_ms: now,
        ends_ms: now + args.length.as_millis() as i64,
        comment: args.reason,
        created_by: args
            .by
            .or_else(|| std::env::var("USER").ok())
            .unwrap_or_else(|| "an operator".into()),
    };
    ctx.silence_table().await?.create(&silence).await?;
    println!("{}", silence.id);
    eprintln!(
        "silenced until {}: notifications of matching incidents are held back (entries are still stored)",
        format_rfc3339(silence.ends_ms)
    );
    Ok(())
}

fn matchers_text(m: &Matchers) -> String {
    let mut parts = Vec::new();
    if m.all {
        parts.push("all".to_owned());
    }
    let named = [
        ("category", m.category.map(|c| c.as_str().to_owned())),
        ("rule", m.rule.clone()),
        ("eventType", m.event_type.clone()),
        ("reason", m.reason.clone()),
        ("client", m.client.clone()),
    ];
    for (name, value) in named {
        if let Some(value) = value {
            parts.push(format!("{name}={}", quoted(&value)));
        }
    }
    parts.join(" ")
}

#[derive(Args)]
pub struct SilencesArgs {
    /// Ended silences too (kept 7 days past their end), latest end first.
    #[arg(long, conflicts_with = "reindex")]
    all: bool,
    /// Once, after updating a stack deployed before the silences' index:
    /// silences written by earlier versions are not in it, so the function
    /// does not read them until this adds them (one Scan of the table).
    #[arg(long)]
    reindex: bool,
}

pub async fn list(ctx: &mut Session, args: SilencesArgs) -> Result<()> {
    let table = ctx.silence_table().await?;
    if args.reindex {
        let added = table.reindex().await?;
        println!(
            "reindexed {added} silence(s): `silences` lists them, and the function reads them within 30 s"
        );
        return Ok(());
    }
    let now = now_ms();
    let silences = if args.all {
        table.read_history().await?
    } else {
        table.read_current(now).await?
    };
    if silences.is_empty() {
        eprintln!(
            "{}",
            if args.all {
                "no silences (ended ones are kept 7 days)"
            } else {
                "no active silences"
            }
        );
        return Ok(());
    }
    let out = &mut std::io::stdout().lock();
    match ctx.output {
        Output::Json => {
            for s in &silences {
                let value = json!({
                    "silenceId": s.id, "matchers": matchers_text(&s.matchers),
                    "startsAt": format_rfc3339(s.starts_ms), "endsAt": format_rfc3339(s.ends_ms),
                    "inForce": s.is_active(now),
                    "reason": s.comment, "createdBy": s.created_by,
                });
                writeln!(out, "{}", json_for_terminal(&value.to_string()))?;
            }
        }
        Output::Csv | Output::Table => {
            let mut headers = vec!["silence", "matches", "until", "reason", "by"];
            if args.all {
                headers.push("state");
            }
            let rows: Vec<Vec<String>> = silences
                .iter()
                .map(|s| {
                    let mut row = vec![
                        s.id.clone(),
                        matchers_text(&s.matchers),
                        format_rfc3339(s.ends_ms),
                        s.comment.clone(),
                        s.created_by.clone(),
                    ];
                    if args.all {
                        row.push(
                            if s.is_active(now) {
                                "in force"
                            } else {
                                "ended"
                            }
                            .into(),
                        );
                    }
                    row
                })
                .collect();
            print_grid(out, &headers, &rows, ctx.output, 48)?;
        }
    }
    Ok(())
}

pub async fn unsilence(ctx: &mut Session, id: &str) -> Result<()> {
    if !ctx.silence_table().await?.end(id, now_ms()).await? {
        bail!("no active silence {}", quoted(id));
    }
    println!("ended {id}: what it held back goes out with the next batch or sweep");
    Ok(())
}
