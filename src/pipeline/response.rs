//! What an invocation answers: its summary (logged, and the metrics'
//! source), and for a Kinesis batch Lambda's partial batch response.

use aws_lambda_events::event::streams::KinesisBatchItemFailure;
use serde::Serialize;

use crate::model::category::Category;

/// What one invocation did; the handler logs it and returns it.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Summary {
    pub message_type: &'static str,
    /// 1 for an invocation that failed (the summary of a failure carries
    /// nothing else): `SweepsFailed` or `BatchesFailed` by its type.
    #[serde(skip)]
    pub failed: u64,
    pub log_group: String,
    pub log_stream: String,
    pub entries: u64,
    pub decompressed_bytes: u64,
    #[serde(serialize_with = "by_category_map")]
    pub by_category: [u64; Category::ALL.len()],
    pub stored: usize,
    pub write_requests: u32,
    pub write_retries: u32,
    /// Incidents the batch added to (one store request each, usually).
    pub incidents: u64,
    /// Incident keys past the storm budget, counted by overflow incidents
    /// instead of incidents of their own.
    pub keys_folded: u64,
    pub incidents_opened: u64,
    /// Batches already counted for an incident (a redelivery).
    pub incidents_already_counted: u64,
    /// Sweeps: incidents resolved, and open when the sweep looked.
    pub incidents_resolved: u64,
    pub incidents_open: u64,
    pub notifications_sent: u64,
    /// Notifications due that another invocation or sweep holds.
    pub notifications_held_elsewhere: u64,
    /// Notifications due that an active silence held back.
    pub notifications_silenced: u64,
    /// Times the silences could not be read, so notifications due went out
    /// as if none were in force (metric `SilenceReadErrors`, alarmed).
    pub silence_read_errors: u64,
    /// Notifications lost to a permanent error of their own (a request
    /// DynamoDB or SNS refuses for good); the batch's others still go out.
    pub notifications_failed: u64,
    pub publish_requests: u32,
    /// Kinesis invocations: records received, and records reported back as failed.
    pub records: u64,
    pub failed_records: u64,
    /// Batches (or records) refused as undecodable.
    pub decode_errors: u64,
    pub duration_ms: u64,
    /// Of which base64 and gunzip, then reading the envelope and classifying
    /// every entry: where the time of a large batch goes, in microseconds.
    pub decode_us: u64,
    pub parse_us: u64,
}

impl Summary {
    /// Adds one record's batch to a Kinesis invocation's summary.
    pub(super) fn absorb(&mut self, batch: &Summary) {
        if self.log_group.is_empty() {
            self.log_group.clone_from(&batch.log_group);
        } else if self.log_group != batch.log_group && !batch.log_group.is_empty() {
            self.log_group = "several".into();
        }
        self.entries += batch.entries;
        self.decompressed_bytes += batch.decompressed_bytes;
        for (total, n) in self.by_category.iter_mut().zip(batch.by_category) {
            *total += n;
        }
        self.stored += batch.stored;
        self.write_requests += batch.write_requests;
        self.write_retries += batch.write_retries;
        self.incidents += batch.incidents;
        self.keys_folded += batch.keys_folded;
        self.incidents_opened += batch.incidents_opened;
        self.incidents_already_counted += batch.incidents_already_counted;
        self.notifications_sent += batch.notifications_sent;
        self.notifications_held_elsewhere += batch.notifications_held_elsewhere;
        self.notifications_silenced += batch.notifications_silenced;
        self.silence_read_errors += batch.silence_read_errors;
        self.notifications_failed += batch.notifications_failed;
        self.publish_requests += batch.publish_requests;
        self.decode_us += batch.decode_us;
        self.parse_us += batch.parse_us;
    }
}

/// What an invocation answers.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(untagged)]
pub enum Response {
    /// A direct subscription batch: what was done with it.
    Batch(Summary),
    /// A Kinesis batch: Lambda's partial batch response.
    Stream(StreamResponse),
    /// A scheduled sweep: what it resolved and notified.
    Sweep(Summary),
}

impl Response {
    pub fn summary(&self) -> &Summary {
        match self {
            Self::Batch(summary) | Self::Sweep(summary) => summary,
            Self::Stream(stream) => &stream.summary,
        }
    }
}

/// `{"batchItemFailures":[{"itemIdentifier":"<sequence number>"}]}`: the
/// records Lambda must deliver again; an empty list acknowledges them all.
/// The items are `aws_lambda_events`' own, so the shape is Lambda's.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct StreamResponse {
    pub batch_item_failures: Vec<KinesisBatchItemFailure>,
    #[serde(skip)]
    pub summary: Summary,
}

/// What a failed record is named by: its sequence number.
pub(super) fn item_failure(sequence_number: String) -> KinesisBatchItemFailure {
    let mut failure = KinesisBatchItemFailure::default();
    failure.item_identifier = Some(sequence_number);
    failure
}

fn by_category_map<S: serde::Serializer>(counts: &[u64; 5], s: S) -> Result<S::Ok, S::Error> {
    use serde::ser::SerializeMap;
    let mut map = s.serialize_map(Some(counts.len()))?;
    for c in Category::ALL {
        map.serialize_entry(c.as_str(), &counts[c.index()])?;
    }
    map.end()
}
