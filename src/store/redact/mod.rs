//! Optional pseudonymisation of device identifiers (`sourceIp`,
//! `principalId`, …) before entries are stored or alerted. AWS IoT's log
//! guide warns that whoever reads the logs sees device debugging
//! information; operators who copy entries into a table and an e-mail
//! may not want those identifiers to travel further.
//!
//! A value becomes `redacted:` and 16 hex digits of HMAC-SHA256 under the
//! deployment's key: the same device keeps the same pseudonym (entries
//! still group by it), and without the key an IPv4 address cannot be found
//! by hashing all 2³² candidates.

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

use crate::model::category::Category;
use crate::model::record::{Entry, FieldValue};
use crate::store::keys::hex64;

mod tokens;
use tokens::{string_tokens, Change, Tokens, CLASSIFYING_KEYS};

/// Shorter keys make the pseudonyms guessable.
pub const MIN_KEY_BYTES: usize = 16;

/// Values shorter than this are not searched for inside free text
/// (`details`): a two-character principal would match everywhere.
const MIN_VALUE_CHARS: usize = 4;

/// More distinct redacted values than this in one line and the line is
/// withheld instead of scrubbed (scrubbing costs strings × values).
pub const MAX_REDACTED_VALUES: usize = 64;

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
        format!("redacted:{}", hex64(&mac.finalize().into_bytes()))
    }

    /// Replaces the configured fields' values in the entry's message (at
    /// any depth, so CloudTrail's `userIdentity.principalId` too, and every
    /// one of repeated keys), and every copy of those values in the
    /// message's other strings and in the entry's own fields.
    ///
    /// Fails closed: the message is read by a tokenizer that takes whatever
    /// JSON the entry parser takes (numbers of any size, any depth, lone
    /// surrogates); a message it cannot read is [withheld](WITHHELD_MESSAGE)
    /// when it mentions a redacted field's name, whatever the case. Plain
    /// text lines that mention none are kept as they came.
    pub fn redact(&self, entry: &mut Entry) {
        let Ok(Tokens { changes, inner }) = string_tokens(&entry.message, |key| self.redacts(key))
        else {
            let lower = entry.message.to_ascii_lowercase();
            if entry.category != Category::Unparseable
                || self
                    .fields
                    .iter()
                    .any(|f| lower.contains(&f.to_ascii_lowercase()))
            {
                self.withhold(entry);
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
            self.withhold(entry);
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
        entry.message = self.rewrite(&entry.message, &changes, &scrub);
        // The fields the record read once, as the rewritten message holds
        // them: a redacted name's value whole, nested JSON rewritten the
        // same way, other text scrubbed (not the classifying fields').
        for (name, value) in &mut entry.fields {
            if self.redacts(name) {
                let original = match value {
                    FieldValue::Text(text) | FieldValue::Integer(text) | FieldValue::Json(text) => {
                        text.clone()
                    }
                    FieldValue::Bool(b) => b.to_string(),
                    FieldValue::Null => "null".to_owned(),
                };
                *value = FieldValue::Text(self.pseudonym(&original));
                continue;
            }
            match value {
                FieldValue::Text(text) if !CLASSIFYING_KEYS.contains(&name.as_str()) => {
                    if let Some(scrubbed) = scrub(text) {
                        *text = scrubbed;
                    }
                }
                FieldValue::Json(json) => match string_tokens(json, |key| self.redacts(key)) {
                    Ok(tokens) => *json = self.rewrite(json, &tokens.changes, &scrub),
                    Err(()) => *json = WITHHELD_MESSAGE.to_owned(),
                },
                _ => {}
            }
        }
        // The entry's own copies. Identifiers: the whole value when its
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
            ("clientId", &mut entry.client_id),
            ("ruleName", &mut entry.rule_name),
            ("accountId", &mut entry.account_id),
        ] {
            if let Some(text) = value.as_mut() {
                if self.redacts(name) {
                    *text = self.pseudonym(text);
                } else if let Some(pseudonym) = exact(text) {
                    *text = pseudonym;
                }
            }
        }
        if self.redacts("traceId") || exact(&entry.trace_id).is_some() {
            entry.trace_id = self.pseudonym(&entry.trace_id);
        } else if let Some(scrubbed) = scrub(&entry.trace_id) {
            entry.trace_id = scrubbed;
        }
        for text in [&mut entry.reason, &mut entry.details]
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

    /// `json` with each change made: a redacted value becomes its
    /// pseudonym, a string holding redacted values is scrubbed; the rest is
    /// kept byte for byte.
    fn rewrite(
        &self,
        json: &str,
        changes: &[(std::ops::Range<usize>, Change)],
        scrub: &impl Fn(&str) -> Option<String>,
    ) -> String {
        let mut rewritten = String::with_capacity(json.len() + 64);
        let mut copied = 0;
        for (range, change) in changes {
            let replacement = match change {
                Change::Pseudonym { original } => Some(self.pseudonym(original)),
                Change::Text { unescaped } => scrub(unescaped),
            };
            if let Some(text) = replacement {
                rewritten.push_str(&json[copied..range.start]);
                rewritten.push_str(&serde_json::to_string(&text).expect("a string serialises"));
                copied = range.end;
            }
        }
        rewritten.push_str(&json[copied..]);
        rewritten
    }

    /// Fails closed: the message's text and its fields are withheld, and
    /// the entry's own copies of redacted fields become pseudonyms.
    fn withhold(&self, entry: &mut Entry) {
        entry.message = WITHHELD_MESSAGE.to_owned();
        entry.fields.clear();
        entry.details = None;
        for (name, value) in [
            ("clientId", &mut entry.client_id),
            ("ruleName", &mut entry.rule_name),
            ("accountId", &mut entry.account_id),
            ("reason", &mut entry.reason),
        ] {
            if let Some(text) = value.as_mut().filter(|_| self.redacts(name)) {
                *text = self.pseudonym(text);
            }
        }
        if self.redacts("traceId") {
            entry.trace_id = self.pseudonym(&entry.trace_id);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::record::{judge, to_entry};

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

    fn entry_of(message: &str) -> Entry {
        to_entry("e1", 1_000, message, &judge(message)).unwrap()
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
        let mut i = entry_of(
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
        let mut i = entry_of(
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
        let mut i = entry_of(message);
        redactor().redact(&mut i);
        assert_eq!(i.message, message);
        let mut garbage = entry_of("203.0.113.7 is not JSON");
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
            let mut i = entry_of(&message);
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
        let mut i = entry_of(
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
        let mut truncated = entry_of(r#"{"eventType":"Connect","sourceIp":"203.0.113.5","deta"#);
        assert_eq!(truncated.category, Category::Unparseable);
        redactor().redact(&mut truncated);
        assert_eq!(truncated.message, WITHHELD_MESSAGE);
        let mut v1 = entry_of("2017-08-10 15:37:23.476 TRACEID:t PRINCIPALID:145179c40e2 [INFO] EVENT:MQTT Client Connect");
        redactor().redact(&mut v1);
        assert_eq!(v1.message, WITHHELD_MESSAGE, "names match in any case");
    }

    /// Review of issue 16: the strings inside a value redacted whole are
    /// scrubbed elsewhere too; a device named like a status, an event type
    /// or a key rewrites none of them; thousands of values are withheld.
    #[test]
    fn inner_values_are_scrubbed_and_device_names_rewrite_no_classification() {
        let r = Redactor::new(vec!["userIdentity".into()], KEY);
        let mut i = entry_of(
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
            let mut i = entry_of(&message);
            r.redact(&mut i);
            let entry = crate::model::entry::parse_entry(&i.message).expect("still an entry");
            assert_eq!(entry.status(), Some("Failure"), "{name}: {}", i.message);
            assert_eq!(entry.event_type.as_str(), "Connect", "{name}");
            assert_eq!(entry.log_level(), Some("ERROR"), "{name}");
            assert_eq!(i.event_type.as_deref(), Some("Connect"), "{name}");
            assert_eq!(i.client_id.as_deref(), Some(r.pseudonym(name).as_str()));
            // The fields stored beside the message read the same.
            for (field, value) in [
                ("status", "Failure"),
                ("eventType", "Connect"),
                ("logLevel", "ERROR"),
            ] {
                assert_eq!(i.field(field), Some(value), "{name}: {:?}", i.fields);
            }
        }
    }

    /// A value whose escapes do not decode (`\q`: a line the entry parser
    /// refuses, stored as unparseable) is still replaced, taken as written.
    #[test]
    fn a_value_whose_escapes_do_not_decode_is_replaced_as_written() {
        let mut i = entry_of(
            r#"{"eventType":"Connect","status":"Failure","sourceIp":"\q 203.0.113.7","reason":"AUTHORIZATION_FAILURE"}"#,
        );
        assert_eq!(i.category, Category::Unparseable);
        redactor().redact(&mut i);
        assert!(!i.message.contains("203.0.113.7"), "{}", i.message);
        let pseudonym = redactor().pseudonym(r"\q 203.0.113.7");
        assert!(i.message.contains(&pseudonym), "{}", i.message);
    }

    /// Values shorter than MIN_VALUE_CHARS are replaced where they are the
    /// whole value, never searched for inside free text, where a
    /// two-character principal would match everywhere.
    #[test]
    fn short_values_are_not_searched_for_in_free_text() {
        let mut i = entry_of(
            r#"{"eventType":"Connect","status":"Failure","traceId":"ab","principalId":"ab","reason":"AUTHORIZATION_FAILURE","details":"about absent tables"}"#,
        );
        i.trace_id = "ab".into();
        redactor().redact(&mut i);
        assert_eq!(
            i.field("principalId"),
            Some(redactor().pseudonym("ab").as_str())
        );
        // An identifier that is a redacted value is replaced, however short.
        assert_eq!(i.trace_id, redactor().pseudonym("ab"));
        assert_eq!(i.details.as_deref(), Some("about absent tables"));
        assert_eq!(i.field("details"), Some("about absent tables"));
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
        let mut i = entry_of(&message);
        redactor().redact(&mut i);
        assert_eq!(i.message, WITHHELD_MESSAGE);
    }

    /// The bound itself: MAX_REDACTED_VALUES distinct values are scrubbed,
    /// one more and the line is withheld.
    #[test]
    fn up_to_the_bound_of_redacted_values_a_line_is_scrubbed() {
        let line = |values: usize| {
            let pairs: Vec<String> = (0..values)
                .map(|n| format!(r#""sourceIp":"v{n:05}""#))
                .collect();
            format!(
                r#"{{"eventType":"Connect","status":"Failure",{}}}"#,
                pairs.join(",")
            )
        };
        let mut at_bound = entry_of(&line(MAX_REDACTED_VALUES));
        redactor().redact(&mut at_bound);
        assert_ne!(at_bound.message, WITHHELD_MESSAGE);
        assert!(!at_bound.message.contains("v00000"), "{}", at_bound.message);
        let mut over = entry_of(&line(MAX_REDACTED_VALUES + 1));
        redactor().redact(&mut over);
        assert_eq!(over.message, WITHHELD_MESSAGE);
    }

    /// Parse once: the item written from the fields redaction leaves on the
    /// record is the item reading the redacted message again would give, so
    /// its attributes and its `rawMessage` agree.
    #[test]
    fn the_redacted_fields_are_what_the_redacted_message_holds() {
        let r = Redactor::new(
            vec!["sourceIp".into(), "principalId".into(), "clientId".into()],
            KEY,
        );
        for message in [
            r#"{"eventType":"Connect","status":"Failure","clientId":"victim-1","sourceIp":"203.0.113.9","sourcePort":443,"details":"from 203.0.113.9 victim-1","n":1e400,"tags":["203.0.113.9",{"principalId":"p-1234"}]}"#,
            r#"{"eventVersion":"1.08","userIdentity":{"type":"IAMUser","principalId":"AIDAEXAMPLE1234"},"eventSource":"iot.amazonaws.com","eventName":"AttachPolicy","sourceIPAddress":"198.51.100.4","errorCode":"AccessDenied","errorMessage":"User AIDAEXAMPLE1234 is not authorized","requestID":"r1","eventType":"AwsApiCall"}"#,
            r#"{"eventType":"Connect","status":"Failure","clientId":123,"clientId":"victim-2","sourceIp":{"v4":"10.1.2.3"}}"#,
        ] {
            let mut i = entry_of(message);
            r.redact(&mut i);
            let again = entry_of(&i.message);
            let source = crate::store::item::Source {
                log_group: "g",
                log_stream: "s",
            };
            assert_eq!(
                crate::store::item::entry_item(&i, &source, 30, None),
                crate::store::item::entry_item(&again, &source, 30, None),
                "{}",
                i.message
            );
            for secret in [
                "victim-1",
                "victim-2",
                "203.0.113.9",
                "p-1234",
                "AIDAEXAMPLE1234",
                "10.1.2.3",
            ] {
                assert!(
                    !format!("{:?}", i.fields).contains(secret),
                    "{secret}: {:?}",
                    i.fields
                );
            }
        }
    }

    #[test]
    fn the_key_is_never_printed() {
        let printed = format!("{:?}", redactor());
        assert!(!printed.contains("0123456789abcdef"), "{printed}");
        // What is printed says which fields are redacted.
        for field in redactor().fields() {
            assert!(printed.contains(field.as_str()), "{printed}");
        }
    }
}
