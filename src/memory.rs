//! In-memory implementations of the ports, for unit tests of the
//! pipeline's own logic without AWS. Each can be told to refuse an incident
//! or a notification, retryably or for good, to prove what one refusal costs.
//! The lifecycle's race-freedom is the DynamoDB adapter's, proven on moto;
//! what it keeps is modelled here the same way: batches recognised by a
//! marker naming the incident that counted them (across generations),
//! distinct clients exact up to 32 then estimated, a bounded history, and
//! the sweep's view holding only what the sweep decides on.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;
use std::time::Instant;

use crate::error::{PublishError, StoreError};
use crate::incident::clients::Tally;
use crate::incident::delta::Delta;
use crate::incident::lifecycle::{IncidentState, State, StoredClaim, Transition};
use crate::incident::silence::Silence;
use crate::notify::notification::RenderedNotification;
use crate::ports::{
    opening_minute, Counting, EntryStore, IncidentStore, NotificationClaim, NotificationPublisher,
    PublishReport, Recorded, WriteStats,
};
use crate::store::item::{Attr, Item};

/// Items by (traceId, entryKey): a redelivery overwrites.
#[derive(Default)]
pub struct MemoryStore {
    pub items: Mutex<HashMap<(String, String), Item>>,
}

impl EntryStore for MemoryStore {
    async fn put_items(&self, items: Vec<Item>, _: Instant) -> Result<WriteStats, StoreError> {
        let n = items.len();
        let mut stored = self.items.lock().unwrap();
        for item in items {
            let key = |name| {
                item.get(name)
                    .and_then(Attr::as_str)
                    .unwrap_or_default()
                    .to_owned()
            };
            stored.insert((key("traceId"), key("entryKey")), item);
        }
        Ok(WriteStats {
            items: n,
            requests: n.div_ceil(25) as u32,
            retries: 0,
        })
    }
}

/// Incidents by key hash, with the batches counted for each.
#[derive(Default)]
pub struct MemoryIncidents {
    pub incidents: Mutex<HashMap<String, (IncidentState, HashSet<String>)>>,
    /// The batch markers: (key hash, fingerprint) → the incident that counted it.
    pub markers: Mutex<HashMap<(String, String), String>>,
    /// Resolved incidents by id, as their records.
    pub records: Mutex<HashMap<String, IncidentState>>,
    /// The distinct clients of each key's current incident.
    pub clients: Mutex<HashMap<String, Tally>>,
    /// Incident key hashes whose requests fail: retryably (`None`), or for
    /// good with this `code: message`.
    pub refuse: Mutex<HashMap<String, Option<String>>>,
    pub silences: Mutex<Vec<Silence>>,
    /// Incident key hashes whose notification claims another invocation
    /// holds (a claim lost to a concurrent batch or sweep).
    pub claimed_elsewhere: Mutex<HashSet<String>>,
    /// The lease of every claim granted, in order.
    pub leases: Mutex<Vec<i64>>,
    /// Keys allowed to open per minute (the openings budget).
    pub openings: Mutex<HashMap<i64, HashSet<String>>>,
    /// (key hash, fingerprint) of deltas refused by the openings budget.
    pub folded: Mutex<HashSet<(String, String)>>,
}

impl MemoryIncidents {
    fn refusal(&self, item_key: &str) -> Result<(), StoreError> {
        match self.refuse.lock().unwrap().get(item_key) {
            None => Ok(()),
            Some(refusal) => Err(StoreError::Request {
                op: "UpdateItem",
                table: "memory".into(),
                message: refusal
                    .clone()
                    .unwrap_or_else(|| "ThrottlingException: slow down".into()),
                retryable: refusal.is_none(),
                source: None,
            }),
        }
    }
}

