//! Notifications rendered for people (email), for chat (Slack and Teams
//! through Amazon Q Developer) and for machines (JSON), within SNS's limits
//! whatever the entries held: one per incident transition (opened,
//! reminder, resolved). Each says what the incident means and what to
//! check ([`hints`](crate::notify::hints)).

use std::borrow::Cow;

use crate::incident::delta::Delta;
use crate::incident::key::KeyKind;
use crate::incident::lifecycle::{notification_id, IncidentState, Transition};
use crate::model::time::format_rfc3339;
pub use crate::notify::body::{email_text, NotificationBody};
use crate::notify::body::{render_text, without_verdict};
use crate::notify::chat::custom_notification;
use crate::notify::display::{escape, quoted, shell_word};
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

/// The words that say what changed, first in the subject.
fn headline(transition: Transition) -> &'static str {
    match transition {
        Transition::Opened => "OPEN",
        Transition::Reminder(_) => "STILL OPEN",
        Transition::Resolved => "RESOLVED",
    }
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
    let show_command = if incident.incident_id.len() <= budget.id {
        show_command(&incident.incident_id)
    } else {
        show_command("")
    };
    // A name too long to show whole is not shown cut: the incident's own
    // command shows it.
    let check = if hint.withheld {
        format!(
            "{}; names too long to show here: `{show_command}`",
            hint.check
        )
    } else {
        hint.check
    };
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
        distinct_clients_estimated: incident.clients_estimated,
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
        reopenings: u64::from(incident.reopenings),
        flapping: incident.flapping,
        meaning: Cow::Borrowed(hint.meaning),
        check: Cow::Owned(check),
        show_command,
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
        KeyKind::LogGroup | KeyKind::Overflow => {}
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

/// The command that shows incident `id`. Ids are the project's own
/// (`<key hash>-<generation>`), but an id read back from the table is shown
/// as a shell word all the same, unless it is one plain token.
pub fn show_command(id: &str) -> String {
    let plain = !id.is_empty()
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | ':'));
    match (plain, shell_word(id)) {
        (true, _) => format!("iot-incidents show {id}"),
        (false, Some(word)) if !id.is_empty() => format!("iot-incidents show {word}"),
        // Unknown (too long for the notification), or NUL inside.
        _ => "iot-incidents show <incident-id>".to_owned(),
    }
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
mod shell_tests;
#[cfg(test)]
mod tests;
