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
//! The hint's `check` is the table's own text with commands between
//! backquotes; only commands hold the incident's own rule, job, API or log
//! group, each as one [shell word](shell_word), so a name a device chose
//! cannot leave its quotes, its line or its command, and the command passes
//! the name exactly. A name that cannot be shown whole (too long, or holding
//! NUL) is not shown cut: its placeholder (`<rule-name>`) stands instead and
//! [`Hint::withheld`] says so. The `meaning` is this table's own text only.

use crate::incident::key::{IncidentKey, KeyKind};
use crate::model::category::Category;
use crate::notify::display::shell_word;

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
    /// One line: what to look at or run; commands between backquotes, with
    /// the incident's own names as shell words.
    pub check: String,
    /// The commands of `check` that name the incident's own values, in order.
    pub commands: Vec<ShownCommand>,
    /// A name was left out of a command (its placeholder shows instead)
    /// because it could not be shown whole.
    pub withheld: bool,
    pub fit: Fit,
}

/// A command shown in a hint, with what it was made from: the table's
/// template and the values put in it. What a shell must run for `text` is
/// the template's words with each `{name}` replaced by its raw value: tests
/// run `text` in a real shell and compare.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShownCommand {
    pub text: String,
    pub template: &'static str,
    /// Each placeholder's name and the raw value it stands for (absent when
    /// the value was withheld or the key has no such part).
    pub values: Vec<(&'static str, String)>,
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
const POLICY_CHECK: &str = "`aws iot list-attached-policies --target <certificate-arn>` (older CLIs: `aws iot list-principal-policies --principal <certificate-arn>`), then `aws iot get-policy --policy-name <policy>`";

mod devices;
mod rules;
#[cfg(test)]
mod tests;

/// The table, in order: within one rank, the first matching row wins.
fn rows() -> impl Iterator<Item = &'static Row> {
    rules::ROWS.iter().chain(devices::ROWS)
}

const FALLBACK_MEANING: &str = "AWS IoT reported a problem this table has no advice for.";
const FALLBACK_CHECK: &str = "A sample entry in full: `iot-incidents get <traceId>`";

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

/// A name is put in a command only when its shell word fits in this much (a
/// caller can ask for less); a longer one is withheld, never cut.
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

/// What [`fill`] makes of a check template.
struct Filled {
    check: String,
    commands: Vec<ShownCommand>,
    withheld: bool,
}

/// `template` with each `{name}` replaced by the incident's own value as a
/// [shell word](shell_word) of at most `max_bytes`, or by a `<name>` for the
/// reader to fill in when the key has no such part or the value cannot be
/// shown whole. Braces that name no placeholder (a policy variable such as
/// `${iot:ClientId}`) stay as they are. Commands are the spans between
/// backquotes; the table puts every placeholder in one (a test holds it).
fn fill(template: &'static str, key: &IncidentKey, max_bytes: usize) -> Filled {
    let mut filled = Filled {
        check: String::with_capacity(template.len() + 64),
        commands: Vec::new(),
        withheld: false,
    };
    for (i, span) in template.split('`').enumerate() {
        let is_command = i % 2 == 1;
        if i > 0 {
            filled.check.push('`');
        }
        let mut values = Vec::new();
        let text = fill_span(span, key, max_bytes, &mut values, &mut filled.withheld);
        filled.check.push_str(&text);
        if is_command && span.contains('{') && text != span {
            filled.commands.push(ShownCommand {
                text,
                template: span,
                values,
            });
        }
    }
    filled
}

fn fill_span(
    template: &'static str,
    key: &IncidentKey,
    max_bytes: usize,
    values: &mut Vec<(&'static str, String)>,
    withheld: &mut bool,
) -> String {
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
                .map(|(known, missing)| (close, *known, *missing))
        });
        match placeholder {
            Some((close, name, missing)) => {
                let word = part(name, key).map(|value| (value, shell_word(value)));
                match word {
                    Some((value, Some(word))) if word.len() <= max_bytes => {
                        out.push_str(&word);
                        values.push((name, value.to_owned()));
                    }
                    Some(_) => {
                        *withheld = true;
                        out.push_str(missing);
                    }
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

/// The hint for `key`, names of at most [`MAX_NAME_BYTES`] as shell words.
pub fn hint_for(key: &IncidentKey) -> Hint {
    hint_within(key, MAX_NAME_BYTES)
}

/// The hint for `key`, each name in its `check` a shell word of at most
/// `max_name_bytes` (or withheld).
pub fn hint_within(key: &IncidentKey, max_name_bytes: usize) -> Hint {
    let best =
        rows()
            .filter(|row| row_matches(row, key))
            .fold(None::<&Row>, |best, row| match best {
                Some(b) if b.rank() >= row.rank() => Some(b),
                _ => Some(row),
            });
    if let Some(row) = best {
        return hint(row.meaning, fill(row.check, key, max_name_bytes), row.fit());
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
        Some(g) => hint(g.meaning, fill(g.check, key, max_name_bytes), Fit::Generic),
        None => hint(
            FALLBACK_MEANING,
            fill(FALLBACK_CHECK, key, max_name_bytes),
            Fit::Fallback,
        ),
    }
}

fn hint(meaning: &'static str, filled: Filled, fit: Fit) -> Hint {
    Hint {
        meaning,
        check: filled.check,
        commands: filled.commands,
        withheld: filled.withheld,
        fit,
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
