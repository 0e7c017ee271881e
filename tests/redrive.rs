//! `iot-incidents redrive` against stacks deployed on moto, run as an
//! operator runs it: a clean environment (credentials, endpoint, region)
//! and `--stack`. A redriven batch is processed exactly as the deployed
//! function processes it (its configuration, its redaction key), what a
//! record or an object key says never drives the terminal, and one odd
//! object in the bucket does not hold back the others.

mod common;

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use aws_sdk_dynamodb::types::AttributeValue;
use common::cli::now_ms;
use common::{event, moto, opt, s, Stack};
use iot_log_monitor::model::time::format_iot_timestamp;
use iot_log_monitor::notify::display::escape;
use serde_json::{json, Value};

/// The query tool with nothing of the caller's environment: only what an
/// operator's shell must hold to reach the account (here moto).
fn clean_cli(args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_iot-incidents"));
    command
        .env_clear()
        .args(args)
        .env("AWS_ENDPOINT_URL", &moto().endpoint)
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("AWS_REGION", "us-east-1")
        .env("AWS_EC2_METADATA_DISABLED", "true");
    command
}

fn text(output: &Output) -> (String, String) {
    (
        String::from_utf8(output.stdout.clone()).unwrap(),
        String::from_utf8(output.stderr.clone()).unwrap(),
    )
}

/// One HTTP/1.1 request of the Runtime API client: its request line and body.
fn read_request(reader: &mut BufReader<TcpStream>) -> Option<(String, Vec<u8>)> {
    let mut request_line = String::new();
    if reader.read_line(&mut request_line).ok()? == 0 {
        return None;
    }
    let mut length = 0;
    loop {
        let mut header = String::new();
        reader.read_line(&mut header).ok()?;
        let header = header.trim_end();
        if header.is_empty() {
            break;
        }
        if let Some((name, value)) = header.split_once(':') {
            if name.eq_ignore_ascii_case("content-length") {
                length = value.trim().parse().ok()?;
            }
        }
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body).ok()?;
    Some((request_line.trim_end().to_owned(), body))
}

/// Runs the function's own binary (`iot-log-processor`, what SAM deploys as
/// `bootstrap`) for one invocation, as Lambda runs it: the deployed
/// function's environment (GetFunctionConfiguration), nothing else but
/// credentials and the endpoint, under just enough of the Lambda Runtime API
/// served here. Returns what it answered.
fn invoke_function(stack: &Stack, event_json: &str) -> Value {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let mut function = Command::new(env!("CARGO_BIN_EXE_iot-log-processor"))
        .env_clear()
        .envs(&stack.env)
        .env("AWS_LAMBDA_RUNTIME_API", format!("127.0.0.1:{port}"))
        .env("AWS_LAMBDA_FUNCTION_NAME", "processor")
        .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "256")
        .env("AWS_LAMBDA_LOG_GROUP_NAME", "/aws/lambda/processor")
        .env("AWS_LAMBDA_LOG_STREAM_NAME", "redrive-test")
        .env("AWS_ENDPOINT_URL", &moto().endpoint)
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("AWS_REGION", "us-east-1")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Each connection on its own thread: the client keeps connections alive
    // and may open another while one is idle.
    let (answers, answered) = mpsc::channel::<(String, Vec<u8>)>();
    let event_json = event_json.to_owned();
    let served = Arc::new(AtomicBool::new(false));
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { return };
            let answers = answers.clone();
            let event_json = event_json.clone();
            let served = served.clone();
            std::thread::spawn(move || {
                let mut writer = stream.try_clone().unwrap();
                let mut reader = BufReader::new(stream);
                while let Some((line, body)) = read_request(&mut reader) {
                    if line.starts_with("GET") && line.contains("/invocation/next") {
                        if served.swap(true, Ordering::SeqCst) {
                            // One invocation only: a later poll waits, unanswered,
                            // until the function is stopped and the connection closes.
                            let _ = reader.read_to_end(&mut Vec::new());
                            return;
                        }
                        let deadline = now_ms() + 60_000;
                        let head = format!(
                            "HTTP/1.1 200 OK\r\nLambda-Runtime-Aws-Request-Id: redrive-test-1\r\n\
                             Lambda-Runtime-Deadline-Ms: {deadline}\r\n\
                             Lambda-Runtime-Invoked-Function-Arn: arn:aws:lambda:us-east-1:123456789012:function:processor\r\n\
                             Lambda-Runtime-Trace-Id: Root=1-00000000-000000000000000000000000\r\n\
                             Content-Type: application/json\r\nContent-Length: {}\r\n\r\n",
                            event_json.len()
                        );
                        writer.write_all(head.as_bytes()).unwrap();
                        writer.write_all(event_json.as_bytes()).unwrap();
                    } else if line.starts_with("POST") {
                        let _ = writer
                            .write_all(b"HTTP/1.1 202 Accepted\r\nContent-Length: 2\r\n\r\n{}");
                        let _ = answers.send((line, body));
                    } else {
                        return;
                    }
                }
            });
        }
    });
    let deadline = Instant::now() + Duration::from_secs(60);
    let answer = loop {
        match answered.recv_timeout(Duration::from_millis(100)) {
            Ok(answer) => break answer,
            Err(mpsc::RecvTimeoutError::Timeout) => {
                if let Some(status) = function.try_wait().unwrap() {
                    panic!("the function exited before answering: {status}");
                }
                assert!(Instant::now() < deadline, "the function never answered");
            }
            Err(e) => panic!("{e}"),
        }
    };
    function.kill().unwrap();
    function.wait().unwrap();
    let (line, body) = answer;
    assert!(
        line.contains("/invocation/redrive-test-1/response"),
        "the function failed: {line} {}",
        String::from_utf8_lossy(&body)
    );
    serde_json::from_slice(&body).unwrap()
}

