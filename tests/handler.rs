//! The Lambda handler, driven as the runtime drives it, against moto: what
//! it writes to its own log (one summary line per invocation at INFO, whole
//! incident payloads only at DEBUG, never the AWS credentials it runs with;
//! captured by a tracing subscriber), and how it answers bad input (a
//! failed invocation with a meaningful error type, then the next one served).

mod common;

use std::io::Write;
use std::sync::{Arc, Mutex};

use common::{event, lines_of, Stack};
use iot_log_monitor::lambda::{handle, log_subscriber};
use lambda_runtime::{Context, LambdaEvent};
use serde_json::value::RawValue;

const NOW: i64 = 1_800_000_000_000;
const ACCESS_KEY: &str = "AKIAFUNCTIONLOGTEST1";
const SECRET_KEY: &str = "function-log-test-secret-key-0000000000";

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn context(request_id: &str) -> Context {
    let mut context = Context::default();
    context.request_id = request_id.to_owned();
    context.deadline = (std::time::SystemTime::now() + std::time::Duration::from_secs(60))
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    context
}

/// Runs one invocation through the handler with the function's own log
/// subscriber at `directives` (as `RUST_LOG` gives them); returns the log.
async fn log_of_invocation(stack: &Stack, directives: &str, json: bool, stream: &str) -> String {
    let sdk = stack
        .sdk
        .to_builder()
        .credentials_provider(aws_sdk_dynamodb::config::SharedCredentialsProvider::new(
            aws_sdk_dynamodb::config::Credentials::new(ACCESS_KEY, SECRET_KEY, None, None, "test"),
        ))
        .build();
    let processor = stack.processor_on(&sdk, &[]);
    let lines = lines_of("events/lines/authorization-failures.jsonl");
    let payload = RawValue::from_string(event(stream, 9, &lines, NOW)).unwrap();
    let context = context(stream);

    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = log_subscriber(directives, json, move || writer.clone());
    let guard = tracing::subscriber::set_default(subscriber);
    let outcome = handle(&processor, LambdaEvent::new(payload, context)).await;
    drop(guard);
    assert!(outcome.is_ok(), "the invocation succeeds");
    let bytes = captured.0.lock().unwrap().clone();
    String::from_utf8(bytes).unwrap()
}

/// The two tests take turns: `tracing` caches per call site whether anyone
/// listens, and a call site first reached on one thread while the other
/// test's thread-local subscriber is being set can be cached as unheard,
/// dropping the very lines the log test reads.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

#[tokio::test]
async fn payloads_are_logged_at_debug_only_and_credentials_never() {
    let _turn = ONE_AT_A_TIME.lock().await;
    let stack = Stack::new("logs").await;
    let lines = lines_of("events/lines/authorization-failures.jsonl");
    let first: serde_json::Value = serde_json::from_str(&lines[0]).unwrap();
    let (trace_id, source_ip) = (
        first["traceId"].as_str().unwrap(),
        first["sourceIp"].as_str().unwrap(),
    );

    let info = log_of_invocation(&stack, "info", false, "info").await;
    assert_eq!(
        info.matches("batch processed").count(),
        1,
        "one summary line:\n{info}"
    );
    for payload_part in [trace_id, source_ip] {
        assert!(
            !info.contains(payload_part),
            "{payload_part} logged at INFO:\n{info}"
        );
    }

    let debug = log_of_invocation(&stack, "debug", false, "debug").await;
    assert!(
        debug.contains(trace_id) && debug.contains(source_ip),
        "incidents are logged whole at DEBUG"
    );
    // Issue 16 (7): at DEBUG and TRACE the SDK logs its requests, with the
    // Authorization header that names the access key; whatever level is
    // asked for, only INFO and above pass from the SDK's crates.
    let trace = log_of_invocation(&stack, "trace", false, "trace").await;
    let trace_json = log_of_invocation(
        &stack,
        "trace,aws_smithy_runtime=trace,aws_config=trace",
        true,
        "trace-json",
    )
    .await;
    for log in [&trace, &trace_json] {
        assert!(
            log.contains(trace_id),
            "the function's own DEBUG events still pass"
        );
    }
    for line in trace_json.lines() {
        let record: serde_json::Value = serde_json::from_str(line).expect("JSON lines");
        assert!(
            record["timestamp"].is_string(),
            "Lambda reads the time: {line}"
        );
        assert!(record["level"].is_string(), "and the level: {line}");
    }
    for log in [&info, &debug, &trace, &trace_json] {
        assert!(!log.contains(SECRET_KEY), "the secret key was logged");
        assert!(!log.contains(ACCESS_KEY), "the access key id was logged");
    }
}

#[tokio::test]
async fn after_a_bomb_and_a_malformed_event_the_next_invocation_is_served() {
    let _turn = ONE_AT_A_TIME.lock().await;
    use flate2::write::GzEncoder;

    let stack = Stack::new("after-bad").await;
    let processor = stack.processor(&[("MAX_DECOMPRESSED_BYTES", "8388608")]);
    // 64 MiB of zeros: 64 KiB gzipped, refused at the 8 MiB cap.
    let mut bomb = GzEncoder::new(Vec::new(), flate2::Compression::best());
    for _ in 0..64 {
        bomb.write_all(&vec![0u8; 1 << 20]).unwrap();
    }
    let bomb = base64_simd::STANDARD.encode_to_string(bomb.finish().unwrap());
    let bad_events = [
        (
            serde_json::json!({ "awslogs": { "data": bomb } }).to_string(),
            "IotLogMonitor.Decode.TooLarge",
        ),
        (
            r#"{"awslogs":{"data":"not base64!"}}"#.to_owned(),
            "IotLogMonitor.Decode.Base64",
        ),
        (
            r#"{"detail-type":"Object Created","source":"aws.s3"}"#.to_owned(),
            "IotLogMonitor.Decode.NotSubscriptionEvent",
        ),
    ];
    for (i, (event, error_type)) in bad_events.into_iter().enumerate() {
        let payload = RawValue::from_string(event).unwrap();
        let error = handle(
            &processor,
            LambdaEvent::new(payload, context(&format!("bad-{i}"))),
        )
        .await
        .expect_err("bad input fails the invocation");
        let diagnostic = lambda_runtime::Diagnostic::from(error);
        assert_eq!(
            diagnostic.error_type, error_type,
            "{}",
            diagnostic.error_message
        );
    }

    let lines = lines_of("events/lines/authorization-failures.jsonl");
    let payload = RawValue::from_string(event("after-bad", 3, &lines, NOW)).unwrap();
    let response = handle(&processor, LambdaEvent::new(payload, context("good")))
        .await
        .expect("the next batch is served");
    assert_eq!(response.summary().stored, lines.len());
}
