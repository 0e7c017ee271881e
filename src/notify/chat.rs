//! Notifications for Slack and Microsoft Teams through Amazon Q Developer in
//! chat applications (formerly AWS Chatbot), in its custom notification
//! format: <https://docs.aws.amazon.com/chatbot/latest/adminguide/custom-notifs.html>.
//!
//! The event schema, as documented there:
//!
//! ```text
//! { "version": "1.0", "source": "custom", "id": String,
//!   "content": { "textType": "client-markdown", "title": String, "description": String,
//!                "nextSteps": [String, …], "keywords": [String, …] },
//!   "metadata": { "threadId": String, "summary": String, "eventType": String,
//!                 "relatedResources": [String, …], "additionalContext": { String: String, … } } }
//! ```
//!
//! `version` (must be `1.0`) and `source` (must be `custom`) are required;
//! `id` is the event's unique identifier; `client-markdown` is the only
//! `textType`: Amazon Q renders title, description and next steps in the
//! chat platform's own markdown; `threadId` threads updates (here: every
//! notification of one incident in one thread, when the channel allows
//! threads). Amazon Q subscribes to the SNS topic over HTTPS, so this JSON
//! is the `https` value of the `MessageStructure: json` message.
//!
//! Limits: the part of the page we could read gives no length limits, so
//! these are our own, chosen to fit what Slack renders in one message
//! (section text of at most 3,000 characters): a title of at most
//! [`MAX_TITLE_CHARS`], a description of at most [`MAX_DESCRIPTION_CHARS`],
//! at most [`MAX_NEXT_STEPS`] next steps of at most [`MAX_STEP_CHARS`], at
//! most [`MAX_KEYWORDS`] keywords, metadata values of at most
//! [`MAX_METADATA_CHARS`], at most [`MAX_RELATED_RESOURCES`] related
//! resources. The whole SNS message stays under
//! `MAX_NOTIFICATION_BYTES` (the caller cuts the fields it came from).
//!
//! Device-chosen text (names, reasons, details, clients, ids) appears in
//! title and description only as [inline code](chat_code), where markdown
//! formats nothing and makes no link, with the characters that could close
//! the span or make a Slack link or mention replaced; in metadata it is
//! [plain text](chat_text) with the emphasis characters replaced too.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::notify::body::{without_verdict, NotificationBody};
use crate::notify::display::{chat_code, chat_text};

pub const VERSION: &str = "1.0";
pub const SOURCE: &str = "custom";
pub const TEXT_TYPE: &str = "client-markdown";
pub const MAX_TITLE_CHARS: usize = 250;
pub const MAX_DESCRIPTION_CHARS: usize = 3000;
pub const MAX_NEXT_STEPS: usize = 3;
pub const MAX_STEP_CHARS: usize = 500;
pub const MAX_KEYWORDS: usize = 5;
pub const MAX_METADATA_CHARS: usize = 256;
pub const MAX_RELATED_RESOURCES: usize = 5;

