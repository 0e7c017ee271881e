//! Which log entries are incidents, and of what kind.

use std::borrow::Cow;

use crate::model::category::Category;
use crate::model::entry::{Essentials, LogEntry, IOT_EVENT_SOURCE};

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
    use crate::model::entry::parse_entry;

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
            .to_string()
            .contains("RuleNotFound"));
    }
}
