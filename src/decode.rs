//! From a Lambda invocation's bytes to the log events of one CloudWatch Logs
//! batch: base64, bounded gunzip, and the envelope, parsed in place.
//!
//! Everything here is pure and bounded: the decompressed size is capped before
//! memory is committed, so a gzip bomb costs at most the cap.

use std::borrow::Cow;

use serde::Deserialize;
use serde_json::value::RawValue;

use crate::classify::Category;
use crate::envelope::read_batch;
use crate::error::DecodeError;
use crate::incident::category_of_escaped;
use crate::scan::Backslashes;

/// Default cap on a decompressed batch. Real batches are at most ~1 MB gzipped
/// (a few MB of JSON); the cap leaves room while keeping peak memory far
/// below a 128 MB function.
pub const DEFAULT_MAX_DECOMPRESSED_BYTES: usize = 32 * 1024 * 1024;

/// What invoked the function: a subscription's batch directly, or a Kinesis
/// batch whose records each carry one (the subscription sent to a stream).
#[derive(Debug)]
pub enum Invocation<'a> {
    Subscription(Cow<'a, str>),
    Kinesis(Vec<StreamRecord<'a>>),
}

/// One Kinesis record: its data is the same base64 gzip as `awslogs.data`.
#[derive(Debug, Deserialize)]
pub struct StreamRecord<'a> {
    #[serde(borrow)]
    pub kinesis: KinesisPayload<'a>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct KinesisPayload<'a> {
    /// What a partial batch response names a failed record by.
    #[serde(borrow)]
    pub sequence_number: Cow<'a, str>,
    #[serde(borrow)]
    pub data: Cow<'a, str>,
}

#[derive(Deserialize)]
struct AnyEvent<'a> {
    #[serde(borrow, default)]
    awslogs: Option<AwsLogs<'a>>,
    #[serde(rename = "Records", borrow, default)]
    records: Option<Vec<StreamRecord<'a>>>,
}

#[derive(Deserialize)]
struct AwsLogs<'a> {
    #[serde(borrow)]
    data: Cow<'a, str>,
}

/// Tells the two front doors apart in one parse of the Lambda event.
pub fn invocation(event_json: &str) -> Result<Invocation<'_>, DecodeError> {
    let event: AnyEvent = serde_json::from_str(event_json)
        .map_err(|e| DecodeError::NotSubscriptionEvent(e.to_string()))?;
    match (event.awslogs, event.records) {
        (Some(logs), None) => Ok(Invocation::Subscription(logs.data)),
        (None, Some(records)) => Ok(Invocation::Kinesis(records)),
        _ => Err(DecodeError::NotSubscriptionEvent(
            "expected exactly one of `awslogs` and `Records`".into(),
        )),
    }
}

/// Extracts `awslogs.data` from a direct subscription event.
pub fn subscription_data(event_json: &str) -> Result<Cow<'_, str>, DecodeError> {
    match invocation(event_json)? {
        Invocation::Subscription(data) => Ok(data),
        Invocation::Kinesis(_) => Err(DecodeError::NotSubscriptionEvent(
            "a Kinesis event, not a direct subscription".into(),
        )),
    }
}

/// base64 → gzip → bytes, refusing anything that decompresses past `max_decompressed`.
pub fn decode_data(data_base64: &str, max_decompressed: usize) -> Result<Vec<u8>, DecodeError> {
    let compressed = base64_simd::STANDARD
        .decode_to_vec(data_base64.trim())
        .map_err(|_| DecodeError::Base64)?;
    gunzip_bounded(&compressed, max_decompressed)
}

