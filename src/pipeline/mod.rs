//! One invocation's work: decode, analyse, store, then alert, in that order
//! so that nothing is alerted that was not stored, and a batch that fails at
//! any step fails the invocation (Lambda retries it, then keeps it in the
//! failure destination).

use std::time::{Duration, Instant};

use futures_util::future::join_all;

use crate::config::Config;
use crate::error::{DecodeError, ProcessError};
use crate::ingest::batch::{LogsBatch, MessageType};
use crate::ingest::decode::{
    decode_data, decompress_bounded, invocation, parse_batch, Invocation, StreamRecord,
};
use crate::model::category::{Category, CategorySet};
use crate::model::record::{category_of_message, incident, judge, Incident};
use crate::notify::alert::{alert_id, render};
use crate::notify::group::{aggregate, AlertGroup};
use crate::ports::{AlertGate, AlertPublisher, Claim, GateDecision, IncidentStore};
use crate::store::item::{incident_item, Source};
use crate::store::keys::fnv1a;

mod response;
use response::item_failure;
pub use response::{Response, StreamResponse, Summary};

/// One batch's data, as the front door it came through carries it.
enum BatchData<'a> {
    /// `awslogs.data`: base64 of gzip.
    Base64(&'a str),
    /// A Kinesis record's data, which Lambda has already base64-decoded.
    Gzip(&'a [u8]),
}

/// Every entry of a batch looked at; the incidents of the kept categories owned.
#[derive(Debug, Default)]
pub struct Analysis {
    pub entries: u64,
    pub by_category: [u64; Category::ALL.len()],
    pub incidents: Vec<Incident>,
}

/// Classifies every event of a batch. An entry whose strings hold no
/// escapes was classified by [`parse_batch`] where it lies in the envelope;
/// any other is unescaped into one reused buffer and read there. Only
/// incidents are then parsed in full (from the unescaped text) and copied out.
pub fn analyze(batch: &LogsBatch<'_>, keep: CategorySet) -> Result<Analysis, DecodeError> {
    let mut analysis = Analysis {
        entries: batch.log_events.len() as u64,
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
                .incidents
                .extend(incident(&event.id, event.timestamp, &message, &verdict));
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
pub struct Processor<S, G, P> {
    pub config: Config,
    pub store: S,
    pub gate: G,
    pub publisher: P,
}

impl<S: IncidentStore, G: AlertGate, P: AlertPublisher> Processor<S, G, P> {
    /// Processes one invocation event (the Lambda payload's JSON text).
    /// `deadline` is when the invocation must be done; retries stop before it.
    pub async fn process(
        &self,
        event_json: &str,
        now_ms: i64,
        deadline: Instant,
    ) -> Result<Response, ProcessError> {
        match invocation(event_json)? {
            Invocation::Subscription(data) => self
                .process_batch(BatchData::Base64(&data), now_ms, deadline)
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
                        self.process_batch(BatchData::Gzip(data), now_ms, deadline)
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
            analysis
                .incidents
                .iter_mut()
                .for_each(|i| redactor.redact(i));
        }
        // Whole payloads can hold device details: debug level only (the
        // template sets INFO), and after redaction.
        for incident in &analysis.incidents {
            tracing::debug!(
                trace_id = %incident.trace_id,
                category = incident.category.as_str(),
                message = %incident.message,
                "incident"
            );
        }
        summary.entries = analysis.entries;
        summary.by_category = analysis.by_category;

        let source = Source {
            log_group: &batch.log_group,
            log_stream: &batch.log_stream,
        };
        let items = analysis
            .incidents
            .iter()
            .map(|i| incident_item(i, &source, self.config.retention_days))
            .collect();
        let stats = self.store.put_items(items, retry_deadline).await?;
        summary.stored = stats.items;
        summary.write_requests = stats.requests;
        summary.write_retries = stats.retries;

        let groups = aggregate(
            &analysis.incidents,
            self.config.alert_categories,
            &batch.log_group,
        );
        summary.alert_groups = groups.len() as u64;
        let reserve = self.config.alert_time_reserve;
        if !groups.is_empty() && !reserve.is_zero() && Instant::now() + reserve > deadline {
            // Claiming alerts and then being cut off before publishing would
            // lose them; failing now lets the retry (which overwrites the
            // same items) alert in time.
            let remaining_ms = deadline
                .saturating_duration_since(Instant::now())
                .as_millis() as u64;
            return Err(ProcessError::OutOfTime { remaining_ms });
        }
        if !groups.is_empty() {
            let fingerprint = batch_fingerprint(&batch);
            let lease_until_ms = now_ms
                + deadline
                    .saturating_duration_since(Instant::now())
                    .as_millis() as i64;
            self.alert(
                &groups,
                &fingerprint,
                &batch.log_group,
                (now_ms, lease_until_ms),
                deadline,
                &mut summary,
            )
            .await?;
        }
        summary.duration_ms = started.elapsed().as_millis() as u64;
        Ok(summary)
    }

    /// Claims, publishes and settles the alerts of `groups`. Publishing
    /// retries within its own retry budget; settling claims may use what is
    /// left of the invocation (`deadline`), as each one left undone costs a
    /// duplicate or a delayed alert.
    async fn alert(
        &self,
        groups: &[AlertGroup],
        fingerprint: &str,
        log_group: &str,
        (now_ms, lease_until_ms): (i64, i64),
        deadline: Instant,
        summary: &mut Summary,
    ) -> Result<(), ProcessError> {
        let keys: Vec<String> = groups.iter().map(|g| g.key()).collect();
        let decisions = join_all(groups.iter().zip(&keys).map(|(g, key)| {
            self.gate
                .claim(key, fingerprint, g.count, now_ms, lease_until_ms)
        }))
        .await;
        let mut claims = Vec::new();
        let mut rendered = Vec::new();
        let mut first_error = None;
        for (group, decision) in groups.iter().zip(decisions) {
            match decision {
                Ok(GateDecision::Send(claim)) => {
                    let window = self.config.alert_window.as_secs();
                    rendered.push(render(
                        group,
                        log_group,
                        &alert_id(&claim.key, &claim.fingerprint),
                        claim.suppressed_since_last,
                        window,
                    ));
                    claims.push(claim);
                }
                Ok(GateDecision::Suppressed) => summary.alerts_suppressed += 1,
                Ok(GateDecision::AlreadySeen) => summary.alerts_already_seen += 1,
                // Refused for good (a key DynamoDB will never accept): this
                // key's alert is lost, loudly; failing the batch would lose
                // every other key's too, on every retry.
                Err(e) if e.is_refused_for_this_request() => {
                    summary.alerts_failed += 1;
                    tracing::error!(key = %crate::notify::display::escape(&group.key()), error = %e, "alert state refused for good; this key's alert is lost, the batch's others go on");
                }
                Err(e) => {
                    first_error.get_or_insert(e);
                }
            }
        }
        if let Some(error) = first_error {
            // Alerts this invocation claimed but will not send must be
            // claimable again by the retry.
            self.settle(&claims, |_| false, deadline).await;
            return Err(ProcessError::AlertState(error));
        }
        if rendered.is_empty() {
            return Ok(());
        }
        let retry_deadline = deadline.min(Instant::now() + self.config.retry_budget);
        match self.publisher.publish(&rendered, retry_deadline).await {
            Ok(report) => {
                summary.publish_requests = report.requests;
                summary.alerts_sent = (rendered.len() - report.rejected.len()) as u64;
                summary.alerts_failed += report.rejected.len() as u64;
                // Refused alerts are settled as sent: sending them again
                // would be refused again, and would hold their key for good.
                self.settle(&claims, |_| true, deadline).await;
                Ok(())
            }
            Err((unsent, error)) => {
                summary.alerts_sent = (rendered.len() - unsent.len()) as u64;
                self.settle(&claims, |i| !unsent.contains(&i), deadline)
                    .await;
                Err(error.into())
            }
        }
    }

    /// Confirms the claims whose alerts were published (claim `i` when
    /// `published(i)`), so a redelivery does not send them, and releases the
    /// others, so a retry does. Neither may fail the invocation: a claim
    /// left unconfirmed is taken over by a redelivery of its batch, at worst
    /// sending its alert twice.
    async fn settle(&self, claims: &[Claim], published: impl Fn(usize) -> bool, deadline: Instant) {
        let outcomes = join_all(claims.iter().enumerate().map(|(i, claim)| {
            let published = published(i);
            async move {
                let outcome = if published {
                    self.gate.confirm(claim, deadline).await
                } else {
                    self.gate.release(claim, deadline).await
                };
                (published, outcome)
            }
        }))
        .await;
        for (published, outcome) in outcomes {
            match outcome {
                Ok(()) => {}
                Err(e) if published => {
                    tracing::warn!(error = %e, "could not confirm a published alert; a redelivery of the batch may send it again")
                }
                Err(e) => {
                    tracing::error!(error = %e, "could not release an alert claim; a redelivery of the batch takes it over")
                }
            }
        }
    }
}

/// How long the invocation may run, from the Lambda deadline, keeping a
/// margin to report the outcome.
pub fn deadline_from_epoch_ms(deadline_epoch_ms: u64, now_epoch_ms: u64) -> Instant {
    let remaining = deadline_epoch_ms
        .saturating_sub(now_epoch_ms)
        .saturating_sub(2_000);
    Instant::now() + Duration::from_millis(remaining)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::memory::{MemoryGate, MemoryPublisher, MemoryStore};
    use crate::tooling::encode::{subscription_event_json, BatchSpec};

    fn processor() -> Processor<MemoryStore, MemoryGate, MemoryPublisher> {
        let env = |name: &str| match name {
            "INCIDENTS_TABLE" | "ALERT_STATE_TABLE" => Some("t".to_owned()),
            "ALERT_TOPIC_ARN" => Some("arn:aws:sns:us-east-1:123456789012:t".to_owned()),
            "ALERT_TIME_RESERVE_MS" => Some("0".to_owned()),
            _ => None,
        };
        Processor {
            config: Config::from_lookup(env).unwrap(),
            store: MemoryStore::default(),
            gate: MemoryGate::default(),
            publisher: MemoryPublisher::default(),
        }
    }

    fn two_rules() -> String {
        let line = |rule: &str| {
            format!(
                r#"{{"timestamp":"2027-01-15 08:00:00.000","traceId":"t-{rule}","status":"Failure","eventType":"RuleNotFound","ruleName":"{rule}"}}"#
            )
        };
        let spec = BatchSpec::new("AWSIotLogsV2", "s");
        let (a, b) = (line("rule_a"), line("rule_b"));
        subscription_event_json(&spec, [(1_000, a.as_str()), (2_000, b.as_str())])
    }

    fn key_of(rule: &str) -> String {
        format!("RuleNotFound|Rule|{rule}")
    }

    fn deadline() -> Instant {
        Instant::now() + Duration::from_secs(30)
    }

    /// Issue 16 (1): a key refused for good costs its own alert only.
    #[tokio::test]
    async fn a_key_refused_for_good_costs_only_its_own_alert() {
        let p = processor();
        p.gate.refuse.lock().unwrap().insert(
            key_of("rule_b"),
            Some("ValidationException: key too large".into()),
        );
        let summary = p.process(&two_rules(), 10_000, deadline()).await.unwrap();
        let summary = summary.summary();
        assert_eq!((summary.alerts_sent, summary.alerts_failed), (1, 1));
        let published = p.publisher.published.lock().unwrap();
        assert_eq!(published.len(), 1);
        assert_eq!(published[0].key, key_of("rule_a"));
        assert_eq!(p.store.items.lock().unwrap().len(), 2, "both stored");
    }

    /// A refusal that may pass fails the batch (Lambda retries it), and so
    /// does one that would refuse every key (access denied, a missing
    /// table): the claims taken are given back, so the retry sends them.
    #[tokio::test]
    async fn a_retryable_or_table_wide_refusal_fails_the_batch_and_gives_back_its_claims() {
        for refusal in [
            None,
            Some("AccessDeniedException: not authorized".to_owned()),
        ] {
            let p = processor();
            p.gate
                .refuse
                .lock()
                .unwrap()
                .insert(key_of("rule_b"), refusal.clone());
            let error = p
                .process(&two_rules(), 10_000, deadline())
                .await
                .unwrap_err();
            assert_eq!(error.kind(), "AlertState.Request", "{refusal:?}");
            assert!(p.publisher.published.lock().unwrap().is_empty());
            assert!(
                p.gate.sent.lock().unwrap().is_empty(),
                "rule_a's claim released"
            );
            p.gate.refuse.lock().unwrap().clear();
            let retry = p.process(&two_rules(), 10_000, deadline()).await.unwrap();
            assert_eq!(retry.summary().alerts_sent, 2);
        }
    }

    /// An alert SNS refuses for good costs only itself; the batch succeeds.
    #[tokio::test]
    async fn an_alert_refused_by_sns_for_good_costs_only_itself() {
        let p = processor();
        p.publisher.reject.lock().unwrap().insert(key_of("rule_a"));
        let response = p.process(&two_rules(), 10_000, deadline()).await.unwrap();
        let summary = response.summary();
        assert_eq!((summary.alerts_sent, summary.alerts_failed), (1, 1));
        assert_eq!(
            p.publisher.published.lock().unwrap()[0].key,
            key_of("rule_b")
        );
    }
}
