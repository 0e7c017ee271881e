//! Configuration from environment variables, read once at start-up.

use std::time::Duration;

use crate::error::ConfigError;
use crate::incident::lifecycle::Timing;
use crate::ingest::decode::DEFAULT_MAX_DECOMPRESSED_BYTES;
use crate::model::category::Category;
use crate::model::category::CategorySet;
use crate::store::redact::{Redactor, MIN_KEY_BYTES};

/// Every variable the function reads (template.yaml must set the required ones).
pub mod vars {
    pub const ENTRIES_TABLE: &str = "ENTRIES_TABLE";
    pub const INCIDENTS_TABLE: &str = "INCIDENTS_TABLE";
    pub const SILENCES_TABLE: &str = "SILENCES_TABLE";
    pub const ALERT_TOPIC_ARN: &str = "ALERT_TOPIC_ARN";
    pub const RESOLVE_AFTER_SECONDS: &str = "RESOLVE_AFTER_SECONDS";
    pub const REPEAT_INTERVAL_SECONDS: &str = "REPEAT_INTERVAL_SECONDS";
    /// How long a quiet incident waits for a return before it is resolved.
    pub const REOPEN_WINDOW_SECONDS: &str = "REOPEN_WINDOW_SECONDS";
    /// Reopenings that mark an incident flapping.
    pub const FLAP_REOPENINGS: &str = "FLAP_REOPENINGS";
    /// The quiet period before a flapping incident is resolved.
    pub const FLAP_RESOLVE_AFTER_SECONDS: &str = "FLAP_RESOLVE_AFTER_SECONDS";
    /// How often a warm function reads the silences again (0: every invocation).
    pub const SILENCES_REFRESH_SECONDS: &str = "SILENCES_REFRESH_SECONDS";
    pub const RETENTION_DAYS: &str = "RETENTION_DAYS";
    pub const STORE_CATEGORIES: &str = "STORE_CATEGORIES";
    pub const ALERT_CATEGORIES: &str = "ALERT_CATEGORIES";
    pub const MAX_DECOMPRESSED_BYTES: &str = "MAX_DECOMPRESSED_BYTES";
    pub const RETRY_BUDGET_MS: &str = "RETRY_BUDGET_MS";
    pub const METRICS_NAMESPACE: &str = "METRICS_NAMESPACE";
    pub const ALERT_TIME_RESERVE_MS: &str = "ALERT_TIME_RESERVE_MS";
    pub const REDACT_FIELDS: &str = "REDACT_FIELDS";
    pub const REDACTION_KEY: &str = "REDACTION_KEY";
    /// An SSM SecureString holding the redaction key (what the template sets).
    pub const REDACTION_KEY_PARAMETER: &str = "REDACTION_KEY_PARAMETER";
    /// Incident keys a batch keeps of its own, and incidents that may open
    /// per minute (so `opened` notifications); the rest fold into one
    /// overflow incident per category.
    pub const STORM_BUDGET: &str = "STORM_BUDGET";
    pub const REQUIRED: &[&str] = &[
        ENTRIES_TABLE,
        INCIDENTS_TABLE,
        SILENCES_TABLE,
        ALERT_TOPIC_ARN,
    ];
    pub const ALL: &[&str] = &[
        ENTRIES_TABLE,
        INCIDENTS_TABLE,
        SILENCES_TABLE,
        ALERT_TOPIC_ARN,
        RESOLVE_AFTER_SECONDS,
        REPEAT_INTERVAL_SECONDS,
        REOPEN_WINDOW_SECONDS,
        FLAP_REOPENINGS,
        FLAP_RESOLVE_AFTER_SECONDS,
        SILENCES_REFRESH_SECONDS,
        RETENTION_DAYS,
        STORE_CATEGORIES,
        ALERT_CATEGORIES,
        MAX_DECOMPRESSED_BYTES,
        RETRY_BUDGET_MS,
        METRICS_NAMESPACE,
        ALERT_TIME_RESERVE_MS,
        REDACT_FIELDS,
        REDACTION_KEY,
        REDACTION_KEY_PARAMETER,
        STORM_BUDGET,
    ];
}

pub const DEFAULT_STORE: &[Category] = &[
    Category::RuleNotFound,
    Category::RuleMessageThrottled,
    Category::Failure,
    Category::Warning,
    Category::Unparseable,
];
pub const DEFAULT_ALERT: &[Category] = &[
    Category::RuleNotFound,
    Category::RuleMessageThrottled,
    Category::Failure,
];

