//! An incident as a DynamoDB item and back: the attribute names of the
//! incident table, in one place.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;

use crate::incident::clients::{self, Sketch, StoredSketch};
use crate::incident::key::{IncidentKey, KeyKind};
use crate::incident::lifecycle::{IncidentState, State, StoredClaim};
use crate::store::keys::fnv1a;

pub type Attributes = HashMap<String, AttributeValue>;

/// The index the sweep queries: partition `sweepShard`, sort `incidentKey`,
/// holding the open incidents and the records whose resolved notification
/// is still to go out, with only [`WATCHED_PROJECTION`].
pub const SWEEP_INDEX: &str = "sweep";
/// How many partitions the `sweep` index spreads the watched items over
/// (`sweepShard` = `watched#<0..7>`, by the item's key): no one index
/// partition takes every incident's writes.
pub const SWEEP_SHARDS: u64 = 8;
/// The index items were watched in before `sweep` (partition `sweepKey` =
/// `watched`, projection ALL). Nothing is written to it any more; it is
/// read so that incidents open when a stack was upgraded are still swept
/// (each write to such an item moves it to `sweep`), until a later release
/// deletes it (CloudFormation changes one index per update).
pub const LEGACY_WATCHED_INDEX: &str = "watched";
/// The value of `sweepKey` on items of the legacy `watched` index.
pub const LEGACY_WATCHED: &str = "watched";

/// What the `sweep` index projects besides its keys: what the sweep decides
/// on (quiet, due, claimed, silenced: the silence matchers read the key's
/// parts and the busiest clients), as [`IncidentState::as_watched`] keeps.
/// `template.yaml` lists the same (`tests/template.rs` checks).
pub const WATCHED_PROJECTION: &[&str] = &[
    "incidentId",
    "incidentState",
    "category",
    "keyKind",
    "keyFirst",
    "keySecond",
    "topClients",
    "openedMs",
    "lastActivityMs",
    "entryCount",
    "batchSeq",
    "notificationsSent",
    "notifiedEntries",
    "lastNotifiedMs",
    "resolvedSent",
    "claimToken",
    "claimLeaseMs",
    "claimStep",
    "ackedBy",
    "heldBack",
];

/// The `sweepShard` of the item with key `item_key`.
pub fn sweep_shard(item_key: &str) -> String {
    format!("watched#{}", fnv1a(item_key.as_bytes()) % SWEEP_SHARDS)
}

/// Every `sweepShard` value.
pub fn sweep_shards() -> impl Iterator<Item = String> {
    (0..SWEEP_SHARDS).map(|n| format!("watched#{n}"))
}

/// Days a batch marker is kept: past the failure queue's 14 days, so a
/// batch re-driven from it is still recognised.
pub const MARKER_DAYS: i64 = 15;

/// The key of the marker saying that batch `fingerprint` was counted into
/// an incident of key item `item_key` (the marker names which).
pub fn marker_key(item_key: &str, fingerprint: &str) -> String {
    format!("batch#{item_key}#{fingerprint}")
}

/// The item counting the incidents opened in `minute` (minutes since the
/// epoch): the openings budget across invocations. Kept a day (TTL).
pub fn openings_key(minute: i64) -> String {
    format!("openings#{minute}")
}

/// Whether an item of the table is bookkeeping, not an incident: a batch
/// marker or an openings counter.
pub fn is_marker(item: &Attributes) -> bool {
    text(item, "incidentKey").is_some_and(|k| k.starts_with("batch#") || k.starts_with("openings#"))
}

/// Whether a batch marker says the batch's delta of its key was folded
/// into the overflow incident (refused by the openings budget), not
/// counted by an incident of the key.
pub fn is_folded_marker(item: &Attributes) -> bool {
    flag(item, "folded")
}

/// The distinct clients' sketch an item holds (`clientSketch`: a binary
/// set of two-byte big-endian `register * 64 + rank` values).
pub fn stored_sketch(item: &Attributes) -> StoredSketch {
    let values = item
        .get("clientSketch")
        .and_then(|v| v.as_bs().ok())
        .into_iter()
        .flatten()
        .filter_map(|b| <[u8; 2]>::try_from(b.as_ref()).ok())
        .map(|b| u32::from(u16::from_be_bytes(b)));
    Sketch::from_values(values)
}

