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

/// Whether `c` is written as an escape in a [`shell_word`]: what cannot be
/// shown (controls, bidi and invisible characters), what a reader's other
/// tools read as syntax (`` ` `` closes a chat code span and delimits
/// commands in our text; `<`, `>`, `&`, `[`, `]` are chat markup), what
/// interactive shells expand even in quotes (`!` is bash's history
/// expansion, which does not know `$'…'` strings), and U+2018–U+201B,
/// which PowerShell reads as single quotes.
fn shell_escaped_char(c: char) -> bool {
    is_unsafe_char(c)
        || matches!(
            c,
            '`' | '<' | '>' | '&' | '[' | ']' | '!' | '\\' | '\'' | '\u{2018}'..='\u{201B}'
        )
}

/// `s` as one shell word that bash, zsh, ksh93 and any POSIX.1-2024 shell
/// turn back into exactly `s`, or `None` when no shell argument can hold it
/// (it contains NUL). Older `sh` (dash 0.5.12, Debian 12's) reads the
/// `$'…'` form below as a `$` and a single-quoted string: a different
/// argument, but still one argument, and nothing runs.
///
/// Plain text is single-quoted: inside single quotes a shell expands
/// nothing. Text holding a [character shown as an
/// escape](shell_escaped_char) becomes a `$'…'` string (ANSI-C quoting,
/// standard since POSIX.1-2024) where each such character is written as
/// `\xHH` per UTF-8 byte: the word holds no quote, backslash or bang of the
/// device's, no control or invisible character, and no character that chat
/// markdown or PowerShell reads, so it stays one line and one argument
/// wherever it is pasted, and the program receives the device's bytes.
pub fn shell_word(s: &str) -> Option<String> {
    if s.contains('\0') {
        return None;
    }
    let mut out = String::with_capacity(s.len() + 3);
    if !s.chars().any(shell_escaped_char) {
        // No `'` inside: it is one of the escaped characters.
        out.push('\'');
        out.push_str(s);
        out.push('\'');
        return Some(out);
    }
    out.push_str("$'");
    for c in s.chars() {
        if shell_escaped_char(c) {
            let mut bytes = [0; 4];
            for b in c.encode_utf8(&mut bytes).bytes() {
                let _ = write!(out, "\\x{b:02x}");
            }
        } else {
            out.push(c);
        }
    }
    out.push('\'');
    Some(out)
}

/// The characters chat markdown (Slack's mrkdwn, Teams' markdown, the
/// CommonMark that Amazon Q Developer in chat applications converts from)
/// reads as links, mentions or the end of a code span, each with a look-alike
/// that reads as nothing: `` ` `` closes a code span, `<…|…>` is Slack's
/// link and mention syntax (`<!here>`, `<@U123>`; without `<` a `|` is
/// plain), `&` starts an entity, `[…](…)` is a markdown link.
fn chat_lookalike(c: char) -> Option<char> {
    Some(match c {
        '`' => '\u{02CB}', // ˋ MODIFIER LETTER GRAVE ACCENT
        '<' => '\u{2039}', // ‹
        '>' => '\u{203A}', // ›
        '&' => '\u{FF06}', // ＆
        '[' => '\u{FF3B}', // ［
        ']' => '\u{FF3D}', // ］
        _ => return None,
    })
}

/// Device text as an inline code span for chat markdown: [`escape`]d (one
/// line, no control or invisible character), with the characters that could
/// close the span or make a link or mention replaced by look-alikes. Inside
/// a code span `*`, `_`, `~` and bare URLs are shown as they are, so a name
/// can neither format the message nor add a link to it.
pub fn chat_code(s: &str) -> String {
    let text = escape(s);
    let mut out = String::with_capacity(text.len() + 2);
    out.push('`');
    for c in text.chars() {
        out.push(chat_lookalike(c).unwrap_or(c));
    }
    out.push('`');
    out
}

