//! JSON string literals to text, fast on the escape-heavy strings IoT log
//! messages are inside their CloudWatch envelope.

use crate::json::scan::Backslashes;

/// Unescapes a quoted JSON string literal into `out`. `None` if `quoted` is not one.
/// Lone surrogates become U+FFFD rather than an error: a log line's text is
/// still worth keeping.
///
/// IoT messages escape every quote, one escape every few bytes, so the next
/// backslash comes from a bit mask per 64 bytes rather than a search per short run.
pub fn unescape_json_string(quoted: &str, out: &mut String) -> Option<()> {
    let inner = quoted.strip_prefix('"')?.strip_suffix('"')?;
    let bytes = inner.as_bytes();
    out.reserve(inner.len());
    let mut backslashes = Backslashes::new(bytes, 0);
    let mut start = 0;
    loop {
        // A backslash is ASCII, so `at` is always a char boundary.
        let at = backslashes.next_from(start);
        out.push_str(&inner[start..at]);
        if at == bytes.len() {
            return Some(());
        }
        let escape = *bytes.get(at + 1)?;
        start = at + 2;
        match escape {
            b'"' => out.push('"'),
            b'\\' => out.push('\\'),
            b'/' => out.push('/'),
            b'b' => out.push('\u{8}'),
            b'f' => out.push('\u{c}'),
            b'n' => out.push('\n'),
            b'r' => out.push('\r'),
            b't' => out.push('\t'),
            b'u' => {
                let unit = hex4(bytes.get(start..start + 4)?)?;
                start += 4;
                let ch = if (0xD800..0xDC00).contains(&unit) {
                    let low = (bytes.get(start..start + 2) == Some(b"\\u"))
                        .then(|| bytes.get(start + 2..start + 6).and_then(hex4))
                        .flatten()
                        .filter(|low| (0xDC00..0xE000).contains(low));
                    match low {
                        Some(low) => {
                            start += 6;
                            char::from_u32(0x10000 + ((unit - 0xD800) << 10) + (low - 0xDC00))
                        }
                        None => None,
                    }
                } else {
                    char::from_u32(unit)
                };
                out.push(ch.unwrap_or(char::REPLACEMENT_CHARACTER));
            }
            _ => return None,
        }
    }
}

fn hex4(digits: &[u8]) -> Option<u32> {
    if digits.len() != 4 {
        return None;
    }
    digits
        .iter()
        .try_fold(0u32, |acc, &d| Some(acc * 16 + (d as char).to_digit(16)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unescape_matches_serde_json() {
        let cases = [
            r#""plain""#,
            r#""quote \" backslash \\ slash \/ controls \b\f\n\r\t""#,
            r#""\u00e9t\u00E9 \u4e2d \ud83d\ude00 end""#,
            r#""{\"eventType\":\"Connect\",\"clientId\":\"caf\u00e9\"}""#,
            r#""""#,
        ];
        for case in cases {
            let mut out = String::new();
            unescape_json_string(case, &mut out).unwrap();
            assert_eq!(out, serde_json::from_str::<String>(case).unwrap(), "{case}");
        }
    }

    #[test]
    fn unescape_refuses_non_strings_and_keeps_lone_surrogates_readable() {
        let mut out = String::new();
        assert!(unescape_json_string("42", &mut out).is_none());
        assert!(unescape_json_string(r#""bad \x escape""#, &mut out).is_none());
        assert!(unescape_json_string(r#""cut \u12""#, &mut out).is_none());
        out.clear();
        unescape_json_string(r#""lone \ud800 here""#, &mut out).unwrap();
        assert_eq!(out, "lone \u{FFFD} here");
    }
}
