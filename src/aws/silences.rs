//! The silence table over DynamoDB: partition key `silenceId`. Small by
//! nature (what operators muted, kept a week past its end by TTL), so the
//! function reads the active ones with one Scan, at most every 30 s.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use aws_sdk_dynamodb::types::AttributeValue;
use aws_sdk_dynamodb::Client;

use super::incident_item::{n, number, s, text, Attributes};
use crate::aws::{is_condition_failure, store_error};
use crate::error::StoreError;
use crate::incident::silence::{Matchers, Silence};

/// How long the function trusts the silences it read.
pub const SILENCE_CACHE: Duration = Duration::from_secs(30);
/// How long an ended silence is kept (for `silences --all` and `show`).
const KEPT_AFTER_END_S: i64 = 7 * 86_400;

#[derive(Debug)]
pub struct SilenceTable {
    client: Client,
    table: String,
    cache: Mutex<Option<(Instant, Vec<Silence>)>>,
    /// How long a read stays good ([`SILENCE_CACHE`] unless configured).
    refresh: Duration,
}

impl Clone for SilenceTable {
    fn clone(&self) -> Self {
        Self::new(self.client.clone(), self.table.clone())
    }
}

pub fn silence_of(item: &Attributes) -> Option<Silence> {
    let matcher = |name: &str| text(item, name).map(str::to_owned);
    Some(Silence {
        id: text(item, "silenceId")?.to_owned(),
        matchers: Matchers {
            all: item
                .get("matchAll")
                .and_then(|v| v.as_bool().ok())
                .copied()
                .unwrap_or(false),
            category: text(item, "matchCategory").and_then(|c| c.parse().ok()),
            rule: matcher("matchRule"),
            event_type: matcher("matchEventType"),
            reason: matcher("matchReason"),
            client: matcher("matchClient"),
        },
        starts_ms: number(item, "startsMs")?,
        ends_ms: number(item, "endsMs")?,
        comment: text(item, "comment").unwrap_or_default().to_owned(),
        created_by: text(item, "createdBy").unwrap_or_default().to_owned(),
    })
}

fn item_of(silence: &Silence) -> Attributes {
    let m = &silence.matchers;
    let mut item: Attributes = HashMap::from([
        ("silenceId".into(), s(&silence.id)),
        ("startsMs".into(), n(silence.starts_ms)),
        ("endsMs".into(), n(silence.ends_ms)),
        ("comment".into(), s(&silence.comment)),
        ("createdBy".into(), s(&silence.created_by)),
        (
            "expiresAt".into(),
            n(silence.ends_ms / 1000 + KEPT_AFTER_END_S),
        ),
    ]);
    if m.all {
        item.insert("matchAll".into(), AttributeValue::Bool(true));
    }
    let optional = [
        ("matchCategory", m.category.map(|c| c.as_str().to_owned())),
        ("matchRule", m.rule.clone()),
        ("matchEventType", m.event_type.clone()),
        ("matchReason", m.reason.clone()),
        ("matchClient", m.client.clone()),
    ];
    for (name, value) in optional {
        if let Some(value) = value {
            item.insert(name.into(), s(value));
        }
    }
    item
}

impl SilenceTable {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
            cache: Mutex::new(None),
            refresh: SILENCE_CACHE,
        }
    }

    /// Reads the silences again after `refresh` (zero: on every call).
    pub fn with_refresh(mut self, refresh: Duration) -> Self {
        self.refresh = refresh;
        self
    }

    /// Every silence not yet ended at `now_ms` (one Scan, paged if it must).
    pub async fn read_current(&self, now_ms: i64) -> Result<Vec<Silence>, StoreError> {
        let mut found = Vec::new();
        let mut start = None;
        loop {
            let page = self
                .client
                .scan()
                .table_name(&self.table)
                .filter_expression("endsMs > :now")
                .expression_attribute_values(":now", n(now_ms))
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(|e| store_error("Scan", &self.table, e))?;
            found.extend(page.items().iter().filter_map(silence_of));
            start = page.last_evaluated_key.filter(|k| !k.is_empty());
            if start.is_none() {
                found.sort_by_key(|s: &Silence| s.ends_ms);
                return Ok(found);
            }
        }
    }

    /// The silences in force at `now_ms`, read at most once per `refresh`.
    pub async fn active(&self, now_ms: i64) -> Result<Vec<Silence>, StoreError> {
        if let Some((read_at, silences)) = &*self.cache.lock().expect("not poisoned") {
            if read_at.elapsed() < self.refresh {
                return Ok(silences
                    .iter()
                    .filter(|s| s.is_active(now_ms))
                    .cloned()
                    .collect());
            }
        }
        let silences = self.read_current(now_ms).await?;
        *self.cache.lock().expect("not poisoned") = Some((Instant::now(), silences.clone()));
        Ok(silences
            .into_iter()
            .filter(|s| s.is_active(now_ms))
            .collect())
    }

    pub async fn create(&self, silence: &Silence) -> Result<(), StoreError> {
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item_of(silence)))
            .condition_expression("attribute_not_exists(silenceId)")
            .send()
            .await
            .map(|_| ())
            .map_err(|e| store_error("PutItem", &self.table, e))
    }

    /// Ends silence `id` at `now_ms`: `false` when there is no such silence
    /// still in force.
    pub async fn end(&self, id: &str, now_ms: i64) -> Result<bool, StoreError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("silenceId", s(id))
            .condition_expression("attribute_exists(silenceId) AND endsMs > :now")
            .update_expression("SET endsMs = :now, expiresAt = :exp")
            .expression_attribute_values(":now", n(now_ms))
            .expression_attribute_values(":exp", n(now_ms / 1000 + KEPT_AFTER_END_S))
            .send()
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(e) if is_condition_failure(&e) => Ok(false),
            Err(e) => Err(store_error("UpdateItem", &self.table, e)),
        }
    }
}
