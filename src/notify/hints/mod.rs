//! What a notification tells its reader to do: one table of what each AWS
//! IoT failure means and what to check or run, looked up by the incident's
//! key (category, kind, first and second part).
//!
//! Sources: the AWS IoT developer guide's CloudWatch log entries (event
//! types, the `RuleNotFound` and `RuleMessageThrottled` reasons, `ruleAction`
//! values such as `RepublishAction`, `DynamoAction`, `MachinelearningPredict`),
//! its lifecycle events page (the disconnect reasons), its rule actions page
//! (one action per target service) and diagnosing pages, the reference notes
//! on what operators meet (`AUTHORIZATION_FAILURE`, `DUPLICATE_CLIENT_ID`,
//! `SESSION_TAKEN_OVER`, `CLIENT_ERROR`, `PAYLOAD_LIMIT_EXCEEDED`,
//! `OperatorEval`), and CloudTrail's common error codes.
//!
//! Matching ignores case and punctuation (`DUPLICATE_CLIENTID`, as the
//! lifecycle events spell it, is `DUPLICATE_CLIENT_ID`), and for rule actions
//! the words `Action` and `Failure` (`LambdaAction` is `Lambda`). A key
//! nothing in the table names gets its event type's hint, else its
//! category's, else a last generic one.
//!
//! The hint's `check` names the incident's own rule, job, API or log group:
//! each is [shell-quoted](shell_quoted) (escaped, then single-quoted), so a
//! name a device chose cannot leave its quotes or its line. The `meaning` is
//! this table's own text only.

use crate::incident::key::{IncidentKey, KeyKind};
use crate::model::category::Category;
use crate::notify::display::shell_quoted;
use crate::store::keys::truncate_str;

/// How closely a hint fits its incident.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Fit {
    /// Nothing but the last generic hint.
    Fallback,
    /// The hint for the incident's category (and kind of key).
    Generic,
    /// The hint for the event type, whatever the reason.
    EventType,
    /// A hint for the reason (the rule action, the error code, the rule's
    /// category), for this event type or any.
    Reason,
}

/// What an incident means and what to check, ready to show.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hint {
    /// One line, the table's own words.
    pub meaning: &'static str,
    /// One line: what to look at or run, with the incident's own names
    /// shell-quoted in the commands.
    pub check: String,
    pub fit: Fit,
}

/// One row of the table. An empty `first` or `second` matches any value.
struct Row {
    kinds: &'static [KeyKind],
    category: Option<Category>,
    first: &'static [&'static str],
    second: &'static [&'static str],
    meaning: &'static str,
    check: &'static str,
}

impl Row {
    fn fit(&self) -> Fit {
        if self.category.is_some() || !self.second.is_empty() {
            Fit::Reason
        } else {
            Fit::EventType
        }
    }

    /// Rows naming both parts come before rows naming one.
    fn rank(&self) -> u8 {
        u8::from(self.category.is_some() || !self.first.is_empty())
            + 2 * u8::from(self.category.is_some() || !self.second.is_empty())
    }
}

const ANY: &[&str] = &[];
const RULE: &[KeyKind] = &[KeyKind::Rule];
const ACTION: &[KeyKind] = &[KeyKind::RuleAction];
const OP: &[KeyKind] = &[KeyKind::Operation];
const JOB: &[KeyKind] = &[KeyKind::Operation, KeyKind::Job];
const API: &[KeyKind] = &[KeyKind::ApiCall];

const fn rule(category: Category, meaning: &'static str, check: &'static str) -> Row {
    Row {
        kinds: RULE,
        category: Some(category),
        first: ANY,
        second: ANY,
        meaning,
        check,
    }
}

const fn row(
    kinds: &'static [KeyKind],
    first: &'static [&'static str],
    second: &'static [&'static str],
    meaning: &'static str,
    check: &'static str,
) -> Row {
    Row {
        kinds,
        category: None,
        first,
        second,
        meaning,
        check,
    }
}

const fn action(names: &'static [&'static str], meaning: &'static str, check: &'static str) -> Row {
    row(ACTION, ANY, names, meaning, check)
}

const SHADOW: &[&str] = &[
    "UpdateThingShadow",
    "GetThingShadow",
    "DeleteThingShadow",
    "ListNamedShadowsForThing",
];
const THROTTLED: &[&str] = &[
    "THROTTLED",
    "THROTTLING",
    "THROTTLE",
    "CONNECT_THROTTLED",
    "CLIENT_ID_THROTTLED",
    "CLIENT_ID_THROTTLE",
    "PUBLISH_THROTTLED",
    "SUBSCRIBE_THROTTLED",
    "RATE_LIMIT_EXCEEDED",
    "TOO_MANY_REQUESTS",
];
const AUTHZ: &[&str] = &[
    "AUTHORIZATION_FAILURE",
    "AUTHORIZATION_ERROR",
    "NOT_AUTHORIZED",
    "UNAUTHORIZED",
];
const POLICY_CHECK: &str = "aws iot list-attached-policies --target <certificate-arn> (older CLIs: aws iot list-principal-policies --principal <certificate-arn>), then aws iot get-policy --policy-name <policy>";

mod devices;
mod rules;
#[cfg(test)]
mod tests;

/// The table, in order: within one rank, the first matching row wins.
fn rows() -> impl Iterator<Item = &'static Row> {
    rules::ROWS.iter().chain(devices::ROWS)
}

const FALLBACK_MEANING: &str = "AWS IoT reported a problem this table has no advice for.";
const FALLBACK_CHECK: &str = "A sample entry in full: iot-incidents get <traceId>";

