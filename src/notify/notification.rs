//! Notifications rendered for people (email), for chat (Slack and Teams
//! through Amazon Q Developer) and for machines (JSON), within SNS's limits
//! whatever the entries held: one per incident transition (opened,
//! reminder, resolved). Each says what the incident means and what to
//! check ([`hints`](crate::notify::hints)).

use std::borrow::Cow;

use serde::{Deserialize, Serialize};

use crate::incident::delta::Delta;
use crate::incident::key::KeyKind;
use crate::incident::lifecycle::{notification_id, IncidentState, Transition};
use crate::model::category::Category;
use crate::model::time::format_rfc3339;
use crate::notify::chat::custom_notification;
use crate::notify::display::{escape, is_unsafe_char, quoted};
use crate::notify::hints::hint_within;
use crate::store::keys::truncate_str;

/// SNS subjects must be ASCII, without control characters, under 100 characters.
pub const MAX_SUBJECT_CHARS: usize = 99;
/// PublishBatch carries at most 10 messages and 256 KiB in all; one
/// notification stays under a tenth of that so any 10 fit.
pub const MAX_NOTIFICATION_BYTES: usize = 24 * 1024;
pub const MAX_PUBLISH_BATCH: usize = 10;
pub const MAX_PUBLISH_BATCH_BYTES: usize = 256 * 1024;
/// Message attribute values stay short enough to filter on.
const MAX_ATTRIBUTE_BYTES: usize = 256;

/// A notification ready for SNS.
#[derive(Debug, Clone, PartialEq)]
pub struct RenderedNotification {
    /// The notification id: the incident id and the transition.
    pub id: String,
    pub subject: String,
    /// The `MessageStructure: json` body: `default` (the [`NotificationBody`]
    /// JSON, for SQS, Lambda and every other protocol), `email` (text) and
    /// `https` (the Amazon Q Developer custom notification, for chat: Amazon
    /// Q subscribes over HTTPS; see [`chat`](crate::notify::chat)).
    pub message: String,
    pub attributes: Vec<(&'static str, String)>,
}

/// The JSON that machine subscribers receive.
#[derive(Debug, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct NotificationBody<'a> {
    /// The same for every delivery of one transition's notification:
    /// subscribers drop repeats by it.
    #[serde(borrow)]
    pub notification_id: Cow<'a, str>,
    #[serde(borrow)]
    pub incident_id: Cow<'a, str>,
    /// `opened`, `reminder` or `resolved`.
    #[serde(borrow)]
    pub transition: Cow<'a, str>,
    pub category: Category,
    #[serde(borrow)]
    pub severity: Cow<'a, str>,
    pub key_kind: KeyKind,
    /// The key's parts by name (`rule`, `action`, `eventType`, `reason`,
    /// `api`, `errorCode`, `jobId`, `logGroup`), as `[name, value]` pairs.
    #[serde(borrow)]
    pub key: Vec<(Cow<'a, str>, Cow<'a, str>)>,
    pub entries: u64,
    pub entries_since_last_notification: u64,
    pub distinct_clients: u64,
    /// The client count stopped at its bound: there are at least that many.
    pub distinct_clients_at_least: bool,
    #[serde(borrow)]
    pub top_clients: Vec<Cow<'a, str>>,
    pub first_seen: String,
    pub last_seen: String,
    pub opened_at: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resolved_at: Option<String>,
    #[serde(borrow, default, skip_serializing_if = "Option::is_none")]
    pub details: Option<Cow<'a, str>>,
    #[serde(borrow)]
    pub sample_trace_ids: Vec<Cow<'a, str>>,
    #[serde(borrow, default, skip_serializing_if = "Option::is_none")]
    pub account_id: Option<Cow<'a, str>>,
    #[serde(borrow)]
    pub log_group: Cow<'a, str>,
    #[serde(borrow, default, skip_serializing_if = "Option::is_none")]
    pub acknowledged_by: Option<Cow<'a, str>>,
    /// Notifications of the incident that silences held back before this one.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub held_back_by_silences: u64,
    /// What the incident means, in one line (empty in notifications from
    /// before hints).
    #[serde(borrow, default)]
    pub meaning: Cow<'a, str>,
    /// What to check or run, in one line, with the incident's own names
    /// shell-quoted in the commands.
    #[serde(borrow, default)]
    pub check: Cow<'a, str>,
    /// The command that shows the incident.
    pub show_command: String,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// The email text of a notification, from the JSON that machine subscribers
/// get (so a local inbox can show what a person would read).
pub fn email_text(notification_json: &str) -> Result<String, serde_json::Error> {
    serde_json::from_str::<NotificationBody>(notification_json).map(|body| render_text(&body))
}

fn what_it_means(category: Category) -> &'static str {
    match category {
        Category::RuleNotFound => {
            "Messages were published to a rule that does not exist; AWS IoT dropped them."
        }
        Category::RuleMessageThrottled => {
            "The rules engine throttled messages; their rule actions did not run."
        }
        Category::Failure => "AWS IoT reported failed operations.",
        Category::Warning => "AWS IoT reported warnings.",
        Category::Unparseable => "Log events arrived that are not AWS IoT v2 JSON log entries.",
    }
}

