//! The stack deployed as users deploy it (template.yaml through the SAM
//! transform and CloudFormation's CreateStack, on moto): the function's
//! environment as CloudFormation resolved it, the operator's tool finding
//! everything by stack name, and failed Kinesis batches kept whole in S3 and
//! re-driven from there.

mod common;

use common::cli::{cli, failed, ok};
use common::{trace_ids_of, Stack};
use serde_json::{json, Value};

#[tokio::test]
async fn the_function_runs_with_the_names_cloudformation_gave_the_resources() {
    let stack = Stack::new("deployed-env").await;
    // Physical ids CloudFormation made up, reached through Ref in the
    // function's environment as GetFunctionConfiguration reports it.
    assert_eq!(stack.env["ENTRIES_TABLE"], stack.resources["EntriesTable"]);
    assert_eq!(
        stack.env["INCIDENTS_TABLE"],
        stack.resources["IncidentsTable"]
    );
    assert_eq!(
        stack.env["SILENCES_TABLE"],
        stack.resources["SilencesTable"]
    );
    assert_eq!(stack.env["ALERT_TOPIC_ARN"], stack.resources["AlertTopic"]);
    assert!(stack.env["ENTRIES_TABLE"].starts_with(&format!("{}-EntriesTable-", stack.name)));
    // A list parameter joined for the function, as the README documents the defaults.
    assert_eq!(
        stack.env["ALERT_CATEGORIES"],
        "RuleNotFound,RuleMessageThrottled,Failure"
    );
    // The configuration the function parses at start-up accepts all of it.
    let config = stack.config(&[]);
    assert_eq!(config.entries_table, stack.resources["EntriesTable"]);
    // The direct path has no bucket of failed stream batches.
    assert!(!stack.outputs.contains_key("FailedStreamBatchBucketName"));
}

/// A Kinesis invocation record as Lambda keeps it in an S3 on-failure
/// destination (Lambda developer guide, "Retain discarded batch records for
/// a Kinesis Data Streams event source": the metadata plus `payload`, the
/// whole invocation), written here by hand, not by the code under test.
fn kept_in_s3(payload: &Value) -> String {
    json!({
        "requestContext": {
            "requestId": "c9b8fa9f-5a7f-xmpl-af9c-0c604cde93a5",
            "functionArn": "arn:aws:lambda:us-east-1:123456789012:function:processor",
            "condition": "RetryAttemptsExhausted",
            "approximateInvokeCount": 4
        },
        "responseContext": {"statusCode": 200, "executedVersion": "$LATEST", "functionError": "Unhandled"},
        "version": "1.0",
        "timestamp": "2026-12-02T10:00:06.021Z",
        "KinesisBatchInfo": {
            "shardId": "shardId-000000000000",
            "startSequenceNumber": "49650000000000000000000000000000000000000000000000000000",
            "endSequenceNumber": "49650000000000000000000000000000000000000000000000000002",
            "approximateArrivalOfFirstRecord": "2026-12-02T10:00:04.835Z",
            "approximateArrivalOfLastRecord": "2026-12-02T10:00:05.580Z",
            "batchSize": 3,
            "streamArn": "arn:aws:kinesis:us-east-1:123456789012:stream/logs"
        },
        "payload": payload
    })
    .to_string()
}

#[tokio::test]
async fn a_kinesis_batch_that_failed_every_retry_is_redriven_from_the_bucket() {
    let stack = Stack::with_parameters("kinesis-s3", &["IngestionPath=Kinesis"]).await;
    let bucket = stack.outputs["FailedStreamBatchBucketName"].clone();
    let s3 = aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(&stack.sdk)
            .force_path_style(true)
            .build(),
    );
    // The three subscription batches of events/kinesis/three-batches.json.
    let payload: Value = serde_json::from_str(
        &std::fs::read_to_string(common::repo_path("events/kinesis/three-batches.json")).unwrap(),
    )
    .unwrap();
    let key = "aws/lambda/6f1c2a4e-0000-4000-8000-000000000001/shardId-000000000000/2026/12/02/2026-12-02T10.00.06-0d6b8f6e-8d1f-4b52-9d0b-2b1c1f6d2e10";
    s3.put_object()
        .bucket(&bucket)
        .key(key)
        .body(kept_in_s3(&payload).into_bytes().into())
        .send()
        .await
        .unwrap();

    // Everything found by the stack's name: the bucket from its outputs.
    let dry = ok(cli(&["--stack", &stack.name, "redrive", "--dry-run"])
        .output()
        .unwrap());
    assert!(dry.contains("would process") && dry.contains(key), "{dry}");
    assert!(
        stack.entries().await.is_empty(),
        "a dry run changes nothing"
    );

    let report = ok(cli(&["--stack", &stack.name, "redrive"]).output().unwrap());
    assert!(report.contains("processed"), "{report}");
    let stored = common::trace_ids_in(&stack.entries().await);
    let mut expected = trace_ids_of("events/lines/rule-not-found.jsonl");
    expected.extend(trace_ids_of("events/lines/rule-throttled.jsonl"));
    assert!(
        expected.is_subset(&stored),
        "every traced failure of the kept batch is stored: missing {:?}",
        expected.difference(&stored).collect::<Vec<_>>()
    );
    assert!(
        stored.iter().any(|t| t.starts_with("job:")),
        "the job failure (no traceId) too: {stored:?}"
    );
    let left = s3
        .list_objects_v2()
        .bucket(&bucket)
        .send()
        .await
        .unwrap()
        .key_count
        .unwrap_or(0);
    assert_eq!(left, 0, "a processed batch is deleted from the bucket");
    assert!(
        !stack
            .notifications(std::time::Duration::from_secs(5))
            .await
            .is_empty(),
        "its incidents were announced"
    );

    // What is not a failure record stays, and the run says so and fails.
    s3.put_object()
        .bucket(&bucket)
        .key("aws/lambda/x/shardId-000000000000/2026/12/02/not-a-record")
        .body(b"{\"hello\":1}".to_vec().into())
        .send()
        .await
        .unwrap();
    let refused = failed(cli(&["--stack", &stack.name, "redrive"]).output().unwrap());
    assert!(refused.contains("could not be processed"), "{refused}");
    let left = s3.list_objects_v2().bucket(&bucket).send().await.unwrap();
    assert_eq!(left.key_count, Some(1), "the unreadable object is kept");
}

