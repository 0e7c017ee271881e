//! Entries stored in DynamoDB and incidents announced through SNS, against a
//! real moto server: items read back through DynamoDB, notifications through
//! an SQS queue subscribed to the topic. No SDK mocks.

mod common;

use std::time::Duration;

use common::{event, lines_of, opt, run, s, throttled_line, Stack};
use iot_log_monitor::error::ProcessError;
use iot_log_monitor::model::category::Category;

const NOW: i64 = 1_800_000_000_000;
const WAIT: Duration = Duration::from_secs(5);

fn mixed_lines() -> Vec<String> {
    let mut lines = Vec::new();
    for file in [
        "success-traffic",
        "rule-not-found",
        "authorization-failures",
        "job-failure",
        "garbage-lines",
        "warnings-and-new-types",
    ] {
        lines.extend(lines_of(&format!("events/lines/{file}.jsonl")));
    }
    lines
}

#[tokio::test]
async fn a_mixed_batch_is_stored_by_category_and_announced_per_incident() {
    let stack = Stack::new("mixed").await;
    let processor = stack.processor(&[]);
    let summary = run(&processor, &event("mixed", 1, &mixed_lines(), NOW), NOW).await;

    let count = |c: Category| summary.by_category[c.index()];
    assert_eq!(count(Category::RuleNotFound), 2);
    assert_eq!(
        count(Category::Failure),
        4 + 1 + 2,
        "authorization failures, the job failure, rule action and new event type"
    );
    assert_eq!(count(Category::Warning), 1);
    assert_eq!(count(Category::Unparseable), 3);
    assert_eq!(count(Category::RuleMessageThrottled), 0);

    let items = stack.entries().await;
    assert_eq!(items.len(), summary.stored);
    assert_eq!(
        items.len(),
        2 + 7 + 1 + 3,
        "every entry stored, no success traffic"
    );
    let job = items
        .iter()
        .find(|i| opt(i, "eventType").as_deref() == Some("UpdateJobExecution"))
        .unwrap();
    assert_eq!(s(job, "traceId"), "job:firmware-2026-11");
    assert_eq!(s(job, "category"), "Failure");
    assert_eq!(s(job, "jobId"), "firmware-2026-11");
    assert_eq!(s(job, "logGroup"), "AWSIotLogsV2");
    for garbage in items.iter().filter(|i| s(i, "category") == "Unparseable") {
        assert!(s(garbage, "traceId").starts_with("event:"));
        assert!(s(garbage, "traceId").ends_with(&s(garbage, "eventId")));
        assert!(!s(garbage, "rawMessage").is_empty());
    }
    let new_type = items
        .iter()
        .find(|i| opt(i, "eventType").as_deref() == Some("DeviceDefenderViolation2031"))
        .unwrap();
    assert_eq!(
        s(new_type, "newField"),
        r#"{"nested":[1,2,3]}"#,
        "unknown fields are kept"
    );

    let notifications = stack.notifications(WAIT).await;
    let mut subjects: Vec<_> = notifications.iter().map(|a| a.subject.as_str()).collect();
    subjects.sort();
    assert_eq!(
        subjects,
        [
            "[AWS IoT] OPEN Failure: eventType \"Connect\" (1 entry)",
            "[AWS IoT] OPEN Failure: eventType \"DeviceDefenderViolation2031\" (1 entry)",
            "[AWS IoT] OPEN Failure: eventType \"Publish-In\" (2 entries)",
            "[AWS IoT] OPEN Failure: eventType \"Subscribe\" (1 entry)",
            "[AWS IoT] OPEN Failure: eventType \"UpdateJobExecution\" (1 entry)",
            "[AWS IoT] OPEN Failure: rule \"StoreTelemetry\" (1 entry)",
            "[AWS IoT] OPEN RuleNotFound: rule \"example_rule\" (2 entries)",
        ],
        "one incident per problem: one per event type and reason, whatever the clients"
    );
    assert_eq!(summary.notifications_sent as usize, notifications.len());
    // Every entry of an incident category leads to its incident.
    let with_ids = items
        .iter()
        .filter(|i| opt(i, "incidentId").is_some())
        .count();
    assert_eq!(
        with_ids,
        2 + 7,
        "RuleNotFound and Failure entries; Warning and Unparseable open none"
    );
    let rule_notification = notifications
        .iter()
        .find(|a| a.subject.contains("RuleNotFound"))
        .unwrap();
    assert_eq!(rule_notification.attributes["category"], "RuleNotFound");
    assert_eq!(rule_notification.attributes["ruleName"], "example_rule");
    assert_eq!(rule_notification.attributes["severity"], "critical");
    assert_eq!(rule_notification.attributes["accountId"], "123456789012");
    assert_eq!(rule_notification.attributes["transition"], "opened");
    let body: serde_json::Value = serde_json::from_str(&rule_notification.message).unwrap();
    assert_eq!(body["entries"], 2);
    assert_eq!(body["details"], "Rule example_rule not found");
    assert_eq!(body["logGroup"], "AWSIotLogsV2");
    let incident_id = body["incidentId"].as_str().unwrap();
    let rule_entries: Vec<_> = items
        .iter()
        .filter(|i| s(i, "category") == "RuleNotFound")
        .collect();
    assert!(rule_entries
        .iter()
        .all(|i| s(i, "incidentId") == incident_id));
}

