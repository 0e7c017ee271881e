//! Sending the notifications that are due: claim each (one holder across
//! invocations and sweeps), publish what was claimed, then confirm what went
//! out and give back the rest. Shared by log batches and sweeps.

use std::time::Instant;

use futures_util::stream::{self, StreamExt};

use super::digest::render_overflow;
use super::{Processor, Summary, INCIDENT_CONCURRENCY};
use crate::error::ProcessError;
use crate::incident::delta::{Delta, Folded};
use crate::incident::lifecycle::{IncidentState, Transition};
use crate::incident::silence::silenced_by;
use crate::notify::notification::render;
use crate::ports::{EntryStore, IncidentStore, NotificationClaim, NotificationPublisher};

/// A notification due for an incident, and the batch's delta when a batch
/// made it due (it names the batch's busiest clients), and for an overflow
/// incident what that batch folded into it (its digest names the keys).
pub struct Due<'a> {
    pub incident: IncidentState,
    pub transition: Transition,
    pub delta: Option<&'a Delta>,
    pub folded: Option<&'a Folded>,
}

/// A claim token: unique, so a claim is recognised by its holder only.
fn new_token() -> String {
    format!("{:016x}{:016x}", fastrand::u64(..), fastrand::u64(..))
}

impl<E: EntryStore, I: IncidentStore, P: NotificationPublisher> Processor<E, I, P> {
    /// Claims, publishes and settles `due`. Publishing retries within its
    /// own budget; settling may use what is left of the invocation, as each
    /// claim left undone delays a notification until its lease ends.
    pub(super) async fn notify(
        &self,
        due: Vec<Due<'_>>,
        now_ms: i64,
        deadline: Instant,
        summary: &mut Summary,
    ) -> Result<(), ProcessError> {
        if due.is_empty() {
            return Ok(());
        }
        let reserve = self.config.alert_time_reserve;
        if !reserve.is_zero() && Instant::now() + reserve > deadline {
            // Claiming and then being cut off before publishing would hold
            // the notifications until their leases end; failing now lets the
            // retry (which recognises what was counted and stored) send them.
            let remaining_ms = deadline
                .saturating_duration_since(Instant::now())
                .as_millis() as u64;
            return Err(ProcessError::OutOfTime { remaining_ms });
        }
        let due = self.without_silenced(due, now_ms, summary).await;
        if due.is_empty() {
            return Ok(());
        }
        // The lease ends with this invocation: after it, a retry or a sweep
        // may take over a claim this invocation never settled.
        let lease_until_ms = now_ms
            + deadline
                .saturating_duration_since(Instant::now())
                .as_millis() as i64;
        let attempts: Vec<(Due<'_>, String)> = due.into_iter().map(|d| (d, new_token())).collect();
        let outcomes: Vec<_> = stream::iter(&attempts)
            .map(|(d, token)| {
                self.incidents
                    .claim(&d.incident, d.transition, token, now_ms, lease_until_ms)
            })
            .buffered(INCIDENT_CONCURRENCY)
            .collect()
            .await;
        let mut claims = Vec::new();
        let mut rendered = Vec::new();
        let mut unknown = Vec::new();
        let mut first_error = None;
        for ((d, token), outcome) in attempts.iter().zip(outcomes) {
            let claim_of = |incident: &IncidentState| NotificationClaim {
                item_key: incident.item_key.clone(),
                incident_id: incident.incident_id.clone(),
                transition: d.transition,
                token: token.clone(),
                entries: incident.entries,
            };
            match outcome {
                Ok(Some(fresh)) => {
                    rendered.push(if fresh.key.is_overflow() {
                        render_overflow(
                            &fresh,
                            d.transition,
                            d.folded,
                            d.delta,
                            self.config.storm_budget,
                        )
                    } else {
                        render(&fresh, d.transition, d.delta)
                    });
                    claims.push(claim_of(&fresh));
                }
                Ok(None) => summary.notifications_held_elsewhere += 1,
                // Refused for good (a request DynamoDB will never accept):
                // this notification is lost, loudly; failing the batch would
                // lose every other one too, on every retry.
                Err(e) if e.is_refused_for_this_request() => {
                    summary.notifications_failed += 1;
                    tracing::error!(incident = %d.incident.incident_id, error = %e, "notification claim refused for good; this notification is lost, the others go on");
                }
                Err(e) => {
                    // The claim may have been written with its answer lost:
                    // releasing by its token undoes it if so, and nothing else.
                    unknown.push(claim_of(&d.incident));
                    first_error.get_or_insert(e);
                }
            }
        }
        if let Some(error) = first_error {
            claims.extend(unknown);
            self.settle(&claims, |_| false, now_ms, deadline).await;
            return Err(ProcessError::IncidentState(error));
        }
        if rendered.is_empty() {
            return Ok(());
        }
        let retry_deadline = deadline.min(Instant::now() + self.config.retry_budget);
        match self.publisher.publish(&rendered, retry_deadline).await {
            Ok(report) => {
                summary.publish_requests += report.requests;
                summary.notifications_sent += (rendered.len() - report.rejected.len()) as u64;
                summary.notifications_failed += report.rejected.len() as u64;
                // Refused ones are settled as sent: sending them again would
                // be refused again, and would hold their incident for good.
                self.settle(&claims, |_| true, now_ms, deadline).await;
                Ok(())
            }
            Err((unsent, error)) => {
                summary.notifications_sent += (rendered.len() - unsent.len()) as u64;
                self.settle(&claims, |i| !unsent.contains(&i), now_ms, deadline)
                    .await;
                Err(error.into())
            }
        }
    }

    /// Holds back (and counts on the incident) what an active silence
    /// matches. If the silences cannot be read, nothing is held back: a
    /// notification during maintenance is better than one lost. That is
    /// counted (`silence_read_errors`), so an alarm says silences are being
    /// ignored, not only a log line.
    async fn without_silenced<'d>(
        &self,
        due: Vec<Due<'d>>,
        now_ms: i64,
        summary: &mut Summary,
    ) -> Vec<Due<'d>> {
        let silences = match self.incidents.silences(now_ms).await {
            Ok(silences) => silences,
            Err(e) => {
                summary.silence_read_errors += 1;
                tracing::error!(error = %e, "could not read silences; notifying as if none were active");
                return due;
            }
        };
        if silences.is_empty() {
            return due;
        }
        let mut kept = Vec::with_capacity(due.len());
        let mut held = Vec::new();
        for d in due {
            match silenced_by(&silences, &d.incident, d.delta, now_ms) {
                Some(silence) => held.push((d.incident, silence.id.clone())),
                None => kept.push(d),
            }
        }
        summary.notifications_silenced += held.len() as u64;
        let counted: Vec<_> = stream::iter(&held)
            .map(|(incident, silence)| self.incidents.hold_back(incident, silence))
            .buffered(INCIDENT_CONCURRENCY)
            .collect()
            .await;
        for ((incident, silence), outcome) in held.iter().zip(counted) {
            if let Err(e) = outcome {
                tracing::warn!(incident = %incident.incident_id, silence = %silence, error = %e, "held back by a silence, but not counted");
            }
        }
        kept
    }

    /// Confirms the claims whose notifications went out (claim `i` when
    /// `published(i)`) and releases the others. Neither may fail the
    /// invocation: a claim left unsettled is taken over when its lease ends
    /// (by a retry or the next sweep), at worst sending its notification
    /// twice under the same notification id.
    async fn settle(
        &self,
        claims: &[NotificationClaim],
        published: impl Fn(usize) -> bool,
        now_ms: i64,
        deadline: Instant,
    ) {
        let outcomes: Vec<_> = stream::iter(claims.iter().enumerate().map(|(i, claim)| {
            let published = published(i);
            async move {
                let outcome = if published {
                    self.incidents.confirm(claim, now_ms, deadline).await
                } else {
                    self.incidents.release(claim, deadline).await
                };
                (claim, published, outcome)
            }
        }))
        .buffered(INCIDENT_CONCURRENCY)
        .collect()
        .await;
        for (claim, published, outcome) in outcomes {
            match outcome {
                Ok(()) => {}
                Err(e) if published => {
                    tracing::warn!(incident = %claim.incident_id, error = %e, "could not confirm a sent notification; it may go out again under the same id")
                }
                Err(e) => {
                    tracing::error!(incident = %claim.incident_id, error = %e, "could not release a notification claim; it is taken over when its lease ends")
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::incident::silence::Matchers;
    use crate::pipeline::tests::{deadline, key_of, processor, silence, two_rules, SCHEDULED};

    /// A claim's lease ends with the invocation that took it: after that a
    /// sweep or a batch may take over a claim it never settled (a lease
    /// past the deadline would hold the notification back for longer).
    #[tokio::test]
    async fn a_claim_is_leased_until_the_invocation_s_deadline() {
        let p = processor();
        let now_ms = 10_000;
        let budget_ms = 30_000;
        let deadline = Instant::now() + std::time::Duration::from_millis(budget_ms as u64);
        p.process(&two_rules(), now_ms, deadline).await.unwrap();
        let leases = p.incidents.leases.lock().unwrap().clone();
        assert_eq!(leases.len(), 2);
        assert!(
            leases
                .iter()
                .all(|&l| now_ms < l && l <= now_ms + budget_ms),
            "{leases:?}"
        );
    }

    /// A notification whose claim another invocation holds is left to it,
    /// and counted as held elsewhere; the others go out.
    #[tokio::test]
    async fn a_notification_claimed_elsewhere_is_left_to_its_holder_and_counted() {
        let p = processor();
        p.incidents
            .claimed_elsewhere
            .lock()
            .unwrap()
            .insert(key_of("rule_a"));
        let batch = p.process(&two_rules(), 10_000, deadline()).await.unwrap();
        let batch = batch.summary();
        assert_eq!(
            (batch.notifications_sent, batch.notifications_held_elsewhere),
            (1, 1)
        );
        let published = p.publisher.published.lock().unwrap();
        assert_eq!(published[0].id, format!("{}-1#opened", key_of("rule_b")));
    }

    /// A claim refused for good (a request DynamoDB will never accept)
    /// costs its own notification, counted; the others go out. A refusal
    /// that may pass fails the invocation, so that it is tried again.
    #[tokio::test]
    async fn a_claim_refused_for_good_costs_its_notification_and_one_that_may_pass_fails_the_run() {
        let p = processor();
        silence(
            &p,
            Matchers {
                all: true,
                ..Matchers::default()
            },
        );
        let held = p.process(&two_rules(), 10_000, deadline()).await.unwrap();
        assert_eq!(held.summary().notifications_silenced, 2);
        p.incidents.silences.lock().unwrap().clear();
        // Recorded and held back: now only their claims are refused.
        p.incidents.refuse.lock().unwrap().insert(
            key_of("rule_a"),
            Some("ValidationException: key too large".into()),
        );
        let swept = p.process(SCHEDULED, 20_000, deadline()).await.unwrap();
        let swept = swept.summary();
        assert_eq!(
            (swept.notifications_sent, swept.notifications_failed),
            (1, 1)
        );
        let published = p.publisher.published.lock().unwrap().clone();
        assert_eq!(published.len(), 1);
        assert_eq!(published[0].id, format!("{}-1#opened", key_of("rule_b")));

        p.incidents
            .refuse
            .lock()
            .unwrap()
            .insert(key_of("rule_a"), None);
        let retryable = p.process(SCHEDULED, 30_000, deadline()).await;
        assert!(
            matches!(retryable, Err(ProcessError::IncidentState(_))),
            "a throttled claim fails the run: {:?}",
            retryable.map(|r| r.summary().clone())
        );
    }

    /// A claim is recognised by its token (a lost answer is settled by
    /// reading it back): each invocation's token must be its own.
    #[test]
    fn claim_tokens_are_unique() {
        let tokens: std::collections::HashSet<String> = (0..10_000).map(|_| new_token()).collect();
        assert_eq!(tokens.len(), 10_000);
        assert!(tokens
            .iter()
            .all(|t| t.len() == 32 && t.bytes().all(|b| b.is_ascii_hexdigit())));
    }
}
