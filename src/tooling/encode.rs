//! The inverse of `decode`: builds CloudWatch Logs subscription events exactly
//! as CloudWatch delivers them (envelope JSON, gzip, base64 inside
//! `{"awslogs":{"data":…}}`). Used by the CLI's `encode`, the fixtures in
//! `events/`, the tests and the benchmarks.

use std::io::Write;

use serde::Serialize;

use crate::model::time::parse_iot_timestamp;

/// Where a batch claims to come from.
#[derive(Debug, Clone)]
pub struct BatchSpec {
    pub owner: String,
    pub log_group: String,
    pub log_stream: String,
    pub subscription_filter: String,
    /// Distinguishes the event ids of different batches built from the same lines.
    pub id_seed: u64,
}

impl BatchSpec {
    pub fn new(log_group: &str, log_stream: &str) -> Self {
        Self {
            owner: "123456789012".into(),
            log_group: log_group.into(),
            log_stream: log_stream.into(),
            subscription_filter: "iot-log-monitor".into(),
            id_seed: 0,
        }
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Envelope<'a> {
    pub message_type: &'static str,
    pub owner: &'a str,
    pub log_group: &'a str,
    pub log_stream: &'a str,
    pub subscription_filters: [&'a str; 1],
    pub log_events: Vec<EnvelopeEvent<'a>>,
}

#[derive(Serialize)]
pub struct EnvelopeEvent<'a> {
    pub id: String,
    pub timestamp: i64,
    pub message: &'a str,
}

/// CloudWatch event ids are 56 decimal digits; these are deterministic and
/// unique per (timestamp, seed, position).
pub fn event_id(timestamp: i64, seed: u64, index: usize) -> String {
    format!(
        "{:020}{:018}{:018}",
        timestamp.max(0),
        seed % 1_000_000_000_000_000_000,
        index
    )
}

/// The CloudWatch timestamp for a raw IoT line: its own `timestamp` if it has one.
pub fn line_timestamp(line: &str, fallback_ms: i64) -> i64 {
    #[derive(serde::Deserialize)]
    struct Ts<'a> {
        #[serde(borrow)]
        timestamp: Option<std::borrow::Cow<'a, str>>,
    }
    serde_json::from_str::<Ts>(line)
        .ok()
        .and_then(|t| t.timestamp)
        .and_then(|t| parse_iot_timestamp(&t))
        .unwrap_or(fallback_ms)
}

/// Shifts every line's `timestamp` by the same amount so that the newest is
/// `newest_ms`: recorded lines replayed as if they happened just now. Lines
/// without a valid timestamp are left as they are.
pub fn retime_lines(lines: &[&str], newest_ms: i64) -> Vec<String> {
    let stamps: Vec<Option<(String, i64)>> = lines
        .iter()
        .map(|line| {
            let value: serde_json::Value = serde_json::from_str(line).ok()?;
            let text = value.get("timestamp")?.as_str()?.to_owned();
            let ms = parse_iot_timestamp(&text)?;
            Some((text, ms))
        })
        .collect();
    let Some(latest) = stamps.iter().flatten().map(|(_, ms)| *ms).max() else {
        return lines.iter().map(|l| (*l).to_owned()).collect();
    };
    let shift = newest_ms - latest;
    lines
        .iter()
        .zip(stamps)
        .map(|(line, stamp)| match stamp {
            Some((text, ms)) => line.replacen(
                &format!("\"{text}\""),
                &format!(
                    "\"{}\"",
                    crate::model::time::format_iot_timestamp(ms + shift)
                ),
                1,
            ),
            None => (*line).to_owned(),
        })
        .collect()
}

pub fn envelope<'a>(
    spec: &'a BatchSpec,
    events: impl IntoIterator<Item = (i64, &'a str)>,
) -> Envelope<'a> {
    Envelope {
        message_type: "DATA_MESSAGE",
        owner: &spec.owner,
        log_group: &spec.log_group,
        log_stream: &spec.log_stream,
        subscription_filters: [&spec.subscription_filter],
        log_events: events
            .into_iter()
            .enumerate()
            .map(|(i, (timestamp, message))| EnvelopeEvent {
                id: event_id(timestamp, spec.id_seed, i),
                timestamp,
                message,
            })
            .collect(),
    }
}

pub fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder
        .write_all(bytes)
        .expect("writing to a Vec cannot fail");
    encoder.finish().expect("writing to a Vec cannot fail")
}

/// `{"awslogs":{"data":"<base64(gzip(envelope_json))>"}}`.
pub fn wrap_envelope_json(envelope_json: &[u8]) -> String {
    let data = base64_simd::STANDARD.encode_to_string(gzip(envelope_json));
    serde_json::json!({ "awslogs": { "data": data } }).to_string()
}

/// A Kinesis event as Lambda delivers it from a stream that a subscription
/// filter writes to: one record per subscription batch, each record's data
/// the batch's `awslogs.data`. Sequence numbers and arrival times are
/// deterministic (`first_sequence` + position).
pub fn kinesis_event_json(datas: &[&str], first_sequence: u128, arrival_ms: i64) -> String {
    let records: Vec<serde_json::Value> = datas
        .iter()
        .enumerate()
        .map(|(i, data)| {
            let sequence = format!("{:056}", first_sequence + i as u128);
            serde_json::json!({
                "kinesis": {
                    "kinesisSchemaVersion": "1.0",
                    "partitionKey": format!("{:032x}", first_sequence + i as u128),
                    "sequenceNumber": sequence,
                    "data": data,
                    "approximateArrivalTimestamp": arrival_ms as f64 / 1000.0,
                },
                "eventSource": "aws:kinesis",
                "eventVersion": "1.0",
                "eventID": format!("shardId-000000000000:{sequence}"),
                "eventName": "aws:kinesis:record",
                "invokeIdentityArn": "arn:aws:iam::123456789012:role/iot-log-monitor-processor",
                "awsRegion": "us-east-1",
                "eventSourceARN": "arn:aws:kinesis:us-east-1:123456789012:stream/iot-log-monitor-logs",
            })
        })
        .collect();
    serde_json::json!({ "Records": records }).to_string()
}

