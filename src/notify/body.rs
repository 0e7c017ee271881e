//! The notification's JSON body (what machine subscribers get) and the
//! email text made from it: the one shape every representation is made from.

use std::borrow::Cow;

use serde::{Deserialize, Serialize};

use crate::incident::key::KeyKind;
use crate::model::category::Category;
use crate::notify::display::{escape, is_unsafe_char, quoted};

/// The JSON that machine subscribers receive.
#[derive(Debug, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct NotificationBody<'a> {
    /// The same for every delivery of one transition's notification:
    /// subscribers drop repeats by it.
    #[serde(borrow)]
    pub notification_id: Cow<'a, str>,
    #[serde(borrow)]
    pub incident_id: Cow<'a, str>,
    /// `opened`, `reminder` or `resolved`.
    #[serde(borrow)]
    pub transition: Cow<'a, str>,
    pub category: Category,
    #[serde(borrow)]
    pub severity: Cow<'a, str>,
    pub key_kind: KeyKind,
    /// The key's parts by name (`rule`, `action`, `eventType`, `reason`,
    /// `api`, `errorCode`, `jobId`, `logGroup`), as `[name, value]` pairs.
    #[serde(borrow)]
    pub key: Vec<(Cow<'a, str>, Cow<'a, str>)>,
    pub entries: u64,
    pub entries_since_last_notification: u64,
    pub distinct_clients: u64,
    /// The client count is an estimate (past the exact set of 32: a
    /// HyperLogLog sketch, about 9 % standard error), not an exact count.
    pub distinct_clients_estimated: bool,
    #[serde(borrow)]
    pub top_clients: Vec<Cow<'a, str>>,
    pub first_seen: String,
    pub last_seen: String,
    pub opened_at: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resolved_at: Option<String>,
    #[serde(borrow, default, skip_serializing_if = "Option::is_none")]
    pub details: Option<Cow<'a, str>>,
    #[serde(borrow)]
    pub sample_trace_ids: Vec<Cow<'a, str>>,
    #[serde(borrow, default, skip_serializing_if = "Option::is_none")]
    pub account_id: Option<Cow<'a, str>>,
    #[serde(borrow)]
    pub log_group: Cow<'a, str>,
    #[serde(borrow, default, skip_serializing_if = "Option::is_none")]
    pub acknowledged_by: Option<Cow<'a, str>>,
    /// Notifications of the incident that silences held back before this one.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub held_back_by_silences: u64,
    /// Times the incident came back after going quiet (it was reopened, not
    /// announced resolved and opened again).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub reopenings: u64,
    /// It came back often enough to be flapping: resolved only after the
    /// longer flapping quiet period.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub flapping: bool,
    /// What the incident means, in one line (empty in notifications from
    /// before hints).
    #[serde(borrow, default)]
    pub meaning: Cow<'a, str>,
    /// What to check or run, in one line, with the incident's own names
    /// shell-quoted in the commands.
    #[serde(borrow, default)]
    pub check: Cow<'a, str>,
    /// The command that shows the incident.
    pub show_command: String,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// How often an incident came back after going quiet, in words (email and chat).
pub(crate) fn reopened_line(b: &NotificationBody<'_>) -> String {
    let times = if b.reopenings == 1 { "once" } else { "times" };
    let count = if b.reopenings == 1 {
        String::new()
    } else {
        format!("{} ", b.reopenings)
    };
    let flapping = if b.flapping {
        " (flapping: resolved only after the longer quiet period)"
    } else {
        ""
    };
    format!("{count}{times} after going quiet{flapping}")
}

/// The email text of a notification, from the JSON that machine subscribers
/// get (so a local inbox can show what a person would read).
pub fn email_text(notification_json: &str) -> Result<String, serde_json::Error> {
    serde_json::from_str::<NotificationBody>(notification_json).map(|body| render_text(&body))
}

fn what_it_means(category: Category) -> &'static str {
    match category {
        Category::RuleNotFound => {
            "Messages were published to a rule that does not exist; AWS IoT dropped them."
        }
        Category::RuleMessageThrottled => {
            "The rules engine throttled messages; their rule actions did not run."
        }
        Category::Failure => "AWS IoT reported failed operations.",
        Category::Warning => "AWS IoT reported warnings.",
        Category::Unparseable => "Log events arrived that are not AWS IoT v2 JSON log entries.",
    }
}

/// A letter as the eye reads it: small capitals (`ʀᴇsᴏʟᴠᴇᴅ`, which
/// Unicode's confusables table leaves alone) as their letter, then Unicode's
/// confusable skeleton (Cyrillic `е`, fullwidth `ｅ`, mathematical `𝐞`),
/// then lower case.
fn folded(c: char) -> String {
    let small_capital = match c {
        'ᴀ' => 'a',
        'ʙ' => 'b',
        'ᴄ' => 'c',
        'ᴅ' => 'd',
        'ᴇ' => 'e',
        'ꜰ' => 'f',
        'ɢ' => 'g',
        'ʜ' => 'h',
        'ɪ' => 'i',
        'ᴊ' => 'j',
        'ᴋ' => 'k',
        'ʟ' => 'l',
        'ᴍ' => 'm',
        'ɴ' => 'n',
        'ᴏ' => 'o',
        'ᴘ' => 'p',
        'ꞯ' => 'q',
        'ʀ' => 'r',
        'ꜱ' => 's',
        'ᴛ' => 't',
        'ᴜ' => 'u',
        'ᴠ' => 'v',
        'ᴡ' => 'w',
        'ʏ' => 'y',
        'ᴢ' => 'z',
        c => c,
    };
    let mut one = [0; 4];
    unicode_security::confusable_detection::skeleton(small_capital.encode_utf8(&mut one))
        .flat_map(char::to_lowercase)
        .collect()
}

