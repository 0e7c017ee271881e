//! The notifications of an overflow incident: the keys of one category that
//! a batch brought past the storm budget, counted together. Its `opened`
//! notification is the storm's digest ("980 more RuleNotFound incidents;
//! the busiest: …"); its reminders and its resolution tell the storm goes
//! on or is over. Claimed, published and settled like any other, so it is
//! sent once; its id is `<overflow incident id>#<transition>`, the same for
//! every delivery of the batch that opened it.
//!
//! Device text (the folded keys' names, clients, traces, the log group) is
//! shown as every notification shows it: quoted in the email text, in chat
//! code spans in chat, as JSON strings in the JSON. No shell command here
//! holds a device's value: the one command shown is the incident's own
//! (`iot-incidents show <id>`), which names every folded key.

use crate::incident::delta::{Delta, Folded};
use crate::incident::key::{IncidentKey, OVERFLOW_PART};
use crate::incident::lifecycle::{notification_id, IncidentState, Transition};
use crate::model::time::format_rfc3339;
use crate::notify::body::NotificationBody;
use crate::notify::chat::{
    code, command_span, cut_chars, Content, CustomNotification, Metadata, MAX_DESCRIPTION_CHARS,
    MAX_METADATA_CHARS, SOURCE, TEXT_TYPE, VERSION,
};
use crate::notify::display::{chat_code, chat_text, escape, quoted};
use crate::notify::hints::hint_within;
use crate::notify::notification::{
    show_command, RenderedNotification, MAX_NOTIFICATION_BYTES, MAX_SUBJECT_CHARS,
};
use crate::store::keys::truncate_str;

use std::borrow::Cow;
use std::fmt::Write as _;

/// How much device text a digest shows: the first that fits under
/// [`MAX_NOTIFICATION_BYTES`] is used (names full of characters that every
/// copy escapes can need the smaller ones).
#[derive(Debug, Clone, Copy)]
struct Shown {
    /// Folded keys named, and clients and traces shown.
    names: usize,
    /// Bytes of each name, part, client, trace or log group.
    bytes: usize,
}

const SHOWN: [Shown; 5] = [
    Shown {
        names: 10,
        bytes: 128,
    },
    Shown {
        names: 10,
        bytes: 64,
    },
    Shown {
        names: 5,
        bytes: 32,
    },
    Shown {
        names: 3,
        bytes: 16,
    },
    Shown { names: 0, bytes: 0 },
];

/// What the overflow incident's notification of `transition` says. `folded`
/// is what the batch that made it due folded (a sweep has none: the
/// incident's command names the keys then); `budget` is the storm budget.
pub fn render_overflow(
    incident: &IncidentState,
    transition: Transition,
    folded: Option<&Folded>,
    delta: Option<&Delta>,
    budget: usize,
) -> RenderedNotification {
    let mut rendered = None;
    for shown in SHOWN {
        let n = render_within(incident, transition, folded, delta, budget, shown);
        let fits = n.message.len() <= MAX_NOTIFICATION_BYTES;
        rendered = Some(n);
        if fits {
            break;
        }
    }
    rendered.expect("at least one size")
}

fn entries(n: u64) -> String {
    format!("{n} {}", if n == 1 { "entry" } else { "entries" })
}

fn incidents(n: u64) -> &'static str {
    if n == 1 {
        "incident"
    } else {
        "incidents"
    }
}

/// A folded key's parts by name, each cut to `bytes`.
fn parts(key: &IncidentKey, bytes: usize) -> Vec<(&'static str, &str)> {
    let (first, second) = key.kind.part_names();
    let mut parts = vec![(first, truncate_str(&key.first, bytes))];
    if let (Some(name), Some(value)) = (second, &key.second) {
        parts.push((name, truncate_str(value, bytes)));
    }
    parts
}

/// The subject: ASCII, no device text, at most [`MAX_SUBJECT_CHARS`].
fn subject(incident: &IncidentState, transition: Transition, folded: Option<&Folded>) -> String {
    let category = incident.key.category;
    let total = entries(incident.entries);
    let mut subject = match (transition, folded) {
        (Transition::Opened, Some(f)) => format!(
            "[AWS IoT] OPEN {category}: {} more {} (storm digest, {total})",
            f.keys,
            incidents(f.keys)
        ),
        (Transition::Opened, None) => {
            format!("[AWS IoT] OPEN {category}: more incidents (storm digest, {total})")
        }
        (Transition::Reminder(_), _) => {
            format!("[AWS IoT] STILL OPEN {category}: storm past the budget ({total})")
        }
        (Transition::Resolved, _) => {
            format!("[AWS IoT] RESOLVED {category}: storm past the budget ({total})")
        }
    };
    if subject.len() > MAX_SUBJECT_CHARS {
        subject.truncate(MAX_SUBJECT_CHARS - 3);
        subject.push_str("...");
    }
    subject
}

