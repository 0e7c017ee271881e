//! Arguments more than one command takes, and the clock they are read against.

use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{anyhow, bail, Result};
use clap::Args;

use iot_log_monitor::model::time::format_rfc3339;
use iot_log_monitor::store::query::parse_time;

pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

#[derive(Args)]
pub struct Period {
    /// Start: a duration back from now (15m, 6h, 7d) or RFC 3339.
    #[arg(long, default_value = "24h")]
    since: String,
    /// End: `now`, a duration back from now, or RFC 3339.
    #[arg(long, default_value = "now")]
    until: String,
}

const MAX_PERIOD_DAYS: i64 = 92;

impl Period {
    /// The period in epoch milliseconds, `since` before `until`.
    pub fn resolve(&self) -> Result<(i64, i64)> {
        let now = now_ms();
        let since = parse_time(&self.since, now).map_err(|e| anyhow!("--since: {e}"))?;
        let until = parse_time(&self.until, now).map_err(|e| anyhow!("--until: {e}"))?;
        if since > until {
            bail!(
                "--since ({}) is after --until ({})",
                format_rfc3339(since),
                format_rfc3339(until)
            );
        }
        // The indexes are keyed by day: a period costs one Query per day, shard and category.
        if until - since > MAX_PERIOD_DAYS * 86_400_000 {
            bail!(
                "the period is longer than {MAX_PERIOD_DAYS} days; narrow it with --since and --until"
            );
        }
        Ok((since, until))
    }
}
