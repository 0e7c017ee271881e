//! Reading entries back for the query tool: Query, never Scan, and
//! BatchGetItem for the whole items of rows read from an index.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use aws_sdk_dynamodb::types::{AttributeValue, KeysAndAttributes};
use aws_sdk_dynamodb::Client;
use futures_util::future::try_join_all;
use futures_util::stream::{self, StreamExt, TryStreamExt};
use serde_json::{Map, Value};

use crate::retry::pause;
use crate::store::indexes::TABLE_KEY;
use crate::store::query::{ListFilter, QueryPlan};

/// DynamoDB takes at most 100 keys per BatchGetItem.
pub const MAX_BATCH_GET: usize = 100;

/// BatchGetItem requests in flight at once.
const GET_CONCURRENCY: usize = 4;

/// How long keys DynamoDB left unprocessed (throttling, or a 16 MB answer)
/// are asked for again before the command gives up.
const GET_RETRY_BUDGET: Duration = Duration::from_secs(30);

/// One stored incident as JSON: attribute names to values.
pub type Row = Map<String, Value>;

#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("table {0} does not exist (check --table or --stack, and the region)")]
    NoSuchTable(String),
    #[error(
        "no AWS credentials found: set AWS_PROFILE, or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"
    )]
    NoCredentials,
    #[error("{op} on {table} failed: {message}")]
    Request {
        op: &'static str,
        table: String,
        message: String,
        #[source]
        source: crate::error::SdkFailure,
    },
    #[error("BatchGetItem on {table} left {remaining} of {total} items unread after retrying for {seconds} s (throttled? try again)")]
    Unprocessed {
        table: String,
        remaining: usize,
        total: usize,
        seconds: u64,
    },
}

pub fn attribute_to_json(value: &AttributeValue) -> Value {
    match value {
        AttributeValue::S(s) => Value::String(s.clone()),
        AttributeValue::N(n) => n
            .parse::<i64>()
            .map(Value::from)
            .or_else(|_| n.parse::<f64>().map(Value::from))
            .unwrap_or_else(|_| Value::String(n.clone())),
        AttributeValue::Bool(b) => Value::Bool(*b),
        AttributeValue::Null(_) => Value::Null,
        AttributeValue::L(items) => Value::Array(items.iter().map(attribute_to_json).collect()),
        AttributeValue::M(map) => Value::Object(
            map.iter()
                .map(|(k, v)| (k.clone(), attribute_to_json(v)))
                .collect(),
        ),
        AttributeValue::Ss(set) => Value::Array(set.iter().cloned().map(Value::String).collect()),
        AttributeValue::Ns(set) => Value::Array(set.iter().cloned().map(Value::String).collect()),
        _ => Value::String("<binary>".into()),
    }
}

fn row(item: HashMap<String, AttributeValue>) -> Row {
    item.iter()
        .map(|(k, v)| (k.clone(), attribute_to_json(v)))
        .collect()
}

pub fn time_of(row: &Row) -> i64 {
    row.get("timeMs").and_then(Value::as_i64).unwrap_or(0)
}

#[derive(Clone, Debug)]
pub struct EntryReader {
    client: Client,
    table: String,
    /// Items per Query page (DynamoDB also stops a page at 1 MB).
    pub page_size: i32,
}

