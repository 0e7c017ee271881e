//! Whatever arrives, decoding, parsing and classification answer with a
//! clear error or an `Unparseable` entry, never a panic; bombs stay bounded.

use std::io::Write;

use iot_log_monitor::error::DecodeError;
use iot_log_monitor::ingest::decode::{decode_data, parse_batch, subscription_data};
use iot_log_monitor::json::scan::{string_end, Specials};
use iot_log_monitor::json::unescape::unescape_json_string;
use iot_log_monitor::model::category::Category;
use iot_log_monitor::model::category::CategorySet;
use iot_log_monitor::model::entry::{parse_entry, parse_essentials, Essentials, NotAnEntry};
use iot_log_monitor::model::essentials::scan_escaped_message;
use iot_log_monitor::model::record::{category_of_escaped, category_of_message, judge};
use iot_log_monitor::pipeline::analyze;
use iot_log_monitor::tooling::encode::{
    gzip, subscription_event_json, wrap_envelope_json, BatchSpec,
};
use proptest::prelude::*;
use serde_json::json;

fn json_value() -> impl Strategy<Value = serde_json::Value> {
    let leaf = prop_oneof![
        Just(serde_json::Value::Null),
        any::<bool>().prop_map(serde_json::Value::Bool),
        any::<i64>().prop_map(|n| serde_json::json!(n)),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(|f| serde_json::json!(f)),
        ".{0,40}".prop_map(serde_json::Value::String),
    ];
    leaf.prop_recursive(6, 64, 8, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..8).prop_map(serde_json::Value::Array),
            prop::collection::btree_map(
                prop_oneof![
                    Just("eventType".to_owned()),
                    Just("status".to_owned()),
                    Just("logLevel".to_owned()),
                    Just("traceId".to_owned()),
                    Just("ruleName".to_owned()),
                    Just("sourcePort".to_owned()),
                    Just("timestamp".to_owned()),
                    ".{0,12}"
                ],
                inner,
                0..8
            )
            .prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
        ]
    })
}

/// Runs a message through the whole decode → analyse path inside a batch.
fn analyse_messages(messages: &[String]) -> iot_log_monitor::pipeline::Analysis {
    let spec = BatchSpec::new("g", "s");
    let event = subscription_event_json(&spec, messages.iter().map(|m| (0, m.as_str())));
    let data = subscription_data(&event).unwrap();
    let buffer = decode_data(&data, 1 << 24).unwrap();
    analyze(
        &parse_batch(&buffer).unwrap(),
        CategorySet::of(&Category::ALL),
    )
    .unwrap()
}

type MessageScanCase = (
    serde_json::Value,
    serde_json::Value,
    serde_json::Value,
    &'static str,
    prop::sample::Index,
);

fn message_scan_cases() -> impl Strategy<Value = MessageScanCase> {
    // Mostly flat entries of plain strings and numbers, as IoT writes them;
    // sometimes any value, nesting and escapes included.
    let value = prop_oneof![
        4 => "[a-zA-Z0-9 ./:$-]{0,20}".prop_map(serde_json::Value::String),
        2 => any::<i64>().prop_map(|n| json!(n)),
        1 => any::<f64>().prop_filter("finite", |f| f.is_finite()).prop_map(|f| json!(f)),
        1 => json_value(),
    ];
    (
        prop::collection::btree_map("[a-zA-Z]{1,12}", value, 0..10)
            .prop_map(|map| serde_json::Value::Object(map.into_iter().collect())),
        prop_oneof![
            Just(json!("RuleNotFound")),
            Just(json!("Connect")),
            Just(json!(7))
        ],
        prop_oneof![
            Just(json!("Failure")),
            Just(json!("Success")),
            Just(json!(null))
        ],
        prop::sample::select(vec![
            "", "", "", "", "", "", "\"", "\u{1}", "\t", "\\", "\\\"", " ",
        ]),
        any::<prop::sample::Index>(),
    )
}

