//! One log message: the classification-only parse must agree with the full
//! parse the pipeline runs on incidents, and unescaping must not panic.
#![no_main]

use iot_log_monitor::decode::unescape_json_string;
use iot_log_monitor::incident::{category_of_message, judge};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|bytes: &[u8]| {
    let Ok(message) = std::str::from_utf8(bytes) else {
        return;
    };
    assert_eq!(category_of_message(message), judge(message).category(), "{message}");
    let mut out = String::new();
    let _ = unescape_json_string(message, &mut out);
});
