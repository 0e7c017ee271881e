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
use iot_log_monitor::incident::lifecycle::{IncidentState, Transition};
use iot_log_monitor::ingest::decode::{decode_data, invocation, parse_batch, Invocation};
use iot_log_monitor::notify::notification::NotificationBody;
use iot_log_monitor::pipeline::{analyze, batch_fingerprint, Response, Summary};
use iot_log_monitor::ports::{IncidentStore, Recorded};
use iot_log_monitor::tooling::inbox::ReceivedNotification;

const NOW: i64 = 1_800_000_000_000;
const MINUTE: i64 = 60_000;
const WAIT: Duration = Duration::from_secs(5);
/// Twice the attempt timeout below: a slow answer is a timed-out attempt.
const SLOW: Duration = Duration::from_secs(3);
const ATTEMPT_TIMEOUT: Duration = Duration::from_millis(1_500);

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
            Ok(other) => panic!("a direct subscription event was answered as {other:?}"),
            Err(error) => errors.push(error),
        }
    }
    Err(errors)
}

fn body(notification: &ReceivedNotification) -> NotificationBody<'_> {
    serde_json::from_str(&notification.message).unwrap()
}

/// The notifications in the inbox, by rule name.
fn by_rule(notifications: &[ReceivedNotification]) -> BTreeMap<String, Vec<&ReceivedNotification>> {
    let mut map: BTreeMap<String, Vec<&ReceivedNotification>> = BTreeMap::new();
    for notification in notifications {
        map.entry(notification.attributes["ruleName"].clone())
            .or_default()
            .push(notification);
    }
    map
}

/// `count` entries of each of `rules`.
fn each(rules: &[&str], count: usize) -> Vec<(String, usize)> {
    rules.iter().map(|r| (r.to_string(), count)).collect()
}

/// The current incident of each rule.
async fn incidents_by_rule(stack: &Stack) -> BTreeMap<String, IncidentState> {
    stack
        .current_incidents()
        .await
        .into_iter()
        .map(|i| (i.key.first.clone(), i))
        .collect()
}

