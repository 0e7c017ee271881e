//! What one batch adds to each incident it touches: counts, times, the
//! distinct clients, the few names worth showing, sample traces. One
//! store request per incident follows from this, whatever the number of
//! devices behind it.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use crate::incident::key::{key_of, IncidentKey};
use crate::model::category::CategorySet;
use crate::model::record::Entry;
use crate::store::keys::{fnv1a, truncate_str};

/// Sample traceIds a delta (and so an incident) keeps.
pub const SAMPLE_TRACES: usize = 5;
/// Client names a delta keeps, the busiest first.
pub const TOP_CLIENTS: usize = 5;
/// Distinct clients counted per incident; past it the count says "at least".
pub const MAX_COUNTED_CLIENTS: usize = 10_000;
/// What a shown name or detail keeps.
pub const MAX_SHOWN_BYTES: usize = 256;
const MAX_DETAILS_BYTES: usize = 1024;

/// One incident's share of a batch.
#[derive(Debug, Clone, PartialEq)]
pub struct Delta {
    pub key: IncidentKey,
    pub entries: u64,
    pub first_ms: i64,
    pub last_ms: i64,
    /// Hashes of the distinct client ids (12 hex digits each: a set an item
    /// can hold 10,000 of, and that a redelivery adds to without counting twice).
    pub client_hashes: BTreeSet<String>,
    /// The busiest clients of the batch, with their entry counts.
    pub top_clients: Vec<(String, u64)>,
    pub sample_trace_ids: Vec<String>,
    pub details: Option<String>,
    pub account_id: Option<String>,
    /// Which of the batch's entries belong to it (their indexes).
    pub members: Vec<usize>,
}

/// A client id's hash in the distinct-clients set.
pub fn client_hash(client_id: &str) -> String {
    format!("{:012x}", fnv1a(client_id.as_bytes()) & 0xffff_ffff_ffff)
}

fn client_of(entry: &Entry) -> Option<&str> {
    entry
        .client_id
        .as_deref()
        .filter(|c| !c.is_empty() && *c != "N/A")
}

