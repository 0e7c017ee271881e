//! A decompressed batch: the envelope, every entry, and for each entry
//! the stored item (within DynamoDB's item size, one value per attribute),
//! the redacted copy (no redacted value left in clear, in the message or the
//! item) and the rendered notifications (within SNS's limits; the email text holds
//! no control, bidirectional or invisible character but its line breaks).
#![no_main]

use iot_log_monitor::ingest::decode::parse_batch;
use iot_log_monitor::model::category::Category;
use iot_log_monitor::model::category::CategorySet;
use iot_log_monitor::incident::delta::gather;
use iot_log_monitor::incident::lifecycle::{IncidentState, Transition};
use iot_log_monitor::notify::notification::{render, MAX_NOTIFICATION_BYTES};
use iot_log_monitor::notify::display::is_unsafe_char;
use iot_log_monitor::pipeline::analyze;
use iot_log_monitor::store::item::{entry_item, Source, ITEM_BUDGET_BYTES};
use iot_log_monitor::store::redact::Redactor;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|bytes: &[u8]| {
    let Ok(batch) = parse_batch(bytes) else {
        return;
    };
    let all = CategorySet::of(&Category::ALL);
    let Ok(mut analysis) = analyze(&batch, all) else {
        return;
    };
    let source = Source {
        log_group: &batch.log_group,
        log_stream: &batch.log_stream,
    };
    let redactor = Redactor::new(
        vec!["sourceIp".into(), "principalId".into()],
        b"fuzzing-key-0123456789",
    );
    for entry in &mut analysis.entries {
        let item = entry_item(entry, &source, 30, None);
        assert!(
            item.size() <= ITEM_BUDGET_BYTES,
            "item of {} bytes",
            item.size()
        );
        let mut names: Vec<&str> = item.attributes.iter().map(|(n, _)| n.as_str()).collect();
        names.sort_unstable();
        assert!(
            names.windows(2).all(|w| w[0] != w[1]),
            "an attribute written twice"
        );
        // What the redactor must replace: every string value of a redacted
        // name that a plain reading finds (at the top level).
        let clear: Vec<String> = serde_json::from_str::<serde_json::Value>(&entry.message)
            .ok()
            .and_then(|v| v.as_object().cloned())
            .map(|o| {
                ["sourceIp", "principalId"]
                    .iter()
                    .filter_map(|k| o.get(*k).and_then(|v| v.as_str()).map(str::to_owned))
                    .filter(|v| v.len() >= 4 && !v.starts_with("redacted:"))
                    .collect()
            })
            .unwrap_or_default();
        redactor.redact(entry);
        let redacted_item = entry_item(entry, &source, 30, None);
        for value in &clear {
            let json = serde_json::to_string(value).unwrap();
            assert!(
                !entry.message.contains(&json),
                "{value} left in the message"
            );
            for (name, attr) in &redacted_item.attributes {
                if name == "sourceIp" || name == "principalId" {
                    assert_ne!(
                        attr.as_str(),
                        Some(value.as_str()),
                        "{value} left in the item"
                    );
                }
            }
        }
    }
    for delta in gather(&analysis.entries, all, &batch.log_group) {
        let incident = IncidentState::opened(&delta, &batch.log_group, 1, 0);
        let alert = render(&incident, Transition::Opened, Some(&delta));
        assert!(
            alert.message.len() <= MAX_NOTIFICATION_BYTES,
            "alert of {} bytes",
            alert.message.len()
        );
        let structure: serde_json::Value = serde_json::from_str(&alert.message).unwrap();
        let email = structure["email"].as_str().unwrap();
        assert!(
            !email.chars().any(|c| c != '\n' && is_unsafe_char(c)),
            "{email:?}"
        );
        assert!(alert.subject.is_ascii() && !alert.subject.chars().any(is_unsafe_char));
        for (name, value) in &alert.attributes {
            assert!(
                !value.is_empty() && !value.chars().any(is_unsafe_char),
                "{name}={value:?}"
            );
        }
    }
});