/// A `Connect` refused for `AUTHORIZATION_FAILURE`, as AWS IoT logs it.
fn connect_refused(trace_id: &str, client: &str, ip: &str) -> String {
    format!(
        r#"{{"timestamp":"{}","logLevel":"ERROR","traceId":"{trace_id}","accountId":"123456789012","status":"Failure","eventType":"Connect","protocol":"MQTT","clientId":"{client}","principalId":"145179c40e2219e18a909d896a5340b74cf97a39641beec2fc3eeafc5a932167","sourceIp":"{ip}","sourcePort":50300,"reason":"AUTHORIZATION_FAILURE","details":"Authorization Failure"}}"#,
        format_iot_timestamp(now_ms() - 60_000)
    )
}

fn entry<'a>(
    items: &'a [HashMap<String, AttributeValue>],
    trace_id: &str,
) -> &'a HashMap<String, AttributeValue> {
    items
        .iter()
        .find(|item| opt(item, "traceId").as_deref() == Some(trace_id))
        .unwrap_or_else(|| panic!("no entry {trace_id} in {items:?}"))
}

#[tokio::test]
async fn a_redriven_batch_is_stored_as_the_deployed_function_stores_it() {
    const CLIENT: &str = "secret-device-B";
    const IP: &str = "198.51.100.22";
    let sdk = common::sdk_config(&moto().endpoint).await;
    let parameter = format!("/iot-log-monitor/redrive-{}/key", std::process::id());
    aws_sdk_ssm::Client::new(&sdk)
        .put_parameter()
        .name(&parameter)
        .value("a-redaction-key-only-the-stack-knows")
        .r#type(aws_sdk_ssm::types::ParameterType::SecureString)
        .send()
        .await
        .unwrap();
    let stack = Stack::with_parameters(
        "redrive-redacted",
        &[
            "RedactFields=clientId,sourceIp",
            &format!("RedactionKeyParameter={parameter}"),
        ],
    )
    .await;
    assert_eq!(stack.env["REDACTION_KEY_PARAMETER"], parameter);

    // The function stores one refusal of the device itself...
    let answer = invoke_function(
        &stack,
        &event(
            "redrive-fn",
            1,
            &[connect_refused("by-the-function", CLIENT, IP)],
            now_ms(),
        ),
    );
    assert_eq!(answer["stored"], 1, "{answer}");
    // ...and another batch of the same device failed every attempt: its
    // record waits in the failure queue.
    let failed = event(
        "redrive-kept",
        2,
        &[connect_refused("redriven", CLIENT, IP)],
        now_ms(),
    );
    let record = common::failed_invocation_record(
        "5b0c1c1e-0000-4000-8000-000000000027",
        &serde_json::from_str(&failed).unwrap(),
        "IotLogMonitor.Store.Request",
        "DynamoDB was unavailable",
    );
    stack
        .sqs
        .send_message()
        .queue_url(stack.table("FailedBatchQueue"))
        .message_body(record)
        .send()
        .await
        .unwrap();

    // Without a stack or a function there is no configuration to use, and
    // redrive says so instead of taking the shell's.
    let nowhere = clean_cli(&["--queue-url", stack.table("FailedBatchQueue"), "redrive"])
        .output()
        .unwrap();
    let (_, why) = text(&nowhere);
    assert_eq!(nowhere.status.code(), Some(1), "{why}");
    assert!(
        why.contains("--function NAME") && why.contains("--stack NAME"),
        "{why}"
    );
    // A table that is not the function's is refused, not written to.
    let elsewhere = clean_cli(&[
        "--stack",
        &stack.name,
        "--table",
        "someone-elses-table",
        "redrive",
    ])
    .output()
    .unwrap();
    let (_, why) = text(&elsewhere);
    assert_eq!(elsewhere.status.code(), Some(1), "{why}");
    assert!(
        why.contains("someone-elses-table") && why.contains(&stack.env["ENTRIES_TABLE"]),
        "{why}"
    );

    let redriven = clean_cli(&["--stack", &stack.name, "redrive"])
        .output()
        .unwrap();
    let (report, said) = text(&redriven);
    assert!(redriven.status.success(), "{report}{said}");
    assert!(report.contains("1 stored"), "{report}");
    assert!(
        report.contains(&format!(
            "with the configuration of function {}",
            stack.outputs["ProcessorFunctionName"]
        )),
        "names the function whose configuration it used: {report}"
    );

    let items = stack.entries().await;
    let by_function = entry(&items, "by-the-function");
    let by_redrive = entry(&items, "redriven");
    for field in ["clientId", "sourceIp"] {
        assert!(
            s(by_function, field).starts_with("redacted:"),
            "{by_function:?}"
        );
        assert_eq!(
            s(by_redrive, field),
            s(by_function, field),
            "{field}: the redriven entry carries the function's pseudonym"
        );
    }
    assert_eq!(
        s(by_redrive, "incidentId"),
        s(by_function, "incidentId"),
        "one incident"
    );
    let everything = format!("{items:?}{:?}", stack.incidents().await);
    for raw in [CLIENT, IP] {
        assert!(
            !everything.contains(raw),
            "{raw} stored in an entry or an incident"
        );
    }
}

