//! The entry table's items, as plain data: keys, attributes, trimming to
//! DynamoDB's item size limit, and the write chunks. The DynamoDB adapter
//! only converts these to SDK types.
//!
//! Table layout (see template.yaml):
//! - partition key `traceId`, sort key `entryKey` = `<timeMs, 13 digits>#<eventId>`:
//!   unique per log event, deterministic, and oldest-first within a trace;
//! - GSIs `byCategory`, `byRule`, `byClient` on `categoryDay`, `ruleDay`,
//!   `clientDay` = `<value>#<UTC day>#<shard>`, sort key `timeMs`. The day
//!   bounds a partition in time and the shard (0..SHARDS, from the event id)
//!   spreads a storm of one rule or category over several partitions.

use crate::model::category::Category;
use crate::model::record::{Entry, FieldValue};
use crate::model::time::utc_day;
#[cfg(test)]
use crate::store::keys::SHARDS;
use crate::store::keys::{bounded_key_part, day_key, entry_key, shard_of, truncate_str};

/// DynamoDB accepts at most 25 writes per BatchWriteItem.
pub const MAX_BATCH_WRITE: usize = 25;

/// DynamoDB's item limit is 400 KiB; leave headroom for the size estimate.
pub const ITEM_BUDGET_BYTES: usize = 350 * 1024;

/// What a trimmed attribute keeps.
pub const TRIMMED_FIELD_BYTES: usize = 8 * 1024;

/// The attributes this table writes itself; a log entry's own field of the
/// same name is left in `rawMessage` instead.
pub const OWN_ATTRIBUTES: &[&str] = &[
    "traceId",
    "entryKey",
    "category",
    "timeMs",
    "logGroup",
    "logStream",
    "eventId",
    "rawMessage",
    "expiresAt",
    "trimmed",
    "categoryDay",
    "ruleDay",
    "clientDay",
    "parseProblem",
    "originalSize",
    "droppedFields",
    "incidentId",
];

/// At most this many of an entry's own fields become attributes; the rest
/// are named in `droppedFields` (the whole entry is in `rawMessage`). An
/// entry of 20,000 fields must cost no more than one of 300.
pub const MAX_ENTRY_ATTRIBUTES: usize = 256;

/// A longer field name is not made an attribute (DynamoDB would take 64 KB).
pub const MAX_ATTRIBUTE_NAME_BYTES: usize = 255;

/// A DynamoDB attribute value, as far as this table uses them.
#[derive(Debug, Clone, PartialEq)]
pub enum Attr {
    S(String),
    /// A number in DynamoDB's textual form; only integers are written as N.
    N(String),
    Bool(bool),
    Null,
}

impl Attr {
    fn size(&self) -> usize {
        match self {
            Attr::S(s) | Attr::N(s) => s.len(),
            Attr::Bool(_) | Attr::Null => 1,
        }
    }
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Attr::S(s) | Attr::N(s) => Some(s),
            _ => None,
        }
    }
}

/// One entry as a DynamoDB item.
#[derive(Debug, Clone, PartialEq)]
pub struct Item {
    pub attributes: Vec<(String, Attr)>,
}

impl Item {
    pub fn get(&self, name: &str) -> Option<&Attr> {
        self.attributes
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v)
    }

    /// DynamoDB counts attribute names and values.
    pub fn size(&self) -> usize {
        self.attributes
            .iter()
            .map(|(n, v)| n.len() + v.size())
            .sum()
    }

    fn set(&mut self, name: &str, value: Attr) {
        match self.attributes.iter_mut().find(|(n, _)| n == name) {
            Some((_, v)) => *v = value,
            None => self.attributes.push((name.to_owned(), value)),
        }
    }
}

/// Where a batch came from, shared by its items.
#[derive(Debug, Clone)]
pub struct Source<'a> {
    pub log_group: &'a str,
    pub log_stream: &'a str,
}

