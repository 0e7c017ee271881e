//! The digest shows device text the way every notification does: quoted in
//! the email, in code spans in chat, as JSON strings in the JSON; its
//! subject and chat title hold none; it fits SNS whatever the names hold;
//! it shows no command with a device's value in it.

use super::digest::render_overflow;
use crate::incident::delta::{gather_within, Folded, Gathered};
use crate::incident::lifecycle::{IncidentState, Transition};
use crate::model::category::{Category, CategorySet};
use crate::model::record::{judge, to_entry, Entry};
use crate::notify::body::{email_text, NotificationBody};
use crate::notify::display::quoted;
use crate::notify::notification::{MAX_NOTIFICATION_BYTES, MAX_SUBJECT_CHARS};

/// Names a device may give a rule: a forged line, a bidi override, chat
/// markup and a mention, a quote, the word a resolution uses, a command.
const HOSTILE: &[&str] = &[
    "a\nSeverity: low",
    "\u{202e}lortnoc",
    "`x` <!here> [click](https://evil.example) &amp; *bold* _it_",
    "say \"hi\"",
    "RESOLVED",
    "$(touch /tmp/pwned); `id`",
];

fn entries_named(names: &[String]) -> Vec<Entry> {
    names
        .iter()
        .enumerate()
        .map(|(i, name)| {
            let line = serde_json::json!({
                "timestamp": "2027-01-15 08:00:00.000",
                "traceId": format!("t{i}"),
                "status": "Failure",
                "eventType": "RuleNotFound",
                "clientId": name,
                "ruleName": name,
            })
            .to_string();
            to_entry(&format!("e{i}"), 1_000, &line, &judge(&line)).unwrap()
        })
        .collect()
}

/// The overflow incident a batch of these rule names opens under a budget
/// of one, and what it folded.
fn storm_of(names: &[String]) -> (IncidentState, Folded, Gathered) {
    let entries = entries_named(names);
    let gathered = gather_within(
        &entries,
        CategorySet::of(&[Category::RuleNotFound]),
        "AWSIotLogsV2",
        1,
    );
    let delta = gathered
        .deltas
        .iter()
        .find(|d| d.key.is_overflow())
        .expect("an overflow");
    let incident = IncidentState::opened(delta, "AWSIotLogsV2", 1, 10_000);
    let folded = gathered.folded_of(Category::RuleNotFound).unwrap().clone();
    (incident, folded, gathered)
}

struct Copies {
    subject: String,
    email: String,
    json: serde_json::Value,
    default: String,
    chat: serde_json::Value,
    size: usize,
}

fn copies(incident: &IncidentState, transition: Transition, folded: Option<&Folded>) -> Copies {
    let n = render_overflow(incident, transition, folded, None, 1);
    let message: serde_json::Value = serde_json::from_str(&n.message).unwrap();
    let default = message["default"].as_str().unwrap().to_owned();
    Copies {
        subject: n.subject,
        email: message["email"].as_str().unwrap().to_owned(),
        json: serde_json::from_str(&default).unwrap(),
        default,
        chat: serde_json::from_str(message["https"].as_str().unwrap()).unwrap(),
        size: n.message.len(),
    }
}