impl EntryReader {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
            page_size: 500,
        }
    }

    pub fn table(&self) -> &str {
        &self.table
    }

    fn error<E, R>(
        &self,
        op: &'static str,
        e: aws_smithy_runtime_api::client::result::SdkError<E, R>,
    ) -> ReadError
    where
        E: aws_smithy_types::error::metadata::ProvideErrorMetadata
            + std::error::Error
            + Send
            + Sync
            + 'static,
        R: std::fmt::Debug + Send + Sync + 'static,
    {
        let (message, _) = super::describe(&e);
        if message.starts_with("ResourceNotFoundException") {
            ReadError::NoSuchTable(self.table.clone())
        } else if message.to_ascii_lowercase().contains("credentials") {
            ReadError::NoCredentials
        } else {
            ReadError::Request {
                op,
                table: self.table.clone(),
                message,
                source: Box::new(e),
            }
        }
    }

    /// Every entry of a trace, oldest first (the sort key starts with the
    /// time). The id is bounded as the function bounds it when storing (a
    /// prefix and a hash past 512 bytes), so a long one is found too.
    pub async fn trace(&self, trace_id: &str) -> Result<Vec<Row>, ReadError> {
        let trace_id = crate::store::keys::bounded_key_part(trace_id);
        let mut rows = Vec::new();
        let mut start = None;
        loop {
            let page = self
                .client
                .query()
                .table_name(&self.table)
                .key_condition_expression("traceId = :t")
                .expression_attribute_values(":t", AttributeValue::S(trace_id.clone()))
                .set_exclusive_start_key(start)
                .limit(self.page_size)
                .send()
                .await
                .map_err(|e| self.error("Query", e))?;
            rows.extend(page.items.unwrap_or_default().into_iter().map(row));
            start = page.last_evaluated_key;
            if start.is_none() {
                return Ok(rows);
            }
        }
    }

    /// Incidents matching `filter`, newest first, at most `limit`.
    /// Days are read newest first and reading stops once a day completes the list.
    pub async fn list(
        &self,
        filter: &ListFilter,
        plans: &[QueryPlan],
        limit: usize,
    ) -> Result<Vec<Row>, ReadError> {
        let mut rows: Vec<Row> = Vec::new();
        let days = plans.iter().map(|p| p.days.len()).max().unwrap_or(0);
        for day in 0..days {
            let queries = plans.iter().flat_map(|plan| {
                plan.days
                    .get(day)
                    .into_iter()
                    .flatten()
                    .map(move |key| self.partition(plan, key, filter, limit))
            });
            for partition in try_join_all(queries).await? {
                rows.extend(partition);
            }
            if rows.len() >= limit {
                break;
            }
        }
        rows.sort_by_key(|r| std::cmp::Reverse(time_of(r)));
        rows.truncate(limit);
        Ok(rows)
    }

    /// Newest-first rows of one index partition within the time range, following pages.
    async fn partition(
        &self,
        plan: &QueryPlan,
        key: &str,
        filter: &ListFilter,
        limit: usize,
    ) -> Result<Vec<Row>, ReadError> {
        let mut rows = Vec::new();
        let mut start = None;
        let filter_expression = (!plan.filters.is_empty()).then(|| {
            (0..plan.filters.len())
                .map(|i| format!("#f{i} = :f{i}"))
                .collect::<Vec<_>>()
                .join(" AND ")
        });
        loop {
            let mut request = self
                .client
                .query()
                .table_name(&self.table)
                .index_name(plan.index)
                .key_condition_expression("#pk = :pk AND timeMs BETWEEN :from AND :until")
                .expression_attribute_names("#pk", plan.partition_attribute)
                .expression_attribute_values(":pk", AttributeValue::S(key.to_owned()))
                .expression_attribute_values(
                    ":from",
                    AttributeValue::N(filter.since_ms.to_string()),
                )
                .expression_attribute_values(
                    ":until",
                    AttributeValue::N(filter.until_ms.to_string()),
                )
                .scan_index_forward(false)
                .limit(self.page_size)
                .set_exclusive_start_key(start)
                .set_filter_expression(filter_expression.clone());
            for (i, (attribute, value)) in plan.filters.iter().enumerate() {
                request = request
                    .expression_attribute_names(format!("#f{i}"), *attribute)
                    .expression_attribute_values(
                        format!(":f{i}"),
                        AttributeValue::S(value.clone()),
                    );
            }
            let page = request.send().await.map_err(|e| self.error("Query", e))?;
            rows.extend(page.items.unwrap_or_default().into_iter().map(row));
            start = page.last_evaluated_key;
            if start.is_none() || rows.len() >= limit {
                return Ok(rows);
            }
        }
    }

    /// The whole items of rows read from an index, in the rows' order: the
    /// indexes carry only some attributes (`store::indexes`). BatchGetItem
    /// of at most [`MAX_BATCH_GET`] keys each, a few in flight, keys
    /// DynamoDB leaves unprocessed asked again with backoff. A row whose
    /// item is gone (its TTL passed after the index was read) stays as the
    /// index had it.
    pub async fn whole_items(&self, rows: Vec<Row>) -> Result<Vec<Row>, ReadError> {
        let key_of = |row: &Row| -> Option<(String, String)> {
            let part = |name| row.get(name).and_then(Value::as_str).map(str::to_owned);
            Some((part(TABLE_KEY[0])?, part(TABLE_KEY[1])?))
        };
        let mut keys: Vec<(String, String)> = rows.iter().filter_map(key_of).collect();
        // BatchGetItem refuses a request that names a key twice.
        keys.sort();
        keys.dedup();
        let deadline = Instant::now() + GET_RETRY_BUDGET;
        let chunks: Vec<Vec<(String, String)>> =
            keys.chunks(MAX_BATCH_GET).map(<[_]>::to_vec).collect();
        let items: HashMap<(String, String), Row> = stream::iter(
            chunks
                .into_iter()
                .map(|chunk| self.get_chunk(chunk, deadline)),
        )
        .buffer_unordered(GET_CONCURRENCY)
        .try_fold(HashMap::new(), |mut all, got| async move {
            all.extend(got);
            Ok(all)
        })
        .await?;
        Ok(rows
            .into_iter()
            .map(|row| {
                key_of(&row)
                    .and_then(|k| items.get(&k).cloned())
                    .unwrap_or(row)
            })
            .collect())
    }

    /// One BatchGetItem of at most [`MAX_BATCH_GET`] keys, and again for
    /// what it left unprocessed, until `deadline`.
    async fn get_chunk(
        &self,
        chunk: Vec<(String, String)>,
        deadline: Instant,
    ) -> Result<Vec<((String, String), Row)>, ReadError> {
        let total = chunk.len();
        let mut pending: Vec<HashMap<String, AttributeValue>> = chunk
            .into_iter()
            .map(|(trace, entry)| {
                HashMap::from([
                    (TABLE_KEY[0].to_owned(), AttributeValue::S(trace)),
                    (TABLE_KEY[1].to_owned(), AttributeValue::S(entry)),
                ])
            })
            .collect();
        let mut got = Vec::with_capacity(total);
        let mut attempt = 0;
        loop {
            let request = KeysAndAttributes::builder()
                .set_keys(Some(std::mem::take(&mut pending)))
                .build()
                .expect("keys are set");
            let output = self
                .client
                .batch_get_item()
                .request_items(&self.table, request)
                .send()
                .await
                .map_err(|e| self.error("BatchGetItem", e))?;
            for item in output
                .responses
                .and_then(|mut by_table| by_table.remove(&self.table))
                .unwrap_or_default()
            {
                let row = row(item);
                let part = |name| row.get(name).and_then(Value::as_str).map(str::to_owned);
                if let (Some(trace), Some(entry)) = (part(TABLE_KEY[0]), part(TABLE_KEY[1])) {
                    got.push(((trace, entry), row));
                }
            }
            pending = output
                .unprocessed_keys
                .and_then(|mut by_table| by_table.remove(&self.table))
                .map(|k| k.keys)
                .unwrap_or_default();
            if pending.is_empty() {
                return Ok(got);
            }
            if !pause(attempt, deadline).await {
                return Err(ReadError::Unprocessed {
                    table: self.table.clone(),
                    remaining: pending.len(),
                    total,
                    seconds: GET_RETRY_BUDGET.as_secs(),
                });
            }
            attempt += 1;
        }
    }
}