/// A failure record as Lambda's on-failure destination writes it to S3 for
/// a Kinesis batch (the developer guide's format), holding `payload`.
fn kept_in_s3(request_id: &str, shard: &str, payload: &Value) -> String {
    json!({
        "requestContext": {
            "requestId": request_id,
            "functionArn": "arn:aws:lambda:us-east-1:123456789012:function:processor",
            "condition": "RetryAttemptsExhausted",
            "approximateInvokeCount": 4
        },
        "responseContext": {"statusCode": 200, "executedVersion": "$LATEST", "functionError": "Unhandled"},
        "version": "1.0",
        "timestamp": "2026-12-02T10:00:06.021Z",
        "KinesisBatchInfo": {
            "shardId": shard,
            "startSequenceNumber": "49650000000000000000000000000000000000000000000000000000",
            "endSequenceNumber": "49650000000000000000000000000000000000000000000000000002",
            "batchSize": 3,
            "streamArn": "arn:aws:kinesis:us-east-1:123456789012:stream/logs"
        },
        "payload": payload
    })
    .to_string()
}

fn three_batches() -> Value {
    serde_json::from_str(
        &std::fs::read_to_string(common::repo_path("events/kinesis/three-batches.json")).unwrap(),
    )
    .unwrap()
}

fn s3_client(stack: &Stack) -> aws_sdk_s3::Client {
    aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(&stack.sdk)
            .force_path_style(true)
            .build(),
    )
}

async fn put(s3: &aws_sdk_s3::Client, bucket: &str, key: &str, body: impl Into<Vec<u8>>) {
    s3.put_object()
        .bucket(bucket)
        .key(key)
        .body(body.into().into())
        .send()
        .await
        .unwrap();
}

async fn keys_left(s3: &aws_sdk_s3::Client, bucket: &str) -> Vec<String> {
    let listed = s3
        .list_objects_v2()
        .bucket(bucket)
        .encoding_type(aws_sdk_s3::types::EncodingType::Url)
        .send()
        .await
        .unwrap();
    listed
        .contents()
        .iter()
        .map(|o| o.key().unwrap().to_owned())
        .collect()
}

fn assert_no_terminal_controls(text: &str) {
    for c in ['\u{1b}', '\u{7}', '\u{202e}'] {
        assert!(
            !text.contains(c),
            "U+{:04X} reached the terminal: {text:?}",
            u32::from(c)
        );
    }
}

