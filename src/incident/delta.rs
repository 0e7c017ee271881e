//! What one batch adds to each incident it touches: counts, times, the
//! distinct clients, the few names worth showing, sample traces. One
//! store request per incident follows from this, whatever the number of
//! devices behind it.

use std::collections::{BTreeMap, HashMap, HashSet};

use crate::incident::clients::Clients;
use crate::incident::key::{key_of, IncidentKey};
use crate::model::category::{Category, CategorySet};
use crate::model::record::Entry;
use crate::store::keys::truncate_str;

/// Sample traceIds a delta (and so an incident) keeps.
pub const SAMPLE_TRACES: usize = 5;
/// Client names a delta keeps, the busiest first.
pub const TOP_CLIENTS: usize = 5;
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
    /// The distinct client ids: their keys while few, and a sketch of all
    /// of them (`incident::clients`): what the incident's fixed-size count
    /// merges, without counting a redelivery twice.
    pub clients: Clients,
    /// The busiest clients of the batch, with their entry counts.
    pub top_clients: Vec<(String, u64)>,
    pub sample_trace_ids: Vec<String>,
    pub details: Option<String>,
    pub account_id: Option<String>,
    /// Which of the batch's entries belong to it (their indexes).
    pub members: Vec<usize>,
}

fn client_of(entry: &Entry) -> Option<&str> {
    entry
        .client_id
        .as_deref()
        .filter(|c| !c.is_empty() && *c != "N/A")
}

/// Folded keys a digest and `iot-incidents` name, the busiest first.
pub const FOLDED_NAMED: usize = 10;

/// The keys of one category that a batch brought past the storm budget,
/// counted by its overflow incident ([`IncidentKey::overflow`]).
#[derive(Debug, Clone, PartialEq)]
pub struct Folded {
    pub category: Category,
    /// Distinct keys folded (exact, for this batch).
    pub keys: u64,
    /// Their entries (exact): the overflow delta's count.
    pub entries: u64,
    /// The busiest folded keys and their entry counts, busiest first, then
    /// by key: at most [`FOLDED_NAMED`].
    pub busiest: Vec<(IncidentKey, u64)>,
}

/// What a batch adds to incidents within the storm budget: a delta per kept
/// key and per overflow incident, and what each overflow incident folded.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Gathered {
    pub deltas: Vec<Delta>,
    pub folded: Vec<Folded>,
}

impl Gathered {
    /// What the overflow incident of `category` folded in this batch.
    pub fn folded_of(&self, category: Category) -> Option<&Folded> {
        self.folded.iter().find(|f| f.category == category)
    }

    /// Folds a kept key's delta into its category's overflow incident after
    /// the split (the minute's openings budget refused its incident): the
    /// overflow delta gains its entries, clients and members (created if
    /// the batch had none), and `folded` counts and names the key.
    pub fn fold(&mut self, delta: &Delta) {
        let category = delta.key.category;
        let overflow = IncidentKey::overflow(category);
        match self.deltas.iter_mut().find(|d| d.key == overflow) {
            Some(existing) => existing.absorb(delta),
            None => {
                let mut created = delta.clone();
                created.key = overflow;
                created.details = None;
                self.deltas.push(created);
            }
        }
        let index = match self.folded.iter().position(|f| f.category == category) {
            Some(index) => index,
            None => {
                self.folded.push(Folded {
                    category,
                    keys: 0,
                    entries: 0,
                    busiest: Vec::new(),
                });
                self.folded.len() - 1
            }
        };
        let folded = &mut self.folded[index];
        folded.keys += 1;
        folded.entries += delta.entries;
        folded.busiest.push((delta.key.clone(), delta.entries));
        folded
            .busiest
            .sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        folded.busiest.truncate(FOLDED_NAMED);
    }
}

impl Delta {
    /// Adds `other`'s entries to this delta, as if they had been gathered
    /// with it.
    pub fn absorb(&mut self, other: &Delta) {
        self.entries += other.entries;
        self.first_ms = self.first_ms.min(other.first_ms);
        self.last_ms = self.last_ms.max(other.last_ms);
        self.clients.merge(&other.clients);
        let mut clients: HashMap<String, u64> = HashMap::new();
        for (name, n) in self.top_clients.iter().chain(&other.top_clients) {
            *clients.entry(name.clone()).or_default() += n;
        }
        let mut ranked: Vec<(String, u64)> = clients.into_iter().collect();
        ranked.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        ranked.truncate(TOP_CLIENTS);
        self.top_clients = ranked;
        for trace in &other.sample_trace_ids {
            if self.sample_trace_ids.len() < SAMPLE_TRACES && !self.sample_trace_ids.contains(trace)
            {
                self.sample_trace_ids.push(trace.clone());
            }
        }
        if self.account_id.is_none() {
            self.account_id = other.account_id.clone();
        }
        self.members.extend_from_slice(&other.members);
    }
}

/// Groups the entries of the incident categories by incident key, in a
/// deterministic order, however many keys there are.
pub fn gather(entries: &[Entry], incident_categories: CategorySet, log_group: &str) -> Vec<Delta> {
    gather_within(entries, incident_categories, log_group, usize::MAX).deltas
}

