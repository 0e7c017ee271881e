//! A whole Lambda event, as text: the front door (direct or Kinesis),
//! base64, gunzip (or zlib) under a small cap, the envelope and every entry.
#![no_main]

use iot_log_monitor::ingest::decode::{
    decode_data, decompress_bounded, invocation, parse_batch, Invocation, StreamRecord,
};
use iot_log_monitor::model::category::{Category, CategorySet};
use iot_log_monitor::pipeline::analyze;
use libfuzzer_sys::fuzz_target;

const CAP: usize = 1 << 20;

fn batch(buffer: Result<Vec<u8>, iot_log_monitor::error::DecodeError>) {
    let Ok(buffer) = buffer else {
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
        Ok(Invocation::Subscription(data)) => batch(decode_data(&data, CAP)),
        Ok(Invocation::Kinesis(records)) => records.iter().for_each(|r| {
            if let StreamRecord::Readable(record) = r {
                batch(decompress_bounded(&record.kinesis.data.0, CAP));
            }
        }),
        Err(_) => {}
    }
});
