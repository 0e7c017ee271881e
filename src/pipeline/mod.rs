//! One invocation's work: decode, analyse, store, then alert, in that order
//! so that nothing is alerted that was not stored, and a batch that fails at
//! any step fails the invocation (Lambda retries it, then keeps it in the
//! failure destination).

use std::time::{Duration, Instant};

use futures_util::stream::{self, StreamExt};

use crate::config::Config;
use crate::error::{DecodeError, ProcessError};
use crate::incident::delta::{gather_within, Delta};
use crate::incident::lifecycle::notification_due;
use crate::ingest::batch::{LogsBatch, MessageType};
use crate::ingest::decode::{
    decode_data, decompress_bounded, invocation, parse_batch, Invocation, StreamRecord,
};
use crate::model::category::{Category, CategorySet};
use crate::model::record::{category_of_message, judge, to_entry, Entry};
use crate::ports::{Counting, EntryStore, IncidentStore, NotificationPublisher, Recorded};
use crate::store::item::{entry_item, Source};
use crate::store::keys::fnv1a;

mod digest;
mod notify;
mod response;
mod sweep;
use notify::Due;
use response::item_failure;
pub use response::{Response, StreamResponse, Summary};
pub use sweep::{is_sweep, SWEEP};

/// Incident store requests in flight at once per invocation.
pub const INCIDENT_CONCURRENCY: usize = 8;

/// Runs `work` until `deadline` at most: an invocation must answer before
/// Lambda's own deadline (the caller keeps a margin), whatever a slow
/// dependency does. Stopping anywhere is safe: a count whose answer was lost
/// is recognised by the batch's fingerprint on the retry, entries are
/// rewritten with the same keys, and a claim is leased until the deadline at
/// most, so a retry or the next sweep takes it over (a notification
/// published but not confirmed goes out again under the same id).
async fn within<T>(
    deadline: Instant,
    work: impl std::future::Future<Output = Result<T, ProcessError>>,
) -> Result<T, ProcessError> {
    tokio::time::timeout_at(deadline.into(), work)
        .await
        .unwrap_or(Err(ProcessError::Deadline))
}