/// Gunzips one gzip member of at most `max` bytes of output.
///
/// libdeflate inflates in one call into a buffer of the final size, which
/// the gzip trailer's ISIZE gives. ISIZE comes from outside, so the buffer is
/// never larger than the cap, and libdeflate refuses to write past it: a
/// trailer that understates the size is an error, never a bigger allocation.
pub fn gunzip_bounded(compressed: &[u8], max: usize) -> Result<Vec<u8>, DecodeError> {
    const HEADER_AND_TRAILER: usize = 18;
    if compressed.len() < HEADER_AND_TRAILER || !compressed.starts_with(&[0x1f, 0x8b]) {
        return Err(DecodeError::Gzip("no gzip header"));
    }
    let trailer = &compressed[compressed.len() - 4..];
    let declared = u32::from_le_bytes(trailer.try_into().expect("4 bytes")) as usize;
    // A trailer declaring more than the cap may be honest (a bomb) or torn
    // (a truncated stream): inflating up to the cap tells which.
    let mut out = vec![0u8; declared.min(max)];
    match libdeflater::Decompressor::new().gzip_decompress(compressed, &mut out) {
        // libdeflate has checked the CRC and that the size matches ISIZE.
        Ok(written) if written == declared => Ok(out),
        Ok(_) => Err(DecodeError::Gzip("size does not match its trailer")),
        Err(libdeflater::DecompressionError::InsufficientSpace) if declared > max => {
            Err(DecodeError::TooLarge { cap: max })
        }
        Err(libdeflater::DecompressionError::InsufficientSpace) => Err(DecodeError::Gzip(
            "inflates past the size its trailer declares",
        )),
        Err(libdeflater::DecompressionError::BadData) => {
            Err(DecodeError::Gzip("corrupt or truncated data"))
        }
    }
}

/// What kind of batch CloudWatch Logs sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MessageType {
    /// Log events.
    Data,
    /// CloudWatch's reachability check when a subscription is created; carries no IoT logs.
    Control,
}

/// The decompressed subscription payload, borrowing from its buffer.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LogsBatch<'a> {
    #[serde(borrow)]
    pub message_type: Cow<'a, str>,
    #[serde(borrow, default)]
    pub owner: Cow<'a, str>,
    #[serde(borrow)]
    pub log_group: Cow<'a, str>,
    #[serde(borrow)]
    pub log_stream: Cow<'a, str>,
    #[serde(borrow, default)]
    pub subscription_filters: Vec<Cow<'a, str>>,
    #[serde(borrow, default)]
    pub log_events: Vec<RawLogEvent<'a>>,
}

/// One CloudWatch log event. The message stays as its escaped JSON text until
/// it is looked at: IoT messages are JSON inside a JSON string, so they
/// always hold escapes and cannot be borrowed as `&str`.
#[derive(Debug, Deserialize)]
pub struct RawLogEvent<'a> {
    #[serde(borrow)]
    pub id: Cow<'a, str>,
    pub timestamp: i64,
    /// The `message` value's JSON text as it lies in the envelope: a string
    /// literal, quotes included (anything else is refused when read).
    #[serde(rename = "message", borrow, deserialize_with = "json_text")]
    pub message_json: &'a str,
    /// The message's category (`Some(None)`: not an incident) when the
    /// envelope reader classified it in place while finding its end; `None`
    /// when it is left to [`crate::pipeline::analyze`]'s parsers.
    #[serde(skip)]
    pub category: Option<Option<Category>>,
}

fn json_text<'de, D: serde::Deserializer<'de>>(d: D) -> Result<&'de str, D::Error> {
    <&RawValue>::deserialize(d).map(RawValue::get)
}

impl LogsBatch<'_> {
    pub fn kind(&self) -> Result<MessageType, DecodeError> {
        match &*self.message_type {
            "DATA_MESSAGE" => Ok(MessageType::Data),
            "CONTROL_MESSAGE" => Ok(MessageType::Control),
            other => Err(DecodeError::UnknownMessageType(other.to_owned())),
        }
    }
}

/// Parses the envelope in place; unknown envelope fields (`policyLevel`, …) are ignored.
/// The shape CloudWatch writes is read by [`read_batch`]; anything else by serde_json.
/// Either way, each message the escaped scan reads is classified on the way
/// ([`RawLogEvent::category`]).
pub fn parse_batch(decompressed: &[u8]) -> Result<LogsBatch<'_>, DecodeError> {
    let batch = match read_batch(decompressed) {
        Some(batch) => batch,
        None => {
            let mut batch: LogsBatch =
                serde_json::from_slice(decompressed).map_err(DecodeError::Envelope)?;
            for event in &mut batch.log_events {
                event.category = category_of_escaped(event.message_json);
            }
            batch
        }
    };
    batch.kind()?;
    Ok(batch)
}

