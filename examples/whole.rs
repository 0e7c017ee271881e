//! The decode, parse and classify path of one 7,000-entry batch, `ROUNDS`
//! times, optionally building every incident's item: a fixed amount of
//! work for instruction counts, which stay put where wall-clock times on a
//! shared 2-core machine drift by 10%. See docs/performance.md:
//!
//! `valgrind --tool=callgrind target/release/examples/whole FAILURE_PERCENT ROUNDS [items|gather]`
//! (run with ROUNDS 0 too, and subtract, to leave out building the batch).
//! `gather` also folds the entries into incident deltas (the work a batch
//! does before its incident writes).

use iot_log_monitor::config::DEFAULT_STORE;
use iot_log_monitor::ingest::decode::{decode_data, parse_batch, subscription_data};
use iot_log_monitor::model::category::CategorySet;
use iot_log_monitor::pipeline::analyze;
use iot_log_monitor::tooling::encode::synthetic_event;
fn main() {
    let failures: u32 = std::env::args().nth(1).unwrap().parse().unwrap();
    let event = synthetic_event(7_000, failures, 3);
    let keep = CategorySet::of(DEFAULT_STORE);
    let mut n = 0;
    let rounds: usize = std::env::args().nth(2).unwrap().parse().unwrap();
    for _ in 0..rounds {
        let data = subscription_data(&event).unwrap();
        let buffer = decode_data(&data, 1 << 26).unwrap();
        let batch = parse_batch(&buffer).unwrap();
        let incidents = analyze(&batch, keep).unwrap().entries;
        let mode = std::env::args().nth(3);
        if mode.as_deref() == Some("gather") {
            let alerting = CategorySet::of(iot_log_monitor::config::DEFAULT_ALERT);
            n += iot_log_monitor::incident::delta::gather(&incidents, alerting, "AWSIotLogsV2")
                .len();
        } else if mode.is_some() {
            let source = iot_log_monitor::store::item::Source {
                log_group: "g",
                log_stream: "s",
            };
            n += incidents
                .iter()
                .map(|i| {
                    iot_log_monitor::store::item::entry_item(i, &source, 30, None)
                        .attributes
                        .len()
                })
                .sum::<usize>();
        }
        n += incidents.len();
    }
    println!("{n}");
}