#[tokio::test]
async fn a_redelivered_batch_overwrites_and_announces_nothing_again() {
    let stack = Stack::new("redeliver").await;
    let processor = stack.processor(&[]);
    let batch = event("redeliver", 2, &mixed_lines(), NOW);
    let first = run(&processor, &batch, NOW).await;
    let items_after_first = stack.entries().await;
    let incidents_after_first = stack.current_incidents().await;
    assert!(!stack.notifications(WAIT).await.is_empty());

    let second = run(&processor, &batch, NOW + 1_000).await;
    assert_eq!(
        stack.entries().await,
        items_after_first,
        "same keys, same items (incident ids included), overwritten"
    );
    assert_eq!(second.notifications_sent, 0);
    assert_eq!(second.incidents_already_counted, first.incidents);
    assert!(
        stack.notifications_so_far().await.is_empty(),
        "no second notification"
    );
    let counts = |incidents: &[iot_log_monitor::incident::lifecycle::IncidentState]| {
        incidents
            .iter()
            .map(|i| (i.incident_id.clone(), i.entries, i.seq))
            .collect::<Vec<_>>()
    };
    assert_eq!(
        counts(&stack.current_incidents().await),
        counts(&incidents_after_first),
        "a redelivery is not counted again"
    );
}

#[tokio::test]
async fn a_storm_of_2000_throttled_entries_is_stored_and_announced_once() {
    let stack = Stack::new("storm").await;
    let processor = stack.processor(&[]);
    let mut sent = 0;
    let mut opened = 0;
    for batch in 0..4 {
        let lines: Vec<String> = (batch * 500..(batch + 1) * 500)
            .map(|n| throttled_line("telemetry_rule", n))
            .collect();
        let summary = run(
            &processor,
            &event("storm", 100 + batch as u64, &lines, NOW),
            NOW + batch as i64 * 1000,
        )
        .await;
        assert_eq!(summary.stored, 500);
        sent += summary.notifications_sent;
        opened += summary.incidents_opened;
    }
    assert_eq!(stack.entries().await.len(), 2000);
    assert_eq!((sent, opened), (1, 1));
    let notifications = stack.notifications(WAIT).await;
    assert_eq!(notifications.len(), 1);
    assert_eq!(
        notifications[0].subject,
        "[AWS IoT] OPEN RuleMessageThrottled: rule \"telemetry_rule\" (500 entries)"
    );
    let incidents = stack.current_incidents().await;
    assert_eq!((incidents.len(), incidents[0].entries), (1, 2000));
    assert_eq!(incidents[0].distinct_clients, 17);
}

