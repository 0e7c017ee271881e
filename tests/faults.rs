//! Faults between the function and AWS, and invocations racing each other.
//! A fault-injecting proxy (tests/common/fault_proxy.rs) sits between the
//! processor's SDK clients and moto; failed invocations are delivered again
//! as Lambda does for an asynchronous function (up to 3 attempts), and what
//! still fails is redriven afterwards, as from the failure destination.
//! Everything is read back from moto directly, past the proxy.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use common::fault_proxy::{Fault, FaultProxy, Rule, Service};
use common::{
    event, far_deadline, moto, s, sdk_config_timed, throttled_line, RealProcessor, Stack,
};
use futures_util::stream::{self, StreamExt};
use iot_log_monitor::aws::sns::SnsPublisher;
use iot_log_monitor::error::ProcessError;
use iot_log_monitor::ingest::decode::{decode_data, invocation, parse_batch, Invocation};
use iot_log_monitor::notify::alert::AlertBody;
use iot_log_monitor::notify::group::aggregate;
use iot_log_monitor::pipeline::{analyze, batch_fingerprint, Response, Summary};
use iot_log_monitor::ports::{AlertGate, GateDecision};
use iot_log_monitor::tooling::local::ReceivedAlert;

const NOW: i64 = 1_800_000_000_000;
const MINUTE: i64 = 60_000;
const WAIT: Duration = Duration::from_secs(5);
/// Past the attempt timeout below: a slow answer is a timed-out attempt.
const SLOW: Duration = Duration::from_millis(1_200);

/// One test batch: its event and the traceIds of its incidents.
struct Batch {
    event: String,
    trace_ids: Vec<String>,
}

/// `batches` batches of throttled entries, every entry its own traceId;
/// `contents(b)` says how many entries of which rules batch `b` holds.
fn make_batches(
    name: &str,
    batches: usize,
    contents: impl Fn(usize) -> Vec<(String, usize)>,
) -> Vec<Batch> {
    let mut n = 0;
    (0..batches)
        .map(|b| {
            let mut lines = Vec::new();
            for (rule, count) in contents(b) {
                for _ in 0..count {
                    lines.push(throttled_line(&rule, n));
                    n += 1;
                }
            }
            let trace_ids = lines
                .iter()
                .map(|l| {
                    serde_json::from_str::<serde_json::Value>(l).unwrap()["traceId"]
                        .as_str()
                        .unwrap()
                        .to_owned()
                })
                .collect();
            Batch {
                event: event(&format!("{name}-{b}"), b as u64 + 1, &lines, NOW),
                trace_ids,
            }
        })
        .collect()
}

/// Lambda's asynchronous invocation: the event, then up to two retries (a
/// minute, then two, later) while it fails. Ok with the summary of the
/// attempt that succeeded, or every attempt's error.
async fn deliver(
    processor: &RealProcessor,
    event: &str,
    first_ms: i64,
) -> Result<Summary, Vec<ProcessError>> {
    let mut errors = Vec::new();
    for attempt in 0..3 {
        match processor
            .process(event, first_ms + attempt * MINUTE, far_deadline())
            .await
        {
            Ok(Response::Batch(summary)) => return Ok(summary),
            Ok(Response::Stream(_)) => {
                panic!("a direct subscription event was answered as a stream")
            }
            Err(error) => errors.push(error),
        }
    }
    Err(errors)
}

fn body(alert: &ReceivedAlert) -> AlertBody<'_> {
    serde_json::from_str(&alert.message).unwrap()
}

/// The alerts in the inbox, by rule name.
fn by_rule(alerts: &[ReceivedAlert]) -> BTreeMap<String, Vec<&ReceivedAlert>> {
    let mut map: BTreeMap<String, Vec<&ReceivedAlert>> = BTreeMap::new();
    for alert in alerts {
        map.entry(alert.attributes["ruleName"].clone())
            .or_default()
            .push(alert);
    }
    map
}