/// Issue 30 (1, 2): deleting the stack (CloudFormation's DeleteStack, to
/// DELETE_COMPLETE) keeps what holds data, with the data: the three tables
/// with their items, the failure queue and the function's log group (moto
/// models these; AWS::IoT::Logging it does not, see tests/template.rs);
/// what holds none, the function, goes.
#[tokio::test]
async fn deleting_the_stack_keeps_what_holds_data() {
    let stack = Stack::new("delete-keeps").await;
    let entries_table = stack.resources["EntriesTable"].clone();
    stack
        .dynamodb
        .put_item()
        .table_name(&entries_table)
        .item(
            "traceId",
            aws_sdk_dynamodb::types::AttributeValue::S("kept".into()),
        )
        .item(
            "entryKey",
            aws_sdk_dynamodb::types::AttributeValue::S("0".into()),
        )
        .send()
        .await
        .unwrap();
    let cfn = aws_sdk_cloudformation::Client::new(&stack.sdk);
    cfn.delete_stack()
        .stack_name(&stack.name)
        .send()
        .await
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let status = cfn
            .describe_stacks()
            .stack_name(&stack.name)
            .send()
            .await
            .ok()
            .and_then(|o| o.stacks().first().and_then(|s| s.stack_status().cloned()));
        match status.as_ref().map(|s| s.as_str()) {
            Some("DELETE_COMPLETE") | None => break,
            Some(other) => assert!(
                !other.ends_with("FAILED") && std::time::Instant::now() < deadline,
                "the stack is {other}"
            ),
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    for table in ["EntriesTable", "IncidentsTable", "SilencesTable"] {
        stack
            .dynamodb
            .describe_table()
            .table_name(&stack.resources[table])
            .send()
            .await
            .unwrap_or_else(|e| panic!("{table} is gone: {e:?}"));
    }
    let kept = stack
        .dynamodb
        .get_item()
        .table_name(&entries_table)
        .key(
            "traceId",
            aws_sdk_dynamodb::types::AttributeValue::S("kept".into()),
        )
        .key(
            "entryKey",
            aws_sdk_dynamodb::types::AttributeValue::S("0".into()),
        )
        .send()
        .await
        .unwrap();
    assert!(kept.item.is_some(), "the entries are kept");
    stack
        .sqs
        .get_queue_attributes()
        .queue_url(&stack.resources["FailedBatchQueue"])
        .send()
        .await
        .expect("the failure queue is kept");
    let logs = aws_sdk_cloudwatchlogs::Client::new(&stack.sdk);
    let group = &stack.resources["ProcessorLogGroup"];
    let groups = logs
        .describe_log_groups()
        .log_group_name_prefix(group)
        .send()
        .await
        .unwrap();
    assert!(
        groups
            .log_groups()
            .iter()
            .any(|g| g.log_group_name() == Some(group.as_str())),
        "the function's log group is kept"
    );
    let lambda = aws_sdk_lambda::Client::new(&stack.sdk);
    assert!(
        lambda
            .get_function()
            .function_name(&stack.resources["ProcessorFunction"])
            .send()
            .await
            .is_err(),
        "the function, which holds no data, is deleted"
    );
}

/// Issue 30 (6): the knobs, deployed through the SAM transform and
/// CloudFormation on moto, reach the function as Lambda reports it
/// (memory, the role's path, reserved concurrency).
#[tokio::test]
async fn the_knobs_reach_the_deployed_function() {
    let stack = Stack::with_parameters(
        "knobs",
        &[
            "FunctionMemorySize=512",
            "ReservedConcurrency=5",
            "EnableTracing=true",
            "IamPath=/iot/",
            "LogRetentionDays=7",
        ],
    )
    .await;
    let lambda = aws_sdk_lambda::Client::new(&stack.sdk);
    let function = &stack.resources["ProcessorFunction"];
    let config = lambda
        .get_function_configuration()
        .function_name(function)
        .send()
        .await
        .unwrap();
    assert_eq!(config.memory_size(), Some(512));
    // Tracing: moto's CloudFormation does not pass TracingConfig to the
    // function (the transformed template has it: tests/template.rs).
    assert!(
        config.role().unwrap_or_default().contains(":role/iot/"),
        "{:?}",
        config.role()
    );
    let concurrency = lambda
        .get_function_concurrency()
        .function_name(function)
        .send()
        .await
        .unwrap();
    assert_eq!(concurrency.reserved_concurrent_executions(), Some(5));
}