/// The words that say what changed, first in the subject.
fn headline(transition: Transition) -> &'static str {
    match transition {
        Transition::Opened => "OPEN",
        Transition::Reminder(_) => "STILL OPEN",
        Transition::Resolved => "RESOLVED",
    }
}

/// Makes `s` unable to say "resolved" (in any case): only the subject's own
/// headline may, so a name chosen by a device cannot make an opened
/// incident read as a resolved one.
pub(crate) fn without_verdict(s: &str) -> String {
    const WORD: &str = "resolved";
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while !rest.is_empty() {
        if rest
            .get(..WORD.len())
            .is_some_and(|head| head.eq_ignore_ascii_case(WORD))
        {
            out.push_str(&rest[..6]);
            out.push_str("?d");
            rest = &rest[WORD.len()..];
        } else {
            let c = rest.chars().next().expect("not empty");
            out.push(c);
            rest = &rest[c.len_utf8()..];
        }
    }
    out
}

/// SNS rejects non-ASCII and control characters in subjects. The
/// device-chosen part is quoted, so it cannot pass for the subject's own words.
fn subject_line(incident: &IncidentState, transition: Transition) -> String {
    let (first_name, _) = incident.key.kind.part_names();
    let raw = format!(
        "[AWS IoT] {} {}: {} {} ({} {})",
        headline(transition),
        incident.key.category,
        first_name,
        without_verdict(&quoted(truncate_str(incident.key.subject(), 256))),
        incident.entries,
        if incident.entries == 1 {
            "entry"
        } else {
            "entries"
        }
    );
    let mut out: String = raw
        .chars()
        .map(|c| {
            if c.is_ascii() && !c.is_ascii_control() {
                c
            } else {
                '?'
            }
        })
        .collect();
    if out.len() > MAX_SUBJECT_CHARS {
        out.truncate(MAX_SUBJECT_CHARS - 3);
        out.push_str("...");
    }
    out
}

/// How much of each field from outside a notification keeps. The first
/// that fits under [`MAX_NOTIFICATION_BYTES`] is used: fields full of
/// characters that every representation escapes (a control character is 6
/// to 12 bytes in each of the three) can need the smaller ones.
#[derive(Debug, Clone, Copy)]
struct Budget {
    /// Key parts and names (rule, reason, client ids).
    part: usize,
    /// Details and the log group.
    field: usize,
    /// Top clients and sample traces shown.
    list: usize,
    trace: usize,
    /// Incident ids (ours: about 20 characters).
    id: usize,
}

const BUDGETS: [Budget; 5] = [
    Budget {
        part: 256,
        field: 1024,
        list: 5,
        trace: 128,
        id: 64,
    },
    Budget {
        part: 128,
        field: 512,
        list: 5,
        trace: 64,
        id: 64,
    },
    Budget {
        part: 64,
        field: 256,
        list: 3,
        trace: 64,
        id: 64,
    },
    Budget {
        part: 32,
        field: 128,
        list: 2,
        trace: 48,
        id: 64,
    },
    Budget {
        part: 16,
        field: 48,
        list: 1,
        trace: 40,
        id: 40,
    },
];

/// Renders the notification of `transition` for `incident` (as it stands
/// once claimed). `delta`, when a batch brought it, names that batch's
/// busiest clients. Every field from outside is cut to a fixed size, and
/// cut further while the whole message would be over
/// [`MAX_NOTIFICATION_BYTES`], so it fits whatever the entries held.
pub fn render(
    incident: &IncidentState,
    transition: Transition,
    delta: Option<&Delta>,
) -> RenderedNotification {
    let mut rendered = None;
    for budget in BUDGETS {
        let n = render_within(incident, transition, delta, budget);
        let fits = n.message.len() <= MAX_NOTIFICATION_BYTES;
        rendered = Some(n);
        if fits {
            break;
        }
    }
    rendered.expect("at least one budget")
}