/// Makes `s` unable to say "resolved", in any case or in letters that look
/// like it: only the subject's own headline may, so a name chosen by a
/// device cannot make an opened incident read as a resolved one. The
/// letter that reads as the word's second `e` becomes `?` (`resolv?d`).
pub(crate) fn without_verdict(s: &str) -> String {
    const WORD: &str = "resolved";
    const MARK: usize = 6; // the second `e`
    let chars: Vec<(char, String)> = s.chars().map(|c| (c, folded(c))).collect();
    let mut out = String::with_capacity(s.len());
    let mut i = 0;
    while i < chars.len() {
        // The shortest run of letters from `i` that reads as the word.
        let mut read = String::new();
        let mut end = None;
        for (j, (_, f)) in chars[i..].iter().enumerate() {
            read.push_str(f);
            if read == WORD {
                end = Some(i + j + 1);
                break;
            }
            if f.is_empty() || !WORD.starts_with(read.as_str()) {
                break;
            }
        }
        let Some(end) = end else {
            out.push(chars[i].0);
            i += 1;
            continue;
        };
        let mut at = 0;
        for (c, f) in &chars[i..end] {
            let covers_mark = at <= MARK && MARK < at + f.len();
            out.push(if covers_mark { '?' } else { *c });
            at += f.len();
        }
        i = end;
    }
    out
}

/// The email text. Every value that came from a log entry (names, reason,
/// details, ids) is [quoted]: whatever it holds, it stays inside its quotes
/// on its own field's line, so it cannot fake a line, a field or a verdict.
pub(crate) fn render_text(b: &NotificationBody<'_>) -> String {
    use std::fmt::Write as _;
    let mut t = String::with_capacity(1024);
    let noun = |n: u64| if n == 1 { "entry" } else { "entries" };
    let what = b
        .key
        .iter()
        .map(|(name, value)| format!("{name} {}", quoted(value)))
        .collect::<Vec<_>>()
        .join(", ");
    let verdict = match &*b.transition {
        "opened" => "Incident opened",
        "reminder" => "Incident still open",
        _ => "Incident resolved",
    };
    let _ = writeln!(t, "{verdict}: {} for {what}.", b.category);
    let _ = writeln!(t, "{}\n", what_it_means(b.category));
    // The hint's meaning is the table's own text; its check holds the
    // incident's names shell-quoted (escaped, so on this one line).
    // (Escaped again only if it holds what a line must not: a body read
    // back by `email_text` may not be one this code wrote.)
    let one_line = |s: &'_ str| -> String {
        if s.chars().any(is_unsafe_char) {
            escape(s).into_owned()
        } else {
            s.to_owned()
        }
    };
    if !b.meaning.is_empty() {
        let _ = writeln!(t, "What it means: {}", one_line(&b.meaning));
    }
    if !b.check.is_empty() {
        let _ = writeln!(t, "What to check: {}", one_line(&b.check));
    }
    if !b.meaning.is_empty() || !b.check.is_empty() {
        t.push('\n');
    }
    let _ = writeln!(t, "Incident:     {}", escape(&b.incident_id));
    let _ = writeln!(t, "Severity:     {}", b.severity);
    let _ = writeln!(t, "Opened:       {}", b.opened_at);
    if let Some(resolved) = &b.resolved_at {
        let _ = writeln!(
            t,
            "Resolved:     {resolved} (no new entry for the quiet period)"
        );
    }
    let _ = writeln!(t, "First seen:   {}", b.first_seen);
    let _ = writeln!(t, "Last seen:    {}", b.last_seen);
    let _ = writeln!(t, "Entries:      {}", b.entries);
    if b.transition == "reminder" {
        let _ = writeln!(
            t,
            "Since last:   {} {}",
            b.entries_since_last_notification,
            noun(b.entries_since_last_notification)
        );
    }
    let (about, estimated) = if b.distinct_clients_estimated {
        ("about ", " (estimated)")
    } else {
        ("", "")
    };
    let _ = writeln!(
        t,
        "Clients:      {about}{} distinct{estimated}",
        b.distinct_clients
    );
    if !b.top_clients.is_empty() {
        let names: Vec<String> = b.top_clients.iter().map(|c| quoted(c)).collect();
        let _ = writeln!(t, "Top clients:  {}", names.join(", "));
    }
    if let Some(d) = &b.details {
        let _ = writeln!(t, "Details:      {}", quoted(d));
    }
    if let Some(a) = &b.account_id {
        let _ = writeln!(t, "Account:      {}", quoted(a));
    }
    let _ = writeln!(t, "Log group:    {}", quoted(&b.log_group));
    if b.held_back_by_silences > 0 {
        let _ = writeln!(
            t,
            "Held back:    {} notification(s) by silences before this one",
            b.held_back_by_silences
        );
    }
    if b.reopenings > 0 {
        let _ = writeln!(t, "Reopened:     {}", reopened_line(b));
    }
    if let Some(by) = &b.acknowledged_by {
        let _ = writeln!(t, "Acknowledged: by {} (no reminders)", quoted(by));
    }
    let _ = writeln!(t, "Notification: {}", escape(&b.notification_id));
    let _ = writeln!(t, "Sample traces:");
    for trace in &b.sample_trace_ids {
        let _ = writeln!(t, "  {}", quoted(trace));
    }
    // The command that shows the incident comes last.
    let _ = writeln!(t, "\nEvery entry of a trace: iot-incidents get <traceId>");
    let _ = writeln!(t, "The incident:           {}", b.show_command);
    t
}
