//! Alerts rendered for people (email) and for machines (JSON), within
//! SNS's limits whatever the entries hold.

use std::borrow::Cow;

use serde::{Deserialize, Serialize};

use crate::model::category::Category;
use crate::model::time::format_rfc3339;
use crate::notify::display::{escape, quoted};
use crate::notify::group::{AlertGroup, SubjectKind};
use crate::store::keys::truncate_str;

/// SNS subjects must be ASCII, without control characters, under 100 characters.
pub const MAX_SUBJECT_CHARS: usize = 99;
/// PublishBatch carries at most 10 messages and 256 KiB in all; one alert
/// stays under a tenth of that so any 10 fit.
pub const MAX_ALERT_BYTES: usize = 24 * 1024;
pub const MAX_PUBLISH_BATCH: usize = 10;
pub const MAX_PUBLISH_BATCH_BYTES: usize = 256 * 1024;
const MAX_FIELD_BYTES: usize = 1024;
/// Message attribute values stay short enough to filter on.
const MAX_ATTRIBUTE_BYTES: usize = 256;

/// An alert ready for SNS.
#[derive(Debug, Clone, PartialEq)]
pub struct RenderedAlert {
    pub key: String,
    pub subject: String,
    /// The `MessageStructure: json` body: `default` (JSON, for SQS, Lambda,
    /// HTTPS and every other protocol) and `email` (text).
    pub message: String,
    pub attributes: Vec<(&'static str, String)>,
}

/// The JSON that machine subscribers receive.
#[derive(Debug, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct AlertBody<'a> {
    /// The same for every delivery of one alert (SNS, or a retry of the
    /// publish, may deliver it twice): subscribers can drop repeats by it.
    #[serde(borrow)]
    pub alert_id: Cow<'a, str>,
    pub category: Category,
    pub severity: Cow<'a, str>,
    pub subject_kind: SubjectKind,
    #[serde(borrow)]
    pub subject: Cow<'a, str>,
    pub count: u64,
    pub first_time: String,
    pub last_time: String,
    #[serde(borrow, default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<Cow<'a, str>>,
    #[serde(borrow, default, skip_serializing_if = "Option::is_none")]
    pub details: Option<Cow<'a, str>>,
    #[serde(borrow)]
    pub event_types: Vec<Cow<'a, str>>,
    #[serde(borrow)]
    pub sample_trace_ids: Vec<Cow<'a, str>>,
    #[serde(borrow, default, skip_serializing_if = "Option::is_none")]
    pub account_id: Option<Cow<'a, str>>,
    #[serde(borrow)]
    pub log_group: Cow<'a, str>,
    pub suppressed_since_last_alert: u64,
    pub window_seconds: u64,
}