/// One batch's data, as the front door it came through carries it.
enum BatchData<'a> {
    /// `awslogs.data`: base64 of gzip.
    Base64(&'a str),
    /// A Kinesis record's data, which Lambda has already base64-decoded.
    Gzip(&'a [u8]),
}

/// Every log event of a batch looked at; the entries of the kept categories owned.
#[derive(Debug, Default)]
pub struct Analysis {
    pub events: u64,
    pub by_category: [u64; Category::ALL.len()],
    pub entries: Vec<Entry>,
}

/// Classifies every event of a batch. An entry whose strings hold no
/// escapes was classified by [`parse_batch`] where it lies in the envelope;
/// any other is unescaped into one reused buffer and read there. Only the
/// entries kept are then parsed in full (from the unescaped text) and copied out.
pub fn analyze(batch: &LogsBatch<'_>, keep: CategorySet) -> Result<Analysis, DecodeError> {
    let mut analysis = Analysis {
        events: batch.log_events.len() as u64,
        ..Analysis::default()
    };
    let mut message = String::new();
    for event in &batch.log_events {
        // Most entries were read where they lie, still escaped;
        // the rest, and every incident, are unescaped first.
        let (category, unescaped) = match event.category {
            Some(category) => (category, false),
            None => {
                event.message_into(&mut message)?;
                (category_of_message(&message), true)
            }
        };
        let Some(category) = category else {
            continue;
        };
        analysis.by_category[category.index()] += 1;
        if keep.contains(category) {
            if !unescaped {
                event.message_into(&mut message)?;
            }
            let verdict = judge(&message);
            debug_assert_eq!(verdict.category(), Some(category), "{message}");
            analysis
                .entries
                .extend(to_entry(&event.id, event.timestamp, &message, &verdict));
        }
    }
    Ok(analysis)
}

fn micros(d: Duration) -> u64 {
    d.as_micros().try_into().unwrap_or(u64::MAX)
}

/// Identifies a batch across redeliveries: CloudWatch event ids are unique,
/// so the batch's source and ids name it.
pub fn batch_fingerprint(batch: &LogsBatch<'_>) -> String {
    let mut h =
        fnv1a(batch.log_group.as_bytes()) ^ fnv1a(batch.log_stream.as_bytes()).rotate_left(17);
    for event in &batch.log_events {
        h = (h ^ fnv1a(event.id.as_bytes())).wrapping_mul(0x100_0000_01b3);
    }
    format!("{h:016x}")
}

/// The pipeline over its three ports.
pub struct Processor<E, I, P> {
    pub config: Config,
    pub entries: E,
    pub incidents: I,
    pub publisher: P,
}

impl<E: EntryStore, I: IncidentStore, P: NotificationPublisher> Processor<E, I, P> {
    /// Processes one invocation event (the Lambda payload's JSON text).
    /// `deadline` is when the invocation must be done; retries stop before it.
    pub async fn process(
        &self,
        event_json: &str,
        now_ms: i64,
        deadline: Instant,
    ) -> Result<Response, ProcessError> {
        if is_sweep(event_json) {
            return within(deadline, self.sweep(now_ms, deadline))
                .await
                .map(Response::Sweep);
        }
        match invocation(event_json)? {
            Invocation::Subscription(data) => within(
                deadline,
                self.process_batch(BatchData::Base64(&data), now_ms, deadline),
            )
            .await
            .map(Response::Batch),
            Invocation::Kinesis(records) => Ok(Response::Stream(
                self.process_records(records, now_ms, deadline).await,
            )),
        }
    }

    /// Each record is one subscription batch. A record that cannot be
    /// decoded is reported and the rest go on: retrying will not mend it,
    /// and Lambda may give up on everything from it onwards once its retries
    /// are spent, so what follows it is saved now. After a transient failure
    /// (DynamoDB, SNS, time) the rest are reported untouched instead: Lambda
    /// resumes from the lowest reported record, so they would be redone anyway,
    /// and what was done is idempotent.
    async fn process_records(
        &self,
        records: Vec<StreamRecord>,
        now_ms: i64,
        deadline: Instant,
    ) -> StreamResponse {
        let started = Instant::now();
        let mut response = StreamResponse::default();
        response.summary.message_type = "KINESIS";
        response.summary.records = records.len() as u64;
        let mut transient_failure = false;
        for record in records {
            let sequence_number = record.sequence_number().to_owned();
            if !transient_failure {
                let outcome = match &record {
                    StreamRecord::Readable(readable) => {
                        let data = &readable.kinesis.data.0;
                        within(
                            deadline,
                            self.process_batch(BatchData::Gzip(data), now_ms, deadline),
                        )
                        .await
                    }
                    StreamRecord::Unreadable { problem, .. } => Err(ProcessError::Decode(
                        DecodeError::UnreadableRecord(problem.clone()),
                    )),
                };
                match outcome {
                    Ok(batch) => {
                        response.summary.absorb(&batch);
                        continue;
                    }
                    Err(error) => {
                        tracing::error!(
                            sequence_number = %sequence_number,
                            error_type = error.kind(),
                            retryable = error.is_retryable(),
                            error = %error,
                            "Kinesis record failed; reported for Lambda to deliver again"
                        );
                        if matches!(error, ProcessError::Decode(_)) {
                            response.summary.decode_errors += 1;
                        } else {
                            transient_failure = true;
                        }
                    }
                }
            }
            response
                .batch_item_failures
                .push(item_failure(sequence_number));
        }
        response.summary.failed_records = response.batch_item_failures.len() as u64;
        response.summary.duration_ms = started.elapsed().as_millis() as u64;
        response
    }

    /// Processes one subscription batch: `awslogs.data` (base64 gzip), or a
    /// Kinesis record's data (gzip, Lambda having decoded the base64).
    /// Incidents are counted first (so each entry is stored with its
    /// incident's id), then entries stored, then notifications sent: nothing
    /// is announced that was not stored.
    async fn process_batch(
        &self,
        data: BatchData<'_>,
        now_ms: i64,
        deadline: Instant,
    ) -> Result<Summary, ProcessError> {
        let started = Instant::now();
        let retry_deadline = deadline.min(started + self.config.retry_budget);
        let cap = self.config.max_decompressed_bytes;
        let buffer = match data {
            BatchData::Base64(text) => decode_data(text, cap)?,
            BatchData::Gzip(bytes) => decompress_bounded(bytes, cap)?,
        };
        let decoded = Instant::now();
        let batch = parse_batch(&buffer)?;
        let mut summary = Summary {
            message_type: "DATA_MESSAGE",
            log_group: batch.log_group.to_string(),
            log_stream: batch.log_stream.to_string(),
            decompressed_bytes: buffer.len() as u64,
            decode_us: micros(decoded - started),
            ..Summary::default()
        };
        if batch.kind()? == MessageType::Control {
            summary.message_type = "CONTROL_MESSAGE";
            return Ok(summary);
        }

        let mut analysis = analyze(&batch, self.config.store_categories)?;
        summary.parse_us = micros(decoded.elapsed());
        if let Some(redactor) = &self.config.redaction {
            analysis.entries.iter_mut().for_each(|i| redactor.redact(i));
        }
        // Whole payloads can hold device details: debug level only (the
        // template sets INFO), and after redaction.
        for entry in &analysis.entries {
            tracing::debug!(
                trace_id = %entry.trace_id,
                category = entry.category.as_str(),
                message = %entry.message,
                "entry"
            );
        }
        summary.entries = analysis.events;
        summary.by_category = analysis.by_category;

        // However many keys the batch brings, it keeps at most the storm
        // budget's (so its store requests and `opened` notifications are
        // bounded); the rest fold into one overflow incident per category.
        let mut gathered = gather_within(
            &analysis.entries,
            self.config.alert_categories,
            &batch.log_group,
            self.config.storm_budget,
        );
        summary.keys_folded = gathered.folded.iter().map(|f| f.keys).sum();
        for folded in &gathered.folded {
            tracing::warn!(
                category = folded.category.as_str(),
                keys = folded.keys,
                entries = folded.entries,
                budget = self.config.storm_budget,
                "more incident keys than the storm budget: the rest are counted by the category's overflow incident"
            );
        }
        let fingerprint = batch_fingerprint(&batch);
        let counting = Counting {
            log_group: &batch.log_group,
            fingerprint: &fingerprint,
            now_ms,
            timing: self.config.timing(),
            openings_per_minute: self.config.storm_budget as u32,
        };
        // Each key's own delta first: an opening past the minute's budget
        // (across invocations) is refused, and the key joins its category's
        // overflow incident, which is counted after.
        let own: Vec<usize> = (0..gathered.deltas.len())
            .filter(|&i| !gathered.deltas[i].key.is_overflow())
            .collect();
        let mut recorded: Vec<Option<Recorded>> = vec![None; gathered.deltas.len()];
        let counted = self
            .record(
                own.iter().map(|&i| &gathered.deltas[i]).collect(),
                &counting,
                &mut summary,
            )
            .await?;
        for (&i, r) in own.iter().zip(counted) {
            recorded[i] = r;
        }
        let refused: Vec<Delta> = own
            .iter()
            .filter(|&&i| matches!(recorded[i], Some(Recorded::Folded)))
            .map(|&i| gathered.deltas[i].clone())
            .collect();
        if !refused.is_empty() {
            tracing::warn!(
                keys = refused.len(),
                per_minute = self.config.storm_budget,
                "more incidents opening this minute than the budget: the rest are counted by their category's overflow incident"
            );
        }
        for delta in &refused {
            gathered.fold(delta);
        }
        summary.keys_folded += refused.len() as u64;
        recorded.resize(gathered.deltas.len(), None);
        let overflow: Vec<usize> = (0..gathered.deltas.len())
            .filter(|&i| gathered.deltas[i].key.is_overflow())
            .collect();
        let counted = self
            .record(
                overflow.iter().map(|&i| &gathered.deltas[i]).collect(),
                &counting,
                &mut summary,
            )
            .await?;
        for (&i, r) in overflow.iter().zip(counted) {
            recorded[i] = r;
        }
        let gathered = gathered;
        let deltas = &gathered.deltas;
        summary.incidents = deltas.len() as u64;

        let mut incident_ids: Vec<Option<&str>> = vec![None; analysis.entries.len()];
        for (delta, recorded) in deltas.iter().zip(&recorded) {
            if let Some(incident) = recorded.as_ref().and_then(Recorded::incident) {
                for &member in &delta.members {
                    incident_ids[member] = Some(&incident.incident_id);
                }
            }
        }
        let source = Source {
            log_group: &batch.log_group,
            log_stream: &batch.log_stream,
        };
        let items = analysis
            .entries
            .iter()
            .zip(incident_ids)
            .map(|(e, id)| entry_item(e, &source, self.config.retention_days, id))
            .collect();
        let stats = self.entries.put_items(items, retry_deadline).await?;
        summary.stored = stats.items;
        summary.write_requests = stats.requests;
        summary.write_retries = stats.retries;

        let timing = self.config.timing();
        let due: Vec<Due<'_>> = deltas
            .iter()
            .zip(&recorded)
            .filter_map(|(delta, recorded)| {
                let incident = recorded.as_ref()?.incident()?;
                let transition = notification_due(incident, now_ms, timing)?;
                Some(Due {
                    incident: incident.clone(),
                    transition,
                    delta: Some(delta),
                    folded: delta
                        .key
                        .is_overflow()
                        .then(|| gathered.folded_of(delta.key.category))
                        .flatten(),
                })
            })
            .collect();
        self.notify(due, now_ms, deadline, &mut summary).await?;
        summary.duration_ms = started.elapsed().as_millis() as u64;
        Ok(summary)
    }

    /// Counts each delta into its incident, a bounded number at once. A
    /// delta refused for good (a request DynamoDB will never accept) costs
    /// its own incident (`None`) and the entries are stored without an id;
    /// anything else fails the batch (nothing stored yet, so the retry,
    /// which recognises what was counted, does it all).
    async fn record(
        &self,
        deltas: Vec<&Delta>,
        counting: &Counting<'_>,
        summary: &mut Summary,
    ) -> Result<Vec<Option<Recorded>>, ProcessError> {
        let outcomes: Vec<_> = stream::iter(&deltas)
            .map(|delta| self.incidents.record(delta, counting))
            .buffered(INCIDENT_CONCURRENCY)
            .collect()
            .await;
        let mut recorded = Vec::with_capacity(outcomes.len());
        let mut first_error = None;
        for (delta, outcome) in deltas.into_iter().zip(outcomes) {
            match outcome {
                Ok(r) => {
                    match &r {
                        Recorded::Counted { opened: true, .. } => summary.incidents_opened += 1,
                        Recorded::AlreadyCounted(_) => summary.incidents_already_counted += 1,
                        Recorded::Counted { .. } | Recorded::Folded => {}
                    }
                    recorded.push(Some(r));
                }
                Err(e) if e.is_refused_for_this_request() => {
                    summary.notifications_failed += 1;
                    tracing::error!(incident_key = %delta.key.hash(), error = %e, "incident refused for good; its entries are stored without it, the batch's others go on");
                    recorded.push(None);
                }
                Err(e) => {
                    first_error.get_or_insert(e);
                    recorded.push(None);
                }
            }
        }
        match first_error {
            Some(error) => Err(ProcessError::IncidentState(error)),
            None => Ok(recorded),
        }
    }
}

/// The function's timeout in template.yaml: what an invocation whose
/// deadline cannot be real is given.
pub const TEMPLATE_TIMEOUT_MS: u64 = 60_000;

/// How long the invocation may run, from the Lambda deadline, keeping a
/// margin to report the outcome. Lambda's deadline is the invocation's
/// start plus the function's timeout, never in the past when it starts;
/// `cargo lambda watch` (the local Runtime API of `make demo`) sends a
/// constant `600000` (1970), so a deadline already past is read as unknown
/// and the template's timeout applies.
pub fn deadline_from_epoch_ms(deadline_epoch_ms: u64, now_epoch_ms: u64) -> Instant {
    let deadline_epoch_ms = if deadline_epoch_ms <= now_epoch_ms {
        now_epoch_ms + TEMPLATE_TIMEOUT_MS
    } else {
        deadline_epoch_ms
    };
    let remaining = deadline_epoch_ms
        .saturating_sub(now_epoch_ms)
        .saturating_sub(2_000);
    Instant::now() + Duration::from_millis(remaining)
}

#[cfg(test)]
mod digest_tests;
#[cfg(test)]
mod storm_tests;
#[cfg(test)]
mod tests;