/// Bounds that keep a function of 128 MB safe whatever the configuration.
const MAX_DECOMPRESSED_CEILING: usize = 64 * 1024 * 1024;

/// The storm budget's default: a batch with more incident keys than this is
/// a storm (one real outage rarely names 20 rules or reasons at once).
pub const DEFAULT_STORM_BUDGET: usize = 20;
/// Its ceiling: it bounds the incident-store requests of a batch (about
/// five per key kept: counting, claiming, confirming), which must fit the
/// function's timeout whatever the configuration.
pub const MAX_STORM_BUDGET: usize = 100;

#[derive(Debug, Clone)]
pub struct Config {
    pub entries_table: String,
    pub incidents_table: String,
    pub silences_table: String,
    pub alert_topic_arn: String,
    /// An open incident with no new entry for this long is quiet: resolved
    /// if it stays so through the reopen window.
    pub resolve_after: Duration,
    /// A quiet incident that comes back within this reopens (same id);
    /// one that does not is resolved when it ends.
    pub reopen_window: Duration,
    /// Reopenings after which an incident is flapping.
    pub flap_reopenings: u32,
    /// A flapping incident is resolved after this long without an entry.
    pub flap_resolve_after: Duration,
    /// At most one reminder per open incident per this interval.
    pub repeat_interval: Duration,
    /// A silence (or its end) reaches a warm function at most this late.
    pub silences_refresh: Duration,
    pub retention_days: u32,
    pub store_categories: CategorySet,
    pub alert_categories: CategorySet,
    pub max_decompressed_bytes: usize,
    /// How long writes and publishes may keep retrying, at most; the
    /// invocation's own deadline (less a margin) bounds it further.
    pub retry_budget: Duration,
    pub metrics_namespace: String,
    /// Time that must be left after storing to claim and publish alerts;
    /// with less, the invocation fails before claiming (the retry alerts).
    /// Zero turns the check off (for emulators whose deadlines are not real).
    pub alert_time_reserve: Duration,
    /// Pseudonymises these fields' values in stored items and alerts; off
    /// (`None`) unless `REDACT_FIELDS` names some.
    pub redaction: Option<Redactor>,
    /// Incident keys a batch keeps of its own, at most, and incidents that
    /// may open per minute across invocations: so at most this many
    /// `opened` notifications per batch and per minute; the keys past it
    /// fold into one overflow incident per category, announced by one digest.
    pub storm_budget: usize,
    /// What start-up should warn about (the configuration is usable).
    pub warnings: Vec<String>,
}

/// Field names the AWS IoT and CloudTrail documentation gives besides the
/// model's own: `REDACT_FIELDS` names outside these draw a warning.
const OTHER_DOCUMENTED_FIELDS: &[&str] = &[
    "eventType",
    "sourcePort",
    "resources",
    "sourceIPAddress",
    "userIdentity",
    "userAgent",
    "accessKeyId",
    "arn",
    "userName",
    "thingName",
    "certificateId",
    "policyName",
];

