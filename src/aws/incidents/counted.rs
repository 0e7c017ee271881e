//! What a batch's count left: the incident as a written plan (or an
//! earlier version's fingerprint set) says it stands.

use super::*;

impl DynamoIncidentStore {
    /// An item of an earlier version that counted batch `fingerprint` (by
    /// its fingerprint set): the batch is counted.
    pub(super) fn counted_by_fingerprint(
        &self,
        item: Option<&Attributes>,
        fingerprint: &str,
    ) -> Option<Result<Recorded, StoreError>> {
        let item = item.filter(|i| counted_before_markers(i, fingerprint))?;
        Some(
            state_of(item)
                .map(Recorded::AlreadyCounted)
                .ok_or_else(|| self.unreadable(text(item, "incidentKey").unwrap_or_default())),
        )
    }

    /// The incident as a written `plan` left it. A transaction answers with
    /// nothing: an opening is what it wrote, anything else is read back
    /// (one consistent GetItem), which also tells what the next batch of
    /// this container builds on.
    pub(super) async fn counted(
        &self,
        item_key: &str,
        plan: &Plan,
        delta: &Delta,
        log_group: &str,
        now_ms: i64,
    ) -> Result<Recorded, StoreError> {
        let incident_id = match plan {
            Plan::Open { generation } => {
                let incident = IncidentState::opened(delta, log_group, *generation, now_ms);
                self.remember(item_key, Some(Known::opened(&incident, delta)));
                return Ok(Recorded::Counted {
                    incident,
                    opened: true,
                });
            }
            Plan::Add { incident_id, .. } => incident_id,
        };
        let item = self.read(item_key).await?;
        self.remember(item_key, item.as_ref().and_then(Known::of));
        let incident = match item.filter(|i| {
            text(i, "incidentId") == Some(incident_id)
                && text(i, "incidentState") == Some(State::Open.as_str())
        }) {
            Some(item) => {
                let sketch = stored_sketch(&item);
                if sketch.dominated.len() >= COMPACT_AT {
                    self.compact(item_key, incident_id, &sketch.dominated).await;
                }
                state_of(&item)
            }
            // Resolved since (its quiet period passed in between): the record.
            None => self.read(incident_id).await?.as_ref().and_then(state_of),
        };
        incident
            .map(|incident| Recorded::Counted {
                incident,
                opened: false,
            })
            .ok_or_else(|| self.unreadable(item_key))
    }

    pub(super) fn unreadable(&self, item_key: &str) -> StoreError {
        StoreError::Request {
            op: "UpdateItem",
            table: self.table.clone(),
            message: format!("incident item {item_key} is not one this function wrote"),
            retryable: false,
            source: None,
        }
    }
}
