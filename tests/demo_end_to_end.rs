//! `make demo`, run as a test: the same script, asserted on, twice (a second
//! run must work too), and nothing it started may outlive it.

mod common;

use std::net::TcpStream;
use std::process::Command;

use common::repo_path;

struct Run {
    stdout: String,
    dir: std::path::PathBuf,
}

impl Run {
    fn file(&self, name: &str) -> String {
        std::fs::read_to_string(self.dir.join(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
    }
}

fn run_demo(n: u32) -> Run {
    let dir = std::env::temp_dir().join(format!("iot-demo-{}-{n}", std::process::id()));
    // The environment a person's shell would give `make demo`: none of the
    // variables cargo sets for tests, which would make the demo's nested
    // `cargo run` see a different build environment and rebuild every crate.
    let mut command = Command::new("bash");
    command
        .arg(repo_path("scripts/demo.sh"))
        .env_clear()
        .env("DEMO_DIR", &dir);
    for (name, value) in std::env::vars_os() {
        let name_text = name.to_string_lossy();
        let keep = matches!(
            name_text.as_ref(),
            "PATH" | "HOME" | "USER" | "LANG" | "TMPDIR" | "TERM" | "CARGO_HOME" | "RUSTUP_HOME"
        ) || name_text.starts_with("SSL_")
            || name_text.starts_with("PIP_");
        if keep {
            command.env(name, value);
        }
    }
    let output = command
        .stdin(std::process::Stdio::null())
        .output()
        .expect("run scripts/demo.sh");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "demo failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    Run { stdout, dir }
}

fn port_after(text: &str, marker: &str) -> u16 {
    let at = text
        .find(marker)
        .unwrap_or_else(|| panic!("no {marker:?} in the output"))
        + marker.len();
    text[at..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect::<String>()
        .parse()
        .unwrap()
}

fn line_with<'a>(text: &'a str, label: &str) -> Line<'a> {
    Line(
        text.lines()
            .find(|l| l.trim_start().starts_with(label))
            .unwrap_or_else(|| panic!("no line {label:?}")),
    )
}

/// A line of the demo's output; `contains` names the line that failed.
struct Line<'a>(&'a str);

impl Line<'_> {
    fn contains(&self, expected: &str) -> bool {
        assert!(
            self.0.contains(expected),
            "expected {expected:?} in the demo's line:\n{}",
            self.0
        );
        true
    }
}

