//! Device-chosen text made safe to show a person: in a notification's text,
//! on a terminal, in a CSV file opened by a spreadsheet.
//!
//! Devices choose their client ids and topics, and whoever can write to the
//! log group chooses every field. Shown as they came, such values can fake
//! lines and fields of a notification (`x\n\nSeverity: low`), reorder what a
//! reader sees (U+202E RIGHT-TO-LEFT OVERRIDE), drive a terminal (ESC, CSI,
//! OSC sequences) or run as a spreadsheet formula (`=HYPERLINK(…)`). Every
//! place that shows such a value goes through one of these functions.

use std::borrow::Cow;
use std::fmt::Write as _;

/// Characters that can fake a line, drive a terminal, or hide or reorder
/// text: C0 and C1 controls and DEL, the line and paragraph separators,
/// bidirectional controls, zero-width and invisible formatting characters,
/// the interlinear annotation marks, Hangul fillers and tag characters
/// (both render as nothing).
pub fn is_unsafe_char(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{061C}'
                | '\u{115F}'
                | '\u{1160}'
                | '\u{180E}'
                | '\u{200B}'..='\u{200F}'
                | '\u{2028}'..='\u{202E}'
                | '\u{2060}'..='\u{206F}'
                | '\u{3164}'
                | '\u{FEFF}'
                | '\u{FFA0}'
                | '\u{FFF9}'..='\u{FFFB}'
                | '\u{E0000}'..='\u{E007F}'
        )
}

fn push_escaped(out: &mut String, c: char) {
    match c {
        '\n' => out.push_str("\\n"),
        '\r' => out.push_str("\\r"),
        '\t' => out.push_str("\\t"),
        '\\' => out.push_str("\\\\"),
        c => {
            let _ = write!(out, "\\u{{{:04x}}}", u32::from(c));
        }
    }
}

/// `s` on one line with every [unsafe](is_unsafe_char) character written
/// as an escape (`\n`, `\t`, `\u{202e}`) and backslashes doubled, so an
/// escape in the output always stands for what it says. Borrowed when
/// nothing needed escaping.
pub fn escape(s: &str) -> Cow<'_, str> {
    if !s.chars().any(|c| c == '\\' || is_unsafe_char(c)) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 16);
    for c in s.chars() {
        if c == '\\' || is_unsafe_char(c) {
            push_escaped(&mut out, c);
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// `"…"` around [`escape`]d text, with inner quotes escaped: a value that
/// cannot pass for a line or a field of its own, and whose ends are visible.
pub fn quoted(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            c if c == '\\' || is_unsafe_char(c) => push_escaped(&mut out, c),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// JSON text (as serde_json writes it) with the unsafe characters that
/// serde_json leaves as they are (DEL, C1 controls, bidirectional and
/// invisible characters, U+2028/2029) written as `\uXXXX`: the same JSON
/// value, harmless on a terminal. Only strings can hold such characters,
/// and each of them is in the Basic Multilingual Plane.
pub fn json_for_terminal(json: &str) -> Cow<'_, str> {
    if !json.chars().any(is_unsafe_char) {
        return Cow::Borrowed(json);
    }
    let mut out = String::with_capacity(json.len() + 16);
    for c in json.chars() {
        if is_unsafe_char(c) {
            let _ = write!(out, "\\u{:04x}", u32::from(c));
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// One CSV cell (RFC 4180 quoting) that a spreadsheet shows as text:
/// a cell starting with `=`, `+`, `-`, `@`, tab or carriage return gets a
/// leading `'` (OWASP's advice against CSV injection), and unsafe
/// characters are [escaped](escape) so the file is safe to print too.
pub fn csv_cell(s: &str) -> String {
    let formula = s.starts_with(['=', '+', '-', '@', '\t', '\r']);
    let text = escape(s);
    let mut cell = String::with_capacity(text.len() + 3);
    if formula {
        cell.push('\'');
    }
    cell.push_str(&text);
    // `;` too: spreadsheets in many locales split on it.
    if cell.contains([',', ';', '"', '\n', '\r']) {
        format!("\"{}\"", cell.replace('"', "\"\""))
    } else {
        cell
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_what_can_fake_lines_drive_terminals_or_reorder_text() {
        assert!(matches!(escape("plain ü 名前 -_./:"), Cow::Borrowed(_)));
        assert_eq!(escape("a\nb\r\tc"), "a\\nb\\r\\tc");
        assert_eq!(
            escape("\x1b]0;t\x07\x1b[2J"),
            "\\u{001b}]0;t\\u{0007}\\u{001b}[2J"
        );
        assert_eq!(escape("\u{9b}31m"), "\\u{009b}31m", "C1 CSI");
        assert_eq!(
            escape("dev\u{202e}exe.txt\u{202c}"),
            "dev\\u{202e}exe.txt\\u{202c}"
        );
        assert_eq!(escape("a\u{2028}b\u{2029}"), "a\\u{2028}b\\u{2029}");
        assert_eq!(
            escape("zero\u{200b}width\u{feff}"),
            "zero\\u{200b}width\\u{feff}"
        );
        assert_eq!(
            escape("\\n is not a newline"),
            "\\\\n is not a newline",
            "a backslash in the input cannot pass for an escape"
        );
        assert_eq!(quoted("say \"hi\"\n"), "\"say \\\"hi\\\"\\n\"");
    }

    #[test]
    fn every_unsafe_character_is_escaped_and_nothing_else() {
        for code in 0..=0x10FFFFu32 {
            let Some(c) = char::from_u32(code) else {
                continue;
            };
            let text = c.to_string();
            let escaped = escape(&text);
            assert!(
                !escaped.chars().any(is_unsafe_char),
                "U+{code:04X} survives escaping"
            );
            let expected_change = c == '\\' || is_unsafe_char(c);
            assert_eq!(
                escaped != text,
                expected_change,
                "U+{code:04X} changed: {escaped}"
            );
        }
    }

    #[test]
    fn json_for_terminal_keeps_the_value() {
        let value = serde_json::json!({"clientId": "a\u{202e}b\u{9b}c\u{2028}\u{7f}", "n": 1});
        let text = serde_json::to_string(&value).unwrap();
        let safe = json_for_terminal(&text);
        assert!(
            safe.is_ascii() && !safe.chars().any(is_unsafe_char),
            "{safe}"
        );
        assert_eq!(
            serde_json::from_str::<serde_json::Value>(&safe).unwrap(),
            value
        );
    }

    #[test]
    fn csv_cells_cannot_become_formulas() {
        assert_eq!(
            csv_cell("=HYPERLINK(\"http://x\",\"y\")"),
            "\"'=HYPERLINK(\"\"http://x\"\",\"\"y\"\")\""
        );
        for start in ["=1+1", "+1", "-1", "@SUM(A1)", "\t=1", "\r=1"] {
            let cell = csv_cell(start);
            assert!(
                cell.starts_with("'") || cell.starts_with("\"'"),
                "{start:?} → {cell}"
            );
        }
        assert_eq!(csv_cell("plain"), "plain");
        assert_eq!(csv_cell("a,b"), "\"a,b\"");
        assert_eq!(csv_cell("a;=1"), "\"a;=1\"", "a locale that splits on `;`");
        assert_eq!(csv_cell("2026-11-22T10:00:00Z"), "2026-11-22T10:00:00Z");
        assert_eq!(csv_cell("x\ny"), "x\\ny", "one record per line");
    }
}
