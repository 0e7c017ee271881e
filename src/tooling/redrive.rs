//! Batches kept in the failure destination: Lambda's OnFailure record holds
//! the original event under `requestPayload`.

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
}

/// Reads a destination record.
pub fn parse_destination_record(body: &str) -> Result<FailedInvocation, NotARecord> {
    let record: Value = serde_json::from_str(body).map_err(NotARecord::NotJson)?;
    let payload = record.get("requestPayload").ok_or(NotARecord::NoPayload)?;
    let text = |v: &Value| v.as_str().map(str::to_owned);
    let context = &record["requestContext"];
    let response = &record["responsePayload"];
    Ok(FailedInvocation {
        request_id: text(&context["requestId"]),
        condition: text(&context["condition"]),
        attempts: context["approximateInvokeCount"].as_u64(),
        error_type: text(&response["errorType"]),
        error_message: text(&response["errorMessage"]),
        payload: payload.to_string(),
    })
}

/// The record Lambda writes for an invocation that exhausted its retries (for tests and the demo).
pub fn destination_record(
    request_id: &str,
    payload: &Value,
    error_type: &str,
    error_message: &str,
) -> String {
    serde_json::json!({
        "version": "1.0",
        "timestamp": "2026-11-22T10:00:00.000Z",
        "requestContext": {
            "requestId": request_id,
            "functionArn": "arn:aws:lambda:us-east-1:123456789012:function:iot-log-monitor-processor:$LATEST",
            "condition": "RetriesExhausted",
            "approximateInvokeCount": 3
        },
        "requestPayload": payload,
        "responseContext": { "statusCode": 200, "executedVersion": "$LATEST", "functionError": "Unhandled" },
        "responsePayload": { "errorType": error_type, "errorMessage": error_message }
    })
    .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_what_lambda_writes() {
        let payload = serde_json::json!({"awslogs": {"data": "H4sI"}});
        let body = destination_record(
            "req-1",
            &payload,
            "IotLogMonitor.Store.Unprocessed",
            "throttled",
        );
        let failed = parse_destination_record(&body).unwrap();
        assert_eq!(failed.request_id.as_deref(), Some("req-1"));
        assert_eq!(failed.condition.as_deref(), Some("RetriesExhausted"));
        assert_eq!(failed.attempts, Some(3));
        assert_eq!(
            failed.error_type.as_deref(),
            Some("IotLogMonitor.Store.Unprocessed")
        );
        assert_eq!(
            serde_json::from_str::<Value>(&failed.payload).unwrap(),
            payload
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
}
