//! A command shown in a notification runs only what it says: every command
//! that names a device's value, as the email, the JSON body and the chat
//! copy show it, run in a real bash (and dash) with a fake `aws` and
//! `iot-incidents` on `PATH`, for names made of everything that has broken
//! shell quoting before (quotes, `$( )`, backquotes, newlines, U+2018–U+201B,
//! bidi controls, `!`, any NUL-free Unicode).

use std::path::PathBuf;
use std::process::Command;

use proptest::prelude::*;

use super::*;
use crate::incident::key::IncidentKey;
use crate::incident::lifecycle::tests::open_incident;
use crate::model::category::Category;
use crate::notify::hints::{hint_within, ShownCommand};

/// A folder with fake `aws` and `iot-incidents` that append their
/// arguments, NUL-separated, to `$ARGV_LOG`, and nothing else: `PATH` is
/// this folder only, so any other program a command started would fail
/// with "command not found" on stderr.
struct FakeTools {
    dir: PathBuf,
}

impl FakeTools {
    fn new() -> Self {
        let dir = std::env::temp_dir().join(format!(
            "shell-tests-{}-{}",
            std::process::id(),
            fastrand::u64(..)
        ));
        let bin = dir.join("bin");
        std::fs::create_dir_all(&bin).unwrap();
        for tool in ["aws", "iot-incidents"] {
            let path = bin.join(tool);
            std::fs::write(
                &path,
                format!("#!/bin/bash\nprintf '%s\\0' \"$#\" {tool} \"$@\" >> \"$ARGV_LOG\"\n"),
            )
            .unwrap();
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        Self { dir }
    }

    /// Runs `command` as `shell -c` would from a paste, in an empty folder;
    /// the argument vectors of the fake tools it ran, and what else it did.
    fn run(&self, shell: &str, command: &str) -> Ran {
        let work = self.dir.join(format!("work-{}", fastrand::u64(..)));
        std::fs::create_dir(&work).unwrap();
        let log = self.dir.join(format!("argv-{}", fastrand::u64(..)));
        std::fs::write(&log, b"").unwrap();
        let out = Command::new(shell)
            .arg("-c")
            .arg(command)
            .current_dir(&work)
            .env_clear()
            .env("PATH", self.dir.join("bin"))
            .env("ARGV_LOG", &log)
            .env("LANG", "C.UTF-8")
            .output()
            .unwrap_or_else(|e| panic!("{shell}: {e}"));
        let logged = std::fs::read(&log).unwrap();
        // Each call: its argument count, the tool, its arguments, each
        // ended by NUL (arguments may hold newlines, never NUL).
        let mut fields = logged
            .split(|b| *b == 0)
            .map(|f| String::from_utf8_lossy(f).into_owned());
        let mut calls = Vec::new();
        while let Some(count) = fields.next().filter(|c| !c.is_empty()) {
            let count: usize = count.parse().expect("an argument count");
            calls.push(fields.by_ref().take(count + 1).collect::<Vec<_>>());
        }
        let left = std::fs::read_dir(&work).unwrap().count();
        Ran {
            calls,
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
            success: out.status.success(),
            files_left: left,
        }
    }
}

impl Drop for FakeTools {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[derive(Debug)]
struct Ran {
    calls: Vec<Vec<String>>,
    stdout: String,
    stderr: String,
    success: bool,
    files_left: usize,
}

/// What a shell must run for `command`: its template's words, each
/// `{name}` replaced by the raw value (written without any quoting), and
/// each reader's `<placeholder>` by `PLACEHOLDER`. This is the meaning of
/// the command, found without the quoting under test.
fn intended_argv(command: &ShownCommand) -> Vec<String> {
    command
        .template
        .split(' ')
        .map(|word| {
            let word = placeholders_filled(word);
            let mut out = String::new();
            let mut rest = word.as_str();
            while let Some(open) = rest.find('{') {
                let close = rest[open..].find('}').expect("closed") + open;
                out.push_str(&rest[..open]);
                let name = &rest[open + 1..close];
                // A value withheld or absent: the reader's `<…>` stands
                // there, filled like the others.
                match command.values.iter().find(|(n, _)| *n == name) {
                    Some((_, value)) => out.push_str(value),
                    None => out.push_str("PLACEHOLDER"),
                }
                rest = &rest[close + 1..];
            }
            out.push_str(rest);
            out
        })
        .collect()
}

/// `text` with every `<placeholder>` (the table's, for the reader to fill
/// in; device values never hold a raw `<`) replaced by `PLACEHOLDER`.
fn placeholders_filled(text: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(open) = rest.find('<') {
        let close = rest[open..].find('>').expect("a closed placeholder") + open;
        out.push_str(&rest[..open]);
        out.push_str("PLACEHOLDER");
        rest = &rest[close + 1..];
    }
    out.push_str(rest);
    out
}

/// The backquoted spans of `text` that start a command.
fn command_spans(text: &str) -> Vec<&str> {
    text.split('`')
        .skip(1)
        .step_by(2)
        .filter(|s| s.starts_with("aws ") || s.starts_with("iot-incidents "))
        .collect()
}

fn incident_for(kind: KeyKind, category: Category, first: &str, second: &str) -> IncidentState {
    let mut i = open_incident();
    i.key = IncidentKey {
        category,
        kind,
        first: first.to_owned(),
        second: Some(second.to_owned())
            .filter(|_| kind != KeyKind::Rule && kind != KeyKind::LogGroup),
    };
    if kind == KeyKind::LogGroup {
        i.log_group = first.to_owned();
    }
    i
}

struct Shown {
    email_check: String,
    json_check: String,
    chat_steps: Vec<String>,
    show_line: String,
}

fn shown(n: &RenderedNotification) -> Shown {
    let structure: serde_json::Value = serde_json::from_str(&n.message).unwrap();
    let email = structure["email"].as_str().unwrap();
    let json: serde_json::Value =
        serde_json::from_str(structure["default"].as_str().unwrap()).unwrap();
    let chat: serde_json::Value =
        serde_json::from_str(structure["https"].as_str().unwrap()).unwrap();
    Shown {
        email_check: email
            .lines()
            .find_map(|l| l.strip_prefix("What to check: "))
            .unwrap_or_default()
            .to_owned(),
        json_check: json["check"].as_str().unwrap().to_owned(),
        chat_steps: chat["content"]["nextSteps"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s.as_str().unwrap().to_owned())
            .collect(),
        show_line: email.lines().last().unwrap().to_owned(),
    }
}

/// The hint the notification used: the one whose check it shows.
fn hint_shown(key: &IncidentKey, json_check: &str) -> crate::notify::hints::Hint {
    BUDGETS
        .iter()
        .map(|b| hint_within(key, b.part))
        .find(|h| {
            json_check == h.check
                || json_check.starts_with(&format!("{}; names too long to show here", h.check))
        })
        .expect("the notification's check is one of the hint's")
}

fn assert_runs_exactly(tools: &FakeTools, command: &str, argv: &[String]) {
    let ran = tools.run("/bin/bash", command);
    assert!(
        ran.success && ran.stderr.is_empty() && ran.stdout.is_empty() && ran.files_left == 0,
        "bash ran more than {argv:?} for {command:?}: {ran:?}"
    );
    assert_eq!(ran.calls, [argv.to_vec()], "bash: {command:?}");
    // dash (Debian 12's sh) predates `$'…'`: the value may differ there,
    // but it stays one argument and nothing else runs.
    let ran = tools.run("/bin/dash", command);
    assert!(
        ran.success && ran.stderr.is_empty() && ran.stdout.is_empty() && ran.files_left == 0,
        "dash ran more than one command for {command:?}: {ran:?}"
    );
    assert_eq!(ran.calls.len(), 1, "dash: {command:?}");
    assert_eq!(ran.calls[0].len(), argv.len(), "dash: {command:?} {ran:?}");
}

/// Checks every command the notification of `incident` shows.
fn check_notification(tools: &FakeTools, incident: &IncidentState) -> usize {
    let n = render(incident, Transition::Opened, None);
    let s = shown(&n);
    let hint = hint_shown(&incident.key, &s.json_check);
    let chat_check = s
        .chat_steps
        .iter()
        .find(|step| step.starts_with("What to check: "))
        .expect("a check step");
    // Every command each copy shows that names a device value (it holds a
    // quote: the table's own commands hold none) runs in a real shell, and
    // runs exactly what its template means with the raw values.
    let from_chat = |span: &str| span.replace('\u{2039}', "<").replace('\u{203A}', ">");
    let mut spans: Vec<String> = command_spans(&s.email_check)
        .into_iter()
        .chain(command_spans(&s.json_check))
        .map(str::to_owned)
        .chain(command_spans(chat_check).into_iter().map(from_chat))
        .filter(|span| span.contains('\'') && !span.starts_with("iot-incidents show "))
        .collect();
    spans.sort();
    spans.dedup();
    for span in &spans {
        let Some(command) = hint.commands.iter().find(|c| &c.text == span) else {
            let ran = tools.run("/bin/bash", &placeholders_filled(span));
            panic!(
                "{span:?} is not a command of {:?}; in bash it ran {ran:?}",
                hint.commands
            );
        };
        assert_runs_exactly(tools, &placeholders_filled(span), &intended_argv(command));
    }
    // And each command is shown whole in every copy: in chat as it is (the
    // reader's placeholders in look-alike brackets), or not at all.
    for command in &hint.commands {
        let quoted = format!("`{}`", command.text);
        assert!(s.email_check.contains(&quoted), "email: {}", s.email_check);
        assert!(s.json_check.contains(&quoted), "json: {}", s.json_check);
        let in_chat = format!(
            "`{}`",
            command
                .text
                .replace('<', "\u{2039}")
                .replace('>', "\u{203A}")
        );
        assert!(
            chat_check.contains(&in_chat) || chat_check.contains("too long for chat"),
            "chat: {chat_check}"
        );
        if command.values.is_empty() {
            // No device value in it (withheld or absent): run it too.
            assert_runs_exactly(
                tools,
                &placeholders_filled(&command.text),
                &intended_argv(command),
            );
        }
    }
    let ran = spans.len();
    // The incident's own command, as the email's last line and the chat show it.
    let show = s
        .show_line
        .strip_prefix("The incident:")
        .map(str::trim_start)
        .expect("the show line");
    if hint.withheld {
        assert!(
            s.json_check.contains(&format!("`{show}`")),
            "{}",
            s.json_check
        );
    }
    if show.ends_with("<incident-id>") {
        // Longer than a notification keeps: not shown cut.
        assert!(incident.incident_id.len() > 40, "{show}");
    } else {
        assert_runs_exactly(
            tools,
            show,
            &[
                "iot-incidents".into(),
                "show".into(),
                incident.incident_id.clone(),
            ],
        );
    }
    let show_in_chat = show.replace('<', "\u{2039}").replace('>', "\u{203A}");
    assert!(
        s.chat_steps
            .iter()
            .any(|step| step.contains(&format!("`{show_in_chat}`"))),
        "{:?}",
        s.chat_steps
    );
    ran + 1
}

/// Names built from what broke quoting before, and any NUL-free text.
fn hostile_name() -> impl Strategy<Value = String> {
    let pieces = prop::sample::select(vec![
        "'",
        "\"",
        "`",
        "$(",
        ")",
        "${HOME}",
        ";",
        "&",
        "|",
        "<",
        ">",
        "\\",
        "!",
        "!!",
        "\n",
        "\r",
        "\t",
        " ",
        "#",
        "*",
        "~",
        "[",
        "]",
        "{",
        "}",
        "%",
        "\u{1b}[2J",
        "\u{7}",
        "\u{202e}",
        "\u{2018}",
        "\u{2019}",
        "\u{201a}",
        "\u{201b}",
        "\u{201c}",
        "\u{200b}",
        "\u{85}",
        "é",
        "日本",
        "🚨",
        "ʀᴇsᴏʟᴠᴇᴅ",
        "touch PWNED",
        "a",
        "rule_1",
        "\\x27",
        "'\\''",
    ]);
    prop_oneof![
        3 => prop::collection::vec(pieces, 1..12).prop_map(|p| p.concat()),
        1 => "[^\u{0}]{1,40}",
        // Too long to show whole in a notification.
        1 => prop::collection::vec(prop::sample::select(vec!["x", "'", "$(", "\u{2018}"]), 100..140)
            .prop_map(|p| p.concat()),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn a_command_shown_in_a_notification_runs_only_what_it_says(
        first in hostile_name(),
        second in hostile_name(),
        id in prop_oneof![Just("0123456789abcdef-3".to_owned()), hostile_name()],
    ) {
        let tools = FakeTools::new();
        let mut ran = 0;
        for (kind, category) in [
            (KeyKind::Rule, Category::RuleNotFound),
            (KeyKind::RuleAction, Category::Failure),
            (KeyKind::Job, Category::Failure),
            (KeyKind::ApiCall, Category::Failure),
            (KeyKind::LogGroup, Category::Unparseable),
        ] {
            let mut incident = incident_for(kind, category, &first, &second);
            // The show command names the id as it was stored; a NUL
            // cannot be shown (tested elsewhere).
            incident.incident_id = id.clone();
            ran += check_notification(&tools, &incident);
        }
        prop_assert!(ran >= 5);
    }
}

#[test]
fn the_red_team_s_names_run_nothing() {
    let tools = FakeTools::new();
    for (kind, category, first, second) in [
        (
            KeyKind::Rule,
            Category::RuleNotFound,
            "a'; touch PWNED; echo '",
            "",
        ),
        (
            KeyKind::Job,
            Category::Failure,
            "UpdateJobExecution",
            "j'$(touch PWNED_job)'",
        ),
        (KeyKind::Rule, Category::RuleNotFound, &*"L".repeat(485), ""),
        (KeyKind::Rule, Category::RuleNotFound, "a[1]<b>&c`d`", ""),
    ] {
        let incident = incident_for(kind, category, first, second);
        assert!(
            check_notification(&tools, &incident) >= 1,
            "{first} {second}"
        );
    }
}