/// An item's size as DynamoDB bills it ("Item sizes and formats" in the
/// developer guide): per attribute, its name's bytes and its value's;
/// strings and binaries by their bytes, numbers one byte per two
/// significant digits plus one, booleans and nulls one byte, lists and maps
/// three bytes plus one per element, sets the sum of their elements. A
/// write costs one write unit per started KB of it (two in a transaction).
pub fn item_size(item: &Attributes) -> usize {
    item.iter()
        .map(|(name, value)| name.len() + value_size(value))
        .sum()
}

fn number_size(number: &str) -> usize {
    let digits: String = number
        .split(['e', 'E'])
        .next()
        .unwrap_or_default()
        .chars()
        .filter(char::is_ascii_digit)
        .collect();
    let significant = digits.trim_start_matches('0').trim_end_matches('0').len();
    significant.div_ceil(2) + 1
}

fn value_size(value: &AttributeValue) -> usize {
    match value {
        AttributeValue::S(s) => s.len(),
        AttributeValue::N(n) => number_size(n),
        AttributeValue::B(b) => b.as_ref().len(),
        AttributeValue::Ss(set) => set.iter().map(String::len).sum(),
        AttributeValue::Ns(set) => set.iter().map(|n| number_size(n)).sum(),
        AttributeValue::Bs(set) => set.iter().map(|b| b.as_ref().len()).sum(),
        AttributeValue::L(list) => 3 + list.iter().map(|v| 1 + value_size(v)).sum::<usize>(),
        AttributeValue::M(map) => {
            3 + map
                .iter()
                .map(|(k, v)| 1 + k.len() + value_size(v))
                .sum::<usize>()
        }
        _ => 1,
    }
}

pub fn s(value: impl Into<String>) -> AttributeValue {
    AttributeValue::S(value.into())
}

pub fn n(value: impl ToString) -> AttributeValue {
    AttributeValue::N(value.to_string())
}

pub fn list(values: impl IntoIterator<Item = String>) -> AttributeValue {
    AttributeValue::L(values.into_iter().map(AttributeValue::S).collect())
}

pub fn text<'i>(item: &'i Attributes, name: &str) -> Option<&'i str> {
    item.get(name)
        .and_then(|v| v.as_s().ok())
        .map(String::as_str)
}

pub fn number(item: &Attributes, name: &str) -> Option<i64> {
    item.get(name)
        .and_then(|v| v.as_n().ok())
        .and_then(|v| v.parse().ok())
}

fn texts(item: &Attributes, name: &str) -> Vec<String> {
    item.get(name)
        .and_then(|v| v.as_l().ok())
        .map(|l| l.iter().filter_map(|v| v.as_s().ok().cloned()).collect())
        .unwrap_or_default()
}

