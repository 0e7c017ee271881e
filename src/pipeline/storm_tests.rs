//! The storm budget over the in-memory ports: however many keys a batch
//! brings, it keeps at most the budget's own incidents, folds the rest into
//! one overflow incident per category, and announces them in one digest,
//! once, within its deadline.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use super::tests::{deadline, processor, processor_with, MemoryProcessor};
use super::*;
use crate::incident::delta::{gather_within, FOLDED_NAMED};
use crate::incident::key::{key_of, IncidentKey, KeyKind};
use crate::memory::MemoryPublisher;
use crate::model::record::{judge, to_entry};
use crate::notify::notification::RenderedNotification;
use crate::ports::PublishReport;
use crate::tooling::encode::{subscription_event_json, BatchSpec};

fn rule_not_found(rule: &str, n: usize) -> String {
    format!(
        r#"{{"timestamp":"2027-01-15 08:00:00.000","traceId":"t-{rule}-{n}","status":"Failure","eventType":"RuleNotFound","clientId":"dev-{}","ruleName":"{rule}"}}"#,
        n % 7
    )
}

fn batch(lines: &[String]) -> String {
    let spec = BatchSpec::new("AWSIotLogsV2", "storm");
    subscription_event_json(&spec, lines.iter().map(|l| (1_000, l.as_str())))
}

