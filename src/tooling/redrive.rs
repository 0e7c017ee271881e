//! Batches kept by the failure destinations. Lambda's record of a failed
//! asynchronous invocation (the direct path, in SQS) holds the original event
//! under `requestPayload`; a Kinesis event source mapping's record in S3
//! holds the whole invocation under `payload`; its record in SQS holds only
//! the shard and sequence range (the records themselves stay in the stream
//! until they expire).

use serde_json::Value;

/// A failed invocation, as the OnFailure destination recorded it.
#[derive(Debug, Clone, PartialEq)]
pub struct FailedInvocation {
    pub request_id: Option<String>,
    pub condition: Option<String>,
    pub attempts: Option<u64>,
    pub error_type: Option<String>,
    pub error_message: Option<String>,
    /// The original invocation event, as JSON text.
    pub payload: String,
}

/// Why a message in the failure queue is not a destination record.
#[derive(Debug, thiserror::Error)]
pub enum NotARecord {
    #[error("not JSON: {0}")]
    NotJson(#[source] serde_json::Error),
    #[error("no requestPayload: not a Lambda destination record")]
    NoPayload,
    /// A Kinesis record in SQS: metadata only, nothing to replay.
    #[error(
        "a Kinesis failure record without its records (shard {shard}, sequence numbers {first} to {last}): \
         read them from the stream before they expire; stacks from this template keep them whole in S3"
    )]
    MetadataOnly {
        shard: String,
        first: String,
        last: String,
    },
}

/// Reads a destination record.
pub fn parse_destination_record(body: &str) -> Result<FailedInvocation, NotARecord> {
    let record: Value = serde_json::from_str(body).map_err(NotARecord::NotJson)?;
    let text = |v: &Value| v.as_str().map(str::to_owned);
    let batch = &record["KinesisBatchInfo"];
    let payload = match (record.get("requestPayload"), record.get("payload")) {
        (Some(payload), _) => payload.to_string(),
        // The documentation shows `"payload": "<Whole Event>"`: take the
        // event as JSON text or as JSON.
        (None, Some(Value::String(event))) => event.clone(),
        (None, Some(event)) => event.to_string(),
        (None, None) if batch.is_object() => {
            return Err(NotARecord::MetadataOnly {
                shard: text(&batch["shardId"]).unwrap_or_default(),
                first: text(&batch["startSequenceNumber"]).unwrap_or_default(),
                last: text(&batch["endSequenceNumber"]).unwrap_or_default(),
            })
        }
        (None, None) => return Err(NotARecord::NoPayload),
    };
    let context = &record["requestContext"];
    let response = &record["responsePayload"];
    Ok(FailedInvocation {
        request_id: text(&context["requestId"]),
        condition: text(&context["condition"]),
        attempts: context["approximateInvokeCount"].as_u64(),
        error_type: text(&response["errorType"]),
        error_message: text(&response["errorMessage"]),
        payload,
    })
}

/// An object key S3 listed that no request can name (its bytes, decoded,
/// are not UTF-8; S3 itself accepts only UTF-8 keys, so only a store that
/// breaks that rule can hold one).
#[derive(Debug, thiserror::Error)]
#[error(
    "object key {encoded} (as listed, URL-encoded) is not UTF-8 once decoded: it cannot be read"
)]
pub struct UndecodableKey {
    pub encoded: String,
}

