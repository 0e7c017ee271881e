//! Which incident an entry belongs to: what an operator fixes. Rule problems
//! per rule (rule action failures per rule and action), device-side failures
//! per event type and reason across the fleet (never per client), CloudTrail
//! failures per API and error code, job failures per job, unparseable lines
//! per log group. The README's key table is this file.

use serde::{Deserialize, Serialize};

use crate::model::category::Category;
use crate::model::record::Entry;
use crate::store::keys::{hex64, truncate_str};

/// What an incident key is made of, after its category.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum KeyKind {
    /// `RuleNotFound`, `RuleMessageThrottled`: the rule.
    Rule,
    /// Any other failure that names a rule (`RuleExecution` …): rule and action.
    RuleAction,
    /// Device-side failures and warnings: event type and reason.
    Operation,
    /// CloudTrail: the API called and its error code.
    ApiCall,
    /// Jobs: event type and job id.
    Job,
    /// Unparseable lines: the log group they came from.
    LogGroup,
    /// The keys of one category that a batch brought past the storm budget,
    /// counted together (one per category; see [`IncidentKey::overflow`]).
    Overflow,
}

impl KeyKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Rule => "rule",
            Self::RuleAction => "ruleAction",
            Self::Operation => "operation",
            Self::ApiCall => "apiCall",
            Self::Job => "job",
            Self::LogGroup => "logGroup",
            Self::Overflow => "overflow",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [
            Self::Rule,
            Self::RuleAction,
            Self::Operation,
            Self::ApiCall,
            Self::Job,
            Self::LogGroup,
            Self::Overflow,
        ]
        .into_iter()
        .find(|k| k.as_str() == s)
    }

    /// The names of the key's two parts, as attributes and in notifications.
    pub fn part_names(self) -> (&'static str, Option<&'static str>) {
        match self {
            Self::Rule => ("rule", None),
            Self::RuleAction => ("rule", Some("action")),
            Self::Operation => ("eventType", Some("reason")),
            Self::ApiCall => ("api", Some("errorCode")),
            Self::Job => ("eventType", Some("jobId")),
            Self::LogGroup => ("logGroup", None),
            Self::Overflow => ("overflow", None),
        }
    }
}

/// Every part of a key keeps at most this much of what the log said: names
/// chosen by devices or by whoever writes to the log group stay bounded.
pub const MAX_KEY_PART_BYTES: usize = 256;

/// What an incident is about. Two entries with equal keys belong to the
/// same incident.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct IncidentKey {
    pub category: Category,
    pub kind: KeyKind,
    pub first: String,
    pub second: Option<String>,
}

impl IncidentKey {
    /// The key's id in the incident table: 16 hex digits of SHA-256 over the
    /// key's (bounded) parts, so table keys are bounded whatever a name holds,
    /// and a crafted name cannot collide with another problem's key.
    pub fn hash(&self) -> String {
        use sha2::{Digest, Sha256};
        let mut h = Sha256::new();
        h.update(self.category.as_str());
        h.update([0]);
        h.update(self.kind.as_str());
        h.update([0]);
        h.update(self.first.as_bytes());
        if let Some(second) = &self.second {
            h.update([0]);
            h.update(second.as_bytes());
        }
        hex64(&h.finalize())
    }

    /// The part a person reads first: the rule, the event type, the API.
    pub fn subject(&self) -> &str {
        &self.first
    }

    /// The overflow key of `category`: where a batch counts the keys it
    /// brought past the storm budget. No entry has it ([`key_of`] never
    /// gives the kind [`KeyKind::Overflow`], and the hash covers the kind),
    /// so it cannot collide with a real key however a device names things.
    pub fn overflow(category: Category) -> Self {
        Self {
            category,
            kind: KeyKind::Overflow,
            first: OVERFLOW_PART.to_owned(),
            second: None,
        }
    }

    pub fn is_overflow(&self) -> bool {
        self.kind == KeyKind::Overflow
    }
}

/// The overflow key's one part, as notifications and `incidents` show it.
pub const OVERFLOW_PART: &str = "keys past the storm budget";

fn present(value: Option<&str>) -> Option<&str> {
    value.filter(|v| !v.is_empty())
}

fn bounded(value: &str) -> String {
    truncate_str(value, MAX_KEY_PART_BYTES).to_owned()
}