/// The incident an item holds; `None` for an item this code did not write.
pub fn state_of(item: &Attributes) -> Option<IncidentState> {
    let category = text(item, "category")?.parse().ok()?;
    let kind = KeyKind::parse(text(item, "keyKind")?)?;
    let claim = text(item, "claimToken").map(|token| StoredClaim {
        token: token.to_owned(),
        lease_until_ms: number(item, "claimLeaseMs").unwrap_or(0),
        step: text(item, "claimStep").unwrap_or_default().to_owned(),
    });
    // `clientsCapped`: an item of an earlier version, whose exact set stopped.
    let estimated = flag(item, "clientsEstimated") || flag(item, "clientsCapped");
    let exact = item
        .get("clientHashes")
        .and_then(|v| v.as_ss().ok())
        .map(|set| set.len() as u64);
    let (distinct_clients, clients_estimated) = match number(item, "distinctClients") {
        // A record keeps the count its incident was resolved with.
        Some(n) => (n as u64, estimated),
        None if estimated => {
            let sketch = stored_sketch(item).sketch;
            if sketch.is_empty() {
                (exact.unwrap_or(0), true)
            } else {
                let count = clients::count(None, &sketch);
                (count.distinct, true)
            }
        }
        None => (exact.unwrap_or(0), false),
    };
    // The reminders are kept as their last one (`lastReminder`), before
    // the resolution.
    let mut history = texts(item, "history");
    if let Some(reminder) = text(item, "lastReminder") {
        let at = history
            .iter()
            .position(|h| h.starts_with("resolved "))
            .unwrap_or(history.len());
        history.insert(at, reminder.to_owned());
    }
    Some(IncidentState {
        item_key: text(item, "incidentKey")?.to_owned(),
        incident_id: text(item, "incidentId")?.to_owned(),
        generation: number(item, "incidentGeneration").unwrap_or(0) as u64,
        state: State::parse(text(item, "incidentState")?)?,
        key: IncidentKey {
            category,
            kind,
            first: text(item, "keyFirst").unwrap_or_default().to_owned(),
            second: text(item, "keySecond").map(str::to_owned),
        },
        log_group: text(item, "logGroup").unwrap_or_default().to_owned(),
        opened_ms: number(item, "openedMs").unwrap_or(0),
        first_seen_ms: number(item, "firstSeenMs").unwrap_or(0),
        last_seen_ms: number(item, "lastSeenMs").unwrap_or(0),
        last_activity_ms: number(item, "lastActivityMs").unwrap_or(0),
        resolved_ms: number(item, "resolvedMs"),
        entries: number(item, "entryCount").unwrap_or(0) as u64,
        seq: number(item, "batchSeq").unwrap_or(0) as u64,
        distinct_clients,
        clients_estimated,
        top_clients: texts(item, "topClients"),
        sample_trace_ids: texts(item, "sampleTraceIds"),
        details: text(item, "details").map(str::to_owned),
        account_id: text(item, "accountId").map(str::to_owned),
        sent: number(item, "notificationsSent").unwrap_or(0) as u32,
        last_notified_ms: number(item, "lastNotifiedMs"),
        notified_entries: number(item, "notifiedEntries").unwrap_or(0) as u64,
        resolved_sent: item.contains_key("resolvedSent"),
        claim,
        acked_by: text(item, "ackedBy").map(str::to_owned),
        ack_note: text(item, "ackNote").map(str::to_owned),
        held_back: number(item, "heldBack").unwrap_or(0) as u64,
        reopenings: number(item, "reopenings").unwrap_or(0) as u32,
        flapping: flag(item, "flapping"),
        history,
    })
}

/// A boolean attribute; absent (or not a boolean) reads as false.
pub fn flag(item: &Attributes, name: &str) -> bool {
    item.get(name)
        .and_then(|v| v.as_bool().ok())
        .copied()
        .unwrap_or(false)
}

