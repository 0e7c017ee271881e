//! Silences at scale, against moto (issue 27, point 3): a long history of
//! ended silences is never read, by the function or by `silences`, so it
//! cannot make the read time out and switch every silence off; silences
//! written before the index are brought into it once (`silences
//! --reindex`); and when the silences cannot be read, the metric an alarm
//! watches says so.
//!
//! What a read touches is measured on the SDK's own answers (an
//! interceptor on the function's DynamoDB client): DynamoDB's `ScannedCount`
//! is the number of items a Query or Scan read (and billed), before any
//! filter. moto computes it the same way; its ConsumedCapacity is a constant.

mod common;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use aws_sdk_dynamodb::config::interceptors::{
    AfterDeserializationInterceptorContextRef, BeforeSerializationInterceptorContextRef,
};
use aws_sdk_dynamodb::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_sdk_dynamodb::error::BoxError;
use aws_sdk_dynamodb::operation::query::{QueryInput, QueryOutput};
use aws_sdk_dynamodb::operation::scan::{ScanInput, ScanOutput};
use aws_sdk_dynamodb::types::{AttributeValue, PutRequest, WriteRequest};
use aws_smithy_types::config_bag::{Storable, StoreReplace};
use common::cli::{cli, json_lines, now_ms, ok};
use common::{event, run, sweep, RealProcessor, Stack};
use iot_log_monitor::aws::silences::{BY_END, LIST_KEY, LIST_VALUE};
use iot_log_monitor::metrics::emf_record;

const HOUR: i64 = 3_600_000;

fn rule_not_found(rule: &str, n: usize, at_ms: i64) -> String {
    format!(
        r#"{{"timestamp":"{}","logLevel":"ERROR","traceId":"sil-{rule}-{n}","accountId":"123456789012","status":"Failure","eventType":"RuleNotFound","clientId":"d-{n}","topicName":"$aws/rules/{rule}","ruleName":"{rule}","reason":"RuleNotFound","details":"Rule {rule} not found"}}"#,
        iot_log_monitor::model::time::format_iot_timestamp(at_ms)
    )
}

/// One Query or Scan the code under test made: on which table and index,
/// and how many items DynamoDB read for it (`ScannedCount`) and returned.
#[derive(Debug, Clone, PartialEq)]
struct Read {
    op: &'static str,
    table: String,
    index: Option<String>,
    scanned: i32,
    returned: i32,
}

/// What a request asked for, kept for its answer.
#[derive(Debug, Clone)]
struct Asked(&'static str, String, Option<String>);

impl Storable for Asked {
    type Storer = StoreReplace<Self>;
}

/// Records every Query and Scan answered through the client it is on.
#[derive(Debug, Clone, Default)]
struct Reads(Arc<Mutex<Vec<Read>>>);

impl Reads {
    /// Takes what was recorded on `table` so far.
    fn on(&self, table: &str) -> Vec<Read> {
        let mut all = self.0.lock().unwrap();
        let (on, rest): (Vec<Read>, Vec<Read>) = all.drain(..).partition(|r| r.table == table);
        *all = rest;
        on
    }
}

impl Intercept for Reads {
    fn name(&self) -> &'static str {
        "Reads"
    }

    fn read_before_execution(
        &self,
        context: &BeforeSerializationInterceptorContextRef<'_>,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let input = context.input();
        let asked = if let Some(q) = input.downcast_ref::<QueryInput>() {
            Asked(
                "Query",
                q.table_name().unwrap_or_default().to_owned(),
                q.index_name().map(str::to_owned),
            )
        } else if let Some(s) = input.downcast_ref::<ScanInput>() {
            Asked(
                "Scan",
                s.table_name().unwrap_or_default().to_owned(),
                s.index_name().map(str::to_owned),
            )
        } else {
            return Ok(());
        };
        cfg.interceptor_state().store_put(asked);
        Ok(())
    }

    fn read_after_deserialization(
        &self,
        context: &AfterDeserializationInterceptorContextRef<'_>,
        _: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let Some(Asked(op, table, index)) = cfg.load::<Asked>().cloned() else {
            return Ok(());
        };
        let Ok(output) = context.output_or_error() else {
            return Ok(());
        };
        let (scanned, returned) = if let Some(q) = output.downcast_ref::<QueryOutput>() {
            (q.scanned_count, q.count)
        } else if let Some(s) = output.downcast_ref::<ScanOutput>() {
            (s.scanned_count, s.count)
        } else {
            return Ok(());
        };
        self.0.lock().unwrap().push(Read {
            op,
            table,
            index,
            scanned,
            returned,
        });
        Ok(())
    }
}

