//! Device-controlled fields are hostile input (issue 16), against moto:
//! one poisoned key costs no other notification, redaction fails closed,
//! and the stored item holds the values classification used.

mod common;

use std::time::{Duration, Instant};

use common::{event, opt, run, s, Stack};
use iot_log_monitor::pipeline::Response;
use iot_log_monitor::tooling::encode::kinesis_event_json;
use iot_log_monitor::tooling::inbox::ReceivedNotification;

const NOW: i64 = 1_800_000_000_000;

fn rule_not_found(rule: &str, trace: &str) -> String {
    serde_json::json!({
        "timestamp": "2027-01-15 08:00:00.000", "logLevel": "ERROR", "traceId": trace,
        "accountId": "123456789012", "status": "Failure", "eventType": "RuleNotFound",
        "clientId": "sensor-1", "topicName": format!("$aws/rules/{rule}"), "ruleName": rule,
        "details": format!("Rule {rule} not found"),
    })
    .to_string()
}

/// Waits until at least `n` notifications arrived (or the deadline passed),
/// then gives what arrived.
async fn notifications(stack: &Stack, n: usize) -> Vec<ReceivedNotification> {
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut received = Vec::new();
    while received.len() < n && Instant::now() < deadline {
        received.extend(stack.notifications(Duration::from_secs(1)).await);
    }
    received
}

fn rule_names(alerts: &[ReceivedNotification]) -> Vec<String> {
    let mut names: Vec<String> = alerts
        .iter()
        .filter_map(|a| a.attributes.get("ruleName").cloned())
        .collect();
    names.sort();
    names
}

/// Issue 16 (1): a 3,000-byte rule name used to fail every delivery of its
/// batch (the alert-state key was over DynamoDB's 2,048-byte limit), so the
/// innocent rule beside it never alerted.
#[tokio::test]
async fn one_long_rule_name_blocks_no_other_notification() {
    let stack = Stack::new("long-key").await;
    let processor = stack.processor(&[]);
    let long = "R".repeat(3000);
    let lines = [
        rule_not_found("innocent_rule_1", "t-innocent"),
        rule_not_found(&long, "t-long"),
    ];
    let summary = run(&processor, &event("long-key", 1, &lines, NOW), NOW).await;
    assert_eq!(summary.stored, 2);
    assert_eq!(summary.notifications_failed, 0);
    let alerts = notifications(&stack, 2).await;
    let names = rule_names(&alerts);
    assert_eq!(names.len(), 2, "{names:?}");
    assert_eq!(names[1], "innocent_rule_1");
    assert!(
        names[0].starts_with("RRRR") && names[0].len() <= 256,
        "bounded attribute"
    );
}

/// The same on the Kinesis path: the poison record, and every record after
/// it, used to be reported failed on every attempt.
#[tokio::test]
async fn on_the_kinesis_path_a_long_rule_name_fails_no_record() {
    let stack = Stack::new("long-key-kinesis").await;
    let processor = stack.processor(&[]);
    let long = "K".repeat(3000);
    let batches: Vec<String> = [
        vec![rule_not_found(&long, "t-k-long")],
        vec![rule_not_found("innocent_rule_2", "t-k-innocent")],
    ]
    .iter()
    .enumerate()
    .map(|(i, lines)| {
        let direct: serde_json::Value =
            serde_json::from_str(&event(&format!("k{i}"), i as u64, lines, NOW)).unwrap();
        direct["awslogs"]["data"].as_str().unwrap().to_owned()
    })
    .collect();
    let datas: Vec<&str> = batches.iter().map(String::as_str).collect();
    let response = processor
        .process(
            &kinesis_event_json(&datas, 7, NOW),
            NOW,
            common::far_deadline(),
        )
        .await
        .unwrap();
    let Response::Stream(stream) = response else {
        panic!("a Kinesis event gets a partial batch response");
    };
    assert!(
        stream.batch_item_failures.is_empty(),
        "{:?}",
        stream.batch_item_failures
    );
    assert_eq!(stream.summary.stored, 2);
    let names = rule_names(&notifications(&stack, 2).await);
    assert_eq!(names.len(), 2, "{names:?}");
    assert!(names.contains(&"innocent_rule_2".to_owned()));
}

