//! Optional pseudonymisation of device identifiers (`sourceIp`,
//! `principalId`, …) before incidents are stored or alerted. AWS IoT's log
//! guide warns that whoever reads the logs sees device debugging
//! information; operators who copy incidents into a table and an e-mail
//! may not want those identifiers to travel further.
//!
//! A value becomes `redacted:` and 16 hex digits of HMAC-SHA256 under the
//! deployment's key: the same device keeps the same pseudonym (incidents
//! still group by it), and without the key an IPv4 address cannot be found
//! by hashing all 2³² candidates.

use std::ops::Range;

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

use crate::json::unescape::unescape_json_string;
use crate::model::category::Category;
use crate::model::record::Incident;

/// Shorter keys make the pseudonyms guessable.
pub const MIN_KEY_BYTES: usize = 16;

/// Values shorter than this are not searched for inside free text
/// (`details`): a two-character principal would match everywhere.
const MIN_VALUE_CHARS: usize = 4;

/// More distinct redacted values than this in one line and the line is
/// withheld instead of scrubbed (scrubbing costs strings × values).
pub const MAX_REDACTED_VALUES: usize = 64;

/// Keys whose values classification reads: never scrubbed (a device named
/// `Failure` must not rewrite `status`), only replaced when redacted by name.
const CLASSIFYING_KEYS: &[&str] = &[
    "eventType",
    "EventType",
    "status",
    "logLevel",
    "eventName",
    "EventName",
    "eventSource",
    "EventSource",
    "errorCode",
    "ErrorCode",
];

/// What the tokenizer found: the changes to make, in order, and the
/// strings inside values replaced whole (an object under a redacted name),
/// which are scrubbed wherever else they appear.
struct Tokens {
    changes: Vec<(Range<usize>, Change)>,
    inner: Vec<String>,
}

/// What a message becomes when it cannot be read for redaction: its text
/// is withheld rather than stored or sent with identifiers in it.
pub const WITHHELD_MESSAGE: &str = r#"{"redaction":"withheld: this log line could not be read for redaction (REDACT_FIELDS), so its text is not kept; it is in the log group"}"#;

#[derive(Clone)]
pub struct Redactor {
    fields: Vec<String>,
    mac: Hmac<Sha256>,
}

impl std::fmt::Debug for Redactor {
    // Never print the key.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Redactor")
            .field("fields", &self.fields)
            .finish_non_exhaustive()
    }
}

/// One change to a message's text: the bytes of a value (or string) and
/// what replaces them.
enum Change {
    /// A redacted field's value: becomes the pseudonym of `original`.
    Pseudonym { original: String },
    /// Any other string: scrubbed of every redacted value it contains.
    Text { unescaped: String },
}

impl Redactor {
    /// `fields`: the names whose values are replaced, at any depth. Names
    /// match whatever their case (`sourceip` redacts `sourceIp`): a
    /// redactor errs on the side of redacting.
    pub fn new(fields: Vec<String>, key: &[u8]) -> Self {
        Self {
            fields,
            mac: Hmac::new_from_slice(key).expect("HMAC takes keys of any length"),
        }
    }

    pub fn fields(&self) -> &[String] {
        &self.fields
    }

    fn redacts(&self, name: &str) -> bool {
        self.fields.iter().any(|f| f.eq_ignore_ascii_case(name))
    }

    /// The pseudonym of one value.
    pub fn pseudonym(&self, value: &str) -> String {
        let mut mac = self.mac.clone();
        mac.update(value.as_bytes());
        let digest = mac.finalize().into_bytes();
        let mut out = String::with_capacity(9 + 16);
        out.push_str("redacted:");
        for byte in &digest[..8] {
            out.push_str(&format!("{byte:02x}"));
        }
        out
    }