#[tokio::test]
async fn an_oversized_entry_is_stored_trimmed() {
    let stack = Stack::new("oversized").await;
    let processor = stack.processor(&[]);
    let details = "x".repeat(700 * 1024);
    let line = format!(
        r#"{{"timestamp":"2026-11-22 10:00:00.000","logLevel":"ERROR","traceId":"big-1","status":"Failure","eventType":"Publish-In","clientId":"c","details":"{details}"}}"#
    );
    let summary = run(&processor, &event("oversized", 3, &[line], NOW), NOW).await;
    assert_eq!(summary.stored, 1);
    let items = stack.entries().await;
    assert_eq!(s(&items[0], "trimmed"), "true");
    assert!(s(&items[0], "details").len() < 10 * 1024);
    assert!(s(&items[0], "originalSize").parse::<usize>().unwrap() > 1_400_000);
}

#[tokio::test]
async fn unicode_names_are_kept_in_items_and_attributes_and_made_ascii_in_subjects() {
    let stack = Stack::new("unicode").await;
    let processor = stack.processor(&[]);
    let line = r#"{"timestamp":"2026-11-22 10:00:00.000","logLevel":"ERROR","traceId":"u-1","accountId":"123456789012","status":"Failure","eventType":"RuleNotFound","clientId":"capteur-é-😀","ruleName":"règle_温度","details":"Règle introuvable"}"#;
    run(
        &processor,
        &event("unicode", 4, &[line.to_owned()], NOW),
        NOW,
    )
    .await;
    let items = stack.entries().await;
    assert_eq!(s(&items[0], "ruleName"), "règle_温度");
    assert_eq!(s(&items[0], "clientId"), "capteur-é-😀");
    assert!(s(&items[0], "ruleDay").starts_with("règle_温度#2026-11-22#"));
    let notifications = stack.notifications(WAIT).await;
    assert_eq!(
        notifications[0].subject,
        "[AWS IoT] OPEN RuleNotFound: rule \"r?gle_??\" (1 entry)"
    );
    assert_eq!(notifications[0].attributes["ruleName"], "règle_温度");
    let body: serde_json::Value = serde_json::from_str(&notifications[0].message).unwrap();
    assert_eq!(body["key"][0][1], "règle_温度");
    assert_eq!(body["topClients"][0], "capteur-é-😀");
}

#[tokio::test]
async fn nothing_is_announced_when_entries_cannot_be_stored() {
    let stack = Stack::new("nostore").await;
    let processor = stack.processor(&[("ENTRIES_TABLE", "no-such-table")]);
    let error = processor
        .process(
            &event("nostore", 5, &mixed_lines(), NOW),
            NOW,
            common::far_deadline(),
        )
        .await
        .unwrap_err();
    assert!(matches!(error, ProcessError::Store(_)), "{error}");
    assert!(error.to_string().contains("no-such-table"), "{error}");
    assert!(stack.notifications_so_far().await.is_empty());
    let incidents = stack.current_incidents().await;
    assert!(
        !incidents.is_empty(),
        "counted before storing, so entries carry their ids"
    );
    assert!(
        incidents.iter().all(|i| i.sent == 0 && i.claim.is_none()),
        "no notification claimed: {incidents:?}"
    );
    // Nor does the sweep announce them: the batch's retry will, once stored.
    let swept = common::sweep(&stack.processor(&[]), NOW + 60_000).await;
    assert_eq!(swept.notifications_sent, 0, "{swept:?}");
    assert!(stack.notifications_so_far().await.is_empty());
}