/// The custom notification, field names as documented.
#[derive(Debug, Serialize)]
pub struct CustomNotification {
    pub version: &'static str,
    pub source: &'static str,
    pub id: String,
    pub content: Content,
    pub metadata: Metadata,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Content {
    pub text_type: &'static str,
    pub title: String,
    pub description: String,
    pub next_steps: Vec<String>,
    pub keywords: Vec<String>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Metadata {
    pub thread_id: String,
    pub summary: String,
    pub event_type: String,
    pub related_resources: Vec<String>,
    pub additional_context: BTreeMap<&'static str, String>,
}

/// `s` cut to at most `max` characters.
pub(crate) fn cut_chars(s: &str, max: usize) -> &str {
    match s.char_indices().nth(max) {
        Some((at, _)) => &s[..at],
        None => s,
    }
}

/// [`chat_code`] of `s`, at most `max` characters with its backquotes; a
/// cut span ends in `…` inside the quotes.
pub(crate) fn code(s: &str, max: usize) -> String {
    let span = chat_code(s);
    if span.chars().count() <= max {
        return span;
    }
    // The span's only backquotes are its ends (chat_code replaces the rest).
    let inner = &span[1..span.len() - 1];
    format!("`{}…`", cut_chars(inner, max.saturating_sub(3)))
}

/// [`chat_text`] of `s`, at most `max` characters.
fn text(s: &str, max: usize) -> String {
    cut_chars(&chat_text(s), max).to_owned()
}

fn noun(n: u64) -> &'static str {
    if n == 1 {
        "entry"
    } else {
        "entries"
    }
}

/// The custom notification for `body` (already cut to size), as JSON.
pub fn custom_notification(body: &NotificationBody<'_>) -> String {
    serde_json::to_string(&build(body)).expect("plain data serialises")
}

pub fn build(b: &NotificationBody<'_>) -> CustomNotification {
    let (headline, verdict) = match &*b.transition {
        "opened" => ("OPEN", "Incident opened"),
        "reminder" => ("STILL OPEN", "Incident still open"),
        _ => ("RESOLVED", "Incident resolved"),
    };
    let emoji = match (&*b.transition, &*b.severity) {
        ("resolved", _) => ":white_check_mark:",
        ("reminder", _) => ":hourglass_flowing_sand:",
        (_, "critical" | "high") => ":rotating_light:",
        (_, "medium") => ":warning:",
        _ => ":information_source:",
    };
    let category = b.category.as_str();

    // Title: what changed, the category and the key. Only a resolved
    // incident's title says "resolved", whatever a name says.
    let head = format!("{emoji} {headline} {category}: ");
    let tail = format!(" ({} {})", b.entries, noun(b.entries));
    let labels: usize = b.key.iter().map(|(name, _)| name.chars().count() + 3).sum();
    let room = MAX_TITLE_CHARS.saturating_sub(head.chars().count() + tail.chars().count() + labels)
        / b.key.len().max(1);
    let key_title = b
        .key
        .iter()
        .map(|(name, value)| format!("{name} {}", code(&without_verdict(value), room.max(3))))
        .collect::<Vec<_>>()
        .join(", ");
    let title = format!("{head}{key_title}{tail}");

    // Description: markdown lines; device text only in code spans.
    let what = b
        .key
        .iter()
        .map(|(name, value)| format!("{name} {}", code(value, 300)))
        .collect::<Vec<_>>()
        .join(", ");
    let mut lines = vec![format!("*{verdict}:* {category} for {what}.")];
    if !b.meaning.is_empty() {
        lines.push(format!("*What it means:* {}", b.meaning));
    }
    let about = if b.distinct_clients_estimated {
        "about "
    } else {
        ""
    };
    lines.push(format!(
        "*Severity:* {} · *Entries:* {} · *Clients:* {about}{} distinct",
        b.severity, b.entries, b.distinct_clients
    ));
    if &*b.transition == "reminder" {
        lines.push(format!(
            "*Since the last notification:* {} {}",
            b.entries_since_last_notification,
            noun(b.entries_since_last_notification)
        ));
    }
    lines.push(format!(
        "*Opened:* {} · *First seen:* {} · *Last seen:* {}",
        b.opened_at, b.first_seen, b.last_seen
    ));
    if let Some(resolved) = &b.resolved_at {
        lines.push(format!(
            "*Resolved:* {resolved} (no new entry for the quiet period)"
        ));
    }
    if !b.top_clients.is_empty() {
        let names: Vec<String> = b.top_clients.iter().map(|c| code(c, 200)).collect();
        lines.push(format!("*Top clients:* {}", names.join(", ")));
    }
    if let Some(d) = &b.details {
        lines.push(format!("*Details:* {}", code(d, 1100)));
    }
    let mut place = Vec::new();
    if let Some(a) = &b.account_id {
        place.push(format!("*Account:* {}", code(a, 80)));
    }
    place.push(format!("*Log group:* {}", code(&b.log_group, 600)));
    lines.push(place.join(" · "));
    if b.reopenings > 0 {
        lines.push(format!(
            "*Reopened:* {}",
            crate::notify::body::reopened_line(b)
        ));
    }
    if let Some(by) = &b.acknowledged_by {
        lines.push(format!(
            "*Acknowledged by:* {} (no reminders)",
            code(by, 200)
        ));
    }
    if !b.sample_trace_ids.is_empty() {
        let traces: Vec<String> = b.sample_trace_ids.iter().map(|t| code(t, 150)).collect();
        lines.push(format!("*Sample traces:* {}", traces.join(", ")));
    }
    lines.push(format!(
        "*Incident:* {} · *Notification:* {}",
        code(&b.incident_id, 80),
        code(&b.notification_id, 100)
    ));
    let description = join_within(&lines, MAX_DESCRIPTION_CHARS);

    let mut next_steps = Vec::with_capacity(MAX_NEXT_STEPS);
    if !b.check.is_empty() {
        next_steps.push(check_step(&b.check, &b.show_command));
    }
    next_steps.push(format!(
        "The incident: {}",
        command_span(&b.show_command)
            .unwrap_or_else(|| chat_code("iot-incidents show <incident-id>"))
    ));
    next_steps.push(format!(
        "Every entry of a trace: {}",
        chat_code("iot-incidents get <traceId>")
    ));
    next_steps.truncate(MAX_NEXT_STEPS);

    let keywords: Vec<String> = [category, &*b.severity, &*b.transition, "AWS IoT"]
        .iter()
        .take(MAX_KEYWORDS)
        .map(|k| (*k).to_owned())
        .collect();

    // Device text stays in code spans here too (a bare URL or `@here`
    // outside one would be a link or a mention).
    let resource = |name: &str, value: &str| {
        let room = MAX_METADATA_CHARS.saturating_sub(name.chars().count() + 2);
        format!("{name}: {}", code(&without_verdict(value), room.max(3)))
    };
    let mut related_resources: Vec<String> = b
        .key
        .iter()
        .map(|(name, value)| resource(name, value))
        .collect();
    related_resources.push(resource("logGroup", &b.log_group));
    related_resources.truncate(MAX_RELATED_RESOURCES);

    let mut context: BTreeMap<&'static str, String> = BTreeMap::new();
    let mut put = |k: &'static str, v: &str| {
        context.insert(k, text(v, MAX_METADATA_CHARS));
    };
    put("incidentId", &b.incident_id);
    put("notificationId", &b.notification_id);
    put("category", category);
    put("severity", &b.severity);
    put("transition", &b.transition);
    put("keyKind", b.key_kind.as_str());
    put("entries", &b.entries.to_string());
    put("distinctClients", &format!("{about}{}", b.distinct_clients));
    put("firstSeen", &b.first_seen);
    put("lastSeen", &b.last_seen);
    put("openedAt", &b.opened_at);
    if let Some(r) = &b.resolved_at {
        put("resolvedAt", r);
    }
    if let Some(a) = &b.account_id {
        context.insert("accountId", code(a, MAX_METADATA_CHARS));
    }

