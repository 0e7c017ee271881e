//! The query tool against the same moto server, over entries written by
//! the real pipeline: every command, output format, filter and error.

mod common;

use std::process::Command;
use std::time::Duration;

use common::cli::{cli, failed, json_lines, now_ms, ok};
use common::{event, run, Stack};
use iot_log_monitor::model::time::format_iot_timestamp;

/// `n` failures of rules r0..r2 from clients c0..c4, one per second ending a minute ago, plus one RuleNotFound.
async fn seeded_stack(name: &str, n: usize) -> Stack {
    let stack = Stack::new(name).await;
    let processor = stack.processor(&[]);
    let base = now_ms() - 60_000 - n as i64 * 1000;
    let mut lines: Vec<String> = (0..n)
        .map(|i| {
            format!(
                r#"{{"timestamp":"{}","logLevel":"ERROR","traceId":"t-{i}","accountId":"123456789012","status":"Failure","eventType":"RuleExecution","clientId":"c{}","ruleName":"r{}","reason":"ActionFailure","details":"action failed, \"quoted\", with commas"}}"#,
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
    run(&processor, &event(name, 9, &lines, now_ms()), now_ms()).await;
    stack
}

#[tokio::test]
async fn list_filters_orders_and_paginates() {
    let stack = seeded_stack("cli-list", 120).await;
    let table = stack.table("EntriesTable").to_owned();
    let all = json_lines(&ok(cli(&[
        "--table",
        &table,
        "list",
        "--since",
        "1h",
        "--limit",
        "500",
        "--page-size",
        "7",
    ])
    .output()
    .unwrap()));
    assert_eq!(
        all.len(),
        121,
        "every incident across categories, days, shards and pages"
    );
    let times: Vec<i64> = all.iter().map(|r| r["timeMs"].as_i64().unwrap()).collect();
    assert!(times.windows(2).all(|w| w[0] >= w[1]), "newest first");

    let limited = json_lines(&ok(cli(&[
        "--table",
        &table,
        "list",
        "--limit",
        "10",
        "--page-size",
        "3",
    ])
    .output()
    .unwrap()));
    assert_eq!(limited.len(), 10);
    assert_eq!(limited[0]["traceId"], "t-119");

    let rule = json_lines(&ok(cli(&[
        "--table", &table, "list", "--rule", "r1", "--limit", "500",
    ])
    .output()
    .unwrap()));
    assert_eq!(rule.len(), 40);
    assert!(rule.iter().all(|r| r["ruleName"] == "r1"));

    let both = json_lines(&ok(cli(&[
        "--table", &table, "list", "--rule", "r1", "--client", "c2", "--limit", "500",
    ])
    .output()
    .unwrap()));
    assert_eq!(both.len(), 8, "i ≡ 1 mod 3 and i ≡ 2 mod 5 for i < 120");

    let client = json_lines(&ok(cli(&[
        "--table",
        &table,
        "list",
        "--client",
        "c0",
        "--category",
        "RuleNotFound",
    ])
    .output()
    .unwrap()));
    assert_eq!(client.len(), 1);
    assert_eq!(client[0]["ruleName"], "gone");

    let category = json_lines(&ok(cli(&[
        "--table",
        &table,
        "list",
        "--category",
        "failure",
        "--limit",
        "500",
    ])
    .output()
    .unwrap()));
    assert_eq!(category.len(), 120);
}

#[tokio::test]
async fn outputs_are_a_table_json_lines_or_csv() {
    let stack = seeded_stack("cli-output", 6).await;
    let table = stack.table("EntriesTable").to_owned();
    let text = ok(cli(&["--table", &table, "--output", "table", "list"])
        .output()
        .unwrap());
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap().split_whitespace().collect();
    assert_eq!(
        header,
        [
            "time",
            "category",
            "eventType",
            "rule",
            "client",
            "traceId",
            "reason",
            "details"
        ]
    );
    assert_eq!(lines.count(), 7);

    let csv = ok(
        cli(&["--table", &table, "--output", "csv", "list", "--rule", "r0"])
            .output()
            .unwrap(),
    );
    let rows: Vec<&str> = csv.lines().collect();
    assert_eq!(
        rows[0],
        "time,category,eventType,rule,client,traceId,reason,details"
    );
    assert_eq!(rows.len(), 3);
    assert!(
        rows[1].ends_with(r#","ActionFailure","action failed, ""quoted"", with commas""#)
            || rows[1].contains(r#""action failed, ""quoted"", with commas""#),
        "{}",
        rows[1]
    );

    // Piped with no --output: JSON lines.
    let piped = ok(cli(&["--table", &table, "list"]).output().unwrap());
    assert_eq!(json_lines(&piped).len(), 7);
}

#[tokio::test]
async fn get_shows_every_entry_of_a_trace_oldest_first() {
    let stack = seeded_stack("cli-get", 3).await;
    let table = stack.table("EntriesTable").to_owned();
    let entries = json_lines(&ok(cli(&["--table", &table, "get", "t-0"])
        .output()
        .unwrap()));
    assert_eq!(entries.len(), 2);
    assert_eq!(
        entries[0]["eventType"], "RuleNotFound",
        "the older entry first"
    );
    assert_eq!(entries[1]["eventType"], "RuleExecution");
    assert!(entries[1]["rawMessage"]
        .as_str()
        .unwrap()
        .contains("\"traceId\":\"t-0\""));
    let table_text = ok(cli(&["--table", &table, "--output", "table", "get", "t-0"])
        .output()
        .unwrap());
    assert_eq!(
        table_text.lines().filter(|l| l.starts_with("── ")).count(),
        2
    );
    assert!(table_text.contains("ruleName"), "{table_text}");

    let none = cli(&["--table", &table, "get", "no-such-trace"])
        .output()
        .unwrap();
    assert!(none.status.success(), "an empty result is not an error");
    assert!(String::from_utf8_lossy(&none.stderr).contains("no stored entries"));
}

#[tokio::test]
async fn summary_counts_ranks_and_charts() {
    let stack = seeded_stack("cli-summary", 30).await;
    let table = stack.table("EntriesTable").to_owned();
    let doc: serde_json::Value = serde_json::from_str(&ok(cli(&[
        "--table", &table, "summary", "--since", "3h", "--top", "2",
    ])
    .output()
    .unwrap()))
    .unwrap();
    assert_eq!(doc["total"], 31);
    assert_eq!(doc["byCategory"]["Failure"], 30);
    assert_eq!(doc["byCategory"]["RuleNotFound"], 1);
    assert_eq!(doc["topRules"].as_array().unwrap().len(), 2);
    assert_eq!(doc["topRules"][0]["count"], 10);
    assert_eq!(
        doc["topClients"][0],
        serde_json::json!({"name": "c0", "count": 7})
    );
    let hours = doc["perHour"].as_array().unwrap();
    assert_eq!(
        hours
            .iter()
            .map(|h| h["count"].as_u64().unwrap())
            .sum::<u64>(),
        31
    );

    let text = ok(cli(&[
        "--table", &table, "--output", "table", "summary", "--since", "3h",
    ])
    .output()
    .unwrap());
    assert!(text.contains("31 entries"), "{text}");
    assert!(text.contains('█'), "an hourly bar chart: {text}");
}

#[tokio::test]
async fn errors_are_one_clear_line_with_a_failing_exit_code() {
    let stack = Stack::new("cli-errors").await;
    let table = stack.table("EntriesTable").to_owned();

    let bad_time = failed(
        cli(&["--table", &table, "list", "--since", "yesterday"])
            .output()
            .unwrap(),
    );
    assert!(
        bad_time.contains("--since") && bad_time.contains("15m, 6h or 7d"),
        "{bad_time}"
    );

    let unknown_table = failed(cli(&["--table", "nope", "list"]).output().unwrap());
    assert!(
        unknown_table.contains("table nope does not exist"),
        "{unknown_table}"
    );

    let unknown_stack = failed(cli(&["--stack", "no-such-stack", "list"]).output().unwrap());
    assert!(
        unknown_stack.contains("stack no-such-stack does not exist"),
        "{unknown_stack}"
    );

    let nowhere = failed(cli(&["list"]).output().unwrap());
    assert!(nowhere.contains("--table, or --stack"), "{nowhere}");

    let home = std::env::temp_dir().join("iot-incidents-no-credentials");
    std::fs::create_dir_all(&home).unwrap();
    let no_credentials = failed(
        cli(&["--table", &table, "list"])
            .env_remove("AWS_ACCESS_KEY_ID")
            .env_remove("AWS_SECRET_ACCESS_KEY")
            .env_remove("AWS_PROFILE")
            .env("HOME", &home)
            .env("AWS_CONFIG_FILE", home.join("config"))
            .env("AWS_SHARED_CREDENTIALS_FILE", home.join("credentials"))
            .output()
            .unwrap(),
    );
    assert!(
        no_credentials.contains("no AWS credentials"),
        "{no_credentials}"
    );

    let empty = cli(&["--table", &table, "list"]).output().unwrap();
    assert!(empty.status.success(), "an empty result is not an error");
    assert!(String::from_utf8_lossy(&empty.stderr).contains("no entries match"));

    let usage = cli(&["list", "--category", "Sucess"]).output().unwrap();
    assert_eq!(usage.status.code(), Some(2), "usage errors exit 2");
}

#[tokio::test]
async fn redrive_processes_failed_batches_and_deletes_only_what_it_processed() {
    let stack = Stack::new("cli-redrive").await;
    let queue = stack.table("FailedBatchQueue").to_owned();
    // Without a stack: the queue by flag, the function (whose configuration
    // processes the batch) by name.
    let flags = [
        "--table",
        stack.table("EntriesTable"),
        "--queue-url",
        &queue,
    ];
    let function = ["--function", &stack.outputs["ProcessorFunctionName"]];
    // What Lambda puts in the on-failure destination after the retries of
    // an asynchronous invocation (the developer guide's invocation record),
    // carrying events/rule-not-found.json.
    let event: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(common::repo_path("events/rule-not-found.json")).unwrap(),
    )
    .unwrap();
    let record = common::failed_invocation_record(
        "e4b46cbf-b738-4c1e-8880-a18cdf61200e",
        &event,
        "IotLogMonitor.Store.Unprocessed",
        "2 of 2 writes unprocessed",
    );
    stack
        .sqs
        .send_message()
        .queue_url(&queue)
        .message_body(record)
        .send()
        .await
        .unwrap();

    let dry = ok(
        cli(&[&flags[..], &["redrive", "--dry-run"], &function[..]].concat())
            .output()
            .unwrap(),
    );
    assert!(
        dry.contains("would process") && dry.contains("IotLogMonitor.Store.Unprocessed"),
        "{dry}"
    );
    assert!(
        stack.entries().await.is_empty(),
        "a dry run changes nothing"
    );

    let redrive = || {
        let args = [
            &flags[..],
            &[
                "redrive",
                "--incidents-table",
                &stack.env["INCIDENTS_TABLE"],
                "--silences-table",
                &stack.env["SILENCES_TABLE"],
            ],
        ]
        .concat();
        cli(&args).args(function).output().unwrap()
    };
    let real = ok(redrive());
    assert!(
        real.contains("processed")
            && real.contains("2 entries, 2 stored, 1 incidents, 1 notifications sent"),
        "{real}"
    );
    assert_eq!(stack.entries().await.len(), 2);
    assert_eq!(stack.notifications(Duration::from_secs(5)).await.len(), 1);

    let again = redrive();
    assert!(again.status.success());
    assert!(
        String::from_utf8_lossy(&again.stderr).contains("no failed batches are kept"),
        "the message was deleted"
    );

    // A message that is not a destination record stays where it is, and the run fails.
    stack
        .sqs
        .send_message()
        .queue_url(&queue)
        .message_body("not a record")
        .send()
        .await
        .unwrap();
    let bad = failed(redrive());
    assert!(bad.contains("could not be processed"), "{bad}");
}

#[test]
fn encode_builds_what_the_decoder_reads() {
    use std::io::Write;
    let mut child = Command::new(env!("CARGO_BIN_EXE_iot-incidents"))
        .args(["encode", "--log-stream", "s1", "--time", "1000"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"{\"eventType\":\"Connect\"}\n\nplain text\n")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let event = String::from_utf8(out.stdout).unwrap();
    let data = iot_log_monitor::ingest::decode::subscription_data(&event).unwrap();
    let buffer = iot_log_monitor::ingest::decode::decode_data(&data, 1 << 20).unwrap();
    let batch = iot_log_monitor::ingest::decode::parse_batch(&buffer).unwrap();
    assert_eq!(batch.log_stream, "s1");
    assert_eq!(batch.log_events.len(), 2);
    assert_eq!(batch.log_events[1].timestamp, 1000);
}

#[tokio::test]
async fn a_stack_name_finds_the_tables_through_the_deployed_stacks_outputs() {
    let stack = seeded_stack("cli-stack", 4).await;
    // The stack deployed from template.yaml: every name comes from its outputs.
    let rows = json_lines(&ok(cli(&["--stack", &stack.name, "list"])
        .output()
        .unwrap()));
    assert_eq!(rows.len(), 5);
    let incidents = json_lines(&ok(cli(&["--stack", &stack.name, "incidents"])
        .output()
        .unwrap()));
    assert!(
        !incidents.is_empty(),
        "the incidents table, from IncidentsTableName"
    );

    // A stack that lacks an output the command needs says which one.
    let cloudformation = aws_sdk_cloudformation::Client::new(&stack.sdk);
    let name = format!("not-this-template-{}", std::process::id());
    let template = serde_json::json!({
        "Resources": {"Placeholder": {"Type": "AWS::SQS::Queue", "Properties": {}}},
        "Outputs": {"EntriesTableName": {"Value": stack.table("EntriesTable")}}
    });
    cloudformation
        .create_stack()
        .stack_name(&name)
        .template_body(template.to_string())
        .send()
        .await
        .unwrap();
    let missing = failed(cli(&["--stack", &name, "incidents"]).output().unwrap());
    assert!(
        missing.contains("has no output IncidentsTableName"),
        "{missing}"
    );
}

/// Issue 16 (4, 5, 6, 8): device-chosen values reach the terminal and CSV
/// files escaped and neutralised; the client classification read is the
/// one `list --client` finds; `get` finds an over-long traceId.
async fn hostile_stack(name: &str) -> Stack {
    let stack = Stack::new(name).await;
    let processor = stack.processor(&[]);
    let at = format_iot_timestamp(now_ms() - 120_000);
    let long_trace = "T".repeat(2048);
    let lines = vec![
        format!(
            r#"{{"timestamp":"{at}","logLevel":"ERROR","traceId":"t-esc","status":"Failure","eventType":"Publish-In","clientId":"=HYPERLINK(\"http://x.example\",\"click\")","topicName":"a\u001b]0;title\u0007\u001b[2J\u009b31m","reason":"dev\u202eexe.txt","details":"-2+3"}}"#
        ),
        format!(
            r#"{{"timestamp":"{at}","traceId":"t-dup","eventType":"Connect","status":"Failure","status":0,"clientId":"victim-7","clientId":123}}"#
        ),
        format!(
            r#"{{"timestamp":"{at}","traceId":"{long_trace}","eventType":"Connect","status":"Failure","clientId":"long-trace-device"}}"#
        ),
    ];
    run(&processor, &event(name, 11, &lines, now_ms()), now_ms()).await;
    stack
}

fn assert_terminal_safe(text: &str) {
    for c in text.chars() {
        assert!(
            c == '\n' || !iot_log_monitor::notify::display::is_unsafe_char(c),
            "U+{:04X} reached the terminal: {text:?}",
            u32::from(c)
        );
    }
}

#[tokio::test]
async fn device_text_never_drives_the_terminal_or_a_spreadsheet() {
    let stack = hostile_stack("cli-hostile").await;
    let table = stack.table("EntriesTable").to_owned();
    for output in ["table", "json", "csv"] {
        let listed = ok(cli(&[
            "--table", &table, "--output", output, "list", "--since", "1h",
        ])
        .output()
        .unwrap());
        assert_terminal_safe(&listed);
        let got = ok(
            cli(&["--table", &table, "--output", output, "get", "t-esc"])
                .output()
                .unwrap(),
        );
        assert_terminal_safe(&got);
        assert!(got.contains("HYPERLINK"), "{got}");
        let summary = ok(cli(&[
            "--table", &table, "--output", output, "summary", "--since", "1h",
        ])
        .output()
        .unwrap());
        assert_terminal_safe(&summary);
        if output == "json" {
            let row: serde_json::Value = serde_json::from_str(got.lines().next().unwrap()).unwrap();
            assert_eq!(
                row["topicName"], "a\u{1b}]0;title\u{7}\u{1b}[2J\u{9b}31m",
                "JSON keeps the value, escaped"
            );
        }
        if output == "csv" {
            for text in [&listed, &got, &summary] {
                let mut reader = text.lines();
                reader.next();
                for line in reader {
                    for cell in line.split(',') {
                        let cell = cell.trim_start_matches('"');
                        assert!(
                            !cell.starts_with(['=', '+', '-', '@', '\t', '\r']),
                            "a formula cell: {line}"
                        );
                    }
                }
            }
            assert!(listed.contains("\"'=HYPERLINK("), "{listed}");
        }
    }
}

#[tokio::test]
async fn list_finds_the_client_classification_read_and_get_finds_a_long_trace_id() {
    let stack = hostile_stack("cli-dup").await;
    let table = stack.table("EntriesTable").to_owned();
    let rows = json_lines(&ok(cli(&[
        "--table", &table, "list", "--client", "victim-7", "--since", "1h",
    ])
    .output()
    .unwrap()));
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0]["clientId"], "victim-7");
    let long_trace = "T".repeat(2048);
    let got = json_lines(&ok(cli(&["--table", &table, "get", &long_trace])
        .output()
        .unwrap()));
    assert_eq!(
        got.len(),
        1,
        "the entry stored under the bounded key is found"
    );
    assert_eq!(got[0]["clientId"], "long-trace-device");
}
