//! How a batch's delta is written to its key item: one conditional
//! UpdateItem that adds to the open incident, or opens the next one.

use super::*;

/// What a batch's write must do to the key item, from what was read of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Plan {
    /// Add to the open incident; start the fingerprint set afresh when
    /// full; stop adding clients when their set is.
    Add {
        fresh_fingerprints: bool,
        clients_full: bool,
    },
    /// Open generation `generation` (the previous one, if any, resolved).
    Open { generation: u64 },
}

/// Where a plan comes from: what was read of the key item.
pub(super) fn plan_for(
    item: Option<&Attributes>,
    fingerprint: &str,
) -> Result<Plan, Box<IncidentState>> {
    let Some(item) = item else {
        return Ok(Plan::Open { generation: 1 });
    };
    let generation = number(item, "incidentGeneration").unwrap_or(0) as u64;
    if text(item, "incidentState") != Some(State::Open.as_str()) {
        return Ok(Plan::Open {
            generation: generation + 1,
        });
    }
    let fingerprints = item.get("batchFingerprints").and_then(|v| v.as_ss().ok());
    if fingerprints.is_some_and(|set| set.iter().any(|f| f == fingerprint)) {
        if let Some(state) = state_of(item) {
            return Err(Box::new(state));
        }
    }
    let clients = item.get("clientHashes").and_then(|v| v.as_ss().ok());
    Ok(Plan::Add {
        fresh_fingerprints: fingerprints.is_none_or(|set| set.len() >= MAX_FINGERPRINTS),
        clients_full: item.contains_key("clientsCapped")
            || clients.is_some_and(|set| set.len() >= MAX_COUNTED_CLIENTS),
    })
}

impl DynamoIncidentStore {
    /// Sends one planned write: `Ok(None)` when its condition failed (the
    /// item changed since it was read).
    pub(super) async fn write(
        &self,
        item_key: &str,
        plan: Plan,
        delta: &Delta,
        log_group: &str,
        fingerprint: &str,
        now_ms: i64,
    ) -> Result<Option<Attributes>, StoreError> {
        let mut values: Attributes = HashMap::from([
            (
                ":fps".into(),
                AttributeValue::Ss(vec![fingerprint.to_owned()]),
            ),
            (":n".into(), n(delta.entries)),
            (":now".into(), n(now_ms)),
            (":last".into(), n(delta.last_ms)),
            (":open".into(), s(State::Open.as_str())),
        ]);
        let clients = (!delta.client_hashes.is_empty())
            .then(|| AttributeValue::Ss(delta.client_hashes.iter().cloned().collect()));
        let (condition, update) = match plan {
            Plan::Add {
                fresh_fingerprints,
                clients_full,
            } => {
                values.insert(":fp".into(), s(fingerprint));
                values.insert(":one".into(), n(1));
                let mut condition =
                    "incidentState = :open AND NOT contains(batchFingerprints, :fp)".to_owned();
                let mut set = "lastSeenMs = :last, lastActivityMs = :now".to_owned();
                let mut add = "entryCount :n, batchSeq :one".to_owned();
                if fresh_fingerprints {
                    set.push_str(", batchFingerprints = :fps");
                } else {
                    values.insert(":maxfp".into(), n(MAX_FINGERPRINTS));
                    condition.push_str(" AND size(batchFingerprints) < :maxfp");
                    add.push_str(", batchFingerprints :fps");
                }
                match (clients, clients_full) {
                    (_, true) => {
                        values.insert(":yes".into(), AttributeValue::Bool(true));
                        set.push_str(", clientsCapped = :yes");
                    }
                    (Some(clients), false) => {
                        values.insert(":cs".into(), clients);
                        values.insert(":maxc".into(), n(MAX_COUNTED_CLIENTS));
                        condition.push_str(
                            " AND (attribute_not_exists(clientHashes) OR size(clientHashes) < :maxc)",
                        );
                        add.push_str(", clientHashes :cs");
                    }
                    (None, false) => {}
                }
                (condition, format!("SET {set} ADD {add}"))
            }
            Plan::Open { generation } => {
                let key = &delta.key;
                let mut set = vec![
                    ("incidentId", s(incident_id(item_key, generation))),
                    ("incidentGeneration", n(generation)),
                    ("incidentState", s(State::Open.as_str())),
                    ("sweepKey", s(WATCHED)),
                    ("category", s(key.category.as_str())),
                    ("keyKind", s(key.kind.as_str())),
                    ("keyFirst", s(&key.first)),
                    ("logGroup", s(truncate_str(log_group, MAX_LOG_GROUP_BYTES))),
                    ("openedMs", n(now_ms)),
                    ("firstSeenMs", n(delta.first_ms)),
                    ("lastSeenMs", n(delta.last_ms)),
                    ("lastActivityMs", n(now_ms)),
                    ("entryCount", n(delta.entries)),
                    ("batchSeq", n(1)),
                    (
                        "batchFingerprints",
                        AttributeValue::Ss(vec![fingerprint.to_owned()]),
                    ),
                    (
                        "topClients",
                        list(delta.top_clients.iter().map(|(c, _)| c.clone())),
                    ),
                    (
                        "sampleTraceIds",
                        list(delta.sample_trace_ids.iter().cloned()),
                    ),
                    ("notificationsSent", n(0)),
                    ("notifiedEntries", n(0)),
                ];
                let mut remove = vec![
                    "resolvedMs",
                    "lastNotifiedMs",
                    "resolvedSent",
                    "claimToken",
                    "claimLeaseMs",
                    "claimStep",
                    "ackedBy",
                    "ackedMs",
                    "heldBack",
                    "lastSilenceId",
                    "ackNote",
                    "clientsCapped",
                    "history",
                    "expiresAt",
                ];
                let optional = [
                    ("keySecond", key.second.clone().map(s)),
                    ("clientHashes", clients),
                    ("details", delta.details.clone().map(s)),
                    ("accountId", delta.account_id.clone().map(s)),
                ];
                for (name, value) in optional {
                    match value {
                        Some(value) => set.push((name, value)),
                        None => remove.push(name),
                    }
                }
                let mut assignments = Vec::with_capacity(set.len());
                for (i, (name, value)) in set.into_iter().enumerate() {
                    values.insert(format!(":v{i}"), value);
                    assignments.push(format!("{name} = :v{i}"));
                }
                values.insert(":resolved".into(), s(State::Resolved.as_str()));
                values.insert(":prev".into(), n(generation.saturating_sub(1)));
                // Only the values the expressions use may be sent.
                for unused in [":fps", ":n", ":now", ":last", ":open"] {
                    values.remove(unused);
                }
                (
                    "attribute_not_exists(incidentKey) OR \
                     (incidentState = :resolved AND incidentGeneration = :prev)"
                        .to_owned(),
                    format!(
                        "SET {} REMOVE {}",
                        assignments.join(", "),
                        remove.join(", ")
                    ),
                )
            }
        };
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("incidentKey", s(item_key))
            .condition_expression(condition)
            .update_expression(update)
            .set_expression_attribute_values(Some(values))
            .return_values(ReturnValue::AllNew)
            .send()
            .await;
        match result {
            Ok(output) => Ok(Some(output.attributes.unwrap_or_default())),
            Err(e) if is_condition_failure(&e) => Ok(None),
            Err(e) => Err(store_error("UpdateItem", &self.table, e)),
        }
    }
}
