//! The AWS IoT v2 log entry model, parsed from one log event's message.
//!
//! Every documented event type (message broker, Device Shadow, rules engine,
//! jobs, device provisioning) shares one flat model: the common attributes,
//! each type's own fields as optional typed values, and every other field
//! kept as raw JSON, so that new fields survive into storage untouched.
//! Strings borrow from the message text unless they hold escapes.

use std::borrow::Cow;
use std::fmt;

use serde::de::{Deserializer, MapAccess, Visitor};
use serde_json::value::RawValue;

use crate::model::essentials::{json_text, parse_object};
pub use crate::model::essentials::{parse_essentials, Essentials, NotAnEntry};
pub use crate::model::field::Field;

/// CloudTrail's name for AWS IoT's control plane.
pub const IOT_EVENT_SOURCE: &str = "iot.amazonaws.com";

/// The AWS IoT component that wrote an entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Component {
    MessageBroker,
    DeviceShadow,
    RulesEngine,
    Jobs,
    DeviceProvisioning,
    Unknown,
}

/// The documented event types; anything else is kept as `Other`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EventType<'a> {
    Connect,
    Subscribe,
    PublishIn,
    PublishOut,
    Disconnect,
    GetThingShadow,
    UpdateThingShadow,
    DeleteThingShadow,
    RuleMatch,
    FunctionExecution,
    StartingRuleExecution,
    RuleExecution,
    RuleNotFound,
    RuleMessageThrottled,
    GetPendingJobExecution,
    DescribeJobExecution,
    UpdateJobExecution,
    StartNextPendingJobExecution,
    ReportFinalJobExecutionCount,
    GetDeviceCredentials,
    ProvisionDevice,
    Other(Cow<'a, str>),
}

impl<'a> EventType<'a> {
    pub fn parse(name: Cow<'a, str>) -> Self {
        use EventType::*;
        match &*name {
            "Connect" => Connect,
            "Subscribe" => Subscribe,
            "Publish-In" => PublishIn,
            "Publish-Out" => PublishOut,
            "Disconnect" => Disconnect,
            "GetThingShadow" => GetThingShadow,
            "UpdateThingShadow" => UpdateThingShadow,
            "DeleteThingShadow" => DeleteThingShadow,
            "RuleMatch" => RuleMatch,
            "FunctionExecution" => FunctionExecution,
            "StartingRuleExecution" => StartingRuleExecution,
            "RuleExecution" => RuleExecution,
            "RuleNotFound" => RuleNotFound,
            "RuleMessageThrottled" => RuleMessageThrottled,
            "GetPendingJobExecution" => GetPendingJobExecution,
            "DescribeJobExecution" => DescribeJobExecution,
            "UpdateJobExecution" => UpdateJobExecution,
            "StartNextPendingJobExecution" => StartNextPendingJobExecution,
            "ReportFinalJobExecutionCount" => ReportFinalJobExecutionCount,
            "GetDeviceCredentials" => GetDeviceCredentials,
            "ProvisionDevice" => ProvisionDevice,
            _ => Other(name),
        }
    }

    pub fn as_str(&self) -> &str {
        use EventType::*;
        match self {
            Connect => "Connect",
            Subscribe => "Subscribe",
            PublishIn => "Publish-In",
            PublishOut => "Publish-Out",
            Disconnect => "Disconnect",
            GetThingShadow => "GetThingShadow",
            UpdateThingShadow => "UpdateThingShadow",
            DeleteThingShadow => "DeleteThingShadow",
            RuleMatch => "RuleMatch",
            FunctionExecution => "FunctionExecution",
            StartingRuleExecution => "StartingRuleExecution",
            RuleExecution => "RuleExecution",
            RuleNotFound => "RuleNotFound",
            RuleMessageThrottled => "RuleMessageThrottled",
            GetPendingJobExecution => "GetPendingJobExecution",
            DescribeJobExecution => "DescribeJobExecution",
            UpdateJobExecution => "UpdateJobExecution",
            StartNextPendingJobExecution => "StartNextPendingJobExecution",
            ReportFinalJobExecutionCount => "ReportFinalJobExecutionCount",
            GetDeviceCredentials => "GetDeviceCredentials",
            ProvisionDevice => "ProvisionDevice",
            Other(name) => name,
        }
    }

    pub fn component(&self) -> Component {
        use EventType::*;
        match self {
            Connect | Subscribe | PublishIn | PublishOut | Disconnect => Component::MessageBroker,
            GetThingShadow | UpdateThingShadow | DeleteThingShadow => Component::DeviceShadow,
            RuleMatch
            | FunctionExecution
            | StartingRuleExecution
            | RuleExecution
            | RuleNotFound
            | RuleMessageThrottled => Component::RulesEngine,
            GetPendingJobExecution
            | DescribeJobExecution
            | UpdateJobExecution
            | StartNextPendingJobExecution
            | ReportFinalJobExecutionCount => Component::Jobs,
            GetDeviceCredentials | ProvisionDevice => Component::DeviceProvisioning,
            Other(_) => Component::Unknown,
        }
    }
}

