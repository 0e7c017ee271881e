//! A decompressed batch read by the hand-written envelope reader: whenever
//! it answers, serde_json must read the same batch (the reader hands every
//! other shape to serde_json, so the two must never disagree), and what it
//! classified on the way is what the escaped scan makes of the literal
//! serde_json found.
#![no_main]

use iot_log_monitor::ingest::batch::LogsBatch;
use iot_log_monitor::ingest::envelope::read_batch;
use iot_log_monitor::model::record::category_of_escaped;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|bytes: &[u8]| {
    let Some(mine) = read_batch(bytes) else {
        return;
    };
    let theirs: LogsBatch =
        serde_json::from_slice(bytes).expect("serde_json reads what the hand reader reads");
    assert_eq!(mine.message_type, theirs.message_type);
    assert_eq!(mine.owner, theirs.owner);
    assert_eq!(mine.log_group, theirs.log_group);
    assert_eq!(mine.log_stream, theirs.log_stream);
    assert_eq!(mine.subscription_filters, theirs.subscription_filters);
    assert_eq!(mine.log_events.len(), theirs.log_events.len());
    for (a, b) in mine.log_events.iter().zip(&theirs.log_events) {
        assert_eq!(
            (&a.id, a.timestamp, a.message_json),
            (&b.id, b.timestamp, b.message_json)
        );
        assert_eq!(
            a.category,
            category_of_escaped(b.message_json),
            "{}",
            b.message_json
        );
    }
});
