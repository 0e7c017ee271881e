//! The entries table's indexes carry the keys and four attributes, not the
//! whole entry (issue 28, point 4): what each index entry holds and costs,
//! measured on what moto keeps in the deployed indexes, and the operator's
//! commands giving the same output over them as over indexes of whole items.
//!
//! moto answers `ReturnConsumedCapacity=INDEXES` on BatchWriteItem with a
//! constant 1.0 for the whole request and nothing per index, so the write
//! units here are computed from the sizes of what DynamoDB would write, by
//! its documented rule: an item's size is the UTF-8 bytes of its attribute
//! names and values (a number: 1 byte per 2 significant digits, plus 1); a
//! write costs 1 unit per started KB, for the table and again for each
//! index the item has a key for, of the size of its index entry (the
//! table's key, the index's key and the projected attributes).

mod common;

use std::collections::{BTreeSet, HashMap};
use std::process::Output;

use aws_sdk_dynamodb::types::{
    AttributeValue, GlobalSecondaryIndex, Projection, ProjectionType, PutRequest, WriteRequest,
};
use common::cli::{cli, json_lines, now_ms, ok};
use common::fault_proxy::{Fault, FaultProxy, Rule, Service};
use common::{event, repo_path, run, Stack};
use iot_log_monitor::model::time::{format_iot_timestamp, format_rfc3339};
use iot_log_monitor::store::indexes::{
    write_units, ENTRY_INDEXES, INDEX_ATTRIBUTES, INDEX_SORT_KEY, TABLE_KEY,
};

type Item = HashMap<String, AttributeValue>;

/// DynamoDB's size of a number: 1 byte per two significant digits, plus 1
/// (leading and trailing zeros are not significant).
fn number_bytes(n: &str) -> usize {
    let digits: String = n.chars().filter(char::is_ascii_digit).collect();
    let significant = digits.trim_start_matches('0').trim_end_matches('0').len();
    significant.div_ceil(2) + 1
}

/// DynamoDB's size of a value ("Item sizes and formats").
fn value_bytes(value: &AttributeValue) -> usize {
    match value {
        AttributeValue::S(s) => s.len(),
        AttributeValue::N(n) => number_bytes(n),
        AttributeValue::Bool(_) | AttributeValue::Null(_) => 1,
        AttributeValue::B(b) => b.as_ref().len(),
        AttributeValue::Ss(set) => set.iter().map(String::len).sum(),
        AttributeValue::Ns(set) => set.iter().map(|n| number_bytes(n)).sum(),
        AttributeValue::L(list) => 3 + list.iter().map(|v| 1 + value_bytes(v)).sum::<usize>(),
        AttributeValue::M(map) => {
            3 + map
                .iter()
                .map(|(k, v)| 1 + k.len() + value_bytes(v))
                .sum::<usize>()
        }
        other => panic!("a value this table never holds: {other:?}"),
    }
}

fn item_bytes(item: &Item) -> usize {
    item.iter().map(|(k, v)| k.len() + value_bytes(v)).sum()
}

fn text(item: &Item, name: &str) -> String {
    match &item[name] {
        AttributeValue::S(s) | AttributeValue::N(s) => s.clone(),
        other => panic!("{name}: {other:?}"),
    }
}

/// The entry of `item` in `index` as moto keeps it (moto applies the
/// deployed index's projection to what a Query returns).
async fn index_entry(stack: &Stack, table: &str, index: &str, pk: &str, item: &Item) -> Item {
    let page = stack
        .dynamodb
        .query()
        .table_name(table)
        .index_name(index)
        .key_condition_expression("#pk = :pk AND timeMs = :t")
        .expression_attribute_names("#pk", pk)
        .expression_attribute_values(":pk", item[pk].clone())
        .expression_attribute_values(":t", item[INDEX_SORT_KEY].clone())
        .send()
        .await
        .unwrap();
    page.items()
        .iter()
        .find(|e| TABLE_KEY.iter().all(|k| e.get(*k) == item.get(*k)))
        .unwrap_or_else(|| panic!("{index} has no entry for {:?}", item["traceId"]))
        .clone()
}

