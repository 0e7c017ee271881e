//! Which log entries are incidents, and of what kind.

use std::borrow::Cow;
use std::fmt;
use std::str::FromStr;

use crate::entry::{Essentials, LogEntry, IOT_EVENT_SOURCE};

/// An incident's category. Entries that are none of these are not incidents.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Category {
    /// A message was published to a rule that does not exist: every such message is dropped.
    RuleNotFound,
    /// The rules engine throttled a message: it was not processed.
    RuleMessageThrottled,
    /// Any other entry with `status: Failure` or `logLevel: ERROR`.
    Failure,
    /// `logLevel: WARN`.
    Warning,
    /// A log event that is not an IoT v2 JSON entry (legacy text, truncated JSON, no `eventType`).
    Unparseable,
}

impl Category {
    pub const ALL: [Category; 5] = [
        Self::RuleNotFound,
        Self::RuleMessageThrottled,
        Self::Failure,
        Self::Warning,
        Self::Unparseable,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::RuleNotFound => "RuleNotFound",
            Self::RuleMessageThrottled => "RuleMessageThrottled",
            Self::Failure => "Failure",
            Self::Warning => "Warning",
            Self::Unparseable => "Unparseable",
        }
    }

    /// For SNS filter policies: how urgently someone should look.
    pub fn severity(self) -> &'static str {
        match self {
            // Every message for the rule is being dropped until someone acts.
            Self::RuleNotFound => "critical",
            Self::RuleMessageThrottled | Self::Failure => "high",
            Self::Warning => "medium",
            Self::Unparseable => "low",
        }
    }

    pub fn index(self) -> usize {
        self as usize
    }
}

impl fmt::Display for Category {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl serde::Serialize for Category {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> serde::Deserialize<'de> for Category {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let name = std::borrow::Cow::<str>::deserialize(d)?;
        name.parse().map_err(serde::de::Error::custom)
    }
}

impl FromStr for Category {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|c| c.as_str().eq_ignore_ascii_case(s.trim()))
            .ok_or_else(|| {
                let names: Vec<_> = Self::ALL.iter().map(|c| c.as_str()).collect();
                format!(
                    "unknown category {s:?} (expected one of {})",
                    names.join(", ")
                )
            })
    }
}

/// Classifies a parsed entry; `None` means it is not an incident.
pub fn classify(entry: &LogEntry<'_>) -> Option<Category> {
    category_of(&entry.essentials())
}

/// The category of what a fast reader made of a message: its essentials'
/// category, or `Unparseable` when it is no entry (`None`).
pub fn category_of_read(entry: Option<&Essentials<'_>>) -> Option<Category> {
    match entry {
        Some(e) => category_of(e),
        None => Some(Category::Unparseable),
    }
}

/// The classification rule, over the only fields it reads.
///
/// The rule errors are recognised by `eventType` alone: AWS's own throttling
/// example carries `reason: RuleExecutionThrottled`, not the event type's name.
/// A CloudTrail record is a failure when an AWS IoT API call returned an
/// `errorCode`; records of other services' calls are not incidents.
pub fn category_of(e: &Essentials<'_>) -> Option<Category> {
    let is = |value: &Option<Cow<'_, str>>, expected: &str| {
        value
            .as_deref()
            .is_some_and(|v| v.eq_ignore_ascii_case(expected))
    };
    if e.is_cloudtrail() {
        let from_iot = e
            .event_source
            .as_deref()
            .is_none_or(|s| s == IOT_EVENT_SOURCE);
        let failed = e.error_code.as_deref().is_some_and(|c| !c.is_empty());
        return (from_iot && failed).then_some(Category::Failure);
    }
    match &*e.event_type {
        "RuleNotFound" => return Some(Category::RuleNotFound),
        "RuleMessageThrottled" => return Some(Category::RuleMessageThrottled),
        _ => {}
    }
    if is(&e.status, "Failure") || is(&e.log_level, "ERROR") {
        Some(Category::Failure)
    } else if is(&e.log_level, "WARN") || is(&e.log_level, "WARNING") {
        Some(Category::Warning)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::entry::parse_entry;

    fn class(msg: &str) -> Option<Category> {
        classify(&parse_entry(msg).unwrap())
    }

    #[test]
    fn status_and_level_decide_for_any_event_type() {
        assert_eq!(
            class(r#"{"eventType":"Connect","status":"Failure","logLevel":"INFO"}"#),
            Some(Category::Failure)
        );
        assert_eq!(
            class(r#"{"eventType":"Connect","status":"Success","logLevel":"ERROR"}"#),
            Some(Category::Failure)
        );
        assert_eq!(
            class(r#"{"eventType":"Future","status":"FAILURE"}"#),
            Some(Category::Failure)
        );
        assert_eq!(
            class(r#"{"eventType":"Publish-In","status":"Failure","logLevel":"WARN"}"#),
            Some(Category::Failure)
        );
        assert_eq!(
            class(r#"{"eventType":"Publish-In","status":"Success","logLevel":"WARN"}"#),
            Some(Category::Warning)
        );
        assert_eq!(
            class(r#"{"eventType":"Publish-In","status":"Success","logLevel":"INFO"}"#),
            None
        );
        assert_eq!(
            class(r#"{"eventType":"Publish-In","logLevel":"DEBUG"}"#),
            None
        );
        assert_eq!(class(r#"{"eventType":"Publish-In"}"#), None);
    }

    #[test]
    fn rule_errors_go_by_event_type_whatever_the_reason() {
        assert_eq!(
            class(r#"{"eventType":"RuleMessageThrottled","reason":"RuleExecutionThrottled"}"#),
            Some(Category::RuleMessageThrottled)
        );
        assert_eq!(
            class(r#"{"eventType":"RuleNotFound","logLevel":"INFO"}"#),
            Some(Category::RuleNotFound)
        );
        assert_eq!(
            class(r#"{"eventType":"RuleExecution","reason":"RuleNotFound","status":"Success"}"#),
            None
        );
    }

    #[test]
    fn category_names_round_trip() {
        for c in Category::ALL {
            assert_eq!(c.as_str().parse::<Category>(), Ok(c));
            assert_eq!(c.as_str().to_lowercase().parse::<Category>(), Ok(c));
        }
        assert!("Success"
            .parse::<Category>()
            .unwrap_err()
            .contains("RuleNotFound"));
    }
}