/// Issue 16 (3): entries the entry parser reads but `serde_json::Value`
/// does not (a number out of f64 range, 200-deep nesting, a lone
/// surrogate), repeated keys and field names in the wrong case used to
/// leave identifiers in clear in the table and the notifications.
#[tokio::test]
async fn redaction_fails_closed_in_the_table_and_the_notifications() {
    let stack = Stack::new("redact-closed").await;
    let processor = stack.processor(&[
        ("REDACT_FIELDS", "sourceip,principalId,CLIENTID"),
        ("REDACTION_KEY", "a-redaction-key-for-tests-only"),
    ]);
    let deep = format!("{}1{}", "[".repeat(200), "]".repeat(200));
    let extras = [
        r#""n":1e400"#.to_owned(),
        format!(r#""deep":{deep}"#),
        r#""odd":"\ud800""#.to_owned(),
        r#""sourceIp":"198.51.100.77""#.to_owned(),
    ];
    let lines: Vec<String> = extras
        .iter()
        .enumerate()
        .map(|(i, extra)| {
            format!(
                r#"{{"timestamp":"2027-01-15 08:00:0{i}.000","logLevel":"ERROR","traceId":"t-red-{i}","status":"Failure","eventType":"Connect","clientId":"victim-{i}","principalId":"principal-{i}","sourceIp":"203.0.113.5{i}",{extra},"reason":"AUTHORIZATION_FAILURE","details":"refused 203.0.113.5{i} principal-{i} victim-{i}"}}"#
            )
        })
        .collect();
    let summary = run(&processor, &event("redact", 5, &lines, NOW), NOW).await;
    assert_eq!(summary.by_category[2], 4, "all four are failures");
    let items = stack.entries().await;
    assert_eq!(items.len(), 4);
    let alerts = notifications(&stack, 4).await;
    assert!(!alerts.is_empty());
    let mut everything: Vec<String> = items.iter().map(|i| format!("{i:?}")).collect();
    everything.extend(
        alerts
            .iter()
            .map(|a| format!("{} {} {:?}", a.subject, a.message, a.attributes)),
    );
    for i in 0..4 {
        for secret in [
            format!("victim-{i}"),
            format!("principal-{i}"),
            format!("203.0.113.5{i}"),
            "198.51.100.77".to_owned(),
        ] {
            for text in &everything {
                assert!(!text.contains(&secret), "{secret} in clear: {text}");
            }
        }
    }
    for item in &items {
        assert!(s(item, "clientId").starts_with("redacted:"));
        assert_eq!(opt(item, "status").as_deref(), Some("Failure"));
    }
}

/// Issue 16 (4): the stored item, its index key and the notification name
/// the client classification read, whatever else the entry repeats.
#[tokio::test]
async fn a_repeated_key_cannot_make_the_item_disagree_with_the_notification() {
    let stack = Stack::new("repeated-key").await;
    let processor = stack.processor(&[]);
    let line = r#"{"timestamp":"2027-01-15 08:00:00.000","traceId":"t-dup","eventType":"Connect","status":"Failure","status":0,"clientId":"victim-7","clientId":123,"originalSize":1,"droppedFields":"forged","reason":"AUTHORIZATION_FAILURE"}"#;
    run(&processor, &event("dup", 2, &[line.to_owned()], NOW), NOW).await;
    let items = stack.entries().await;
    assert_eq!(items.len(), 1);
    assert_eq!(s(&items[0], "clientId"), "victim-7");
    assert!(s(&items[0], "clientDay").starts_with("victim-7#"));
    assert_eq!(opt(&items[0], "originalSize"), None);
    assert_eq!(opt(&items[0], "droppedFields"), None);
    let sent = notifications(&stack, 1).await;
    assert_eq!(sent.len(), 1);
    let body: serde_json::Value = serde_json::from_str(&sent[0].message).unwrap();
    assert_eq!(
        body["topClients"],
        serde_json::json!(["victim-7"]),
        "{body}"
    );
}

/// Issue 16 (8): an entry of 20,000 fields is stored (bounded) well within
/// the budget instead of timing out.
#[tokio::test]
async fn an_entry_of_twenty_thousand_fields_is_stored_bounded() {
    let stack = Stack::new("many-fields").await;
    let processor = stack.processor(&[]);
    let fields: Vec<String> = (0..20_000).map(|n| format!(r#""f{n}":"v{n}""#)).collect();
    let line = format!(
        r#"{{"timestamp":"2027-01-15 08:00:00.000","traceId":"t-many","eventType":"Publish-In","status":"Failure","clientId":"c","{}":1,{}}}"#,
        "n".repeat(70_000),
        fields.join(",")
    );
    let summary = run(&processor, &event("many", 3, &[line], NOW), NOW).await;
    assert_eq!(summary.stored, 1);
    let items = stack.entries().await;
    assert_eq!(opt(&items[0], "trimmed").as_deref(), Some("true"));
    assert!(items[0].len() < 400, "{} attributes", items[0].len());
    assert!(items[0].keys().all(|k| k.len() <= 255));
}

/// Issue 16 (8), decided: a lone surrogate in a key is not valid I-JSON;
/// the three readers agree the line is `Unparseable`, and it is stored
/// (and counted) as such, not dropped.
#[tokio::test]
async fn a_lone_surrogate_in_a_key_is_stored_as_unparseable() {
    let stack = Stack::new("surrogate-key").await;
    let processor = stack.processor(&[]);
    let line = r#"{"eventType":"Connect","status":"Failure","\ud800":1,"traceId":"t-sur"}"#;
    let summary = run(&processor, &event("sur", 4, &[line.to_owned()], NOW), NOW).await;
    assert_eq!(
        summary.by_category[4], 1,
        "Unparseable: {:?}",
        summary.by_category
    );
    let items = stack.entries().await;
    assert_eq!(items.len(), 1);
    assert_eq!(s(&items[0], "category"), "Unparseable");
    assert_eq!(s(&items[0], "rawMessage"), line);
}