#[test]
fn device_names_in_a_digest_stay_inside_their_quotes_and_code_spans() {
    // Two entries each, so the first name is the busiest and kept: the
    // others fold, busiest first then by name.
    let mut names: Vec<String> = HOSTILE.iter().map(|s| (*s).to_owned()).collect();
    names.insert(0, "kept".into());
    names.insert(0, "kept".into());
    let (incident, folded, _) = storm_of(&names);
    assert_eq!(folded.keys, HOSTILE.len() as u64);
    let c = copies(&incident, Transition::Opened, Some(&folded));

    // Email: each name quoted on its own line of the list; nothing forged.
    for name in HOSTILE {
        let line = format!("  rule {}: 1 entry", quoted(name));
        assert!(
            c.email.lines().any(|l| l == line),
            "{line:?} in\n{}",
            c.email
        );
    }
    assert!(!c.email.lines().any(|l| l.starts_with("Severity: low")));
    assert!(!c.email.contains('\u{202e}'));

    // Chat: names only in code spans, markup and mentions made look-alikes.
    let description = c.chat["content"]["description"].as_str().unwrap();
    for markup in ['<', '>', '[', ']', '&', '\u{202e}'] {
        assert!(!description.contains(markup), "{markup:?} in {description}");
    }
    assert_eq!(description.matches('`').count() % 2, 0, "{description}");
    assert!(description.contains("`RESOLVED`"), "{description}");
    let title = c.chat["content"]["title"].as_str().unwrap();
    assert!(!title.to_lowercase().contains("resolved"), "{title}");
    for step in c.chat["content"]["nextSteps"].as_array().unwrap() {
        let step = step.as_str().unwrap();
        assert!(!step.contains("touch") && !step.contains("here"), "{step}");
    }

    // JSON: the names as they are; the body every notification has.
    let busiest: Vec<&str> = c.json["storm"]["busiest"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["key"]["rule"].as_str().unwrap())
        .collect();
    let mut sorted: Vec<&str> = HOSTILE.to_vec();
    sorted.sort();
    assert_eq!(busiest, sorted);
    let body: NotificationBody<'_> = serde_json::from_str(&c.default).unwrap();
    assert_eq!(body.incident_id, incident.incident_id);
    assert!(email_text(&c.default).is_ok());

    // Subject: ASCII, bounded, and no device text.
    assert!(c.subject.is_ascii() && c.subject.len() <= MAX_SUBJECT_CHARS);
    assert_eq!(
        c.subject,
        "[AWS IoT] OPEN RuleNotFound: 6 more incidents (storm digest, 6 entries)"
    );
    // No command holds a device's value: only the incident's own.
    let check = c.json["check"].as_str().unwrap();
    assert_eq!(
        check.matches('`').count(),
        2,
        "one command, the incident's own: {check}"
    );
    assert!(check.contains(&format!("iot-incidents show {}", incident.incident_id)));
    assert!(!c.email.contains("aws iot") && !c.email.contains("--rule-name"));
}

/// Names full of characters every copy escapes still make a notification
/// SNS takes: fewer and shorter names are shown, never a message too large.
#[test]
fn a_digest_of_the_worst_names_fits_sns() {
    let worst: Vec<String> = (0..40)
        .map(|i| format!("{i:02}{}", "\u{1}\u{202e}\"`<".repeat(60)))
        .collect();
    let (incident, folded, _) = storm_of(&worst);
    for transition in [
        Transition::Opened,
        Transition::Reminder(1),
        Transition::Resolved,
    ] {
        let c = copies(&incident, transition, Some(&folded));
        assert!(
            c.size <= MAX_NOTIFICATION_BYTES,
            "{transition:?}: {}",
            c.size
        );
        assert!(
            c.chat["content"]["description"]
                .as_str()
                .unwrap()
                .chars()
                .count()
                <= 3000
        );
    }
}

/// Only a resolution says "resolved" in its subject and chat title; a
/// sweep's notification (no batch at hand) reads without the folded keys.
#[test]
fn each_transition_says_what_happened_and_a_sweep_s_needs_no_batch() {
    let names: Vec<String> = ["a", "a", "b", "c"]
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
    let (incident, _, _) = storm_of(&names);
    let opened = copies(&incident, Transition::Opened, None);
    assert_eq!(
        opened.subject,
        "[AWS IoT] OPEN RuleNotFound: more incidents (storm digest, 2 entries)"
    );
    assert!(opened.json["storm"]["busiest"]
        .as_array()
        .unwrap()
        .is_empty());
    let reminder = copies(&incident, Transition::Reminder(1), None);
    assert!(reminder
        .subject
        .starts_with("[AWS IoT] STILL OPEN RuleNotFound"));
    let resolved = copies(&incident, Transition::Resolved, None);
    assert!(resolved
        .subject
        .starts_with("[AWS IoT] RESOLVED RuleNotFound"));
    for c in [&opened, &reminder] {
        let title = c.chat["content"]["title"].as_str().unwrap();
        assert!(!title.to_lowercase().contains("resolved"), "{title}");
    }
    assert_eq!(
        resolved.json["notificationId"],
        format!("{}#resolved", incident.incident_id)
    );
}