impl fmt::Display for EventType<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One AWS IoT log entry.
#[derive(Debug, Clone)]
pub struct LogEntry<'a> {
    pub event_type: EventType<'a>,
    text: [Option<Cow<'a, str>>; Field::COUNT],
    /// `sourcePort`, the one documented number.
    pub source_port: Option<u64>,
    /// `resources`, an object whose keys depend on the rule action.
    pub resources: Option<&'a RawValue>,
    /// Every other attribute, and any known one whose value had an unexpected type.
    pub other: Vec<(Cow<'a, str>, &'a RawValue)>,
}

impl<'a> LogEntry<'a> {
    pub fn get(&self, field: Field) -> Option<&str> {
        self.text[field as usize].as_deref()
    }

    pub fn timestamp(&self) -> Option<&str> {
        self.get(Field::Timestamp)
    }
    pub fn log_level(&self) -> Option<&str> {
        self.get(Field::LogLevel)
    }
    pub fn trace_id(&self) -> Option<&str> {
        self.get(Field::TraceId).filter(|t| !t.is_empty())
    }
    pub fn account_id(&self) -> Option<&str> {
        self.get(Field::AccountId)
    }
    pub fn status(&self) -> Option<&str> {
        self.get(Field::Status)
    }
    pub fn client_id(&self) -> Option<&str> {
        self.get(Field::ClientId)
    }
    pub fn rule_name(&self) -> Option<&str> {
        self.get(Field::RuleName)
    }
    pub fn reason(&self) -> Option<&str> {
        self.get(Field::Reason)
    }
    pub fn details(&self) -> Option<&str> {
        self.get(Field::Details)
    }
    pub fn job_id(&self) -> Option<&str> {
        self.get(Field::JobId)
    }

    /// The fields classification reads, borrowed.
    pub fn essentials(&self) -> Essentials<'_> {
        Essentials::from_fields(self.event_type.as_str(), |field| self.get(field))
    }

    /// `Some` for a CloudTrail record of an API call rather than an IoT log entry.
    pub fn cloudtrail(&self) -> Option<ApiCall<'_>> {
        self.essentials().is_cloudtrail().then(|| ApiCall {
            event_name: self.get(Field::EventName).unwrap_or_default(),
            request_id: self
                .get(Field::RequestId)
                .filter(|id| !id.is_empty())
                .or(self.get(Field::EventId).filter(|id| !id.is_empty())),
            event_time: self.get(Field::EventTime),
            error_code: self.get(Field::ErrorCode).filter(|c| !c.is_empty()),
            error_message: self.get(Field::ErrorMessage).filter(|m| !m.is_empty()),
            account_id: self
                .get(Field::RecipientAccountId)
                .filter(|a| !a.is_empty()),
        })
    }
}

/// What an incident needs from a CloudTrail record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ApiCall<'e> {
    pub event_name: &'e str,
    /// `requestID`, else `eventID`: unique per call, stable across redeliveries.
    pub request_id: Option<&'e str>,
    pub event_time: Option<&'e str>,
    pub error_code: Option<&'e str>,
    pub error_message: Option<&'e str>,
    pub account_id: Option<&'e str>,
}

/// Parses one message. Never fails the batch: anything that is not an entry
/// is reported so that the caller can keep it as `Unparseable`.
pub fn parse_entry(message: &str) -> Result<LogEntry<'_>, NotAnEntry> {
    parse_object::<Parsed>(message)?
        .0
        .ok_or(NotAnEntry::NoEventType)
}

struct Parsed<'a>(Option<LogEntry<'a>>);

impl<'de> serde::Deserialize<'de> for Parsed<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_map(EntryVisitor)
    }
}

struct EntryVisitor;

impl<'de> Visitor<'de> for EntryVisitor {
    type Value = Parsed<'de>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an AWS IoT log entry object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut event_type = None;
        let mut text: [Option<Cow<'de, str>>; Field::COUNT] = Default::default();
        let mut source_port = None;
        let mut resources = None;
        let mut other = Vec::new();
        while let Some(key) = map.next_key::<Cow<'de, str>>()? {
            let value: &'de RawValue = map.next_value()?;
            match &*key {
                "eventType" | "EventType" => match json_text(value) {
                    Some(name) => event_type = Some(EventType::parse(name)),
                    None => other.push((key, value)),
                },
                "sourcePort" => match value.get().parse::<u64>() {
                    Ok(port) => source_port = Some(port),
                    Err(_) => other.push((key, value)),
                },
                "resources" => resources = Some(value),
                name => match (Field::from_name(name), json_text(value)) {
                    (Some(field), Some(s)) => text[field as usize] = Some(s),
                    _ => other.push((key, value)),
                },
            }
        }
        Ok(Parsed(event_type.map(|event_type| LogEntry {
            event_type,
            text,
            source_port,
            resources,
            other,
        })))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::essentials::Slot;

