//! The inverse of `decode`: builds CloudWatch Logs subscription events exactly
//! as CloudWatch delivers them (envelope JSON, gzip, base64 inside
//! `{"awslogs":{"data":…}}`). Used by the CLI's `encode`, the fixtures in
//! `events/`, the tests and the benchmarks.

use std::io::Write;

use base64::Engine as _;
use serde::Serialize;

use crate::timefmt::parse_iot_timestamp;

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
                &format!("\"{}\"", crate::timefmt::format_iot_timestamp(ms + shift)),
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
    let data = base64::engine::general_purpose::STANDARD.encode(gzip(envelope_json));
    serde_json::json!({ "awslogs": { "data": data } }).to_string()
}

/// A complete subscription event for `(timestamp, message)` pairs.
pub fn subscription_event_json<'a>(
    spec: &'a BatchSpec,
    events: impl IntoIterator<Item = (i64, &'a str)>,
) -> String {
    let envelope = envelope(spec, events);
    wrap_envelope_json(&serde_json::to_vec(&envelope).expect("serialising plain data cannot fail"))
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
