//! Any bytes as gzip: an error or at most the cap, whatever the trailer claims.
#![no_main]

use iot_log_monitor::ingest::decode::gunzip_bounded;
use libfuzzer_sys::fuzz_target;

const CAP: usize = 256 * 1024;

fuzz_target!(|bytes: &[u8]| {
    if let Ok(out) = gunzip_bounded(bytes, CAP) {
        assert!(out.len() <= CAP);
    }
});