    CustomNotification {
        version: VERSION,
        source: SOURCE,
        id: b.notification_id.to_string(),
        content: Content {
            text_type: TEXT_TYPE,
            title,
            description,
            next_steps,
            keywords,
        },
        metadata: Metadata {
            thread_id: b.incident_id.to_string(),
            summary: format!(
                "AWS IoT: {headline} {category} ({} {})",
                b.entries,
                noun(b.entries)
            ),
            event_type: format!("AWS IoT incident {}", b.transition),
            related_resources,
            additional_context: context,
        },
    }
}

/// The "What to check" step: the check's own words as chat text, each
/// command (between backquotes) as a code span that shows it exactly. A
/// command chat cannot show as it is, or a step longer than
/// [`MAX_STEP_CHARS`], is neither changed nor cut: the step points to the
/// incident's command, which shows the check in full.
fn check_step(check: &str, show_command: &str) -> String {
    const HEAD: &str = "What to check: ";
    let mut step = String::from(HEAD);
    for (i, span) in check.split('`').enumerate() {
        if i % 2 == 0 {
            step.push_str(&chat_text(span));
            continue;
        }
        match command_span(span) {
            Some(command) => step.push_str(&command),
            None => {
                step.truncate(HEAD.len());
                break;
            }
        }
    }
    if step.len() == HEAD.len() || step.chars().count() > MAX_STEP_CHARS {
        let show = command_span(show_command)
            .unwrap_or_else(|| chat_code("iot-incidents show <incident-id>"));
        return format!("{HEAD}too long for chat: {show} shows it in full");
    }
    step
}

