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

use hmac::{Hmac, KeyInit, Mac};
use serde_json::Value;
use sha2::Sha256;

use crate::classify::Category;
use crate::incident::Incident;

/// Shorter keys make the pseudonyms guessable.
pub const MIN_KEY_BYTES: usize = 16;

/// Values shorter than this are not searched for inside free text
/// (`details`): a two-character principal would match everywhere.
const MIN_VALUE_CHARS: usize = 4;

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
    /// `fields`: the names whose string values are replaced, at any depth.
    pub fn new(fields: Vec<String>, key: &[u8]) -> Self {
        Self {
            fields,
            mac: Hmac::new_from_slice(key).expect("HMAC takes keys of any length"),
        }
    }

    pub fn fields(&self) -> &[String] {
        &self.fields
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
    /// any depth, so CloudTrail's `userIdentity.principalId` too) and every
    /// copy of those values in its free text. Unparseable lines are left as
    /// they are: there are no fields to find in them.
    pub fn redact(&self, incident: &mut Incident) {
        if incident.category == Category::Unparseable {
            return;
        }
        let Ok(mut entry) = serde_json::from_str::<Value>(&incident.message) else {
            return;
        };
        let mut found = Vec::new();
        self.replace_fields(&mut entry, &mut found);
        if found.is_empty() {
            return;
        }
        found.sort_by_key(|(original, _)| std::cmp::Reverse(original.len()));
        found.dedup();
        let scrub = |text: &mut String| {
            for (original, pseudonym) in &found {
                if original.chars().count() >= MIN_VALUE_CHARS && text.contains(original.as_str()) {
                    *text = text.replace(original.as_str(), pseudonym);
                }
            }
        };
        scrub_strings(&mut entry, &scrub);
        incident.message = entry.to_string();
        for text in [
            &mut incident.details,
            &mut incident.reason,
            &mut incident.client_id,
        ]
        .into_iter()
        .flatten()
        {
            scrub(text);
        }
    }

    fn replace_fields(&self, value: &mut Value, found: &mut Vec<(String, String)>) {
        match value {
            Value::Object(map) => {
                for (name, field) in map.iter_mut() {
                    match field {
                        Value::String(text) if self.fields.iter().any(|f| f == name) => {
                            let pseudonym = self.pseudonym(text);
                            found.push((std::mem::replace(text, pseudonym.clone()), pseudonym));
                        }
                        _ => self.replace_fields(field, found),
                    }
                }
            }
            Value::Array(items) => items
                .iter_mut()
                .for_each(|item| self.replace_fields(item, found)),
            _ => {}
        }
    }
}

fn scrub_strings(value: &mut Value, scrub: &impl Fn(&mut String)) {
    match value {
        Value::String(text) if !text.starts_with("redacted:") => scrub(text),
        Value::Object(map) => map.values_mut().for_each(|v| scrub_strings(v, scrub)),
        Value::Array(items) => items.iter_mut().for_each(|v| scrub_strings(v, scrub)),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode::RawLogEvent;
    use crate::incident::{incident, judge};

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
        let event = RawLogEvent {
            id: "e1".into(),
            timestamp: 1_000,
            message_json: "\"x\"",
            category: None,
        };
        incident(&event, message, &judge(message)).unwrap()
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

    #[test]
    fn the_key_is_never_printed() {
        assert!(!format!("{:?}", redactor()).contains("0123456789abcdef"));
    }
}