/// Groups the entries of the incident categories by incident key, in a
/// deterministic order.
pub fn gather(entries: &[Entry], incident_categories: CategorySet, log_group: &str) -> Vec<Delta> {
    let mut deltas: BTreeMap<IncidentKey, Delta> = BTreeMap::new();
    let mut per_client: HashMap<IncidentKey, HashMap<&str, u64>> = HashMap::new();
    for (index, entry) in entries.iter().enumerate() {
        if !incident_categories.contains(entry.category) {
            continue;
        }
        let key = key_of(entry, log_group);
        let delta = deltas.entry(key.clone()).or_insert_with(|| Delta {
            key: key.clone(),
            entries: 0,
            first_ms: entry.time_ms,
            last_ms: entry.time_ms,
            client_hashes: BTreeSet::new(),
            top_clients: Vec::new(),
            sample_trace_ids: Vec::new(),
            details: None,
            account_id: None,
            members: Vec::new(),
        });
        delta.entries += 1;
        delta.members.push(index);
        delta.first_ms = delta.first_ms.min(entry.time_ms);
        delta.last_ms = delta.last_ms.max(entry.time_ms);
        if let Some(client) = client_of(entry) {
            if delta.client_hashes.len() < MAX_COUNTED_CLIENTS {
                delta.client_hashes.insert(client_hash(client));
            }
            *per_client
                .entry(key)
                .or_default()
                .entry(client)
                .or_default() += 1;
        }
        if delta.details.is_none() {
            delta.details = entry
                .details
                .as_deref()
                .map(|d| truncate_str(d, MAX_DETAILS_BYTES).to_owned())
                .or_else(|| {
                    entry
                        .parse_problem
                        .map(|p| format!("{p}: {}", truncate_str(&entry.message, MAX_SHOWN_BYTES)))
                });
        }
        if delta.account_id.is_none() {
            delta.account_id = entry
                .account_id
                .as_deref()
                .map(|a| truncate_str(a, 64).to_owned());
        }
        if delta.sample_trace_ids.len() < SAMPLE_TRACES
            && !delta.sample_trace_ids.contains(&entry.trace_id)
        {
            delta
                .sample_trace_ids
                .push(truncate_str(&entry.trace_id, MAX_SHOWN_BYTES).to_owned());
        }
    }
    for (key, clients) in per_client {
        let mut ranked: Vec<(&str, u64)> = clients.into_iter().collect();
        // Busiest first; ties by name, so the choice is deterministic.
        ranked.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
        if let Some(delta) = deltas.get_mut(&key) {
            delta.top_clients = ranked
                .into_iter()
                .take(TOP_CLIENTS)
                .map(|(name, n)| (truncate_str(name, MAX_SHOWN_BYTES).to_owned(), n))
                .collect();
        }
    }
    deltas.into_values().collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::category::Category;
    use crate::model::record::{judge, to_entry};

    fn entry(message: &str, trace: &str) -> Entry {
        let mut e = to_entry("e", 1_000, message, &judge(message)).unwrap();
        e.trace_id = trace.to_owned();
        e
    }

    /// One authorisation failure from each of `devices` devices (dev-0, dev-1, …).
    fn authorisation_failures(devices: usize) -> Vec<Entry> {
        (0..devices)
            .map(|n| {
                entry(
                    &format!(
                        r#"{{"eventType":"Connect","status":"Failure","clientId":"dev-{n}","reason":"AUTHORIZATION_FAILURE"}}"#
                    ),
                    &format!("t{n}"),
                )
            })
            .collect()
    }

    fn failures() -> CategorySet {
        CategorySet::of(&[
            Category::RuleNotFound,
            Category::RuleMessageThrottled,
            Category::Failure,
        ])
    }

    #[test]
    fn a_fleet_failing_one_way_is_one_delta_counting_its_clients() {
        let mut entries = authorisation_failures(300);
        // One device failing again and again leads the names.
        for n in 0..3 {
            entries.push(entry(
                r#"{"eventType":"Connect","status":"Failure","clientId":"dev-7","reason":"AUTHORIZATION_FAILURE"}"#,
                &format!("again{n}"),
            ));
        }
        let deltas = gather(&entries, failures(), "g");
        assert_eq!(deltas.len(), 1);
        let d = &deltas[0];
        assert_eq!(d.entries, 303);
        assert_eq!(d.client_hashes.len(), 300);
        assert_eq!(d.top_clients[0], ("dev-7".to_owned(), 4));
        assert_eq!(d.top_clients.len(), TOP_CLIENTS);
        assert_eq!(d.sample_trace_ids.len(), SAMPLE_TRACES);
        assert_eq!(d.members, (0..303).collect::<Vec<_>>());
    }

    /// Placeholders are not devices: an entry without a client id, or with
    /// AWS IoT's `N/A`, counts towards the incident but names no client.
    #[test]
    fn entries_without_a_real_client_id_name_no_client() {
        let line = |client: &str| {
            format!(
                r#"{{"eventType":"Connect","status":"Failure",{client}"reason":"AUTHORIZATION_FAILURE"}}"#
            )
        };
        let entries = vec![
            entry(&line(r#""clientId":"dev-1","#), "1"),
            entry(&line(r#""clientId":"N/A","#), "2"),
            entry(&line(r#""clientId":"","#), "3"),
            entry(&line(""), "4"),
        ];
        let deltas = gather(&entries, failures(), "g");
        assert_eq!(deltas.len(), 1);
        assert_eq!(deltas[0].entries, 4);
        assert_eq!(
            deltas[0].client_hashes,
            BTreeSet::from([client_hash("dev-1")])
        );
        assert_eq!(deltas[0].top_clients, [("dev-1".to_owned(), 1)]);
    }

    /// The distinct-clients set an incident item holds is bounded: past
    /// MAX_COUNTED_CLIENTS a batch adds no more hashes, though every entry
    /// still counts.
    #[test]
    fn a_batch_adds_at_most_the_bound_of_distinct_clients() {
        let extra = 7;
        let entries = authorisation_failures(MAX_COUNTED_CLIENTS + extra);
        let deltas = gather(&entries, failures(), "g");
        assert_eq!(deltas[0].entries, (MAX_COUNTED_CLIENTS + extra) as u64);
        assert_eq!(deltas[0].client_hashes.len(), MAX_COUNTED_CLIENTS);
    }

    #[test]
    fn two_rules_are_two_deltas_and_categories_not_chosen_are_left_out() {
        let entries = vec![
            entry(
                r#"{"eventType":"RuleNotFound","status":"Failure","ruleName":"a"}"#,
                "1",
            ),
            entry(
                r#"{"eventType":"RuleNotFound","status":"Failure","ruleName":"b"}"#,
                "2",
            ),
            entry(
                r#"{"eventType":"Connect","logLevel":"WARN","clientId":"c"}"#,
                "3",
            ),
        ];
        let deltas = gather(&entries, failures(), "g");
        let rules: Vec<_> = deltas.iter().map(|d| d.key.first.as_str()).collect();
        assert_eq!(rules, ["a", "b"]);
        assert!(gather(&entries, CategorySet::NONE, "g").is_empty());
    }
}