/// `command` as a chat code span that reads exactly as the command, or
/// `None` when it holds what chat would change or show otherwise (a
/// backquote, markup, a control or invisible character). Device values in
/// our commands are [shell words](crate::notify::display::shell_word),
/// which write all of these as escapes; the table's own `<placeholder>`s,
/// for the reader to fill in, are the one exception: their brackets become
/// look-alikes (`‹thing-name›`), as no command runs with them anyway.
pub(crate) fn command_span(command: &str) -> Option<String> {
    let mut out = String::with_capacity(command.len() + 8);
    out.push('`');
    let mut rest = command;
    while let Some(c) = rest.chars().next() {
        if c == '<' {
            let close = rest.find('>')?;
            let name = &rest[1..close];
            let placeholder = !name.is_empty()
                && name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '|'));
            if !placeholder {
                return None;
            }
            out.push('\u{2039}');
            out.push_str(name);
            out.push('\u{203A}');
            rest = &rest[close + 1..];
            continue;
        }
        if crate::notify::display::is_unsafe_char(c) || matches!(c, '`' | '>' | '&' | '[' | ']') {
            return None;
        }
        out.push(c);
        rest = &rest[c.len_utf8()..];
    }
    out.push('`');
    Some(out)
}

/// `lines` joined by newlines, as many whole lines as fit in `max`
/// characters; when some are left out, a last line says where the rest is.
fn join_within(lines: &[String], max: usize) -> String {
    const CUT: &str = "… (cut: the incident's command shows everything)";
    let mut out = String::new();
    let mut used = 0;
    for (i, line) in lines.iter().enumerate() {
        let n = line.chars().count() + usize::from(i > 0);
        let reserve = if i + 1 < lines.len() {
            CUT.chars().count() + 1
        } else {
            0
        };
        if used + n + reserve > max {
            if used + CUT.chars().count() < max {
                if used > 0 {
                    out.push('\n');
                }
                out.push_str(CUT);
            }
            return out;
        }
        if i > 0 {
            out.push('\n');
        }
        out.push_str(line);
        used += n;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cut_spans_stay_closed_and_within_size() {
        let long = "x`".repeat(1000);
        let span = code(&long, 50);
        assert_eq!(span.chars().count(), 50, "{span}");
        assert!(span.starts_with('`') && span.ends_with("…`"));
        assert_eq!(span.matches('`').count(), 2);
        assert_eq!(code("short", 50), "`short`");
    }

    #[test]
    fn descriptions_keep_whole_lines_within_the_limit() {
        let lines: Vec<String> = (0..100)
            .map(|i| format!("line {i} {}", "x".repeat(90)))
            .collect();
        let d = join_within(&lines, 1000);
        assert!(d.chars().count() <= 1000, "{}", d.chars().count());
        assert!(d.ends_with("shows everything)"));
        assert!(d
            .lines()
            .all(|l| l.starts_with("line ") || l.starts_with('…')));
        let short = join_within(&lines[..2], 1000);
        assert_eq!(short.lines().count(), 2);
    }
}