#[tokio::test]
async fn through_faults_and_redeliveries_every_entry_is_stored_once_and_every_incident_opened_once()
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
        // Well under SLOW, well over what moto takes under the other
        // tests' load: only an injected slow answer times out.
        ATTEMPT_TIMEOUT,
        Duration::from_secs(6),
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
    // Four rules in every batch, and one of each batch's own (more incidents, so more publishes to fail).
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
    let mut failed_deliveries = 0;
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
                            // Never a success with entries missing: read back at once.
                            let stored: BTreeSet<String> = stack
                                .entries()
                                .await
                                .iter()
                                .map(|i| s(i, "traceId"))
                                .collect();
                            let missing = batch
                                .trace_ids
                                .iter()
                                .filter(|t| !stored.contains(*t))
                                .count();
                            assert_eq!(missing, 0, "batch {i} succeeded with entries missing");
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
        failed_deliveries += failed.len();
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

    assert!(
        failed_deliveries > 0,
        "the faults failed some deliveries (else the retries prove nothing)"
    );
    // What failed three times Lambda keeps as an invocation record (the
    // documented format); once the faults are over it is re-driven: the
    // record read by `redrive`'s own parser, its payload processed (at the
    // test's clock, five minutes on; `tests/cli.rs` runs the command itself).
    proxy.heal();
    for i in &pending {
        let event: serde_json::Value = serde_json::from_str(&batches[*i].event).unwrap();
        let record = common::failed_invocation_record(
            &format!("faults-{i}"),
            &event,
            "IotLogMonitor.Store.Unprocessed",
            "injected",
        );
        let kept = iot_log_monitor::tooling::redrive::parse_destination_record(&record).unwrap();
        deliver(&processor, &kept.payload, NOW + 5 * MINUTE)
            .await
            .expect("a redriven batch succeeds without faults");
    }
    eprintln!(
        "faults injected: {injected:?}; retry rounds: {attempts}; failed deliveries: {failed_deliveries}; failed three times and redriven: {}",
        pending.len()
    );

    let items = stack.entries().await;
    let expected: BTreeSet<String> = batches
        .iter()
        .flat_map(|b| b.trace_ids.iter().cloned())
        .collect();
    let stored: Vec<String> = items.iter().map(|i| s(i, "traceId")).collect();
    assert_eq!(
        stored.len(),
        expected.len(),
        "each entry stored exactly once"
    );
    assert_eq!(stored.into_iter().collect::<BTreeSet<_>>(), expected);
    stack.assert_counts_add_up().await;

    let expected_rules: BTreeSet<String> = shared
        .iter()
        .map(|r| r.to_string())
        .chain((0..8).map(|b| format!("solo_{b}")))
        .collect();
    let incidents = incidents_by_rule(&stack).await;
    assert_eq!(
        incidents.keys().cloned().collect::<BTreeSet<_>>(),
        expected_rules
    );
    for (rule, incident) in &incidents {
        let total = if rule.starts_with("solo_") { 1 } else { 8 * 15 };
        assert_eq!(
            incident.entries, total,
            "{rule}: counted once whatever the redeliveries"
        );
        assert_eq!(incident.generation, 1, "{rule}: one incident");
        assert_eq!(
            incident.sent, 1,
            "{rule}: its opened notification is confirmed"
        );
    }

    let notifications = stack.notifications(WAIT).await;
    let notifications_by_rule = by_rule(&notifications);
    assert_eq!(
        notifications_by_rule
            .keys()
            .cloned()
            .collect::<BTreeSet<_>>(),
        expected_rules
    );
    for (rule, sent) in &notifications_by_rule {
        assert_eq!(
            sent.len(),
            1,
            "{rule}: one opened notification per incident, got {:?}; requests {:?}",
            sent.iter().map(|a| &a.message).collect::<Vec<_>>(),
            proxy.requests()
        );
        let b = body(sent[0]);
        assert_eq!(b.transition, "opened");
        assert_eq!(b.incident_id, incidents[rule].incident_id);
    }
}

