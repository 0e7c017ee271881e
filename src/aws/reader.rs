//! Reading incidents back for the query tool: Query only, never Scan.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;
use aws_sdk_dynamodb::Client;
use futures_util::future::try_join_all;
use serde_json::{Map, Value};

use crate::store::query::{ListFilter, QueryPlan};

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
}