/// The names a `check` may hold in braces, and what stands in when the
/// incident has no such part.
const PLACEHOLDERS: &[(&str, &str)] = &[
    ("rule", "<rule-name>"),
    ("action", "<rule-action>"),
    ("event", "<event-type>"),
    ("reason", "<reason>"),
    ("job", "<job-id>"),
    ("api", "<api>"),
    ("code", "<error-code>"),
    ("log_group", "<log-group>"),
];

/// Each substituted name keeps at most this much (key parts are bounded
/// already; a caller can ask for less).
pub const MAX_NAME_BYTES: usize = 256;

/// Lower case letters and digits only: `DUPLICATE_CLIENTID`,
/// `duplicate-client-id` and `DuplicateClientId` are one reason.
fn norm(s: &str) -> String {
    s.chars()
        .filter(char::is_ascii_alphanumeric)
        .map(|c| c.to_ascii_lowercase())
        .collect()
}

/// A rule action's name without the words `action` and `failure`:
/// `LambdaAction`, `lambda` and `LambdaActionFailure` are one action.
fn norm_action(s: &str) -> String {
    norm(s).replace("action", "").replace("failure", "")
}

fn matches(patterns: &[&str], value: &str, normalise: fn(&str) -> String) -> bool {
    let value = normalise(value);
    !value.is_empty() && patterns.iter().any(|p| normalise(p) == value)
}

fn row_matches(row: &Row, key: &IncidentKey) -> bool {
    if !row.kinds.contains(&key.kind) || row.category.is_some_and(|c| c != key.category) {
        return false;
    }
    let second = key.second.as_deref().unwrap_or("");
    let second_norm: fn(&str) -> String = if key.kind == KeyKind::RuleAction {
        norm_action
    } else {
        norm
    };
    (row.first.is_empty() || matches(row.first, &key.first, norm))
        && (row.second.is_empty() || matches(row.second, second, second_norm))
}

/// The value a placeholder stands for in `key`, if the key has it.
fn part<'k>(name: &str, key: &'k IncidentKey) -> Option<&'k str> {
    let second = key.second.as_deref();
    let value = match (name, key.kind) {
        ("rule", KeyKind::Rule | KeyKind::RuleAction) => Some(key.first.as_str()),
        ("action", KeyKind::RuleAction) => second,
        ("event", KeyKind::Operation | KeyKind::Job) => Some(key.first.as_str()),
        ("reason", KeyKind::Operation) => second,
        ("job", KeyKind::Job) => second,
        ("api", KeyKind::ApiCall) => Some(key.first.as_str()),
        ("code", KeyKind::ApiCall) => second,
        ("log_group", KeyKind::LogGroup) => Some(key.first.as_str()),
        _ => None,
    };
    value.filter(|v| !v.is_empty())
}

/// `template` with each `{name}` replaced by the incident's own value,
/// [shell-quoted](shell_quoted) and cut to `max_bytes`, or by a `<name>`
/// for the reader to fill in. Braces that name no placeholder (a policy
/// variable such as `${iot:ClientId}`) stay as they are.
fn fill(template: &str, key: &IncidentKey, max_bytes: usize) -> String {
    let mut out = String::with_capacity(template.len() + 64);
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        let placeholder = after.find('}').and_then(|close| {
            let name = &after[..close];
            PLACEHOLDERS
                .iter()
                .find(|(known, _)| *known == name)
                .map(|(_, missing)| (close, name, *missing))
        });
        match placeholder {
            Some((close, name, missing)) => {
                match part(name, key) {
                    Some(value) => out.push_str(&shell_quoted(truncate_str(value, max_bytes))),
                    None => out.push_str(missing),
                }
                rest = &after[close + 1..];
            }
            None => {
                out.push('{');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

/// The hint for `key`, names cut to [`MAX_NAME_BYTES`].
pub fn hint_for(key: &IncidentKey) -> Hint {
    hint_within(key, MAX_NAME_BYTES)
}

/// The hint for `key`, each name in its `check` cut to `max_name_bytes`.
pub fn hint_within(key: &IncidentKey, max_name_bytes: usize) -> Hint {
    let best =
        rows()
            .filter(|row| row_matches(row, key))
            .fold(None::<&Row>, |best, row| match best {
                Some(b) if b.rank() >= row.rank() => Some(b),
                _ => Some(row),
            });
    if let Some(row) = best {
        return Hint {
            meaning: row.meaning,
            check: fill(row.check, key, max_name_bytes),
            fit: row.fit(),
        };
    }
    let generic = devices::GENERIC
        .iter()
        .find(|g| g.category == Some(key.category) && g.kind == Some(key.kind))
        .or_else(|| {
            devices::GENERIC
                .iter()
                .find(|g| g.category.is_none() && g.kind == Some(key.kind))
        })
        .or_else(|| {
            devices::GENERIC
                .iter()
                .find(|g| g.category == Some(key.category) && g.kind.is_none())
        });
    match generic {
        Some(g) => Hint {
            meaning: g.meaning,
            check: fill(g.check, key, max_name_bytes),
            fit: Fit::Generic,
        },
        None => Hint {
            meaning: FALLBACK_MEANING,
            check: FALLBACK_CHECK.to_owned(),
            fit: Fit::Fallback,
        },
    }
}

/// How much the table covers: its rows, and the event types, reasons, rule
/// actions and error codes they name (each spelling counted once).
pub fn coverage() -> (usize, usize) {
    let names: std::collections::BTreeSet<String> = rows()
        .flat_map(|r| r.first.iter().chain(r.second))
        .map(|n| norm(n))
        .collect();
    (rows().count(), names.len())
}
