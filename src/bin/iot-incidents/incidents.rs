//! `incidents`, `show` and `ack`: incidents as a whole, from the incident
//! table the function keeps.

use std::collections::HashMap;
use std::io::Write;

use anyhow::{bail, Result};
use clap::{Args, ValueEnum};
use serde_json::{json, Value};

use iot_log_monitor::aws::reader::Row;
use iot_log_monitor::incident::key::{key_of, IncidentKey};
use iot_log_monitor::incident::lifecycle::{IncidentState, State};
use iot_log_monitor::incident::silence::silenced_by;
use iot_log_monitor::model::category::Category;
use iot_log_monitor::model::record::{judge, to_entry};
use iot_log_monitor::model::time::format_rfc3339;
use iot_log_monitor::notify::display::{escape, json_for_terminal, quoted};
use iot_log_monitor::notify::hints::hint_within;
use iot_log_monitor::store::query::{bar, plan, ListFilter};

use crate::args::{now_ms, Period};
use crate::output::{print_grid, Output};
use crate::session::Session;

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum StateFilter {
    Open,
    Resolved,
    All,
}

#[derive(Args)]
pub struct IncidentsArgs {
    /// Which incidents: open ones (the default), resolved ones, or both.
    #[arg(long, value_enum, default_value = "open")]
    state: StateFilter,
    #[arg(long)]
    category: Option<Category>,
    /// A rule name (rule incidents).
    #[arg(long)]
    rule: Option<String>,
    /// A client id among an incident's named clients.
    #[arg(long)]
    client: Option<String>,
    /// Resolved incidents: resolved within this period.
    #[command(flatten)]
    period: Period,
}

#[derive(Args)]
pub struct AckArgs {
    /// The incident id (as notifications and `incidents` show it).
    incident_id: String,
    /// Who acknowledges (default: $USER).
    #[arg(long)]
    by: Option<String>,
    /// What is being done about it.
    #[arg(long)]
    note: Option<String>,
}

fn key_text(i: &IncidentState) -> String {
    parts_text(&i.key)
}

/// A key's parts by name, each value quoted: `rule "x"`, `eventType "Connect", reason "…"`.
fn parts_text(key: &IncidentKey) -> String {
    let (first, second) = key.kind.part_names();
    let mut text = format!("{first} {}", quoted(&key.first));
    if let (Some(name), Some(value)) = (second, &key.second) {
        text.push_str(&format!(", {name} {}", quoted(value)));
    }
    text
}

fn parts_json(key: &IncidentKey) -> serde_json::Map<String, Value> {
    let (first, second) = key.kind.part_names();
    let mut parts = serde_json::Map::new();
    parts.insert(first.into(), Value::String(key.first.clone()));
    if let (Some(name), Some(value)) = (second, &key.second) {
        parts.insert(name.into(), Value::String(value.clone()));
    }
    parts
}

/// Entries read to name an overflow incident's keys: by `show`, and by
/// `incidents` for each overflow incident it lists.
const MEMBER_ROWS_SHOW: usize = 20_000;
const MEMBER_ROWS_LIST: usize = 2_000;
/// Keys named, the busiest first (`show` names this many, `incidents` three).
const MEMBERS_NAMED: usize = 10;

/// The keys an overflow incident counts (the keys its batches brought past
/// the storm budget), from its stored entries: each carries the incident's
/// id, and its key is the function's own reading of its stored line.
struct Members {
    /// Busiest first, then by key.
    keys: Vec<(IncidentKey, u64)>,
    entries_read: usize,
    /// Every entry of the incident was read (else there are at least these).
    complete: bool,
}

impl Members {
    fn json(&self, named: usize) -> Value {
        json!({
            "keys": self.keys.len(),
            "keysAtLeast": !self.complete,
            "entriesRead": self.entries_read,
            "busiest": self.keys.iter().take(named).map(|(key, n)| json!({
                "keyKind": key.kind.as_str(),
                "key": parts_json(key),
                "entries": n,
            })).collect::<Vec<_>>(),
        })
    }

    /// For the list's key column (cut at 48 characters): the count, then
    /// the busiest keys' values, each quoted.
    fn summary(&self, named: usize) -> String {
        let names: Vec<String> = self
            .keys
            .iter()
            .take(named)
            .map(|(key, _)| {
                let mut values = quoted(&key.first);
                if let Some(second) = &key.second {
                    values.push('/');
                    values.push_str(&quoted(second));
                }
                values
            })
            .collect();
        format!(
            "overflow, {}{} keys: {}",
            if self.complete { "" } else { "at least " },
            self.keys.len(),
            names.join(", ")
        )
    }
}

