//! The sweep's read of the incident table: the `sweep` index's shards and
//! the legacy `watched` partition, queried at once.

use std::collections::BTreeMap;

use aws_sdk_dynamodb::Client;

use super::*;

/// Every watched incident (at most `limit`), as the sweep's index holds
/// it (only what the sweep decides on, [`IncidentState::as_watched`]): one
/// Query per shard of `sweep`, at once, paged, and one of the legacy
/// `watched` partition (whole items). Quietest first.
pub(crate) async fn query_watched(
    client: &Client,
    table: &str,
    limit: usize,
) -> Result<Vec<IncidentState>, StoreError> {
    let partitions = sweep_shards()
        .map(|shard| (SWEEP_INDEX, "sweepShard", shard))
        .chain([(LEGACY_WATCHED_INDEX, "sweepKey", LEGACY_WATCHED.to_owned())]);
    let pages = futures_util::future::join_all(
        partitions
            .map(|(index, key, value)| query_partition(client, table, index, key, value, limit)),
    )
    .await;
    // An item moves from the legacy index to `sweep` in one write, so it
    // is in one of them; by key all the same.
    let mut found: BTreeMap<String, IncidentState> = BTreeMap::new();
    for page in pages {
        let page = match page {
            Ok(page) => page,
            // Just after an update added the index, DynamoDB builds it from
            // the table and refuses reads meanwhile: what is only in it
            // waits for a later sweep; the legacy index is still read.
            Err(e) if e.to_string().contains("backfilling") => {
                tracing::warn!(error = %e, "the sweep index is still being built; its incidents wait for a later sweep");
                Vec::new()
            }
            Err(e) => return Err(e),
        };
        for incident in page {
            found.insert(incident.item_key.clone(), incident);
        }
    }
    let mut found: Vec<IncidentState> = found.into_values().collect();
    found.sort_by_key(|i| i.last_activity_ms);
    found.truncate(limit);
    Ok(found)
}

async fn query_partition(
    client: &Client,
    table: &str,
    index: &str,
    key: &str,
    value: String,
    limit: usize,
) -> Result<Vec<IncidentState>, StoreError> {
    let mut found = Vec::new();
    let mut start: Option<Attributes> = None;
    loop {
        let output = client
            .query()
            .table_name(table)
            .index_name(index)
            .key_condition_expression("#k = :v")
            .expression_attribute_names("#k", key)
            .expression_attribute_values(":v", s(&value))
            .set_exclusive_start_key(start.take())
            .send()
            .await
            .map_err(|e| super::store_error("Query", table, e))?;
        found.extend(output.items().iter().filter_map(state_of));
        match output.last_evaluated_key {
            Some(key) if !key.is_empty() && found.len() < limit => start = Some(key),
            _ => return Ok(found),
        }
    }
}