/// A key as ListObjectsV2 returns it with `EncodingType=url`. The listing
/// is asked to encode keys because XML 1.0 cannot carry most control
/// characters: one such key made the whole listing unreadable, so one odd
/// object blocked every other. S3 writes a space as `+` and a `+` as `%2B`
/// (the AWS SDKs that decode for their callers read it with
/// `unquote_plus`), so `+` is read as a space before percent-decoding.
pub fn decode_listed_key(encoded: &str) -> Result<String, UndecodableKey> {
    let spaced = encoded.replace('+', " ");
    percent_encoding::percent_decode_str(&spaced)
        .decode_utf8()
        .map(std::borrow::Cow::into_owned)
        .map_err(|_| UndecodableKey {
            encoded: encoded.to_owned(),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listed_keys_are_decoded_as_s3_encodes_them() {
        // What S3 (a space as `+`) and moto (`%20`) write for the same keys.
        for (encoded, key) in [
            ("aws/lambda/plain", "aws/lambda/plain"),
            ("aws/lambda/a+b%2Bc", "aws/lambda/a b+c"),
            ("aws/lambda/a%20b", "aws/lambda/a b"),
            (
                "aws/lambda/%1B%5B2J%07%E2%80%AE",
                "aws/lambda/\u{1b}[2J\u{7}\u{202e}",
            ),
            ("aws/lambda/caf%C3%A9", "aws/lambda/café"),
        ] {
            assert_eq!(decode_listed_key(encoded).unwrap(), key, "{encoded}");
        }
        // Bytes that are not UTF-8 name no key a request could send.
        let odd = decode_listed_key("aws/lambda/%FF%FE").unwrap_err();
        assert_eq!(odd.encoded, "aws/lambda/%FF%FE");
        assert!(odd.to_string().contains("not UTF-8"), "{odd}");
    }

    /// The invocation record of an asynchronous invocation as the Lambda
    /// developer guide shows it ("Capturing records of Lambda asynchronous
    /// invocations"), with an errorType as the runtime reports one.
    #[test]
    fn reads_what_lambda_writes() {
        let body = r#"{
            "version": "1.0",
            "timestamp": "2019-11-14T18:16:05.568Z",
            "requestContext": {
                "requestId": "e4b46cbf-b738-xmpl-8880-a18cdf61200e",
                "functionArn": "arn:aws:lambda:us-east-2:123456789012:function:my-function:$LATEST",
                "condition": "RetriesExhausted",
                "approximateInvokeCount": 3
            },
            "requestPayload": {"awslogs": {"data": "H4sI"}},
            "responseContext": {
                "statusCode": 200,
                "executedVersion": "$LATEST",
                "functionError": "Unhandled"
            },
            "responsePayload": {
                "errorType": "IotLogMonitor.Store.Unprocessed",
                "errorMessage": "RequestId: e4b46cbf-b738-xmpl-8880-a18cdf61200e throttled"
            }
        }"#;
        let failed = parse_destination_record(body).unwrap();
        assert_eq!(
            failed.request_id.as_deref(),
            Some("e4b46cbf-b738-xmpl-8880-a18cdf61200e")
        );
        assert_eq!(failed.condition.as_deref(), Some("RetriesExhausted"));
        assert_eq!(failed.attempts, Some(3));
        assert_eq!(
            failed.error_type.as_deref(),
            Some("IotLogMonitor.Store.Unprocessed")
        );
        assert_eq!(
            serde_json::from_str::<Value>(&failed.payload).unwrap(),
            serde_json::json!({"awslogs": {"data": "H4sI"}})
        );
    }

    #[test]
    fn other_messages_are_refused_with_a_reason() {
        assert!(parse_destination_record("hello")
            .unwrap_err()
            .to_string()
            .contains("not JSON"));
        assert!(parse_destination_record(r#"{"awslogs":{}}"#)
            .unwrap_err()
            .to_string()
            .contains("requestPayload"));
    }

    /// The Kinesis on-failure record as the Lambda developer guide shows it
    /// ("Retain discarded batch records for a Kinesis Data Streams event
    /// source"), with `payload` ("only available in S3") holding the event.
    fn kinesis_record(payload: Option<Value>) -> String {
        let mut record = serde_json::json!({
            "requestContext": {
                "requestId": "c9b8fa9f-5a7f-xmpl-af9c-0c604cde93a5",
                "functionArn": "arn:aws:lambda:us-east-2:123456789012:function:myfunction",
                "condition": "RetryAttemptsExhausted",
                "approximateInvokeCount": 1
            },
            "responseContext": {
                "statusCode": 200,
                "executedVersion": "$LATEST",
                "functionError": "Unhandled"
            },
            "version": "1.0",
            "timestamp": "2019-11-14T00:38:06.021Z",
            "KinesisBatchInfo": {
                "shardId": "shardId-000000000001",
                "startSequenceNumber": "49601189658422359378836298521827638475320189012309704722",
                "endSequenceNumber": "49601189658422359378836298522902373528957594348623495186",
                "approximateArrivalOfFirstRecord": "2019-11-14T00:38:04.835Z",
                "approximateArrivalOfLastRecord": "2019-11-14T00:38:05.580Z",
                "batchSize": 500,
                "streamArn": "arn:aws:kinesis:us-east-2:123456789012:stream/mystream"
            }
        });
        if let Some(payload) = payload {
            record["payload"] = payload;
        }
        record.to_string()
    }

    #[test]
    fn a_kinesis_record_kept_in_s3_carries_the_whole_event_as_json_or_as_text() {
        let event = serde_json::json!({"Records": [{"kinesis": {"data": "H4sI"}}]});
        for payload in [event.clone(), Value::String(event.to_string())] {
            let failed = parse_destination_record(&kinesis_record(Some(payload))).unwrap();
            assert_eq!(
                serde_json::from_str::<Value>(&failed.payload).unwrap(),
                event
            );
            assert_eq!(failed.condition.as_deref(), Some("RetryAttemptsExhausted"));
            assert_eq!(
                failed.request_id.as_deref(),
                Some("c9b8fa9f-5a7f-xmpl-af9c-0c604cde93a5")
            );
        }
    }

    #[test]
    fn a_kinesis_record_in_sqs_is_named_for_what_it_lacks() {
        let why = parse_destination_record(&kinesis_record(None))
            .unwrap_err()
            .to_string();
        assert!(why.contains("shard shardId-000000000001"), "{why}");
        assert!(why.contains("49601189658422359378836298521827638475320189012309704722"));
        assert!(why.contains("S3"), "{why}");
    }
}
