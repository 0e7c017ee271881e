//! The operator's commands on incidents (`incidents`, `show`, `ack`,
//! `silence`, `silences`, `unsilence`) against moto, over incidents the real
//! pipeline wrote, with the function's own environment variables as the
//! only configuration: exporting the function's environment is enough.

mod common;

use std::process::Command;
use std::time::Duration;

use common::cli::{cli, failed, json_lines, now_ms, ok};
use common::{event, run, sweep, Stack};

const WAIT: Duration = Duration::from_secs(5);

fn rule_not_found(rule: &str, client: &str, n: usize, at_ms: i64) -> String {
    format!(
        r#"{{"timestamp":"{}","logLevel":"ERROR","traceId":"op-{rule}-{n}","accountId":"123456789012","status":"Failure","eventType":"RuleNotFound","clientId":"{client}","topicName":"$aws/rules/{rule}","ruleName":"{rule}","reason":"RuleNotFound","details":"Rule {rule} not found"}}"#,
        iot_log_monitor::model::time::format_iot_timestamp(at_ms)
    )
}

/// The query tool with the function's environment, as an operator who
/// exported it would run it.
fn with_function_env(stack: &Stack, args: &[&str]) -> Command {
    let mut command = cli(args);
    for name in ["ENTRIES_TABLE", "INCIDENTS_TABLE", "SILENCES_TABLE"] {
        command.env(name, &stack.env[name]);
    }
    command
}

fn out(stack: &Stack, args: &[&str]) -> String {
    ok(with_function_env(stack, args).output().unwrap())
}

