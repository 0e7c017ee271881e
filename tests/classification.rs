//! Every example of the AWS IoT log documentation parses into the model and
//! classifies as documented; real-world variants beside them.

mod common;

use std::collections::BTreeSet;

use common::repo_path;
use iot_log_monitor::model::category::Category;
use iot_log_monitor::model::classify::classify;
use iot_log_monitor::model::entry::{parse_entry, Component, EventType, Field, LogEntry};
use iot_log_monitor::model::record::category_of_message;

struct Example {
    name: String,
    expected: Option<Category>,
    line: String,
}

fn seed_examples() -> Vec<Example> {
    let text = std::fs::read_to_string(repo_path("tests/fixtures/seed-examples.json")).unwrap();
    let fixtures: Vec<serde_json::Value> = serde_json::from_str(&text).unwrap();
    fixtures
        .into_iter()
        .map(|f| Example {
            name: f["name"].as_str().unwrap().to_owned(),
            expected: f["expected"].as_str().map(|c| c.parse().unwrap()),
            line: f["entry"].to_string(),
        })
        .collect()
}

/// The names the model recovered, typed or kept: nothing may be dropped.
fn recovered_fields(entry: &LogEntry<'_>) -> BTreeSet<String> {
    let mut names: BTreeSet<String> = Field::ALL
        .iter()
        .filter(|f| entry.get(**f).is_some())
        .map(|f| f.name().to_owned())
        .collect();
    names.insert("eventType".into());
    if entry.source_port.is_some() {
        names.insert("sourcePort".into());
    }
    if entry.resources.is_some() {
        names.insert("resources".into());
    }
    names.extend(entry.other.iter().map(|(k, _)| k.to_string()));
    names
}

#[test]
fn every_documented_example_parses_keeps_every_field_and_classifies() {
    let examples = seed_examples();
    assert_eq!(examples.len(), 21, "the documentation has 21 JSON examples");
    for example in &examples {
        let entry =
            parse_entry(&example.line).unwrap_or_else(|e| panic!("{}: {e:?}", example.name));
        assert_eq!(entry.event_type.as_str(), example.name);
        assert!(
            !matches!(entry.event_type, EventType::Other(_)),
            "{} is a documented type",
            example.name
        );
        assert_ne!(entry.event_type.component(), Component::Unknown);
        let original: serde_json::Map<String, serde_json::Value> =
            serde_json::from_str(&example.line).unwrap();
        let original: BTreeSet<String> = original.keys().cloned().collect();
        assert_eq!(
            recovered_fields(&entry),
            original,
            "{}: fields lost or invented",
            example.name
        );
        assert_eq!(classify(&entry), example.expected, "{}", example.name);
    }
    let incidents: Vec<_> = examples
        .iter()
        .filter(|e| e.expected.is_some())
        .map(|e| e.name.as_str())
        .collect();
    assert_eq!(incidents, ["RuleNotFound", "RuleMessageThrottled"]);
}

#[test]
fn components_follow_the_documentation_sections() {
    let component = |name: &str| EventType::parse(name.into()).component();
    for (names, expected) in [
        (
            &[
                "Connect",
                "Subscribe",
                "Publish-In",
                "Publish-Out",
                "Disconnect",
            ][..],
            Component::MessageBroker,
        ),
        (
            &["GetThingShadow", "UpdateThingShadow", "DeleteThingShadow"][..],
            Component::DeviceShadow,
        ),
        (
            &[
                "RuleMatch",
                "FunctionExecution",
                "StartingRuleExecution",
                "RuleExecution",
                "RuleNotFound",
                "RuleMessageThrottled",
            ][..],
            Component::RulesEngine,
        ),
        (
            &[
                "GetPendingJobExecution",
                "DescribeJobExecution",
                "UpdateJobExecution",
                "StartNextPendingJobExecution",
                "ReportFinalJobExecutionCount",
            ][..],
            Component::Jobs,
        ),
        (
            &["GetDeviceCredentials", "ProvisionDevice"][..],
            Component::DeviceProvisioning,
        ),
    ] {
        for name in names {
            assert_eq!(component(name), expected, "{name}");
            assert_eq!(EventType::parse((*name).into()).as_str(), *name);
        }
    }
}

/// The fixtures are the documentation's examples, verbatim: checked against
/// the seed document itself where it is present (always in CI).
#[test]
fn fixtures_match_the_seed_document() {
    let seeds = repo_path("../shared/seeds");
    let Some(doc) = std::fs::read_dir(&seeds)
        .ok()
        .into_iter()
        .flatten()
        .flatten()
        .find(|e| e.file_name().to_string_lossy().starts_with("000_"))
    else {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must see ../shared/seeds"
        );
        eprintln!("../shared/seeds not present; fixture sync not checked");
        return;
    };
    let text = std::fs::read_to_string(doc.path()).unwrap();
    let mut from_doc = Vec::new();
    for block in text.split("```").skip(1).step_by(2) {
        if let Ok(value) = serde_json::from_str::<serde_json::Value>(block.trim()) {
            if value.get("eventType").is_some() {
                from_doc.push(value);
            }
        }
    }
    let fixtures: Vec<serde_json::Value> = seed_examples()
        .iter()
        .map(|e| serde_json::from_str(&e.line).unwrap())
        .collect();
    assert_eq!(from_doc, fixtures);
}

