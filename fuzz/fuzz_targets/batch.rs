//! A decompressed batch: the envelope, every entry, and for each incident
//! the stored item (within DynamoDB's item size), the redacted copy and the
//! rendered alerts (within SNS's limits).
#![no_main]

use iot_log_monitor::alert::{aggregate, render, MAX_ALERT_BYTES};
use iot_log_monitor::classify::Category;
use iot_log_monitor::decode::parse_batch;
use iot_log_monitor::incident::CategorySet;
use iot_log_monitor::item::{incident_item, Source, ITEM_BUDGET_BYTES};
use iot_log_monitor::pipeline::analyze;
use iot_log_monitor::redact::Redactor;
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
    let redactor = Redactor::new(vec!["sourceIp".into(), "principalId".into()], b"fuzzing-key-0123456789");
    for incident in &mut analysis.incidents {
        let item = incident_item(incident, &source, 30);
        assert!(item.size() <= ITEM_BUDGET_BYTES, "item of {} bytes", item.size());
        redactor.redact(incident);
    }
    for group in aggregate(&analysis.incidents, all, &batch.log_group) {
        let alert = render(&group, &batch.log_group, "fuzz", 1, 900);
        assert!(alert.message.len() <= MAX_ALERT_BYTES, "alert of {} bytes", alert.message.len());
    }
});
