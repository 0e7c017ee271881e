//! The clock: a scheduled invocation resolves incidents that have been quiet
//! for the resolve delay and the reopen window (the flapping quiet period,
//! if they flap) and sends what is still due (an opened notification
//! a failed invocation left behind, a reminder, a resolved notification).

use std::time::Instant;

use futures_util::stream::{self, StreamExt};

use super::notify::Due;
use super::{Processor, Summary, INCIDENT_CONCURRENCY};
use crate::error::ProcessError;
use crate::incident::lifecycle::{notification_due, State, Transition};
use crate::ports::{EntryStore, IncidentStore, NotificationPublisher};

/// The summary's message type for a sweep.
pub const SWEEP: &str = "SWEEP";

/// A sweep looks at most at this many watched incidents; more are left to
/// the next one (and logged).
pub const MAX_SWEPT: usize = 5_000;

/// Whether an invocation is the schedule's: EventBridge's scheduled event
/// (`"detail-type": "Scheduled Event"`, from an EventBridge rule or
/// Scheduler's default input), or `{"action": "sweep"}` as configured input.
/// Log batches never carry either field.
pub fn is_sweep(event_json: &str) -> bool {
    #[derive(serde::Deserialize)]
    struct Probe<'a> {
        #[serde(rename = "detail-type", borrow, default)]
        detail_type: Option<&'a str>,
        #[serde(borrow, default)]
        action: Option<&'a str>,
    }
    // Cheap before parsing: a log batch is large, a schedule's event small.
    if event_json.len() > 4096 {
        return false;
    }
    serde_json::from_str::<Probe<'_>>(event_json)
        .is_ok_and(|p| p.detail_type == Some("Scheduled Event") || p.action == Some("sweep"))
}