async fn members(ctx: &mut Session, i: &IncidentState, limit: usize) -> Result<Members> {
    let filter = ListFilter {
        category: Some(i.key.category),
        rule: None,
        client: None,
        since_ms: i.first_seen_ms,
        until_ms: i.last_seen_ms,
    };
    let reader = ctx.reader().await?;
    let rows = reader.list(&filter, &plan(&filter), limit).await?;
    let complete = rows.len() < limit;
    let rows: Vec<Row> = rows
        .into_iter()
        .filter(|r| r.get("incidentId").and_then(Value::as_str) == Some(i.incident_id.as_str()))
        .collect();
    // The indexes carry only some attributes: the stored line is in the item.
    let rows = reader.whole_items(rows).await?;
    let mut counts: HashMap<IncidentKey, u64> = HashMap::new();
    for row in &rows {
        let text = |name: &str| row.get(name).and_then(Value::as_str).unwrap_or_default();
        let raw = text("rawMessage");
        let Some(entry) = to_entry(text("eventId"), 0, raw, &judge(raw)) else {
            continue;
        };
        *counts.entry(key_of(&entry, text("logGroup"))).or_default() += 1;
    }
    let mut keys: Vec<(IncidentKey, u64)> = counts.into_iter().collect();
    keys.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    Ok(Members {
        keys,
        entries_read: rows.len(),
        complete,
    })
}

fn incident_json(i: &IncidentState) -> Value {
    let (first, second) = i.key.kind.part_names();
    let mut key = serde_json::Map::new();
    key.insert(first.into(), Value::String(i.key.first.clone()));
    if let (Some(name), Some(value)) = (second, &i.key.second) {
        key.insert(name.into(), Value::String(value.clone()));
    }
    json!({
        "incidentId": i.incident_id,
        "state": i.state.as_str(),
        "category": i.key.category.as_str(),
        "keyKind": i.key.kind.as_str(),
        "key": key,
        "entries": i.entries,
        "distinctClients": i.distinct_clients,
        "distinctClientsEstimated": i.clients_estimated,
        "topClients": i.top_clients,
        "firstSeen": format_rfc3339(i.first_seen_ms),
        "lastSeen": format_rfc3339(i.last_seen_ms),
        "openedAt": format_rfc3339(i.opened_ms),
        "resolvedAt": i.resolved_ms.map(format_rfc3339),
        "notificationsSent": i.sent + u32::from(i.resolved_sent),
        "notifications": i.history,
        "acknowledgedBy": i.acked_by,
        "acknowledgementNote": i.ack_note,
        "heldBackBySilences": i.held_back,
        "reopenings": i.reopenings,
        "flapping": i.flapping,
        "sampleTraceIds": i.sample_trace_ids,
        "logGroup": i.log_group,
        "details": i.details,
    })
}

pub async fn list(ctx: &mut Session, args: IncidentsArgs) -> Result<()> {
    let reader = ctx.incident_reader().await?;
    let mut found = Vec::new();
    if args.state != StateFilter::Resolved {
        found.extend(
            reader
                .watched()
                .await?
                .into_iter()
                .filter(|i| i.state == State::Open),
        );
    }
    if args.state != StateFilter::Open {
        let (since_ms, until_ms) = args.period.resolve()?;
        found.extend(
            reader
                .resolved_since(since_ms)
                .await?
                .into_iter()
                .filter(|i| i.resolved_ms.is_some_and(|r| r <= until_ms)),
        );
    }
    found.retain(|i| {
        args.category.is_none_or(|c| i.key.category == c)
            && args
                .rule
                .as_deref()
                .is_none_or(|r| matches!(i.key.kind.part_names().0, "rule") && i.key.first == r)
            && args
                .client
                .as_deref()
                .is_none_or(|c| i.top_clients.iter().any(|t| t == c))
    });
    // Open first, then the most recently active.
    found.sort_by(|a, b| {
        (a.state != State::Open)
            .cmp(&(b.state != State::Open))
            .then(b.last_seen_ms.cmp(&a.last_seen_ms))
    });
    if found.is_empty() {
        eprintln!("no incidents match");
        return Ok(());
    }
    // What each storm's digest summarised: the keys its overflow incident counts.
    let mut members_of = HashMap::new();
    for i in found.iter().filter(|i| i.key.is_overflow()) {
        members_of.insert(
            i.incident_id.clone(),
            members(ctx, i, MEMBER_ROWS_LIST).await?,
        );
    }
    let out = &mut std::io::stdout().lock();
    match ctx.output {
        Output::Json => {
            for i in &found {
                let mut value = incident_json(i);
                if let Some(m) = members_of.get(&i.incident_id) {
                    value["members"] = m.json(MEMBERS_NAMED);
                }
                writeln!(out, "{}", json_for_terminal(&value.to_string()))?;
            }
        }
        Output::Csv | Output::Table => {
            let headers = [
                "incident",
                "state",
                "category",
                "key",
                "entries",
                "clients",
                "first seen",
                "last seen",
                "ack",
            ];
            let rows: Vec<Vec<String>> = found
                .iter()
                .map(|i| {
                    vec![
                        i.incident_id.clone(),
                        i.state.as_str().to_owned(),
                        i.key.category.as_str().to_owned(),
                        match members_of.get(&i.incident_id) {
                            Some(m) => m.summary(3),
                            None => key_text(i),
                        },
                        i.entries.to_string(),
                        i.distinct_clients.to_string(),
                        format_rfc3339(i.first_seen_ms),
                        format_rfc3339(i.last_seen_ms),
                        i.acked_by.clone().unwrap_or_default(),
                    ]
                })
                .collect();
            print_grid(out, &headers, &rows, ctx.output, 48)?;
        }
    }
    Ok(())
}

