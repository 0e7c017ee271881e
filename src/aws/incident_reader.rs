//! The incident table for the operator's commands: find one incident, list
//! open and resolved ones, acknowledge. The function's own use of the table
//! is in `incidents`.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use aws_sdk_dynamodb::types::KeysAndAttributes;
use aws_sdk_dynamodb::Client;

use super::incident_item::{n, s, state_of, Attributes};
use super::incidents::query_watched;
use crate::aws::{is_condition_failure, store_error};
use crate::error::StoreError;
use crate::incident::lifecycle::{IncidentState, State};
use crate::retry::pause;

#[derive(Clone, Debug)]
pub struct IncidentReader {
    client: Client,
    table: String,
}

impl IncidentReader {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
        }
    }

    async fn get(&self, key: &str) -> Result<Option<IncidentState>, StoreError> {
        let item = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("incidentKey", s(key))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| store_error("GetItem", &self.table, e))?
            .item;
        Ok(item.as_ref().and_then(state_of))
    }

    /// Incident `id` (`<key hash>-<generation>`): its record once resolved,
    /// else its key's current incident if that is it.
    pub async fn find(&self, id: &str) -> Result<Option<IncidentState>, StoreError> {
        let Some((hash, generation)) = id.rsplit_once('-') else {
            return Ok(None);
        };
        if hash.len() != 16 || generation.parse::<u64>().is_err() {
            return Ok(None);
        }
        if let Some(record) = self.get(id).await? {
            return Ok(Some(record));
        }
        Ok(self.get(hash).await?.filter(|i| i.incident_id == id))
    }

    /// Open incidents (and resolved ones not yet announced), whole: the
    /// sweep's index names them (it holds only what the sweep decides on),
    /// BatchGetItem reads them, 100 at a time.
    pub async fn watched(&self) -> Result<Vec<IncidentState>, StoreError> {
        let watched = query_watched(&self.client, &self.table, usize::MAX).await?;
        let mut found = Vec::with_capacity(watched.len());
        for chunk in watched.chunks(100) {
            let mut keys: Vec<Attributes> = chunk
                .iter()
                .map(|i| HashMap::from([("incidentKey".to_owned(), s(&i.item_key))]))
                .collect();
            let mut attempt = 0;
            while !keys.is_empty() {
                let batch = KeysAndAttributes::builder()
                    .set_keys(Some(std::mem::take(&mut keys)))
                    .build()
                    .expect("keys are set");
                let output = self
                    .client
                    .batch_get_item()
                    .request_items(&self.table, batch)
                    .send()
                    .await
                    .map_err(|e| store_error("BatchGetItem", &self.table, e))?;
                if let Some(items) = output.responses.as_ref().and_then(|r| r.get(&self.table)) {
                    found.extend(items.iter().filter_map(state_of));
                }
                keys = output
                    .unprocessed_keys
                    .and_then(|mut u| u.remove(&self.table))
                    .map(|k| k.keys)
                    .unwrap_or_default();
                if !keys.is_empty() {
                    attempt += 1;
                    if !pause(attempt, Instant::now() + Duration::from_secs(10)).await {
                        return Err(StoreError::Request {
                            op: "BatchGetItem",
                            table: self.table.clone(),
                            message: format!("{} incidents left unread", keys.len()),
                            retryable: true,
                            source: None,
                        });
                    }
                }
            }
        }
        Ok(found)
    }

    /// Records of incidents resolved since `since_ms`. A Scan with a filter:
    /// records live `RETENTION_DAYS`, so its cost is bounded by what was
    /// resolved in that time (an operator's command, not the function's).
    pub async fn resolved_since(&self, since_ms: i64) -> Result<Vec<IncidentState>, StoreError> {
        let mut found = Vec::new();
        let mut start: Option<Attributes> = None;
        loop {
            let page = self
                .client
                .scan()
                .table_name(&self.table)
                .filter_expression("incidentState = :resolved AND resolvedMs >= :since AND incidentKey = incidentId")
                .expression_attribute_values(":resolved", s(State::Resolved.as_str()))
                .expression_attribute_values(":since", n(since_ms))
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(|e| store_error("Scan", &self.table, e))?;
            found.extend(page.items().iter().filter_map(state_of));
            match page.last_evaluated_key {
                Some(key) if !key.is_empty() => start = Some(key),
                _ => return Ok(found),
            }
        }
    }

    /// Acknowledges open incident `id`: no more reminders; its resolved
    /// notification still goes out. `false` when no such incident is open.
    pub async fn acknowledge(
        &self,
        incident: &IncidentState,
        by: &str,
        note: Option<&str>,
        now_ms: i64,
    ) -> Result<bool, StoreError> {
        let mut request = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("incidentKey", s(&incident.item_key))
            .condition_expression("incidentId = :id AND incidentState = :open")
            .expression_attribute_values(":id", s(&incident.incident_id))
            .expression_attribute_values(":open", s(State::Open.as_str()))
            .expression_attribute_values(":by", s(by))
            .expression_attribute_values(":at", n(now_ms));
        request = match note {
            Some(note) => request
                .update_expression("SET ackedBy = :by, ackedMs = :at, ackNote = :note")
                .expression_attribute_values(":note", s(note)),
            None => request.update_expression("SET ackedBy = :by, ackedMs = :at REMOVE ackNote"),
        };
        match request.send().await {
            Ok(_) => Ok(true),
            Err(e) if is_condition_failure(&e) => Ok(false),
            Err(e) => Err(store_error("UpdateItem", &self.table, e)),
        }
    }
}