fn rule_key(rule: &str) -> String {
    format!("RuleMessageThrottled|Rule|{rule}")
}

/// `count` entries of each of `rules`.
fn each(rules: &[&str], count: usize) -> Vec<(String, usize)> {
    rules.iter().map(|r| (r.to_string(), count)).collect()
}

/// Entries of a key held back since its alert, per the alert-state table.
async fn suppressed(stack: &Stack, key: &str) -> u64 {
    let state = stack
        .alert_state(key)
        .await
        .expect("the key has alert state");
    s(&state, "suppressed").parse().unwrap()
}

/// Every entry of a key is accounted for exactly once: in the alert that
/// went out, in the count that alert reports as held back before it, or in
/// the count held back since.
async fn assert_counts_add_up(stack: &Stack, rule: &str, alert: &ReceivedAlert, total: u64) {
    let b = body(alert);
    let since = suppressed(stack, &rule_key(rule)).await;
    assert_eq!(
        b.count + b.suppressed_since_last_alert + since,
        total,
        "{rule}: alert count {} + held back before it {} + held back since {since}",
        b.count,
        b.suppressed_since_last_alert
    );
}

#[tokio::test]
async fn through_faults_and_redeliveries_every_incident_is_stored_once_and_every_key_alerted_once()
{
    use Fault::*;
    let stack = Stack::new("faults").await;
    let proxy = FaultProxy::start(
        &moto().endpoint,
        vec![
            Rule::Random {
                service: Service::DynamoDb,
                op: Some("BatchWriteItem"),
                rate: 0.3,
                faults: vec![
                    PartialBatch,
                    Throttle,
                    ServerError,
                    SlowResponse,
                    ResetAfterForward,
                ],
            },
            Rule::Random {
                service: Service::DynamoDb,
                op: None,
                rate: 0.2,
                faults: vec![
                    Throttle,
                    ThrottlingException,
                    ServerError,
                    ResetBeforeForward,
                    ResetAfterForward,
                    SlowResponse,
                ],
            },
            // Only faults after which SNS surely did not publish (see the
            // lost-answer test below for the other kind); each kind at
            // least once, however few publishes there are.
            Rule::First {
                service: Service::Sns,
                op: "PublishBatch",
                count: 1,
                fault: Throttle,
            },
            Rule::First {
                service: Service::Sns,
                op: "PublishBatch",
                count: 1,
                fault: ServerError,
            },
            Rule::First {
                service: Service::Sns,
                op: "PublishBatch",
                count: 1,
                fault: ResetBeforeForward,
            },
            Rule::Random {
                service: Service::Sns,
                op: None,
                rate: 0.3,
                faults: vec![Throttle, ServerError, ResetBeforeForward],
            },
        ],
        7,
        SLOW,
    );
    let sdk = sdk_config_timed(
        &proxy.endpoint,
        Duration::from_millis(800),
        Duration::from_secs(4),
    )
    .await;
    let mut processor = stack.processor_on(&sdk, &[("RETRY_BUDGET_MS", "6000")]);
    // SNS gets time enough that only the injected faults fail a publish: a
    // publish that times out after SNS (here moto, busy delivering to the
    // inbox queue) took it is the ambiguous case the lost-answer test covers.
    let sns_sdk = sdk_config_timed(
        &proxy.endpoint,
        Duration::from_secs(5),
        Duration::from_secs(15),
    )
    .await;
    processor.publisher = SnsPublisher::new(
        aws_sdk_sns::Client::new(&sns_sdk),
        &processor.config.alert_topic_arn,
    );
    // Four rules in every batch, and one of each batch's own (more alerts, so more publishes to fail).
    let shared = ["rule_a", "rule_b", "rule_c", "rule_d"];
    let batches = make_batches("faults", 8, |b| {
        let mut contents = each(&shared, 15);
        contents.push((format!("solo_{b}"), 1));
        contents
    });

    // Each batch delivered twice, as CloudWatch Logs may, four invocations
    // at a time. Lambda retries a failed invocation a minute, then two,
    // later: after every invocation running beside it has ended (the
    // function's timeout is shorter), so each retry round starts when the
    // previous one is over.
    let mut pending: Vec<usize> = (0..batches.len()).flat_map(|i| [i, i]).collect();
    let mut attempts = 0;
    for round in 0..3 {
        let now_ms = NOW + round * MINUTE;
        let failed: Vec<usize> = stream::iter(pending)
            .map(|i| {
                let (processor, stack, batch) = (&processor, &stack, &batches[i]);
                async move {
                    match processor
                        .process(&batch.event, now_ms, far_deadline())
                        .await
                    {
                        Ok(_) => {
                            // Never a success with incidents missing: read back at once.
                            let stored: BTreeSet<String> = stack
                                .incidents()
                                .await
                                .iter()
                                .map(|i| s(i, "traceId"))
                                .collect();
                            let missing = batch
                                .trace_ids
                                .iter()
                                .filter(|t| !stored.contains(*t))
                                .count();
                            assert_eq!(missing, 0, "batch {i} succeeded with incidents missing");
                            None
                        }
                        Err(_) => Some(i),
                    }
                }
            })
            .buffer_unordered(4)
            .filter_map(|failed| async move { failed })
            .collect()
            .await;
        attempts += 1;
        pending = failed;
        if pending.is_empty() {
            break;
        }
    }

    let injected = proxy.injected();
    for (service, faults) in [
        (
            Service::DynamoDb,
            &[
                PartialBatch,
                Throttle,
                ThrottlingException,
                ServerError,
                ResetBeforeForward,
                ResetAfterForward,
                SlowResponse,
            ][..],
        ),
        (
            Service::Sns,
            &[Throttle, ServerError, ResetBeforeForward][..],
        ),
    ] {
        for fault in faults {
            assert!(
                injected.get(&(service, *fault)).is_some_and(|n| *n > 0),
                "no {fault:?} injected into {service:?}: {injected:?}"
            );
        }
    }

    // What failed three times is in the failure destination; redrive it once the faults are over.
    proxy.heal();
    for i in &pending {
        deliver(&processor, &batches[*i].event, NOW + 5 * MINUTE)
            .await
            .expect("a redriven batch succeeds without faults");
    }
    eprintln!(
        "faults injected: {injected:?}; retry rounds: {attempts}; deliveries that failed three times and were redriven: {}",
        pending.len()
    );

    let items = stack.incidents().await;
    let expected: BTreeSet<String> = batches
        .iter()
        .flat_map(|b| b.trace_ids.iter().cloned())
        .collect();
    let stored: Vec<String> = items.iter().map(|i| s(i, "traceId")).collect();
    assert_eq!(
        stored.len(),
        expected.len(),
        "each incident stored exactly once"
    );
    assert_eq!(stored.into_iter().collect::<BTreeSet<_>>(), expected);

    let alerts = stack.alerts(WAIT).await;
    let alerts_by_rule = by_rule(&alerts);
    let expected_rules: BTreeSet<String> = shared
        .iter()
        .map(|r| r.to_string())
        .chain((0..8).map(|b| format!("solo_{b}")))
        .collect();
    assert_eq!(
        alerts_by_rule.keys().cloned().collect::<BTreeSet<_>>(),
        expected_rules
    );
    for (rule, alerts) in &alerts_by_rule {
        assert_eq!(
            alerts.len(),
            1,
            "{rule}: one alert per key per window, got {:?}; requests {:?}",
            alerts.iter().map(|a| &a.message).collect::<Vec<_>>(),
            proxy.requests()
        );
        let total = if rule.starts_with("solo_") { 1 } else { 8 * 15 };
        assert_counts_add_up(&stack, rule, alerts[0], total).await;
        let state = stack.alert_state(&rule_key(rule)).await.unwrap();
        assert_eq!(
            s(&state, "published"),
            "true",
            "{rule}: the sent alert is confirmed"
        );
    }
}

