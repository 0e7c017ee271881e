//! The openings budget across invocations: at most so many incidents open
//! per minute, and what a refused delta leaves behind.

use aws_sdk_dynamodb::types::AttributeValue;

use super::*;

impl DynamoIncidentStore {
    /// Takes one of `minute`'s `per_minute` openings for key item
    /// `item_key`: the key joins the minute's set of keys allowed to open
    /// (`granted`), on condition that it is in it already or the set has
    /// room; `false` when it is full. Idempotent per key: a retry, a
    /// redelivery or a concurrent delivery of the same key takes no second
    /// place. A plain update, not part of the opening's transaction: every
    /// opening of the account writes this item, and transactions on one
    /// item refuse each other (TransactionConflict) where single updates
    /// queue. A key allowed that then does not open (it turned out open
    /// after all) leaves its place unused: fewer openings, never more.
    pub(super) async fn take_opening(
        &self,
        minute: i64,
        per_minute: u32,
        item_key: &str,
        deadline: Instant,
    ) -> Result<bool, StoreError> {
        let mut attempt = 0;
        loop {
            let result = self
                .client
                .update_item()
                .table_name(&self.table)
                .key("incidentKey", s(openings_key(minute)))
                .condition_expression(
                    "attribute_not_exists(granted) OR contains(granted, :key) OR size(granted) < :budget",
                )
                .update_expression("ADD granted :keys SET expiresAt = :exp")
                .expression_attribute_values(":budget", n(per_minute))
                .expression_attribute_values(":key", s(item_key))
                .expression_attribute_values(":keys", AttributeValue::Ss(vec![item_key.to_owned()]))
                .expression_attribute_values(":exp", n(minute * 60 + 86_400))
                .send()
                .await;
            let outcome = match result {
                Ok(_) => Ok(true),
                Err(e) if is_condition_failure(&e) => Ok(false),
                Err(e) => Err(store_error("UpdateItem", &self.table, e)),
            };
            match outcome {
                Err(e) if e.is_retryable() && pause(attempt, deadline).await => attempt += 1,
                outcome => return outcome,
            }
        }
    }

    /// Remembers that batch `fingerprint`'s delta of key item `item_key`
    /// was folded (the openings budget refused it): a marker saying so, put
    /// only if the batch has no marker yet. `false`: one is there (a
    /// delivery of the batch was counted or folded first).
    pub(super) async fn put_folded_marker(
        &self,
        item_key: &str,
        fingerprint: &str,
        now_ms: i64,
        stale_marker: Option<&str>,
    ) -> Result<bool, StoreError> {
        let mut put = self
            .client
            .put_item()
            .table_name(&self.table)
            .item("incidentKey", s(marker_key(item_key, fingerprint)))
            .item("folded", AttributeValue::Bool(true))
            .item("expiresAt", n(now_ms / 1000 + MARKER_DAYS * 86_400))
            .condition_expression("attribute_not_exists(incidentKey)");
        // A marker naming an incident gone for good may be replaced, as
        // the count's transaction may replace it.
        if let Some(stale) = stale_marker {
            put = put
                .condition_expression("attribute_not_exists(incidentKey) OR incidentId = :stale")
                .expression_attribute_values(":stale", s(stale));
        }
        let result = put.send().await;
        match result {
            Ok(_) => Ok(true),
            Err(e) if is_condition_failure(&e) => Ok(false),
            Err(e) => Err(store_error("PutItem", &self.table, e)),
        }
    }
}
