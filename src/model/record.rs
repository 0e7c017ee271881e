//! Turning one log event into an entry: classification of the message,
//! the owned record kept for storage and alerting, and the synthetic
//! traceId scheme for entries that have none.

use crate::json::unescape::unescape_json_string;
use crate::model::category::Category;
use crate::model::classify::{category_of_read, classify};
use crate::model::entry::{parse_entry, parse_essentials, LogEntry, NotAnEntry};
use crate::model::essentials::scan_escaped_essentials;
use crate::model::field::Field;
use crate::model::time::{parse_iot_timestamp, parse_rfc3339};

/// An entry, owned: it outlives the batch buffer it came from.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    pub category: Category,
    /// The entry's traceId, or a synthetic one (see [`synthetic_trace_id`]).
    pub trace_id: String,
    /// The CloudWatch log event id: unique per log event, stable across redeliveries.
    pub event_id: String,
    /// The entry's own time when it has a valid one, else CloudWatch's ingestion time.
    pub time_ms: i64,
    pub event_type: Option<String>,
    pub rule_name: Option<String>,
    pub client_id: Option<String>,
    pub account_id: Option<String>,
    pub reason: Option<String>,
    pub details: Option<String>,
    /// The log event's message, unchanged (until redaction).
    pub message: String,
    /// For `Unparseable`: why the message is not an entry.
    pub parse_problem: Option<&'static str>,
    /// A CloudTrail record of an API call rather than an IoT log entry.
    pub cloudtrail: bool,
    /// The entry's own top-level fields, read once with the entry and
    /// handed on: redaction rewrites them, the item writer stores them.
    pub fields: Vec<(String, FieldValue)>,
}

impl Entry {
    /// One of the entry's own fields, when it is text.
    pub fn field(&self, name: &str) -> Option<&str> {
        self.fields.iter().find_map(|(n, v)| match v {
            FieldValue::Text(text) if n == name => Some(text.as_str()),
            _ => None,
        })
    }
}

/// One of an entry's own fields, owned.
#[derive(Debug, Clone, PartialEq)]
pub enum FieldValue {
    Text(String),
    /// An integer, as written (DynamoDB keeps numbers as text).
    Integer(String),
    Bool(bool),
    Null,
    /// Anything else (an object, an array, another number), as its JSON text.
    Json(String),
}

impl FieldValue {
    /// A raw JSON value as the item keeps it.
    pub fn of_json(json: &str) -> Self {
        match json.as_bytes().first() {
            Some(b'"') => {
                let mut text = String::new();
                match unescape_json_string(json, &mut text) {
                    Some(()) => Self::Text(text),
                    None => Self::Json(json.to_owned()),
                }
            }
            Some(b't') if json == "true" => Self::Bool(true),
            Some(b'f') if json == "false" => Self::Bool(false),
            Some(b'n') if json == "null" => Self::Null,
            _ if json.parse::<i64>().is_ok() || json.parse::<u64>().is_ok() => {
                Self::Integer(json.to_owned())
            }
            _ => Self::Json(json.to_owned()),
        }
    }
}

/// At most this many of an entry's fields are kept on its record: twice
/// what an item stores, so the item can still name those it leaves out,
/// and an entry of 20,000 tiny fields costs no more than one of 512.
pub const MAX_FIELDS: usize = 512;

/// The top-level fields of a parsed entry, in a fixed order (the event
/// type, the known text fields, `sourcePort`, `resources`, then the rest as
/// they came), at most [`MAX_FIELDS`].
fn fields_of(entry: &LogEntry<'_>) -> Vec<(String, FieldValue)> {
    let mut fields = Vec::with_capacity((Field::ALL.len() + entry.other.len() + 3).min(MAX_FIELDS));
    fields.push((
        "eventType".to_owned(),
        FieldValue::Text(entry.event_type.as_str().to_owned()),
    ));
    for &field in Field::ALL {
        if let Some(value) = entry.get(field) {
            fields.push((field.name().to_owned(), FieldValue::Text(value.to_owned())));
        }
    }
    if let Some(port) = entry.source_port {
        fields.push((
            "sourcePort".to_owned(),
            FieldValue::Integer(port.to_string()),
        ));
    }
    if let Some(resources) = entry.resources {
        fields.push((
            "resources".to_owned(),
            FieldValue::Json(resources.get().to_owned()),
        ));
    }
    for (name, raw) in entry
        .other
        .iter()
        .take(MAX_FIELDS.saturating_sub(fields.len()))
    {
        fields.push((name.to_string(), FieldValue::of_json(raw.get())));
    }
    fields
}

/// The traceId for entries that have none, deterministic so that redelivery
/// overwrites rather than duplicates:
/// - jobs entries with a `jobId`: `job:<jobId>`, so one job's entries read back together;
/// - anything else (including unparseable lines): `event:<CloudWatch event id>`.
pub fn synthetic_trace_id(job_id: Option<&str>, event_id: &str) -> String {
    match job_id.filter(|j| !j.is_empty()) {
        Some(job) => format!("job:{job}"),
        None => format!("event:{event_id}"),
    }
}

/// The result of looking at one log event. Lives on the stack for one
/// entry: boxing the large variant would cost an allocation per entry.
#[allow(clippy::large_enum_variant)]
pub enum Verdict<'m> {
    /// Parsed, and not an entry (or an entry of a category not kept).
    Entry(LogEntry<'m>, Option<Category>),
    /// Not an IoT v2 entry.
    Unparseable(NotAnEntry),
}

impl Verdict<'_> {
    pub fn category(&self) -> Option<Category> {
        match self {
            Self::Entry(_, category) => *category,
            Self::Unparseable(_) => Some(Category::Unparseable),
        }
    }
}

