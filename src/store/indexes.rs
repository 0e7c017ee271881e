//! The entries table's secondary indexes: what each is keyed by and what it
//! carries (template.yaml's projections, which `tests/template.rs` holds to
//! these constants).
//!
//! Every stored entry is written once to the table and once more to each
//! index it has a key for, and each index write is billed by the size of the
//! index entry (1 write unit per started KB). So the indexes carry only what
//! the operator's queries read from every row they go through: the keys, the
//! attributes `list` filters on, and what `summary` and `show`'s activity
//! chart count. A command that shows more than that of a row (`list`) fetches
//! the whole items of the rows it shows, and only those, with BatchGetItem.

/// One secondary index of the entries table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EntryIndex {
    pub name: &'static str,
    /// `<value>#<UTC day>#<shard>`, see `store::keys::day_key`.
    pub partition_key: &'static str,
}

/// The entries table's indexes, in template.yaml's order.
pub const ENTRY_INDEXES: [EntryIndex; 3] = [
    EntryIndex {
        name: "byCategory",
        partition_key: "categoryDay",
    },
    EntryIndex {
        name: "byRule",
        partition_key: "ruleDay",
    },
    EntryIndex {
        name: "byClient",
        partition_key: "clientDay",
    },
];

/// The sort key of every entry index.
pub const INDEX_SORT_KEY: &str = "timeMs";

/// The table's own key, which every index entry carries (BatchGetItem's key).
pub const TABLE_KEY: [&str; 2] = ["traceId", "entryKey"];

/// The attributes every entry index carries besides the keys (an `INCLUDE`
/// projection): `category` and `clientId` because `list --rule` filters on
/// them inside the index (a filter sees only what the index carries),
/// `category`, `ruleName` and `clientId` because `summary` counts them over
/// every entry of a period, `incidentId` because `show` charts an
/// incident's entries over its whole life. Each is a name, short in
/// practice (AWS IoT allows 128 characters for a rule name or a client id);
/// free text (`reason`, `details`, the raw message) stays in the table.
pub const INDEX_ATTRIBUTES: [&str; 4] = ["category", "ruleName", "clientId", "incidentId"];

/// Whether a row read from any entry index has `attribute` (when its item
/// has it): a reader that needs one it does not fetches the whole item.
pub fn carried_by_every_index(attribute: &str) -> bool {
    attribute == INDEX_SORT_KEY
        || TABLE_KEY.contains(&attribute)
        || INDEX_ATTRIBUTES.contains(&attribute)
}

/// DynamoDB's write units for an item (or index entry) of `bytes`: one per
/// started KB, at least one.
pub fn write_units(bytes: usize) -> usize {
    bytes.div_ceil(1024).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_from_an_index_carry_keys_and_the_counted_attributes_only() {
        for attribute in ["traceId", "entryKey", "timeMs", "category", "incidentId"] {
            assert!(carried_by_every_index(attribute), "{attribute}");
        }
        for attribute in ["reason", "details", "rawMessage", "eventType", "ruleDay"] {
            assert!(!carried_by_every_index(attribute), "{attribute}");
        }
    }

    #[test]
    fn write_units_are_per_started_kilobyte() {
        assert_eq!(write_units(0), 1);
        assert_eq!(write_units(1024), 1);
        assert_eq!(write_units(1025), 2);
        assert_eq!(write_units(350 * 1024), 350);
    }
}
