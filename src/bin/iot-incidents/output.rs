//! Rendering helpers: terminal tables, CSV files and JSON lines. Every
//! device-controlled value passes through `notify::display` on its way out:
//! `escape` on a terminal, `csv_cell` in a CSV file, `json_for_terminal`
//! in JSON.

use std::io::Write;

use anyhow::Result;
use clap::ValueEnum;
use comfy_table::{presets, CellAlignment, Table};
use serde_json::Value;

use iot_log_monitor::aws::reader::{time_of, Row};
use iot_log_monitor::model::time::format_rfc3339;
use iot_log_monitor::notify::display::{csv_cell, escape, json_for_terminal};
use iot_log_monitor::store::indexes::carried_by_every_index;

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Output {
    Table,
    Json,
    Csv,
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

/// Whether `list` in this format shows attributes the entry indexes do not
/// carry (every one in JSON), so that it fetches the whole items it shows.
pub fn list_needs_whole_items(format: Output) -> bool {
    format == Output::Json
        || LIST_COLUMNS
            .iter()
            .any(|(_, attribute)| !carried_by_every_index(attribute))
}

/// An attribute of a row as text; the time as RFC 3339.
pub fn cell(row: &Row, attribute: &str) -> String {
    match (attribute, row.get(attribute)) {
        ("timeMs", _) => format_rfc3339(time_of(row)),
        (_, Some(Value::String(s))) => s.clone(),
        (_, Some(Value::Null)) | (_, None) => String::new(),
        (_, Some(other)) => other.to_string(),
    }
}

/// Terminal cells: one line, bounded width, control and bidirectional
/// characters shown as escapes (`\u{202e}`), never acted on.
pub fn table_cell(s: &str, width: usize) -> String {
    let flat = escape(s);
    if flat.chars().count() <= width {
        return flat.into_owned();
    }
    let mut cut: String = flat.chars().take(width.saturating_sub(1)).collect();
    cut.push('…');
    cut
}

/// Columns left-aligned, two spaces apart, no borders, no trailing spaces.
pub fn print_table(
    out: &mut impl Write,
    headers: &[&str],
    rows: &[Vec<String>],
    max_width: usize,
) -> Result<()> {
    let mut table = Table::new();
    table
        .load_style(presets::NOTHING)
        .set_header(headers.to_vec());
    for row in rows {
        table.add_row(row.iter().map(|c| table_cell(c, max_width)));
    }
    for column in table.column_iter_mut() {
        column
            .set_padding((0, 2))
            .set_cell_alignment(CellAlignment::Left);
    }
    writeln!(out, "{}", table.trim_fmt())?;
    Ok(())
}

/// A CSV writer whose cells the caller has made with [`csv_cell`]: that
/// quotes by its own rule (`;` too, after escaping), so the writer must not
/// quote again.
pub fn csv_writer<W: Write>(out: W) -> csv::Writer<W> {
    csv::WriterBuilder::new()
        .quote_style(csv::QuoteStyle::Never)
        .from_writer(out)
}

/// Rows as `list` shows them: the main columns in a table or CSV, every
/// attribute in JSON lines.
pub fn print_rows(out: &mut impl Write, rows: &[Row], format: Output) -> Result<()> {
    match format {
        Output::Json => {
            for row in rows {
                let json = Value::Object(row.clone()).to_string();
                writeln!(out, "{}", json_for_terminal(&json))?;
            }
        }
        Output::Csv => {
            let mut csv = csv_writer(out);
            csv.write_record(LIST_COLUMNS.iter().map(|(h, _)| *h))?;
            for row in rows {
                csv.write_record(LIST_COLUMNS.iter().map(|(_, a)| csv_cell(&cell(row, a))))?;
            }
            csv.flush()?;
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

/// Rows of text cells as a table (on a terminal) or CSV (each cell
/// neutralised for spreadsheets); JSON callers print their own objects.
pub fn print_grid(
    out: &mut impl Write,
    headers: &[&str],
    rows: &[Vec<String>],
    format: Output,
    max_width: usize,
) -> Result<()> {
    if format == Output::Csv {
        let mut csv = csv_writer(out);
        csv.write_record(headers)?;
        for row in rows {
            csv.write_record(row.iter().map(|c| csv_cell(c)))?;
        }
        csv.flush()?;
        Ok(())
    } else {
        print_table(out, headers, rows, max_width)
    }
}
