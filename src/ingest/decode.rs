//! From a Lambda invocation's bytes to the log events of one CloudWatch Logs
//! batch: base64, bounded gunzip, and the envelope, parsed in place.
//!
//! Everything here is pure and bounded: the decompressed size is capped before
//! memory is committed, so a gzip bomb costs at most the cap.

use std::borrow::Cow;

use aws_lambda_events::encodings::Base64Data;
use serde::Deserialize;
use serde_json::value::RawValue;

use crate::error::DecodeError;
use crate::ingest::batch::LogsBatch;
use crate::ingest::envelope::read_batch;
use crate::model::record::category_of_escaped;

/// Default cap on a decompressed batch. Real batches are at most ~1 MB gzipped
/// (a few MB of JSON); the cap leaves room while keeping peak memory far
/// below a 128 MB function.
pub const DEFAULT_MAX_DECOMPRESSED_BYTES: usize = 32 * 1024 * 1024;

/// What invoked the function: a subscription's batch directly (base64 gzip),
/// or a Kinesis batch whose records each carry one (the subscription sent
/// to a stream; Lambda has decoded the base64, so each record's data is
/// the gzip itself).
#[derive(Debug)]
pub enum Invocation<'a> {
    Subscription(Cow<'a, str>),
    Kinesis(Vec<StreamRecord>),
}

/// One record of a Kinesis batch, read on its own: a record that cannot be
/// read costs itself only, never the records beside it.
#[derive(Debug)]
pub enum StreamRecord {
    /// A record whose data could be read (base64-decoded).
    Readable(Box<KinesisEventRecord>),
    /// A record it cannot read (data missing, not a string, or not base64):
    /// reported failed by its sequence number.
    Unreadable {
        sequence_number: String,
        problem: String,
    },
}

impl StreamRecord {
    /// What a partial batch response names the record by.
    pub fn sequence_number(&self) -> &str {
        match self {
            Self::Readable(record) => &record.kinesis.sequence_number,
            Self::Unreadable {
                sequence_number, ..
            } => sequence_number,
        }
    }
}

/// Of a Kinesis event record, the fields the pipeline uses and nothing else.
/// `aws_lambda_events`' full record also insists on the fields the pipeline
/// never reads being as it expects (`approximateArrivalTimestamp` in
/// milliseconds, a known `encryptionType`): a record carrying
/// `1796670690.378123` was refused whole. Every other field is ignored.
#[derive(Debug, Deserialize)]
pub struct KinesisEventRecord {
    pub kinesis: KinesisData,
}

/// A record's `kinesis` object: its data (the subscription batch, gzip,
/// base64 on the wire) and its sequence number.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct KinesisData {
    pub data: Base64Data,
    #[serde(default)]
    pub sequence_number: String,
}

#[derive(Deserialize)]
struct AnyEvent<'a> {
    #[serde(borrow, default)]
    awslogs: Option<AwsLogs<'a>>,
    #[serde(rename = "Records", borrow, default)]
    records: Option<Vec<&'a RawValue>>,
}

