//! One log message: the classification-only parse must agree with the full
//! parse the pipeline runs on incidents, the scan of the escaped text with
//! both whenever it answers, and unescaping must not panic.
#![no_main]

use iot_log_monitor::json::unescape::unescape_json_string;
use iot_log_monitor::model::record::{category_of_escaped, category_of_message, judge};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|bytes: &[u8]| {
    let Ok(message) = std::str::from_utf8(bytes) else {
        return;
    };
    let category = category_of_message(message);
    assert_eq!(category, judge(message).category(), "{message}");
    let escaped = serde_json::to_string(message).expect("a string serialises");
    if let Some(scanned) = category_of_escaped(&escaped) {
        assert_eq!(scanned, category, "{message}");
    }
    let mut out = String::new();
    let _ = unescape_json_string(message, &mut out);
});