/// Device text for chat fields shown without a code span: as [`chat_code`]
/// but unquoted, and with the emphasis characters replaced too, so the text
/// cannot format itself: every `*` and `~`, and each `_` that is not inside
/// a word (`CLIENT_ERROR` and `my_rule` emphasise nothing and stay as they
/// are; `_x_` would).
pub fn chat_text(s: &str) -> String {
    let text = escape(s);
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    for (i, &c) in chars.iter().enumerate() {
        let in_word = |at: Option<&char>| at.is_some_and(|c| c.is_alphanumeric());
        out.push(match c {
            '*' => '\u{2217}', // ∗
            '~' => '\u{223C}', // ∼
            '_' if in_word(i.checked_sub(1).and_then(|p| chars.get(p)))
                && in_word(chars.get(i + 1)) =>
            {
                '_'
            }
            '_' => '\u{02CD}', // ˍ
            c => chat_lookalike(c).unwrap_or(c),
        });
    }
    out
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

    /// Splits `s` as a POSIX.1-2024 shell would split a command line made
    /// only of plain characters, single-quoted strings and `$'…'` strings
    /// with `\xHH` escapes; `None` when anything else (an unquoted
    /// metacharacter, another escape) appears. (tests/shell_commands.rs runs
    /// the words in a real bash.)
    fn shell_words(s: &str) -> Option<Vec<String>> {
        let mut words = Vec::new();
        let mut word: Option<Vec<u8>> = None;
        let mut chars = s.chars().peekable();
        while let Some(c) = chars.next() {
            match c {
                '\'' => {
                    let w = word.get_or_insert_with(Vec::new);
                    loop {
                        match chars.next()? {
                            '\'' => break,
                            c => w.extend(c.to_string().bytes()),
                        }
                    }
                }
                '$' if chars.peek() == Some(&'\'') => {
                    chars.next();
                    let w = word.get_or_insert_with(Vec::new);
                    loop {
                        match chars.next()? {
                            '\'' => break,
                            '\\' => {
                                if chars.next()? != 'x' {
                                    return None;
                                }
                                let hex: String = [chars.next()?, chars.next()?].iter().collect();
                                w.push(u8::from_str_radix(&hex, 16).ok()?);
                            }
                            c => w.extend(c.to_string().bytes()),
                        }
                    }
                }
                ' ' => words.extend(word.take()),
                c if c.is_ascii_alphanumeric() || "-_./:=,".contains(c) => {
                    word.get_or_insert_with(Vec::new).push(c as u8)
                }
                _ => return None,
            }
        }
        words.extend(word);
        words
            .into_iter()
            .map(|w| String::from_utf8(w).ok())
            .collect()
    }

    #[test]
    fn a_shell_word_is_the_value_exactly_and_shows_nothing_a_reader_s_tools_read() {
        for hostile in [
            "plain_rule",
            "x'; rm -rf / #",
            "'",
            "''",
            "a'\\''b",
            "$(reboot)`id`${HOME}",
            "line\nbreak\r\u{1b}[2J",
            "bidi\u{202e}txt",
            "ps \u{2018}; calc; \u{2019} \u{201b}",
            "!! !-1 <!here> &amp; [x](y) \\x41",
            "ʀᴇsᴏʟᴠᴇᴅ 日本",
            "",
        ] {
            let word = shell_word(hostile).expect("no NUL");
            assert!(
                !word.chars().any(|c| is_unsafe_char(c)
                    || matches!(
                        c,
                        '`' | '<' | '>' | '&' | '[' | ']' | '!' | '\u{2018}'..='\u{201B}'
                    )),
                "{word:?}"
            );
            let command = format!("aws iot get-topic-rule --rule-name {word}");
            let words = shell_words(&command).unwrap_or_else(|| panic!("{command}"));
            assert_eq!(words.len(), 5, "{command}");
            assert_eq!(words[4], hostile, "{command}");
        }
        assert_eq!(shell_word("plain_rule").as_deref(), Some("'plain_rule'"));
        assert_eq!(shell_word("a'b").as_deref(), Some("$'a\\x27b'"));
        assert_eq!(shell_word("a\0b"), None);
    }

    #[test]
    fn chat_text_cannot_close_its_code_span_or_make_links() {
        let hostile = "a`b [x](http://evil) <http://evil|y> <!here> &lt; *b* _i_ ~s~\n";
        let code = chat_code(hostile);
        assert_eq!(code.matches('`').count(), 2, "{code}");
        assert!(code.starts_with('`') && code.ends_with('`'));
        for bad in ['<', '>', '[', ']', '&', '\n'] {
            assert!(!code.contains(bad), "{bad:?} in {code}");
        }
        assert!(
            code.contains("*b*"),
            "emphasis is plain text inside a code span"
        );
        let text = chat_text(hostile);
        for bad in ['`', '<', '>', '[', ']', '&', '*', '_', '~', '\n'] {
            assert!(!text.contains(bad), "{bad:?} in {text}");
        }
        assert_eq!(chat_code("my_rule-1"), "`my_rule-1`");
        assert_eq!(
            chat_text("my_rule DUPLICATE_CLIENT_ID"),
            "my_rule DUPLICATE_CLIENT_ID"
        );
        assert_eq!(chat_text("_x_ a_ _b __c__"), "ˍxˍ aˍ ˍb ˍˍcˍˍ");
    }
}