#[tokio::test]
async fn categories_not_configured_are_neither_stored_nor_announced() {
    let stack = Stack::new("narrow").await;
    let processor = stack.processor(&[
        ("STORE_CATEGORIES", "RuleNotFound"),
        ("ALERT_CATEGORIES", "none"),
    ]);
    let summary = run(&processor, &event("narrow", 6, &mixed_lines(), NOW), NOW).await;
    assert_eq!(
        summary.by_category[Category::Failure.index()],
        7,
        "still counted"
    );
    let items = stack.entries().await;
    assert_eq!(items.len(), 2);
    assert!(items.iter().all(|i| s(i, "category") == "RuleNotFound"));
    assert!(stack.notifications_so_far().await.is_empty());
    assert!(
        stack.current_incidents().await.is_empty(),
        "no incident categories"
    );
}

/// The figure the issue asks for: requests made for 1,000 failures over 10 rules.
#[tokio::test]
async fn a_thousand_failures_over_ten_rules_take_forty_writes_and_one_publish() {
    use common::fault_proxy::{FaultProxy, Service};
    let stack = Stack::new("thousand").await;
    // A proxy without faults, to count the requests the function makes.
    let proxy = FaultProxy::start(&common::moto().endpoint, vec![], 0, Duration::ZERO);
    let processor = stack.processor_on(&common::sdk_config(&proxy.endpoint).await, &[]);
    let lines: Vec<String> = (0..1000)
        .map(|n| throttled_line(&format!("rule_{}", n % 10), n))
        .collect();
    let summary = run(&processor, &event("thousand", 7, &lines, NOW), NOW).await;
    assert_eq!(summary.stored, 1000);
    assert_eq!(
        summary.write_requests, 40,
        "1000 items / 25 per BatchWriteItem"
    );
    assert_eq!(summary.notifications_sent, 10);
    assert_eq!(
        summary.publish_requests, 1,
        "10 notifications in one PublishBatch"
    );
    assert_eq!(stack.notifications(WAIT).await.len(), 10);
    let requests = proxy.requests();
    let count = |service, op: &str| {
        requests
            .get(&(service, op.to_owned()))
            .copied()
            .unwrap_or(0)
    };
    assert_eq!(count(Service::DynamoDb, "BatchWriteItem"), 40);
    // Ten new incidents: each a read (none open), the minute's place for
    // its opening and one transaction that opens it with the batch's
    // marker; then a claim and a confirmation per notification. (Before the
    // markers: a failed first try, a read and an opening UpdateItem each.)
    assert_eq!(count(Service::DynamoDb, "GetItem"), 10, "{requests:?}");
    assert_eq!(
        count(Service::DynamoDb, "TransactWriteItems"),
        10,
        "{requests:?}"
    );
    assert_eq!(
        count(Service::DynamoDb, "UpdateItem"),
        10 * 3,
        "{requests:?}"
    );
    assert_eq!(count(Service::Sns, "PublishBatch"), 1);
}

/// Unprocessed items are written again, once, by the same invocation: one
/// batch, one delivery, the first BatchWriteItem answered with half its
/// writes unprocessed. Dropping them would leave those entries missing
/// (nothing else writes them here).
#[tokio::test]
async fn unprocessed_items_are_written_again_until_stored() {
    use common::fault_proxy::{Fault, FaultProxy, Rule, Service};
    let stack = Stack::new("unprocessed").await;
    let rule = Rule::First {
        service: Service::DynamoDb,
        op: "BatchWriteItem",
        count: 1,
        fault: Fault::PartialBatch,
    };
    let proxy = FaultProxy::start(&common::moto().endpoint, vec![rule], 0, Duration::ZERO);
    let processor = stack.processor_on(&common::sdk_config(&proxy.endpoint).await, &[]);
    let lines: Vec<String> = (0..20).map(|n| throttled_line("rule_u", n)).collect();
    let summary = run(&processor, &event("unprocessed", 3, &lines, NOW), NOW).await;
    assert_eq!(
        proxy
            .injected()
            .get(&(Service::DynamoDb, Fault::PartialBatch)),
        Some(&1),
        "the fault happened"
    );
    assert_eq!(summary.stored, 20);
    assert_eq!(
        stack.entries().await.len(),
        20,
        "every entry is in the table"
    );
    assert_eq!(
        proxy.requests()[&(Service::DynamoDb, "BatchWriteItem".to_owned())],
        2,
        "the unprocessed half was sent once more"
    );
    assert_eq!(
        (summary.write_requests, summary.write_retries),
        (2, 1),
        "the invocation's summary counts the second request as a retry"
    );
}