/// The function's processor on `stack`, its DynamoDB reads recorded.
fn watched_processor(stack: &Stack, reads: &Reads) -> RealProcessor {
    let dynamodb = aws_sdk_dynamodb::Client::from_conf(
        aws_sdk_dynamodb::config::Builder::from(&stack.sdk)
            .interceptor(reads.clone())
            .build(),
    );
    stack.processor_with(&stack.sdk, dynamodb, &[])
}

fn attr_s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

fn attr_n(v: i64) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

/// A silence item as README's storage layout documents it (and `silence`
/// writes it): `indexed` says whether it carries the index's partition
/// attribute, which silences written before the index lack.
fn silence_item(
    id: &str,
    rule: &str,
    starts_ms: i64,
    ends_ms: i64,
    indexed: bool,
) -> HashMap<String, AttributeValue> {
    let mut item = HashMap::from([
        ("silenceId".to_owned(), attr_s(id)),
        ("matchRule".to_owned(), attr_s(rule)),
        ("startsMs".to_owned(), attr_n(starts_ms)),
        ("endsMs".to_owned(), attr_n(ends_ms)),
        ("comment".to_owned(), attr_s("written by the test")),
        ("createdBy".to_owned(), attr_s("tests/silences.rs")),
        ("expiresAt".to_owned(), attr_n(ends_ms / 1000 + 7 * 86_400)),
    ]);
    if indexed {
        item.insert(LIST_KEY.to_owned(), attr_s(LIST_VALUE));
    }
    item
}

/// Writes `items` 25 at a time, writing again what DynamoDB left unprocessed.
async fn batch_write(stack: &Stack, items: Vec<HashMap<String, AttributeValue>>) {
    let table = stack.table("SilencesTable").to_owned();
    for chunk in items.chunks(25) {
        let mut requests: Vec<WriteRequest> = chunk
            .iter()
            .map(|item| {
                WriteRequest::builder()
                    .put_request(
                        PutRequest::builder()
                            .set_item(Some(item.clone()))
                            .build()
                            .unwrap(),
                    )
                    .build()
            })
            .collect();
        while !requests.is_empty() {
            let answer = stack
                .dynamodb
                .batch_write_item()
                .request_items(&table, requests)
                .send()
                .await
                .unwrap();
            requests = answer
                .unprocessed_items
                .and_then(|mut left| left.remove(&table))
                .unwrap_or_default();
        }
    }
}

/// The query tool pointed at `stack`'s tables.
fn tool(stack: &Stack, args: &[&str]) -> String {
    let mut command = cli(args);
    for name in ["ENTRIES_TABLE", "INCIDENTS_TABLE", "SILENCES_TABLE"] {
        command.env(name, &stack.env[name]);
    }
    ok(command.output().unwrap())
}