fn check(run: &Run) {
    let out = &run.stdout;
    // Deployed through the SAM transform and CreateStack, run with the
    // deployed function's environment.
    assert!(line_with(out, "stack iot-log-monitor-demo:").contains("resources created"));
    assert!(
        line_with(out, "function iot-log-monitor-demo-ProcessorFunction-")
            .contains("environment (GetFunctionConfiguration)")
    );
    assert!(line_with(out, "ENTRIES_TABLE=").contains("iot-log-monitor-demo-EntriesTable-"));
    assert!(line_with(out, "control message").contains("ok: 0 entries"));
    assert!(line_with(out, "success traffic").contains(
        "ok: 13 entries, 0 stored, 0 incidents (0 opened, 0 already counted), 0 notifications sent"
    ));
    assert!(line_with(out, "a missing rule ").contains(
        "ok: 2 entries, 2 stored, 1 incidents (1 opened, 0 already counted), 1 notifications sent"
    ));
    assert!(line_with(out, "a throttled rule").contains("30 stored, 1 incidents (1 opened"));
    assert!(line_with(out, "authorization failures")
        .contains("4 stored, 3 incidents (3 opened, 0 already counted), 3 notifications sent"));
    assert!(line_with(out, "a job failure").contains("1 stored, 1 incidents (1 opened"));
    assert!(line_with(out, "garbage lines").contains("3 stored, 0 incidents"));
    assert!(line_with(out, "the missing rule batch, delivered again")
        .contains("2 stored, 1 incidents (0 opened, 1 already counted), 0 notifications sent"));
    assert!(line_with(out, "a broken batch")
        .contains("failed (as Lambda would report it): Error: IotLogMonitor.Decode.Gzip"));
    assert!(
        line_with(out, "the throttled batch again, after it").contains("ok: 30 entries"),
        "the function kept serving"
    );

    let opened = run.file("notifications.txt");
    let subjects: Vec<&str> = opened
        .lines()
        .filter(|l| l.starts_with("Subject: "))
        .collect();
    assert_eq!(subjects.len(), 8, "one per incident: {subjects:?}");
    assert!(subjects
        .contains(&"Subject: [AWS IoT] OPEN RuleNotFound: rule \"example_rule\" (2 entries)"));
    assert!(
        opened.contains("Messages were published to a rule that does not exist"),
        "the email text is shown"
    );
    assert!(line_with(out, "a sweep (not quiet yet").contains("ok: sweep: 8 open, 0 resolved"));
    let resolved = run.file("resolved.txt");
    let resolved_subjects: Vec<&str> = resolved
        .lines()
        .filter(|l| l.starts_with("Subject: "))
        .collect();
    assert_eq!(resolved_subjects.len(), 8, "{resolved_subjects:?}");
    assert!(
        resolved_subjects
            .iter()
            .all(|s| s.starts_with("Subject: [AWS IoT] RESOLVED ")),
        "{resolved_subjects:?}"
    );
    assert!(line_with(out, "another sweep (nothing left to say)")
        .contains("ok: sweep: 0 open, 0 resolved, 0 notifications sent"));

    // The operator's commands on what the demo's function wrote.
    let incidents = run.file("incidents.txt");
    assert_eq!(
        incidents
            .lines()
            .filter(|l| l.contains(" resolved "))
            .count(),
        8,
        "{incidents}"
    );
    assert!(run
        .file("show.txt")
        .contains("key           rule \"example_rule\""));
    assert!(run.file("show.txt").contains("Activity (entries per"));
    assert!(run.file("silences.txt").contains("rule=\"legacy_rule\""));
    assert!(
        line_with(out, "a legacy_rule batch (silenced)")
            .contains("1 stored, 1 incidents (1 opened, 0 already counted), 0 notifications sent"),
        "held back by the silence"
    );
    assert!(run
        .file("show-silenced.txt")
        .contains("held back     1 notification(s) by silences"));
    let released = run.file("released.txt");
    assert!(
        released.contains("Subject: [AWS IoT] OPEN RuleNotFound: rule \"legacy_rule\""),
        "{released}"
    );
    assert!(run
        .file("show-acked.txt")
        .contains("acknowledged  by \"demo\""));
    let trace = run.file("trace.txt");
    assert!(
        trace.contains("Publish-In") && trace.contains("◀ stopped here"),
        "{trace}"
    );

    let listed: Vec<serde_json::Value> = run
        .file("list.json")
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(listed.len(), 2 + 30 + 4 + 1 + 3 + 3);
    assert!(run.file("summary.txt").contains("43 entries"));
    assert!(run
        .file("get.txt")
        .contains("ruleName               example_rule"));
    // The failure path as Lambda runs it: three attempts, then the record
    // of the last one in the failure queue; redrive cannot mend it and keeps it.
    for attempt in 1..=3 {
        assert!(
            line_with(out, &format!("the broken batch, attempt {attempt}"))
                .contains("failed (as Lambda would report it): Error: IotLogMonitor.Decode.Gzip")
        );
    }
    let dry = run.file("redrive-dry-run.txt");
    assert!(
        dry.contains("would process")
            && dry.contains("failed 3 time(s) with IotLogMonitor.Decode.Gzip"),
        "{dry}"
    );
    let redrive = run.file("redrive.txt");
    assert!(
        redrive.contains("failed ") && redrive.contains("(left where it is)"),
        "{redrive}"
    );
    assert!(run
        .file("redrive.err")
        .contains("1 batch(es) could not be processed and were kept"));

    let summaries = run.file("summaries.txt");
    let count = |pattern: &str| summaries.lines().filter(|l| l.contains(pattern)).count();
    assert_eq!(
        count("message_type=\"DATA_MESSAGE\"") + count("CONTROL_MESSAGE"),
        11
    );
    assert!(count("message_type=\"SWEEP\"") >= 4, "{summaries}");
    assert_eq!(
        count("batch failed"),
        4,
        "the broken batch, then its three attempts"
    );
    let metrics = run.file("metrics.jsonl");
    assert_eq!(
        metrics.lines().count(),
        summaries.lines().count(),
        "one EMF record per invocation"
    );
    for record in metrics.lines() {
        let record: serde_json::Value = serde_json::from_str(record).unwrap();
        assert_eq!(
            record["_aws"]["CloudWatchMetrics"][0]["Namespace"],
            "IotLogMonitor"
        );
    }

    let function_log = run.file("lambda.log");
    assert!(function_log.contains("batch processed"));
    assert!(
        !function_log.contains("demo-secret-never-logged"),
        "the function's log holds no credentials"
    );

    for marker in ["moto on 127.0.0.1:", "cargo lambda watch, 127.0.0.1:"] {
        let port = port_after(out, marker);
        assert!(
            TcpStream::connect(("127.0.0.1", port)).is_err(),
            "something still listens on {port} ({marker})"
        );
    }
}

#[test]
fn make_demo_runs_end_to_end_and_again() {
    for n in 0..2 {
        let run = run_demo(n);
        check(&run);
        std::fs::remove_dir_all(&run.dir).ok();
    }
}
