//! The Kinesis front door (partial batch responses) and CloudTrail records of
//! AWS IoT API calls, against a real moto server, from the fixtures in
//! events/ (`make events` builds the Kinesis events from the direct ones).

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use common::{repo_path, run, s, RealProcessor, Stack};
use iot_log_monitor::ingest::decode::{invocation, Invocation};
use iot_log_monitor::model::category::Category;
use iot_log_monitor::pipeline::{Response, StreamResponse};

const NOW: i64 = 1_800_000_000_000;
const WAIT: Duration = Duration::from_secs(5);

fn fixture(name: &str) -> String {
    std::fs::read_to_string(repo_path(&format!("events/{name}.json"))).unwrap()
}

fn sequence_numbers(event: &str) -> Vec<String> {
    match invocation(event).unwrap() {
        Invocation::Kinesis(records) => records
            .iter()
            .map(|r| r.sequence_number().to_owned())
            .collect(),
        Invocation::Subscription(_) => panic!("not a Kinesis event"),
    }
}

/// The sequence numbers a partial batch response names.
fn reported(response: &StreamResponse) -> Vec<&str> {
    response
        .batch_item_failures
        .iter()
        .map(|f| f.item_identifier.as_deref().unwrap())
        .collect()
}

async fn stream(processor: &RealProcessor, event: &str) -> StreamResponse {
    match processor
        .process(event, NOW, common::far_deadline())
        .await
        .unwrap()
    {
        Response::Stream(response) => response,
        other => panic!("expected a partial batch response: {other:?}"),
    }
}

#[tokio::test]
async fn a_kinesis_batch_stores_what_its_direct_batches_store() {
    let direct = Stack::new("kinesis-direct").await;
    for name in ["rule-not-found", "rule-throttled", "job-failure"] {
        run(&direct.processor(&[]), &fixture(name), NOW).await;
    }
    let expected = direct.entries().await;
    assert!(!expected.is_empty());

    let stack = Stack::new("kinesis").await;
    let event = fixture("kinesis/three-batches");
    let response = stream(&stack.processor(&[]), &event).await;
    assert_eq!(response.batch_item_failures, []);
    assert_eq!(response.summary.records, 3);
    assert_eq!(response.summary.stored, expected.len());
    let items = stack.entries().await;
    assert_eq!(items, expected, "the same items, attribute for attribute");
    // And against the source lines, not only against the direct path: every
    // traced line of the three batches is stored, and the job (no traceId).
    let stored = common::trace_ids_in(&items);
    let mut traced = common::trace_ids_of("events/lines/rule-not-found.jsonl");
    traced.extend(common::trace_ids_of("events/lines/rule-throttled.jsonl"));
    assert!(traced.is_subset(&stored), "{traced:?} in {stored:?}");
    assert_eq!(
        stored.len(),
        traced.len() + 1,
        "the traced lines and the job failure, nothing else: {stored:?}"
    );
    let notifications = stack.notifications(WAIT).await;
    assert!(!notifications.is_empty());

    // Lambda delivers a stream batch at least once: again, nothing new.
    let again = stream(&stack.processor(&[]), &event).await;
    assert_eq!(again.batch_item_failures, []);
    assert_eq!(again.summary.notifications_sent, 0);
    assert_eq!(
        again.summary.incidents_already_counted,
        again.summary.incidents
    );
    assert_eq!(stack.entries().await, expected);
    assert!(stack.notifications_so_far().await.is_empty());
}

/// Issue 27 (7): `approximateArrivalTimestamp` finer than the millisecond
/// (`aws_lambda_events` reads the fraction as milliseconds) refused the
/// whole record as `Decode.UnreadableRecord`: `.999999` and `.123456` did
/// (the issue's `.378123` happens to wrap to a valid, wrong, time). The
/// pipeline never uses that field: every record is processed and stored.
#[tokio::test]
async fn a_record_whose_arrival_time_is_finer_than_a_millisecond_is_processed() {
    let stack = Stack::new("kinesis-arrival").await;
    let mut event: serde_json::Value =
        serde_json::from_str(&fixture("kinesis/three-batches")).unwrap();
    let arrivals = [1796670690.378123, 1796670690.999999, 1763802000.123456];
    for (record, arrival) in event["Records"]
        .as_array_mut()
        .unwrap()
        .iter_mut()
        .zip(arrivals)
    {
        record["kinesis"]["approximateArrivalTimestamp"] = serde_json::json!(arrival);
    }
    let response = stream(&stack.processor(&[]), &event.to_string()).await;
    assert_eq!(response.batch_item_failures, []);
    assert_eq!(
        (response.summary.records, response.summary.decode_errors),
        (3, 0)
    );
    let stored = common::trace_ids_in(&stack.entries().await);
    let mut traced = common::trace_ids_of("events/lines/rule-not-found.jsonl");
    traced.extend(common::trace_ids_of("events/lines/rule-throttled.jsonl"));
    assert!(traced.is_subset(&stored), "{traced:?} in {stored:?}");
    assert_eq!(stored.len(), traced.len() + 1, "and the job failure");
}