#[tokio::test]
async fn redrive_shows_what_records_and_keys_say_escaped() {
    let stack = Stack::with_parameters("redrive-escapes", &["IngestionPath=Kinesis"]).await;
    let queue = stack.table("FailedBatchQueue").to_owned();
    let bucket = stack.outputs["FailedStreamBatchBucketName"].clone();
    let s3 = s3_client(&stack);
    let request_id = "req\u{1b}]0;owned\u{7}-1";
    let error_type = "Store\u{202e}exe.txt";
    let shard = "shardId-\u{1b}[2J-0";
    let key = "aws/lambda/odd\u{1b}[31m\u{7}\u{202e}/shardId-000000000000/batch";
    // A record that processes, one that holds only a Kinesis range (kept),
    // and a batch kept in S3 under a hostile key.
    let direct: Value = serde_json::from_str(
        &std::fs::read_to_string(common::repo_path("events/rule-not-found.json")).unwrap(),
    )
    .unwrap();
    let metadata_only = json!({
        "requestContext": {"requestId": "c9b8fa9f-0000-4000-8000-000000000001", "condition": "RetryAttemptsExhausted", "approximateInvokeCount": 1},
        "KinesisBatchInfo": {"shardId": shard, "startSequenceNumber": "1", "endSequenceNumber": "2"}
    });
    for body in [
        common::failed_invocation_record(request_id, &direct, error_type, "boom"),
        metadata_only.to_string(),
    ] {
        stack
            .sqs
            .send_message()
            .queue_url(&queue)
            .message_body(body)
            .send()
            .await
            .unwrap();
    }
    put(
        &s3,
        &bucket,
        key,
        kept_in_s3(
            "c9b8fa9f-0000-4000-8000-000000000002",
            "shardId-0",
            &three_batches(),
        ),
    )
    .await;

    for args in [
        &["--stack", &stack.name, "redrive", "--dry-run"][..],
        &["--stack", &stack.name, "redrive"][..],
    ] {
        let run = clean_cli(args).output().unwrap();
        let (report, said) = text(&run);
        assert_no_terminal_controls(&report);
        assert_no_terminal_controls(&said);
        for shown in [request_id, error_type, shard, key] {
            assert!(
                report.contains(escape(shown).as_ref()),
                "{args:?}: {shown:?} shown escaped: {report}"
            );
        }
        // The Kinesis range is kept: a real run says so with exit 1.
        let dry_run = args.contains(&"--dry-run");
        assert_eq!(run.status.success(), dry_run, "{args:?}: {report}{said}");
        let verb = if dry_run {
            "would process"
        } else {
            "processed"
        };
        assert!(
            report.contains(&format!("{verb} s3://{bucket}/{}", escape(key))),
            "{report}"
        );
    }
}

#[tokio::test]
async fn an_odd_object_name_does_not_hold_back_the_rest_of_the_bucket() {
    let stack = Stack::with_parameters("redrive-odd-key", &["IngestionPath=Kinesis"]).await;
    let bucket = stack.outputs["FailedStreamBatchBucketName"].clone();
    let s3 = s3_client(&stack);
    let batch = |n: u32| {
        kept_in_s3(
            &format!("c9b8fa9f-0000-4000-8000-00000000000{n}"),
            "shardId-000000000000",
            &three_batches(),
        )
    };
    // A plain key, a key with a control character XML cannot carry and the
    // characters URL encoding treats apart (a space, a `+`), both holding a
    // kept batch, and an odd key holding bytes that cannot be read as text.
    let plain = "aws/lambda/6f1c2a4e/shardId-000000000000/2026/12/02/plain";
    let odd = "aws/lambda/6f1c2a4e/shardId-000000000000/2026/12/02/odd\u{1} name+plus";
    let junk = "aws/lambda/6f1c2a4e/shardId-000000000000/2026/12/02/junk\u{1b}\u{7f}";
    put(&s3, &bucket, plain, batch(1)).await;
    put(&s3, &bucket, odd, batch(2)).await;
    put(&s3, &bucket, junk, b"\xff\xfe not a record".to_vec()).await;

    let run = clean_cli(&["--stack", &stack.name, "redrive"])
        .output()
        .unwrap();
    let (report, said) = text(&run);
    // Something was left behind: exit 1, after everything else went on.
    assert_eq!(run.status.code(), Some(1), "{report}{said}");
    assert!(
        said.contains("1 batch(es) could not be processed"),
        "{said}"
    );
    assert!(said.contains("2 processed and removed"), "{said}");
    assert!(
        report.contains(&format!("skip s3://{bucket}/{}", escape(junk))),
        "the odd object is reported, escaped: {report}"
    );
    assert_no_terminal_controls(&report);
    let stored = common::trace_ids_in(&stack.entries().await);
    let expected = common::trace_ids_of("events/lines/rule-not-found.jsonl");
    assert!(
        expected.is_subset(&stored),
        "the kept batches were processed: {stored:?}"
    );
    // Only the unreadable object is left (as listed: URL-encoded).
    assert_eq!(
        keys_left(&s3, &bucket).await,
        vec!["aws/lambda/6f1c2a4e/shardId-000000000000/2026/12/02/junk%1B%7F".to_owned()]
    );
}
