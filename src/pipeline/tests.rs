//! The pipeline's own tests over the in-memory ports, and the helpers
//! the notify and sweep tests share.

use super::*;
use crate::memory::{MemoryIncidents, MemoryPublisher, MemoryStore};
use crate::tooling::encode::{subscription_event_json, BatchSpec};

/// EventBridge's scheduled event, as the sweep's schedule sends it.
pub(super) const SCHEDULED: &str = r#"{"version":"0","id":"x","detail-type":"Scheduled Event","source":"aws.events","account":"123456789012","time":"2026-12-02T10:00:00Z","region":"us-east-1","resources":["arn:aws:events:us-east-1:123456789012:rule/r"],"detail":{}}"#;

/// Adds a silence from the epoch on, that never ends.
pub(super) fn silence(p: &MemoryProcessor, matchers: crate::incident::silence::Matchers) {
    p.incidents
        .silences
        .lock()
        .unwrap()
        .push(crate::incident::silence::Silence {
            id: "s1".into(),
            matchers,
            starts_ms: 0,
            ends_ms: i64::MAX,
            comment: "maintenance".into(),
            created_by: "ana".into(),
        });
}

pub(super) type MemoryProcessor = Processor<MemoryStore, MemoryIncidents, MemoryPublisher>;

pub(super) fn processor() -> Processor<MemoryStore, MemoryIncidents, MemoryPublisher> {
    processor_with(&[])
}

pub(super) fn processor_with(
    overrides: &[(&str, &str)],
) -> Processor<MemoryStore, MemoryIncidents, MemoryPublisher> {
    let env = |name: &str| match name {
        _ if overrides.iter().any(|(k, _)| *k == name) => overrides
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| (*v).to_owned()),
        "ENTRIES_TABLE" | "INCIDENTS_TABLE" | "SILENCES_TABLE" => Some("t".to_owned()),
        "ALERT_TOPIC_ARN" => Some("arn:aws:sns:us-east-1:123456789012:t".to_owned()),
        "ALERT_TIME_RESERVE_MS" => Some("0".to_owned()),
        _ => None,
    };
    Processor {
        config: Config::from_lookup(env).unwrap(),
        entries: MemoryStore::default(),
        incidents: MemoryIncidents::default(),
        publisher: MemoryPublisher::default(),
    }
}

pub(super) fn two_rules() -> String {
    let line = |rule: &str| {
        format!(
            r#"{{"timestamp":"2027-01-15 08:00:00.000","traceId":"t-{rule}","status":"Failure","eventType":"RuleNotFound","ruleName":"{rule}"}}"#
        )
    };
    let spec = BatchSpec::new("AWSIotLogsV2", "s");
    let (a, b) = (line("rule_a"), line("rule_b"));
    subscription_event_json(&spec, [(1_000, a.as_str()), (2_000, b.as_str())])
}

pub(super) fn key_of(rule: &str) -> String {
    crate::incident::key::IncidentKey {
        category: Category::RuleNotFound,
        kind: crate::incident::key::KeyKind::Rule,
        first: rule.to_owned(),
        second: None,
    }
    .hash()
}

pub(super) fn deadline() -> Instant {
    Instant::now() + Duration::from_secs(30)
}

fn stored_incident_ids(
    p: &Processor<MemoryStore, MemoryIncidents, MemoryPublisher>,
) -> Vec<Option<String>> {
    let items = p.entries.items.lock().unwrap();
    let mut ids: Vec<_> = items
        .values()
        .map(|item| {
            item.get("incidentId")
                .and_then(crate::store::item::Attr::as_str)
                .map(str::to_owned)
        })
        .collect();
    ids.sort();
    ids
}

#[tokio::test]
async fn each_entry_is_stored_with_its_incident_and_each_incident_opened_once() {
    let p = processor();
    let summary = p.process(&two_rules(), 10_000, deadline()).await.unwrap();
    let summary = summary.summary();
    assert_eq!((summary.incidents, summary.incidents_opened), (2, 2));
    assert_eq!(summary.notifications_sent, 2);
    assert_eq!(
        stored_incident_ids(&p),
        [
            Some(format!("{}-1", key_of("rule_a"))),
            Some(format!("{}-1", key_of("rule_b")))
        ]
        .into_iter()
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect::<Vec<_>>()
    );
    let again = p.process(&two_rules(), 11_000, deadline()).await.unwrap();
    let again = again.summary();
    assert_eq!(
        (again.incidents_already_counted, again.notifications_sent),
        (2, 0),
        "a redelivery counts nothing and announces nothing"
    );
}