/// A message literal as CloudWatch writes it, perhaps broken by a raw byte
/// (a quote ends the string early; a control character or a stray
/// backslash makes it invalid), followed by more envelope: wherever the
/// scan answers, the literal ends where serde_json's rules say and holds
/// what the parsers read. Whether the scan answered.
fn message_scan_case(
    (mut value, event_type, status, raw, at): MessageScanCase,
) -> Result<bool, TestCaseError> {
    if let Some(object) = value.as_object_mut() {
        object.insert("eventType".to_owned(), event_type);
        object.insert("status".to_owned(), status);
    }
    let mut literal = serde_json::to_string(&value.to_string()).unwrap();
    let mut cut = 1 + at.index(literal.len() - 1);
    while !literal.is_char_boundary(cut) {
        cut -= 1;
    }
    literal.insert_str(cut.max(1), raw);
    let envelope = format!(r#"{{"id":"1","message":{literal},"timestamp":5}}"#);
    let open = envelope.find(&literal).unwrap();
    // A cursor shared with the envelope reader, which used it before.
    let mut specials = Specials::new(envelope.as_bytes(), 0);
    specials.next_from(1);
    let Some((read, closing)) = scan_escaped_message(&envelope, open, &mut specials, owned) else {
        return Ok(false);
    };
    prop_assert_eq!(
        string_end(envelope.as_bytes(), open + 1),
        Some(closing),
        "{}",
        envelope
    );
    let quoted = &envelope[open..=closing];
    let mut message = String::new();
    prop_assert!(
        unescape_json_string(quoted, &mut message).is_some(),
        "{}",
        quoted
    );
    prop_assert_eq!(read, parse_essentials(&message), "{}", message);
    Ok(true)
}

/// What the parsers answer, from what the scan read where it lies.
fn owned<'a>(read: Option<&Essentials<'a>>) -> Result<Essentials<'a>, NotAnEntry> {
    read.cloned().ok_or(NotAnEntry::NoEventType)
}

