//! In-memory implementations of the ports, for unit tests of the
//! pipeline's own logic without AWS. Each can be told to refuse an incident
//! or a notification, retryably or for good, to prove what one refusal costs.
//! The lifecycle's race-freedom is the DynamoDB adapter's, proven on moto.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;
use std::time::Instant;

use crate::error::{PublishError, StoreError};
use crate::incident::delta::Delta;
use crate::incident::lifecycle::{IncidentState, State, StoredClaim, Transition};
use crate::incident::silence::Silence;
use crate::notify::notification::RenderedNotification;
use crate::ports::{
    EntryStore, IncidentStore, NotificationClaim, NotificationPublisher, PublishReport, Recorded,
    WriteStats,
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
    /// Incident key hashes whose requests fail: retryably (`None`), or for
    /// good with this `code: message`.
    pub refuse: Mutex<HashMap<String, Option<String>>>,
    pub silences: Mutex<Vec<Silence>>,
    /// Incident key hashes whose notification claims another invocation
    /// holds (a claim lost to a concurrent batch or sweep).
    pub claimed_elsewhere: Mutex<HashSet<String>>,
    /// The lease of every claim granted, in order.
    pub leases: Mutex<Vec<i64>>,
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
    async fn record(
        &self,
        delta: &Delta,
        log_group: &str,
        fingerprint: &str,
        now_ms: i64,
    ) -> Result<Recorded, StoreError> {
        let item_key = delta.key.hash();
        self.refusal(&item_key)?;
        let mut all = self.incidents.lock().unwrap();
        match all.get_mut(&item_key) {
            Some((incident, batches)) if incident.state == State::Open => {
                if !batches.insert(fingerprint.to_owned()) {
                    return Ok(Recorded::AlreadyCounted(incident.clone()));
                }
                incident.entries += delta.entries;
                incident.seq += 1;
                incident.last_activity_ms = now_ms;
                Ok(Recorded::Counted {
                    incident: incident.clone(),
                    opened: false,
                })
            }
            previous => {
                let generation = previous.map_or(1, |(p, _)| p.generation + 1);
                let incident = IncidentState::opened(delta, log_group, generation, now_ms);
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
                if claim.transition == Transition::Resolved {
                    stored.resolved_sent = true;
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

    /// What the sweep looks at, as the `watched` index holds it: open
    /// incidents, and resolved ones whose resolution is still to announce.
    async fn watched(&self, limit: usize) -> Result<Vec<IncidentState>, StoreError> {
        let all = self.incidents.lock().unwrap();
        let mut watched: Vec<IncidentState> = all
            .values()
            .map(|(incident, _)| incident)
            .filter(|i| i.state == State::Open || (i.sent > 0 && !i.resolved_sent))
            .cloned()
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
    ) -> Result<Option<IncidentState>, StoreError> {
        self.refusal(&incident.item_key)?;
        let mut all = self.incidents.lock().unwrap();
        let Some((stored, _)) = all.get_mut(&incident.item_key) else {
            return Ok(None);
        };
        if stored.incident_id != incident.incident_id
            || stored.state != State::Open
            || stored.seq != incident.seq
        {
            return Ok(None);
        }
        stored.state = State::Resolved;
        stored.resolved_ms = Some(now_ms);
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