    /// Replaces the configured fields' values in the incident's message (at
    /// any depth, so CloudTrail's `userIdentity.principalId` too, and every
    /// one of repeated keys), and every copy of those values in the
    /// message's other strings and in the incident's own fields.
    ///
    /// Fails closed: the message is read by a tokenizer that takes whatever
    /// JSON the entry parser takes (numbers of any size, any depth, lone
    /// surrogates); a message it cannot read is [withheld](WITHHELD_MESSAGE)
    /// when it mentions a redacted field's name, whatever the case. Plain
    /// text lines that mention none are kept as they came.
    pub fn redact(&self, incident: &mut Incident) {
        let Ok(Tokens { changes, inner }) =
            string_tokens(&incident.message, |key| self.redacts(key))
        else {
            let lower = incident.message.to_ascii_lowercase();
            if incident.category != Category::Unparseable
                || self
                    .fields
                    .iter()
                    .any(|f| lower.contains(&f.to_ascii_lowercase()))
            {
                self.withhold(incident);
            }
            return;
        };
        // Every redacted value, longest first (so a value inside a longer
        // one is not replaced first), each once.
        let mut found: Vec<String> = changes
            .iter()
            .filter_map(|(_, change)| match change {
                Change::Pseudonym { original } => Some(original.clone()),
                Change::Text { .. } => None,
            })
            .chain(inner)
            .collect();
        if found.is_empty() {
            return;
        }
        found.sort_unstable_by(|a, b| b.len().cmp(&a.len()).then_with(|| a.cmp(b)));
        found.dedup();
        if found.len() > MAX_REDACTED_VALUES {
            // Scrubbing costs strings × values: a line made of thousands of
            // redacted values is withheld rather than scrubbed for seconds.
            self.withhold(incident);
            return;
        }
        let found: Vec<(String, String, usize)> = found
            .into_iter()
            .map(|original| {
                let chars = original.chars().count();
                let pseudonym = self.pseudonym(&original);
                (original, pseudonym, chars)
            })
            .collect();
        let scrub = |text: &str| -> Option<String> {
            let mut out: Option<String> = None;
            for (original, pseudonym, chars) in &found {
                let current = out.as_deref().unwrap_or(text);
                if *chars >= MIN_VALUE_CHARS && current.contains(original.as_str()) {
                    out = Some(current.replace(original.as_str(), pseudonym));
                }
            }
            out
        };
        let message = &incident.message;
        let mut rewritten = String::with_capacity(message.len() + 64);
        let mut copied = 0;
        for (range, change) in &changes {
            let replacement = match change {
                Change::Pseudonym { original } => Some(self.pseudonym(original)),
                Change::Text { unescaped } => scrub(unescaped),
            };
            if let Some(text) = replacement {
                rewritten.push_str(&message[copied..range.start]);
                rewritten.push_str(&serde_json::to_string(&text).expect("a string serialises"));
                copied = range.end;
            }
        }
        rewritten.push_str(&message[copied..]);
        incident.message = rewritten;
        // The incident's own copies. Identifiers: the whole value when its
        // field is redacted or it is a redacted value (however short).
        // Free text: every redacted value inside it. The event type is what
        // classification and subscriptions' filters read: never touched.
        let exact = |text: &str| {
            found
                .iter()
                .find(|(original, _, _)| original == text)
                .map(|(_, pseudonym, _)| pseudonym.clone())
        };
        for (name, value) in [
            ("clientId", &mut incident.client_id),
            ("ruleName", &mut incident.rule_name),
            ("accountId", &mut incident.account_id),
        ] {
            if let Some(text) = value.as_mut() {
                if self.redacts(name) {
                    *text = self.pseudonym(text);
                } else if let Some(pseudonym) = exact(text) {
                    *text = pseudonym;
                }
            }
        }
        if self.redacts("traceId") || exact(&incident.trace_id).is_some() {
            incident.trace_id = self.pseudonym(&incident.trace_id);
        } else if let Some(scrubbed) = scrub(&incident.trace_id) {
            incident.trace_id = scrubbed;
        }
        for text in [&mut incident.reason, &mut incident.details]
            .into_iter()
            .flatten()
        {
            if let Some(pseudonym) = exact(text) {
                *text = pseudonym;
            } else if let Some(scrubbed) = scrub(text) {
                *text = scrubbed;
            }
        }
    }

    /// Fails closed: the message's text is withheld, and the incident's own
    /// copies of redacted fields become pseudonyms.
    fn withhold(&self, incident: &mut Incident) {
        incident.message = WITHHELD_MESSAGE.to_owned();
        incident.details = None;
        for (name, value) in [
            ("clientId", &mut incident.client_id),
            ("ruleName", &mut incident.rule_name),
            ("accountId", &mut incident.account_id),
            ("reason", &mut incident.reason),
        ] {
            if let Some(text) = value.as_mut().filter(|_| self.redacts(name)) {
                *text = self.pseudonym(text);
            }
        }
        if self.redacts("traceId") {
            incident.trace_id = self.pseudonym(&incident.trace_id);
        }
    }
}