/// A stack whose processor reaches moto through a proxy that answers the
/// first `op` request of `service` with `fault`, and nothing else.
async fn one_fault(
    name: &str,
    service: Service,
    op: &'static str,
    fault: Fault,
) -> (Stack, FaultProxy, RealProcessor) {
    let stack = Stack::new(name).await;
    let rule = Rule::First {
        service,
        op,
        count: 1,
        fault,
    };
    let proxy = FaultProxy::start(&moto().endpoint, vec![rule], 1, SLOW);
    let sdk = sdk_config_timed(
        &proxy.endpoint,
        Duration::from_secs(5),
        Duration::from_secs(15),
    )
    .await;
    let processor = stack.processor_on(&sdk, &[]);
    (stack, proxy, processor)
}

#[tokio::test]
async fn a_claim_whose_answer_was_lost_is_recognised_and_its_alert_sent() {
    let (stack, proxy, processor) = one_fault(
        "lost-claim",
        Service::DynamoDb,
        "UpdateItem",
        Fault::ResetAfterForward,
    )
    .await;
    let batch = &make_batches("lost-claim", 1, |_| each(&["rule_x"], 3))[0];

    let summary = deliver(&processor, &batch.event, NOW).await.unwrap();

    assert_eq!(
        proxy.injected()[&(Service::DynamoDb, Fault::ResetAfterForward)],
        1
    );
    assert_eq!(summary.alerts_sent, 1, "{summary:?}");
    let alerts = stack.alerts(WAIT).await;
    assert_eq!(alerts.len(), 1);
    assert_eq!(body(&alerts[0]).count, 3);
}