impl IncidentStore for MemoryIncidents {
    async fn record(&self, delta: &Delta, counting: &Counting<'_>) -> Result<Recorded, StoreError> {
        let Counting {
            log_group,
            fingerprint,
            now_ms,
            timing,
            openings_per_minute,
        } = *counting;
        let item_key = delta.key.hash();
        self.refusal(&item_key)?;
        let mut all = self.incidents.lock().unwrap();
        let mut markers = self.markers.lock().unwrap();
        let marker = (item_key.clone(), fingerprint.to_owned());
        if self.folded.lock().unwrap().contains(&marker) {
            return Ok(Recorded::Folded);
        }
        // Counted before: into the incident the marker names, whatever
        // became of it since (a record once resolved).
        if let Some(id) = markers.get(&marker) {
            let counted = match all.get(&item_key) {
                Some((incident, _))
                    if &incident.incident_id == id && incident.state == State::Open =>
                {
                    Some(incident.clone())
                }
                _ => self.records.lock().unwrap().get(id).cloned(),
            };
            if let Some(incident) = counted {
                return Ok(Recorded::AlreadyCounted(incident));
            }
        }
        let mut clients = self.clients.lock().unwrap();
        match all.get_mut(&item_key) {
            Some((incident, batches)) if incident.state == State::Open => {
                batches.insert(fingerprint.to_owned());
                if let Some((reopenings, flapping)) = incident.returns_at(now_ms, timing) {
                    (incident.reopenings, incident.flapping) = (reopenings, flapping);
                }
                incident.entries += delta.entries;
                incident.seq += 1;
                incident.last_activity_ms = now_ms;
                incident.last_seen_ms = delta.last_ms;
                let tally = clients.entry(item_key).or_default();
                tally.add(&delta.clients);
                let count = tally.count();
                (incident.distinct_clients, incident.clients_estimated) =
                    (count.distinct, count.estimated);
                markers.insert(marker, incident.incident_id.clone());
                Ok(Recorded::Counted {
                    incident: incident.clone(),
                    opened: false,
                })
            }
            previous => {
                if !delta.key.is_overflow() {
                    let mut openings = self.openings.lock().unwrap();
                    let granted = openings.entry(opening_minute(now_ms)).or_default();
                    if !granted.contains(&item_key) && granted.len() >= openings_per_minute as usize
                    {
                        self.folded.lock().unwrap().insert(marker);
                        return Ok(Recorded::Folded);
                    }
                    granted.insert(item_key.clone());
                }
                let generation = previous.map_or(1, |(p, _)| p.generation + 1);
                let incident = IncidentState::opened(delta, log_group, generation, now_ms);
                clients.insert(item_key.clone(), Tally::of(&delta.clients));
                markers.insert(marker, incident.incident_id.clone());
                all.insert(
                    item_key,
                    (incident.clone(), HashSet::from([fingerprint.to_owned()])),
                );
                Ok(Recorded::Counted {
                    incident,
                    opened: true,
                })
            }
        }
    }

    async fn claim(
        &self,
        incident: &IncidentState,
        transition: Transition,
        token: &str,
        now_ms: i64,
        lease_until_ms: i64,
    ) -> Result<Option<IncidentState>, StoreError> {
        self.refusal(&incident.item_key)?;
        if self
            .claimed_elsewhere
            .lock()
            .unwrap()
            .contains(&incident.item_key)
        {
            return Ok(None);
        }
        let mut all = self.incidents.lock().unwrap();
        let Some((stored, _)) = all.get_mut(&incident.item_key) else {
            return Ok(None);
        };
        let free = stored
            .claim
            .as_ref()
            .is_none_or(|c| c.lease_until_ms < now_ms);
        // As the DynamoDB store's conditions: a resolution once, anything
        // else on the count of notifications before it.
        let turn = match transition {
            Transition::Resolved => !stored.resolved_sent,
            _ => stored.state == State::Open && stored.sent == transition.step(),
        };
        if !free || stored.incident_id != incident.incident_id || !turn {
            return Ok(None);
        }
        self.leases.lock().unwrap().push(lease_until_ms);
        stored.claim = Some(StoredClaim {
            token: token.to_owned(),
            lease_until_ms,
            step: transition.name(),
        });
        Ok(Some(stored.clone()))
    }

    async fn confirm(
        &self,
        claim: &NotificationClaim,
        now_ms: i64,
        _: Instant,
    ) -> Result<(), StoreError> {
        let mut all = self.incidents.lock().unwrap();
        if let Some((stored, _)) = all.get_mut(&claim.item_key) {
            if stored
                .claim
                .as_ref()
                .is_some_and(|c| c.token == claim.token)
            {
                stored.claim = None;
                stored.remember(claim.transition, now_ms);
                if claim.transition == Transition::Resolved {
                    stored.resolved_sent = true;
                    self.records
                        .lock()
                        .unwrap()
                        .insert(stored.incident_id.clone(), stored.clone());
                } else {
                    stored.sent = claim.transition.step() + 1;
                    stored.last_notified_ms = Some(now_ms);
                    stored.notified_entries = claim.entries;
                }
            }
        }
        Ok(())
    }

    async fn release(&self, claim: &NotificationClaim, _: Instant) -> Result<(), StoreError> {
        let mut all = self.incidents.lock().unwrap();
        if let Some((stored, _)) = all.get_mut(&claim.item_key) {
            if stored
                .claim
                .as_ref()
                .is_some_and(|c| c.token == claim.token)
            {
                stored.claim = None;
            }
        }
        Ok(())
    }

    /// What the sweep looks at, as the `sweep` index holds it: open
    /// incidents, and resolved ones whose resolution is still to announce,
    /// with only what the sweep decides on ([`IncidentState::as_watched`]).
    async fn watched(&self, limit: usize) -> Result<Vec<IncidentState>, StoreError> {
        let all = self.incidents.lock().unwrap();
        let mut watched: Vec<IncidentState> = all
            .values()
            .map(|(incident, _)| incident)
            .filter(|i| i.state == State::Open || (i.sent > 0 && !i.resolved_sent))
            .map(IncidentState::as_watched)
            .collect();
        watched.sort_by(|a, b| a.item_key.cmp(&b.item_key));
        watched.truncate(limit);
        Ok(watched)
    }