fn render_within(
    incident: &IncidentState,
    transition: Transition,
    delta: Option<&Delta>,
    budget: Budget,
) -> RenderedNotification {
    fn cut(s: &str, max: usize) -> Cow<'_, str> {
        Cow::Borrowed(truncate_str(s, max))
    }
    let id = notification_id(truncate_str(&incident.incident_id, budget.id), transition);
    let (first_name, second_name) = incident.key.kind.part_names();
    let mut key = vec![(
        Cow::Borrowed(first_name),
        cut(&incident.key.first, budget.part),
    )];
    if let (Some(name), Some(value)) = (second_name, &incident.key.second) {
        key.push((Cow::Borrowed(name), cut(value, budget.part)));
    }
    let top_clients: Vec<Cow<'_, str>> = match delta {
        Some(d) if !d.top_clients.is_empty() => d
            .top_clients
            .iter()
            .take(budget.list)
            .map(|(name, _)| cut(name, budget.part))
            .collect(),
        _ => incident
            .top_clients
            .iter()
            .take(budget.list)
            .map(|c| cut(c, budget.part))
            .collect(),
    };
    let hint = hint_within(&incident.key, budget.part);
    let body = NotificationBody {
        notification_id: Cow::Borrowed(&id),
        incident_id: cut(&incident.incident_id, budget.id),
        transition: Cow::Borrowed(transition.label()),
        category: incident.key.category,
        severity: Cow::Borrowed(incident.key.category.severity()),
        key_kind: incident.key.kind,
        key,
        entries: incident.entries,
        entries_since_last_notification: incident.entries_since_notified(),
        distinct_clients: incident.distinct_clients,
        distinct_clients_at_least: incident.clients_capped,
        top_clients,
        first_seen: format_rfc3339(incident.first_seen_ms),
        last_seen: format_rfc3339(incident.last_seen_ms),
        opened_at: format_rfc3339(incident.opened_ms),
        resolved_at: incident.resolved_ms.map(format_rfc3339),
        details: incident.details.as_deref().map(|d| cut(d, budget.field)),
        sample_trace_ids: incident
            .sample_trace_ids
            .iter()
            .take(budget.list)
            .map(|s| cut(s, budget.trace))
            .collect(),
        account_id: incident
            .account_id
            .as_deref()
            .map(|a| cut(a, 64.min(budget.field))),
        log_group: cut(&incident.log_group, budget.field),
        acknowledged_by: incident
            .acked_by
            .as_deref()
            .map(|a| cut(a, 128.min(budget.part))),
        held_back_by_silences: incident.held_back,
        meaning: Cow::Borrowed(hint.meaning),
        check: Cow::Owned(hint.check),
        show_command: format!(
            "iot-incidents show {}",
            escape(truncate_str(&incident.incident_id, budget.id))
        ),
    };
    let text = render_text(&body);
    let json = serde_json::to_string(&body).expect("plain data serialises");
    let chat = custom_notification(&body);
    let message = serde_json::json!({ "default": json, "email": text, "https": chat }).to_string();

    // Subscription filter policies compare these: one line each, no
    // control or invisible characters, bounded.
    let attribute = |value: &str| truncate_str(&escape(value), MAX_ATTRIBUTE_BYTES).to_owned();
    let mut attributes = vec![
        ("category", incident.key.category.as_str().to_owned()),
        ("severity", body.severity.to_string()),
        ("transition", transition.label().to_owned()),
        ("incidentId", attribute(&body.incident_id)),
        ("notificationId", attribute(&id)),
    ];
    match incident.key.kind {
        KeyKind::Rule | KeyKind::RuleAction => {
            attributes.push(("ruleName", attribute(&incident.key.first)));
        }
        KeyKind::Operation | KeyKind::Job | KeyKind::ApiCall => {
            attributes.push(("eventType", attribute(&incident.key.first)));
        }
        KeyKind::LogGroup => {}
    }
    if let Some(account) = body.account_id.as_ref() {
        attributes.push(("accountId", attribute(account)));
    }
    attributes.retain(|(_, v)| !v.is_empty());
    RenderedNotification {
        subject: subject_line(incident, transition),
        id,
        message,
        attributes,
    }
}