/// The incident, or the one clear line a wrong id deserves.
async fn find(ctx: &mut Session, id: &str) -> Result<IncidentState> {
    match ctx.incident_reader().await?.find(id).await? {
        Some(incident) => Ok(incident),
        None => bail!("no incident {}", quoted(id)),
    }
}

pub async fn show(ctx: &mut Session, id: &str) -> Result<()> {
    let incident = find(ctx, id).await?;
    let now = now_ms();
    let silences = ctx.silence_table().await?.read_current(now).await?;
    let silenced = silenced_by(&silences, &incident, None, now);
    let activity = activity(ctx, &incident).await?;
    let members = match incident.key.is_overflow() {
        true => Some(members(ctx, &incident, MEMBER_ROWS_SHOW).await?),
        false => None,
    };
    let out = &mut std::io::stdout().lock();
    if ctx.output == Output::Json {
        let mut value = incident_json(&incident);
        if let Some(m) = &members {
            value["members"] = m.json(MEMBERS_NAMED);
        }
        value["silencedBy"] = json!(silenced.map(|s| &s.id));
        value["check"] = json!(hint_within(&incident.key, usize::MAX).check);
        value["activity"] = json!(activity
            .iter()
            .map(|(at, n)| json!({"from": format_rfc3339(*at), "entries": n}))
            .collect::<Vec<_>>());
        writeln!(out, "{}", json_for_terminal(&value.to_string()))?;
        return Ok(());
    }
    let i = &incident;
    writeln!(
        out,
        "Incident {}  {}",
        i.incident_id,
        i.state.as_str().to_uppercase()
    )?;
    let line =
        |out: &mut dyn Write, label: &str, value: String| writeln!(out, "  {label:<14}{value}");
    line(
        out,
        "category",
        format!("{} ({})", i.key.category, i.key.category.severity()),
    )?;
    line(out, "key", key_text(i))?;
    if let Some(m) = &members {
        line(
            out,
            "keys",
            format!(
                "{}{} past the storm budget, counted here ({} stored entries read); the busiest:",
                if m.complete { "" } else { "at least " },
                m.keys.len(),
                m.entries_read
            ),
        )?;
        for (key, n) in m.keys.iter().take(MEMBERS_NAMED) {
            writeln!(out, "    {n:>6}  {}", parts_text(key))?;
        }
    }
    line(out, "opened", format_rfc3339(i.opened_ms))?;
    line(out, "first seen", format_rfc3339(i.first_seen_ms))?;
    line(out, "last seen", format_rfc3339(i.last_seen_ms))?;
    if let Some(at) = i.resolved_ms {
        line(out, "resolved", format_rfc3339(at))?;
    }
    line(
        out,
        "entries",
        format!(
            "{} ({} since the last notification)",
            i.entries,
            i.entries_since_notified()
        ),
    )?;
    let about = if i.clients_estimated { "about " } else { "" };
    let names: Vec<String> = i.top_clients.iter().map(|c| quoted(c)).collect();
    line(
        out,
        "clients",
        format!(
            "{about}{} distinct: {}",
            i.distinct_clients,
            names.join(", ")
        ),
    )?;
    if let Some(details) = &i.details {
        line(out, "details", quoted(details))?;
    }
    line(out, "log group", quoted(&i.log_group))?;
    // The check in full: a notification withholds a name too long for it
    // and points here. Its commands take every name as one shell word.
    let check = match &members {
        // The keys it counts are checked like incidents of their own.
        Some(_) => format!(
            "the keys above, one at a time: `iot-incidents list --category {} --rule <rule>` lists a rule's entries",
            i.key.category
        ),
        None => hint_within(&i.key, usize::MAX).check,
    };
    line(out, "to check", escape(&check).into_owned())?;
    match &i.acked_by {
        Some(by) => line(
            out,
            "acknowledged",
            format!(
                "by {}{}",
                quoted(by),
                i.ack_note
                    .as_deref()
                    .map(|n| format!(": {}", quoted(n)))
                    .unwrap_or_default()
            ),
        )?,
        None => line(out, "acknowledged", "no".into())?,
    }
    if i.reopenings > 0 {
        let flapping = if i.flapping { " (flapping)" } else { "" };
        line(
            out,
            "reopened",
            format!("{} time(s) after going quiet{flapping}", i.reopenings),
        )?;
    }
    if i.held_back > 0 {
        line(
            out,
            "held back",
            format!("{} notification(s) by silences", i.held_back),
        )?;
    }
    if let Some(s) = silenced {
        line(
            out,
            "silenced",
            format!(
                "by {} until {} ({})",
                s.id,
                format_rfc3339(s.ends_ms),
                quoted(&s.comment)
            ),
        )?;
    }
    line(
        out,
        "notifications",
        if i.history.is_empty() {
            "none yet".into()
        } else {
            i.history.join("; ")
        },
    )?;
    writeln!(out, "  sample traces (iot-incidents get <traceId>):")?;
    for trace in &i.sample_trace_ids {
        writeln!(out, "    {}", quoted(trace))?;
    }
    if !activity.is_empty() {
        let step = activity
            .get(1)
            .map(|(b, _)| b - activity[0].0)
            .unwrap_or(60_000);
        writeln!(out, "Activity (entries per {} min, UTC)", step / 60_000)?;
        let max = activity.iter().map(|(_, n)| *n).max().unwrap_or(0);
        for (at, n) in &activity {
            writeln!(
                out,
                "  {}  {n:>6}  {}",
                &format_rfc3339(*at)[..16],
                bar(*n, max, 40)
            )?;
        }
    }
    Ok(())
}

