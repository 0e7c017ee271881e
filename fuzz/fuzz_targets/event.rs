//! A whole Lambda event, as text: the front door (direct or Kinesis),
//! base64, gunzip under a small cap, the envelope and every entry.
#![no_main]

use iot_log_monitor::model::category::Category;
use iot_log_monitor::ingest::decode::{decode_data, invocation, parse_batch, Invocation};
use iot_log_monitor::model::category::CategorySet;
use iot_log_monitor::pipeline::analyze;
use libfuzzer_sys::fuzz_target;

const CAP: usize = 1 << 20;

fn batch(data: &str) {
    let Ok(buffer) = decode_data(data, CAP) else {
        return;
    };
    assert!(buffer.len() <= CAP, "decompressed past the cap");
    if let Ok(batch) = parse_batch(&buffer) {
        let _ = analyze(&batch, CategorySet::of(&Category::ALL));
    }
}

fuzz_target!(|bytes: &[u8]| {
    let Ok(text) = std::str::from_utf8(bytes) else {
        return;
    };
    match invocation(text) {
        Ok(Invocation::Subscription(data)) => batch(&data),
        Ok(Invocation::Kinesis(records)) => records.iter().for_each(|r| batch(&r.kinesis.data)),
        Err(_) => {}
    }
});