#[tokio::test]
async fn a_corrupt_record_is_reported_by_its_sequence_number_and_the_others_are_kept() {
    let stack = Stack::new("kinesis-corrupt").await;
    let event = fixture("kinesis/corrupt-record");
    let sequences = sequence_numbers(&event);
    assert_eq!(sequences.len(), 3);

    let response = stream(&stack.processor(&[]), &event).await;
    let reported = reported(&response);
    assert_eq!(reported, [sequences[1].as_str()], "only the corrupt record");
    assert_eq!(response.summary.decode_errors, 1);
    assert_eq!(response.summary.failed_records, 1);
    let json = serde_json::to_value(Response::Stream(response)).unwrap();
    assert_eq!(
        json,
        serde_json::json!({"batchItemFailures": [{"itemIdentifier": sequences[1]}]}),
        "the shape Lambda reads with ReportBatchItemFailures"
    );

    // Both good records (before and after the corrupt one) are stored.
    let direct = Stack::new("kinesis-corrupt-direct").await;
    for name in ["rule-not-found", "authorization-failures"] {
        run(&direct.processor(&[]), &fixture(name), NOW).await;
    }
    assert_eq!(
        common::trace_ids_in(&stack.entries().await),
        common::trace_ids_in(&direct.entries().await)
    );
}

#[tokio::test]
async fn after_a_transient_failure_the_remaining_records_are_reported_untouched() {
    let stack = Stack::new("kinesis-transient").await;
    let event = fixture("kinesis/three-batches");
    let sequences = sequence_numbers(&event);
    // A table that does not exist: every write fails, as in an outage.
    let processor = stack.processor(&[("INCIDENTS_TABLE", "no-such-table")]);
    let response = stream(&processor, &event).await;
    let reported: Vec<String> = response
        .batch_item_failures
        .into_iter()
        .map(|f| f.item_identifier.unwrap())
        .collect();
    assert_eq!(
        reported, sequences,
        "the failed record and every one after it"
    );
    assert_eq!(response.summary.decode_errors, 0);
    assert!(stack.notifications_so_far().await.is_empty());
}

#[tokio::test]
async fn cloudtrail_failures_of_iot_api_calls_are_stored_by_request_id_and_are_one_incident_per_api_and_error(
) {
    let stack = Stack::new("cloudtrail").await;
    let summary = run(
        &stack.processor(&[]),
        &fixture("cloudtrail-iot-failures"),
        NOW,
    )
    .await;
    assert_eq!(summary.entries, 6);
    assert_eq!(summary.by_category[Category::Failure.index()], 3);
    assert_eq!(
        summary.by_category.iter().sum::<u64>(),
        3,
        "the successful calls and the S3 failure are not IoT incidents"
    );

    let items = stack.entries().await;
    let keys: BTreeSet<(String, String, String)> = items
        .iter()
        .map(|i| (s(i, "traceId"), s(i, "eventName"), s(i, "errorCode")))
        .collect();
    let expected: BTreeSet<(String, String, String)> = [
        (
            "d4875df2-fde4-11e5-b829-000000000002",
            "AttachPolicy",
            "UnauthorizedException",
        ),
        (
            "7f6c4d1e-2b3a-4c5d-9e8f-0a1b2c3d4e5f",
            "AttachPolicy",
            "AccessDeniedException",
        ),
        // No requestID: the event id keys it.
        (
            "f00df00d-0000-4000-8000-000000000003",
            "UpdateCertificate",
            "ResourceNotFoundException",
        ),
    ]
    .into_iter()
    .map(|(a, b, c)| (a.to_owned(), b.to_owned(), c.to_owned()))
    .collect();
    assert_eq!(
        keys, expected,
        "PascalCase (the IoT guide's) and camelCase (CloudTrail's) alike"
    );
    let attach = items
        .iter()
        .find(|i| s(i, "traceId") == "7f6c4d1e-2b3a-4c5d-9e8f-0a1b2c3d4e5f")
        .unwrap();
    assert_eq!(s(attach, "category"), "Failure");
    assert_eq!(s(attach, "logGroup"), "aws-cloudtrail-logs-123456789012");
    assert_eq!(s(attach, "eventSource"), "iot.amazonaws.com");

    let notifications = stack.notifications(WAIT).await;
    let subjects: BTreeSet<&str> = notifications.iter().map(|a| a.subject.as_str()).collect();
    assert_eq!(
        notifications.len(),
        3,
        "one per API and error code: {subjects:?}"
    );
    assert!(
        subjects.iter().any(|s| s.contains("AttachPolicy")),
        "{subjects:?}"
    );
    assert!(
        subjects.iter().any(|s| s.contains("UpdateCertificate")),
        "{subjects:?}"
    );
}

/// A record whose data cannot be read (not base64, or none at all) costs
/// that record only: it is named in the partial batch response, and the
/// records beside it are stored. (Fields the pipeline does not use, such
/// as the arrival time, never make a record unreadable: see above.)
#[tokio::test]
async fn an_unreadable_record_costs_only_itself() {
    let stack = Stack::new("kinesis-unreadable").await;
    let mut event: serde_json::Value =
        serde_json::from_str(&fixture("kinesis/three-batches")).unwrap();
    let records = event["Records"].as_array_mut().unwrap();
    records[1]["kinesis"]["data"] = "not base64!!".into();
    let third = records[2]["kinesis"].as_object_mut().unwrap();
    third.remove("data");
    let event = event.to_string();
    let sequences = sequence_numbers(&event);
    let response = stream(&stack.processor(&[]), &event).await;
    let reported = reported(&response);
    assert_eq!(reported, [sequences[1].as_str(), sequences[2].as_str()]);
    assert_eq!(response.summary.decode_errors, 2);
    let direct = Stack::new("kinesis-unreadable-direct").await;
    run(&direct.processor(&[]), &fixture("rule-not-found"), NOW).await;
    assert_eq!(
        common::trace_ids_in(&stack.entries().await),
        common::trace_ids_in(&direct.entries().await),
        "the first record is stored"
    );
}
