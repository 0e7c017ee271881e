//! Silences: maintenance windows and known problems. While one matches an
//! incident, entries are stored and the incident tracked as usual, but its
//! notifications are held back (and counted); once it ends, the next batch or
//! sweep sends what is due, with the count. Matching is plain data against
//! the incident's key, like Alertmanager's matchers against labels.

use crate::incident::delta::Delta;
use crate::incident::key::KeyKind;
use crate::incident::lifecycle::IncidentState;
use crate::model::category::Category;

/// The longest silence: a forgotten one must not mute a fleet for good.
pub const MAX_SILENCE_MS: i64 = 30 * 86_400_000;

/// What a silence matches; every matcher given must match. `all` (and only
/// `all`) matches every incident.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Matchers {
    pub all: bool,
    pub category: Option<Category>,
    pub rule: Option<String>,
    pub event_type: Option<String>,
    /// The log entry's `reason` (or a CloudTrail `errorCode`).
    pub reason: Option<String>,
    pub client: Option<String>,
}

impl Matchers {
    /// Whether any matcher is set (a silence without one is refused).
    pub fn is_empty(&self) -> bool {
        !self.all
            && self.category.is_none()
            && self.rule.is_none()
            && self.event_type.is_none()
            && self.reason.is_none()
            && self.client.is_none()
    }

    /// Whether `incident` (and the batch that made a notification due, when
    /// one did) falls under these matchers. A client matcher matches when
    /// every client named is that client: a silence for one device under
    /// repair must not hide the same failure spreading to others.
    pub fn matches(&self, incident: &IncidentState, delta: Option<&Delta>) -> bool {
        if self.is_empty() {
            return false;
        }
        let key = &incident.key;
        let same = |want: &Option<String>, have: Option<&str>| {
            want.as_deref()
                .is_none_or(|w| have.is_some_and(|h| h.eq_ignore_ascii_case(w)))
        };
        let rule =
            matches!(key.kind, KeyKind::Rule | KeyKind::RuleAction).then_some(key.first.as_str());
        let event_type = match key.kind {
            KeyKind::Operation | KeyKind::Job | KeyKind::ApiCall => Some(key.first.as_str()),
            KeyKind::Rule => Some(key.category.as_str()),
            KeyKind::RuleAction | KeyKind::LogGroup | KeyKind::Overflow => None,
        };
        let reason = match key.kind {
            KeyKind::Operation | KeyKind::ApiCall => key.second.as_deref(),
            _ => None,
        };
        let clients: Vec<&str> = match delta {
            Some(d) if !d.top_clients.is_empty() => {
                d.top_clients.iter().map(|(c, _)| c.as_str()).collect()
            }
            _ => incident.top_clients.iter().map(String::as_str).collect(),
        };
        let client = self
            .client
            .as_deref()
            .is_none_or(|want| !clients.is_empty() && clients.iter().all(|c| *c == want));
        self.category.is_none_or(|c| c == key.category)
            && same(&self.rule, rule)
            && same(&self.event_type, event_type)
            && same(&self.reason, reason)
            && client
    }
}

/// A silence as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Silence {
    pub id: String,
    pub matchers: Matchers,
    pub starts_ms: i64,
    pub ends_ms: i64,
    /// Why (the operator's words).
    pub comment: String,
    pub created_by: String,
}

impl Silence {
    pub fn is_active(&self, now_ms: i64) -> bool {
        self.starts_ms <= now_ms && now_ms < self.ends_ms
    }
}