/// Which keys keep their own incident when a batch brings more than
/// `budget`: each category's keys ranked busiest first, then by key, and
/// taken in turns (the first of each category, then the second of each …)
/// until `budget` are kept, so a storm in one category does not crowd out
/// another's one real problem. Decided by the batch alone (never by what is
/// stored), so every delivery of a batch splits the same way: a key counted
/// by its own incident once is never counted by the overflow the next time.
fn split<'k>(
    counts: &HashMap<&'k IncidentKey, u64>,
    budget: usize,
) -> (HashSet<&'k IncidentKey>, Vec<Folded>) {
    if counts.len() <= budget {
        return (HashSet::new(), Vec::new());
    }
    let mut ranked: Vec<Vec<(&IncidentKey, u64)>> = vec![Vec::new(); Category::ALL.len()];
    for (&key, &n) in counts {
        ranked[key.category.index()].push((key, n));
    }
    for keys in &mut ranked {
        keys.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(b.0)));
    }
    let mut kept = vec![0usize; ranked.len()];
    let mut left = budget;
    for rank in 0.. {
        let mut any = false;
        for (c, keys) in ranked.iter().enumerate() {
            if left > 0 && rank < keys.len() {
                kept[c] += 1;
                left -= 1;
                any = true;
            }
        }
        if !any || left == 0 {
            break;
        }
    }
    let mut folded_keys = HashSet::new();
    let mut folded = Vec::new();
    for (c, keys) in ranked.iter().enumerate() {
        let rest = &keys[kept[c]..];
        if rest.is_empty() {
            continue;
        }
        folded_keys.extend(rest.iter().map(|(k, _)| *k));
        folded.push(Folded {
            category: Category::ALL[c],
            keys: rest.len() as u64,
            entries: rest.iter().map(|(_, n)| n).sum(),
            busiest: rest
                .iter()
                .take(FOLDED_NAMED)
                .map(|(k, n)| ((*k).clone(), *n))
                .collect(),
        });
    }
    (folded_keys, folded)
}

/// Groups the entries of the incident categories by incident key, in a
/// deterministic order, keeping at most `budget` keys: the others of each
/// category fold into that category's overflow incident (see [`split`]),
/// whose delta counts their entries and clients like any other.
pub fn gather_within(
    entries: &[Entry],
    incident_categories: CategorySet,
    log_group: &str,
    budget: usize,
) -> Gathered {
    let keys: Vec<Option<IncidentKey>> = entries
        .iter()
        .map(|e| {
            incident_categories
                .contains(e.category)
                .then(|| key_of(e, log_group))
        })
        .collect();
    let mut counts: HashMap<&IncidentKey, u64> = HashMap::new();
    for key in keys.iter().flatten() {
        *counts.entry(key).or_default() += 1;
    }
    let (folded_keys, folded) = split(&counts, budget);
    let overflow: Vec<IncidentKey> = Category::ALL
        .into_iter()
        .map(IncidentKey::overflow)
        .collect();
    let mut deltas: BTreeMap<&IncidentKey, Delta> = BTreeMap::new();
    let mut per_client: HashMap<&IncidentKey, HashMap<&str, u64>> = HashMap::new();
    for (index, (entry, key)) in entries.iter().zip(&keys).enumerate() {
        let Some(mut key) = key.as_ref() else {
            continue;
        };
        if folded_keys.contains(key) {
            key = &overflow[key.category.index()];
        }
        let delta = deltas.entry(key).or_insert_with(|| Delta {
            key: key.clone(),
            entries: 0,
            first_ms: entry.time_ms,
            last_ms: entry.time_ms,
            clients: Clients::default(),
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
            delta.clients.add(client);
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
    for (key, delta) in &mut deltas {
        if key.is_overflow() {
            // One entry's details would read as the details of all the keys
            // folded; the digest names the keys instead.
            delta.details = None;
        }
    }
    for (key, clients) in per_client {
        let mut ranked: Vec<(&str, u64)> = clients.into_iter().collect();
        // Busiest first; ties by name, so the choice is deterministic.
        ranked.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
        if let Some(delta) = deltas.get_mut(key) {
            delta.top_clients = ranked
                .into_iter()
                .take(TOP_CLIENTS)
                .map(|(name, n)| (truncate_str(name, MAX_SHOWN_BYTES).to_owned(), n))
                .collect();
        }
    }
    Gathered {
        deltas: deltas.into_values().collect(),
        folded,
    }
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
        assert_eq!(d.clients.exact(), None, "past the exact set");
        let estimate = d.clients.count().distinct as f64;
        assert!((estimate / 300.0 - 1.0).abs() < 0.3, "{estimate}");
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
            deltas[0].clients.exact(),
            Some(&std::collections::BTreeSet::from([
                crate::incident::clients::client_key("dev-1")
            ]))
        );
        assert_eq!(deltas[0].top_clients, [("dev-1".to_owned(), 1)]);
    }

    /// What a delta keeps of its clients is bounded whatever the fleet:
    /// their keys up to one past the exact set, then only the sketch, though
    /// every entry still counts.
    #[test]
    fn a_batch_keeps_a_bounded_tally_of_its_clients() {
        use crate::incident::clients::EXACT_CLIENTS;
        let few = gather(&authorisation_failures(EXACT_CLIENTS), failures(), "g");
        assert_eq!(few[0].clients.exact().map(|e| e.len()), Some(EXACT_CLIENTS));
        let many = 10_007;
        let deltas = gather(&authorisation_failures(many), failures(), "g");
        assert_eq!(deltas[0].entries, many as u64);
        assert_eq!(deltas[0].clients.exact(), None);
        assert!(deltas[0].clients.sketch().values().len() <= crate::incident::clients::REGISTERS);
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