/// What is left to read of a record whose data could not be read.
#[derive(Deserialize)]
struct SequenceOnly {
    kinesis: SequenceNumber,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct SequenceNumber {
    sequence_number: String,
}

/// Reads each Kinesis record on its own. Only a record without a sequence
/// number fails the invocation: it could not be named in the response.
fn stream_records(raw: Vec<&RawValue>) -> Result<Vec<StreamRecord>, DecodeError> {
    raw.into_iter()
        .map(|record| {
            let named = |sequence_number: &str| {
                if sequence_number.is_empty() {
                    Err(DecodeError::NotSubscriptionEvent(
                        "a Kinesis record without kinesis.sequenceNumber".into(),
                    ))
                } else {
                    Ok(())
                }
            };
            match serde_json::from_str::<KinesisEventRecord>(record.get()) {
                Ok(readable) => {
                    named(&readable.kinesis.sequence_number)?;
                    Ok(StreamRecord::Readable(Box::new(readable)))
                }
                Err(problem) => {
                    let only = serde_json::from_str::<SequenceOnly>(record.get())
                        .map_err(|e| DecodeError::NotSubscriptionEvent(e.to_string()))?;
                    named(&only.kinesis.sequence_number)?;
                    Ok(StreamRecord::Unreadable {
                        sequence_number: only.kinesis.sequence_number,
                        problem: problem.to_string(),
                    })
                }
            }
        })
        .collect()
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
        (None, Some(records)) => Ok(Invocation::Kinesis(stream_records(records)?)),
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
    decompress_bounded(&decode_base64(data_base64)?, max_decompressed)
}

/// Gzip (what CloudWatch Logs writes) or zlib (what some tools and test
/// fixtures write, and Powertools reads too), under the same cap.
pub fn decompress_bounded(compressed: &[u8], max: usize) -> Result<Vec<u8>, DecodeError> {
    if is_zlib(compressed) {
        inflate_zlib_bounded(compressed, max)
    } else {
        gunzip_bounded(compressed, max)
    }
}

/// A zlib header (RFC 1950): deflate with a window of at most 32 KiB, no
/// preset dictionary, and the check bits that make the two bytes a
/// multiple of 31. A gzip stream starts with 0x1f, which is none of these.
fn is_zlib(bytes: &[u8]) -> bool {
    match bytes {
        [cmf, flg, ..] => {
            cmf & 0x0f == 8
                && cmf >> 4 <= 7
                && flg & 0x20 == 0
                && (u16::from(*cmf) << 8 | u16::from(*flg)) % 31 == 0
        }
        _ => false,
    }
}

/// Inflates a zlib stream, reading at most one byte past `max`: zlib has no
/// size trailer, so the cap is enforced while reading, never after.
fn inflate_zlib_bounded(compressed: &[u8], max: usize) -> Result<Vec<u8>, DecodeError> {
    use std::io::Read;
    let mut out = Vec::new();
    flate2::read::ZlibDecoder::new(compressed)
        .take(max as u64 + 1)
        .read_to_end(&mut out)
        .map_err(|_| DecodeError::Gzip("corrupt or truncated zlib data"))?;
    if out.len() > max {
        return Err(DecodeError::TooLarge { cap: max });
    }
    Ok(out)
}

/// `awslogs.data` to the gzip bytes it carries.
pub fn decode_base64(data_base64: &str) -> Result<Vec<u8>, DecodeError> {
    base64_simd::STANDARD
        .decode_to_vec(data_base64.trim())
        .map_err(|_| DecodeError::Base64)
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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    /// The readable twin of three Kinesis records, the middle one's data
    /// not a subscription batch (events/kinesis/corrupt-record.json).
    fn kinesis_event() -> Value {
        serde_json::from_str(include_str!("../../events/kinesis/corrupt-record.json")).unwrap()
    }

    fn sequence_numbers(records: &[StreamRecord]) -> Vec<&str> {
        records.iter().map(StreamRecord::sequence_number).collect()
    }

    #[test]
    fn a_kinesis_event_is_each_of_its_records_in_order_named_by_sequence_number() {
        let mut event = kinesis_event();
        let expected: Vec<String> = event["Records"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["kinesis"]["sequenceNumber"].as_str().unwrap().to_owned())
            .collect();
        assert_eq!(expected.len(), 3);
        // A record whose data is not base64 is still one of the batch, by its number.
        event["Records"][2]["kinesis"]["data"] = json!("not base64 at all!");
        let Invocation::Kinesis(records) = invocation(&event.to_string()).unwrap() else {
            panic!("a Kinesis event read as a subscription");
        };
        assert_eq!(sequence_numbers(&records), expected);
        assert!(matches!(records[0], StreamRecord::Readable(_)));
        assert!(matches!(records[1], StreamRecord::Readable(_)));
        assert!(matches!(records[2], StreamRecord::Unreadable { .. }));
        assert!(matches!(
            subscription_data(&event.to_string()),
            Err(DecodeError::NotSubscriptionEvent(_))
        ));
    }

    /// Issue 27 (7): the pipeline reads a record's data and sequence number;
    /// whatever the other fields hold (an arrival time finer than the
    /// millisecond, or as text, or none; an encryption type not known
    /// today), the record is read, its data the same.
    #[test]
    fn a_kinesis_record_is_read_whatever_the_fields_the_pipeline_does_not_use_hold() {
        let data = |event: &Value| match invocation(&event.to_string()).unwrap() {
            Invocation::Kinesis(records) => match &records[0] {
                StreamRecord::Readable(record) => record.kinesis.data.0.clone(),
                StreamRecord::Unreadable { problem, .. } => panic!("{event}: {problem}"),
            },
            Invocation::Subscription(_) => panic!("a Kinesis event read as a subscription"),
        };
        let plain = kinesis_event();
        let expected = data(&plain);
        assert!(!expected.is_empty());
        // aws_lambda_events reads the fraction as milliseconds, scales it
        // to nanoseconds in a u32: the issue's .378123 wraps to a valid (if
        // wrong) time, .999999 and .123456 do not, and refused the record.
        let odd_values = [
            ("approximateArrivalTimestamp", json!(1796670690.378123)),
            ("approximateArrivalTimestamp", json!(1796670690.999999)),
            ("approximateArrivalTimestamp", json!(1763802000.123456)),
            ("approximateArrivalTimestamp", json!("1796670690.378123")),
            ("approximateArrivalTimestamp", Value::Null),
            ("encryptionType", json!("SOMETHING_NEW")),
            ("partitionKey", json!(42)),
            ("kinesisSchemaVersion", json!({"major": 2})),
        ];
        for (field, value) in odd_values {
            let mut event = plain.clone();
            event["Records"][0]["kinesis"][field] = value;
            assert_eq!(data(&event), expected, "{field}");
        }
        let mut without = plain.clone();
        without["Records"][0]["kinesis"]
            .as_object_mut()
            .unwrap()
            .remove("approximateArrivalTimestamp");
        without["Records"][0]["eventSourceARN"] = json!(7);
        assert_eq!(data(&without), expected);
    }

    #[test]
    fn a_kinesis_record_without_a_sequence_number_fails_the_invocation() {
        for missing in [json!(""), Value::Null] {
            let mut event = kinesis_event();
            event["Records"][1]["kinesis"]["sequenceNumber"] = missing.clone();
            assert!(
                matches!(
                    invocation(&event.to_string()),
                    Err(DecodeError::NotSubscriptionEvent(_))
                ),
                "sequenceNumber {missing}"
            );
        }
    }

    /// Gzip (what CloudWatch Logs writes) and zlib (what some tools write)
    /// both decompress, under the same cap.
    #[test]
    fn zlib_and_gzip_both_decompress_under_the_same_cap() {
        use flate2::write::{GzEncoder, ZlibEncoder};
        use flate2::Compression;
        use std::io::Write;
        let text = br#"{"messageType":"DATA_MESSAGE","logEvents":[]}"#.repeat(50);
        let mut zlib = ZlibEncoder::new(Vec::new(), Compression::default());
        zlib.write_all(&text).unwrap();
        let mut gzip = GzEncoder::new(Vec::new(), Compression::default());
        gzip.write_all(&text).unwrap();
        for compressed in [zlib.finish().unwrap(), gzip.finish().unwrap()] {
            assert_eq!(decompress_bounded(&compressed, text.len()).unwrap(), text);
            assert!(matches!(
                decompress_bounded(&compressed, text.len() - 1),
                Err(DecodeError::TooLarge { .. })
            ));
        }
    }

    /// A gzip stream cut anywhere is an error, never a panic nor a
    /// shorter batch: shorter than a header and trailer, it is not read.
    #[test]
    fn every_truncation_of_a_gzip_stream_is_an_error() {
        use std::io::Write;
        let text = br#"{"messageType":"DATA_MESSAGE","logEvents":[]}"#.repeat(20);
        let mut gzip = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        gzip.write_all(&text).unwrap();
        let gzip = gzip.finish().unwrap();
        assert_eq!(gunzip_bounded(&gzip, 1 << 20).unwrap(), text);
        for len in 0..gzip.len() {
            let cut = gunzip_bounded(&gzip[..len], 1 << 20);
            assert!(cut.is_err(), "cut at {len}");
            if len < 18 {
                assert!(
                    matches!(cut, Err(DecodeError::Gzip(_))),
                    "cut at {len}: {cut:?}"
                );
            }
        }
    }

    /// A trailer that understates the size (under the cap) is a corrupt
    /// stream (errorType Gzip), not a batch over the cap (TooLarge): the
    /// buffer is never larger than the trailer says.
    #[test]
    fn a_trailer_that_understates_the_size_is_corrupt_not_too_large() {
        use std::io::Write;
        let text = b"x".repeat(1_000);
        let mut gzip = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        gzip.write_all(&text).unwrap();
        let mut lying = gzip.finish().unwrap();
        let at = lying.len() - 4;
        lying[at..].copy_from_slice(&999u32.to_le_bytes());
        assert!(matches!(
            gunzip_bounded(&lying, 1 << 20),
            Err(DecodeError::Gzip(_))
        ));
    }

    /// RFC 1950's header: CM = 8 (deflate), CINFO <= 7 (a window of at most
    /// 32 KiB), FDICT = 0 (no preset dictionary), and CMF·256 + FLG a
    /// multiple of 31. Headers that break exactly one rule are not zlib.
    #[test]
    fn a_zlib_header_is_recognised_by_every_rule_of_rfc_1950() {
        // The FLG that makes the check bits right, with FDICT as asked.
        let flg_for = |cmf: u8, dictionary: bool| {
            (0..=255u8)
                .find(|f| {
                    (u16::from(cmf) << 8 | u16::from(*f)) % 31 == 0 && (f & 0x20 != 0) == dictionary
                })
                .unwrap()
        };
        for level in 0..=9 {
            let mut z =
                flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::new(level));
            std::io::Write::write_all(&mut z, b"x").unwrap();
            assert!(is_zlib(&z.finish().unwrap()), "level {level}");
        }
        assert!(is_zlib(&[0x78, flg_for(0x78, false)]));
        let breaking_one_rule = [
            ("CM 7", [0x77, flg_for(0x77, false)]),
            ("CINFO 8", [0x88, flg_for(0x88, false)]),
            ("FDICT", [0x78, flg_for(0x78, true)]),
            ("check bits", [0x78, flg_for(0x78, false) + 1]),
            ("gzip", [0x1f, 0x8b]),
        ];
        for (rule, header) in breaking_one_rule {
            assert!(!is_zlib(&header), "{rule}: {header:02x?}");
        }
        assert!(!is_zlib(&[0x78]));
    }

    #[test]
    fn a_subscription_event_is_its_data_and_an_event_of_both_kinds_or_neither_is_refused() {
        let direct = r#"{"awslogs":{"data":"H4sIAAAA"}}"#;
        assert_eq!(subscription_data(direct).unwrap(), "H4sIAAAA");
        let both = r#"{"awslogs":{"data":"H4sIAAAA"},"Records":[]}"#;
        for refused in [both, "{}", r#"{"Records":null}"#] {
            assert!(
                matches!(
                    invocation(refused),
                    Err(DecodeError::NotSubscriptionEvent(_))
                ),
                "{refused}"
            );
        }
    }
}
