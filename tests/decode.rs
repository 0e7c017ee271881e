//! The front door, base64 and bounded gunzip (`ingest::decode`), tested
//! from outside with events built as CloudWatch Logs builds them.

use iot_log_monitor::error::DecodeError;
use iot_log_monitor::ingest::batch::MessageType;
use iot_log_monitor::ingest::decode::*;
use iot_log_monitor::tooling::encode::{gzip, subscription_event_json, BatchSpec};

fn encode(json: &[u8]) -> String {
    base64_simd::STANDARD.encode_to_string(gzip(json))
}

#[test]
fn decodes_a_batch_and_ignores_unknown_envelope_fields() {
    let json = br#"{"messageType":"DATA_MESSAGE","owner":"123456789012","logGroup":"AWSIotLogsV2",
        "logStream":"s","subscriptionFilters":["f"],"policyLevel":"ACCOUNT_LEVEL_POLICY",
        "logEvents":[{"id":"1","timestamp":5,"message":"{\"eventType\":\"Connect\"}","extra":1}]}"#;
    let buf = decode_data(&encode(json), 1 << 20).unwrap();
    let batch = parse_batch(&buf).unwrap();
    assert_eq!(batch.kind().unwrap(), MessageType::Data);
    assert_eq!(batch.log_group, "AWSIotLogsV2");
    assert_eq!(batch.log_events.len(), 1);
    let mut msg = String::new();
    batch.log_events[0].message_into(&mut msg).unwrap();
    assert_eq!(msg, r#"{"eventType":"Connect"}"#);
}

#[test]
fn control_messages_are_recognised() {
    let json = br#"{"messageType":"CONTROL_MESSAGE","owner":"CloudwatchLogs","logGroup":"","logStream":"",
        "subscriptionFilters":[],"logEvents":[{"id":"","timestamp":1,"message":"CWL CONTROL MESSAGE: Checking health of destination Lambda function."}]}"#;
    let buf = decode_data(&encode(json), 1 << 20).unwrap();
    assert_eq!(
        parse_batch(&buf).unwrap().kind().unwrap(),
        MessageType::Control
    );
}

