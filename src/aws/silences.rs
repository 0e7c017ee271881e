//! The silence table over DynamoDB: partition key `silenceId`, and the
//! index [`BY_END`] that every silence is in (one partition, [`LIST_KEY`] =
//! [`LIST_VALUE`], sorted by `endsMs`). The function reads the silences in
//! force with a Query for `endsMs` after now, at most every 30 s: ended
//! silences (history, kept a week) are outside the key range, so they are
//! never read, however many there are. A Scan with a filter reads (and
//! bills) every silence kept, ended ones included, on every read: with
//! 10,001 silences it ran past the SDK's 10 s timeout (issue 27), and the
//! function then notified as if no silence were in force.

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
/// How long an ended silence is kept (for `silences --all`).
const KEPT_AFTER_END_S: i64 = 7 * 86_400;
/// The index of every silence by its end (template.yaml's `SilencesTable`).
pub const BY_END: &str = "byEnd";
/// The index's partition attribute, and its one value: the silences of a
/// stack are few and rarely written, so one partition holds them all and a
/// Query can ask for a range of ends (DynamoDB bounds only sort keys).
pub const LIST_KEY: &str = "listKey";
pub const LIST_VALUE: &str = "silences";
/// Silences per Query page (about 250 bytes each): each request stays
/// small and quick, well inside the SDK's 3 s attempt timeout, so a long
/// list costs more requests rather than one that times out, and a retry
/// repeats one page, not the whole read.
const PAGE: i32 = 500;

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
        (LIST_KEY.into(), s(LIST_VALUE)),
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

    /// Every silence not yet ended at `now_ms`, earliest end first: a Query
    /// of [`BY_END`] for ends after `now_ms`, so the items read (and billed)
    /// are the silences in force, never the ended ones. The index is
    /// eventually consistent: a silence just written may be missed for
    /// about a second.
    pub async fn read_current(&self, now_ms: i64) -> Result<Vec<Silence>, StoreError> {
        self.query(Some(now_ms), true).await
    }

    /// Every silence the table keeps (in force, and ended in the last 7
    /// days), latest end first: the same index, without the bound. For the
    /// operator's `silences --all`, never for the function.
    pub async fn read_history(&self) -> Result<Vec<Silence>, StoreError> {
        self.query(None, false).await
    }

    /// Queries [`BY_END`], for ends after `after_ms` if given, paged.
    async fn query(
        &self,
        after_ms: Option<i64>,
        earliest_first: bool,
    ) -> Result<Vec<Silence>, StoreError> {
        let mut values = HashMap::from([(":list".to_owned(), s(LIST_VALUE))]);
        let condition = match after_ms {
            Some(after) => {
                values.insert(":after".into(), n(after));
                "#list = :list AND endsMs > :after"
            }
            None => "#list = :list",
        };
        let mut found = Vec::new();
        let mut start = None;
        loop {
            let page = self
                .client
                .query()
                .table_name(&self.table)
                .index_name(BY_END)
                .key_condition_expression(condition)
                .expression_attribute_names("#list", LIST_KEY)
                .set_expression_attribute_values(Some(values.clone()))
                .scan_index_forward(earliest_first)
                .limit(PAGE)
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(|e| store_error("Query", &self.table, e))?;
            found.extend(page.items().iter().filter_map(silence_of));
            start = page.last_evaluated_key.filter(|k| !k.is_empty());
            if start.is_none() {
                return Ok(found);
            }
        }
    }

    /// Puts every silence that is not in [`BY_END`] into it (sets
    /// [`LIST_KEY`]): silences written before the index existed. One Scan
    /// of the whole table, for the operator's one-off `silences --reindex`;
    /// answers how many silences it added.
    pub async fn reindex(&self) -> Result<u64, StoreError> {
        let mut added = 0;
        let mut start = None;
        loop {
            let page = self
                .client
                .scan()
                .table_name(&self.table)
                .filter_expression("attribute_not_exists(#list)")
                .projection_expression("silenceId")
                .expression_attribute_names("#list", LIST_KEY)
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(|e| store_error("Scan", &self.table, e))?;
            for id in page
                .items()
                .iter()
                .filter_map(|item| text(item, "silenceId"))
            {
                let result = self
                    .client
                    .update_item()
                    .table_name(&self.table)
                    .key("silenceId", s(id))
                    // Only an item that still exists and still lacks it: a
                    // silence deleted by TTL meanwhile is not written back.
                    .condition_expression(
                        "attribute_exists(silenceId) AND attribute_not_exists(#list)",
                    )
                    .update_expression("SET #list = :list")
                    .expression_attribute_names("#list", LIST_KEY)
                    .expression_attribute_values(":list", s(LIST_VALUE))
                    .send()
                    .await;
                match result {
                    Ok(_) => added += 1,
                    Err(e) if is_condition_failure(&e) => {}
                    Err(e) => return Err(store_error("UpdateItem", &self.table, e)),
                }
            }
            start = page.last_evaluated_key.filter(|k| !k.is_empty());
            if start.is_none() {
                return Ok(added);
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
    /// still in force. Its end moves below every later read's bound, so the
    /// function stops reading it; it stays in [`BY_END`] (set here too, for a
    /// silence written before the index) for `silences --all`.
    pub async fn end(&self, id: &str, now_ms: i64) -> Result<bool, StoreError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("silenceId", s(id))
            .condition_expression("attribute_exists(silenceId) AND endsMs > :now")
            .update_expression("SET endsMs = :now, expiresAt = :exp, #list = :list")
            .expression_attribute_names("#list", LIST_KEY)
            .expression_attribute_values(":list", s(LIST_VALUE))
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