/// The email text. Every value that came from a log entry (names, reason,
/// details, ids) is [quoted]: whatever it holds, it stays inside its quotes
/// on its own field's line, so it cannot fake a line, a field or a verdict.
fn render_text(b: &NotificationBody<'_>) -> String {
    use std::fmt::Write as _;
    let mut t = String::with_capacity(1024);
    let noun = |n: u64| if n == 1 { "entry" } else { "entries" };
    let what = b
        .key
        .iter()
        .map(|(name, value)| format!("{name} {}", quoted(value)))
        .collect::<Vec<_>>()
        .join(", ");
    let verdict = match &*b.transition {
        "opened" => "Incident opened",
        "reminder" => "Incident still open",
        _ => "Incident resolved",
    };
    let _ = writeln!(t, "{verdict}: {} for {what}.", b.category);
    let _ = writeln!(t, "{}\n", what_it_means(b.category));
    // The hint's meaning is the table's own text; its check holds the
    // incident's names shell-quoted (escaped, so on this one line).
    // (Escaped again only if it holds what a line must not: a body read
    // back by `email_text` may not be one this code wrote.)
    let one_line = |s: &'_ str| -> String {
        if s.chars().any(is_unsafe_char) {
            escape(s).into_owned()
        } else {
            s.to_owned()
        }
    };
    if !b.meaning.is_empty() {
        let _ = writeln!(t, "What it means: {}", one_line(&b.meaning));
    }
    if !b.check.is_empty() {
        let _ = writeln!(t, "What to check: {}", one_line(&b.check));
    }
    if !b.meaning.is_empty() || !b.check.is_empty() {
        t.push('\n');
    }
    let _ = writeln!(t, "Incident:     {}", escape(&b.incident_id));
    let _ = writeln!(t, "Severity:     {}", b.severity);
    let _ = writeln!(t, "Opened:       {}", b.opened_at);
    if let Some(resolved) = &b.resolved_at {
        let _ = writeln!(
            t,
            "Resolved:     {resolved} (no new entry for the quiet period)"
        );
    }
    let _ = writeln!(t, "First seen:   {}", b.first_seen);
    let _ = writeln!(t, "Last seen:    {}", b.last_seen);
    let _ = writeln!(t, "Entries:      {}", b.entries);
    if b.transition == "reminder" {
        let _ = writeln!(
            t,
            "Since last:   {} {}",
            b.entries_since_last_notification,
            noun(b.entries_since_last_notification)
        );
    }
    let at_least = if b.distinct_clients_at_least {
        "at least "
    } else {
        ""
    };
    let _ = writeln!(t, "Clients:      {at_least}{} distinct", b.distinct_clients);
    if !b.top_clients.is_empty() {
        let names: Vec<String> = b.top_clients.iter().map(|c| quoted(c)).collect();
        let _ = writeln!(t, "Top clients:  {}", names.join(", "));
    }
    if let Some(d) = &b.details {
        let _ = writeln!(t, "Details:      {}", quoted(d));
    }
    if let Some(a) = &b.account_id {
        let _ = writeln!(t, "Account:      {}", quoted(a));
    }
    let _ = writeln!(t, "Log group:    {}", quoted(&b.log_group));
    if b.held_back_by_silences > 0 {
        let _ = writeln!(
            t,
            "Held back:    {} notification(s) by silences before this one",
            b.held_back_by_silences
        );
    }
    if let Some(by) = &b.acknowledged_by {
        let _ = writeln!(t, "Acknowledged: by {} (no reminders)", quoted(by));
    }
    let _ = writeln!(t, "Notification: {}", escape(&b.notification_id));
    let _ = writeln!(t, "Sample traces:");
    for trace in &b.sample_trace_ids {
        let _ = writeln!(t, "  {}", quoted(trace));
    }
    // The command that shows the incident comes last.
    let _ = writeln!(t, "\nEvery entry of a trace: iot-incidents get <traceId>");
    let _ = writeln!(t, "The incident:           {}", b.show_command);
    t
}