#[test]
fn every_bad_input_has_its_own_clear_error() {
    assert!(matches!(
        subscription_data(r#"{"Records":[]}"#),
        Err(DecodeError::NotSubscriptionEvent(_))
    ));
    assert!(matches!(
        subscription_data(r#"{"awslogs":{"data":7}}"#),
        Err(DecodeError::NotSubscriptionEvent(_))
    ));
    assert!(matches!(
        decode_data("not base64!!", 1024),
        Err(DecodeError::Base64)
    ));
    let not_gzip = base64_simd::STANDARD.encode_to_string(b"plain text, not gzip");
    assert!(matches!(
        decode_data(&not_gzip, 1024),
        Err(DecodeError::Gzip(_))
    ));
    let mut truncated = gzip(b"{\"messageType\":\"DATA_MESSAGE\"}");
    truncated.truncate(truncated.len() - 6);
    let truncated = base64_simd::STANDARD.encode_to_string(truncated);
    assert!(matches!(
        decode_data(&truncated, 1024),
        Err(DecodeError::Gzip(_))
    ));
    let buf = decode_data(&encode(b"[1,2,3]"), 1024).unwrap();
    assert!(matches!(parse_batch(&buf), Err(DecodeError::Envelope(_))));
    let odd = br#"{"messageType":"NEW_KIND","logGroup":"g","logStream":"s","logEvents":[]}"#;
    let buf = decode_data(&encode(odd), 1024).unwrap();
    assert!(
        matches!(parse_batch(&buf), Err(DecodeError::UnknownMessageType(t)) if t == "NEW_KIND")
    );
    let numeric = br#"{"messageType":"DATA_MESSAGE","logGroup":"g","logStream":"s","logEvents":[{"id":"9","timestamp":1,"message":42}]}"#;
    let buf = decode_data(&encode(numeric), 1024).unwrap();
    let batch = parse_batch(&buf).unwrap();
    let err = batch.log_events[0]
        .message_into(&mut String::new())
        .unwrap_err();
    assert!(err.to_string().contains("log event 9"), "{err}");
}

#[test]
fn the_decompression_cap_is_exact() {
    let payload = vec![b'a'; 10_000];
    let data = encode(&payload);
    assert_eq!(decode_data(&data, 10_000).unwrap().len(), 10_000);
    assert!(matches!(
        decode_data(&data, 9_999),
        Err(DecodeError::TooLarge { cap: 9_999 })
    ));
}

#[test]
fn a_lying_size_trailer_is_refused_without_reserving_memory() {
    let with_size = |size: u32| {
        let mut gz = gzip(&[b'a'; 4096]);
        let n = gz.len();
        gz[n - 4..].copy_from_slice(&size.to_le_bytes());
        gz
    };
    // Larger than the cap, but the data ends well before: corrupt, not too large.
    assert!(matches!(
        gunzip_bounded(&with_size(u32::MAX), 1 << 20),
        Err(DecodeError::Gzip(_))
    ));
    let understated = gunzip_bounded(&with_size(100), 1 << 20).unwrap_err();
    assert!(
        understated
            .to_string()
            .contains("past the size its trailer declares"),
        "{understated}"
    );
    assert!(matches!(
        gunzip_bounded(&with_size(5000), 1 << 20),
        Err(DecodeError::Gzip(_))
    ));
    assert_eq!(
        gunzip_bounded(&with_size(4096), 1 << 20).unwrap().len(),
        4096
    );
}

#[test]
fn agrees_with_aws_lambda_events_on_a_real_shaped_batch() {
    let spec = BatchSpec::new("AWSIotLogsV2", "stream-1");
    let lines = [
        r#"{"timestamp":"2017-08-10 15:37:23.476","logLevel":"INFO","eventType":"Connect","status":"Success"}"#,
        r#"{"eventType":"RuleNotFound","details":"Rule \"x\" not found ☃"}"#,
    ];
    let event = subscription_event_json(&spec, lines.iter().map(|l| (1_000i64, *l)));
    let reference: aws_lambda_events::event::cloudwatch_logs::LogsEvent =
        serde_json::from_str(&event).unwrap();
    let data = subscription_data(&event).unwrap();
    let buf = decode_data(&data, 1 << 20).unwrap();
    let batch = parse_batch(&buf).unwrap();
    assert_eq!(batch.log_group, reference.aws_logs.data.log_group);
    assert_eq!(
        batch.log_events.len(),
        reference.aws_logs.data.log_events.len()
    );
    let mut msg = String::new();
    for (mine, theirs) in batch
        .log_events
        .iter()
        .zip(&reference.aws_logs.data.log_events)
    {
        mine.message_into(&mut msg).unwrap();
        assert_eq!(msg, theirs.message);
        assert_eq!(mine.id, theirs.id);
    }
}

/// Issue 20: zlib-wrapped batches (some tools and fixtures write them) are
/// read as gzip ones are, under the same cap.
#[test]
fn zlib_batches_are_read_under_the_same_cap() {
    use flate2::write::ZlibEncoder;
    use std::io::Write;
    let zlib = |bytes: &[u8]| {
        let mut encoder = ZlibEncoder::new(Vec::new(), flate2::Compression::default());
        encoder.write_all(bytes).unwrap();
        encoder.finish().unwrap()
    };
    let json = br#"{"messageType":"DATA_MESSAGE","owner":"1","logGroup":"AWSIotLogsV2","logStream":"s","logEvents":[{"id":"1","timestamp":5,"message":"{\"eventType\":\"Connect\"}"}]}"#;
    let data = base64_simd::STANDARD.encode_to_string(zlib(json));
    let buffer = decode_data(&data, 1 << 20).unwrap();
    assert_eq!(buffer, json);
    assert_eq!(parse_batch(&buffer).unwrap().log_events.len(), 1);

    let bomb = zlib(&vec![0u8; 4 << 20]);
    assert!(matches!(
        decompress_bounded(&bomb, 1 << 20),
        Err(DecodeError::TooLarge { cap }) if cap == 1 << 20
    ));
    assert_eq!(
        decompress_bounded(&bomb, 4 << 20).unwrap().len(),
        4 << 20,
        "exactly at the cap"
    );
    let mut torn = zlib(json);
    torn.truncate(torn.len() - 6);
    assert!(matches!(
        decompress_bounded(&torn, 1 << 20),
        Err(DecodeError::Gzip(_))
    ));
    assert!(matches!(
        decompress_bounded(b"not compressed at all", 1 << 20),
        Err(DecodeError::Gzip("no gzip header"))
    ));
}