/// The category of one message (`Unparseable` included), from the fast
/// parse that reads only what classification needs. Agrees with
/// [`judge`]'s, which the pipeline runs only on entries.
pub fn category_of_message(message: &str) -> Option<Category> {
    category_of_read(parse_essentials(message).as_ref().ok())
}

/// [`category_of_message`] of a message still escaped in its envelope, for
/// the entries the escaped scan can read; `None` for the rest, which
/// must be unescaped and read by [`category_of_message`].
pub fn category_of_escaped(quoted: &str) -> Option<Option<Category>> {
    scan_escaped_essentials(quoted).map(|read| category_of_read(read.as_ref().ok()))
}

/// Parses a message fully and classifies it.
pub fn judge(message: &str) -> Verdict<'_> {
    match parse_entry(message) {
        Ok(entry) => {
            let category = classify(&entry);
            Verdict::Entry(entry, category)
        }
        Err(why) => Verdict::Unparseable(why),
    }
}

/// Builds the owned entry for a log event (its CloudWatch id and
/// ingestion time) whose verdict has a category.
pub fn to_entry(
    event_id: &str,
    ingested_ms: i64,
    message: &str,
    verdict: &Verdict<'_>,
) -> Option<Entry> {
    let owned = |s: Option<&str>| s.map(str::to_owned);
    let event_id = event_id.to_owned();
    // What every entry has; each kind of source fills in the rest.
    let mut owned_entry = Entry {
        category: verdict.category()?,
        trace_id: synthetic_trace_id(None, &event_id),
        event_id,
        time_ms: ingested_ms,
        event_type: None,
        rule_name: None,
        client_id: None,
        account_id: None,
        reason: None,
        details: None,
        message: message.to_owned(),
        parse_problem: None,
        cloudtrail: false,
        fields: Vec::new(),
    };
    match verdict {
        Verdict::Unparseable(why) => owned_entry.parse_problem = Some(why.as_str()),
        // A control-plane call: keyed by its request id, named by its API.
        Verdict::Entry(entry, _) => match entry.cloudtrail() {
            Some(call) => {
                owned_entry.cloudtrail = true;
                if let Some(request_id) = call.request_id {
                    owned_entry.trace_id = request_id.to_owned();
                }
                if let Some(time_ms) = call.event_time.and_then(parse_rfc3339) {
                    owned_entry.time_ms = time_ms;
                }
                owned_entry.event_type = Some(call.event_name.to_owned());
                owned_entry.account_id = owned(call.account_id);
                owned_entry.reason = owned(call.error_code);
                owned_entry.details = owned(call.error_message);
            }
            None => {
                owned_entry.trace_id = match entry.trace_id() {
                    Some(trace_id) => trace_id.to_owned(),
                    None => synthetic_trace_id(entry.job_id(), &owned_entry.event_id),
                };
                if let Some(time_ms) = entry.timestamp().and_then(parse_iot_timestamp) {
                    owned_entry.time_ms = time_ms;
                }
                owned_entry.event_type = Some(entry.event_type.as_str().to_owned());
                owned_entry.rule_name = owned(entry.rule_name());
                owned_entry.client_id = owned(entry.client_id());
                owned_entry.account_id = owned(entry.account_id());
                owned_entry.reason = owned(entry.reason());
                owned_entry.details = owned(entry.details());
            }
        },
    }
    if let Verdict::Entry(entry, _) = verdict {
        owned_entry.fields = fields_of(entry);
    }
    Some(owned_entry)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn synthetic_trace_ids_are_deterministic() {
        assert_eq!(synthetic_trace_id(Some("002"), "e1"), "job:002");
        assert_eq!(synthetic_trace_id(Some(""), "e1"), "event:e1");
        assert_eq!(synthetic_trace_id(None, "e1"), "event:e1");
    }

    #[test]
    fn entries_keep_what_alerts_and_storage_need() {
        let msg = r#"{"timestamp":"2017-10-04 19:25:46.070","logLevel":"ERROR","traceId":"t","accountId":"1",
            "status":"Failure","eventType":"RuleNotFound","clientId":"c","ruleName":"r","reason":"RuleNotFound","details":"d"}"#;
        let verdict = judge(msg);
        let i = to_entry("e9", 1_000, msg, &verdict).unwrap();
        assert_eq!(i.category, Category::RuleNotFound);
        assert_eq!((i.trace_id.as_str(), i.event_id.as_str()), ("t", "e9"));
        assert_eq!(i.time_ms, 1_507_145_146_070);
        assert_eq!(i.rule_name.as_deref(), Some("r"));
        assert_eq!(i.message, msg);
    }

    #[test]
    fn a_bad_timestamp_falls_back_to_cloudwatch_time() {
        let msg =
            r#"{"timestamp":"yesterday","eventType":"Connect","status":"Failure","jobId":"j"}"#;
        let i = to_entry("e1", 1_000, msg, &judge(msg)).unwrap();
        assert_eq!(i.time_ms, 1_000);
        assert_eq!(i.trace_id, "job:j");
    }

    #[test]
    fn unparseable_lines_become_entries_with_their_text() {
        let i = to_entry("e2", 1_000, "plain text", &judge("plain text")).unwrap();
        assert_eq!(i.category, Category::Unparseable);
        assert_eq!(i.trace_id, "event:e2");
        assert_eq!(i.parse_problem, Some("not JSON"));
        assert!(to_entry("e3", 1_000, "{}", &judge(r#"{"eventType":"Connect"}"#)).is_none());
    }
}