/// The incident an entry belongs to. Parts are cut to
/// [`MAX_KEY_PART_BYTES`]; the hash is taken over the cut parts, so what is
/// stored and what is hashed agree.
pub fn key_of(entry: &Entry, log_group: &str) -> IncidentKey {
    let event_type = present(entry.event_type.as_deref()).unwrap_or("unknown");
    let (kind, first, second) = match entry.category {
        Category::Unparseable => (KeyKind::LogGroup, log_group, None),
        Category::RuleNotFound | Category::RuleMessageThrottled => {
            let rule = present(entry.rule_name.as_deref())
                .or_else(|| present(entry.field("topicName")))
                .unwrap_or("unknown");
            (KeyKind::Rule, rule, None)
        }
        _ if entry.cloudtrail => (
            KeyKind::ApiCall,
            event_type,
            Some(present(entry.reason.as_deref()).unwrap_or("")),
        ),
        _ => {
            if let Some(rule) = present(entry.rule_name.as_deref()) {
                let action = present(entry.field("ruleAction")).unwrap_or("");
                (KeyKind::RuleAction, rule, Some(action))
            } else if let Some(job) = present(entry.field("jobId")) {
                (KeyKind::Job, event_type, Some(job))
            } else {
                let reason = present(entry.reason.as_deref()).unwrap_or("");
                (KeyKind::Operation, event_type, Some(reason))
            }
        }
    };
    IncidentKey {
        category: entry.category,
        kind,
        first: bounded(first),
        second: second.map(bounded),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::record::{judge, to_entry};

    fn key(message: &str) -> IncidentKey {
        key_of(
            &to_entry("e", 0, message, &judge(message)).expect("an entry"),
            "AWSIotLogsV2",
        )
    }

    #[test]
    fn device_failures_are_one_incident_per_event_type_and_reason_whatever_the_client() {
        let a = key(
            r#"{"eventType":"Connect","status":"Failure","clientId":"a","reason":"AUTHORIZATION_FAILURE"}"#,
        );
        let b = key(
            r#"{"eventType":"Connect","status":"Failure","clientId":"b","reason":"AUTHORIZATION_FAILURE"}"#,
        );
        assert_eq!(a, b);
        assert_eq!(a.kind, KeyKind::Operation);
        let other_reason = key(
            r#"{"eventType":"Connect","status":"Failure","clientId":"a","reason":"DUPLICATE_CLIENT_ID"}"#,
        );
        let other_event = key(
            r#"{"eventType":"Publish-In","status":"Failure","clientId":"a","reason":"AUTHORIZATION_FAILURE"}"#,
        );
        assert_ne!(a.hash(), other_reason.hash());
        assert_ne!(a.hash(), other_event.hash());
    }

    #[test]
    fn rule_problems_are_keyed_by_rule_and_rule_actions_by_rule_and_action() {
        let throttled = key(
            r#"{"eventType":"RuleMessageThrottled","status":"Failure","ruleName":"r1","clientId":"x"}"#,
        );
        assert_eq!(
            (throttled.kind, throttled.first.as_str()),
            (KeyKind::Rule, "r1")
        );
        let lambda = key(
            r#"{"eventType":"RuleExecution","status":"Failure","ruleName":"r1","ruleAction":"LambdaAction"}"#,
        );
        let s3 = key(
            r#"{"eventType":"RuleExecution","status":"Failure","ruleName":"r1","ruleAction":"S3Action"}"#,
        );
        assert_eq!(lambda.kind, KeyKind::RuleAction);
        assert_ne!(lambda, s3);
        assert_ne!(throttled.hash(), lambda.hash());
    }

    #[test]
    fn cloudtrail_failures_are_keyed_by_api_and_error_code_and_jobs_by_job() {
        let call = key(
            r#"{"eventVersion":"1.08","eventType":"AwsApiCall","eventSource":"iot.amazonaws.com","eventName":"AttachPolicy","errorCode":"AccessDenied","requestID":"r"}"#,
        );
        assert_eq!(
            (call.kind, call.first.as_str(), call.second.as_deref()),
            (KeyKind::ApiCall, "AttachPolicy", Some("AccessDenied"))
        );
        let job = key(
            r#"{"eventType":"UpdateJobExecution","status":"Failure","jobId":"002","clientId":"t"}"#,
        );
        assert_eq!(
            (job.kind, job.second.as_deref()),
            (KeyKind::Job, Some("002"))
        );
    }

    #[test]
    fn keys_are_bounded_and_long_names_stay_apart() {
        let long = |tail: &str| {
            key(&format!(
                r#"{{"eventType":"Connect","status":"Failure","reason":"{}{tail}"}}"#,
                "x".repeat(5000)
            ))
        };
        let (a, b) = (long("a"), long("b"));
        assert!(a.second.as_ref().unwrap().len() <= MAX_KEY_PART_BYTES);
        assert_eq!(a.hash().len(), 16);
        // Cut to the same bound, the two reasons are one incident: bounded
        // storage wins over telling apart reasons that differ after 256 bytes.
        assert_eq!(a, b);
    }

    /// No entry's key is an overflow key, whatever its names spell: not a
    /// rule named like the overflow's part or its kind, nor one that packs
    /// the hash's separators into its name.
    #[test]
    fn no_name_a_device_chooses_is_the_overflow_key() {
        let overflow = IncidentKey::overflow(Category::RuleNotFound);
        for rule in [
            OVERFLOW_PART,
            "overflow",
            // JSON escapes: the names hold NUL, the hash's separator.
            r"overflow\u0000keys past the storm budget",
            r"\u0000overflow\u0000keys past the storm budget",
        ] {
            let k = key(&format!(
                r#"{{"eventType":"RuleNotFound","status":"Failure","ruleName":"{rule}"}}"#
            ));
            assert_eq!(k.kind, KeyKind::Rule, "{rule}");
            assert_ne!(k.hash(), overflow.hash(), "{rule}");
        }
        assert_ne!(
            overflow.hash(),
            IncidentKey::overflow(Category::Failure).hash(),
            "one per category"
        );
        assert_eq!(KeyKind::parse("overflow"), Some(KeyKind::Overflow));
    }
}
