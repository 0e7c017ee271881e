//! In-memory implementations of the ports, for unit tests of the
//! pipeline's own logic without AWS. Each can be told to refuse a key or an
//! alert, retryably or for good, to prove what one refusal costs.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;
use std::time::Instant;

use crate::error::{PublishError, StoreError};
use crate::notify::alert::RenderedAlert;
use crate::ports::{
    AlertGate, AlertPublisher, Claim, GateDecision, IncidentStore, PublishReport, WriteStats,
};
use crate::store::item::{Attr, Item};

/// Items by (traceId, entryKey): a redelivery overwrites.
#[derive(Default)]
pub struct MemoryStore {
    pub items: Mutex<HashMap<(String, String), Item>>,
}

impl IncidentStore for MemoryStore {
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

/// One alert per key, ever (no window): enough to test who sends.
#[derive(Default)]
pub struct MemoryGate {
    pub sent: Mutex<HashSet<String>>,
    /// Keys whose claim fails: retryably (`None`), or for good with this
    /// `code: message`.
    pub refuse: Mutex<HashMap<String, Option<String>>>,
}

impl AlertGate for MemoryGate {
    async fn claim(
        &self,
        key: &str,
        fingerprint: &str,
        _count: u64,
        _now_ms: i64,
        _lease_until_ms: i64,
    ) -> Result<GateDecision, StoreError> {
        if let Some(refusal) = self.refuse.lock().unwrap().get(key) {
            return Err(StoreError::Request {
                op: "UpdateItem",
                table: "memory".into(),
                message: refusal
                    .clone()
                    .unwrap_or_else(|| "ThrottlingException: slow down".into()),
                retryable: refusal.is_none(),
                source: None,
            });
        }
        if !self.sent.lock().unwrap().insert(key.to_owned()) {
            return Ok(GateDecision::Suppressed);
        }
        Ok(GateDecision::Send(Claim {
            key: key.to_owned(),
            fingerprint: fingerprint.to_owned(),
            token: "t".into(),
            suppressed_since_last: 0,
        }))
    }

    async fn confirm(&self, _: &Claim, _: Instant) -> Result<(), StoreError> {
        Ok(())
    }

    async fn release(&self, claim: &Claim, _: Instant) -> Result<(), StoreError> {
        self.sent.lock().unwrap().remove(&claim.key);
        Ok(())
    }
}

/// Keeps what it published.
#[derive(Default)]
pub struct MemoryPublisher {
    pub published: Mutex<Vec<RenderedAlert>>,
    /// Alert keys SNS refuses for good (a sender fault).
    pub reject: Mutex<HashSet<String>>,
}

impl AlertPublisher for MemoryPublisher {
    async fn publish(
        &self,
        alerts: &[RenderedAlert],
        _: Instant,
    ) -> Result<PublishReport, (Vec<usize>, PublishError)> {
        let reject = self.reject.lock().unwrap();
        let mut report = PublishReport {
            requests: 1,
            rejected: Vec::new(),
        };
        for (i, alert) in alerts.iter().enumerate() {
            if reject.contains(&alert.key) {
                report
                    .rejected
                    .push((i, "InvalidParameter: refused".into()));
            } else {
                self.published.lock().unwrap().push(alert.clone());
            }
        }
        Ok(report)
    }
}