/// The email text of an alert, from the JSON that machine subscribers get
/// (so a local inbox can show what a person would read).
pub fn email_text(alert_json: &str) -> Result<String, serde_json::Error> {
    serde_json::from_str::<AlertBody>(alert_json).map(|body| render_text(&body))
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

/// SNS rejects non-ASCII and control characters in subjects. The
/// device-chosen part is quoted, so it cannot pass for the subject's own words.
fn subject_line(group: &AlertGroup) -> String {
    let raw = format!(
        "[AWS IoT] {}: {} {} ({})",
        group.category,
        group.subject_kind.label(),
        quoted(truncate_str(&group.subject, 256)),
        group.count
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

/// The id of the alert for `key` claimed by batch `fingerprint`: the same
/// when a redelivery of the batch sends it again.
pub fn alert_id(key: &str, fingerprint: &str) -> String {
    format!(
        "{:016x}",
        crate::store::keys::fnv1a(key.as_bytes())
            ^ crate::store::keys::fnv1a(fingerprint.as_bytes()).rotate_left(23)
    )
}

/// Renders one alert. Every field from outside is cut to a fixed size, so the
/// result stays under [`MAX_ALERT_BYTES`] whatever the incidents held.
pub fn render(
    group: &AlertGroup,
    log_group: &str,
    alert_id: &str,
    suppressed_since_last: u64,
    window_seconds: u64,
) -> RenderedAlert {
    fn cut(s: &str, max: usize) -> Cow<'_, str> {
        Cow::Borrowed(truncate_str(s, max))
    }
    let body = AlertBody {
        alert_id: cut(alert_id, 64),
        category: group.category,
        severity: Cow::Borrowed(group.category.severity()),
        subject_kind: group.subject_kind,
        subject: cut(&group.subject, 256),
        count: group.count,
        first_time: format_rfc3339(group.first_ms),
        last_time: format_rfc3339(group.last_ms),
        reason: group.reason.as_deref().map(|r| cut(r, 256)),
        details: group.details.as_deref().map(|d| cut(d, MAX_FIELD_BYTES)),
        event_types: group.event_types.iter().map(|s| cut(s, 128)).collect(),
        sample_trace_ids: group.sample_trace_ids.iter().map(|s| cut(s, 128)).collect(),
        account_id: group.account_id.as_deref().map(|a| cut(a, 64)),
        log_group: cut(log_group, MAX_FIELD_BYTES),
        suppressed_since_last_alert: suppressed_since_last,
        window_seconds,
    };
    let text = render_text(&body);
    let json = serde_json::to_string(&body).expect("plain data serialises");
    let message = serde_json::json!({ "default": json, "email": text }).to_string();

    // Subscription filter policies compare these: one line each, no
    // control or invisible characters, bounded.
    let attribute = |value: &str| truncate_str(&escape(value), MAX_ATTRIBUTE_BYTES).to_owned();
    let mut attributes = vec![
        ("category", group.category.as_str().to_owned()),
        ("severity", body.severity.to_string()),
        ("alertId", attribute(&body.alert_id)),
    ];
    if let Some(event_type) = body.event_types.first().filter(|t| !t.is_empty()) {
        attributes.push(("eventType", attribute(event_type)));
    }
    if group.subject_kind == SubjectKind::Rule {
        attributes.push(("ruleName", attribute(&body.subject)));
    }
    if let Some(account) = body.account_id.as_ref().filter(|a| !a.is_empty()) {
        attributes.push(("accountId", attribute(account)));
    }
    RenderedAlert {
        key: group.key(),
        subject: subject_line(group),
        message,
        attributes,
    }
}

/// The email text. Every value that came from a log entry (names, reason,
/// details, ids) is [quoted]: whatever it holds, it stays inside its quotes
/// on its own field's line, so it cannot fake a line, a field or a verdict.
fn render_text(b: &AlertBody<'_>) -> String {
    use std::fmt::Write as _;
    let mut t = String::with_capacity(1024);
    let noun = if b.count == 1 { "entry" } else { "entries" };
    let _ = writeln!(
        t,
        "{} for {} {}: {} {noun}.",
        b.category,
        b.subject_kind.label(),
        quoted(&b.subject),
        b.count
    );
    let _ = writeln!(t, "{}\n", what_it_means(b.category));
    let _ = writeln!(t, "Severity:     {}", b.severity);
    let _ = writeln!(t, "First seen:   {}", b.first_time);
    let _ = writeln!(t, "Last seen:    {}", b.last_time);
    if let Some(r) = &b.reason {
        let _ = writeln!(t, "Reason:       {}", quoted(r));
    }
    if let Some(d) = &b.details {
        let _ = writeln!(t, "Details:      {}", quoted(d));
    }
    if !b.event_types.is_empty() {
        let types: Vec<String> = b.event_types.iter().map(|e| quoted(e)).collect();
        let _ = writeln!(t, "Event types:  {}", types.join(", "));
    }
    if let Some(a) = &b.account_id {
        let _ = writeln!(t, "Account:      {}", quoted(a));
    }
    let _ = writeln!(t, "Log group:    {}", quoted(&b.log_group));
    if b.suppressed_since_last_alert > 0 {
        let _ = writeln!(
            t,
            "Suppressed:   {} more entries with this key since the last alert (one alert per {} s).",
            b.suppressed_since_last_alert, b.window_seconds
        );
    }
    let _ = writeln!(t, "Alert id:     {}", escape(&b.alert_id));
    let _ = writeln!(t, "Sample traces:");
    for trace in &b.sample_trace_ids {
        let _ = writeln!(t, "  {}", quoted(trace));
    }
    let _ = writeln!(t, "\nEvery entry of a trace: iot-incidents get <traceId>");
    t
}

/// Splits alerts into PublishBatch requests: at most 10 each and 256 KiB in all.
pub fn publish_batches(alerts: &[RenderedAlert]) -> Vec<std::ops::Range<usize>> {
    let size = |a: &RenderedAlert| {
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
    for (i, alert) in alerts.iter().enumerate() {
        let s = size(alert);
        if i > start && (i - start == MAX_PUBLISH_BATCH || bytes + s > MAX_PUBLISH_BATCH_BYTES) {
            batches.push(start..i);
            start = i;
            bytes = 0;
        }
        bytes += s;
    }
    if start < alerts.len() {
        batches.push(start..alerts.len());
    }
    batches
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::notify::group::aggregate;
    use crate::notify::group::tests::{alerting, incident};

    #[test]
    fn rendering_says_what_happened_for_people_and_machines() {
        let g = &aggregate(
            &[incident(
                Category::RuleMessageThrottled,
                Some("r"),
                None,
                "t1",
                0,
            )],
            alerting(),
            "AWSIotLogsV2",
        )[0];
        let a = render(g, "AWSIotLogsV2", "a1", 7, 900);
        assert_eq!(a.subject, "[AWS IoT] RuleMessageThrottled: rule \"r\" (1)");
        let structure: serde_json::Value = serde_json::from_str(&a.message).unwrap();
        let email = structure["email"].as_str().unwrap();
        assert!(
            email.contains("RuleMessageThrottled for rule \"r\": 1 entry."),
            "{email}"
        );
        assert!(
            email.contains("7 more entries with this key since the last alert"),
            "{email}"
        );
        assert!(
            email.contains("Reason:       \"RuleExecutionThrottled\""),
            "{email}"
        );
        let json: serde_json::Value =
            serde_json::from_str(structure["default"].as_str().unwrap()).unwrap();
        assert_eq!(json["category"], "RuleMessageThrottled");
        assert_eq!(json["subjectKind"], "rule");
        assert_eq!(json["suppressedSinceLastAlert"], 7);
        assert_eq!(json["firstTime"], "1970-01-01T00:00:00.000Z");
        assert_eq!(json["sampleTraceIds"][0], "t1");
        assert_eq!(json["alertId"], "a1");
        assert!(email.contains("Alert id:     a1"), "{email}");
        let attrs: Vec<_> = a.attributes.iter().map(|(k, v)| (*k, v.as_str())).collect();
        assert_eq!(
            attrs,
            [
                ("category", "RuleMessageThrottled"),
                ("severity", "high"),
                ("alertId", "a1"),
                ("eventType", "RuleMessageThrottled"),
                ("ruleName", "r"),
                ("accountId", "123456789012")
            ]
        );
    }

    #[test]
    fn subjects_and_sizes_stay_within_sns_limits_whatever_the_input() {
        let mut i = incident(
            Category::Failure,
            None,
            Some(&"ü\u{7}x".repeat(10_000)),
            &"t".repeat(100_000),
            0,
        );
        i.details = Some("d".repeat(1_000_000));
        i.reason = Some("r".repeat(1_000_000));
        i.event_type = Some("e".repeat(100_000));
        let g = &aggregate(&[i], alerting(), "g")[0];
        let a = render(g, &"g".repeat(100_000), &"i".repeat(100_000), u64::MAX, 900);
        assert!(
            a.subject.len() <= MAX_SUBJECT_CHARS && a.subject.is_ascii(),
            "{}",
            a.subject
        );
        assert!(!a.subject.chars().any(|c| c.is_ascii_control()));
        assert!(a.message.len() <= MAX_ALERT_BYTES, "{}", a.message.len());
        assert!(a.attributes.iter().all(|(_, v)| !v.is_empty()));
    }

    /// Issue 16 (2): a rule name that writes its own severity and verdict
    /// lines, a bidi override, terminal escapes and line separators.
    #[test]
    fn device_text_cannot_forge_lines_or_fields_of_a_notification() {
        let forged = "x\n\nSeverity:     low\nThis is a test alert, no action needed.\nSubject: [AWS IoT] resolved";
        let mut i = incident(
            Category::RuleNotFound,
            Some(forged),
            None,
            "t\r\nAlert id: 0",
            0,
        );
        i.details =
            Some("dev\u{202e}evil.exe\u{202c} \u{1b}[2J\u{7} a\u{2028}b\u{2029}c \u{85}".into());
        i.reason = Some("\"quoted\" \\n".into());
        let g = &aggregate(&[i], alerting(), "AWSIotLogsV2")[0];
        let a = render(g, "AWSIotLogsV2", "a1", 0, 900);
        let structure: serde_json::Value = serde_json::from_str(&a.message).unwrap();
        let email = structure["email"].as_str().unwrap();
        let lines: Vec<&str> = email.lines().collect();
        let starting = |prefix: &str| lines.iter().filter(|l| l.starts_with(prefix)).count();
        assert_eq!(starting("Severity:"), 1, "{email}");
        assert_eq!(starting("Alert id:"), 1, "{email}");
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
        assert!(
            email.contains(r#"Reason:       "\"quoted\" \\n""#),
            "{email}"
        );
        assert!(email.contains(r#"dev\u{202e}evil.exe\u{202c}"#), "{email}");
        assert!(
            a.subject
                .starts_with("[AWS IoT] RuleNotFound: rule \"x\\n\\nSeverity:"),
            "{}",
            a.subject
        );
        for (name, value) in &a.attributes {
            assert!(
                !value.is_empty() && !value.chars().any(crate::notify::display::is_unsafe_char),
                "{name}={value:?}"
            );
        }
        // Machines get the value itself, as JSON.
        let json: serde_json::Value =
            serde_json::from_str(structure["default"].as_str().unwrap()).unwrap();
        assert_eq!(json["subject"], forged);
    }

    #[test]
    fn publish_batches_respect_count_and_bytes() {
        let mk = |n: usize| RenderedAlert {
            key: String::new(),
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