/// One stored entry: what it costs in the table and in each index it is in,
/// and what an index of whole items (`ALL`, as before) would have cost.
struct Measured {
    file: &'static str,
    table_bytes: usize,
    /// (index, bytes of its entry) for each index the entry is in.
    index_bytes: Vec<(&'static str, usize)>,
}

impl Measured {
    fn units(&self) -> usize {
        write_units(self.table_bytes)
            + self
                .index_bytes
                .iter()
                .map(|(_, b)| write_units(*b))
                .sum::<usize>()
    }
    fn units_with_whole_items(&self) -> usize {
        write_units(self.table_bytes) * (1 + self.index_bytes.len())
    }
}

fn median(mut values: Vec<usize>) -> usize {
    values.sort_unstable();
    values[values.len() / 2]
}

/// Reproduces the README's figure (`cargo test --test entry_indexes
/// write_units -- --nocapture` prints it): the demo's events stored by the
/// real pipeline, each stored entry's table item and index entries read
/// back, their write units computed. Holds the projection: an index of
/// whole items (`ALL`) again would put every attribute in the index entries
/// and cost 2 units for each of the typical entry's three indexes.
#[tokio::test]
async fn write_units_per_entry_are_the_table_and_one_per_index() {
    let stack = Stack::new("idx-units").await;
    let table = stack.table("EntriesTable").to_owned();
    let processor = stack.processor(&[]);
    const FILES: [&str; 7] = [
        "rule-not-found",
        "rule-throttled",
        "authorization-failures",
        "job-failure",
        "cloudtrail-iot-failures",
        "warnings-and-new-types",
        "garbage-lines",
    ];
    let mut measured = Vec::new();
    // (file, index, what its entry carries, what it should carry), checked
    // once the figures are printed, so a failing run still shows them.
    let mut carried = Vec::new();
    for file in FILES {
        let before: BTreeSet<String> = stack
            .entries()
            .await
            .iter()
            .map(|i| text(i, "entryKey"))
            .collect();
        let batch = std::fs::read_to_string(repo_path(&format!("events/{file}.json"))).unwrap();
        run(&processor, &batch, now_ms()).await;
        for item in stack.entries().await {
            if before.contains(&text(&item, "entryKey")) {
                continue;
            }
            let mut index_bytes = Vec::new();
            for index in ENTRY_INDEXES {
                if !item.contains_key(index.partition_key) {
                    continue;
                }
                let entry =
                    index_entry(&stack, &table, index.name, index.partition_key, &item).await;
                // Exactly the keys and the projected attributes the item has.
                let expected: BTreeSet<&str> = TABLE_KEY
                    .into_iter()
                    .chain([index.partition_key, INDEX_SORT_KEY])
                    .chain(
                        INDEX_ATTRIBUTES
                            .into_iter()
                            .filter(|a| item.contains_key(*a)),
                    )
                    .collect();
                let got: BTreeSet<String> = entry.keys().cloned().collect();
                let expected: BTreeSet<String> = expected.into_iter().map(str::to_owned).collect();
                carried.push((file, index.name, got, expected));
                index_bytes.push((index.name, item_bytes(&entry)));
            }
            measured.push(Measured {
                file,
                table_bytes: item_bytes(&item),
                index_bytes,
            });
        }
    }
    println!(
        "{:<24} {:>7} {:>11} {:>11} {:>22} {:>22}",
        "events/", "entries", "item bytes", "table WCU", "index entry bytes", "WCU per entry"
    );
    for file in FILES {
        let of_file: Vec<&Measured> = measured.iter().filter(|m| m.file == file).collect();
        let index_sizes: Vec<usize> = of_file
            .iter()
            .flat_map(|m| m.index_bytes.iter().map(|(_, b)| *b))
            .collect();
        println!(
            "{:<24} {:>7} {:>11} {:>11} {:>22} {:>22}",
            file,
            of_file.len(),
            median(of_file.iter().map(|m| m.table_bytes).collect()),
            median(of_file.iter().map(|m| write_units(m.table_bytes)).collect()),
            format!(
                "{}..{}",
                index_sizes.iter().min().unwrap(),
                index_sizes.iter().max().unwrap()
            ),
            format!(
                "{} (ALL: {})",
                median(of_file.iter().map(|m| m.units()).collect()),
                median(of_file.iter().map(|m| m.units_with_whole_items()).collect())
            ),
        );
    }
    let total: usize = measured.iter().map(Measured::units).sum();
    let whole: usize = measured.iter().map(Measured::units_with_whole_items).sum();
    println!(
        "all {} entries: {total} WCU (with ALL indexes: {whole} WCU); median per entry {} (ALL: {})",
        measured.len(),
        median(measured.iter().map(Measured::units).collect()),
        median(measured.iter().map(Measured::units_with_whole_items).collect()),
    );

    for (file, index, got, expected) in carried {
        assert_eq!(got, expected, "{file}: what {index} carries");
    }
    // Every index entry of every kind of entry fits one write unit.
    for m in &measured {
        for (index, bytes) in &m.index_bytes {
            assert!(*bytes <= 1024, "{}: {index} entry of {bytes} bytes", m.file);
        }
    }
    // The typical entry: the AWS documentation's RuleNotFound example, in
    // all three indexes, a 2-unit item: 2 + 3 units, where ALL cost 2 + 3 × 2.
    let typical = measured
        .iter()
        .find(|m| m.file == "rule-not-found")
        .unwrap();
    assert_eq!(typical.index_bytes.len(), 3);
    assert_eq!(
        write_units(typical.table_bytes),
        2,
        "{} bytes",
        typical.table_bytes
    );
    assert_eq!((typical.units(), typical.units_with_whole_items()), (5, 8));
}

/// `n` failures of rules r0..r2 from clients c0..c4, one per second ending
/// a minute ago, a RuleNotFound, two authorization failures (an incident of
/// no rule), two warnings (no incident) and a line that is no JSON (no
/// rule, no client).
async fn seeded_stack(name: &str, n: usize) -> (Stack, i64) {
    let stack = Stack::new(name).await;
    let processor = stack.processor(&[]);
    let base = now_ms() - 60_000 - n as i64 * 1000;
    let mut lines: Vec<String> = (0..n)
        .map(|i| {
            format!(
                r#"{{"timestamp":"{}","logLevel":"ERROR","traceId":"t-{i}","accountId":"123456789012","status":"Failure","eventType":"RuleExecution","clientId":"c{}","ruleName":"r{}","ruleAction":"DynamoActionV2","reason":"ActionFailure","details":"action failed, \"quoted\", with commas"}}"#,
                format_iot_timestamp(base + i as i64 * 1000),
                i % 5,
                i % 3
            )
        })
        .collect();
    lines.push(format!(
        r#"{{"timestamp":"{}","logLevel":"ERROR","traceId":"t-0","status":"Failure","eventType":"RuleNotFound","clientId":"c0","ruleName":"gone","details":"Rule gone not found"}}"#,
        format_iot_timestamp(base - 500)
    ));
    for (i, client) in ["c3", "c4"].iter().enumerate() {
        lines.push(format!(
            r#"{{"timestamp":"{}","logLevel":"ERROR","traceId":"a-{i}","status":"Failure","eventType":"Connect","clientId":"{client}","reason":"AUTHORIZATION_FAILURE","details":"Authorization Failure"}}"#,
            format_iot_timestamp(base + 600 + i as i64)
        ));
    }
    for (i, client) in ["c1", "c9"].iter().enumerate() {
        lines.push(format!(
            r#"{{"timestamp":"{}","logLevel":"WARN","traceId":"w-{i}","status":"Success","eventType":"Connect","clientId":"{client}","details":"Client is connected with a deprecated TLS version"}}"#,
            format_iot_timestamp(base + 700 + i as i64)
        ));
    }
    lines.push("not json at all".to_owned());
    run(&processor, &event(name, 9, &lines, base + 800), now_ms()).await;
    (stack, base)
}

/// A table of the same keys whose indexes carry whole items (the layout
/// before), holding the same items as `table`.
async fn twin_with_whole_items(stack: &Stack, table: &str) -> String {
    let described = stack
        .dynamodb
        .describe_table()
        .table_name(table)
        .send()
        .await
        .unwrap();
    let described = described.table().unwrap();
    let twin = format!("{table}-all");
    let indexes: Vec<GlobalSecondaryIndex> = described
        .global_secondary_indexes()
        .iter()
        .map(|gsi| {
            GlobalSecondaryIndex::builder()
                .index_name(gsi.index_name().unwrap())
                .set_key_schema(Some(gsi.key_schema().to_vec()))
                .projection(
                    Projection::builder()
                        .projection_type(ProjectionType::All)
                        .build(),
                )
                .build()
                .unwrap()
        })
        .collect();
    stack
        .dynamodb
        .create_table()
        .table_name(&twin)
        .billing_mode(aws_sdk_dynamodb::types::BillingMode::PayPerRequest)
        .set_attribute_definitions(Some(described.attribute_definitions().to_vec()))
        .set_key_schema(Some(described.key_schema().to_vec()))
        .set_global_secondary_indexes(Some(indexes))
        .send()
        .await
        .unwrap();
    for chunk in stack.entries().await.chunks(25) {
        let writes = chunk
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
        let out = stack
            .dynamodb
            .batch_write_item()
            .request_items(&twin, writes)
            .send()
            .await
            .unwrap();
        assert!(out.unprocessed_items().is_none_or(|u| u.is_empty()));
    }
    twin
}

fn outcome(output: Output) -> (Option<i32>, String, String) {
    (
        output.status.code(),
        String::from_utf8(output.stdout).unwrap(),
        String::from_utf8(output.stderr).unwrap(),
    )
}

fn batch_gets(proxy: &FaultProxy) -> u32 {
    proxy
        .requests()
        .get(&(Service::DynamoDb, "BatchGetItem".to_owned()))
        .copied()
        .unwrap_or(0)
}

/// Every command that reads the entry indexes (`list`, `summary`, `show`'s
/// activity) and `get` print exactly what they print over indexes of whole
/// items, in every output format and with every filter; only `list`
/// fetches items, one BatchGetItem per 100 rows it shows.
#[tokio::test]
async fn commands_print_the_same_over_the_lean_indexes_and_fetch_only_for_list() {
    let (stack, base) = seeded_stack("idx-same", 150).await;
    let lean = stack.table("EntriesTable").to_owned();
    let twin = twin_with_whole_items(&stack, &lean).await;
    let incidents = stack.table("IncidentsTable").to_owned();
    let silences = stack.table("SilencesTable").to_owned();
    let since = format_rfc3339(base - 3_600_000);
    let until = format_rfc3339(now_ms() + 3_600_000);
    let period = ["--since", since.as_str(), "--until", until.as_str()];
    // The incidents, as `incidents` lists them: two charted through the
    // rule index, one through the category index (no rule to read by).
    let open = json_lines(&ok(cli(&[
        "--incidents-table",
        &incidents,
        "--silences-table",
        &silences,
        "incidents",
    ])
    .output()
    .unwrap()));
    let id_of = |part: &str, value: &str| -> String {
        open.iter()
            .find(|i| i["key"][part] == value)
            .unwrap_or_else(|| panic!("no incident with {part} {value}: {open:?}"))["incidentId"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let rule_incident = id_of("rule", "r1");
    let gone_incident = id_of("rule", "gone");
    let connect_incident = id_of("eventType", "Connect");

    let mut commands: Vec<Vec<&str>> = Vec::new();
    for output in ["json", "table", "csv"] {
        let list = |extra: &[&'static str]| {
            let mut c = vec!["--output", output, "list"];
            c.extend(period);
            c.extend(extra);
            c
        };
        commands.push(list(&["--limit", "500"]));
        commands.push(list(&["--limit", "7", "--page-size", "3"]));
        commands.push(list(&["--rule", "r1", "--client", "c2", "--limit", "500"]));
        commands.push(list(&[
            "--rule",
            "r0",
            "--category",
            "Failure",
            "--limit",
            "500",
        ]));
        commands.push(list(&["--client", "c0", "--category", "RuleNotFound"]));
        commands.push(list(&["--client", "c1", "--limit", "500"]));
        commands.push(list(&["--category", "Warning"]));
        let mut summary = vec!["--output", output, "summary", "--top", "2"];
        summary.extend(period);
        commands.push(summary);
        commands.push(vec!["--output", output, "get", "t-0"]);
    }
    for output in ["json", "table"] {
        for id in [&rule_incident, &gone_incident, &connect_incident] {
            commands.push(vec!["--output", output, "show", id.as_str()]);
        }
    }

    let proxy = FaultProxy::start(
        &common::moto().endpoint,
        Vec::new(),
        0,
        std::time::Duration::ZERO,
    );
    let tables = |entries: &str| {
        [
            "--table".to_owned(),
            entries.to_owned(),
            "--incidents-table".to_owned(),
            incidents.clone(),
            "--silences-table".to_owned(),
            silences.clone(),
        ]
    };
    for command in &commands {
        let with = |entries: &str| -> Vec<String> {
            tables(entries)
                .into_iter()
                .chain(command.iter().map(|s| (*s).to_owned()))
                .collect()
        };
        let args = with(&twin);
        let expected = outcome(
            cli(&args.iter().map(String::as_str).collect::<Vec<_>>())
                .output()
                .unwrap(),
        );
        assert_eq!(expected.0, Some(0), "{command:?}: {}", expected.2);
        let gets = batch_gets(&proxy);
        let args = with(&lean);
        let got = outcome(
            cli(&args.iter().map(String::as_str).collect::<Vec<_>>())
                .env("AWS_ENDPOINT_URL", &proxy.endpoint)
                .output()
                .unwrap(),
        );
        assert_eq!(got, expected, "{command:?}");
        let fetched = batch_gets(&proxy) - gets;
        if command.contains(&"list") {
            let shown = if command[1] == "json" {
                got.1.lines().count()
            } else {
                got.1.lines().count() - 1
            };
            assert!(shown > 0, "{command:?} shows entries");
            assert_eq!(fetched as usize, shown.div_ceil(100), "{command:?}");
        } else {
            assert_eq!(fetched, 0, "{command:?} reads only what the indexes carry");
        }
    }
    // The seeding reached every branch compared above.
    let all = json_lines(&ok(cli(&[
        "--table", &lean, "list", "--since", &since, "--until", &until, "--limit", "500",
    ])
    .output()
    .unwrap()));
    assert_eq!(
        all.len(),
        156,
        "150 failures, a RuleNotFound, 2 failed connects, 2 warnings, 1 unparseable"
    );
}

/// Keys DynamoDB leaves unprocessed (throttling, an answer over 16 MB) are
/// asked for again: `list` still shows every row whole.
#[tokio::test]
async fn list_asks_again_for_keys_left_unprocessed() {
    let (stack, base) = seeded_stack("idx-unprocessed", 120).await;
    let table = stack.table("EntriesTable").to_owned();
    let since = format_rfc3339(base - 3_600_000);
    let until = format_rfc3339(now_ms() + 3_600_000);
    let args = [
        "--table", &table, "list", "--since", &since, "--until", &until, "--limit", "500",
    ];
    let expected = ok(cli(&args).output().unwrap());
    assert_eq!(json_lines(&expected).len(), 126);
    let proxy = FaultProxy::start(
        &common::moto().endpoint,
        vec![Rule::First {
            service: Service::DynamoDb,
            op: "BatchGetItem",
            count: 3,
            fault: Fault::PartialBatch,
        }],
        0,
        std::time::Duration::ZERO,
    );
    let got = ok(cli(&args)
        .env("AWS_ENDPOINT_URL", &proxy.endpoint)
        .output()
        .unwrap());
    assert_eq!(got, expected, "every row whole, in the same order");
    assert_eq!(
        proxy.injected()[&(Service::DynamoDb, Fault::PartialBatch)],
        3
    );
    // 126 rows: 2 requests of at most 100 keys, and one more for each
    // answer that left keys unprocessed.
    assert_eq!(batch_gets(&proxy), 2 + 3);
}