#[tokio::test]
async fn a_publish_whose_answer_was_lost_is_delivered_again_under_the_same_alert_id() {
    let (stack, proxy, processor) = one_fault(
        "lost-publish",
        Service::Sns,
        "PublishBatch",
        Fault::ResetAfterForward,
    )
    .await;
    let batch = &make_batches("lost-publish", 1, |_| each(&["rule_y"], 2))[0];

    deliver(&processor, &batch.event, NOW).await.unwrap();
    // A redelivery of the batch finds the alert confirmed and sends nothing.
    deliver(&processor, &batch.event, NOW + MINUTE)
        .await
        .unwrap();

    assert_eq!(
        proxy.injected()[&(Service::Sns, Fault::ResetAfterForward)],
        1
    );
    let alerts = stack.alerts(WAIT).await;
    assert_eq!(
        alerts.len(),
        2,
        "SNS published, the answer was lost, the SDK published again"
    );
    let ids: BTreeSet<_> = alerts
        .iter()
        .map(|a| body(a).alert_id.into_owned())
        .collect();
    assert_eq!(
        ids.len(),
        1,
        "both deliveries carry one alertId, for subscribers to drop the repeat"
    );
    assert_eq!(
        alerts[0].attributes["alertId"],
        alerts[1].attributes["alertId"]
    );
    let ids: Vec<_> = ids.into_iter().collect();
    assert_eq!(alerts[0].attributes["alertId"], ids[0]);
}