impl Config {
    /// The incident clock's settings, in the lifecycle's terms.
    pub fn timing(&self) -> Timing {
        Timing {
            resolve_after_ms: self.resolve_after.as_millis() as i64,
            reopen_window_ms: self.reopen_window.as_millis() as i64,
            flap_reopenings: self.flap_reopenings,
            flap_resolve_after_ms: self.flap_resolve_after.as_millis() as i64,
            repeat_ms: self.repeat_interval.as_millis() as i64,
        }
    }

    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads configuration through `lookup`, so tests need not touch the process environment.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let get = |var: &'static str| {
            lookup(var)
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
        };
        let required = |var: &'static str| {
            get(var).ok_or(ConfigError {
                var,
                problem: "is not set".into(),
            })
        };
        let number =
            |var: &'static str, default: u64, min: u64, max: u64| -> Result<u64, ConfigError> {
                let Some(text) = get(var) else {
                    return Ok(default);
                };
                let n: u64 = text.parse().map_err(|_| ConfigError {
                    var,
                    problem: format!("{text:?} is not a whole number"),
                })?;
                if !(min..=max).contains(&n) {
                    return Err(ConfigError {
                        var,
                        problem: format!("{n} is outside {min}..={max}"),
                    });
                }
                Ok(n)
            };
        let categories =
            |var: &'static str, default: &[Category]| -> Result<CategorySet, ConfigError> {
                let Some(text) = get(var) else {
                    return Ok(CategorySet::of(default));
                };
                if text.eq_ignore_ascii_case("none") {
                    return Ok(CategorySet::NONE);
                }
                let parsed = text
                    .split(',')
                    .filter(|s| !s.trim().is_empty())
                    .map(str::parse)
                    .collect::<Result<Vec<Category>, _>>()
                    .map_err(|problem| ConfigError {
                        var,
                        problem: problem.to_string(),
                    })?;
                Ok(CategorySet::of(&parsed))
            };

        let alert_topic_arn = required(vars::ALERT_TOPIC_ARN)?;
        if !alert_topic_arn.starts_with("arn:") {
            return Err(ConfigError {
                var: vars::ALERT_TOPIC_ARN,
                problem: format!("{alert_topic_arn:?} is not an ARN"),
            });
        }
        let store_categories = categories(vars::STORE_CATEGORIES, DEFAULT_STORE)?;
        let alert_categories = categories(vars::ALERT_CATEGORIES, DEFAULT_ALERT)?;
        if !alert_categories.is_subset_of(store_categories) {
            return Err(ConfigError {
                var: vars::ALERT_CATEGORIES,
                problem: "every alerting category must also be stored (STORE_CATEGORIES): an alert points at stored incidents".into(),
            });
        }
        let mut warnings = Vec::new();
        let redaction = match get(vars::REDACT_FIELDS) {
            None => None,
            Some(list) => {
                let fields: Vec<String> = list
                    .split(',')
                    .map(str::trim)
                    .filter(|f| !f.is_empty())
                    .map(str::to_owned)
                    .collect();
                if fields.is_empty() {
                    return Err(ConfigError {
                        var: vars::REDACT_FIELDS,
                        problem: format!("names no field ({list:?}): give field names separated by commas, or leave it unset to turn redaction off"),
                    });
                }
                let documented = crate::model::entry::Field::NAMES
                    .iter()
                    .map(|(name, _)| *name)
                    .chain(OTHER_DOCUMENTED_FIELDS.iter().copied());
                let documented: Vec<&str> = documented.collect();
                for field in &fields {
                    if !documented.iter().any(|d| d.eq_ignore_ascii_case(field)) {
                        warnings.push(format!(
                            "{}: {field:?} is no documented AWS IoT or CloudTrail field name; it is redacted wherever it appears, whatever its case",
                            vars::REDACT_FIELDS
                        ));
                    }
                }
                let key = get(vars::REDACTION_KEY).unwrap_or_default();
                if key.len() < MIN_KEY_BYTES {
                    return Err(ConfigError {
                        var: vars::REDACTION_KEY,
                        problem: format!(
                            "must be a secret of at least {MIN_KEY_BYTES} bytes when REDACT_FIELDS is set (it keys the pseudonyms)"
                        ),
                    });
                }
                Some(Redactor::new(fields, key.as_bytes()))
            }
        };
        let resolve_after = number(vars::RESOLVE_AFTER_SECONDS, 900, 1, 7 * 86_400)?;
        let reopen_window = number(vars::REOPEN_WINDOW_SECONDS, 900, 0, 7 * 86_400)?;
        // A flapping incident waits longer than any other: at least the
        // ordinary quiet period and window, an hour unless those are longer.
        let least = resolve_after + reopen_window;
        let flap_resolve_after = number(
            vars::FLAP_RESOLVE_AFTER_SECONDS,
            least.max(3_600),
            1,
            30 * 86_400,
        )?;
        if flap_resolve_after < least {
            return Err(ConfigError {
                var: vars::FLAP_RESOLVE_AFTER_SECONDS,
                problem: format!(
                    "{flap_resolve_after} is shorter than {} + {} = {least} \
                     (a flapping incident waits at least as long as any other)",
                    vars::RESOLVE_AFTER_SECONDS,
                    vars::REOPEN_WINDOW_SECONDS
                ),
            });
        }
        Ok(Self {
            redaction,
            warnings,
            resolve_after: Duration::from_secs(resolve_after),
            reopen_window: Duration::from_secs(reopen_window),
            flap_reopenings: number(vars::FLAP_REOPENINGS, 2, 1, 1_000)? as u32,
            flap_resolve_after: Duration::from_secs(flap_resolve_after),
            entries_table: required(vars::ENTRIES_TABLE)?,
            incidents_table: required(vars::INCIDENTS_TABLE)?,
            silences_table: required(vars::SILENCES_TABLE)?,
            alert_topic_arn,
            repeat_interval: Duration::from_secs(number(
                vars::REPEAT_INTERVAL_SECONDS,
                4 * 3_600,
                60,
                30 * 86_400,
            )?),
            silences_refresh: Duration::from_secs(number(
                vars::SILENCES_REFRESH_SECONDS,
                30,
                0,
                300,
            )?),
            retention_days: number(vars::RETENTION_DAYS, 30, 1, 3650)? as u32,
            store_categories,
            alert_categories,
            max_decompressed_bytes: number(
                vars::MAX_DECOMPRESSED_BYTES,
                DEFAULT_MAX_DECOMPRESSED_BYTES as u64,
                1024,
                MAX_DECOMPRESSED_CEILING as u64,
            )? as usize,
            retry_budget: Duration::from_millis(number(
                vars::RETRY_BUDGET_MS,
                20_000,
                100,
                600_000,
            )?),
            metrics_namespace: get(vars::METRICS_NAMESPACE)
                .unwrap_or_else(|| "IotLogMonitor".into()),
            alert_time_reserve: Duration::from_millis(number(
                vars::ALERT_TIME_RESERVE_MS,
                20_000,
                0,
                300_000,
            )?),
            storm_budget: number(
                vars::STORM_BUDGET,
                DEFAULT_STORM_BUDGET as u64,
                1,
                MAX_STORM_BUDGET as u64,
            )? as usize,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn config(pairs: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let mut env: HashMap<String, String> = [
            (vars::ENTRIES_TABLE, "entries"),
            (vars::INCIDENTS_TABLE, "incidents"),
            (vars::SILENCES_TABLE, "silences"),
            (
                vars::ALERT_TOPIC_ARN,
                "arn:aws:sns:us-east-1:123456789012:alerts",
            ),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
        for (k, v) in pairs {
            env.insert((*k).to_owned(), (*v).to_owned());
        }
        Config::from_lookup(|k| env.get(k).cloned())
    }

    #[test]
    fn defaults_match_the_documentation() {
        let c = config(&[]).unwrap();
        assert_eq!(c.resolve_after, Duration::from_secs(900));
        assert_eq!(c.repeat_interval, Duration::from_secs(4 * 3_600));
        assert_eq!(
            c.timing(),
            Timing {
                resolve_after_ms: 900_000,
                reopen_window_ms: 900_000,
                flap_reopenings: 2,
                flap_resolve_after_ms: 3_600_000,
                repeat_ms: 14_400_000
            }
        );
        assert_eq!(c.retention_days, 30);
        assert_eq!(c.silences_refresh, Duration::from_secs(30));
        assert_eq!(c.max_decompressed_bytes, 32 * 1024 * 1024);
        assert_eq!(c.store_categories, CategorySet::of(DEFAULT_STORE));
        assert_eq!(c.alert_categories, CategorySet::of(DEFAULT_ALERT));
        assert_eq!(c.storm_budget, 20);
    }

    #[test]
    fn errors_name_the_variable() {
        for (var, value, fragment) in [
            (vars::ENTRIES_TABLE, "", "is not set"),
            (vars::INCIDENTS_TABLE, "", "is not set"),
            (vars::SILENCES_TABLE, "", "is not set"),
            (vars::ALERT_TOPIC_ARN, "my-topic", "is not an ARN"),
            (vars::RESOLVE_AFTER_SECONDS, "15m", "not a whole number"),
            (vars::RESOLVE_AFTER_SECONDS, "0", "outside"),
            (vars::REPEAT_INTERVAL_SECONDS, "5", "outside"),
            (vars::SILENCES_REFRESH_SECONDS, "301", "outside"),
            (vars::RETENTION_DAYS, "0", "outside"),
            (vars::MAX_DECOMPRESSED_BYTES, "999999999999", "outside"),
            (vars::REOPEN_WINDOW_SECONDS, "604801", "outside"),
            (vars::FLAP_REOPENINGS, "0", "outside"),
            (vars::FLAP_RESOLVE_AFTER_SECONDS, "1799", "shorter than"),
            (vars::STORM_BUDGET, "0", "outside 1..=100"),
            (vars::STORM_BUDGET, "101", "outside 1..=100"),
            (vars::STORM_BUDGET, "twenty", "not a whole number"),
            (
                vars::STORE_CATEGORIES,
                "Failure,Oops",
                "unknown category \"Oops\"",
            ),
            (
                vars::ALERT_CATEGORIES,
                "Warning,Unparseable,Oops",
                "unknown category",
            ),
        ] {
            let err = config(&[(var, value)]).unwrap_err();
            assert_eq!(err.var, var);
            let text = err.to_string();
            assert!(
                text.starts_with(&format!("environment variable {var}:"))
                    && text.contains(fragment),
                "{text}"
            );
        }
    }

    /// The flapping quiet period follows longer ordinary settings, and a
    /// window of 0 turns reopening off (quiet = resolved, as before).
    #[test]
    fn the_flapping_quiet_period_is_never_shorter_than_the_ordinary_one() {
        let c = config(&[
            (vars::RESOLVE_AFTER_SECONDS, "3000"),
            (vars::REOPEN_WINDOW_SECONDS, "1000"),
        ])
        .unwrap();
        assert_eq!(c.flap_resolve_after, Duration::from_secs(4_000));
        let c = config(&[(vars::REOPEN_WINDOW_SECONDS, "0")]).unwrap();
        assert_eq!(c.timing().resolves_after_ms(false), 900_000);
        assert_eq!(c.timing().resolves_after_ms(true), 3_600_000);
    }

    #[test]
    fn redaction_is_off_by_default_and_needs_a_key() {
        assert!(config(&[]).unwrap().redaction.is_none());
        let err = config(&[(vars::REDACT_FIELDS, "sourceIp")]).unwrap_err();
        assert_eq!(err.var, vars::REDACTION_KEY);
        let err = config(&[
            (vars::REDACT_FIELDS, "sourceIp"),
            (vars::REDACTION_KEY, "short"),
        ])
        .unwrap_err();
        assert_eq!(err.var, vars::REDACTION_KEY);
        let c = config(&[
            (vars::REDACT_FIELDS, " sourceIp, principalId ,"),
            (vars::REDACTION_KEY, "a-secret-of-enough-bytes"),
        ])
        .unwrap();
        assert_eq!(c.redaction.unwrap().fields(), ["sourceIp", "principalId"]);
        assert!(c.warnings.is_empty(), "{:?}", c.warnings);
    }

    /// Issue 16 (3): a list that names nothing is refused, not silently off;
    /// a name no documented field has is warned about.
    #[test]
    fn a_redaction_list_that_names_nothing_is_refused_and_unknown_names_are_warned_about() {
        let key = (vars::REDACTION_KEY, "a-secret-of-enough-bytes");
        for empty in [" , ", ",", " ,, "] {
            let err = config(&[(vars::REDACT_FIELDS, empty), key]).unwrap_err();
            assert_eq!(err.var, vars::REDACT_FIELDS, "{empty:?}");
        }
        let c = config(&[(vars::REDACT_FIELDS, "sourceip,clientid,deviceSerial"), key]).unwrap();
        assert_eq!(c.warnings.len(), 1, "{:?}", c.warnings);
        assert!(c.warnings[0].contains("deviceSerial"), "{:?}", c.warnings);
    }

    #[test]
    fn alerting_categories_must_be_stored() {
        let err = config(&[
            (vars::STORE_CATEGORIES, "Failure"),
            (vars::ALERT_CATEGORIES, "Failure,Warning"),
        ])
        .unwrap_err();
        assert_eq!(err.var, vars::ALERT_CATEGORIES);
        assert!(err.to_string().contains("must also be stored"), "{err}");
    }

    #[test]
    fn categories_can_be_narrowed_or_switched_off() {
        let c = config(&[
            (vars::STORE_CATEGORIES, "failure, RuleNotFound"),
            (vars::ALERT_CATEGORIES, "none"),
        ])
        .unwrap();
        assert_eq!(
            c.store_categories,
            CategorySet::of(&[Category::Failure, Category::RuleNotFound])
        );
        assert_eq!(c.alert_categories, CategorySet::NONE);
    }
}
