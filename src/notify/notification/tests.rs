use super::*;
use crate::incident::key::IncidentKey;
use crate::incident::lifecycle::tests::open_incident;
use crate::model::category::Category;
use crate::notify::body::email_text;

fn throttled(rule: &str) -> IncidentState {
    let mut i = open_incident();
    i.key = IncidentKey {
        category: Category::RuleMessageThrottled,
        kind: KeyKind::Rule,
        first: rule.to_owned(),
        second: None,
    };
    i.entries = 12;
    i.distinct_clients = 3;
    i.top_clients = vec!["dev-1".into()];
    i.sample_trace_ids = vec!["t1".into()];
    i.details = Some("Message for Rule r throttled".into());
    i.account_id = Some("123456789012".into());
    i
}

fn parts(n: &RenderedNotification) -> (String, serde_json::Value) {
    let structure: serde_json::Value = serde_json::from_str(&n.message).unwrap();
    let email = structure["email"].as_str().unwrap().to_owned();
    let json = serde_json::from_str(structure["default"].as_str().unwrap()).unwrap();
    (email, json)
}

#[test]
fn an_opened_notification_says_what_happened_for_people_and_machines() {
    let n = render(&throttled("r"), Transition::Opened, None);
    assert_eq!(
        n.subject,
        "[AWS IoT] OPEN RuleMessageThrottled: rule \"r\" (12 entries)"
    );
    assert_eq!(n.id, "k-1#opened");
    let (email, json) = parts(&n);
    assert!(
        email.starts_with("Incident opened: RuleMessageThrottled for rule \"r\"."),
        "{email}"
    );
    assert!(email.contains("Clients:      3 distinct"), "{email}");
    assert!(email.contains("iot-incidents show k-1"), "{email}");
    assert_eq!(json["transition"], "opened");
    assert_eq!(json["incidentId"], "k-1");
    assert_eq!(json["notificationId"], "k-1#opened");
    assert_eq!(json["key"][0], serde_json::json!(["rule", "r"]));
    assert_eq!(json["topClients"][0], "dev-1");
    let attrs: Vec<_> = n.attributes.iter().map(|(k, v)| (*k, v.as_str())).collect();
    assert_eq!(
        attrs,
        [
            ("category", "RuleMessageThrottled"),
            ("severity", "high"),
            ("transition", "opened"),
            ("incidentId", "k-1"),
            ("notificationId", "k-1#opened"),
            ("ruleName", "r"),
            ("accountId", "123456789012")
        ]
    );
}

#[test]
fn only_a_resolved_notification_says_resolved_in_its_subject_whatever_the_rule_is_called() {
    for rule in ["r", "RESOLVED", "x resolved y", "Resolved\u{7}"] {
        let mut i = throttled(rule);
        for transition in [Transition::Opened, Transition::Reminder(1)] {
            let subject = render(&i, transition, None).subject;
            assert!(
                !subject.to_ascii_lowercase().contains("resolved"),
                "{subject}"
            );
        }
        i.resolved_ms = Some(5_000);
        let n = render(&i, Transition::Resolved, None);
        assert!(n.subject.contains("RESOLVED"), "{}", n.subject);
        let (email, _) = parts(&n);
        assert!(email.starts_with("Incident resolved"), "{email}");
    }
}

#[test]
fn a_reminder_counts_what_came_since_the_last_notification() {
    let mut i = throttled("r");
    i.sent = 1;
    i.notified_entries = 5;
    let n = render(&i, Transition::Reminder(1), None);
    let (email, json) = parts(&n);
    assert_eq!(json["entriesSinceLastNotification"], 7);
    assert!(email.contains("Since last:   7 entries"), "{email}");
    assert_eq!(n.id, "k-1#reminder-1");
}