/// The opening words: what the digest stands for.
fn headline(
    incident: &IncidentState,
    transition: Transition,
    folded: Option<&Folded>,
    budget: usize,
) -> String {
    let category = incident.key.category;
    match (transition, folded) {
        (Transition::Opened, Some(f)) => format!(
            "Storm digest: {} more {category} {} than the storm budget lets open one by one ({budget} incident keys a batch), with {}. They are counted together by one overflow incident and announced here once.",
            f.keys,
            incidents(f.keys),
            entries(f.entries)
        ),
        (Transition::Opened, None) => format!(
            "Storm digest: more {category} incidents than the storm budget lets open one by one ({budget} incident keys a batch). They are counted together by one overflow incident and announced here once."
        ),
        (Transition::Reminder(_), _) => format!(
            "Storm still going: {category} keys past the storm budget keep coming ({} since the last notification), counted by one overflow incident.",
            entries(incident.entries_since_notified())
        ),
        (Transition::Resolved, _) => format!(
            "Storm over: no {category} key past the storm budget for the quiet period; its overflow incident is resolved."
        ),
    }
}

fn render_within(
    incident: &IncidentState,
    transition: Transition,
    folded: Option<&Folded>,
    delta: Option<&Delta>,
    budget: usize,
    shown: Shown,
) -> RenderedNotification {
    let id = notification_id(&incident.incident_id, transition);
    let category = incident.key.category;
    let severity = category.severity();
    let show = show_command(&incident.incident_id);
    let meaning = hint_within(&incident.key, 0).meaning;
    let check = format!(
        "`{show}` names every key the overflow incident counts, the busiest first; its top clients say whether a few devices name them all"
    );
    let head = headline(incident, transition, folded, budget);
    let busiest: Vec<(Vec<(&'static str, &str)>, u64)> = folded
        .map(|f| {
            f.busiest
                .iter()
                .take(shown.names)
                .map(|(key, n)| (parts(key, shown.bytes), *n))
                .collect()
        })
        .unwrap_or_default();
    let busiest_label = folded.map(|f| {
        format!(
            "The busiest{} ({} of {}):",
            if transition == Transition::Opened {
                ""
            } else {
                " in this batch"
            },
            busiest.len(),
            f.keys
        )
    });
    let cut = |s: &str| truncate_str(s, shown.bytes).to_owned();
    let top_clients: Vec<String> = match delta {
        Some(d) if !d.top_clients.is_empty() => d
            .top_clients
            .iter()
            .take(shown.names)
            .map(|(c, _)| cut(c))
            .collect(),
        _ => incident
            .top_clients
            .iter()
            .take(shown.names)
            .map(|c| cut(c))
            .collect(),
    };
    let traces: Vec<String> = incident
        .sample_trace_ids
        .iter()
        .take(shown.names)
        .map(|t| cut(t))
        .collect();
    let log_group = cut(&incident.log_group);
    let about = if incident.clients_estimated {
        "about "
    } else {
        ""
    };

    // Email: every device value quoted, on its own field's line.
    let mut text = String::with_capacity(2048);
    let _ = writeln!(text, "{head}");
    let _ = writeln!(text, "\nWhat it means: {meaning}");
    let _ = writeln!(text, "What to check: {check}\n");
    if let Some(label) = &busiest_label {
        if !busiest.is_empty() {
            let _ = writeln!(text, "{label}");
            for (parts, n) in &busiest {
                let named: Vec<String> = parts
                    .iter()
                    .map(|(name, value)| format!("{name} {}", quoted(value)))
                    .collect();
                let _ = writeln!(text, "  {}: {}", named.join(", "), entries(*n));
            }
            text.push('\n');
        }
    }
    let _ = writeln!(text, "Incident:     {}", escape(&incident.incident_id));
    let _ = writeln!(text, "Severity:     {severity}");
    let _ = writeln!(text, "Opened:       {}", format_rfc3339(incident.opened_ms));
    if let Some(at) = incident.resolved_ms {
        let _ = writeln!(
            text,
            "Resolved:     {} (no new entry for the quiet period)",
            format_rfc3339(at)
        );
    }
    let _ = writeln!(
        text,
        "First seen:   {}",
        format_rfc3339(incident.first_seen_ms)
    );
    let _ = writeln!(
        text,
        "Last seen:    {}",
        format_rfc3339(incident.last_seen_ms)
    );
    let _ = writeln!(text, "Entries:      {}", incident.entries);
    let _ = writeln!(
        text,
        "Clients:      {about}{} distinct",
        incident.distinct_clients
    );
    if !top_clients.is_empty() {
        let names: Vec<String> = top_clients.iter().map(|c| quoted(c)).collect();
        let _ = writeln!(text, "Top clients:  {}", names.join(", "));
    }
    let _ = writeln!(text, "Log group:    {}", quoted(&log_group));
    if incident.held_back > 0 {
        let _ = writeln!(
            text,
            "Held back:    {} notification(s) by silences before this one",
            incident.held_back
        );
    }
    if let Some(by) = &incident.acked_by {
        let _ = writeln!(text, "Acknowledged: by {} (no reminders)", quoted(&cut(by)));
    }
    let _ = writeln!(text, "Notification: {}", escape(&id));
    let _ = writeln!(text, "Sample traces:");
    for trace in &traces {
        let _ = writeln!(text, "  {}", quoted(trace));
    }
    let _ = writeln!(
        text,
        "\nEvery entry of a trace: iot-incidents get <traceId>"
    );
    let _ = writeln!(text, "The incident:           {show}");

    // JSON: the body every notification has (so readers of it, such as
    // the local inbox, read this one too), and the digest beside it.
    let body = NotificationBody {
        notification_id: Cow::Borrowed(&id),
        incident_id: Cow::Borrowed(&incident.incident_id),
        transition: Cow::Borrowed(transition.label()),
        category,
        severity: Cow::Borrowed(severity),
        key_kind: incident.key.kind,
        key: vec![(Cow::Borrowed("overflow"), Cow::Borrowed(OVERFLOW_PART))],
        entries: incident.entries,
        entries_since_last_notification: incident.entries_since_notified(),
        distinct_clients: incident.distinct_clients,
        distinct_clients_estimated: incident.clients_estimated,
        top_clients: top_clients
            .iter()
            .map(|c| Cow::Borrowed(c.as_str()))
            .collect(),
        first_seen: format_rfc3339(incident.first_seen_ms),
        last_seen: format_rfc3339(incident.last_seen_ms),
        opened_at: format_rfc3339(incident.opened_ms),
        resolved_at: incident.resolved_ms.map(format_rfc3339),
        details: None,
        sample_trace_ids: traces.iter().map(|t| Cow::Borrowed(t.as_str())).collect(),
        account_id: None,
        log_group: Cow::Borrowed(&log_group),
        acknowledged_by: incident.acked_by.as_deref().map(|a| Cow::Owned(cut(a))),
        held_back_by_silences: incident.held_back,
        reopenings: u64::from(incident.reopenings),
        flapping: incident.flapping,
        meaning: Cow::Borrowed(meaning),
        check: Cow::Borrowed(&check),
        show_command: show.clone(),
    };
    let mut json = serde_json::to_value(&body).expect("plain data serialises");
    json["storm"] = serde_json::json!({
        "stormBudget": budget,
        "keysFolded": folded.map(|f| f.keys),
        "entriesFolded": folded.map(|f| f.entries),
        "busiest": busiest.iter().map(|(parts, n)| {
            let key: serde_json::Map<String, serde_json::Value> = parts
                .iter()
                .map(|(name, value)| ((*name).to_owned(), serde_json::Value::from(*value)))
                .collect();
            serde_json::json!({ "key": key, "entries": n })
        }).collect::<Vec<_>>(),
    });

    let chat = chat_notification(ChatParts {
        incident,
        transition,
        id: &id,
        subject: &subject(incident, transition, folded),
        head: &head,
        busiest_label: busiest_label.as_deref(),
        busiest: &busiest,
        top_clients: &top_clients,
        log_group: &log_group,
        show: &show,
    });
    let message = serde_json::json!({
        "default": json.to_string(),
        "email": text,
        "https": serde_json::to_string(&chat).expect("plain data serialises"),
    })
    .to_string();
    let attribute = |value: &str| truncate_str(&escape(value), 256).to_owned();
    RenderedNotification {
        subject: subject(incident, transition, folded),
        attributes: vec![
            ("category", category.as_str().to_owned()),
            ("severity", severity.to_owned()),
            ("transition", transition.label().to_owned()),
            ("incidentId", attribute(&incident.incident_id)),
            ("notificationId", attribute(&id)),
        ],
        id,
        message,
    }
}

struct ChatParts<'a> {
    incident: &'a IncidentState,
    transition: Transition,
    id: &'a str,
    subject: &'a str,
    head: &'a str,
    busiest_label: Option<&'a str>,
    busiest: &'a [(Vec<(&'static str, &'a str)>, u64)],
    top_clients: &'a [String],
    log_group: &'a str,
    show: &'a str,
}

/// The Amazon Q Developer custom notification: device text only in code
/// spans ([`chat_code`]) in the description, as [`chat_text`] in metadata;
/// the title holds none.
fn chat_notification(c: ChatParts<'_>) -> CustomNotification {
    let i = c.incident;
    let category = i.key.category.as_str();
    let emoji = match c.transition {
        Transition::Resolved => ":white_check_mark:",
        Transition::Reminder(_) => ":hourglass_flowing_sand:",
        Transition::Opened => ":rotating_light:",
    };
    // The subject is ASCII without device text; the title says the same.
    let title = format!("{emoji} {}", c.subject.trim_start_matches("[AWS IoT] "));
    let mut lines = vec![c.head.to_owned()];
    if let Some(label) = c.busiest_label {
        if !c.busiest.is_empty() {
            let named: Vec<String> = c
                .busiest
                .iter()
                .map(|(parts, n)| {
                    let key: Vec<String> = parts
                        .iter()
                        .map(|(name, value)| format!("{name} {}", chat_code(value)))
                        .collect();
                    format!("{} ({})", key.join(", "), entries(*n))
                })
                .collect();
            lines.push(format!(
                "*{}* {}",
                label.trim_end_matches(':'),
                named.join(", ")
            ));
        }
    }
    let about = if i.clients_estimated { "about " } else { "" };
    lines.push(format!(
        "*Severity:* {} · *Entries:* {} · *Clients:* {about}{} distinct",
        i.key.category.severity(),
        i.entries,
        i.distinct_clients
    ));
    lines.push(format!(
        "*Opened:* {} · *First seen:* {} · *Last seen:* {}",
        format_rfc3339(i.opened_ms),
        format_rfc3339(i.first_seen_ms),
        format_rfc3339(i.last_seen_ms)
    ));
    if !c.top_clients.is_empty() {
        let names: Vec<String> = c.top_clients.iter().map(|n| chat_code(n)).collect();
        lines.push(format!("*Top clients:* {}", names.join(", ")));
    }
    lines.push(format!("*Log group:* {}", chat_code(c.log_group)));
    lines.push(format!(
        "*Incident:* {} · *Notification:* {}",
        chat_code(&i.incident_id),
        chat_code(c.id)
    ));
    // Whole lines only: a line cut in half could leave a code span open.
    let mut description = String::new();
    for line in lines {
        let room = MAX_DESCRIPTION_CHARS.saturating_sub(description.chars().count() + 1);
        if line.chars().count() > room {
            break;
        }
        if !description.is_empty() {
            description.push('\n');
        }
        description.push_str(&line);
    }
    let metadata_text = |v: &str| cut_chars(&chat_text(v), MAX_METADATA_CHARS).to_owned();
    let mut context = std::collections::BTreeMap::new();
    context.insert("incidentId", metadata_text(&i.incident_id));
    context.insert("notificationId", metadata_text(c.id));
    context.insert("category", category.to_owned());
    context.insert("severity", i.key.category.severity().to_owned());
    context.insert("transition", c.transition.label().to_owned());
    context.insert("keyKind", i.key.kind.as_str().to_owned());
    context.insert("entries", i.entries.to_string());
    CustomNotification {
        version: VERSION,
        source: SOURCE,
        id: c.id.to_owned(),
        content: Content {
            text_type: TEXT_TYPE,
            title,
            description,
            next_steps: vec![format!(
                "Every key it counts, the busiest first: {}",
                // The command as it is (chat_code would escape a shell
                // word's backslashes again).
                command_span(c.show)
                    .unwrap_or_else(|| chat_code("iot-incidents show <incident-id>"))
            )],
            keywords: vec![
                category.to_owned(),
                i.key.category.severity().to_owned(),
                c.transition.label().to_owned(),
                "AWS IoT".to_owned(),
                "storm".to_owned(),
            ],
        },
        metadata: Metadata {
            thread_id: metadata_text(&i.incident_id),
            summary: format!("AWS IoT: {}", c.subject.trim_start_matches("[AWS IoT] ")),
            event_type: format!("AWS IoT incident {}", c.transition.label()),
            related_resources: vec![format!(
                "logGroup: {}",
                code(c.log_group, MAX_METADATA_CHARS - "logGroup: ".len())
            )],
            additional_context: context,
        },
    }
}