#[test]
fn the_message_scan_cases_reach_the_scan_often() {
    // Guards the property above against cases the scan always refuses.
    use proptest::strategy::ValueTree;
    let mut runner = proptest::test_runner::TestRunner::deterministic();
    let strategy = message_scan_cases();
    let answered = (0..500)
        .filter(|_| message_scan_case(strategy.new_tree(&mut runner).unwrap().current()).unwrap())
        .count();
    assert!(answered >= 100, "{answered} of 500 answered");
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_as_data_are_an_error_not_a_panic(bytes in prop::collection::vec(any::<u8>(), 0..2048)) {
        let as_base64 = base64_simd::STANDARD.encode_to_string(&bytes);
        prop_assert!(decode_data(&as_base64, 1 << 20).is_err() || bytes.starts_with(&[0x1f, 0x8b]));
        let text = String::from_utf8_lossy(&bytes);
        let _ = decode_data(&text, 1 << 20);
        let _ = subscription_data(&text);
    }

    #[test]
    fn arbitrary_gzipped_bytes_are_a_clear_envelope_error(bytes in prop::collection::vec(any::<u8>(), 0..2048)) {
        let data = base64_simd::STANDARD.encode_to_string(gzip(&bytes));
        let buffer = decode_data(&data, 1 << 20).unwrap();
        match parse_batch(&buffer) {
            Ok(_) => {}
            Err(e) => prop_assert!(matches!(e, DecodeError::Envelope(_) | DecodeError::UnknownMessageType(_)), "{e}"),
        }
    }

    #[test]
    fn arbitrary_text_messages_never_panic_and_non_json_is_unparseable(text in "\\PC{0,200}") {
        let analysis = analyse_messages(std::slice::from_ref(&text));
        prop_assert_eq!(analysis.events, 1);
        if serde_json::from_str::<serde_json::Value>(&text).is_err() {
            prop_assert_eq!(analysis.by_category[Category::Unparseable.index()], 1);
            prop_assert_eq!(&analysis.entries[0].message, &text, "the raw text is kept");
        }
    }

    #[test]
    fn arbitrary_json_messages_parse_exactly_when_they_have_a_string_event_type(value in json_value()) {
        let text = value.to_string();
        let has_event_type = value.get("eventType").is_some_and(|v| v.is_string());
        prop_assert_eq!(parse_entry(&text).is_ok(), has_event_type, "{}", text);
        let category = judge(&text).category();
        if !has_event_type {
            prop_assert_eq!(category, Some(Category::Unparseable));
        }
        let analysis = analyse_messages(&[text]);
        prop_assert_eq!(analysis.by_category.iter().sum::<u64>(), u64::from(category.is_some()));
    }

    #[test]
    fn the_fast_classification_agrees_with_the_full_parse(
        mut value in json_value(),
        event_type in prop_oneof![Just(json!("RuleNotFound")), Just(json!("RuleMessageThrottled")), Just(json!("Connect")), Just(json!(7)), Just(json!(null))],
        status in prop_oneof![Just(json!("Failure")), Just(json!("failure")), Just(json!("Success")), Just(json!(["Failure"])), Just(json!(null))],
        log_level in prop_oneof![Just(json!("ERROR")), Just(json!("WARN")), Just(json!("Warning")), Just(json!("INFO")), Just(json!({"ERROR": 1}))],
        mask in 0u8..8,
        escape_names in any::<bool>(),
        text in "\\PC{0,80}",
    ) {
        if let Some(object) = value.as_object_mut() {
            for (bit, (name, v)) in [("eventType", event_type), ("status", status), ("logLevel", log_level)].into_iter().enumerate() {
                if mask & (1 << bit) != 0 {
                    object.insert(name.to_owned(), v);
                }
            }
        }
        let mut json = value.to_string();
        if escape_names {
            // Escaped key and value text must read the same in both parsers.
            json = json.replace("Failure", "\\u0046ailure").replace("eventType", "event\\u0054ype");
        }
        let mut cut = json.len() / 2;
        while !json.is_char_boundary(cut) {
            cut -= 1;
        }
        for message in [json.as_str(), text.as_str(), &format!("{json} trailing"), &json[..cut]] {
            prop_assert_eq!(category_of_message(message), judge(message).category(), "{}", message);
            prop_assert_eq!(parse_essentials(message).is_ok(), parse_entry(message).is_ok(), "{}", message);
        }
    }

    #[test]
    fn the_escaped_scan_agrees_with_the_parsers_whenever_it_answers(
        mut value in json_value(),
        event_type in prop_oneof![Just(json!("RuleNotFound")), Just(json!("Connect")), Just(json!(7)), Just(json!(null)), Just(json!("Conn\"ect"))],
        status in prop_oneof![Just(json!("Failure")), Just(json!("Success")), Just(json!(1.5)), Just(json!(-0)), Just(json!(true))],
        mask in 0u8..4,
        text in "\\PC{0,80}",
        spaces in " {0,3}",
    ) {
        if let Some(object) = value.as_object_mut() {
            for (bit, (name, v)) in [("eventType", event_type), ("status", status)].into_iter().enumerate() {
                if mask & (1 << bit) != 0 {
                    object.insert(name.to_owned(), v);
                }
            }
        }
        let json = value.to_string();
        let spaced = json.replace(':', &format!("{spaces}:{spaces}")).replace(',', &format!(",{spaces}"));
        let mut cut = json.len() / 2;
        while !json.is_char_boundary(cut) {
            cut -= 1;
        }
        for message in [json.as_str(), spaced.as_str(), text.as_str(), &format!("{json}{spaces}x"), &json[..cut], &format!("{spaces}{json}{spaces}")] {
            let escaped = serde_json::to_string(message).unwrap();
            if let Some(category) = category_of_escaped(&escaped) {
                prop_assert_eq!(category, category_of_message(message), "{}", message);
            }
        }
    }

    #[test]
    fn the_message_scan_in_an_envelope_ends_where_its_string_ends(case in message_scan_cases()) {
        message_scan_case(case)?;
    }

    #[test]
    fn unescaping_a_message_gives_back_the_text_serde_json_escaped(text in "\\PC{0,300}", control in "[\\x00-\\x1f\"\\\\/]{0,20}") {
        let original = format!("{text}{control}{text}");
        let mut out = String::from("left over");
        out.clear();
        unescape_json_string(&serde_json::to_string(&original).unwrap(), &mut out).unwrap();
        prop_assert_eq!(out, original);
    }

    #[test]
    fn known_fields_of_the_wrong_type_do_not_lose_the_entry(
        field in prop_oneof![Just("status"), Just("logLevel"), Just("traceId"), Just("sourcePort"), Just("ruleName"), Just("resources"), Just("timestamp")],
        value in json_value(),
    ) {
        let mut entry = serde_json::json!({"eventType": "Publish-In", "status": "Failure"});
        entry[field] = value;
        let text = entry.to_string();
        let parsed = parse_entry(&text);
        prop_assert!(parsed.is_ok(), "{}", text);
        let analysis = analyse_messages(&[text]);
        prop_assert_eq!(analysis.events, 1);
    }
}

#[test]
fn deep_nesting_and_huge_strings_are_handled() {
    let deep_field = format!(
        "{{\"eventType\":\"X\",\"status\":\"Failure\",\"a\":{}1{}}}",
        "[".repeat(100_000),
        "]".repeat(100_000)
    );
    let deep_document = format!("{}1{}", "[".repeat(100_000), "]".repeat(100_000));
    let huge = format!(
        r#"{{"eventType":"Connect","status":"Failure","details":"{}"}}"#,
        "x".repeat(5 << 20)
    );
    let analysis = analyse_messages(&[deep_field, deep_document, huge]);
    assert_eq!(
        analysis.by_category[Category::Failure.index()],
        2,
        "a deep unknown field is kept as raw JSON"
    );
    assert_eq!(analysis.by_category[Category::Unparseable.index()], 1);
    let source = iot_log_monitor::store::item::Source {
        log_group: "g",
        log_stream: "s",
    };
    for incident in &analysis.entries {
        let item = iot_log_monitor::store::item::entry_item(incident, &source, 30, None);
        assert!(item.size() <= iot_log_monitor::store::item::ITEM_BUDGET_BYTES);
    }
}

