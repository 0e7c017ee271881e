//! `summary`: counts per category, top rules and clients, incidents per hour.

use std::io::Write;

use anyhow::Result;
use clap::Args;
use serde_json::{json, Value};

use iot_log_monitor::aws::reader::{time_of, Row};
use iot_log_monitor::model::category::Category;
use iot_log_monitor::model::time::format_rfc3339;
use iot_log_monitor::notify::display::{csv_cell, json_for_terminal};
use iot_log_monitor::store::query::{bar, plan, summarize, Counted, ListFilter, PeriodSummary};

use crate::args::Period;
use crate::output::{csv_writer, table_cell, Output};
use crate::session::Session;

#[derive(Args)]
pub struct SummaryArgs {
    #[command(flatten)]
    period: Period,
    /// How many rules and clients to rank.
    #[arg(long, default_value_t = 5)]
    top: usize,
}

pub async fn run(ctx: &mut Session, args: SummaryArgs) -> Result<()> {
    let (since_ms, until_ms) = args.period.resolve()?;
    let filter = ListFilter {
        since_ms,
        until_ms,
        ..ListFilter::default()
    };
    // Every entry of the period, as the index has it: what is counted below
    // (time, category, rule, client) is what every entry index carries
    // (`store::indexes`), so no item is fetched however many entries.
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
        Output::Json => print_json(&mut out, &s, since_ms, until_ms),
        Output::Csv => print_csv(&mut out, &s),
        Output::Table => print_text(&mut out, &s, since_ms, until_ms),
    }
}

fn print_json(out: &mut impl Write, s: &PeriodSummary, since_ms: i64, until_ms: i64) -> Result<()> {
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
    Ok(())
}

fn print_csv(out: &mut impl Write, s: &PeriodSummary) -> Result<()> {
    let mut csv = csv_writer(out);
    csv.write_record(["section", "name", "count"])?;
    for (category, n) in &s.by_category {
        csv.write_record(["category", &csv_cell(category), &n.to_string()])?;
    }
    for (rule, n) in &s.top_rules {
        csv.write_record(["rule", &csv_cell(rule), &n.to_string()])?;
    }
    for (client, n) in &s.top_clients {
        csv.write_record(["client", &csv_cell(client), &n.to_string()])?;
    }
    for (hour, n) in &s.per_hour {
        csv.write_record(["hour", &format_rfc3339(*hour), &n.to_string()])?;
    }
    csv.flush()?;
    Ok(())
}

fn print_text(out: &mut impl Write, s: &PeriodSummary, since_ms: i64, until_ms: i64) -> Result<()> {
    writeln!(
        out,
        "{} entries, {} to {}",
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
    Ok(())
}
