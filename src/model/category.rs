//! The categories an entry can fall in, and sets of them as configured.

use std::fmt;
use std::str::FromStr;

/// An incident's category. Entries that are none of these are not incidents.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Category {
    /// A message was published to a rule that does not exist: every such message is dropped.
    RuleNotFound,
    /// The rules engine throttled a message: it was not processed.
    RuleMessageThrottled,
    /// Any other entry with `status: Failure` or `logLevel: ERROR`.
    Failure,
    /// `logLevel: WARN`.
    Warning,
    /// A log event that is not an IoT v2 JSON entry (legacy text, truncated JSON, no `eventType`).
    Unparseable,
}

impl Category {
    pub const ALL: [Category; 5] = [
        Self::RuleNotFound,
        Self::RuleMessageThrottled,
        Self::Failure,
        Self::Warning,
        Self::Unparseable,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::RuleNotFound => "RuleNotFound",
            Self::RuleMessageThrottled => "RuleMessageThrottled",
            Self::Failure => "Failure",
            Self::Warning => "Warning",
            Self::Unparseable => "Unparseable",
        }
    }

    /// For SNS filter policies: how urgently someone should look.
    pub fn severity(self) -> &'static str {
        match self {
            // Every message for the rule is being dropped until someone acts.
            Self::RuleNotFound => "critical",
            Self::RuleMessageThrottled | Self::Failure => "high",
            Self::Warning => "medium",
            Self::Unparseable => "low",
        }
    }

    pub fn index(self) -> usize {
        self as usize
    }
}

impl fmt::Display for Category {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl serde::Serialize for Category {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> serde::Deserialize<'de> for Category {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let name = std::borrow::Cow::<str>::deserialize(d)?;
        name.parse().map_err(serde::de::Error::custom)
    }
}

/// A name that is no category.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown category {0:?} (expected one of RuleNotFound, RuleMessageThrottled, Failure, Warning, Unparseable)")]
pub struct UnknownCategory(pub String);

impl FromStr for Category {
    type Err = UnknownCategory;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|c| c.as_str().eq_ignore_ascii_case(s.trim()))
            .ok_or_else(|| UnknownCategory(s.to_owned()))
    }
}

/// A set of categories, as configured for storing and for alerting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CategorySet(u8);

impl CategorySet {
    pub const NONE: Self = Self(0);

    pub fn of(categories: &[Category]) -> Self {
        Self(categories.iter().fold(0, |bits, c| bits | 1 << c.index()))
    }
    pub fn contains(self, category: Category) -> bool {
        self.0 & (1 << category.index()) != 0
    }
    pub fn is_subset_of(self, other: Self) -> bool {
        self.0 & !other.0 == 0
    }
    pub fn iter(self) -> impl Iterator<Item = Category> {
        Category::ALL.into_iter().filter(move |c| self.contains(*c))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn category_sets() {
        let s = CategorySet::of(&[Category::Failure, Category::Warning]);
        assert!(s.contains(Category::Failure) && !s.contains(Category::RuleNotFound));
        assert!(CategorySet::of(&[Category::Failure]).is_subset_of(s));
        assert!(!s.is_subset_of(CategorySet::of(&[Category::Failure])));
        assert_eq!(
            s.iter().collect::<Vec<_>>(),
            [Category::Failure, Category::Warning]
        );
    }
}