    /// Resolves the incident only as the sweep read it: still open, and no
    /// batch counted since (the same `seq`), as the DynamoDB store's condition.
    async fn resolve(
        &self,
        incident: &IncidentState,
        now_ms: i64,
        timing: crate::incident::lifecycle::Timing,
    ) -> Result<Option<IncidentState>, StoreError> {
        self.refusal(&incident.item_key)?;
        let mut all = self.incidents.lock().unwrap();
        let Some((stored, _)) = all.get_mut(&incident.item_key) else {
            return Ok(None);
        };
        if stored.incident_id != incident.incident_id
            || stored.state != State::Open
            || stored.seq != incident.seq
            || stored.sent != incident.sent
            || !stored.is_due_to_resolve(now_ms, timing)
        {
            return Ok(None);
        }
        stored.state = State::Resolved;
        stored.resolved_ms = Some(now_ms);
        // Written from the whole incident, not the sweep's view of it.
        self.records
            .lock()
            .unwrap()
            .insert(stored.incident_id.clone(), stored.clone());
        Ok(Some(stored.clone()))
    }

    async fn silences(&self, _: i64) -> Result<Vec<Silence>, StoreError> {
        Ok(self.silences.lock().unwrap().clone())
    }

    async fn hold_back(&self, incident: &IncidentState, _: &str) -> Result<(), StoreError> {
        if let Some((stored, _)) = self.incidents.lock().unwrap().get_mut(&incident.item_key) {
            stored.held_back += 1;
        }
        Ok(())
    }
}

/// Keeps what it published.
#[derive(Default)]
pub struct MemoryPublisher {
    pub published: Mutex<Vec<RenderedNotification>>,
    /// Notification ids SNS refuses for good (a sender fault).
    pub reject: Mutex<HashSet<String>>,
}

impl NotificationPublisher for MemoryPublisher {
    async fn publish(
        &self,
        notifications: &[RenderedNotification],
        _: Instant,
    ) -> Result<PublishReport, (Vec<usize>, PublishError)> {
        let reject = self.reject.lock().unwrap();
        let mut report = PublishReport {
            requests: 1,
            rejected: Vec::new(),
        };
        for (i, notification) in notifications.iter().enumerate() {
            if reject.contains(&notification.id) {
                report
                    .rejected
                    .push((i, "InvalidParameter: refused".into()));
            } else {
                self.published.lock().unwrap().push(notification.clone());
            }
        }
        Ok(report)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::incident::clients::Clients;
    use crate::incident::key::{IncidentKey, KeyKind};
    use crate::model::category::Category;

    fn delta(devices: std::ops::Range<usize>) -> Delta {
        let mut clients = Clients::default();
        for d in devices.clone() {
            clients.add(&format!("dev-{d}"));
        }
        Delta {
            key: IncidentKey {
                category: Category::RuleNotFound,
                kind: KeyKind::Rule,
                first: "r".into(),
                second: None,
            },
            entries: devices.len() as u64,
            first_ms: 0,
            last_ms: 0,
            clients,
            top_clients: vec![("dev-0".into(), 1)],
            sample_trace_ids: vec!["t".into()],
            details: Some("d".into()),
            account_id: None,
            members: Vec::new(),
        }
    }

    /// The model keeps what the DynamoDB store keeps: a batch's marker names
    /// the incident that counted it, also once a later incident of the key
    /// is open; past 32 clients the count is the estimate; the sweep's view
    /// holds only what the sweep decides on.
    #[tokio::test]
    async fn the_model_keeps_what_the_dynamodb_store_keeps() {
        use crate::incident::lifecycle::tests::TIMING;
        let at = |fingerprint: &'static str, now_ms: i64| Counting {
            log_group: "g",
            fingerprint,
            now_ms,
            timing: TIMING,
            openings_per_minute: 20,
        };
        let store = MemoryIncidents::default();
        let counted = |r: Recorded| match r {
            Recorded::Counted { incident, .. } => incident,
            other => panic!("{other:?}"),
        };
        let first = counted(store.record(&delta(0..10), &at("b1", 0)).await.unwrap());
        assert!(matches!(
            store.record(&delta(0..10), &at("b1", 1)).await.unwrap(),
            Recorded::AlreadyCounted(i) if i.incident_id == first.incident_id
        ));
        let watched = store.watched(10).await.unwrap();
        assert_eq!(watched, [first.as_watched()]);
        assert!(store
            .resolve(&watched[0], 2 + TIMING.resolves_after_ms(false), TIMING)
            .await
            .unwrap()
            .is_some());
        let second = counted(store.record(&delta(0..10), &at("b2", 3)).await.unwrap());
        assert_eq!(second.generation, 2);
        match store.record(&delta(0..10), &at("b1", 4)).await.unwrap() {
            Recorded::AlreadyCounted(i) => {
                assert_eq!(
                    (i.incident_id, i.state),
                    (first.incident_id, State::Resolved)
                )
            }
            other => panic!("{other:?}"),
        }
        assert!(!second.clients_estimated);
        let past = counted(store.record(&delta(10..60), &at("b3", 5)).await.unwrap());
        assert!(past.clients_estimated);
        let error = past.distinct_clients as f64 / 60.0 - 1.0;
        assert!(error.abs() < 0.3, "{}", past.distinct_clients);
    }
}