/// Builds the item for an entry, with the id of the incident it counts
/// towards (entries of categories that open no incidents have none).
/// `retention_days` sets `expiresAt` from the entry's own time, so a
/// redelivered entry gets the identical item.
pub fn entry_item(
    entry: &Entry,
    source: &Source<'_>,
    retention_days: u32,
    incident_id: Option<&str>,
) -> Item {
    let mut item = Item {
        attributes: Vec::with_capacity(32),
    };
    let s = |v: &str| Attr::S(v.to_owned());
    let day = utc_day(entry.time_ms);
    let shard = shard_of(&entry.event_id);
    item.set("traceId", Attr::S(bounded_key_part(&entry.trace_id)));
    item.set(
        "entryKey",
        Attr::S(entry_key(entry.time_ms, &entry.event_id)),
    );
    item.set("category", s(entry.category.as_str()));
    item.set("timeMs", Attr::N(entry.time_ms.to_string()));
    item.set(
        "categoryDay",
        Attr::S(day_key(entry.category.as_str(), &day, shard)),
    );
    if let Some(rule) = entry.rule_name.as_deref().filter(|r| !r.is_empty()) {
        item.set("ruleDay", Attr::S(day_key(rule, &day, shard)));
    }
    if let Some(client) = entry.client_id.as_deref().filter(|c| !c.is_empty()) {
        item.set("clientDay", Attr::S(day_key(client, &day, shard)));
    }
    item.set("logGroup", s(source.log_group));
    item.set("logStream", s(source.log_stream));
    item.set("eventId", s(&entry.event_id));
    item.set("rawMessage", s(&entry.message));
    let expires = entry.time_ms.div_euclid(1000) + i64::from(retention_days) * 86_400;
    item.set("expiresAt", Attr::N(expires.to_string()));
    if let Some(problem) = entry.parse_problem {
        item.set("parseProblem", s(problem));
    }
    if let Some(id) = incident_id {
        item.set("incidentId", s(id));
    }
    let skipped = if entry.category == Category::Unparseable {
        Vec::new()
    } else {
        add_entry_fields(&mut item, entry)
    };
    trim_to_budget(&mut item, skipped);
    item
}

/// Copies the entry's own top-level fields, as the record read them once
/// (and redaction left them), under their own names: strings and booleans
/// as such, integers as N, anything else (objects, arrays, other numbers)
/// as its JSON text, which DynamoDB always accepts.
///
/// One value per name, the one classification used: for an IoT entry the
/// entry's own `clientId`, `ruleName`, `accountId`, `reason` and
/// `details` (so the item, the notification and the indexes agree, after
/// redaction too), then the entry's fields in order; a repeated key never
/// replaces a value already set, and never a table's own attribute.
/// Returns the names left out (too many, or too long).
fn add_entry_fields(item: &mut Item, entry: &Entry) -> Vec<String> {
    let mut taken: std::collections::HashSet<&str> = std::collections::HashSet::new();
    let mut skipped = Vec::new();
    let mut added = 0;
    let mut add = |name: &str, attr: Attr| {
        if name.is_empty() || OWN_ATTRIBUTES.contains(&name) {
            return;
        }
        if name.len() > MAX_ATTRIBUTE_NAME_BYTES || added == MAX_ENTRY_ATTRIBUTES {
            if skipped.len() < MAX_ENTRY_ATTRIBUTES {
                skipped.push(bounded_key_part(name));
            }
            return;
        }
        added += 1;
        item.attributes.push((name.to_owned(), attr));
    };
    let classified = [
        ("clientId", &entry.client_id),
        ("ruleName", &entry.rule_name),
        ("accountId", &entry.account_id),
        ("reason", &entry.reason),
        ("details", &entry.details),
    ];
    if !entry.cloudtrail {
        for (name, value) in classified {
            if let Some(value) = value {
                if taken.insert(name) {
                    add(name, Attr::S(value.clone()));
                }
            }
        }
    }
    for (name, value) in &entry.fields {
        if !taken.insert(name) {
            continue;
        }
        let attr = match value {
            FieldValue::Text(text) | FieldValue::Json(text) => Attr::S(text.clone()),
            FieldValue::Integer(n) => Attr::N(n.clone()),
            FieldValue::Bool(b) => Attr::Bool(*b),
            FieldValue::Null => Attr::Null,
        };
        add(name, attr);
    }
    skipped
}