#[tokio::test]
async fn incidents_show_and_ack_work_on_what_the_pipeline_wrote() {
    let stack = Stack::new("ops-show").await;
    let processor = stack.processor(&[
        ("REPEAT_INTERVAL_SECONDS", "60"),
        ("RESOLVE_AFTER_SECONDS", "600"),
        ("REOPEN_WINDOW_SECONDS", "0"),
    ]);
    let now = now_ms();
    let lines: Vec<String> = (0..4)
        .map(|n| {
            rule_not_found(
                "ops_rule",
                &format!("dev-{n}"),
                n,
                now - 120_000 + n as i64 * 30_000,
            )
        })
        .collect();
    run(&processor, &event("ops", 1, &lines, now), now).await;
    assert_eq!(stack.notifications(WAIT).await.len(), 1);

    let listed = json_lines(&out(&stack, &["--output", "json", "incidents"]));
    assert_eq!(listed.len(), 1, "{listed:?}");
    let id = listed[0]["incidentId"].as_str().unwrap().to_owned();
    assert_eq!(listed[0]["state"], "open");
    assert_eq!(listed[0]["key"]["rule"], "ops_rule");
    assert_eq!(listed[0]["entries"], 4);

    let shown = out(&stack, &["--output", "table", "show", &id]);
    assert!(
        shown.starts_with(&format!("Incident {id}  OPEN")),
        "{shown}"
    );
    assert!(shown.contains("rule \"ops_rule\""), "{shown}");
    assert!(shown.contains("4 distinct"), "{shown}");
    assert!(
        shown.contains("opened 20"),
        "the notification history: {shown}"
    );
    assert!(shown.contains("Activity (entries per"), "{shown}");
    let charted: u64 = shown
        .lines()
        .skip_while(|l| !l.starts_with("Activity"))
        .skip(1)
        .filter_map(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
        .sum();
    assert_eq!(charted, 4, "every entry in the chart: {shown}");

    let acked = out(
        &stack,
        &["ack", &id, "--by", "ana", "--note", "rolling back"],
    );
    assert!(acked.contains("acknowledged"), "{acked}");
    let shown = out(&stack, &["--output", "json", "show", &id]);
    let shown: serde_json::Value = serde_json::from_str(shown.trim()).unwrap();
    assert_eq!(
        (
            shown["acknowledgedBy"].as_str(),
            shown["acknowledgementNote"].as_str()
        ),
        (Some("ana"), Some("rolling back"))
    );

    // Acknowledged: no reminder, however long it goes on.
    let later = now + 120_000;
    run(
        &processor,
        &event(
            "ops",
            2,
            &[rule_not_found("ops_rule", "dev-9", 9, later)],
            later,
        ),
        later,
    )
    .await;
    assert!(
        stack.notifications_so_far().await.is_empty(),
        "no reminder once acknowledged"
    );
    // Its resolved notification still goes out, and says who acknowledged it.
    let quiet = later + 601_000;
    assert_eq!(sweep(&processor, quiet).await.incidents_resolved, 1);
    let resolved = stack.notifications(WAIT).await;
    assert_eq!(resolved.len(), 1);
    assert_eq!(resolved[0].attributes["transition"], "resolved");
    assert!(
        resolved[0].message.contains("\"acknowledgedBy\":\"ana\""),
        "{}",
        resolved[0].message
    );
    let until = iot_log_monitor::model::time::format_rfc3339(quiet + 1_000);
    let all = json_lines(&out(
        &stack,
        &[
            "--output",
            "json",
            "incidents",
            "--state",
            "all",
            "--since",
            "1h",
            "--until",
            &until,
        ],
    ));
    assert_eq!(all[0]["state"], "resolved");

    let unknown = failed(
        with_function_env(&stack, &["show", "0123456789abcdef-9"])
            .output()
            .unwrap(),
    );
    assert!(unknown.contains("no incident"), "{unknown}");
    let garbage = failed(
        with_function_env(&stack, &["ack", "not-an-id"])
            .output()
            .unwrap(),
    );
    assert!(garbage.contains("no incident"), "{garbage}");
}

#[tokio::test]
async fn a_silence_holds_notifications_back_and_its_end_lets_them_out_with_the_count() {
    let stack = Stack::new("ops-silence").await;
    let processor = stack.processor(&[]);
    let silenced = out(
        &stack,
        &[
            "silence",
            "--rule",
            "noisy_rule",
            "--for",
            "1h",
            "--reason",
            "migrating the table",
        ],
    );
    let silence_id = silenced.trim().to_owned();
    assert!(silence_id.starts_with("s-"), "{silenced}");
    let listed = json_lines(&out(&stack, &["--output", "json", "silences"]));
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0]["silenceId"], silence_id.as_str());

    // The next batch: entries stored, incident tracked, notification held back.
    let now = now_ms();
    let noisy = |n: usize, at: i64| {
        event(
            "silence",
            n as u64 + 1,
            &[rule_not_found("noisy_rule", "d", n, at)],
            at,
        )
    };
    let other = rule_not_found("other_rule", "d", 50, now);
    let first = run(
        &processor,
        &event(
            "silence-mixed",
            90,
            &[rule_not_found("noisy_rule", "d", 0, now), other],
            now,
        ),
        now,
    )
    .await;
    assert_eq!(
        (
            first.stored,
            first.incidents_opened,
            first.notifications_silenced
        ),
        (2, 2, 1)
    );
    let sent = stack.notifications(WAIT).await;
    assert_eq!(sent.len(), 1, "only the other rule's: {sent:?}");
    assert_eq!(sent[0].attributes["ruleName"], "other_rule");
    run(&processor, &noisy(1, now + 1_000), now + 1_000).await;

    let ended = out(&stack, &["unsilence", &silence_id]);
    assert!(ended.contains("ended"), "{ended}");
    assert!(json_lines(&out(&stack, &["--output", "json", "silences"])).is_empty());
    // The function re-reads silences at most every 30 s: a new container
    // (processor) sees the end at once; so does a sweep.
    let after = stack.processor(&[]);
    let summary = sweep(&after, now + 2_000).await;
    assert_eq!(summary.notifications_sent, 1, "{summary:?}");
    let released = stack.notifications(WAIT).await;
    assert_eq!(released.len(), 1);
    assert_eq!(released[0].attributes["ruleName"], "noisy_rule");
    assert_eq!(released[0].attributes["transition"], "opened");
    let body: serde_json::Value = serde_json::from_str(&released[0].message).unwrap();
    assert_eq!(body["entries"], 2);
    assert_eq!(body["heldBackBySilences"], 2, "{body}");

    let again = failed(
        with_function_env(&stack, &["unsilence", &silence_id])
            .output()
            .unwrap(),
    );
    assert!(again.contains("no active silence"), "{again}");
}

