//! The sample events in events/ are what CloudWatch Logs delivers, in sync
//! with their readable twins and the raw lines they were built from.

mod common;

use common::repo_path;
use iot_log_monitor::ingest::batch::MessageType;
use iot_log_monitor::ingest::decode::{
    decode_data, parse_batch, subscription_data, DEFAULT_MAX_DECOMPRESSED_BYTES,
};
use iot_log_monitor::model::category::CategorySet;
use iot_log_monitor::pipeline::analyze;

fn events() -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(repo_path("events"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".json") && !n.ends_with(".decoded.json"))
        .map(|n| n.trim_end_matches(".json").to_owned())
        .collect();
    names.sort();
    names
}

fn decoded(name: &str) -> serde_json::Value {
    let event = std::fs::read_to_string(repo_path(&format!("events/{name}.json"))).unwrap();
    let data = subscription_data(&event).unwrap();
    serde_json::from_slice(&decode_data(&data, DEFAULT_MAX_DECOMPRESSED_BYTES).unwrap()).unwrap()
}

#[test]
fn every_event_decodes_to_its_readable_twin() {
    let names = events();
    assert!(names.len() >= 8, "{names:?}");
    for name in names {
        let twin = std::fs::read_to_string(repo_path(&format!("events/{name}.decoded.json")))
            .unwrap_or_else(|_| panic!("events/{name}.json has no decoded twin"));
        let twin: serde_json::Value = serde_json::from_str(&twin).unwrap();
        assert_eq!(
            decoded(&name),
            twin,
            "events/{name}.json is out of date: run `make events`"
        );
    }
}

#[test]
fn every_line_file_is_an_event_with_the_same_messages() {
    for entry in std::fs::read_dir(repo_path("events/lines"))
        .unwrap()
        .flatten()
    {
        let name = entry
            .file_name()
            .to_string_lossy()
            .trim_end_matches(".jsonl")
            .to_owned();
        let lines: Vec<String> = std::fs::read_to_string(entry.path())
            .unwrap()
            .lines()
            .filter(|l| !l.is_empty())
            .map(str::to_owned)
            .collect();
        let envelope = decoded(&name);
        let messages: Vec<String> = envelope["logEvents"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["message"].as_str().unwrap().to_owned())
            .collect();
        assert_eq!(
            messages, lines,
            "events/{name}.json was not built from events/lines/{name}.jsonl: run `make events`"
        );
        assert_eq!(envelope["logStream"], name.as_str());
    }
}

#[test]
fn each_sample_shows_the_category_it_is_named_for() {
    let expect: &[(&str, [u64; 5])] = &[
        // RuleNotFound, RuleMessageThrottled, Failure, Warning, Unparseable
        ("success-traffic", [0, 0, 0, 0, 0]),
        ("rule-not-found", [2, 0, 0, 0, 0]),
        ("rule-throttled", [0, 30, 0, 0, 0]),
        ("authorization-failures", [0, 0, 4, 0, 0]),
        ("job-failure", [0, 0, 1, 0, 0]),
        ("garbage-lines", [0, 0, 0, 0, 3]),
        ("warnings-and-new-types", [0, 0, 2, 1, 0]),
        ("cloudtrail-iot-failures", [0, 0, 3, 0, 0]),
    ];
    for (name, counts) in expect {
        let event = std::fs::read_to_string(repo_path(&format!("events/{name}.json"))).unwrap();
        let buffer = decode_data(
            &subscription_data(&event).unwrap(),
            DEFAULT_MAX_DECOMPRESSED_BYTES,
        )
        .unwrap();
        let batch = parse_batch(&buffer).unwrap();
        assert_eq!(batch.kind().unwrap(), MessageType::Data);
        let analysis = analyze(&batch, CategorySet::NONE).unwrap();
        assert_eq!(&analysis.by_category, counts, "{name}");
    }
    let event = std::fs::read_to_string(repo_path("events/control-message.json")).unwrap();
    let buffer = decode_data(
        &subscription_data(&event).unwrap(),
        DEFAULT_MAX_DECOMPRESSED_BYTES,
    )
    .unwrap();
    assert_eq!(
        parse_batch(&buffer).unwrap().kind().unwrap(),
        MessageType::Control
    );
}

#[test]
fn synthetic_batches_are_deterministic_and_classify_as_asked() {
    use iot_log_monitor::ingest::decode::{decode_data, parse_batch, subscription_data};
    let event = iot_log_monitor::tooling::encode::synthetic_event(1000, 5, 1);
    assert_eq!(
        event,
        iot_log_monitor::tooling::encode::synthetic_event(1000, 5, 1)
    );
    let buffer = decode_data(&subscription_data(&event).unwrap(), 1 << 26).unwrap();
    let analysis = iot_log_monitor::pipeline::analyze(
        &parse_batch(&buffer).unwrap(),
        iot_log_monitor::model::category::CategorySet::NONE,
    )
    .unwrap();
    assert_eq!(analysis.events, 1000);
    let incidents: u64 = analysis.by_category.iter().sum();
    assert!(
        (30..=70).contains(&incidents),
        "about 5% failures: {incidents}"
    );
    assert!(
        analysis.by_category
            [iot_log_monitor::model::category::Category::RuleMessageThrottled.index()]
            > 0
    );
}