/// How many silences of a kind the test writes: `default`, or the
/// environment's `name` (to measure other sizes; the assertions hold for any).
fn how_many(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The red team's case, at a size a test can write: thousands of silences,
/// half of them ended an hour ago, the rest in force for other rules, and
/// one for the rule that fails. The function holds that rule's notification
/// back, and its read touches exactly the silences in force: a Query of the
/// index bounded by their end, never a Scan of the history. Ending a
/// silence early takes it out of the next read. Other sizes:
/// `TEST_SILENCES_ENDED=10000 TEST_SILENCES_IN_FORCE=4 cargo test --test silences
/// a_long -- --nocapture` prints what the read touched.
#[tokio::test]
async fn a_long_silence_history_is_never_read_and_the_silence_in_force_still_holds() {
    let ended = how_many("TEST_SILENCES_ENDED", 2_000);
    let others_in_force = how_many("TEST_SILENCES_IN_FORCE", 2_000);
    let stack = Stack::new("silence-history").await;
    let table = stack.table("SilencesTable").to_owned();
    let now = now_ms();
    let mut items = Vec::with_capacity(ended + others_in_force);
    for i in 0..ended {
        let id = format!("s-ended{i:07}");
        items.push(silence_item(
            &id,
            "noisy_rule",
            now - 2 * HOUR,
            now - HOUR,
            true,
        ));
    }
    for i in 0..others_in_force {
        let id = format!("s-other{i:07}");
        let rule = format!("other_rule_{i}");
        items.push(silence_item(&id, &rule, now - HOUR, now + 2 * HOUR, true));
    }
    batch_write(&stack, items).await;
    let silenced = tool(
        &stack,
        &[
            "silence",
            "--rule",
            "noisy_rule",
            "--for",
            "1h",
            "--reason",
            "migration",
        ],
    );
    let silence_id = silenced.trim().to_owned();
    let in_force = others_in_force as i32 + 1;

    // The operator's view: the silences in force, and with --all the history.
    let listed = json_lines(&tool(&stack, &["--output", "json", "silences"]));
    assert_eq!(listed.len(), in_force as usize);
    assert!(listed.iter().any(|s| s["silenceId"] == silence_id.as_str()));
    assert!(listed.iter().all(|s| s["inForce"] == true));
    let history = json_lines(&tool(&stack, &["--output", "json", "silences", "--all"]));
    assert_eq!(history.len(), ended + in_force as usize);
    assert_eq!(
        history.iter().filter(|s| s["inForce"] == false).count(),
        ended
    );

    // A batch of the silenced rule and of a rule nobody silenced.
    let reads = Reads::default();
    let processor = watched_processor(&stack, &reads);
    let at = now_ms();
    let batch = event(
        "silence-history",
        7,
        &[
            rule_not_found("noisy_rule", 0, at),
            rule_not_found("unsilenced_rule", 1, at),
        ],
        at,
    );
    let summary = run(&processor, &batch, at).await;
    assert_eq!(
        (
            summary.incidents_opened,
            summary.notifications_silenced,
            summary.notifications_sent,
            summary.silence_read_errors
        ),
        (2, 1, 1, 0),
        "{summary:?}"
    );
    let sent = stack.notifications_so_far().await;
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert_eq!(sent[0].attributes["ruleName"], "unsilenced_rule");

    let silence_reads = reads.on(&table);
    assert!(!silence_reads.is_empty(), "the silences were read");
    for read in &silence_reads {
        assert_eq!(
            (read.op, read.index.as_deref()),
            ("Query", Some(BY_END)),
            "never a Scan of the history: {read:?}"
        );
    }
    let scanned: i32 = silence_reads.iter().map(|r| r.scanned).sum();
    let returned: i32 = silence_reads.iter().map(|r| r.returned).sum();
    eprintln!(
        "silences read: {scanned} items in {} requests, of {} silences ({in_force} in force)",
        silence_reads.len(),
        ended + in_force as usize
    );
    assert_eq!(
        (scanned, returned),
        (in_force, in_force),
        "the read touches the silences in force only, none of the {ended} ended"
    );

    // Ended early, the silence leaves the range: the next read (a new
    // container, as the cache would hide it for 30 s) does not touch it,
    // and the sweep lets out what it held back.
    tool(&stack, &["unsilence", &silence_id]);
    let after = watched_processor(&stack, &reads);
    let swept = sweep(&after, now_ms()).await;
    assert_eq!(swept.notifications_sent, 1, "{swept:?}");
    let released = stack.notifications_so_far().await;
    assert_eq!(released.len(), 1, "{released:?}");
    assert_eq!(released[0].attributes["ruleName"], "noisy_rule");
    let silence_reads = reads.on(&table);
    assert!(silence_reads.iter().all(|r| r.op == "Query"));
    assert_eq!(
        silence_reads.iter().map(|r| r.scanned).sum::<i32>(),
        in_force - 1,
        "{silence_reads:?}"
    );
}

/// Silences written before the index (without its partition attribute)
/// are not in it: `silences --reindex` puts them there once, in force and
/// ended alike, after which the function honours them and `--all` lists
/// them; a second run has nothing left to do.
#[tokio::test]
async fn silences_written_before_the_index_are_reindexed_once_and_then_honoured() {
    let stack = Stack::new("silence-reindex").await;
    let now = now_ms();
    batch_write(
        &stack,
        vec![
            silence_item(
                "s-000000legacy",
                "legacy_rule",
                now - HOUR,
                now + HOUR,
                false,
            ),
            silence_item(
                "s-0000000ended",
                "legacy_rule",
                now - 3 * HOUR,
                now - 2 * HOUR,
                false,
            ),
            silence_item(
                "s-00000current",
                "current_rule",
                now - HOUR,
                now + HOUR,
                true,
            ),
        ],
    )
    .await;
    let reindexed = tool(&stack, &["silences", "--reindex"]);
    assert!(
        reindexed.starts_with("reindexed 2 silence(s)"),
        "{reindexed}"
    );
    let listed = json_lines(&tool(&stack, &["--output", "json", "silences"]));
    let mut ids: Vec<&str> = listed
        .iter()
        .map(|s| s["silenceId"].as_str().unwrap())
        .collect();
    ids.sort_unstable();
    assert_eq!(ids, ["s-000000legacy", "s-00000current"]);
    let history = json_lines(&tool(&stack, &["--output", "json", "silences", "--all"]));
    assert_eq!(history.len(), 3, "{history:?}");

    let at = now_ms();
    let summary = run(
        &stack.processor(&[]),
        &event(
            "silence-reindex",
            3,
            &[rule_not_found("legacy_rule", 0, at)],
            at,
        ),
        at,
    )
    .await;
    assert_eq!(
        (summary.notifications_silenced, summary.notifications_sent),
        (1, 0),
        "the reindexed silence holds: {summary:?}"
    );
    let again = tool(&stack, &["silences", "--reindex"]);
    assert!(again.starts_with("reindexed 0 silence(s)"), "{again}");
}

/// When the silences cannot be read (here: a table that does not exist),
/// what is due still goes out, and the invocation's metric record counts
/// it, so the stack's alarm on `SilenceReadErrors` says that silences are
/// being ignored.
#[tokio::test]
async fn silences_that_cannot_be_read_are_ignored_and_counted_in_the_metric() {
    let stack = Stack::new("silence-unread").await;
    tool(
        &stack,
        &[
            "silence",
            "--rule",
            "muted_rule",
            "--for",
            "1h",
            "--reason",
            "would hold it",
        ],
    );
    let processor = stack.processor(&[("SILENCES_TABLE", "no-such-table")]);
    let at = now_ms();
    let summary = run(
        &processor,
        &event(
            "silence-unread",
            5,
            &[rule_not_found("muted_rule", 0, at)],
            at,
        ),
        at,
    )
    .await;
    assert_eq!(
        (
            summary.notifications_sent,
            summary.notifications_silenced,
            summary.silence_read_errors
        ),
        (1, 0, 1),
        "{summary:?}"
    );
    let record: serde_json::Value =
        serde_json::from_str(&emf_record("IotLogMonitor", &summary, at)).unwrap();
    assert_eq!(record["SilenceReadErrors"], 1, "{record}");
    let declared = record["_aws"]["CloudWatchMetrics"][0]["Metrics"]
        .as_array()
        .unwrap()
        .iter()
        .any(|m| m["Name"] == "SilenceReadErrors");
    assert!(declared, "a value CloudWatch turns into a metric: {record}");
    assert_eq!(stack.notifications_so_far().await.len(), 1);
}