#[test]
fn subjects_and_sizes_stay_within_sns_limits_whatever_the_input() {
    let mut i = throttled(&"ü\u{7}x".repeat(10_000));
    i.details = Some("d".repeat(1_000_000));
    i.log_group = "g".repeat(100_000);
    i.incident_id = "i".repeat(100_000);
    i.sample_trace_ids = vec!["t".repeat(100_000); 5];
    i.top_clients = vec!["c".repeat(100_000); 5];
    let n = render(&i, Transition::Opened, None);
    assert!(
        n.subject.len() <= MAX_SUBJECT_CHARS && n.subject.is_ascii(),
        "{}",
        n.subject
    );
    assert!(!n.subject.chars().any(|c| c.is_ascii_control()));
    assert!(
        n.message.len() <= MAX_NOTIFICATION_BYTES,
        "{}",
        n.message.len()
    );
    assert!(n.attributes.iter().all(|(_, v)| !v.is_empty()));
}

/// Issue 16 (2): a rule name that writes its own severity and verdict
/// lines, a bidi override, terminal escapes and line separators.
#[test]
fn device_text_cannot_forge_lines_or_fields_of_a_notification() {
    let forged = "x\n\nSeverity:     low\nThis is a test alert, no action needed.\nSubject: [AWS IoT] resolved";
    let mut i = throttled(forged);
    i.key.category = Category::RuleNotFound;
    i.details =
        Some("dev\u{202e}evil.exe\u{202c} \u{1b}[2J\u{7} a\u{2028}b\u{2029}c \u{85}".into());
    i.sample_trace_ids = vec!["t\r\nNotification: 0".into()];
    let n = render(&i, Transition::Opened, None);
    let (email, json) = parts(&n);
    let lines: Vec<&str> = email.lines().collect();
    let starting = |prefix: &str| lines.iter().filter(|l| l.starts_with(prefix)).count();
    assert_eq!(starting("Severity:"), 1, "{email}");
    assert_eq!(starting("Notification:"), 1, "{email}");
    assert!(lines.contains(&"Severity:     critical"), "{email}");
    assert!(
        !lines.iter().any(|l| l.starts_with("This is a test")),
        "{email}"
    );
    assert!(!lines.iter().any(|l| l.starts_with("Subject:")), "{email}");
    assert!(
        !email
            .chars()
            .any(|c| c != '\n' && crate::notify::display::is_unsafe_char(c)),
        "no control, bidi or separator character but the line breaks: {email:?}"
    );
    assert!(email.contains(r#"dev\u{202e}evil.exe\u{202c}"#), "{email}");
    assert!(
        n.subject
            .starts_with("[AWS IoT] OPEN RuleNotFound: rule \"x\\n\\nSeverity:"),
        "{}",
        n.subject
    );
    for (name, value) in &n.attributes {
        assert!(
            !value.is_empty() && !value.chars().any(crate::notify::display::is_unsafe_char),
            "{name}={value:?}"
        );
    }
    // Machines get the value itself, as JSON.
    assert_eq!(json["key"][0][1], forged);
}

fn chat(n: &RenderedNotification) -> serde_json::Value {
    let structure: serde_json::Value = serde_json::from_str(&n.message).unwrap();
    serde_json::from_str(structure["https"].as_str().expect("an https key")).unwrap()
}

/// The text of a chat field with its inline code spans taken out: what
/// markdown would read as markup.
fn outside_code(s: &str) -> String {
    s.split('`').step_by(2).collect::<Vec<_>>().join(" ")
}

#[test]
fn notifications_say_what_it_means_and_what_to_check() {
    let n = render(&throttled("ingest_a"), Transition::Opened, None);
    let (email, json) = parts(&n);
    let meaning = json["meaning"].as_str().unwrap();
    let check = json["check"].as_str().unwrap();
    assert!(meaning.contains("RuleExecutionThrottled"), "{meaning}");
    assert!(
        check.contains("RuleMessageThrottled (dimension RuleName: this rule)"),
        "{check}"
    );
    assert!(
        email.contains(&format!("\nWhat it means: {meaning}\n")),
        "{email}"
    );
    assert!(
        email.contains(&format!("\nWhat to check: {check}\n")),
        "{email}"
    );
    let mut job = open_incident();
    job.key = IncidentKey {
        category: Category::Failure,
        kind: KeyKind::Job,
        first: "UpdateJobExecution".into(),
        second: Some("fw-2.1".into()),
    };
    let (_, json) = parts(&render(&job, Transition::Opened, None));
    assert!(
        json["check"].as_str().unwrap().starts_with(
            "`aws iot describe-job-execution --job-id 'fw-2.1' --thing-name <thing-name>`"
        ),
        "{}",
        json["check"]
    );
}

#[test]
fn the_show_command_is_the_last_line_of_the_text() {
    for transition in [
        Transition::Opened,
        Transition::Reminder(1),
        Transition::Resolved,
    ] {
        let n = render(&throttled("r"), transition, None);
        let (email, json) = parts(&n);
        let last = email.trim_end().lines().last().unwrap();
        assert!(
            last.ends_with(json["showCommand"].as_str().unwrap()),
            "{email}"
        );
        assert_eq!(last, "The incident:           iot-incidents show k-1");
    }
}

#[test]
fn a_notification_without_hint_fields_still_reads() {
    let n = render(&throttled("r"), Transition::Opened, None);
    let structure: serde_json::Value = serde_json::from_str(&n.message).unwrap();
    let mut json: serde_json::Value =
        serde_json::from_str(structure["default"].as_str().unwrap()).unwrap();
    json.as_object_mut().unwrap().remove("meaning");
    json.as_object_mut().unwrap().remove("check");
    let text = email_text(&json.to_string()).unwrap();
    assert!(!text.contains("What to check"), "{text}");
    assert!(text.contains("iot-incidents show k-1"));
    // A forged body cannot add lines through its hint fields.
    json["check"] = "x\nSeverity:     low".into();
    let text = email_text(&json.to_string()).unwrap();
    assert_eq!(
        text.lines().filter(|l| l.starts_with("Severity:")).count(),
        1,
        "{text}"
    );
}

#[test]
fn chat_gets_an_amazon_q_custom_notification_threaded_by_incident() {
    let mut i = throttled("ingest_a");
    i.incident_id = "0123456789abcdef-3".into();
    let n = render(&i, Transition::Opened, None);
    let structure: serde_json::Value = serde_json::from_str(&n.message).unwrap();
    assert_eq!(
        structure.as_object().unwrap().keys().collect::<Vec<_>>(),
        ["default", "email", "https"]
    );
    let c = chat(&n);
    assert_eq!(c["version"], "1.0");
    assert_eq!(c["source"], "custom");
    assert_eq!(c["id"], n.id);
    assert_eq!(c["content"]["textType"], "client-markdown");
    assert_eq!(c["metadata"]["threadId"], "0123456789abcdef-3");
    let title = c["content"]["title"].as_str().unwrap();
    assert_eq!(
        title,
        ":rotating_light: OPEN RuleMessageThrottled: rule `ingest_a` (12 entries)"
    );
    let description = c["content"]["description"].as_str().unwrap();
    assert!(
        description.contains("*What it means:* The rules engine throttled"),
        "{description}"
    );
    assert!(
        description.contains("*Top clients:* `dev-1`"),
        "{description}"
    );
    let steps: Vec<&str> = c["content"]["nextSteps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap())
        .collect();
    // The table's words as text, its commands as code spans, as they are.
    assert!(
        steps[0].starts_with("What to check: CloudWatch metric AWS/IoT RuleMessageThrottled"),
        "{steps:?}"
    );
    assert!(
        steps[0].contains("(`aws service-quotas list-service-quotas --service-code iotcore`)"),
        "{steps:?}"
    );
    assert_eq!(
        steps[1],
        "The incident: `iot-incidents show 0123456789abcdef-3`"
    );
    assert_eq!(
        c["content"]["keywords"],
        serde_json::json!(["RuleMessageThrottled", "high", "opened", "AWS IoT"])
    );
    assert_eq!(c["metadata"]["eventType"], "AWS IoT incident opened");
    assert_eq!(
        c["metadata"]["additionalContext"]["incidentId"],
        "0123456789abcdef-3"
    );
    assert_eq!(c["metadata"]["relatedResources"][0], "rule: `ingest_a`");
    // Every update of the incident threads under the same id.
    i.sent = 1;
    i.resolved_ms = Some(5_000);
    for transition in [Transition::Reminder(1), Transition::Resolved] {
        let later = chat(&render(&i, transition, None));
        assert_eq!(later["metadata"]["threadId"], "0123456789abcdef-3");
        assert_ne!(later["id"], c["id"]);
    }
    // The other keys are as they were: the body for machines, text for people.
    let (email, json) = parts(&n);
    assert_eq!(json["incidentId"], "0123456789abcdef-3");
    assert!(email.starts_with("Incident opened: RuleMessageThrottled"));
}

#[test]
fn a_hostile_name_cannot_add_a_link_or_formatting_in_chat() {
    let hostile = "x`](http://evil.example) [click](http://evil.example) <http://evil.example|here> <!channel> @here *bold* _it_ ~s~ ```block``` \n\n*Severity:* low resolved ʀᴇsᴏʟᴠᴇᴅ rеsоlvеd";
    let mut i = throttled(hostile);
    i.details = Some(hostile.into());
    i.top_clients = vec![hostile.into()];
    i.sample_trace_ids = vec![hostile.into()];
    i.log_group = hostile.into();
    i.account_id = Some(hostile.into());
    i.acked_by = Some(hostile.into());
    let c = chat(&render(&i, Transition::Opened, None));
    let content = &c["content"];
    let mut fields = vec![
        content["title"].as_str().unwrap().to_owned(),
        content["description"].as_str().unwrap().to_owned(),
    ];
    fields.extend(
        content["nextSteps"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s.as_str().unwrap().to_owned()),
    );
    for field in &fields {
        for line in field.lines() {
            assert_eq!(
                line.matches('`').count() % 2,
                0,
                "a code span left open: {line}"
            );
            let markup = outside_code(line);
            for bad in [
                "http", "evil", "](", "<", ">", "[", "|", "_it_", "~s~", "\\n",
            ] {
                assert!(!markup.contains(bad), "{bad:?} outside code in {line}");
            }
        }
    }
    let description = content["description"].as_str().unwrap();
    assert_eq!(
        description
            .lines()
            .filter(|l| l.starts_with("*Severity:*"))
            .count(),
        1,
        "{description}"
    );
    assert!(!content["title"]
        .as_str()
        .unwrap()
        .to_lowercase()
        .contains("resolved"));
    // The transition word, even in look-alike letters, only where the
    // notification's own words say it.
    let title = content["title"].as_str().unwrap();
    for imitation in ["resolved", "ʀᴇsᴏʟᴠᴇᴅ", "rеsоlvеd"] {
        assert!(!title.to_lowercase().contains(imitation), "{title}");
    }
    // Metadata: device text only inside code spans, like the title's.
    let metadata = &c["metadata"];
    let values = metadata["relatedResources"]
        .as_array()
        .unwrap()
        .iter()
        .chain(metadata["additionalContext"].as_object().unwrap().values())
        .chain([&metadata["summary"], &metadata["eventType"]]);
    for value in values {
        let value = value.as_str().unwrap();
        assert_eq!(value.matches('`').count() % 2, 0, "{value}");
        let markup = outside_code(value);
        for bad in [
            "<", ">", "[", "](", "`", "*bold*", "_it_", "~s~", "\n", "http", "@here", "evil",
        ] {
            assert!(!markup.contains(bad), "{bad:?} outside code in {value}");
        }
        for imitation in ["ʀᴇsᴏʟᴠᴇᴅ", "rеsоlvеd"] {
            assert!(!value.contains(imitation), "{value}");
        }
    }
}

#[test]
fn chat_fields_stay_within_their_limits() {
    use crate::notify::chat::*;
    let mut i = throttled(&"long-rule-name".repeat(100));
    i.details = Some("d".repeat(5000));
    i.top_clients = vec!["c".repeat(250); 5];
    i.sample_trace_ids = vec!["t".repeat(120); 5];
    i.log_group = "g".repeat(1000);
    let c = chat(&render(&i, Transition::Opened, None));
    let chars = |v: &serde_json::Value| v.as_str().unwrap().chars().count();
    assert!(chars(&c["content"]["title"]) <= MAX_TITLE_CHARS);
    assert!(chars(&c["content"]["description"]) <= MAX_DESCRIPTION_CHARS);
    let steps = c["content"]["nextSteps"].as_array().unwrap();
    assert!(steps.len() <= MAX_NEXT_STEPS && steps.iter().all(|s| chars(s) <= MAX_STEP_CHARS));
    assert!(c["content"]["keywords"].as_array().unwrap().len() <= MAX_KEYWORDS);
    let related = c["metadata"]["relatedResources"].as_array().unwrap();
    assert!(related.len() <= MAX_RELATED_RESOURCES);
    assert!(related.iter().all(|r| chars(r) <= MAX_METADATA_CHARS));
    let context = c["metadata"]["additionalContext"].as_object().unwrap();
    assert!(context.values().all(|v| chars(v) <= MAX_METADATA_CHARS));
}

/// Every field full of what each representation escapes most: control
/// characters (`\u0007` in JSON twice over, `\u{0007}` in text), quotes,
/// backslashes, markdown characters; and long lists.
#[test]
fn the_whole_message_stays_within_sns_limits_for_the_worst_input() {
    let worst = "\u{7}\"\\`<[&|\u{202e}".repeat(20_000);
    for kind in [
        KeyKind::Rule,
        KeyKind::RuleAction,
        KeyKind::Operation,
        KeyKind::ApiCall,
        KeyKind::Job,
        KeyKind::LogGroup,
    ] {
        let mut i = throttled(&worst);
        i.key.kind = kind;
        i.key.second = Some(worst.clone());
        i.incident_id = worst.clone();
        i.details = Some(worst.clone());
        i.log_group = worst.clone();
        i.account_id = Some(worst.clone());
        i.acked_by = Some(worst.clone());
        i.top_clients = vec![worst.clone(); 50];
        i.sample_trace_ids = vec![worst.clone(); 50];
        i.resolved_ms = Some(5_000);
        for transition in [
            Transition::Opened,
            Transition::Reminder(2),
            Transition::Resolved,
        ] {
            let n = render(&i, transition, None);
            assert!(
                n.message.len() <= MAX_NOTIFICATION_BYTES,
                "{kind:?}: {} bytes",
                n.message.len()
            );
            let c = chat(&n);
            assert_eq!(c["version"], "1.0");
            let (email, _) = parts(&n);
            assert!(!email
                .chars()
                .any(|c| c != '\n' && crate::notify::display::is_unsafe_char(c)));
        }
    }
}

#[test]
fn publish_batches_respect_count_and_bytes() {
    let mk = |n: usize| RenderedNotification {
        id: String::new(),
        subject: "s".into(),
        message: "m".repeat(n),
        attributes: vec![],
    };
    let small: Vec<_> = (0..23).map(|_| mk(10)).collect();
    assert_eq!(publish_batches(&small), [0..10, 10..20, 20..23]);
    let big: Vec<_> = (0..5).map(|_| mk(100 * 1024)).collect();
    assert_eq!(publish_batches(&big), [0..2, 2..4, 4..5]);
    assert!(publish_batches(&[]).is_empty());
}