/// A storm: 25 rules with 3 entries each (`hot-00` … `hot-24`), 1,000 with
/// one (`r-0000` …), and one real problem of another category, 1,101
/// entries in all.
fn storm() -> Vec<String> {
    let mut lines = Vec::new();
    for r in 0..25 {
        for n in 0..3 {
            lines.push(rule_not_found(&format!("hot-{r:02}"), n));
        }
    }
    for r in 0..1_000 {
        lines.push(rule_not_found(&format!("r-{r:04}"), r));
    }
    lines.push(r#"{"timestamp":"2027-01-15 08:00:00.000","traceId":"t-auth","status":"Failure","eventType":"Connect","clientId":"dev-1","reason":"AUTHORIZATION_FAILURE"}"#.to_owned());
    lines
}

fn rule_key(rule: &str) -> IncidentKey {
    IncidentKey {
        category: Category::RuleNotFound,
        kind: KeyKind::Rule,
        first: rule.to_owned(),
        second: None,
    }
}

fn incident_ids_stored(p: &MemoryProcessor) -> Vec<Option<String>> {
    let items = p.entries.items.lock().unwrap();
    items
        .values()
        .map(|item| {
            item.get("incidentId")
                .and_then(crate::store::item::Attr::as_str)
                .map(str::to_owned)
        })
        .collect()
}

fn published(p: &MemoryProcessor) -> Vec<RenderedNotification> {
    p.publisher.published.lock().unwrap().clone()
}

/// One batch of 1,026 distinct keys: the budget's busiest keys keep their
/// incidents (the other category's one problem among them), the rest are
/// one overflow incident that counts every one of their entries, and the
/// budget's `opened` notifications plus one digest go out. Every entry is
/// stored, with the id of the incident that counts it.
#[tokio::test]
async fn a_storm_opens_the_budget_s_incidents_and_one_digest_for_the_rest() {
    let p = processor_with(&[("STORM_BUDGET", "20")]);
    let lines = storm();
    let summary = p.process(&batch(&lines), 10_000, deadline()).await.unwrap();
    let summary = summary.summary().clone();
    assert_eq!(
        (summary.incidents, summary.keys_folded),
        (21, 1_006),
        "19 hot rules and the authorisation failure keep their own incidents; 6 hot rules and 1,000 rules fold"
    );
    let sent = published(&p);
    assert_eq!(sent.len(), 21, "20 opened + 1 digest");
    assert_eq!(summary.notifications_sent, 21);

    let overflow = IncidentKey::overflow(Category::RuleNotFound).hash();
    let incidents = p.incidents.incidents.lock().unwrap().clone();
    assert_eq!(incidents.len(), 21);
    let (overflow_incident, _) = &incidents[&overflow];
    assert_eq!(overflow_incident.entries, 6 * 3 + 1_000, "exact");
    for r in 0..19 {
        assert!(incidents.contains_key(&rule_key(&format!("hot-{r:02}")).hash()));
    }
    assert!(!incidents.contains_key(&rule_key("hot-19").hash()));
    assert!(!incidents.contains_key(&rule_key("r-0000").hash()));

    let ids = incident_ids_stored(&p);
    assert_eq!(ids.len(), lines.len(), "every entry stored");
    let counted_by_overflow = ids
        .iter()
        .filter(|id| id.as_deref() == Some(overflow_incident.incident_id.as_str()))
        .count();
    assert_eq!(counted_by_overflow as u64, overflow_incident.entries);
    assert!(ids.iter().all(Option::is_some));

    let digest = sent
        .iter()
        .find(|n| n.id == format!("{}#opened", overflow_incident.incident_id))
        .expect("the digest");
    assert!(
        digest.subject.contains("1006 more incidents"),
        "{}",
        digest.subject
    );
    let body: serde_json::Value = serde_json::from_str(
        serde_json::from_str::<serde_json::Value>(&digest.message).unwrap()["default"]
            .as_str()
            .unwrap(),
    )
    .unwrap();
    let busiest: Vec<&str> = body["storm"]["busiest"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["key"]["rule"].as_str().unwrap())
        .collect();
    assert_eq!(busiest.len(), FOLDED_NAMED);
    assert_eq!(
        busiest[..6],
        ["hot-19", "hot-20", "hot-21", "hot-22", "hot-23", "hot-24"],
        "the busiest folded keys first"
    );
    assert_eq!(body["storm"]["keysFolded"], 1_006);
}

/// A redelivered storm splits the same way, so nothing is counted twice and
/// nothing is announced again: not the openings, not the digest.
#[tokio::test]
async fn a_redelivered_storm_counts_nothing_again_and_sends_nothing() {
    let p = processor();
    let event = batch(&storm());
    p.process(&event, 10_000, deadline()).await.unwrap();
    let before = p.incidents.incidents.lock().unwrap().clone();
    let sent = published(&p).len();
    let again = p.process(&event, 11_000, deadline()).await.unwrap();
    let again = again.summary();
    assert_eq!(
        (again.incidents_already_counted, again.notifications_sent),
        (21, 0)
    );
    assert_eq!(published(&p).len(), sent);
    let after = p.incidents.incidents.lock().unwrap().clone();
    let entries = |all: &std::collections::HashMap<
        String,
        (crate::incident::lifecycle::IncidentState, _),
    >| {
        all.iter()
            .map(|(k, (i, _))| (k.clone(), i.entries))
            .collect::<BTreeSet<_>>()
    };
    assert_eq!(entries(&after), entries(&before));
}

/// Which keys fold is decided by the batch alone: the same entries in
/// another order split the same way (a redelivery may not be the same
/// bytes in the same order), and a category's one problem is kept however
/// busy another category's storm is.
#[test]
fn the_split_depends_on_the_batch_alone_and_each_category_gets_its_turn() {
    let lines = storm();
    let entries: Vec<_> = lines
        .iter()
        .enumerate()
        .map(|(i, l)| to_entry(&format!("e{i}"), 1_000, l, &judge(l)).unwrap())
        .collect();
    let categories = CategorySet::of(&[Category::RuleNotFound, Category::Failure]);
    let forward = gather_within(&entries, categories, "g", 20);
    let mut reversed_entries = entries.clone();
    reversed_entries.reverse();
    let reversed = gather_within(&reversed_entries, categories, "g", 20);
    let keys = |g: &crate::incident::delta::Gathered| {
        g.deltas
            .iter()
            .map(|d| (d.key.clone(), d.entries))
            .collect::<BTreeSet<_>>()
    };
    assert_eq!(keys(&forward), keys(&reversed));
    assert_eq!(forward.folded, reversed.folded);
    let auth = key_of(entries.last().unwrap(), "g");
    assert!(forward.deltas.iter().any(|d| d.key == auth));
    // Under the budget nothing folds.
    let calm = gather_within(&entries[..30], categories, "g", 20);
    assert!(calm.folded.is_empty());
    assert!(calm.deltas.iter().all(|d| !d.key.is_overflow()));
}

/// A publisher that never answers: SNS hanging past any timeout.
struct Stalled;

impl NotificationPublisher for Stalled {
    async fn publish(
        &self,
        _: &[RenderedNotification],
        _: Instant,
    ) -> Result<PublishReport, (Vec<usize>, crate::error::PublishError)> {
        std::future::pending().await
    }
}

/// However slow a dependency, the invocation answers by its deadline (the
/// Lambda deadline less a margin), failing so that Lambda retries; the
/// claims it took lapse with it, so the retry announces everything once.
#[tokio::test]
async fn the_invocation_never_runs_past_its_deadline_and_the_retry_announces() {
    let p = processor_with(&[]);
    let stalled = Processor {
        config: p.config,
        entries: p.entries,
        incidents: p.incidents,
        publisher: Stalled,
    };
    let event = batch(&storm());
    // The guard turns a hang (the bug) into a failure; the deadline is 300 ms.
    let error = tokio::time::timeout(
        Duration::from_secs(60),
        stalled.process(&event, 10_000, Instant::now() + Duration::from_millis(300)),
    )
    .await
    .expect("the invocation answered")
    .unwrap_err();
    assert!(matches!(error, ProcessError::Deadline), "{error}");
    assert_eq!(error.kind(), "Deadline");

    let retry = Processor {
        config: stalled.config,
        entries: stalled.entries,
        incidents: stalled.incidents,
        publisher: MemoryPublisher::default(),
    };
    // Lambda retries a minute later at the earliest.
    let summary = retry.process(&event, 70_000, deadline()).await.unwrap();
    assert_eq!(summary.summary().notifications_sent, 21);
}

/// Issue 28 (2), per minute: batches of one minute (each within its own
/// budget) may open at most the budget's incidents between them; the keys
/// past it join the overflow incident, announced by one digest that names
/// them. A redelivery folds the same keys again and counts nothing twice;
/// the next minute has a budget of its own.
#[tokio::test]
async fn openings_past_the_minute_s_budget_join_the_overflow_incident() {
    let p = processor_with(&[("STORM_BUDGET", "5")]);
    let rules = |prefix: &str, n: usize| -> Vec<String> {
        (0..n)
            .map(|r| rule_not_found(&format!("{prefix}-{r}"), r))
            .collect()
    };
    let spec = |seed: u64| {
        let mut s = BatchSpec::new("AWSIotLogsV2", "minute");
        s.id_seed = seed;
        s
    };
    let event = |seed: u64, lines: &[String]| {
        subscription_event_json(&spec(seed), lines.iter().map(|l| (1_000, l.as_str())))
    };
    let minute = 60_000 * 1_000;
    let first = p
        .process(&event(1, &rules("a", 4)), minute, deadline())
        .await
        .unwrap();
    assert_eq!(first.summary().notifications_sent, 4);
    let second_event = event(2, &rules("b", 4));
    let second = p
        .process(&second_event, minute + 30_000, deadline())
        .await
        .unwrap();
    let s = second.summary();
    assert_eq!((s.incidents_opened, s.keys_folded), (2, 3), "{s:?}");
    assert_eq!(s.notifications_sent, 2, "one opening and one digest");
    let digest = published(&p).pop().unwrap();
    assert!(digest.subject.contains("3 more"), "{}", digest.subject);
    for rule in ["b-1", "b-2", "b-3"] {
        assert!(digest.message.contains(rule), "{rule}: {}", digest.message);
    }
    // Redelivered in the next minute: folded the same way, nothing counted again.
    let again = p
        .process(&second_event, minute + 90_000, deadline())
        .await
        .unwrap();
    let s = again.summary();
    assert_eq!((s.incidents_opened, s.notifications_sent), (0, 0), "{s:?}");
    let (overflow, count) = {
        let incidents = p.incidents.incidents.lock().unwrap();
        let overflow = incidents
            .values()
            .find(|(i, _)| i.key.is_overflow())
            .map(|(i, _)| i.clone())
            .unwrap();
        (overflow, incidents.len())
    };
    assert_eq!(overflow.entries, 3);
    assert_eq!(count, 6, "a-0..3, b-0 and the overflow incident");
    let ids = incident_ids_stored(&p);
    assert_eq!(ids.len(), 8);
    let to_overflow = ids
        .iter()
        .filter(|id| id.as_deref() == Some(overflow.incident_id.as_str()))
        .count();
    assert_eq!(to_overflow, 3);
    // A minute later the budget is new.
    let third = p
        .process(&event(3, &rules("c", 2)), minute + 120_000, deadline())
        .await
        .unwrap();
    assert_eq!(third.summary().incidents_opened, 2);
}