/// Never lets an item exceed DynamoDB's limit: first every large string is
/// cut to [`TRIMMED_FIELD_BYTES`], then (rare: thousands of fields) the
/// entry's own extra attributes are dropped, largest first. The full text
/// stays in the log group; the item says it was trimmed. `skipped`: names
/// already left out, listed in `droppedFields` too. One sort, whatever the
/// number of fields.
pub fn trim_to_budget(item: &mut Item, mut dropped: Vec<String>) {
    let original = item.size();
    if original <= ITEM_BUDGET_BYTES && dropped.is_empty() {
        return;
    }
    if original > ITEM_BUDGET_BYTES {
        for (name, value) in &mut item.attributes {
            if OWN_ATTRIBUTES.contains(&name.as_str()) && name != "rawMessage" {
                continue;
            }
            if let Attr::S(s) = value {
                if s.len() > TRIMMED_FIELD_BYTES {
                    let keep = truncate_str(s, TRIMMED_FIELD_BYTES).len();
                    s.truncate(keep);
                    s.push_str("…[trimmed]");
                }
            }
        }
        // Room for the markers below, `droppedFields` included.
        let reserve = TRIMMED_FIELD_BYTES + 128;
        let mut size = item.size();
        if size + reserve > ITEM_BUDGET_BYTES {
            let mut by_size: Vec<(usize, usize)> = item
                .attributes
                .iter()
                .enumerate()
                .filter(|(_, (n, _))| !OWN_ATTRIBUTES.contains(&n.as_str()))
                .map(|(i, (n, v))| (n.len() + v.size(), i))
                .collect();
            by_size.sort_unstable_by(|a, b| b.cmp(a));
            let mut drop = vec![false; item.attributes.len()];
            for (bytes, i) in by_size {
                if size + reserve <= ITEM_BUDGET_BYTES {
                    break;
                }
                size -= bytes;
                drop[i] = true;
            }
            let mut index = 0;
            item.attributes.retain(|(name, _)| {
                let keep = !drop[index];
                index += 1;
                if !keep {
                    dropped.push(name.clone());
                }
                keep
            });
        }
    }
    item.set("trimmed", Attr::Bool(true));
    item.set("originalSize", Attr::N(original.to_string()));
    if !dropped.is_empty() {
        dropped.sort();
        let names = truncate_str(&dropped.join(","), TRIMMED_FIELD_BYTES).to_owned();
        item.set("droppedFields", Attr::S(names));
    }
}