impl RawLogEvent<'_> {
    /// Writes the unescaped message into `out` (cleared first), reusing its allocation.
    pub fn message_into(&self, out: &mut String) -> Result<(), DecodeError> {
        out.clear();
        unescape_json_string(self.message_json, out).ok_or_else(|| DecodeError::MessageNotString {
            id: self.id.clone().into_owned(),
        })
    }
}

/// Unescapes a quoted JSON string literal into `out`. `None` if `quoted` is not one.
/// Lone surrogates become U+FFFD rather than an error: a log line's text is
/// still worth keeping.
///
/// IoT messages escape every quote, one escape every few bytes, so the next
/// backslash comes from a bit mask per 64 bytes rather than a search per short run.
pub fn unescape_json_string(quoted: &str, out: &mut String) -> Option<()> {
    let inner = quoted.strip_prefix('"')?.strip_suffix('"')?;
    let bytes = inner.as_bytes();
    out.reserve(inner.len());
    let mut backslashes = Backslashes::new(bytes, 0);
    let mut start = 0;
    loop {
        // A backslash is ASCII, so `at` is always a char boundary.
        let at = backslashes.next_from(start);
        out.push_str(&inner[start..at]);
        if at == bytes.len() {
            return Some(());
        }
        let escape = *bytes.get(at + 1)?;
        start = at + 2;
        match escape {
            b'"' => out.push('"'),
            b'\\' => out.push('\\'),
            b'/' => out.push('/'),
            b'b' => out.push('\u{8}'),
            b'f' => out.push('\u{c}'),
            b'n' => out.push('\n'),
            b'r' => out.push('\r'),
            b't' => out.push('\t'),
            b'u' => {
                let unit = hex4(bytes.get(start..start + 4)?)?;
                start += 4;
                let ch = if (0xD800..0xDC00).contains(&unit) {
                    let low = (bytes.get(start..start + 2) == Some(b"\\u"))
                        .then(|| bytes.get(start + 2..start + 6).and_then(hex4))
                        .flatten()
                        .filter(|low| (0xDC00..0xE000).contains(low));
                    match low {
                        Some(low) => {
                            start += 6;
                            char::from_u32(0x10000 + ((unit - 0xD800) << 10) + (low - 0xDC00))
                        }
                        None => None,
                    }
                } else {
                    char::from_u32(unit)
                };
                out.push(ch.unwrap_or(char::REPLACEMENT_CHARACTER));
            }
            _ => return None,
        }
    }
}

fn hex4(digits: &[u8]) -> Option<u32> {
    if digits.len() != 4 {
        return None;
    }
    digits
        .iter()
        .try_fold(0u32, |acc, &d| Some(acc * 16 + (d as char).to_digit(16)?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::encode::{gzip, subscription_event_json, BatchSpec};

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
    fn unescape_matches_serde_json() {
        let cases = [
            r#""plain""#,
            r#""quote \" backslash \\ slash \/ controls \b\f\n\r\t""#,
            r#""\u00e9t\u00E9 \u4e2d \ud83d\ude00 end""#,
            r#""{\"eventType\":\"Connect\",\"clientId\":\"caf\u00e9\"}""#,
            r#""""#,
        ];
        for case in cases {
            let mut out = String::new();
            unescape_json_string(case, &mut out).unwrap();
            assert_eq!(out, serde_json::from_str::<String>(case).unwrap(), "{case}");
        }
    }

    #[test]
    fn unescape_refuses_non_strings_and_keeps_lone_surrogates_readable() {
        let mut out = String::new();
        assert!(unescape_json_string("42", &mut out).is_none());
        assert!(unescape_json_string(r#""bad \x escape""#, &mut out).is_none());
        assert!(unescape_json_string(r#""cut \u12""#, &mut out).is_none());
        out.clear();
        unescape_json_string(r#""lone \ud800 here""#, &mut out).unwrap();
        assert_eq!(out, "lone \u{FFFD} here");
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
}