/// The record of `incident` resolved at `now_ms`, as a whole item.
pub fn record_item(
    incident: &IncidentState,
    now_ms: i64,
    expires_at: AttributeValue,
) -> Attributes {
    let key = &incident.key;
    let mut item: Attributes = HashMap::from([
        ("incidentKey".into(), s(&incident.incident_id)),
        ("incidentId".into(), s(&incident.incident_id)),
        ("incidentGeneration".into(), n(incident.generation)),
        ("incidentState".into(), s(State::Resolved.as_str())),
        ("category".into(), s(key.category.as_str())),
        ("keyKind".into(), s(key.kind.as_str())),
        ("keyFirst".into(), s(&key.first)),
        ("logGroup".into(), s(&incident.log_group)),
        ("openedMs".into(), n(incident.opened_ms)),
        ("firstSeenMs".into(), n(incident.first_seen_ms)),
        ("lastSeenMs".into(), n(incident.last_seen_ms)),
        ("lastActivityMs".into(), n(incident.last_activity_ms)),
        ("resolvedMs".into(), n(now_ms)),
        ("entryCount".into(), n(incident.entries)),
        ("batchSeq".into(), n(incident.seq)),
        ("distinctClients".into(), n(incident.distinct_clients)),
        (
            "topClients".into(),
            list(incident.top_clients.iter().cloned()),
        ),
        (
            "sampleTraceIds".into(),
            list(incident.sample_trace_ids.iter().cloned()),
        ),
        ("notificationsSent".into(), n(incident.sent)),
        ("notifiedEntries".into(), n(incident.notified_entries)),
        ("history".into(), list(incident.history.iter().cloned())),
        ("expiresAt".into(), expires_at),
    ]);
    let optional = [
        ("keySecond", key.second.as_deref()),
        ("details", incident.details.as_deref()),
        ("accountId", incident.account_id.as_deref()),
        ("ackedBy", incident.acked_by.as_deref()),
        ("ackNote", incident.ack_note.as_deref()),
    ];
    for (name, value) in optional {
        if let Some(value) = value {
            item.insert(name.into(), s(value));
        }
    }
    if let Some(at) = incident.last_notified_ms {
        item.insert("lastNotifiedMs".into(), n(at));
    }
    if incident.held_back > 0 {
        item.insert("heldBack".into(), n(incident.held_back));
    }
    if incident.clients_estimated {
        item.insert("clientsEstimated".into(), AttributeValue::Bool(true));
    }
    if incident.reopenings > 0 {
        item.insert("reopenings".into(), n(incident.reopenings));
    }
    if incident.flapping {
        item.insert("flapping".into(), AttributeValue::Bool(true));
    }
    // Watched until its resolved notification is out; one that was never
    // announced is not announced resolved either.
    if incident.sent > 0 {
        item.insert("sweepShard".into(), s(sweep_shard(&incident.incident_id)));
    }
    item
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::incident::lifecycle::tests::open_incident;

    /// The developer guide's rules: names count, numbers by significant
    /// digits, lists three bytes and one per element, sets their elements.
    #[test]
    fn item_sizes_follow_dynamodb_s_rules() {
        let item: Attributes = HashMap::from([
            ("name".into(), s("abc")),
            // 1,800,000,000,000: two significant digits, one byte, plus one.
            ("t".into(), n(1_800_000_000_000_i64)),
            ("count".into(), n(12_345)),
            ("yes".into(), AttributeValue::Bool(true)),
            ("l".into(), list(["ab".to_owned(), "c".to_owned()])),
            (
                "ss".into(),
                AttributeValue::Ss(vec!["ab".into(), "cde".into()]),
            ),
            (
                "ns".into(),
                AttributeValue::Ns(vec!["8186".into(), "7".into()]),
            ),
        ]);
        let expected =
            (4 + 3) + (1 + 2) + (5 + 4) + (3 + 1) + (1 + 3 + 3 + 2) + (2 + 5) + (2 + 3 + 2);
        assert_eq!(item_size(&item), expected);
    }

    /// What the `sweep` index holds of an item (its keys and
    /// WATCHED_PROJECTION) reads as the incident's `as_watched` view: the
    /// in-memory store's model of the index is the index.
    #[test]
    fn the_sweep_index_holds_exactly_the_watched_view() {
        let mut incident = open_incident();
        incident.sent = 1;
        incident.distinct_clients = 40;
        incident.clients_estimated = true;
        incident.top_clients = vec!["dev-1".into()];
        incident.sample_trace_ids = vec!["t".into()];
        incident.details = Some("d".into());
        incident.account_id = Some("1".into());
        incident.acked_by = Some("ana".into());
        incident.ack_note = Some("on it".into());
        incident.held_back = 2;
        incident.last_notified_ms = Some(5);
        incident.history = vec!["opened 1970-01-01T00:00:00.000Z".into()];
        incident.key.second = Some("second".into());
        let record = record_item(&incident, 9, n(1));
        let full = state_of(&record).unwrap();
        let projected: Attributes = record
            .iter()
            .filter(|(name, _)| {
                ["incidentKey", "sweepShard"].contains(&name.as_str())
                    || WATCHED_PROJECTION.contains(&name.as_str())
            })
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        assert_eq!(state_of(&projected).unwrap(), full.as_watched());
        assert_ne!(
            full,
            full.as_watched(),
            "the index holds less than the item"
        );
        assert!(
            record.contains_key("sweepShard"),
            "an announced record is watched"
        );
    }
}