    #[test]
    fn the_slots_are_the_fields_classification_reads_under_every_name() {
        let expected = Slot::of_field;
        assert!(Field::NAMES.len() > Field::ALL.len(), "aliases listed");
        for &(name, field) in Field::NAMES {
            assert_eq!(Slot::of(name.as_bytes()), expected(field), "{name}");
            assert_eq!(Field::from_name(name), Some(field), "{name}");
        }
        for name in ["eventType", "EventType"] {
            assert_eq!(Slot::of(name.as_bytes()), Some(Slot::EventType));
        }
        for name in [
            "",
            "e",
            "Status",
            "eventtype",
            "eventTypes",
            "logLevel\0",
            "éventType",
        ] {
            assert_eq!(Slot::of(name.as_bytes()), None, "{name}");
        }
    }

    #[test]
    fn known_fields_are_typed_and_unknown_ones_kept() {
        let msg = r#"{"timestamp":"2017-08-10 15:37:23.476","logLevel":"INFO","traceId":"t-1","accountId":"123",
            "status":"Success","eventType":"Connect","protocol":"MQTT","clientId":"c1","sourcePort":13490,
            "brandNew":{"nested":[1,2]},"ruleName":7}"#;
        let e = parse_entry(msg).unwrap();
        assert_eq!(e.event_type, EventType::Connect);
        assert_eq!(e.event_type.component(), Component::MessageBroker);
        assert_eq!(e.timestamp(), Some("2017-08-10 15:37:23.476"));
        assert_eq!(e.trace_id(), Some("t-1"));
        assert_eq!(e.get(Field::Protocol), Some("MQTT"));
        assert_eq!(e.source_port, Some(13490));
        assert_eq!(e.rule_name(), None, "a number is not a rule name");
        let other: Vec<_> = e.other.iter().map(|(k, v)| (k.as_ref(), v.get())).collect();
        assert_eq!(
            other,
            [("brandNew", r#"{"nested":[1,2]}"#), ("ruleName", "7")]
        );
    }

    #[test]
    fn strings_borrow_unless_escaped() {
        let msg =
            r#"{"eventType":"RuleNotFound","ruleName":"plain","details":"Rule \"x\" not found"}"#;
        let e = parse_entry(msg).unwrap();
        assert!(matches!(
            e.text[Field::RuleName as usize],
            Some(Cow::Borrowed(_))
        ));
        assert_eq!(e.details(), Some(r#"Rule "x" not found"#));
    }

    #[test]
    fn unknown_event_types_are_kept_generically() {
        let e = parse_entry(r#"{"eventType":"SomethingNew2030","status":"Failure"}"#).unwrap();
        assert_eq!(e.event_type, EventType::Other("SomethingNew2030".into()));
        assert_eq!(e.event_type.component(), Component::Unknown);
        assert_eq!(e.status(), Some("Failure"));
    }

    #[test]
    fn jobs_entries_without_trace_id_are_normal() {
        let e = parse_entry(r#"{"logLevel":"DEBUG","status":"Success","eventType":"DescribeJobExecution","jobId":"002"}"#)
            .unwrap();
        assert_eq!(e.trace_id(), None);
        assert_eq!(e.job_id(), Some("002"));
        assert_eq!(e.event_type.component(), Component::Jobs);
    }

    #[test]
    fn non_entries_say_why() {
        assert_eq!(
            parse_entry("2017-08-10 15:37:23 TRACEID:x PRINCIPALID:y [INFO] EVENT:MQTT")
                .unwrap_err(),
            NotAnEntry::NotJson
        );
        assert_eq!(
            parse_entry(r#"{"eventType":"Connect","#).unwrap_err(),
            NotAnEntry::NotJson
        );
        assert_eq!(parse_entry("[1,2]").unwrap_err(), NotAnEntry::NotAnObject);
        assert_eq!(
            parse_entry(r#""just a string""#).unwrap_err(),
            NotAnEntry::NotAnObject
        );
        assert_eq!(
            parse_entry(r#"{"logLevel":"ERROR"}"#).unwrap_err(),
            NotAnEntry::NoEventType
        );
        assert_eq!(
            parse_entry(r#"{"eventType":42}"#).unwrap_err(),
            NotAnEntry::NoEventType
        );
        assert_eq!(parse_entry("").unwrap_err(), NotAnEntry::NotJson);
        let deep = format!("{}{}", "{\"a\":".repeat(5000), "}".repeat(5000));
        assert_eq!(
            parse_entry(&deep).unwrap_err(),
            NotAnEntry::NotJson,
            "recursion limit, not a stack overflow"
        );
    }
}