/// Splits notifications into PublishBatch requests: at most 10 each and 256 KiB in all.
pub fn publish_batches(notifications: &[RenderedNotification]) -> Vec<std::ops::Range<usize>> {
    let size = |a: &RenderedNotification| {
        a.message.len()
            + a.subject.len()
            + a.attributes
                .iter()
                .map(|(k, v)| k.len() + v.len() + 6)
                .sum::<usize>()
    };
    let mut batches = Vec::new();
    let mut start = 0;
    let mut bytes = 0;
    for (i, notification) in notifications.iter().enumerate() {
        let s = size(notification);
        if i > start && (i - start == MAX_PUBLISH_BATCH || bytes + s > MAX_PUBLISH_BATCH_BYTES) {
            batches.push(start..i);
            start = i;
            bytes = 0;
        }
        bytes += s;
    }
    if start < notifications.len() {
        batches.push(start..notifications.len());
    }
    batches
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::incident::key::IncidentKey;
    use crate::incident::lifecycle::tests::open_incident;

    fn throttled(rule: &str) -> IncidentState {
        let mut i = open_incident();
        i.key = IncidentKey {
            category: Category::RuleMessageThrottled,
            kind: KeyKind::Rule,
            first: rule.to_owned(),
            second: None,
        };
        i.entries = 12;
        i.distinct_clients = 3;
        i.top_clients = vec!["dev-1".into()];
        i.sample_trace_ids = vec!["t1".into()];
        i.details = Some("Message for Rule r throttled".into());
        i.account_id = Some("123456789012".into());
        i
    }

    fn parts(n: &RenderedNotification) -> (String, serde_json::Value) {
        let structure: serde_json::Value = serde_json::from_str(&n.message).unwrap();
        let email = structure["email"].as_str().unwrap().to_owned();
        let json = serde_json::from_str(structure["default"].as_str().unwrap()).unwrap();
        (email, json)
    }

    #[test]
    fn an_opened_notification_says_what_happened_for_people_and_machines() {
        let n = render(&throttled("r"), Transition::Opened, None);
        assert_eq!(
            n.subject,
            "[AWS IoT] OPEN RuleMessageThrottled: rule \"r\" (12 entries)"
        );
        assert_eq!(n.id, "k-1#opened");
        let (email, json) = parts(&n);
        assert!(
            email.starts_with("Incident opened: RuleMessageThrottled for rule \"r\"."),
            "{email}"
        );
        assert!(email.contains("Clients:      3 distinct"), "{email}");
        assert!(email.contains("iot-incidents show k-1"), "{email}");
        assert_eq!(json["transition"], "opened");
        assert_eq!(json["incidentId"], "k-1");
        assert_eq!(json["notificationId"], "k-1#opened");
        assert_eq!(json["key"][0], serde_json::json!(["rule", "r"]));
        assert_eq!(json["topClients"][0], "dev-1");
        let attrs: Vec<_> = n.attributes.iter().map(|(k, v)| (*k, v.as_str())).collect();
        assert_eq!(
            attrs,
            [
                ("category", "RuleMessageThrottled"),
                ("severity", "high"),
                ("transition", "opened"),
                ("incidentId", "k-1"),
                ("notificationId", "k-1#opened"),
                ("ruleName", "r"),
                ("accountId", "123456789012")
            ]
        );
    }

    #[test]
    fn only_a_resolved_notification_says_resolved_in_its_subject_whatever_the_rule_is_called() {
        for rule in ["r", "RESOLVED", "x resolved y", "Resolved\u{7}"] {
            let mut i = throttled(rule);
            for transition in [Transition::Opened, Transition::Reminder(1)] {
                let subject = render(&i, transition, None).subject;
                assert!(
                    !subject.to_ascii_lowercase().contains("resolved"),
                    "{subject}"
                );
            }
            i.resolved_ms = Some(5_000);
            let n = render(&i, Transition::Resolved, None);
            assert!(n.subject.contains("RESOLVED"), "{}", n.subject);
            let (email, _) = parts(&n);
            assert!(email.starts_with("Incident resolved"), "{email}");
        }
    }

    #[test]
    fn a_reminder_counts_what_came_since_the_last_notification() {
        let mut i = throttled("r");
        i.sent = 1;
        i.notified_entries = 5;
        let n = render(&i, Transition::Reminder(1), None);
        let (email, json) = parts(&n);
        assert_eq!(json["entriesSinceLastNotification"], 7);
        assert!(email.contains("Since last:   7 entries"), "{email}");
        assert_eq!(n.id, "k-1#reminder-1");
    }

    #[test]
    fn subjects_and_sizes_stay_within_sns_limits_whatever_the_input() {
        let mut i = throttled(&"ü\u{7}x".repeat(10_000));
        i.details = Some("d".repeat(1_000_000));
        i.log_group = "g".repeat(100_000);
        i.incident_id = "i".repeat(100_000);
        i.sample_trace_ids = vec!["t".repeat(100_000); 5];
        i.top_clients = vec!["c".repeat(100_000); 5];
        let n = render(&i, Transition::Opened, None);
        assert!(
            n.subject.len() <= MAX_SUBJECT_CHARS && n.subject.is_ascii(),
            "{}",
            n.subject
        );
        assert!(!n.subject.chars().any(|c| c.is_ascii_control()));
        assert!(
            n.message.len() <= MAX_NOTIFICATION_BYTES,
            "{}",
            n.message.len()
        );
        assert!(n.attributes.iter().all(|(_, v)| !v.is_empty()));
    }

    /// Issue 16 (2): a rule name that writes its own severity and verdict
    /// lines, a bidi override, terminal escapes and line separators.
    #[test]
    fn device_text_cannot_forge_lines_or_fields_of_a_notification() {
        let forged = "x\n\nSeverity:     low\nThis is a test alert, no action needed.\nSubject: [AWS IoT] resolved";
        let mut i = throttled(forged);
        i.key.category = Category::RuleNotFound;
        i.details =
            Some("dev\u{202e}evil.exe\u{202c} \u{1b}[2J\u{7} a\u{2028}b\u{2029}c \u{85}".into());
        i.sample_trace_ids = vec!["t\r\nNotification: 0".into()];
        let n = render(&i, Transition::Opened, None);
        let (email, json) = parts(&n);
        let lines: Vec<&str> = email.lines().collect();
        let starting = |prefix: &str| lines.iter().filter(|l| l.starts_with(prefix)).count();
        assert_eq!(starting("Severity:"), 1, "{email}");
        assert_eq!(starting("Notification:"), 1, "{email}");
        assert!(lines.contains(&"Severity:     critical"), "{email}");
        assert!(
            !lines.iter().any(|l| l.starts_with("This is a test")),
            "{email}"
        );
        assert!(!lines.iter().any(|l| l.starts_with("Subject:")), "{email}");
        assert!(
            !email
                .chars()
                .any(|c| c != '\n' && crate::notify::display::is_unsafe_char(c)),
            "no control, bidi or separator character but the line breaks: {email:?}"
        );
        assert!(email.contains(r#"dev\u{202e}evil.exe\u{202c}"#), "{email}");
        assert!(
            n.subject
                .starts_with("[AWS IoT] OPEN RuleNotFound: rule \"x\\n\\nSeverity:"),
            "{}",
            n.subject
        );
        for (name, value) in &n.attributes {
            assert!(
                !value.is_empty() && !value.chars().any(crate::notify::display::is_unsafe_char),
                "{name}={value:?}"
            );
        }
        // Machines get the value itself, as JSON.
        assert_eq!(json["key"][0][1], forged);
    }

    fn chat(n: &RenderedNotification) -> serde_json::Value {
        let structure: serde_json::Value = serde_json::from_str(&n.message).unwrap();
        serde_json::from_str(structure["https"].as_str().expect("an https key")).unwrap()
    }

    /// The text of a chat field with its inline code spans taken out: what
    /// markdown would read as markup.
    fn outside_code(s: &str) -> String {
        s.split('`').step_by(2).collect::<Vec<_>>().join(" ")
    }

    #[test]
    fn notifications_say_what_it_means_and_what_to_check() {
        let n = render(&throttled("ingest_a"), Transition::Opened, None);
        let (email, json) = parts(&n);
        let meaning = json["meaning"].as_str().unwrap();
        let check = json["check"].as_str().unwrap();
        assert!(meaning.contains("RuleExecutionThrottled"), "{meaning}");
        assert!(
            check.contains("RuleMessageThrottled for rule 'ingest_a'"),
            "{check}"
        );
        assert!(
            email.contains(&format!("\nWhat it means: {meaning}\n")),
            "{email}"
        );
        assert!(
            email.contains(&format!("\nWhat to check: {check}\n")),
            "{email}"
        );
        let mut job = open_incident();
        job.key = IncidentKey {
            category: Category::Failure,
            kind: KeyKind::Job,
            first: "UpdateJobExecution".into(),
            second: Some("fw-2.1".into()),
        };
        let (_, json) = parts(&render(&job, Transition::Opened, None));
        assert!(
            json["check"].as_str().unwrap().starts_with(
                "aws iot describe-job-execution --job-id 'fw-2.1' --thing-name <thing-name>"
            ),
            "{}",
            json["check"]
        );
    }

    #[test]
    fn the_show_command_is_the_last_line_of_the_text() {
        for transition in [
            Transition::Opened,
            Transition::Reminder(1),
            Transition::Resolved,
        ] {
            let n = render(&throttled("r"), transition, None);
            let (email, json) = parts(&n);
            let last = email.trim_end().lines().last().unwrap();
            assert!(
                last.ends_with(json["showCommand"].as_str().unwrap()),
                "{email}"
            );
            assert_eq!(last, "The incident:           iot-incidents show k-1");
        }
    }

    #[test]
    fn a_notification_without_hint_fields_still_reads() {
        let n = render(&throttled("r"), Transition::Opened, None);
        let structure: serde_json::Value = serde_json::from_str(&n.message).unwrap();
        let mut json: serde_json::Value =
            serde_json::from_str(structure["default"].as_str().unwrap()).unwrap();
        json.as_object_mut().unwrap().remove("meaning");
        json.as_object_mut().unwrap().remove("check");
        let text = email_text(&json.to_string()).unwrap();
        assert!(!text.contains("What to check"), "{text}");
        assert!(text.contains("iot-incidents show k-1"));
        // A forged body cannot add lines through its hint fields.
        json["check"] = "x\nSeverity:     low".into();
        let text = email_text(&json.to_string()).unwrap();
        assert_eq!(
            text.lines().filter(|l| l.starts_with("Severity:")).count(),
            1,
            "{text}"
        );
    }

    #[test]
    fn chat_gets_an_amazon_q_custom_notification_threaded_by_incident() {
        let mut i = throttled("ingest_a");
        i.incident_id = "0123456789abcdef-3".into();
        let n = render(&i, Transition::Opened, None);
        let structure: serde_json::Value = serde_json::from_str(&n.message).unwrap();
        assert_eq!(
            structure.as_object().unwrap().keys().collect::<Vec<_>>(),
            ["default", "email", "https"]
        );
        let c = chat(&n);
        assert_eq!(c["version"], "1.0");
        assert_eq!(c["source"], "custom");
        assert_eq!(c["id"], n.id);
        assert_eq!(c["content"]["textType"], "client-markdown");
        assert_eq!(c["metadata"]["threadId"], "0123456789abcdef-3");
        let title = c["content"]["title"].as_str().unwrap();
        assert_eq!(
            title,
            ":rotating_light: OPEN RuleMessageThrottled: rule `ingest_a` (12 entries)"
        );
        let description = c["content"]["description"].as_str().unwrap();
        assert!(
            description.contains("*What it means:* The rules engine throttled"),
            "{description}"
        );
        assert!(
            description.contains("*Top clients:* `dev-1`"),
            "{description}"
        );
        let steps: Vec<&str> = c["content"]["nextSteps"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s.as_str().unwrap())
            .collect();
        assert!(
            steps[0].starts_with("What to check: `CloudWatch metric"),
            "{steps:?}"
        );
        assert!(steps[0].contains("for rule 'ingest_a'"), "{steps:?}");
        assert_eq!(
            steps[1],
            "The incident: `iot-incidents show 0123456789abcdef-3`"
        );
        assert_eq!(
            c["content"]["keywords"],
            serde_json::json!(["RuleMessageThrottled", "high", "opened", "AWS IoT"])
        );
        assert_eq!(c["metadata"]["eventType"], "AWS IoT incident opened");
        assert_eq!(
            c["metadata"]["additionalContext"]["incidentId"],
            "0123456789abcdef-3"
        );
        assert_eq!(c["metadata"]["relatedResources"][0], "rule: ingest_a");
        // Every update of the incident threads under the same id.
        i.sent = 1;
        i.resolved_ms = Some(5_000);
        for transition in [Transition::Reminder(1), Transition::Resolved] {
            let later = chat(&render(&i, transition, None));
            assert_eq!(later["metadata"]["threadId"], "0123456789abcdef-3");
            assert_ne!(later["id"], c["id"]);
        }
        // The other keys are as they were: the body for machines, text for people.
        let (email, json) = parts(&n);
        assert_eq!(json["incidentId"], "0123456789abcdef-3");
        assert!(email.starts_with("Incident opened: RuleMessageThrottled"));
    }

    #[test]
    fn a_hostile_name_cannot_add_a_link_or_formatting_in_chat() {
        let hostile = "x`](http://evil.example) [click](http://evil.example) <http://evil.example|here> <!channel> *bold* _it_ ~s~ ```block``` \n\n*Severity:* low resolved";
        let mut i = throttled(hostile);
        i.details = Some(hostile.into());
        i.top_clients = vec![hostile.into()];
        i.sample_trace_ids = vec![hostile.into()];
        i.log_group = hostile.into();
        i.account_id = Some(hostile.into());
        i.acked_by = Some(hostile.into());
        let c = chat(&render(&i, Transition::Opened, None));
        let content = &c["content"];
        let mut fields = vec![
            content["title"].as_str().unwrap().to_owned(),
            content["description"].as_str().unwrap().to_owned(),
        ];
        fields.extend(
            content["nextSteps"]
                .as_array()
                .unwrap()
                .iter()
                .map(|s| s.as_str().unwrap().to_owned()),
        );
        for field in &fields {
            for line in field.lines() {
                assert_eq!(
                    line.matches('`').count() % 2,
                    0,
                    "a code span left open: {line}"
                );
                let markup = outside_code(line);
                for bad in [
                    "http", "evil", "](", "<", ">", "[", "|", "_it_", "~s~", "\\n",
                ] {
                    assert!(!markup.contains(bad), "{bad:?} outside code in {line}");
                }
            }
        }
        let description = content["description"].as_str().unwrap();
        assert_eq!(
            description
                .lines()
                .filter(|l| l.starts_with("*Severity:*"))
                .count(),
            1,
            "{description}"
        );
        assert!(!content["title"]
            .as_str()
            .unwrap()
            .to_lowercase()
            .contains("resolved"));
        let metadata = &c["metadata"];
        let values = metadata["relatedResources"]
            .as_array()
            .unwrap()
            .iter()
            .chain(metadata["additionalContext"].as_object().unwrap().values())
            .chain([&metadata["summary"], &metadata["eventType"]]);
        for value in values {
            let value = value.as_str().unwrap();
            for bad in ["<", ">", "[", "](", "`", "*bold*", "_it_", "~s~", "\n"] {
                assert!(!value.contains(bad), "{bad:?} in {value}");
            }
        }
    }

    #[test]
    fn chat_fields_stay_within_their_limits() {
        use crate::notify::chat::*;
        let mut i = throttled(&"long-rule-name".repeat(100));
        i.details = Some("d".repeat(5000));
        i.top_clients = vec!["c".repeat(250); 5];
        i.sample_trace_ids = vec!["t".repeat(120); 5];
        i.log_group = "g".repeat(1000);
        let c = chat(&render(&i, Transition::Opened, None));
        let chars = |v: &serde_json::Value| v.as_str().unwrap().chars().count();
        assert!(chars(&c["content"]["title"]) <= MAX_TITLE_CHARS);
        assert!(chars(&c["content"]["description"]) <= MAX_DESCRIPTION_CHARS);
        let steps = c["content"]["nextSteps"].as_array().unwrap();
        assert!(steps.len() <= MAX_NEXT_STEPS && steps.iter().all(|s| chars(s) <= MAX_STEP_CHARS));
        assert!(c["content"]["keywords"].as_array().unwrap().len() <= MAX_KEYWORDS);
        let related = c["metadata"]["relatedResources"].as_array().unwrap();
        assert!(related.len() <= MAX_RELATED_RESOURCES);
        assert!(related.iter().all(|r| chars(r) <= MAX_METADATA_CHARS));
        let context = c["metadata"]["additionalContext"].as_object().unwrap();
        assert!(context.values().all(|v| chars(v) <= MAX_METADATA_CHARS));
    }

    /// Every field full of what each representation escapes most: control
    /// characters (`\u0007` in JSON twice over, `\u{0007}` in text), quotes,
    /// backslashes, markdown characters; and long lists.
    #[test]
    fn the_whole_message_stays_within_sns_limits_for_the_worst_input() {
        let worst = "\u{7}\"\\`<[&|\u{202e}".repeat(20_000);
        for kind in [
            KeyKind::Rule,
            KeyKind::RuleAction,
            KeyKind::Operation,
            KeyKind::ApiCall,
            KeyKind::Job,
            KeyKind::LogGroup,
        ] {
            let mut i = throttled(&worst);
            i.key.kind = kind;
            i.key.second = Some(worst.clone());
            i.incident_id = worst.clone();
            i.details = Some(worst.clone());
            i.log_group = worst.clone();
            i.account_id = Some(worst.clone());
            i.acked_by = Some(worst.clone());
            i.top_clients = vec![worst.clone(); 50];
            i.sample_trace_ids = vec![worst.clone(); 50];
            i.resolved_ms = Some(5_000);
            for transition in [
                Transition::Opened,
                Transition::Reminder(2),
                Transition::Resolved,
            ] {
                let n = render(&i, transition, None);
                assert!(
                    n.message.len() <= MAX_NOTIFICATION_BYTES,
                    "{kind:?}: {} bytes",
                    n.message.len()
                );
                let c = chat(&n);
                assert_eq!(c["version"], "1.0");
                let (email, _) = parts(&n);
                assert!(!email
                    .chars()
                    .any(|c| c != '\n' && crate::notify::display::is_unsafe_char(c)));
            }
        }
    }

    #[test]
    fn publish_batches_respect_count_and_bytes() {
        let mk = |n: usize| RenderedNotification {
            id: String::new(),
            subject: "s".into(),
            message: "m".repeat(n),
            attributes: vec![],
        };
        let small: Vec<_> = (0..23).map(|_| mk(10)).collect();
        assert_eq!(publish_batches(&small), [0..10, 10..20, 20..23]);
        let big: Vec<_> = (0..5).map(|_| mk(100 * 1024)).collect();
        assert_eq!(publish_batches(&big), [0..2, 2..4, 4..5]);
        assert!(publish_batches(&[]).is_empty());
    }
}