#[tokio::test]
async fn an_unpublished_claim_is_taken_over_by_a_redelivery_once_its_lease_is_over() {
    let stack = Stack::new("takeover").await;
    let processor = stack.processor(&[]);
    let batch = &make_batches("takeover", 1, |_| each(&["rule_z"], 4))[0];

    // An earlier delivery claimed the alert and died before publishing (its
    // lease: one second).
    let Invocation::Subscription(data) = invocation(&batch.event).unwrap() else {
        unreachable!()
    };
    let buffer = decode_data(&data, 1 << 20).unwrap();
    let parsed = parse_batch(&buffer).unwrap();
    let analysis = analyze(&parsed, processor.config.store_categories).unwrap();
    let group = &aggregate(
        &analysis.incidents,
        processor.config.alert_categories,
        "AWSIotLogsV2",
    )[0];
    let fingerprint = batch_fingerprint(&parsed);
    let decision = processor
        .gate
        .claim(&group.key(), &fingerprint, 4, NOW, NOW + 1_000)
        .await
        .unwrap();
    assert!(matches!(decision, GateDecision::Send(_)), "{decision:?}");

    // A duplicate delivery within the lease leaves the claim to its holder.
    let early = deliver(&processor, &batch.event, NOW + 500).await.unwrap();
    assert_eq!((early.alerts_sent, early.alerts_already_seen), (0, 1));
    assert!(stack.alerts(Duration::from_millis(500)).await.is_empty());

    // Lambda's retry, a minute later, takes the claim over and alerts.
    let retry = deliver(&processor, &batch.event, NOW + MINUTE)
        .await
        .unwrap();
    assert_eq!(retry.alerts_sent, 1, "{retry:?}");
    let alerts = stack.alerts(WAIT).await;
    assert_eq!(alerts.len(), 1);
    assert_eq!(body(&alerts[0]).count, 4);

    // Once published, further redeliveries send nothing.
    let again = deliver(&processor, &batch.event, NOW + 2 * MINUTE)
        .await
        .unwrap();
    assert_eq!((again.alerts_sent, again.alerts_already_seen), (0, 1));
    assert!(stack.alerts(Duration::from_millis(500)).await.is_empty());
}

#[tokio::test]
async fn concurrent_invocations_sharing_keys_alert_once_and_lose_no_counts() {
    let stack = Stack::new("race").await;
    let processor = stack.processor(&[]);
    let rules = ["hot_a", "hot_b"];
    // Batch i holds i + 1 entries of each rule: 78 per rule over 12 batches.
    let batches = make_batches("race", 12, |b| each(&rules, b + 1));
    let total: u64 = (1..=12).sum();

    let outcomes =
        futures_util::future::join_all(batches.iter().map(|b| deliver(&processor, &b.event, NOW)))
            .await;
    for outcome in &outcomes {
        let summary = outcome
            .as_ref()
            .expect("no faults here: every invocation succeeds");
        assert_eq!(summary.alert_groups, 2);
    }
    let sent: u64 = outcomes
        .iter()
        .map(|o| o.as_ref().unwrap().alerts_sent)
        .sum();
    let suppressed_total: u64 = outcomes
        .iter()
        .map(|o| o.as_ref().unwrap().alerts_suppressed)
        .sum();
    assert_eq!(
        (sent, suppressed_total),
        (2, 22),
        "one sender per key, every other batch counted"
    );

    let alerts = stack.alerts(WAIT).await;
    let first_by_rule = by_rule(&alerts);
    assert_eq!(first_by_rule.len(), 2);
    let mut held_back = BTreeMap::new();
    for (rule, alerts) in &first_by_rule {
        assert_eq!(alerts.len(), 1, "{rule}");
        assert_eq!(
            body(alerts[0]).suppressed_since_last_alert,
            0,
            "a new key has nothing held back before"
        );
        assert_counts_add_up(&stack, rule, alerts[0], total).await;
        held_back.insert(rule.clone(), suppressed(&stack, &rule_key(rule)).await);
    }

    // The next window's first alert reports everything held back in this one.
    let window_ms = processor.config.alert_window.as_millis() as i64;
    let next = &make_batches("race-next", 1, |_| each(&rules, 1))[0];
    deliver(&processor, &next.event, NOW + window_ms + 1)
        .await
        .unwrap();
    let next_alerts = stack.alerts(WAIT).await;
    let next_by_rule = by_rule(&next_alerts);
    for rule in rules {
        assert_eq!(next_by_rule[rule].len(), 1, "{rule}");
        let alert = next_by_rule[rule][0];
        assert_eq!(
            body(alert).suppressed_since_last_alert,
            held_back[rule],
            "{rule}"
        );
        assert_eq!(suppressed(&stack, &rule_key(rule)).await, 0);
    }
}
