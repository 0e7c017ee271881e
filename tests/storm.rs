//! A storm of incident keys against moto (issue 28, point 2): devices choose
//! rule names, so one batch can name a thousand rules. The invocation runs
//! under the deployed function's own deadline and settings, stores every
//! entry, keeps the storm budget's incidents, counts the rest exactly in one
//! overflow incident, and sends the budget's `opened` notifications and one
//! digest (read back through the SQS queue subscribed to the topic); its
//! requests are counted by a proxy. A redelivery sends nothing.
//! `iot-incidents incidents` and `show` name what the digest summarised.

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::cli::{cli, json_lines, ok};
use common::fault_proxy::{FaultProxy, Service};
use common::{event, Stack};
use iot_log_monitor::incident::key::KeyKind;
use iot_log_monitor::pipeline::{deadline_from_epoch_ms, Response};

const NOW: i64 = 1_800_000_000_000;

fn rule_not_found(rule: &str, n: usize) -> String {
    format!(
        r#"{{"timestamp":"2026-11-22 10:00:{:02}.{:03}","logLevel":"ERROR","traceId":"storm-{rule}-{n}","accountId":"123456789012","status":"Failure","eventType":"RuleNotFound","clientId":"dev-{}","topicName":"$aws/rules/{rule}","ruleName":"{rule}","reason":"RuleNotFound","details":"Rule {rule} not found"}}"#,
        (n / 1000) % 60,
        n % 1000,
        n % 13
    )
}

/// 1,000 distinct rule names, one entry each, but `busy-0` … `busy-2` with
/// four: the busiest keys are the ones kept.
fn storm() -> Vec<String> {
    let mut lines: Vec<String> = (0..1_000)
        .map(|r| rule_not_found(&format!("r-{r:04}"), r))
        .collect();
    for b in 0..3 {
        for n in 0..4 {
            lines.push(rule_not_found(&format!("busy-{b}"), 1_000 + b * 4 + n));
        }
    }
    lines
}

/// The template's timeout (60 s), as Lambda hands the deadline to the function.
fn lambda_deadline() -> std::time::Instant {
    let now = common::cli::now_ms() as u64;
    deadline_from_epoch_ms(now + 60_000, now)
}

