//! Each stage of the hot path and the whole of it, on generated batches:
//! 1,000 entries; 7,000 entries (about 1 MB gzipped, 4 MB of JSON); and the
//! same with 5% failures. `naive` is the common Rust approach for contrast:
//! aws_lambda_events' `LogsEvent` (gunzip through a reader) then a
//! `serde_json::Value` per message.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use iot_log_monitor::config::DEFAULT_STORE;
use iot_log_monitor::ingest::batch::LogsBatch;
use iot_log_monitor::ingest::decode::{
    decode_data, gunzip_bounded, parse_batch, subscription_data, DEFAULT_MAX_DECOMPRESSED_BYTES,
};
use iot_log_monitor::model::category::CategorySet;
use iot_log_monitor::model::classify::classify;
use iot_log_monitor::model::entry::parse_entry;
use iot_log_monitor::model::record::{category_of_escaped, category_of_message};
use iot_log_monitor::pipeline::analyze;
use iot_log_monitor::tooling::encode::synthetic_event;

const CAP: usize = DEFAULT_MAX_DECOMPRESSED_BYTES;

fn payloads() -> Vec<(&'static str, usize, String)> {
    vec![
        ("1k", 1_000, synthetic_event(1_000, 0, 1)),
        ("7k", 7_000, synthetic_event(7_000, 0, 2)),
        ("7k-5pct-failures", 7_000, synthetic_event(7_000, 5, 3)),
    ]
}

fn stages(c: &mut Criterion) {
    let keep = CategorySet::of(DEFAULT_STORE);
    let event = synthetic_event(7_000, 5, 3);
    let data = subscription_data(&event).unwrap().into_owned();
    let compressed = base64_simd::STANDARD.decode_to_vec(&data).unwrap();
    let buffer = gunzip_bounded(&compressed, CAP).unwrap();
    eprintln!(
        "7k batch: {} bytes base64, {} gzipped, {} JSON",
        data.len(),
        compressed.len(),
        buffer.len()
    );
    let batch = parse_batch(&buffer).unwrap();
    let mut messages = Vec::new();
    for e in &batch.log_events {
        let mut m = String::new();
        e.message_into(&mut m).unwrap();
        messages.push(m);
    }
    let entries: Vec<_> = messages.iter().map(|m| parse_entry(m).unwrap()).collect();

    let mut g = c.benchmark_group("stages-7k");
    g.throughput(Throughput::Elements(7_000));
    g.bench_function("base64", |b| {
        b.iter(|| {
            base64_simd::STANDARD
                .decode_to_vec(black_box(&data))
                .unwrap()
        })
    });
    g.bench_function("gunzip", |b| {
        b.iter(|| gunzip_bounded(black_box(&compressed), CAP).unwrap())
    });
    g.bench_function("envelope", |b| {
        // The envelope read by hand; each message the escaped scan reads is
        // classified on the way, in the same pass that finds its end.
        b.iter(|| parse_batch(black_box(&buffer)).unwrap().log_events.len())
    });
    g.bench_function("envelope-serde_json", |b| {
        // What `parse_batch` hands any unusual shape to, for comparison.
        b.iter(|| {
            serde_json::from_slice::<LogsBatch>(black_box(&buffer))
                .unwrap()
                .log_events
                .len()
        })
    });
    g.bench_function("escaped-scan", |b| {
        // The escaped scan alone, over every message already found: what
        // reading the envelope costs on top of finding the messages.
        b.iter(|| {
            batch
                .log_events
                .iter()
                .filter(|e| category_of_escaped(black_box(e.message_json)).is_some())
                .count()
        })
    });
    g.bench_function("entries", |b| {
        // What is left after the envelope: the entries it could not
        // classify in place are unescaped and parsed, and the incidents
        // parsed in full and copied out.
        b.iter(|| analyze(black_box(&batch), keep).unwrap().entries.len())
    });
    g.bench_function("items", |b| {
        // A stored batch on top of classification: every incident's item.
        let source = iot_log_monitor::store::item::Source {
            log_group: "AWSIotLogsV2",
            log_stream: "s",
        };
        b.iter(|| {
            analyze(black_box(&batch), keep)
                .unwrap()
                .entries
                .iter()
                .map(|i| {
                    iot_log_monitor::store::item::entry_item(i, &source, 30, None)
                        .attributes
                        .len()
                })
                .sum::<usize>()
        })
    });
    g.bench_function("entries-unescaped-first", |b| {
        // The previous way: unescape every message, then the essentials parse.
        let mut scratch = String::new();
        b.iter(|| {
            let mut n = 0;
            for e in &batch.log_events {
                e.message_into(&mut scratch).unwrap();
                n += usize::from(category_of_message(&scratch).is_some());
            }
            n
        })
    });
    g.bench_function("classification", |b| {
        b.iter(|| {
            entries
                .iter()
                .filter(|e| classify(black_box(e)).is_some())
                .count()
        })
    });
    g.finish();
}

/// What a batch's failures cost on top of classification: grouping them
/// into one delta per incident (keys, distinct clients, busiest names).
fn incidents(c: &mut Criterion) {
    use iot_log_monitor::incident::delta::gather;
    let keep = CategorySet::of(DEFAULT_STORE);
    let alerting = CategorySet::of(iot_log_monitor::config::DEFAULT_ALERT);
    let mut g = c.benchmark_group("incidents");
    for (name, event) in [
        ("7k-5pct-failures", synthetic_event(7_000, 5, 3)),
        ("7k-all-failures", synthetic_event(7_000, 100, 4)),
    ] {
        let data = subscription_data(&event).unwrap().into_owned();
        let buffer = decode_data(&data, CAP).unwrap();
        let batch = parse_batch(&buffer).unwrap();
        let entries = analyze(&batch, keep).unwrap().entries;
        g.throughput(Throughput::Elements(entries.len() as u64));
        g.bench_with_input(BenchmarkId::new("gather", name), &entries, |b, entries| {
            b.iter(|| gather(black_box(entries), alerting, "AWSIotLogsV2").len())
        });
    }
    g.finish();
}

fn whole(c: &mut Criterion) {
    let keep = CategorySet::of(DEFAULT_STORE);
    let mut g = c.benchmark_group("decode-parse-classify");
    for (name, count, event) in payloads() {
        g.throughput(Throughput::Elements(count as u64));
        g.bench_with_input(BenchmarkId::new("processor", name), &event, |b, event| {
            b.iter(|| {
                let data = subscription_data(event).unwrap();
                let buffer = decode_data(&data, CAP).unwrap();
                let batch = parse_batch(&buffer).unwrap();
                analyze(&batch, keep).unwrap().entries.len()
            })
        });
    }
    let (_, count, event) = payloads().remove(2);
    g.throughput(Throughput::Elements(count as u64));
    g.bench_with_input(
        BenchmarkId::new("naive", "7k-5pct-failures"),
        &event,
        |b, event| {
            b.iter(|| {
                let logs: aws_lambda_events::event::cloudwatch_logs::LogsEvent =
                    serde_json::from_str(event).unwrap();
                logs.aws_logs
                    .data
                    .log_events
                    .iter()
                    .filter(|e| {
                        let v: serde_json::Value =
                            serde_json::from_str(&e.message).unwrap_or_default();
                        v["status"] == "Failure"
                            || v["logLevel"] == "ERROR"
                            || v["logLevel"] == "WARN"
                    })
                    .count()
            })
        },
    );
    g.finish();
}

criterion_group!(benches, stages, incidents, whole);
criterion_main!(benches);