/// The incident's stored entries per interval (at most 24 intervals of
/// whole minutes over its first to last seen), read through the entry
/// indexes: by rule for rule incidents, else by category. Their rows carry
/// the time and `incidentId` (`store::indexes`), so no item is fetched.
async fn activity(ctx: &mut Session, i: &IncidentState) -> Result<Vec<(i64, u64)>> {
    let span = (i.last_seen_ms - i.first_seen_ms).max(0);
    let step = ((span / 24 / 60_000) + 1) * 60_000;
    let start = i.first_seen_ms - i.first_seen_ms.rem_euclid(step);
    let filter = ListFilter {
        category: Some(i.key.category),
        rule: (i.key.kind.part_names().0 == "rule").then(|| i.key.first.clone()),
        client: None,
        since_ms: start,
        until_ms: i.last_seen_ms.min(start + 92 * 86_400_000),
    };
    let rows = ctx
        .reader()
        .await?
        .list(&filter, &plan(&filter), 20_000)
        .await?;
    let buckets = ((i.last_seen_ms - start) / step + 1) as usize;
    let mut counts = vec![0u64; buckets.min(25)];
    for row in rows
        .iter()
        .filter(|r| r.get("incidentId").and_then(Value::as_str) == Some(i.incident_id.as_str()))
    {
        let at = iot_log_monitor::aws::reader::time_of(row);
        if let Some(slot) = counts.get_mut(((at - start).max(0) / step) as usize) {
            *slot += 1;
        }
    }
    Ok(counts
        .into_iter()
        .enumerate()
        .map(|(n, c)| (start + n as i64 * step, c))
        .collect())
}

pub async fn ack(ctx: &mut Session, args: AckArgs) -> Result<()> {
    let incident = find(ctx, &args.incident_id).await?;
    if incident.state != State::Open {
        bail!(
            "incident {} is resolved; nothing to acknowledge",
            incident.incident_id
        );
    }
    let by = args
        .by
        .or_else(|| std::env::var("USER").ok())
        .unwrap_or_else(|| "an operator".into());
    let done = ctx
        .incident_reader()
        .await?
        .acknowledge(&incident, &by, args.note.as_deref(), now_ms())
        .await?;
    if !done {
        bail!("incident {} is no longer open", incident.incident_id);
    }
    println!(
        "acknowledged {} by {}: no more reminders; its resolved notification still goes out",
        incident.incident_id,
        quoted(&by)
    );
    Ok(())
}