/// The first active silence that matches, if any.
pub fn silenced_by<'s>(
    silences: &'s [Silence],
    incident: &IncidentState,
    delta: Option<&Delta>,
    now_ms: i64,
) -> Option<&'s Silence> {
    silences
        .iter()
        .find(|s| s.is_active(now_ms) && s.matchers.matches(incident, delta))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::incident::key::IncidentKey;
    use crate::incident::lifecycle::tests::open_incident;

    fn incident(
        category: Category,
        kind: KeyKind,
        first: &str,
        second: Option<&str>,
    ) -> IncidentState {
        let mut i = open_incident();
        i.key = IncidentKey {
            category,
            kind,
            first: first.into(),
            second: second.map(Into::into),
        };
        i.top_clients = vec!["dev-1".into()];
        i
    }

    fn silence(matchers: Matchers) -> Silence {
        Silence {
            id: "s1".into(),
            matchers,
            starts_ms: 100,
            ends_ms: 200,
            comment: "maintenance".into(),
            created_by: "ana".into(),
        }
    }

    #[test]
    fn every_matcher_given_must_match_and_none_matches_nothing() {
        let throttled = incident(
            Category::RuleMessageThrottled,
            KeyKind::Rule,
            "ingest",
            None,
        );
        let auth = incident(
            Category::Failure,
            KeyKind::Operation,
            "Connect",
            Some("AUTHORIZATION_FAILURE"),
        );
        let rule = Matchers {
            rule: Some("ingest".into()),
            ..Matchers::default()
        };
        assert!(rule.matches(&throttled, None));
        assert!(!rule.matches(&auth, None));
        let reason = Matchers {
            event_type: Some("connect".into()),
            reason: Some("authorization_failure".into()),
            ..Matchers::default()
        };
        assert!(reason.matches(&auth, None), "case-insensitive");
        // Each matcher counts on its own: another reason of the same event
        // type is not silenced.
        let duplicate = incident(
            Category::Failure,
            KeyKind::Operation,
            "Connect",
            Some("DUPLICATE_CLIENT_ID"),
        );
        assert!(!reason.matches(&duplicate, None));
        let narrower = Matchers {
            category: Some(Category::Warning),
            ..reason.clone()
        };
        assert!(!narrower.matches(&auth, None));
        assert!(
            !Matchers::default().matches(&auth, None),
            "no matcher, no match"
        );
        let all = Matchers {
            all: true,
            ..Matchers::default()
        };
        assert!(all.matches(&auth, None) && all.matches(&throttled, None));
    }

    #[test]
    fn a_client_silence_holds_back_only_what_that_client_alone_causes() {
        let mut auth = incident(Category::Failure, KeyKind::Operation, "Connect", Some("X"));
        let one = Matchers {
            client: Some("dev-1".into()),
            ..Matchers::default()
        };
        assert!(one.matches(&auth, None));
        auth.top_clients.push("dev-2".into());
        assert!(
            !one.matches(&auth, None),
            "the failure spread to another device"
        );
    }

    /// When a batch made the notification due, its own clients decide: a
    /// silence for dev-1 does not hold back a batch of dev-2's failures,
    /// though the incident so far named only dev-1; a batch that names no
    /// client (its entries had none) is judged by the incident's clients.
    #[test]
    fn a_client_silence_is_judged_by_the_batch_that_made_the_notification_due() {
        let auth = incident(Category::Failure, KeyKind::Operation, "Connect", Some("X"));
        let one = Matchers {
            client: Some("dev-1".into()),
            ..Matchers::default()
        };
        let batch = |clients: &[&str]| Delta {
            key: auth.key.clone(),
            entries: clients.len().max(1) as u64,
            first_ms: 0,
            last_ms: 0,
            clients: Default::default(),
            top_clients: clients.iter().map(|c| ((*c).to_owned(), 1)).collect(),
            sample_trace_ids: Vec::new(),
            details: None,
            account_id: None,
            members: Vec::new(),
        };
        assert_eq!(auth.top_clients, ["dev-1"]);
        assert!(one.matches(&auth, Some(&batch(&["dev-1"]))));
        assert!(
            !one.matches(&auth, Some(&batch(&["dev-2"]))),
            "the batch's failures come from another device"
        );
        assert!(
            one.matches(&auth, Some(&batch(&[]))),
            "no client in the batch: the incident's clients decide"
        );
    }

    #[test]
    fn a_silence_is_active_from_its_start_until_its_end() {
        let auth = incident(Category::Failure, KeyKind::Operation, "Connect", Some("X"));
        let s = [silence(Matchers {
            all: true,
            ..Matchers::default()
        })];
        assert!(silenced_by(&s, &auth, None, 99).is_none());
        assert_eq!(
            silenced_by(&s, &auth, None, 100).map(|s| s.id.as_str()),
            Some("s1")
        );
        assert!(silenced_by(&s, &auth, None, 200).is_none());
    }
}
