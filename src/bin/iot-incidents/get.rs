//! `get`: every stored entry of one trace, oldest first.

use std::io::Write;

use anyhow::Result;

use iot_log_monitor::aws::reader::{time_of, Row};
use iot_log_monitor::model::time::format_rfc3339;
use iot_log_monitor::notify::display::{csv_cell, escape};

use crate::output::{cell, csv_writer, print_rows, table_cell, Output};
use crate::session::Session;

pub async fn run(ctx: &mut Session, trace_id: &str) -> Result<()> {
    let rows = ctx.reader().await?.trace(trace_id).await?;
    if rows.is_empty() {
        eprintln!("no stored entries for trace {}", escape(trace_id));
        return Ok(());
    }
    print_entries(&mut std::io::stdout().lock(), &rows, ctx.output)
}

/// The attributes that matter, first in a block.
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

/// Index keys and what the block's heading and last line show.
const HIDDEN: &[&str] = &[
    "entryKey",
    "categoryDay",
    "ruleDay",
    "clientDay",
    "rawMessage",
    "timeMs",
];

/// In a table: one block per entry, the attributes that matter first; in
/// CSV, one column per attribute any entry has.
fn print_entries(out: &mut impl Write, rows: &[Row], format: Output) -> Result<()> {
    match format {
        Output::Json => return print_rows(out, rows, format),
        Output::Csv => return print_csv(out, rows),
        Output::Table => {}
    }
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

fn print_csv(out: &mut impl Write, rows: &[Row]) -> Result<()> {
    let mut names: Vec<&String> = rows.iter().flat_map(|r| r.keys()).collect();
    names.sort();
    names.dedup();
    let mut csv = csv_writer(out);
    csv.write_record(names.iter().map(|n| csv_cell(n)))?;
    for row in rows {
        csv.write_record(names.iter().map(|n| csv_cell(&cell(row, n))))?;
    }
    csv.flush()?;
    Ok(())
}