#[tokio::test]
async fn without_time_to_notify_safely_the_batch_fails_and_the_retry_notifies() {
    let stack = Stack::new("outoftime").await;
    let processor = stack.processor(&[]);
    let batch = event(
        "outoftime",
        8,
        &lines_of("events/lines/rule-not-found.jsonl"),
        NOW,
    );
    let soon = std::time::Instant::now() + Duration::from_secs(5);
    let error = processor.process(&batch, NOW, soon).await.unwrap_err();
    assert!(matches!(error, ProcessError::OutOfTime { .. }), "{error}");
    assert_eq!(stack.entries().await.len(), 2, "stored before giving up");
    let incidents = stack.current_incidents().await;
    assert!(
        incidents.iter().all(|i| i.sent == 0 && i.claim.is_none()),
        "nothing claimed: {incidents:?}"
    );
    let retry = run(&processor, &batch, NOW + 60_000).await;
    assert_eq!(retry.notifications_sent, 1);
    assert_eq!(stack.notifications(WAIT).await.len(), 1);
}

/// The identifiers of the authorization-failure fixture, as logged.
fn logged_identifiers(lines: &[String]) -> Vec<String> {
    let mut found = Vec::new();
    for line in lines {
        let entry: serde_json::Value = serde_json::from_str(line).unwrap();
        for field in ["sourceIp", "principalId"] {
            if let Some(value) = entry[field].as_str() {
                found.push(value.to_owned());
            }
        }
    }
    found.sort();
    found.dedup();
    found
}

#[tokio::test]
async fn identifiers_are_kept_by_default_and_pseudonymised_in_items_and_notifications_when_asked() {
    let lines = lines_of("events/lines/authorization-failures.jsonl");
    let identifiers = logged_identifiers(&lines);
    assert!(
        identifiers.len() >= 2,
        "the fixture logs source IPs and principals"
    );
    let text_of = |items: &[std::collections::HashMap<String, _>]| format!("{items:?}");

    let plain = Stack::new("plain").await;
    run(&plain.processor(&[]), &event("plain", 4, &lines, NOW), NOW).await;
    let stored = text_of(&plain.entries().await);
    assert!(
        identifiers.iter().all(|id| stored.contains(id.as_str())),
        "off by default: items keep what was logged"
    );

    let redacting = Stack::new("redacted").await;
    let processor = redacting.processor(&[
        ("REDACT_FIELDS", "sourceIp,principalId"),
        ("REDACTION_KEY", "test-key-of-sixteen-bytes-or-more"),
    ]);
    let summary = run(&processor, &event("redacted", 4, &lines, NOW), NOW).await;
    assert!(
        summary.stored > 0 && summary.notifications_sent > 0,
        "{summary:?}"
    );
    let items = redacting.entries().await;
    let notifications = redacting.notifications(WAIT).await;
    let incidents = redacting.incidents().await;
    let everything = format!("{}{notifications:?}{incidents:?}", text_of(&items));
    for id in &identifiers {
        assert!(
            !everything.contains(id.as_str()),
            "{id} left in an item, an incident or a notification"
        );
    }
    for item in &items {
        assert!(s(item, "sourceIp").starts_with("redacted:"), "{item:?}");
        assert!(s(item, "rawMessage").contains("\"sourceIp\":\"redacted:"));
    }
    // One device, one pseudonym: it is still recognisable as one.
    let pseudonyms: std::collections::BTreeSet<_> =
        items.iter().map(|i| s(i, "principalId")).collect();
    assert!(pseudonyms.len() < items.len(), "{pseudonyms:?}");
}
