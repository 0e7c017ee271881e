//! Incidents of one batch grouped by what an alert is about: per category
//! and rule (or client, or event type), with counts, times and samples.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::model::category::{Category, CategorySet};
use crate::model::record::Incident;
use crate::store::keys::truncate_str;

const SAMPLE_TRACES: usize = 5;
const MAX_EVENT_TYPES: usize = 5;

/// What an alert is about, after the category.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum SubjectKind {
    Rule,
    Client,
    EventType,
    /// Unparseable lines have neither.
    LogGroup,
}

impl SubjectKind {
    pub fn label(self) -> &'static str {
        match self {
            Self::Rule => "rule",
            Self::Client => "client",
            Self::EventType => "event type",
            Self::LogGroup => "log group",
        }
    }
}

/// The incidents of one batch that share an alert key.
#[derive(Debug, Clone, PartialEq)]
pub struct AlertGroup {
    pub category: Category,
    pub subject_kind: SubjectKind,
    pub subject: String,
    pub count: u64,
    pub first_ms: i64,
    pub last_ms: i64,
    pub reason: Option<String>,
    pub details: Option<String>,
    pub event_types: Vec<String>,
    pub sample_trace_ids: Vec<String>,
    pub account_id: Option<String>,
}

impl AlertGroup {
    /// The suppression key: one alert per key per window. Bounded like
    /// every key this function writes (a prefix and a hash past 512 bytes),
    /// whatever the rule or client name holds.
    pub fn key(&self) -> String {
        crate::store::keys::bounded_key_part(&format!(
            "{}|{:?}|{}",
            self.category, self.subject_kind, self.subject
        ))
    }
}

fn subject_of<'i>(incident: &'i Incident, log_group: &'i str) -> (SubjectKind, &'i str) {
    let present = |s: &'i Option<String>| s.as_deref().filter(|v| !v.is_empty());
    if let Some(rule) = present(&incident.rule_name) {
        (SubjectKind::Rule, rule)
    } else if let Some(client) = present(&incident.client_id).filter(|c| *c != "N/A") {
        (SubjectKind::Client, client)
    } else if let Some(event_type) = present(&incident.event_type) {
        (SubjectKind::EventType, event_type)
    } else {
        (SubjectKind::LogGroup, log_group)
    }
}

/// Groups the incidents of the alerting categories; deterministic order.
pub fn aggregate(
    incidents: &[Incident],
    alerting: CategorySet,
    log_group: &str,
) -> Vec<AlertGroup> {
    let mut groups: BTreeMap<(Category, SubjectKind, &str), AlertGroup> = BTreeMap::new();
    for incident in incidents.iter().filter(|i| alerting.contains(i.category)) {
        let (kind, subject) = subject_of(incident, log_group);
        let group = groups
            .entry((incident.category, kind, subject))
            .or_insert_with(|| AlertGroup {
                category: incident.category,
                subject_kind: kind,
                subject: subject.to_owned(),
                count: 0,
                first_ms: incident.time_ms,
                last_ms: incident.time_ms,
                reason: None,
                details: None,
                event_types: Vec::new(),
                sample_trace_ids: Vec::new(),
                account_id: None,
            });
        group.count += 1;
        group.first_ms = group.first_ms.min(incident.time_ms);
        group.last_ms = group.last_ms.max(incident.time_ms);
        if group.reason.is_none() {
            group.reason.clone_from(&incident.reason);
        }
        if group.details.is_none() {
            group.details = incident.details.clone().or_else(|| {
                incident
                    .parse_problem
                    .map(|p| format!("{p}: {}", truncate_str(&incident.message, 200)))
            });
        }
        if group.account_id.is_none() {
            group.account_id.clone_from(&incident.account_id);
        }
        if let Some(t) = &incident.event_type {
            if group.event_types.len() < MAX_EVENT_TYPES && !group.event_types.contains(t) {
                group.event_types.push(t.clone());
            }
        }
        if group.sample_trace_ids.len() < SAMPLE_TRACES
            && !group.sample_trace_ids.contains(&incident.trace_id)
        {
            group.sample_trace_ids.push(incident.trace_id.clone());
        }
    }
    groups.into_values().collect()
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn incident(
        category: Category,
        rule: Option<&str>,
        client: Option<&str>,
        trace: &str,
        t: i64,
    ) -> Incident {
        Incident {
            category,
            trace_id: trace.into(),
            event_id: format!("e-{trace}"),
            time_ms: t,
            event_type: Some("RuleMessageThrottled".into()),
            rule_name: rule.map(Into::into),
            client_id: client.map(Into::into),
            account_id: Some("123456789012".into()),
            reason: Some("RuleExecutionThrottled".into()),
            details: Some("Message for Rule r throttled".into()),
            message: "{}".into(),
            parse_problem: None,
            cloudtrail: false,
            fields: Vec::new(),
        }
    }

    const ALL: CategorySet = CategorySet::NONE;

    pub(crate) fn alerting() -> CategorySet {
        CategorySet::of(&[
            Category::RuleNotFound,
            Category::RuleMessageThrottled,
            Category::Failure,
        ])
    }

    #[test]
    fn one_group_per_category_and_rule_or_client() {
        let incidents = vec![
            incident(
                Category::RuleMessageThrottled,
                Some("r"),
                Some("c1"),
                "t1",
                30,
            ),
            incident(
                Category::RuleMessageThrottled,
                Some("r"),
                Some("c2"),
                "t2",
                10,
            ),
            incident(
                Category::RuleMessageThrottled,
                Some("r"),
                Some("c2"),
                "t2",
                20,
            ),
            incident(Category::Failure, None, Some("c1"), "t3", 5),
            incident(Category::Failure, None, None, "t4", 5),
            incident(Category::Warning, None, Some("c1"), "t5", 5),
        ];
        let groups = aggregate(&incidents, alerting(), "AWSIotLogsV2");
        let keys: Vec<_> = groups
            .iter()
            .map(|g| (g.category, g.subject_kind, g.subject.as_str(), g.count))
            .collect();
        assert_eq!(
            keys,
            [
                (Category::RuleMessageThrottled, SubjectKind::Rule, "r", 3),
                (Category::Failure, SubjectKind::Client, "c1", 1),
                (
                    Category::Failure,
                    SubjectKind::EventType,
                    "RuleMessageThrottled",
                    1
                ),
            ]
        );
        assert_eq!((groups[0].first_ms, groups[0].last_ms), (10, 30));
        assert_eq!(groups[0].sample_trace_ids, ["t1", "t2"]);
        assert!(aggregate(&incidents, ALL, "g").is_empty());
    }

    #[test]
    fn samples_are_bounded() {
        let incidents: Vec<_> = (0..100)
            .map(|n| incident(Category::Failure, Some("r"), None, &format!("t{n}"), n))
            .collect();
        let groups = aggregate(&incidents, alerting(), "g");
        assert_eq!(groups[0].count, 100);
        assert_eq!(groups[0].sample_trace_ids.len(), SAMPLE_TRACES);
    }
}