/// A complete subscription event for `(timestamp, message)` pairs.
pub fn subscription_event_json<'a>(
    spec: &'a BatchSpec,
    events: impl IntoIterator<Item = (i64, &'a str)>,
) -> String {
    let envelope = envelope(spec, events);
    wrap_envelope_json(&serde_json::to_vec(&envelope).expect("serialising plain data cannot fail"))
}

/// Realistic IoT log lines for benchmarks and load tests: the mix of a busy
/// fleet (connects, publishes, rule executions, shadow updates) with
/// `failure_percent` of failures, distinct ids throughout so that gzip does
/// not flatter the numbers. Deterministic for a given seed.
pub fn synthetic_lines(count: usize, failure_percent: u32, seed: u64) -> Vec<String> {
    let mut rng = fastrand::Rng::with_seed(seed);
    let mut hex = |n: usize| -> String {
        (0..n)
            .map(|_| char::from_digit(rng.u32(0..16), 16).unwrap())
            .collect()
    };
    let base_ms = 1_795_300_000_000i64;
    (0..count)
        .map(|i| {
            let ts = crate::model::time::format_iot_timestamp(base_ms + i as i64 * 7);
            let trace = format!("{}-{}-{}-{}-{}", hex(8), hex(4), hex(4), hex(4), hex(12));
            let client = format!("sensor-{:05}", (i * 7919) % 20_000);
            let principal = hex(64);
            let ip = format!("10.{}.{}.{}", i % 200, (i / 200) % 250, i % 251);
            let failed = (i as u64 * 2_654_435_761 + seed) % 100 < u64::from(failure_percent);
            let (level, status) = if failed { ("ERROR", "Failure") } else { ("INFO", "Success") };
            match i % 5 {
                0 if failed => format!(
                    r#"{{"timestamp":"{ts}","logLevel":"ERROR","traceId":"{trace}","accountId":"123456789012","status":"Failure","eventType":"RuleMessageThrottled","clientId":"{client}","topicName":"$aws/rules/telemetry_{r}","ruleName":"telemetry_{r}","principalId":"{principal}","reason":"RuleExecutionThrottled","details":"Message for Rule telemetry_{r} throttled"}}"#,
                    r = i % 10
                ),
                0 | 1 => format!(
                    r#"{{"timestamp":"{ts}","logLevel":"{level}","traceId":"{trace}","accountId":"123456789012","status":"{status}","eventType":"Publish-In","protocol":"MQTT","topicName":"factory/line{}/telemetry","clientId":"{client}","principalId":"{principal}","sourceIp":"{ip}","sourcePort":{}}}"#,
                    i % 12,
                    1024 + i % 60_000
                ),
                2 => format!(
                    r#"{{"timestamp":"{ts}","logLevel":"{level}","traceId":"{trace}","accountId":"123456789012","status":"{status}","eventType":"RuleExecution","clientId":"{client}","topicName":"factory/line{}/telemetry","ruleName":"telemetry_{}","ruleAction":"DynamoActionV2","resources":{{"TableName":"telemetry","Region":"us-east-1"}},"principalId":"{principal}"}}"#,
                    i % 12,
                    i % 10
                ),
                3 => format!(
                    r#"{{"timestamp":"{ts}","logLevel":"{level}","traceId":"{trace}","accountId":"123456789012","status":"{status}","eventType":"UpdateThingShadow","protocol":"MQTT","deviceShadowName":"{client}","topicName":"$aws/things/{client}/shadow/update"}}"#
                ),
                _ => format!(
                    r#"{{"timestamp":"{ts}","logLevel":"{level}","traceId":"{trace}","accountId":"123456789012","status":"{status}","eventType":"Connect","protocol":"MQTT","clientId":"{client}","principalId":"{principal}","sourceIp":"{ip}","sourcePort":{}}}"#,
                    1024 + i % 60_000
                ),
            }
        })
        .collect()
}

/// A subscription event of `count` synthetic lines.
pub fn synthetic_event(count: usize, failure_percent: u32, seed: u64) -> String {
    let lines = synthetic_lines(count, failure_percent, seed);
    let mut spec = BatchSpec::new("AWSIotLogsV2", "synthetic");
    spec.id_seed = seed;
    subscription_event_json(
        &spec,
        lines.iter().map(|l| (line_timestamp(l, 0), l.as_str())),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retiming_keeps_offsets_and_moves_the_newest_to_the_target() {
        let lines = [
            r#"{"timestamp":"2017-10-04 19:25:46.070","eventType":"RuleNotFound"}"#,
            r#"{"eventType":"X","timestamp":"2017-10-04 19:25:47.112"}"#,
            "plain text",
        ];
        let target = parse_iot_timestamp("2026-11-22 10:00:00.000").unwrap();
        let out = retime_lines(&lines, target);
        assert_eq!(
            out[0],
            r#"{"timestamp":"2026-11-22 09:59:58.958","eventType":"RuleNotFound"}"#
        );
        assert_eq!(
            out[1],
            r#"{"eventType":"X","timestamp":"2026-11-22 10:00:00.000"}"#
        );
        assert_eq!(out[2], "plain text");
    }
}