/// The CloudTrail record the monitoring guide shows (its `AttachPolicy`
/// example, PascalCase keys and all), verbatim from the seed document.
#[test]
fn the_guides_cloudtrail_record_is_read_as_an_api_call() {
    let fixture =
        std::fs::read_to_string(repo_path("tests/fixtures/cloudtrail-attach-policy.json")).unwrap();
    let fixture: serde_json::Value = serde_json::from_str(&fixture).unwrap();
    match std::fs::read_dir(repo_path("../shared/seeds"))
        .ok()
        .into_iter()
        .flatten()
        .flatten()
        .find(|e| e.file_name().to_string_lossy().starts_with("003_"))
    {
        Some(doc) => {
            let text = std::fs::read_to_string(doc.path()).unwrap();
            let at = text
                .find(r#"{ "timestamp":"1460159496""#)
                .expect("the example is in the guide");
            let mut stream =
                serde_json::Deserializer::from_str(&text[at..]).into_iter::<serde_json::Value>();
            assert_eq!(stream.next().unwrap().unwrap(), fixture);
        }
        None => assert!(
            std::env::var_os("CI").is_none(),
            "CI must see ../shared/seeds"
        ),
    }

    let line = fixture.to_string();
    let entry = parse_entry(&line).unwrap();
    let call = entry.cloudtrail().expect("a CloudTrail record");
    assert_eq!(call.event_name, "AttachPolicy");
    assert_eq!(
        call.request_id,
        Some("d4875df2-fde4-11e5-b829-23bf9b56cbcd")
    );
    assert_eq!(call.event_time, Some("2016-04-08T23:51:36Z"));
    assert_eq!(
        call.error_code, None,
        "ErrorCode is empty: the call succeeded"
    );
    assert_eq!(classify(&entry), None);
    assert_eq!(category_of_message(&line), None);

    let mut denied = fixture.clone();
    denied["ErrorCode"] = "UnauthorizedException".into();
    let denied = denied.to_string();
    assert_eq!(
        classify(&parse_entry(&denied).unwrap()),
        Some(Category::Failure)
    );
    assert_eq!(category_of_message(&denied), Some(Category::Failure));

    for (line, expected) in [
        (
            r#"{"eventType":"AwsApiCall","eventSource":"iot.amazonaws.com","eventName":"CreateThing","errorCode":"ResourceAlreadyExistsException"}"#,
            Some(Category::Failure),
        ),
        (
            r#"{"eventType":"AwsApiCall","eventSource":"s3.amazonaws.com","eventName":"GetObject","errorCode":"AccessDenied"}"#,
            None,
        ),
        (
            r#"{"eventType":"AwsApiCall","eventSource":"iot.amazonaws.com","eventName":"ListThings"}"#,
            None,
        ),
        // Without eventName it is no CloudTrail record: an IoT entry of a new type.
        (
            r#"{"eventType":"AwsApiCall","status":"Failure"}"#,
            Some(Category::Failure),
        ),
    ] {
        assert_eq!(classify(&parse_entry(line).unwrap()), expected, "{line}");
        assert_eq!(category_of_message(line), expected, "{line}");
    }
}

#[test]
fn real_world_variants_classify_as_operators_expect() {
    let cases: &[(&str, Option<Category>)] = &[
        (
            r#"{"timestamp":"2026-11-22 09:10:05.000","logLevel":"ERROR","traceId":"a","accountId":"1","status":"Failure","eventType":"Connect","protocol":"MQTT","clientId":"t","reason":"AUTHORIZATION_FAILURE","details":"Authorization Failure"}"#,
            Some(Category::Failure),
        ),
        (
            r#"{"logLevel":"ERROR","accountId":"1","status":"Failure","eventType":"UpdateJobExecution","jobId":"j"}"#,
            Some(Category::Failure),
        ),
        (
            r#"{"logLevel":"ERROR","status":"Failure","eventType":"RuleExecution","ruleName":"r","ruleAction":"DynamoActionV2","reason":"DynamoActionFailure"}"#,
            Some(Category::Failure),
        ),
        (
            r#"{"logLevel":"WARN","status":"Success","eventType":"Publish-Out"}"#,
            Some(Category::Warning),
        ),
        (
            r#"{"logLevel":"INFO","status":"Success","eventType":"AnEventTypeFrom2031","brandNewField":true}"#,
            None,
        ),
        (
            r#"{"logLevel":"ERROR","status":"Failure","eventType":"AnEventTypeFrom2031"}"#,
            Some(Category::Failure),
        ),
        (
            r#"{"logLevel":"ERROR","status":"Failure","eventType":"RuleMessageThrottled","reason":"RuleExecutionThrottled"}"#,
            Some(Category::RuleMessageThrottled),
        ),
    ];
    for (line, expected) in cases {
        assert_eq!(classify(&parse_entry(line).unwrap()), *expected, "{line}");
    }
}