/// The configured cap decides, not the default: a batch that inflates
/// past MAX_DECOMPRESSED_BYTES but well under the default is refused,
/// and the same batch passes under a cap just above it.
#[tokio::test]
async fn the_configured_decompression_cap_is_the_one_applied() {
    let line = r#"{"timestamp":"2027-01-15 08:00:00.000","traceId":"t","status":"Failure","eventType":"RuleNotFound","ruleName":"r","details":"padding"}"#;
    let lines: Vec<(i64, &str)> = (0..2_000).map(|i| (i, line)).collect();
    let event = subscription_event_json(&BatchSpec::new("AWSIotLogsV2", "s"), lines);
    let inflated = 2_000 * line.len();
    assert!(inflated > 200_000 && inflated < 1_000_000, "{inflated}");
    let refused = processor_with(&[("MAX_DECOMPRESSED_BYTES", "200000")])
        .process(&event, 10_000, deadline())
        .await
        .unwrap_err();
    assert!(
        matches!(
            refused,
            ProcessError::Decode(DecodeError::TooLarge { cap: 200_000 })
        ),
        "{refused:?}"
    );
    let passed = processor_with(&[("MAX_DECOMPRESSED_BYTES", "1000000")])
        .process(&event, 10_000, deadline())
        .await
        .unwrap();
    assert_eq!(passed.summary().entries, 2_000);
}

/// Issue 16 (1): an incident refused for good costs its own notification only.
#[tokio::test]
async fn an_incident_refused_for_good_costs_only_its_own_notification() {
    let p = processor();
    p.incidents.refuse.lock().unwrap().insert(
        key_of("rule_b"),
        Some("ValidationException: key too large".into()),
    );
    let summary = p.process(&two_rules(), 10_000, deadline()).await.unwrap();
    let summary = summary.summary();
    assert_eq!(
        (summary.notifications_sent, summary.notifications_failed),
        (1, 1)
    );
    let published = p.publisher.published.lock().unwrap();
    assert_eq!(published.len(), 1);
    assert_eq!(published[0].id, format!("{}-1#opened", key_of("rule_a")));
    assert_eq!(p.entries.items.lock().unwrap().len(), 2, "both stored");
}

/// A refusal that may pass fails the batch (Lambda retries it), and so
/// does one that would refuse every key (access denied, a missing
/// table); the retry then opens and announces both.
#[tokio::test]
async fn a_retryable_or_table_wide_refusal_fails_the_batch_and_the_retry_announces_all() {
    for refusal in [
        None,
        Some("AccessDeniedException: not authorized".to_owned()),
    ] {
        let p = processor();
        p.incidents
            .refuse
            .lock()
            .unwrap()
            .insert(key_of("rule_b"), refusal.clone());
        let error = p
            .process(&two_rules(), 10_000, deadline())
            .await
            .unwrap_err();
        assert_eq!(error.kind(), "IncidentState.Request", "{refusal:?}");
        assert!(p.publisher.published.lock().unwrap().is_empty());
        assert!(
            p.entries.items.lock().unwrap().is_empty(),
            "nothing stored before incidents"
        );
        p.incidents.refuse.lock().unwrap().clear();
        let retry = p.process(&two_rules(), 10_000, deadline()).await.unwrap();
        assert_eq!(retry.summary().notifications_sent, 2);
    }
}

/// A notification SNS refuses for good costs only itself; the batch succeeds.
#[tokio::test]
async fn a_notification_refused_by_sns_for_good_costs_only_itself() {
    let p = processor();
    p.publisher
        .reject
        .lock()
        .unwrap()
        .insert(format!("{}-1#opened", key_of("rule_a")));
    let response = p.process(&two_rules(), 10_000, deadline()).await.unwrap();
    let summary = response.summary();
    assert_eq!(
        (summary.notifications_sent, summary.notifications_failed),
        (1, 1)
    );
    assert_eq!(
        p.publisher.published.lock().unwrap()[0].id,
        format!("{}-1#opened", key_of("rule_b"))
    );
}

#[test]
fn a_deadline_already_past_at_the_start_is_read_as_the_template_s_timeout() {
    let now = 1_800_000_000_000;
    let margin = Duration::from_millis(2_000);
    // Lambda's own: what is left, less the margin to report.
    let real = deadline_from_epoch_ms(now + 10_000, now);
    let left = real.saturating_duration_since(Instant::now());
    assert!(left <= Duration::from_millis(10_000) - margin, "{left:?}");
    assert!(left > Duration::from_millis(7_000), "{left:?}");
    // cargo lambda watch's constant 600000 (1970), and a deadline equal to
    // now: neither can be Lambda's, so the template's timeout applies.
    for past in [600_000, now] {
        let left = deadline_from_epoch_ms(past, now).saturating_duration_since(Instant::now());
        assert!(
            left > Duration::from_millis(TEMPLATE_TIMEOUT_MS) - margin - Duration::from_secs(1),
            "{past}: {left:?}"
        );
        assert!(left <= Duration::from_millis(TEMPLATE_TIMEOUT_MS) - margin);
    }
}