#[test]
fn invalid_utf8_in_the_batch_is_an_envelope_error() {
    let mut json = br#"{"messageType":"DATA_MESSAGE","logGroup":"g","logStream":"s","logEvents":[{"id":"1","timestamp":1,"message":""#.to_vec();
    json.extend_from_slice(&[0xff, 0xfe, b'x']);
    json.extend_from_slice(br#""}]}"#);
    let data = base64_simd::STANDARD.encode_to_string(gzip(&json));
    let buffer = decode_data(&data, 1 << 20).unwrap();
    assert!(matches!(
        parse_batch(&buffer),
        Err(DecodeError::Envelope(_))
    ));
}

#[test]
fn a_gzip_bomb_is_refused_at_the_cap() {
    // 256 MiB of zeros gzip to a quarter of a megabyte; the cap stops the inflate at 32 MiB.
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    let zeros = vec![0u8; 1 << 20];
    for _ in 0..256 {
        encoder.write_all(&zeros).unwrap();
    }
    let bomb = encoder.finish().unwrap();
    assert!(bomb.len() < 1 << 20, "{}", bomb.len());
    let event =
        serde_json::json!({"awslogs": {"data": base64_simd::STANDARD.encode_to_string(&bomb)}})
            .to_string();
    let data = subscription_data(&event).unwrap();
    let error = decode_data(&data, 32 << 20).unwrap_err();
    assert!(
        matches!(error, DecodeError::TooLarge { cap } if cap == 32 << 20),
        "{error}"
    );
    assert!(error.to_string().contains("MAX_DECOMPRESSED_BYTES"));
}

#[test]
fn an_event_of_the_wrong_shape_is_refused_clearly() {
    for event in [
        r#"{}"#,
        r#"{"Records":[{"kinesis":{}}]}"#,
        r#"{"awslogs":{}}"#,
        r#"[1,2]"#,
        r#""awslogs""#,
    ] {
        let error = subscription_data(event).unwrap_err();
        assert!(
            error
                .to_string()
                .contains("not a CloudWatch Logs subscription event"),
            "{event}: {error}"
        );
    }
    let not_envelope = wrap_envelope_json(br#"{"hello":"world"}"#);
    let buffer = decode_data(&subscription_data(&not_envelope).unwrap(), 1 << 20).unwrap();
    let error = parse_batch(&buffer).unwrap_err();
    assert!(
        error.to_string().contains("not a CloudWatch Logs envelope"),
        "{error}"
    );
}

#[test]
fn the_escaped_scan_reads_real_entries_and_leaves_the_rest_to_the_parsers() {
    let mut read = 0;
    let mut read_nested = false;
    let mut left = Vec::new();
    for file in [
        "success-traffic",
        "rule-not-found",
        "rule-throttled",
        "authorization-failures",
        "job-failure",
        "warnings-and-new-types",
        "garbage-lines",
        "cloudtrail-iot-failures",
    ] {
        let text = std::fs::read_to_string(format!(
            "{}/events/lines/{file}.jsonl",
            env!("CARGO_MANIFEST_DIR")
        ))
        .unwrap();
        for line in text.lines().filter(|l| !l.is_empty()) {
            match category_of_escaped(&serde_json::to_string(line).unwrap()) {
                Some(category) => {
                    assert_eq!(category, category_of_message(line), "{line}");
                    read += 1;
                    read_nested |= line.contains("userIdentity");
                }
                None => left.push(line.to_owned()),
            }
        }
    }
    assert!(
        read >= 20,
        "flat IoT entries are read in place ({read} were)"
    );
    // Nesting (CloudTrail's `userIdentity`) is read in place too; text that
    // is not a JSON object, or holds escapes of its own, goes the long way.
    assert!(read_nested, "nested CloudTrail records are read in place");
    assert!(left.iter().any(|l| l.contains("[INFO]")), "{left:?}");
    let flat_and_plain = |line: &str| {
        !line.contains('\\')
            && serde_json::from_str::<serde_json::Value>(line).is_ok_and(|v| v.is_object())
    };
    let missed: Vec<_> = left.iter().filter(|l| flat_and_plain(l)).collect();
    assert!(
        missed.is_empty(),
        "plain entries left to the parsers: {missed:?}"
    );
}