impl<E: EntryStore, I: IncidentStore, P: NotificationPublisher> Processor<E, I, P> {
    /// Resolves what is quiet and sends what is due. Concurrent sweeps and
    /// batches are safe: every change is a conditional write on what was read.
    pub(super) async fn sweep(
        &self,
        now_ms: i64,
        deadline: Instant,
    ) -> Result<Summary, ProcessError> {
        let started = Instant::now();
        let mut summary = Summary {
            message_type: SWEEP,
            ..Summary::default()
        };
        let watched = self
            .incidents
            .watched(MAX_SWEPT)
            .await
            .map_err(ProcessError::IncidentState)?;
        if watched.len() >= MAX_SWEPT {
            tracing::warn!(
                limit = MAX_SWEPT,
                "more watched incidents than one sweep takes; the rest wait for the next"
            );
        }
        let timing = self.config.timing();
        summary.incidents_open = watched.iter().filter(|i| i.state == State::Open).count() as u64;
        summary.incidents = watched.len() as u64;

        let quiet: Vec<_> = watched
            .iter()
            .filter(|i| i.is_due_to_resolve(now_ms, timing) && !i.claim_is_live(now_ms))
            .collect();
        let resolutions: Vec<_> = stream::iter(&quiet)
            .map(|incident| self.incidents.resolve(incident, now_ms, timing))
            .buffered(INCIDENT_CONCURRENCY)
            .collect()
            .await;
        let mut due = Vec::new();
        let mut first_error = None;
        for (incident, outcome) in quiet.iter().zip(resolutions) {
            match outcome {
                Ok(Some(record)) => {
                    summary.incidents_resolved += 1;
                    summary.incidents_open = summary.incidents_open.saturating_sub(1);
                    tracing::info!(incident = %record.incident_id, entries = record.entries, "incident resolved");
                    if let Some(transition) = notification_due(&record, now_ms, timing) {
                        due.push(Due {
                            incident: record,
                            transition,
                            delta: None,
                            folded: None,
                        });
                    }
                }
                // Changed since read (a batch came, a claim was taken), or
                // flapping (its item says so): not due after all.
                Ok(None) => {}
                Err(e) => {
                    tracing::error!(incident = %incident.incident_id, error = %e, "could not resolve; the next sweep tries again");
                    first_error.get_or_insert(e);
                }
            }
        }
        for incident in watched
            .iter()
            .filter(|i| !i.is_due_to_resolve(now_ms, timing))
        {
            if let Some(transition) = notification_due(incident, now_ms, timing) {
                // An opened notification nobody claimed or held back belongs
                // to the batch that counted it, which may not have stored its
                // entries yet (it failed and will be retried). One whose
                // claim expired (its invocation died after storing), or that
                // a silence held back (stored, then held), is the sweep's.
                if transition == Transition::Opened
                    && incident.claim.is_none()
                    && incident.held_back == 0
                {
                    continue;
                }
                due.push(Due {
                    incident: incident.clone(),
                    transition,
                    delta: None,
                    folded: None,
                });
            }
        }
        let notified = self.notify(due, now_ms, deadline, &mut summary).await;
        summary.duration_ms = started.elapsed().as_millis() as u64;
        notified?;
        match first_error {
            Some(error) => Err(ProcessError::IncidentState(error)),
            None => Ok(summary),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::incident::lifecycle::StoredClaim;
    use crate::incident::silence::Matchers;
    use crate::pipeline::tests::{deadline, processor, silence, two_rules, SCHEDULED};
    use crate::pipeline::Response;

    fn batch_of(rule: &str, seed: u64) -> String {
        let line = format!(
            r#"{{"timestamp":"2027-01-15 08:00:00.000","traceId":"t-{seed}","status":"Failure","eventType":"RuleNotFound","ruleName":"{rule}"}}"#
        );
        let mut spec = crate::tooling::encode::BatchSpec::new("AWSIotLogsV2", "s");
        spec.id_seed = seed;
        crate::tooling::encode::subscription_event_json(&spec, [(1_000, line.as_str())])
    }

    fn published_ids(p: &crate::pipeline::tests::MemoryProcessor) -> Vec<String> {
        let published = p.publisher.published.lock().unwrap();
        published.iter().map(|n| n.id.clone()).collect()
    }

    /// An incident still active (entries came within the quiet period) gets
    /// its reminder from the sweep once the interval is over.
    #[tokio::test]
    async fn the_sweep_reminds_of_an_incident_still_active_once_the_interval_is_over() {
        let p = processor();
        let timing = p.config.timing();
        assert!(timing.resolve_after_ms > 60_000 && timing.repeat_ms > 60_000);
        let t0 = 10_000;
        p.process(&batch_of("rule_a", 1), t0, deadline())
            .await
            .unwrap();
        let later = p
            .process(
                &batch_of("rule_a", 2),
                t0 + timing.repeat_ms - 60_000,
                deadline(),
            )
            .await
            .unwrap();
        assert_eq!(later.summary().notifications_sent, 0, "not due yet");
        let sweep = p
            .process(SCHEDULED, t0 + timing.repeat_ms, deadline())
            .await
            .unwrap();
        assert_eq!(sweep.summary().notifications_sent, 1);
        let ids = published_ids(&p);
        assert!(
            ids[0].ends_with("#opened") && ids[1].ends_with("#reminder-1"),
            "{ids:?}"
        );
    }

    /// An opening nobody announced is the sweep's when its batch can no
    /// longer announce it: a silence held it back (and has ended), or the
    /// invocation that claimed it died (its lease is over). One that no
    /// one claimed or held back belongs to its batch, which may still be
    /// storing its entries: the sweep leaves it.
    #[tokio::test]
    async fn the_sweep_sends_an_opening_its_batch_can_no_longer_send_and_no_other() {
        let p = processor();
        silence(
            &p,
            Matchers {
                rule: Some("rule_a".into()),
                ..Matchers::default()
            },
        );
        let batch = p.process(&two_rules(), 10_000, deadline()).await.unwrap();
        assert_eq!(
            (
                batch.summary().notifications_sent,
                batch.summary().notifications_silenced
            ),
            (1, 1)
        );
        {
            // Two more openings nobody announced, beside rule_b's (announced).
            let mut all = p.incidents.incidents.lock().unwrap();
            let (announced, fingerprints) =
                all.values().find(|(i, _)| i.sent == 1).unwrap().clone();
            for (name, lease) in [("in-flight", None), ("dead", Some(15_000))] {
                let mut unannounced = announced.clone();
                unannounced.item_key = name.into();
                unannounced.incident_id = format!("{name}-1");
                unannounced.sent = 0;
                unannounced.history.clear();
                unannounced.claim = lease.map(|lease_until_ms| StoredClaim {
                    token: "a dead invocation's".into(),
                    lease_until_ms,
                    step: Transition::Opened.name(),
                });
                all.insert(name.into(), (unannounced, fingerprints.clone()));
            }
        }
        p.incidents.silences.lock().unwrap().clear();
        let sweep = p.process(SCHEDULED, 20_000, deadline()).await.unwrap();
        assert_eq!(sweep.summary().notifications_sent, 2);
        let mut swept = published_ids(&p)[1..].to_vec();
        swept.sort();
        let held = format!("{}-1#opened", crate::pipeline::tests::key_of("rule_a"));
        let mut expected = vec!["dead-1#opened".to_owned(), held];
        expected.sort();
        assert_eq!(swept, expected);
    }

    /// The schedule's event, as Lambda hands it over: a sweep (so reported
    /// as one, with the gauge of open incidents), which resolves what went
    /// quiet once, and announces each resolution once.
    #[tokio::test]
    async fn the_schedule_resolves_what_went_quiet_once_and_reports_a_sweep() {
        let p = processor();
        let opened = p.process(&two_rules(), 10_000, deadline()).await.unwrap();
        assert_eq!(opened.summary().notifications_sent, 2);
        let quiet_at = 10_000 + p.config.timing().resolves_after_ms(false);

        let early = p
            .process(SCHEDULED, quiet_at - 1, deadline())
            .await
            .unwrap();
        assert!(matches!(early, Response::Sweep(_)));
        let early = early.summary();
        assert_eq!(early.message_type, SWEEP);
        assert_eq!(
            (
                early.incidents_open,
                early.incidents_resolved,
                early.notifications_sent
            ),
            (2, 0, 0),
            "not quiet yet"
        );

        let late = p.process(SCHEDULED, quiet_at, deadline()).await.unwrap();
        let late = late.summary();
        assert_eq!(late.message_type, SWEEP);
        assert_eq!(
            (
                late.incidents_open,
                late.incidents_resolved,
                late.notifications_sent
            ),
            (0, 2, 2)
        );
        let again = p
            .process(SCHEDULED, quiet_at + 60_000, deadline())
            .await
            .unwrap();
        let again = again.summary();
        assert_eq!(
            (again.incidents_resolved, again.notifications_sent),
            (0, 0),
            "resolved once, announced once"
        );
    }

    /// Issue 28 (3): one problem coming back in six bursts, each after a
    /// quiet period past the resolve delay, is one incident: the first two
    /// returns within the reopen window reopen it, which marks it flapping;
    /// then quiet periods past the window do not resolve it either, only
    /// the flapping quiet period does. One opened, one resolved.
    #[tokio::test]
    async fn six_bursts_of_one_problem_are_one_incident_opened_and_resolved_once() {
        let p = processor();
        let timing = p.config.timing();
        let window_end = timing.resolves_after_ms(false);
        let (short, long) = (timing.resolve_after_ms + 60_000, window_end + 60_000);
        assert!(long < timing.flap_resolve_after_ms, "{timing:?}");
        let mut at = 10_000;
        for burst in 0..6u64 {
            let sent = p
                .process(&batch_of("flappy", burst), at, deadline())
                .await
                .unwrap();
            assert_eq!(sent.summary().notifications_sent, u64::from(burst == 0));
            let quiet = if burst < 2 { short } else { long };
            let swept = p
                .process(SCHEDULED, at + quiet - 1, deadline())
                .await
                .unwrap();
            assert_eq!(swept.summary().incidents_resolved, 0, "burst {burst}");
            at += quiet;
        }
        let last = at - long;
        let early = p
            .process(
                SCHEDULED,
                last + timing.flap_resolve_after_ms - 1,
                deadline(),
            )
            .await
            .unwrap();
        assert_eq!(early.summary().incidents_resolved, 0);
        let resolved = p
            .process(SCHEDULED, last + timing.flap_resolve_after_ms, deadline())
            .await
            .unwrap();
        assert_eq!(resolved.summary().incidents_resolved, 1);
        let ids = published_ids(&p);
        let key = crate::pipeline::tests::key_of("flappy");
        assert_eq!(
            ids,
            [format!("{key}-1#opened"), format!("{key}-1#resolved")]
        );
        let published = p.publisher.published.lock().unwrap();
        let message: serde_json::Value = serde_json::from_str(&published[1].message).unwrap();
        let body: crate::notify::body::NotificationBody =
            serde_json::from_str(message["default"].as_str().unwrap()).unwrap();
        assert_eq!((body.reopenings, body.flapping, body.entries), (5, true, 6));
    }

    #[test]
    fn the_schedules_events_are_sweeps_and_log_batches_are_not() {
        assert!(is_sweep(SCHEDULED));
        assert!(is_sweep(r#"{"action":"sweep"}"#));
        assert!(!is_sweep(r#"{"awslogs":{"data":"H4sI"}}"#));
        assert!(!is_sweep(r#"{"Records":[]}"#));
        assert!(!is_sweep(r#"{"action":"other"}"#));
        assert!(!is_sweep("not json"));
    }
}