#[tokio::test]
async fn silences_refuse_what_would_mute_by_accident() {
    let stack = Stack::new("ops-silence-usage").await;
    for args in [
        &["silence", "--for", "1h", "--reason", "no matcher"][..],
        &[
            "silence", "--rule", "r", "--for", "31d", "--reason", "too long",
        ],
        &[
            "silence",
            "--rule",
            "r",
            "--for",
            "soon",
            "--reason",
            "unparsable",
        ],
        &["silence", "--rule", "r", "--reason", "no length"],
    ] {
        let output = with_function_env(&stack, args).output().unwrap();
        assert_eq!(
            output.status.code(),
            Some(2),
            "{args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let everything = out(
        &stack,
        &["silence", "--all", "--for", "30d", "--reason", "quiet week"],
    );
    assert!(
        everything.trim().starts_with("s-"),
        "--all, said explicitly, is accepted"
    );
}

/// `trace` on moto's CloudWatch Logs: the message's every log line
/// (successes included) beside the entry the function stored, the step
/// where it stopped marked; a trace id that is nowhere says so.
#[tokio::test]
async fn trace_shows_one_message_from_publish_to_where_it_stopped() {
    let stack = Stack::new("ops-trace").await;
    let logs = aws_sdk_cloudwatchlogs::Client::new(&stack.sdk);
    let group = format!("AWSIotLogsV2-trace-{}", std::process::id());
    logs.create_log_group()
        .log_group_name(&group)
        .send()
        .await
        .unwrap();
    logs.create_log_stream()
        .log_group_name(&group)
        .log_stream_name("s")
        .send()
        .await
        .unwrap();
    let now = now_ms();
    let at = |n: i64| iot_log_monitor::model::time::format_iot_timestamp(now - 60_000 + n * 1_000);
    let trace = "7e1d2c3b-trace-4a5b-9c8d-0000000000aa";
    let lines = [
        format!(
            r#"{{"timestamp":"{}","logLevel":"INFO","traceId":"{trace}","accountId":"123456789012","status":"Success","eventType":"Publish-In","protocol":"MQTT","topicName":"dt/plant/1","clientId":"plc-7","principalId":"p","sourceIp":"203.0.113.9","sourcePort":50000}}"#,
            at(0)
        ),
        format!(
            r#"{{"timestamp":"{}","logLevel":"INFO","traceId":"{trace}","accountId":"123456789012","status":"Success","eventType":"RuleMatch","topicName":"dt/plant/1","ruleName":"StoreTelemetry","clientId":"plc-7"}}"#,
            at(1)
        ),
        format!(
            r#"{{"timestamp":"{}","logLevel":"ERROR","traceId":"{trace}","accountId":"123456789012","status":"Failure","eventType":"RuleExecution","topicName":"dt/plant/1","ruleName":"StoreTelemetry","ruleAction":"DynamoAction","clientId":"plc-7","reason":"ResourceNotFoundException","details":"Requested resource not found"}}"#,
            at(2)
        ),
        // Another message's line: not part of this trace, though it names
        // the trace id in its topic (FilterLogEvents matches the text).
        format!(
            r#"{{"timestamp":"{}","logLevel":"INFO","traceId":"other-trace","status":"Success","eventType":"Publish-In","topicName":"replies/{trace}","clientId":"x"}}"#,
            at(3)
        ),
    ];
    let events: Vec<_> = lines
        .iter()
        .enumerate()
        .map(|(n, l)| {
            aws_sdk_cloudwatchlogs::types::InputLogEvent::builder()
                .timestamp(now - 60_000 + n as i64 * 1_000)
                .message(l)
                .build()
                .unwrap()
        })
        .collect();
    logs.put_log_events()
        .log_group_name(&group)
        .log_stream_name("s")
        .set_log_events(Some(events))
        .send()
        .await
        .unwrap();
    // The function stored the failure (what the subscription filter passes).
    let mut spec = iot_log_monitor::tooling::encode::BatchSpec::new(&group, "s");
    spec.id_seed = 3;
    let failure = iot_log_monitor::tooling::encode::subscription_event_json(
        &spec,
        [(now - 58_000, lines[2].as_str())],
    );
    run(&stack.processor(&[]), &failure, now).await;

    let shown = out(&stack, &["--output", "table", "trace", trace]);
    let steps: Vec<&str> = shown.lines().skip(1).collect();
    assert_eq!(steps.len(), 3, "{shown}");
    assert!(
        steps[0].contains("Publish-In") && steps[0].contains("Success"),
        "{shown}"
    );
    assert!(steps[1].contains("RuleMatch"), "{shown}");
    assert!(
        steps[2].contains("RuleExecution") && steps[2].contains("stopped here"),
        "{shown}"
    );
    assert!(
        shown.contains(&group),
        "the log group came from the stored entry: {shown}"
    );
    let json = json_lines(&out(&stack, &["--output", "json", "trace", trace]));
    assert_eq!(json.iter().filter(|s| s["stoppedHere"] == true).count(), 1);

    let nowhere = with_function_env(&stack, &["trace", "no-such-trace", "--log-group", &group])
        .output()
        .unwrap();
    assert!(nowhere.status.success());
    assert!(nowhere.stdout.is_empty(), "nothing printed as data");
    assert!(String::from_utf8_lossy(&nowhere.stderr).contains("is nowhere"));
}

/// Names chosen by devices (or by whoever writes to the log group) reach the
/// incident commands: they never drive the terminal or a spreadsheet.
#[tokio::test]
async fn hostile_names_never_drive_the_terminal_or_a_spreadsheet_in_incident_commands() {
    let stack = Stack::new("ops-hostile").await;
    let now = now_ms();
    let rule = "=HYPERLINK(\\\"http://evil\\\")\\u001b[2J\\u202e";
    let client = "\\u001b]0;owned\\u0007dev";
    let line = format!(
        r#"{{"timestamp":"{}","logLevel":"ERROR","traceId":"hostile-1","status":"Failure","eventType":"RuleNotFound","clientId":"{client}","ruleName":"{rule}","details":"x"}}"#,
        iot_log_monitor::model::time::format_iot_timestamp(now)
    );
    run(
        &stack.processor(&[]),
        &event("hostile", 1, &[line], now),
        now,
    )
    .await;
    let id = json_lines(&out(&stack, &["--output", "json", "incidents"]))[0]["incidentId"]
        .as_str()
        .unwrap()
        .to_owned();
    for args in [
        &["--output", "table", "incidents"][..],
        &["--output", "json", "incidents"],
        &["--output", "table", "show", &id],
        &["--output", "json", "show", &id],
    ] {
        let text = out(&stack, args);
        assert!(
            !text
                .chars()
                .any(|c| c == '\u{1b}' || c == '\u{7}' || c == '\u{202e}'),
            "{args:?}: {text:?}"
        );
    }
    // The key cell starts with its part's name ("rule …"), so device text
    // never leads a cell; the escapes hold there too.
    let csv = out(&stack, &["--output", "csv", "incidents"]);
    let row = csv.lines().nth(1).unwrap();
    assert!(!row.split(',').any(|cell| cell.starts_with('=')), "{row}");
    assert!(row.contains("rule "), "{row}");
    assert!(!csv.contains('\u{1b}'), "{csv:?}");
}