/// Where a JSON value ends, for a value starting at `at` that is a number or a literal.
fn scalar_end(bytes: &[u8], mut at: usize) -> usize {
    while at < bytes.len()
        && !matches!(bytes[at], b',' | b'}' | b']' | b' ' | b'\t' | b'\n' | b'\r')
    {
        at += 1;
    }
    at
}

/// Where the string starting with the quote at `at` ends (after its closing quote).
fn string_end(bytes: &[u8], mut at: usize) -> Result<usize, ()> {
    at += 1;
    while at < bytes.len() {
        match bytes[at] {
            b'"' => return Ok(at + 1),
            b'\\' => at += 2,
            b if b < 0x20 => return Err(()),
            _ => at += 1,
        }
    }
    Err(())
}

/// A string's text; a string whose escapes do not decode (a lone
/// surrogate) is taken as written, which is just as deterministic.
fn string_text(quoted: &str) -> String {
    let mut text = String::new();
    match unescape_json_string(quoted, &mut text) {
        Some(()) => text,
        None => quoted[1..quoted.len() - 1].to_owned(),
    }
}

/// Every string of a JSON text, and every value of a key that `redacted`
/// names (whatever its type: a number or an object under such a key is
/// replaced whole), in order. Iterative, so no depth is too deep; numbers
/// are never converted, so no number is too large. `Err` for text that is
/// not one JSON value.
fn string_tokens(json: &str, redacted: impl Fn(&str) -> bool) -> Result<Tokens, ()> {
    #[derive(Clone, Copy, PartialEq)]
    enum In {
        Object,
        Array,
    }
    let bytes = json.as_bytes();
    let mut changes = Vec::new();
    let mut inner = Vec::new();
    let mut stack: Vec<In> = Vec::new();
    // The open container (its depth and start) whose value is redacted whole.
    let mut redacting: Option<(usize, usize)> = None;
    let mut at = 0;
    let skip_ws = |at: &mut usize| {
        while *at < bytes.len() && matches!(bytes[*at], b' ' | b'\t' | b'\n' | b'\r') {
            *at += 1;
        }
    };
    loop {
        skip_ws(&mut at);
        // `{}` and `[]`: nothing to read, straight to the closing below
        // (after a comma this cannot happen: a trailing comma is refused).
        let empty = matches!(
            (stack.last(), bytes.get(at)),
            (Some(In::Object), Some(b'}')) | (Some(In::Array), Some(b']'))
        );
        // In an object, the key first; its value is redacted when it names a field.
        // Keys are the log's own vocabulary: never rewritten.
        let mut redact_value = false;
        let mut scrub_value = true;
        if stack.last() == Some(&In::Object) && !empty {
            if bytes.get(at) != Some(&b'"') {
                return Err(());
            }
            let end = string_end(bytes, at)?;
            let key = string_text(&json[at..end]);
            redact_value = redacted(&key) && redacting.is_none();
            scrub_value = !CLASSIFYING_KEYS.contains(&key.as_str());
            at = end;
            skip_ws(&mut at);
            if bytes.get(at) != Some(&b':') {
                return Err(());
            }
            at += 1;
            skip_ws(&mut at);
        }
        if !empty {
            let start = at;
            match bytes.get(at) {
                Some(b'"') => {
                    let end = string_end(bytes, at)?;
                    let text = string_text(&json[at..end]);
                    if redact_value {
                        changes.push((start..end, Change::Pseudonym { original: text }));
                    } else if redacting.is_some() {
                        inner.push(text);
                    } else if scrub_value {
                        changes.push((start..end, Change::Text { unescaped: text }));
                    }
                    at = end;
                }
                Some(b'{') | Some(b'[') => {
                    stack.push(if bytes[at] == b'{' {
                        In::Object
                    } else {
                        In::Array
                    });
                    if redact_value {
                        redacting = Some((stack.len(), start));
                    }
                    at += 1;
                    continue;
                }
                Some(b'-' | b'0'..=b'9' | b't' | b'f' | b'n') => {
                    let end = scalar_end(bytes, at);
                    if serde_json::from_str::<serde::de::IgnoredAny>(&json[at..end]).is_err() {
                        return Err(());
                    }
                    if redact_value {
                        changes.push((
                            start..end,
                            Change::Pseudonym {
                                original: json[start..end].to_owned(),
                            },
                        ));
                    }
                    at = end;
                }
                _ => return Err(()),
            }
        }
        // After a value: a comma, or the end of one or more containers.
        loop {
            skip_ws(&mut at);
            match (stack.last(), bytes.get(at)) {
                (None, None) => return Ok(Tokens { changes, inner }),
                (None, Some(_)) => return Err(()),
                (Some(_), Some(b',')) => {
                    at += 1;
                    skip_ws(&mut at);
                    if matches!(bytes.get(at), Some(b'}' | b']')) {
                        return Err(());
                    }
                    break;
                }
                (Some(In::Object), Some(b'}')) | (Some(In::Array), Some(b']')) => {
                    at += 1;
                    if let Some((depth, start)) = redacting {
                        if depth == stack.len() {
                            redacting = None;
                            changes.push((
                                start..at,
                                Change::Pseudonym {
                                    original: json[start..at].to_owned(),
                                },
                            ));
                        }
                    }
                    stack.pop();
                }
                _ => return Err(()),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::record::{incident, judge};

    use serde_json::Value;

    const KEY: &[u8] = b"0123456789abcdef-test-key";

    fn redactor() -> Redactor {
        Redactor::new(
            vec![
                "sourceIp".into(),
                "principalId".into(),
                "sourceIPAddress".into(),
            ],
            KEY,
        )
    }

    fn incident_of(message: &str) -> Incident {
        incident("e1", 1_000, message, &judge(message)).unwrap()
    }

    #[test]
    fn pseudonyms_are_stable_keyed_and_short() {
        let r = redactor();
        let p = r.pseudonym("203.0.113.7");
        assert_eq!(p, r.pseudonym("203.0.113.7"));
        assert_ne!(p, r.pseudonym("203.0.113.8"));
        assert_ne!(
            p,
            Redactor::new(vec![], b"another key, just as long").pseudonym("203.0.113.7")
        );
        assert!(p.starts_with("redacted:") && p.len() == 25, "{p}");
    }

    #[test]
    fn identifiers_are_replaced_in_the_message_and_in_free_text() {
        let mut i = incident_of(
            r#"{"timestamp":"2026-11-22 09:10:05.000","logLevel":"ERROR","traceId":"t1","status":"Failure","eventType":"Connect","clientId":"thermostat-0","principalId":"145179c40e22","sourceIp":"203.0.113.7","sourcePort":50300,"reason":"AUTHORIZATION_FAILURE","details":"Connection from 203.0.113.7 refused for 145179c40e22"}"#,
        );
        redactor().redact(&mut i);
        for secret in ["203.0.113.7", "145179c40e22"] {
            assert!(!i.message.contains(secret), "{}", i.message);
            assert!(!i.details.as_deref().unwrap().contains(secret));
        }
        let entry: Value = serde_json::from_str(&i.message).unwrap();
        assert_eq!(entry["sourceIp"], redactor().pseudonym("203.0.113.7"));
        assert_eq!(entry["sourcePort"], 50300, "other fields are kept");
        assert_eq!(entry["clientId"], "thermostat-0");
        assert_eq!(entry["traceId"], "t1");
        assert!(i
            .details
            .as_deref()
            .unwrap()
            .contains(&redactor().pseudonym("203.0.113.7")));
    }

    #[test]
    fn nested_cloudtrail_identifiers_are_replaced() {
        let mut i = incident_of(
            r#"{"eventVersion":"1.08","userIdentity":{"type":"IAMUser","principalId":"AIDAEXAMPLE1234"},"eventTime":"2026-11-22T09:00:00Z","eventSource":"iot.amazonaws.com","eventName":"AttachPolicy","sourceIPAddress":"198.51.100.4","errorCode":"AccessDenied","errorMessage":"User AIDAEXAMPLE1234 is not authorized","requestID":"r1","eventType":"AwsApiCall"}"#,
        );
        redactor().redact(&mut i);
        assert!(!i.message.contains("AIDAEXAMPLE1234") && !i.message.contains("198.51.100.4"));
        assert!(!i.details.as_deref().unwrap().contains("AIDAEXAMPLE1234"));
        assert_eq!(i.trace_id, "r1");
    }

    #[test]
    fn without_identifiers_the_message_is_left_byte_for_byte() {
        let message = r#"{"timestamp":"2026-11-22 09:10:05.000","logLevel":"ERROR","traceId":"t2","status":"Failure","eventType":"RuleNotFound","ruleName":"r"}"#;
        let mut i = incident_of(message);
        redactor().redact(&mut i);
        assert_eq!(i.message, message);
        let mut garbage = incident_of("203.0.113.7 is not JSON");
        redactor().redact(&mut garbage);
        assert_eq!(
            garbage.message, "203.0.113.7 is not JSON",
            "unparseable lines have no fields to find"
        );
    }

    /// Issue 16 (3): where the entry parser reads a message, so does the
    /// redactor; repeated keys are all redacted; names match in any case.
    #[test]
    fn redaction_fails_closed_on_whatever_the_entry_parser_accepts() {
        let r = Redactor::new(
            vec!["sourceip".into(), "clientid".into(), "principalId".into()],
            KEY,
        );
        let deep = format!("{}1{}", "[".repeat(200), "]".repeat(200));
        for extra in [
            r#""n":1e400"#.to_owned(),
            format!(r#""deep":{deep}"#),
            r#""odd":"\ud800""#.to_owned(),
            r#""sourceIp":"198.51.100.99""#.to_owned(),
        ] {
            let message = format!(
                r#"{{"eventType":"Connect","status":"Failure","clientId":"victim-7","sourceIp":"203.0.113.5",{extra},"details":"from 203.0.113.5 and 198.51.100.99 as victim-7"}}"#
            );
            let mut i = incident_of(&message);
            assert_eq!(i.category, Category::Failure, "{message}");
            r.redact(&mut i);
            let duplicate = extra.contains("198.51.100.99");
            for secret in ["203.0.113.5", "victim-7"]
                .into_iter()
                .chain(duplicate.then_some("198.51.100.99"))
            {
                assert!(!i.message.contains(secret), "{extra}: {}", i.message);
                assert!(
                    !i.details.as_deref().unwrap_or_default().contains(secret),
                    "{extra}"
                );
                assert!(!i.client_id.as_deref().unwrap().contains(secret), "{extra}");
            }
            assert_eq!(
                i.client_id.as_deref(),
                Some(r.pseudonym("victim-7").as_str())
            );
            let entry = crate::model::entry::parse_entry(&i.message).expect("still an entry");
            assert_eq!(
                entry.get(crate::model::entry::Field::Status),
                Some("Failure")
            );
            if extra.starts_with(r#""n""#) {
                assert!(i.message.contains("1e400"), "numbers kept as written");
            }
        }
    }

    #[test]
    fn values_of_any_type_under_a_redacted_name_are_replaced_whole() {
        let mut i = incident_of(
            r#"{"eventType":"Connect","status":"Failure","sourceIp":3405803781,"principalId":{"id":"abc","n":[1]},"keep":{"sourceIp":"10.0.0.1"},"short":"ab"}"#,
        );
        redactor().redact(&mut i);
        assert!(
            !i.message.contains("3405803781") && !i.message.contains("abc"),
            "{}",
            i.message
        );
        assert!(!i.message.contains("10.0.0.1"), "{}", i.message);
        let entry: serde_json::Value = serde_json::from_str(&i.message).unwrap();
        assert_eq!(entry["sourceIp"], redactor().pseudonym("3405803781"));
        assert_eq!(
            entry["principalId"],
            redactor().pseudonym(r#"{"id":"abc","n":[1]}"#)
        );
        assert_eq!(entry["short"], "ab");
    }

    #[test]
    fn a_line_that_cannot_be_read_is_withheld_when_it_names_a_redacted_field() {
        let mut truncated = incident_of(r#"{"eventType":"Connect","sourceIp":"203.0.113.5","deta"#);
        assert_eq!(truncated.category, Category::Unparseable);
        redactor().redact(&mut truncated);
        assert_eq!(truncated.message, WITHHELD_MESSAGE);
        let mut v1 = incident_of("2017-08-10 15:37:23.476 TRACEID:t PRINCIPALID:145179c40e2 [INFO] EVENT:MQTT Client Connect");
        redactor().redact(&mut v1);
        assert_eq!(v1.message, WITHHELD_MESSAGE, "names match in any case");
    }

    /// Review of issue 16: the strings inside a value redacted whole are
    /// scrubbed elsewhere too; a device named like a status, an event type
    /// or a key rewrites none of them; thousands of values are withheld.
    #[test]
    fn inner_values_are_scrubbed_and_device_names_rewrite_no_classification() {
        let r = Redactor::new(vec!["userIdentity".into()], KEY);
        let mut i = incident_of(
            r#"{"eventVersion":"1.08","userIdentity":{"type":"IAMUser","arn":"arn:aws:iam::1111:user/alice"},"eventSource":"iot.amazonaws.com","eventName":"AttachPolicy","errorCode":"AccessDenied","errorMessage":"User: arn:aws:iam::1111:user/alice is not authorized","requestID":"r1","eventType":"AwsApiCall"}"#,
        );
        r.redact(&mut i);
        assert!(!i.message.contains("alice"), "{}", i.message);
        assert!(!i.details.as_deref().unwrap().contains("alice"));
        assert_eq!(
            crate::model::record::judge(&i.message).category(),
            Some(Category::Failure)
        );

        let r = Redactor::new(vec!["clientId".into()], KEY);
        for name in ["Failure", "Connect", "eventType", "status", "ERROR"] {
            let message = format!(
                r#"{{"logLevel":"ERROR","status":"Failure","eventType":"Connect","clientId":"{name}","reason":"AUTHORIZATION_FAILURE"}}"#
            );
            let mut i = incident_of(&message);
            r.redact(&mut i);
            let entry = crate::model::entry::parse_entry(&i.message).expect("still an entry");
            assert_eq!(entry.status(), Some("Failure"), "{name}: {}", i.message);
            assert_eq!(entry.event_type.as_str(), "Connect", "{name}");
            assert_eq!(entry.log_level(), Some("ERROR"), "{name}");
            assert_eq!(i.event_type.as_deref(), Some("Connect"), "{name}");
            assert_eq!(i.client_id.as_deref(), Some(r.pseudonym(name).as_str()));
        }
    }

    #[test]
    fn a_line_of_thousands_of_redacted_values_is_withheld_not_scrubbed() {
        let pairs: Vec<String> = (0..14_000)
            .map(|n| format!(r#""sourceIp":"v{n:05}""#))
            .collect();
        let message = format!(
            r#"{{"eventType":"Connect","status":"Failure",{}}}"#,
            pairs.join(",")
        );
        let mut i = incident_of(&message);
        let started = std::time::Instant::now();
        redactor().redact(&mut i);
        assert_eq!(i.message, WITHHELD_MESSAGE);
        assert!(
            started.elapsed() < std::time::Duration::from_secs(5),
            "bounded work"
        );
    }

    proptest::proptest! {
        /// The fail-closed direction: whatever serde_json reads as one JSON
        /// value, the tokenizer reads too (it may take a little more).
        #[test]
        fn the_tokenizer_reads_whatever_serde_json_reads(text in "[ \\[\\]{}:,\"a-c0-9.eE+\\-tfnrul\\\\]{0,40}") {
            if serde_json::from_str::<serde::de::IgnoredAny>(&text).is_ok() {
                proptest::prop_assert!(string_tokens(&text, |_| false).is_ok(), "{}", text);
            }
        }

        #[test]
        fn generated_json_is_read(value in proptest::collection::vec(("[a-z]{1,3}", "[ -~\u{80}-\u{2030}]{0,8}", 0i64..1000), 0..6)) {
            let object: serde_json::Map<String, Value> = value
                .into_iter()
                .map(|(k, s, n)| (k, serde_json::json!([s, n, {"x": null, "y": [true, false]}])))
                .collect();
            let text = serde_json::to_string_pretty(&Value::Object(object)).unwrap();
            proptest::prop_assert!(string_tokens(&text, |_| false).is_ok(), "{}", text);
        }
    }

    #[test]
    fn the_tokenizer_reads_exactly_one_json_value() {
        let ok = |t: &str| string_tokens(t, |_| false).is_ok();
        for good in [
            r#"{}"#,
            r#"[]"#,
            r#" { "a" : [ 1 , { } , [ ] , "x" ] } "#,
            r#""s""#,
            "1",
            r#"{"a":{"b":{}}}"#,
        ] {
            assert!(ok(good), "{good}");
        }
        for bad in [
            r#"{"a":1,}"#,
            r#"[1,]"#,
            r#"{"a"}"#,
            r#"{"a":1}x"#,
            r#"{"a":tru}"#,
            "",
            r#"{"a":"b"#,
            r#"{1:2}"#,
            "[1 2]",
        ] {
            assert!(!ok(bad), "{bad}");
        }
    }

    #[test]
    fn the_key_is_never_printed() {
        assert!(!format!("{:?}", redactor()).contains("0123456789abcdef"));
    }
}