#[tokio::test]
async fn a_storm_of_a_thousand_rule_names_is_one_digest_and_a_bounded_number_of_requests() {
    let stack = Stack::new("storm").await;
    assert_eq!(stack.env["STORM_BUDGET"], "20", "the template's default");
    // A proxy without faults, to count the requests the function makes.
    let proxy = FaultProxy::start(&common::moto().endpoint, vec![], 0, Duration::ZERO);
    // The deployed function's environment as it is: its storm budget and
    // its time reserve, under its real deadline.
    let processor = stack.processor_on(&common::sdk_config(&proxy.endpoint).await, &[]);
    let lines = storm();
    let batch = event("storm", 1, &lines, NOW);
    let started = std::time::Instant::now();
    let response = processor
        .process(&batch, NOW, lambda_deadline())
        .await
        .expect("the storm batch succeeds within the function's deadline");
    let elapsed = started.elapsed();
    let Response::Batch(summary) = response else {
        panic!("{response:?}")
    };
    let requests = proxy.requests();
    eprintln!("a storm of 1,003 rule names: {requests:?} in {elapsed:?}; {summary:?}");
    assert_eq!(summary.stored, lines.len());
    assert_eq!((summary.incidents, summary.keys_folded), (21, 983));

    // Read back: every entry, and the notifications through the queue.
    let entries = stack.entries().await;
    assert_eq!(
        common::trace_ids_in(&entries),
        lines
            .iter()
            .map(
                |l| serde_json::from_str::<serde_json::Value>(l).unwrap()["traceId"]
                    .as_str()
                    .unwrap()
                    .to_owned()
            )
            .collect(),
        "every entry stored"
    );
    let notifications = stack.notifications_so_far().await;
    assert_eq!(
        notifications.len(),
        21,
        "the budget's openings and one digest"
    );
    let incidents = stack.current_incidents().await;
    assert_eq!(incidents.len(), 21);
    let overflow = incidents
        .iter()
        .find(|i| i.key.kind == KeyKind::Overflow)
        .expect("the overflow incident");
    // Exact: the entries that name it, counted from the table.
    let naming = entries
        .iter()
        .filter(|e| common::s(e, "incidentId") == overflow.incident_id)
        .count() as u64;
    assert_eq!((overflow.entries, naming), (983, 983));
    for b in 0..3 {
        assert!(
            incidents.iter().any(|i| i.key.first == format!("busy-{b}")),
            "busy-{b} keeps its incident"
        );
    }
    let digests: Vec<_> = notifications
        .iter()
        .filter(|n| n.attributes["incidentId"] == overflow.incident_id)
        .collect();
    assert_eq!(digests.len(), 1);
    assert_eq!(
        digests[0].attributes["notificationId"],
        format!("{}#opened", overflow.incident_id)
    );
    assert!(
        digests[0].subject.contains("983 more incidents"),
        "{}",
        digests[0].subject
    );

    // Bounded whatever the keys: 21 incidents, each a failed first try, a
    // read and an opening, then a claim and a confirmation (at most five
    // requests each, however the store spells them), one read of the
    // silences; 21 notifications in three PublishBatch requests.
    let count = |service, op: &str| {
        requests
            .get(&(service, op.to_owned()))
            .copied()
            .unwrap_or(0)
    };
    assert_eq!(count(Service::DynamoDb, "BatchWriteItem"), 41, "1,012 / 25");
    let incident_requests: u32 = requests
        .iter()
        .filter(|((service, op), _)| *service == Service::DynamoDb && op != "BatchWriteItem")
        .map(|(_, n)| n)
        .sum();
    assert!(incident_requests <= 21 * 5 + 1, "{requests:?}");
    assert_eq!(count(Service::Sns, "PublishBatch"), 3, "{requests:?}");

    // A redelivery splits the same way: nothing counted, nothing sent.
    let again = processor
        .process(&batch, NOW + 60_000, lambda_deadline())
        .await
        .unwrap();
    let again = again.summary();
    assert_eq!(
        (again.incidents_already_counted, again.notifications_sent),
        (21, 0)
    );
    assert!(stack.notifications_so_far().await.is_empty());
    let after: BTreeMap<String, u64> = stack
        .current_incidents()
        .await
        .into_iter()
        .map(|i| (i.incident_id, i.entries))
        .collect();
    assert_eq!(after[&overflow.incident_id], 983);

    // What the digest summarised, as the operator sees it.
    let tool = |args: &[&str]| {
        let mut command = cli(args);
        for name in ["ENTRIES_TABLE", "INCIDENTS_TABLE", "SILENCES_TABLE"] {
            command.env(name, &stack.env[name]);
        }
        ok(command.output().unwrap())
    };
    let listed = json_lines(&tool(&["--output", "json", "incidents"]));
    let listed_overflow = listed
        .iter()
        .find(|i| i["incidentId"] == overflow.incident_id.as_str())
        .expect("listed");
    assert_eq!(listed_overflow["keyKind"], "overflow");
    assert_eq!(listed_overflow["entries"], 983);
    assert_eq!(listed_overflow["members"]["keys"], 983);
    let table = tool(&["--output", "table", "incidents"]);
    assert!(
        table.contains(r#"overflow, 983 keys: "r-0017", "r-0018", "r-0019""#),
        "{table}"
    );
    let shown = tool(&["--output", "table", "show", &overflow.incident_id]);
    eprintln!("{table}\n{shown}");
    assert!(
        shown.contains("983 past the storm budget, counted here (983 stored entries read)"),
        "{shown}"
    );
    // All folded keys have one entry: the first by name leads.
    assert!(shown.contains("     1  rule \"r-0017\""), "{shown}");
}

/// Issue 28 (2), per minute, on moto: a storm that changes its names every
/// batch, from four containers at once, each batch within its own budget.
/// Between them at most `STORM_BUDGET` incidents open that minute (the
/// openings counter is a conditional update before each opening);
/// the rest join the overflow incident, announced by one digest. Delivered
/// again, every batch folds the same keys and counts nothing twice; every
/// entry names the incident that counts it.
#[tokio::test]
async fn a_storm_spread_over_batches_opens_at_most_the_budget_per_minute() {
    let stack = Stack::new("storm-minute").await;
    let containers: Vec<_> = (0..4)
        .map(|_| stack.processor(&[("STORM_BUDGET", "5")]))
        .collect();
    let events: Vec<String> = (0..4)
        .map(|b| {
            let lines: Vec<String> = (0..4)
                .map(|r| rule_not_found(&format!("m{b}-{r}"), b * 10 + r))
                .collect();
            event("minute", b as u64 + 1, &lines, NOW)
        })
        .collect();
    let deliver = |pass: i64| {
        futures_util::future::join_all(containers.iter().zip(&events).map(move |(p, e)| {
            let at = NOW + pass * 20_000;
            async move { common::run(p, e, at).await }
        }))
    };
    let summaries = deliver(0).await;
    let opened: u64 = summaries.iter().map(|s| s.incidents_opened).sum();
    let folded: u64 = summaries.iter().map(|s| s.keys_folded).sum();
    assert_eq!(
        (opened, folded),
        (6, 11),
        "5 keys and one overflow incident: {summaries:?}"
    );

    let sent = stack.notifications(Duration::from_secs(5)).await;
    assert_eq!(sent.len(), 6, "{sent:?}");
    let digests = sent
        .iter()
        .filter(|n| !n.attributes.contains_key("ruleName"))
        .count();
    assert_eq!(digests, 1);

    let again = deliver(1).await;
    assert!(
        again
            .iter()
            .all(|s| s.incidents_opened == 0 && s.notifications_sent == 0),
        "{again:?}"
    );
    let incidents = stack.current_incidents().await;
    assert_eq!(incidents.len(), 6);
    assert_eq!(stack.entries().await.len(), 16);
    stack.assert_counts_add_up().await;
    let overflow = incidents
        .iter()
        .find(|i| i.key.kind == KeyKind::Overflow)
        .unwrap();
    assert_eq!(overflow.entries, 11);
    assert!(stack.notifications_so_far().await.is_empty());
}
