//! One CloudWatch Embedded Metric Format record per invocation: CloudWatch
//! turns the log line into metrics, so there is no PutMetricData call.

use serde_json::{json, Map, Value};

use crate::model::category::Category;
use crate::pipeline::{Summary, SWEEP};

/// Renders the EMF record for an invocation.
pub fn emf_record(namespace: &str, summary: &Summary, timestamp_ms: i64) -> String {
    let mut values = Map::new();
    let mut definitions = Vec::new();
    let mut metric = |name: &str, unit: &str, value: u64| {
        definitions.push(json!({ "Name": name, "Unit": unit }));
        values.insert(name.to_owned(), json!(value));
    };
    metric("EntriesReceived", "Count", summary.entries);
    metric("BytesDecompressed", "Bytes", summary.decompressed_bytes);
    metric("DecodeErrors", "Count", summary.decode_errors);
    metric("FailedRecords", "Count", summary.failed_records);
    for category in Category::ALL {
        metric(
            category.as_str(),
            "Count",
            summary.by_category[category.index()],
        );
    }
    metric("EntriesStored", "Count", summary.stored as u64);
    metric("IncidentsOpened", "Count", summary.incidents_opened);
    metric("IncidentsResolved", "Count", summary.incidents_resolved);
    metric("NotificationsSent", "Count", summary.notifications_sent);
    metric("NotificationsFailed", "Count", summary.notifications_failed);
    metric(
        "NotificationsSilenced",
        "Count",
        summary.notifications_silenced,
    );
    // Silences ignored because they could not be read: template.yaml's
    // SilencesUnreadAlarm watches it.
    metric("SilenceReadErrors", "Count", summary.silence_read_errors);
    metric(
        "DynamoDBWriteRequests",
        "Count",
        u64::from(summary.write_requests),
    );
    metric("DurationMs", "Milliseconds", summary.duration_ms);
    // A gauge only a sweep measures: batches would report a false zero.
    // Sweeps count apart from batches: a stopped clock (SweepsCompleted
    // missing, SweepsFailed) is not undecodable logs (BatchesFailed).
    if summary.message_type == SWEEP {
        if summary.failed == 0 {
            metric("IncidentsOpen", "Count", summary.incidents_open);
            metric("SweepsCompleted", "Count", 1);
        } else {
            metric("SweepsFailed", "Count", 1);
        }
    } else if summary.failed > 0 {
        metric("BatchesFailed", "Count", 1);
    }
    let mut record = Map::new();
    record.insert(
        "_aws".into(),
        json!({
            "Timestamp": timestamp_ms,
            "CloudWatchMetrics": [{
                "Namespace": namespace,
                // One dimension set, the empty one: each dimension set is
                // another custom metric billed per name, and per log group
                // (sweeps and undecodable batches as `unknown`) the record
                // cost three or more times as many. The alarms and the
                // dashboard read the totals; per-group volume is AWS/Logs'
                // IncomingLogEvents, free, and `LogGroup` stays in this line
                // for Logs Insights.
                "Dimensions": [[]],
                "Metrics": definitions,
            }],
        }),
    );
    // A property now, not a dimension: `unknown` as when it was one
    // (control messages and sweeps carry no log group), so queries keep working.
    let log_group = if summary.log_group.is_empty() {
        "unknown"
    } else {
        summary.log_group.as_str()
    };
    record.insert("LogGroup".into(), Value::String(log_group.to_owned()));
    record.extend(values);
    Value::Object(record).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_record_declares_every_value_it_carries() {
        let mut s = Summary {
            log_group: "AWSIotLogsV2".into(),
            entries: 12,
            ..Summary::default()
        };
        s.by_category[Category::RuleNotFound.index()] = 3;
        let record: Value = serde_json::from_str(&emf_record("Ns", &s, 1_000)).unwrap();
        let directive = &record["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(directive["Namespace"], "Ns");
        assert_eq!(
            directive["Dimensions"],
            json!([[]]),
            "each metric once, without dimensions"
        );
        assert_eq!(record["LogGroup"], "AWSIotLogsV2");
        assert_eq!(record["EntriesReceived"], 12);
        assert_eq!(record["RuleNotFound"], 3);
        for definition in directive["Metrics"].as_array().unwrap() {
            let name = definition["Name"].as_str().unwrap();
            assert!(record[name].is_u64(), "{name} is declared but has no value");
        }
        assert_eq!(
            directive["Metrics"].as_array().unwrap().len(),
            13 + Category::ALL.len()
        );
        s.silence_read_errors = 2;
        let record: Value = serde_json::from_str(&emf_record("Ns", &s, 1_000)).unwrap();
        assert_eq!(
            record["SilenceReadErrors"], 2,
            "silences ignored for want of a read are counted"
        );
        s.message_type = SWEEP;
        s.incidents_open = 4;
        let record: Value = serde_json::from_str(&emf_record("Ns", &s, 1_000)).unwrap();
        assert_eq!(
            record["IncidentsOpen"], 4,
            "sweeps report the open incidents"
        );
    }
}