/// Splits writes into BatchWriteItem requests of at most [`MAX_BATCH_WRITE`],
/// dropping repeats of the same key (DynamoDB refuses a batch that writes one
/// key twice, and a batch can carry the same log event twice).
pub fn write_chunks(items: Vec<Item>) -> Vec<Vec<Item>> {
    let mut seen = std::collections::HashSet::with_capacity(items.len());
    let mut unique: Vec<Item> = Vec::with_capacity(items.len());
    for item in items {
        let key = (
            item.get("traceId")
                .and_then(Attr::as_str)
                .map(str::to_owned),
            item.get("entryKey")
                .and_then(Attr::as_str)
                .map(str::to_owned),
        );
        if seen.insert(key) {
            unique.push(item);
        }
    }
    let mut chunks = Vec::with_capacity(unique.len().div_ceil(MAX_BATCH_WRITE));
    let mut rest = unique.into_iter().peekable();
    while rest.peek().is_some() {
        chunks.push(rest.by_ref().take(MAX_BATCH_WRITE).collect());
    }
    chunks
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::record::Verdict;

    fn to_entry(message: &str) -> Entry {
        Entry {
            category: Category::Failure,
            trace_id: "trace-1".into(),
            event_id: "36000000000000000000000000000000000000000000000000000001".into(),
            time_ms: 1_507_145_146_070,
            event_type: Some("Publish-In".into()),
            rule_name: Some("rule_a".into()),
            client_id: Some("device-ü".into()),
            account_id: Some("123456789012".into()),
            reason: None,
            details: None,
            message: message.into(),
            parse_problem: None,
            cloudtrail: false,
            // The fields as the record reads them from the message.
            fields: match crate::model::entry::parse_entry(message) {
                Ok(entry) => {
                    let verdict = Verdict::Entry(entry, Some(Category::Failure));
                    crate::model::record::to_entry("e", 0, message, &verdict)
                        .unwrap()
                        .fields
                }
                Err(_) => Vec::new(),
            },
        }
    }

    const SOURCE: Source<'static> = Source {
        log_group: "AWSIotLogsV2",
        log_stream: "s",
    };

    #[test]
    fn keys_are_deterministic_and_carry_the_day_and_shard() {
        let i = to_entry(
            r#"{"eventType":"Publish-In","status":"Failure","sourcePort":13490,"resources":{"a":1}}"#,
        );
        let a = entry_item(&i, &SOURCE, 30, None);
        assert_eq!(a, entry_item(&i, &SOURCE, 30, None));
        let shard = shard_of(&i.event_id);
        assert!(shard < SHARDS);
        assert_eq!(
            a.get("entryKey").unwrap().as_str().unwrap(),
            format!("1507145146070#{}", i.event_id)
        );
        assert_eq!(
            a.get("categoryDay"),
            Some(&Attr::S(format!("Failure#2017-10-04#{shard}")))
        );
        assert_eq!(
            a.get("ruleDay"),
            Some(&Attr::S(format!("rule_a#2017-10-04#{shard}")))
        );
        assert_eq!(
            a.get("clientDay"),
            Some(&Attr::S(format!("device-ü#2017-10-04#{shard}")))
        );
        assert_eq!(
            a.get("expiresAt"),
            Some(&Attr::N((1_507_145_146 + 30 * 86_400).to_string()))
        );
        assert_eq!(a.get("sourcePort"), Some(&Attr::N("13490".into())));
        assert_eq!(a.get("resources"), Some(&Attr::S(r#"{"a":1}"#.into())));
        assert_eq!(a.get("trimmed"), None);
    }

    #[test]
    fn entry_fields_never_overwrite_the_tables_own_attributes() {
        let i = to_entry(
            r#"{"eventType":"X","category":"forged","traceId":"other","":"empty","big":1e400}"#,
        );
        let item = entry_item(&i, &SOURCE, 30, None);
        assert_eq!(item.get("category"), Some(&Attr::S("Failure".into())));
        assert_eq!(item.get("traceId"), Some(&Attr::S("trace-1".into())));
        assert_eq!(
            item.attributes
                .iter()
                .filter(|(n, _)| n == "category")
                .count(),
            1
        );
        assert_eq!(item.get(""), None);
        assert!(
            matches!(item.get("big"), Some(Attr::S(_))),
            "non-integers are kept as text"
        );
    }

    #[test]
    fn missing_rule_or_client_leaves_the_index_key_out() {
        let mut i = to_entry(r#"{"eventType":"X"}"#);
        i.rule_name = None;
        i.client_id = Some(String::new());
        let item = entry_item(&i, &SOURCE, 30, None);
        assert!(item.get("ruleDay").is_none() && item.get("clientDay").is_none());
    }

    #[test]
    fn an_oversized_entry_is_trimmed_and_marked() {
        let huge = "d".repeat(900 * 1024);
        let msg = format!(r#"{{"eventType":"X","status":"Failure","details":"{huge}"}}"#);
        let mut i = to_entry(&msg);
        i.details = Some(huge);
        let item = entry_item(&i, &SOURCE, 30, None);
        assert!(item.size() <= ITEM_BUDGET_BYTES, "{}", item.size());
        assert_eq!(item.get("trimmed"), Some(&Attr::Bool(true)));
        assert!(item
            .get("details")
            .unwrap()
            .as_str()
            .unwrap()
            .ends_with("…[trimmed]"));
        assert!(item.get("rawMessage").unwrap().as_str().unwrap().len() < TRIMMED_FIELD_BYTES + 16);
        assert_eq!(item.get("traceId"), Some(&Attr::S("trace-1".into())));
    }

    #[test]
    fn thousands_of_fields_are_dropped_largest_first() {
        let fields: Vec<String> = (0..3000)
            .map(|n| format!(r#""f{n}":"{}""#, "v".repeat(200)))
            .collect();
        let msg = format!(
            r#"{{"eventType":"X","status":"Failure",{}}}"#,
            fields.join(",")
        );
        let item = entry_item(&to_entry(&msg), &SOURCE, 30, None);
        assert!(item.size() <= ITEM_BUDGET_BYTES);
        assert!(item.get("droppedFields").is_some());
        assert_eq!(
            item.get("eventType"),
            Some(&Attr::S("X".into())),
            "small fields survive"
        );
    }

    /// Issue 16 (4): a repeated key cannot make the item disagree with the
    /// classification, and the table's own markers never come from the entry.
    #[test]
    fn one_value_per_field_the_one_classification_used() {
        let msg = r#"{"eventType":"Connect","status":"Failure","status":0,"clientId":"victim-7","clientId":123,"originalSize":1,"droppedFields":"forged","trimmed":false,"x":1,"x":2}"#;
        let verdict = crate::model::record::judge(msg);

        let i = crate::model::record::to_entry("e1", 1_000, msg, &verdict).unwrap();
        assert_eq!(i.client_id.as_deref(), Some("victim-7"));
        let item = entry_item(&i, &SOURCE, 30, None);
        let count = |name: &str| item.attributes.iter().filter(|(n, _)| n == name).count();
        for name in [
            "clientId",
            "status",
            "x",
            "originalSize",
            "droppedFields",
            "trimmed",
        ] {
            assert!(count(name) <= 1, "{name} written twice: {item:?}");
        }
        assert_eq!(item.get("clientId"), Some(&Attr::S("victim-7".into())));
        assert_eq!(item.get("status"), Some(&Attr::S("Failure".into())));
        assert!(item
            .get("clientDay")
            .unwrap()
            .as_str()
            .unwrap()
            .starts_with("victim-7#"));
        assert_eq!(
            item.get("originalSize"),
            None,
            "markers are the table's own"
        );
        assert_eq!(item.get("droppedFields"), None);
        assert_eq!(item.get("trimmed"), None);
    }

    /// Issue 16 (8): 20,000 fields, and names past any sensible length.
    #[test]
    fn an_entry_of_twenty_thousand_fields_or_huge_names_is_bounded() {
        let fields: Vec<String> = (0..20_000).map(|n| format!(r#""f{n}":{n}"#)).collect();
        let msg = format!(
            r#"{{"eventType":"X","status":"Failure","{}":1,{}}}"#,
            "k".repeat(5_000),
            fields.join(",")
        );
        let item = entry_item(&to_entry(&msg), &SOURCE, 30, None);
        assert!(
            item.attributes.len() <= MAX_ENTRY_ATTRIBUTES + OWN_ATTRIBUTES.len(),
            "{}",
            item.attributes.len()
        );
        assert!(item
            .attributes
            .iter()
            .all(|(n, _)| n.len() <= MAX_ATTRIBUTE_NAME_BYTES));
        let dropped = item.get("droppedFields").unwrap().as_str().unwrap();
        assert!(
            dropped.split(',').any(|n| n == "f300"),
            "names the left-out fields: {dropped}"
        );
        assert!(
            dropped.contains("kkkk"),
            "the over-long name, bounded: {dropped}"
        );
        assert_eq!(item.get("trimmed"), Some(&Attr::Bool(true)));
        assert!(item.size() <= ITEM_BUDGET_BYTES);
    }

    #[test]
    fn chunks_hold_at_most_25_unique_writes() {
        let items: Vec<Item> = (0..60)
            .map(|n| {
                let mut i = to_entry(r#"{"eventType":"X"}"#);
                i.event_id = format!("e{}", n % 53);
                entry_item(&i, &SOURCE, 30, None)
            })
            .collect();
        let chunks = write_chunks(items);
        assert_eq!(chunks.iter().map(Vec::len).collect::<Vec<_>>(), [25, 25, 3]);
        assert!(write_chunks(Vec::new()).is_empty());
    }
}