/// A stack whose processor reaches moto through a proxy that answers the
/// `n`-th `op` request of `service` with `fault`, and nothing else.
async fn nth_fault(
    name: &str,
    service: Service,
    op: &'static str,
    n: u32,
    fault: Fault,
) -> (Stack, FaultProxy, RealProcessor) {
    let stack = Stack::new(name).await;
    let rule = Rule::Nth {
        service,
        op,
        n,
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

/// A new incident's UpdateItems: its place in the minute's openings, the
/// claim, the confirmation (the count is
/// a transaction). The claim's answer is lost: the SDK's retry fails its
/// condition, and the token read back says the claim is ours.
#[tokio::test]
async fn a_claim_whose_answer_was_lost_is_recognised_and_its_notification_sent() {
    let (stack, proxy, processor) = nth_fault(
        "lost-claim",
        Service::DynamoDb,
        "UpdateItem",
        // The second: the first takes the minute's place for the opening.
        2,
        Fault::ResetAfterForward,
    )
    .await;
    let batch = &make_batches("lost-claim", 1, |_| each(&["rule_x"], 3))[0];

    let summary = deliver(&processor, &batch.event, NOW).await.unwrap();

    assert_eq!(
        proxy.injected()[&(Service::DynamoDb, Fault::ResetAfterForward)],
        1
    );
    assert_eq!(summary.notifications_sent, 1, "{summary:?}");
    let notifications = stack.notifications(WAIT).await;
    assert_eq!(notifications.len(), 1);
    assert_eq!(body(&notifications[0]).entries, 3);
    assert_eq!(incidents_by_rule(&stack).await["rule_x"].sent, 1);
}

/// The opening count's answer is lost (its transaction applied): the SDK's
/// retry finds the batch's marker, and the batch is counted once.
#[tokio::test]
async fn a_count_whose_answer_was_lost_is_not_counted_twice() {
    let (stack, proxy, processor) = nth_fault(
        "lost-count",
        Service::DynamoDb,
        "TransactWriteItems",
        1,
        Fault::ResetAfterForward,
    )
    .await;
    let batch = &make_batches("lost-count", 1, |_| each(&["rule_w"], 5))[0];
    let summary = deliver(&processor, &batch.event, NOW).await.unwrap();
    assert_eq!(proxy.injected().len(), 1);
    assert_eq!(summary.notifications_sent, 1, "{summary:?}");
    assert_eq!(incidents_by_rule(&stack).await["rule_w"].entries, 5);
    stack.assert_counts_add_up().await;
}

/// The same for a batch adding to an open incident: its transaction (the
/// batch's marker and the count) applied, the answer lost; the SDK's retry
/// meets the marker, which names the incident, and nothing is counted
/// twice, whichever container delivers it again.
#[tokio::test]
async fn a_count_added_to_an_open_incident_whose_answer_was_lost_is_not_counted_twice() {
    let (stack, proxy, processor) = nth_fault(
        "lost-add",
        Service::DynamoDb,
        "TransactWriteItems",
        2,
        Fault::ResetAfterForward,
    )
    .await;
    let batches = make_batches("lost-add", 2, |_| each(&["rule_u"], 3));
    deliver(&processor, &batches[0].event, NOW).await.unwrap();
    let second = deliver(&processor, &batches[1].event, NOW + 1_000)
        .await
        .unwrap();
    assert_eq!(
        proxy.injected()[&(Service::DynamoDb, Fault::ResetAfterForward)],
        1
    );
    assert_eq!(second.incidents_already_counted, 1, "{second:?}");
    // Delivered again, by a container that knows nothing of the incident.
    let other = stack.processor(&[]);
    let again = deliver(&other, &batches[1].event, NOW + MINUTE)
        .await
        .unwrap();
    assert_eq!(again.incidents_already_counted, 1, "{again:?}");
    let incident = &incidents_by_rule(&stack).await["rule_u"];
    assert_eq!((incident.entries, incident.seq), (6, 2));
    stack.assert_counts_add_up().await;
    assert_eq!(stack.batch_markers().await.len(), 2);
}

/// A batch that comes back to a quiet incident (past the 15-minute resolve
/// delay, inside the window): its transaction (marker, count, reopening)
/// applied and the answer lost. The SDK's retry meets the marker; another
/// container's redelivery too: one reopening, the entries counted once,
/// the same incident, and no notification but the opening.
#[tokio::test]
async fn a_return_whose_answer_was_lost_reopens_the_incident_once() {
    let (stack, proxy, processor) = nth_fault(
        "lost-return",
        Service::DynamoDb,
        "TransactWriteItems",
        2,
        Fault::ResetAfterForward,
    )
    .await;
    let batches = make_batches("lost-return", 2, |_| each(&["rule_q"], 3));
    deliver(&processor, &batches[0].event, NOW).await.unwrap();
    let back = NOW + 16 * MINUTE;
    let second = deliver(&processor, &batches[1].event, back).await.unwrap();
    assert_eq!(
        proxy.injected()[&(Service::DynamoDb, Fault::ResetAfterForward)],
        1
    );
    assert_eq!(second.incidents_already_counted, 1, "{second:?}");
    let again = deliver(&stack.processor(&[]), &batches[1].event, back + MINUTE)
        .await
        .unwrap();
    assert_eq!(again.incidents_already_counted, 1, "{again:?}");
    let incident = &incidents_by_rule(&stack).await["rule_q"];
    assert_eq!(
        (incident.entries, incident.reopenings, incident.flapping),
        (6, 1, false)
    );
    assert!(incident.incident_id.ends_with("-1"));
    stack.assert_counts_add_up().await;
    assert_eq!(stack.notifications(WAIT).await.len(), 1);
}

/// An invocation whose claim write failed in a way it cannot read (every
/// attempt reset after the write) gives the claim back by its token before
/// failing: the retry sends the notification at once, without waiting for
/// the lease to end.
#[tokio::test]
async fn a_failed_invocation_gives_back_a_claim_it_may_hold() {
    let stack = Stack::new("give-back").await;
    // The claim is the second UpdateItem (the first takes the minute's
    // opening for the key; the count is a transaction).
    let rules = (2..=4)
        .map(|n| Rule::Nth {
            service: Service::DynamoDb,
            op: "UpdateItem",
            n,
            fault: Fault::ResetAfterForward,
        })
        .collect();
    let proxy = FaultProxy::start(&moto().endpoint, rules, 1, SLOW);
    let sdk = sdk_config_timed(
        &proxy.endpoint,
        Duration::from_secs(5),
        Duration::from_secs(15),
    )
    .await;
    let processor = stack.processor_on(&sdk, &[]);
    let batch = &make_batches("give-back", 1, |_| each(&["rule_v"], 2))[0];
    let error = processor
        .process(&batch.event, NOW, far_deadline())
        .await
        .unwrap_err();
    assert_eq!(error.kind(), "IncidentState.Request", "{error}");
    let incident = &incidents_by_rule(&stack).await["rule_v"];
    assert_eq!(
        (incident.sent, &incident.claim),
        (0, &None),
        "the claim written with its answer lost was given back"
    );
    // The retry, at once (well within the failed invocation's lease), sends it.
    let retry = deliver(&processor, &batch.event, NOW + 1_000)
        .await
        .unwrap();
    assert_eq!(retry.notifications_sent, 1, "{retry:?}");
    assert_eq!(stack.notifications(WAIT).await.len(), 1);
}

#[tokio::test]
async fn a_publish_whose_answer_was_lost_is_delivered_again_under_the_same_notification_id() {
    let (stack, proxy, processor) = nth_fault(
        "lost-publish",
        Service::Sns,
        "PublishBatch",
        1,
        Fault::ResetAfterForward,
    )
    .await;
    let batch = &make_batches("lost-publish", 1, |_| each(&["rule_y"], 2))[0];

    deliver(&processor, &batch.event, NOW).await.unwrap();
    // A redelivery of the batch finds the notification confirmed and sends nothing.
    deliver(&processor, &batch.event, NOW + MINUTE)
        .await
        .unwrap();

    assert_eq!(
        proxy.injected()[&(Service::Sns, Fault::ResetAfterForward)],
        1
    );
    let notifications = stack.notifications(WAIT).await;
    assert_eq!(
        notifications.len(),
        2,
        "SNS published, the answer was lost, the SDK published again"
    );
    let ids: BTreeSet<_> = notifications
        .iter()
        .map(|a| body(a).notification_id.into_owned())
        .collect();
    assert_eq!(
        ids.len(),
        1,
        "both deliveries carry one notificationId, for subscribers to drop the repeat"
    );
    let id = ids.into_iter().next().unwrap();
    assert!(id.ends_with("#opened"), "{id}");
    for n in &notifications {
        assert_eq!(n.attributes["notificationId"], id);
    }
}

#[tokio::test]
async fn an_unpublished_claim_is_taken_over_once_its_lease_is_over() {
    let stack = Stack::new("takeover").await;
    let processor = stack.processor(&[]);
    let batch = &make_batches("takeover", 1, |_| each(&["rule_z"], 4))[0];

    // An earlier delivery counted the batch, claimed the opened notification
    // and died before publishing (its lease: one second).
    let Invocation::Subscription(data) = invocation(&batch.event).unwrap() else {
        unreachable!()
    };
    let buffer = decode_data(&data, 1 << 20).unwrap();
    let parsed = parse_batch(&buffer).unwrap();
    let analysis = analyze(&parsed, processor.config.store_categories).unwrap();
    let delta = &iot_log_monitor::incident::delta::gather(
        &analysis.entries,
        processor.config.alert_categories,
        "AWSIotLogsV2",
    )[0];
    let fingerprint = batch_fingerprint(&parsed);
    let recorded = processor
        .incidents
        .record(
            delta,
            &iot_log_monitor::ports::Counting {
                log_group: "AWSIotLogsV2",
                fingerprint: &fingerprint,
                now_ms: NOW,
                timing: processor.config.timing(),
                openings_per_minute: processor.config.storm_budget as u32,
            },
        )
        .await
        .unwrap();
    let Recorded::Counted { incident, .. } = recorded else {
        panic!("{recorded:?}")
    };
    let claimed = processor
        .incidents
        .claim(
            &incident,
            Transition::Opened,
            "dead-invocation",
            NOW,
            NOW + 1_000,
        )
        .await
        .unwrap();
    assert!(claimed.is_some());

    // A duplicate delivery within the lease leaves the claim to its holder.
    let early = deliver(&processor, &batch.event, NOW + 500).await.unwrap();
    assert_eq!(
        (early.notifications_sent, early.incidents_already_counted),
        (0, 1)
    );
    assert!(stack.notifications_so_far().await.is_empty());

    // Lambda's retry, a minute later, takes the claim over and sends it.
    let retry = deliver(&processor, &batch.event, NOW + MINUTE)
        .await
        .unwrap();
    assert_eq!(retry.notifications_sent, 1, "{retry:?}");
    let notifications = stack.notifications(WAIT).await;
    assert_eq!(notifications.len(), 1);
    assert_eq!(body(&notifications[0]).entries, 4);

    // Once confirmed, further redeliveries send nothing.
    let again = deliver(&processor, &batch.event, NOW + 2 * MINUTE)
        .await
        .unwrap();
    assert_eq!(
        (again.notifications_sent, again.incidents_already_counted),
        (0, 1)
    );
    assert!(stack.notifications_so_far().await.is_empty());
}

#[tokio::test]
async fn concurrent_invocations_sharing_incidents_open_each_once_and_lose_no_counts() {
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
        assert_eq!(summary.incidents, 2);
    }
    let sum = |f: fn(&Summary) -> u64| outcomes.iter().map(|o| f(o.as_ref().unwrap())).sum::<u64>();
    assert_eq!(
        (sum(|s| s.incidents_opened), sum(|s| s.notifications_sent)),
        (2, 2),
        "one opener and one notification per incident"
    );

    let notifications = stack.notifications(WAIT).await;
    let first_by_rule = by_rule(&notifications);
    assert_eq!(first_by_rule.len(), 2);
    for (rule, sent) in &first_by_rule {
        assert_eq!(sent.len(), 1, "{rule}");
        assert_eq!(sent[0].attributes["transition"], "opened");
    }
    let incidents = incidents_by_rule(&stack).await;
    for rule in rules {
        assert_eq!(incidents[rule].entries, total, "{rule}");
        assert_eq!(incidents[rule].seq, 12, "{rule}: each batch counted once");
    }
    stack.assert_counts_add_up().await;
}

/// Sweeps racing each other through faults (DynamoDB and SNS failing,
/// answers lost after the write): each incident is resolved once and its
/// resolved notification sent once, whatever failed along the way.
#[tokio::test]
async fn through_faults_concurrent_sweeps_resolve_each_incident_once() {
    use Fault::*;
    let stack = Stack::new("sweep-faults").await;
    let quiet = [
        ("RESOLVE_AFTER_SECONDS", "5"),
        ("REOPEN_WINDOW_SECONDS", "0"),
        ("RETRY_BUDGET_MS", "6000"),
    ];
    let rules = ["s_a", "s_b", "s_c", "s_d", "s_e", "s_f"];
    let batch = &make_batches("sweep-faults", 1, |_| each(&rules, 2))[0];
    deliver(&stack.processor(&quiet), &batch.event, NOW)
        .await
        .unwrap();
    assert_eq!(stack.notifications(WAIT).await.len(), rules.len());

    let proxy = FaultProxy::start(
        &moto().endpoint,
        vec![
            // Resolutions written with their answers lost: the transaction's
            // retry is refused (already applied), the sweep cannot tell, and
            // the record waits, watched, for a later sweep to announce it.
            Rule::First {
                service: Service::DynamoDb,
                op: "TransactWriteItems",
                count: 2,
                fault: ResetAfterForward,
            },
            Rule::First {
                service: Service::Sns,
                op: "PublishBatch",
                count: 1,
                fault: ServerError,
            },
            Rule::Random {
                service: Service::DynamoDb,
                op: None,
                rate: 0.25,
                faults: vec![
                    Throttle,
                    ServerError,
                    ResetBeforeForward,
                    ResetAfterForward,
                    SlowResponse,
                ],
            },
            Rule::Random {
                service: Service::Sns,
                op: None,
                rate: 0.3,
                faults: vec![Throttle, ServerError, ResetBeforeForward],
            },
        ],
        11,
        SLOW,
    );
    let sdk = sdk_config_timed(
        &proxy.endpoint,
        // Well under SLOW, well over what moto takes under the other
        // tests' load: only an injected slow answer times out.
        ATTEMPT_TIMEOUT,
        Duration::from_secs(6),
    )
    .await;
    let mut processor = stack.processor_on(&sdk, &quiet);
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
    // Three sweeps at a time, a round a minute (as the schedule's), until
    // nothing is left open or unannounced.
    let mut rounds = 0;
    for round in 1..=10 {
        rounds = round;
        let now_ms = NOW + round * MINUTE;
        futures_util::future::join_all(
            (0..3).map(|_| processor.process(common::SCHEDULED_EVENT, now_ms, far_deadline())),
        )
        .await;
        let pending = stack
            .incidents()
            .await
            .into_iter()
            .filter(|i| {
                i.state == iot_log_monitor::incident::lifecycle::State::Open
                    || (i.item_key == i.incident_id && !i.resolved_sent)
            })
            .count();
        if pending == 0 {
            break;
        }
    }
    eprintln!(
        "sweep faults injected: {:?}; rounds: {rounds}",
        proxy.injected()
    );
    assert!(!proxy.injected().is_empty(), "faults were injected");

    let resolved: Vec<_> = stack
        .notifications(WAIT)
        .await
        .into_iter()
        .filter(|n| n.attributes["transition"] == "resolved")
        .collect();
    let mut by_rule = BTreeMap::new();
    for n in &resolved {
        *by_rule.entry(n.attributes["ruleName"].clone()).or_insert(0) += 1;
    }
    assert_eq!(
        by_rule,
        rules
            .iter()
            .map(|r| (r.to_string(), 1))
            .collect::<BTreeMap<_, _>>(),
        "one resolved notification per incident; requests {:?}",
        proxy.requests()
    );
    let records: Vec<_> = stack
        .incidents()
        .await
        .into_iter()
        .filter(|i| i.item_key == i.incident_id)
        .collect();
    assert_eq!(
        records.len(),
        rules.len(),
        "one record per resolved incident"
    );
    assert!(records.iter().all(|r| r.resolved_sent && r.entries == 2));
}

/// Storms racing each other through faults (issue 28, point 2): four
/// batches of 40 rule names each, overlapping by half, each delivered
/// twice, four invocations at a time, with DynamoDB and SNS failing. Every
/// batch keeps at most its budget's keys, at most the budget's incidents
/// open per minute between them, and the rest fold into the one overflow
/// incident, whose digest is sent once (one claim, one id), whatever
/// invocation opened it; every entry counts towards exactly the incident
/// it names.
#[tokio::test]
async fn racing_storms_through_faults_send_one_digest_and_count_exactly() {
    use Fault::*;
    let stack = Stack::new("storm-race").await;
    let proxy = FaultProxy::start(
        &moto().endpoint,
        vec![
            Rule::Random {
                service: Service::DynamoDb,
                op: None,
                rate: 0.15,
                faults: vec![
                    Throttle,
                    ThrottlingException,
                    ServerError,
                    ResetBeforeForward,
                    ResetAfterForward,
                ],
            },
            // Faults after which SNS surely did not publish.
            Rule::Random {
                service: Service::Sns,
                op: None,
                rate: 0.3,
                faults: vec![Throttle, ServerError, ResetBeforeForward],
            },
        ],
        11,
        SLOW,
    );
    let sdk = sdk_config_timed(&proxy.endpoint, ATTEMPT_TIMEOUT, Duration::from_secs(6)).await;
    let budget = 5;
    let processor = stack.processor_on(
        &sdk,
        &[
            ("RETRY_BUDGET_MS", "6000"),
            ("STORM_BUDGET", &budget.to_string()),
        ],
    );
    let per_batch = 40;
    let batches = make_batches("storm-race", 4, |b| {
        (0..per_batch)
            .map(|i| (format!("storm_{:03}", b * 20 + i), 1))
            .collect()
    });

    let mut pending: Vec<usize> = (0..batches.len()).flat_map(|i| [i, i]).collect();
    for round in 0..3 {
        let now_ms = NOW + round * MINUTE;
        pending = stream::iter(pending)
            .map(|i| {
                let (processor, batch) = (&processor, &batches[i]);
                async move {
                    processor
                        .process(&batch.event, now_ms, far_deadline())
                        .await
                        .err()
                        .map(|_| i)
                }
            })
            .buffer_unordered(4)
            .filter_map(|failed| async move { failed })
            .collect()
            .await;
    }
    let injected = proxy.injected();
    for service in [Service::DynamoDb, Service::Sns] {
        assert!(
            injected.keys().any(|(s, _)| *s == service),
            "{service:?} failed along the way: {injected:?}"
        );
    }
    // What failed three times is redriven, faults over.
    proxy.heal();
    for i in pending {
        deliver(&processor, &batches[i].event, NOW + 3 * MINUTE)
            .await
            .expect("redriven without faults");
    }

    let incidents = stack.current_incidents().await;
    let overflow = incidents
        .iter()
        .find(|i| i.key.is_overflow())
        .expect("the overflow incident");
    // Each batch keeps at most its budget's keys, and at most the budget's
    // incidents open per minute between all of them (four minutes here:
    // three rounds and the redrive): the rest fold, each entry counted once.
    let own: Vec<_> = incidents.iter().filter(|i| !i.key.is_overflow()).collect();
    assert!(
        (budget..=4 * budget).contains(&own.len()),
        "{} incidents of their own",
        own.len()
    );
    assert_eq!(
        overflow.entries + own.iter().map(|i| i.entries).sum::<u64>(),
        (batches.len() * per_batch) as u64,
        "every entry counted once, by its own incident or the overflow incident"
    );
    stack.assert_counts_add_up().await;

    let notifications = stack.notifications_so_far().await;
    let mut opened: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for n in &notifications {
        assert_eq!(n.attributes["transition"], "opened");
        opened
            .entry(n.attributes["incidentId"].as_str())
            .or_default()
            .push(n.attributes["notificationId"].as_str());
    }
    assert_eq!(
        opened.get(overflow.incident_id.as_str()),
        Some(&vec![format!("{}#opened", overflow.incident_id).as_str()]),
        "the digest, once; requests {:?}, faults {:?}",
        proxy.requests(),
        proxy.injected()
    );
    assert_eq!(opened.len(), incidents.len(), "every incident announced");
    assert!(
        opened.values().all(|ids| ids.len() == 1),
        "each once: {opened:?}"
    );
}
