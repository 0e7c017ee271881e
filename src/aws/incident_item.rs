//! An incident as a DynamoDB item and back: the attribute names of the
//! incident table, in one place.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;

use crate::incident::key::{IncidentKey, KeyKind};
use crate::incident::lifecycle::{IncidentState, State, StoredClaim};

pub type Attributes = HashMap<String, AttributeValue>;

/// The value of `sweepKey` on watched items (one partition: the open incidents).
pub const WATCHED: &str = "watched";

pub fn s(value: impl Into<String>) -> AttributeValue {
    AttributeValue::S(value.into())
}

pub fn n(value: impl ToString) -> AttributeValue {
    AttributeValue::N(value.to_string())
}

pub fn list(values: impl IntoIterator<Item = String>) -> AttributeValue {
    AttributeValue::L(values.into_iter().map(AttributeValue::S).collect())
}

pub fn text<'i>(item: &'i Attributes, name: &str) -> Option<&'i str> {
    item.get(name)
        .and_then(|v| v.as_s().ok())
        .map(String::as_str)
}

pub fn number(item: &Attributes, name: &str) -> Option<i64> {
    item.get(name)
        .and_then(|v| v.as_n().ok())
        .and_then(|v| v.parse().ok())
}

fn texts(item: &Attributes, name: &str) -> Vec<String> {
    item.get(name)
        .and_then(|v| v.as_l().ok())
        .map(|l| l.iter().filter_map(|v| v.as_s().ok().cloned()).collect())
        .unwrap_or_default()
}

/// The incident an item holds; `None` for an item this code did not write.
pub fn state_of(item: &Attributes) -> Option<IncidentState> {
    let category = text(item, "category")?.parse().ok()?;
    let kind = KeyKind::parse(text(item, "keyKind")?)?;
    let claim = text(item, "claimToken").map(|token| StoredClaim {
        token: token.to_owned(),
        lease_until_ms: number(item, "claimLeaseMs").unwrap_or(0),
        step: text(item, "claimStep").unwrap_or_default().to_owned(),
    });
    let distinct_clients = match item.get("clientHashes").and_then(|v| v.as_ss().ok()) {
        Some(set) => set.len() as u64,
        None => number(item, "distinctClients").unwrap_or(0) as u64,
    };
    Some(IncidentState {
        item_key: text(item, "incidentKey")?.to_owned(),
        incident_id: text(item, "incidentId")?.to_owned(),
        generation: number(item, "incidentGeneration").unwrap_or(0) as u64,
        state: State::parse(text(item, "incidentState")?)?,
        key: IncidentKey {
            category,
            kind,
            first: text(item, "keyFirst").unwrap_or_default().to_owned(),
            second: text(item, "keySecond").map(str::to_owned),
        },
        log_group: text(item, "logGroup").unwrap_or_default().to_owned(),
        opened_ms: number(item, "openedMs").unwrap_or(0),
        first_seen_ms: number(item, "firstSeenMs").unwrap_or(0),
        last_seen_ms: number(item, "lastSeenMs").unwrap_or(0),
        last_activity_ms: number(item, "lastActivityMs").unwrap_or(0),
        resolved_ms: number(item, "resolvedMs"),
        entries: number(item, "entryCount").unwrap_or(0) as u64,
        seq: number(item, "batchSeq").unwrap_or(0) as u64,
        distinct_clients,
        clients_capped: item
            .get("clientsCapped")
            .and_then(|v| v.as_bool().ok())
            .copied()
            .unwrap_or(false),
        top_clients: texts(item, "topClients"),
        sample_trace_ids: texts(item, "sampleTraceIds"),
        details: text(item, "details").map(str::to_owned),
        account_id: text(item, "accountId").map(str::to_owned),
        sent: number(item, "notificationsSent").unwrap_or(0) as u32,
        last_notified_ms: number(item, "lastNotifiedMs"),
        notified_entries: number(item, "notifiedEntries").unwrap_or(0) as u64,
        resolved_sent: item.contains_key("resolvedSent"),
        claim,
        acked_by: text(item, "ackedBy").map(str::to_owned),
        ack_note: text(item, "ackNote").map(str::to_owned),
        held_back: number(item, "heldBack").unwrap_or(0) as u64,
        history: texts(item, "history"),
    })
}

/// The record of `incident` resolved at `now_ms`, as a whole item.
pub fn record_item(
    incident: &IncidentState,
    now_ms: i64,
    expires_at: AttributeValue,
) -> Attributes {
    let key = &incident.key;
    let mut item: Attributes = HashMap::from([
        ("incidentKey".into(), s(&incident.incident_id)),
        ("incidentId".into(), s(&incident.incident_id)),
        ("incidentGeneration".into(), n(incident.generation)),
        ("incidentState".into(), s(State::Resolved.as_str())),
        ("category".into(), s(key.category.as_str())),
        ("keyKind".into(), s(key.kind.as_str())),
        ("keyFirst".into(), s(&key.first)),
        ("logGroup".into(), s(&incident.log_group)),
        ("openedMs".into(), n(incident.opened_ms)),
        ("firstSeenMs".into(), n(incident.first_seen_ms)),
        ("lastSeenMs".into(), n(incident.last_seen_ms)),
        ("lastActivityMs".into(), n(incident.last_activity_ms)),
        ("resolvedMs".into(), n(now_ms)),
        ("entryCount".into(), n(incident.entries)),
        ("batchSeq".into(), n(incident.seq)),
        ("distinctClients".into(), n(incident.distinct_clients)),
        (
            "topClients".into(),
            list(incident.top_clients.iter().cloned()),
        ),
        (
            "sampleTraceIds".into(),
            list(incident.sample_trace_ids.iter().cloned()),
        ),
        ("notificationsSent".into(), n(incident.sent)),
        ("notifiedEntries".into(), n(incident.notified_entries)),
        ("history".into(), list(incident.history.iter().cloned())),
        ("expiresAt".into(), expires_at),
    ]);
    let optional = [
        ("keySecond", key.second.as_deref()),
        ("details", incident.details.as_deref()),
        ("accountId", incident.account_id.as_deref()),
        ("ackedBy", incident.acked_by.as_deref()),
        ("ackNote", incident.ack_note.as_deref()),
    ];
    for (name, value) in optional {
        if let Some(value) = value {
            item.insert(name.into(), s(value));
        }
    }
    if let Some(at) = incident.last_notified_ms {
        item.insert("lastNotifiedMs".into(), n(at));
    }
    if incident.held_back > 0 {
        item.insert("heldBack".into(), n(incident.held_back));
    }
    if incident.clients_capped {
        item.insert("clientsCapped".into(), AttributeValue::Bool(true));
    }
    // Watched until its resolved notification is out; one that was never
    // announced is not announced resolved either.
    if incident.sent > 0 {
        item.insert("sweepKey".into(), s(WATCHED));
    }
    item
}
