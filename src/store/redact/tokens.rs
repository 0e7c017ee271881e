//! The redactor's reading of a message: every string of a JSON text, and
//! every value under a redacted name, found without building a value tree
//! (no depth limit, no number conversion), in order, with their places.

use std::ops::Range;

use crate::json::unescape::unescape_json_string;

/// Keys whose values classification reads: never scrubbed (a device named
/// `Failure` must not rewrite `status`), only replaced when redacted by name.
pub(super) const CLASSIFYING_KEYS: &[&str] = &[
    "eventType",
    "EventType",
    "status",
    "logLevel",
    "eventName",
    "EventName",
    "eventSource",
    "EventSource",
    "errorCode",
    "ErrorCode",
];

/// One change to a message's text: the bytes of a value (or string) and
/// what replaces them.
pub(super) enum Change {
    /// A redacted field's value: becomes the pseudonym of `original`.
    Pseudonym { original: String },
    /// Any other string: scrubbed of every redacted value it contains.
    Text { unescaped: String },
}

/// What the tokenizer found: the changes to make, in order, and the
/// strings inside values replaced whole (an object under a redacted name),
/// which are scrubbed wherever else they appear.
pub(super) struct Tokens {
    pub(super) changes: Vec<(Range<usize>, Change)>,
    pub(super) inner: Vec<String>,
}

/// Where a JSON value ends, for a value starting at `at` that is a number or a literal.
fn scalar_end(bytes: &[u8], mut at: usize) -> usize {
    while at < bytes.len()
        && !matches!(bytes[at], b',' | b'}' | b']' | b' ' | b'\t' | b'\n' | b'\r')
    {
        at += 1;
    }
    at
}

/// Where the string starting with the quote at `at` ends (after its closing quote).
fn string_end(bytes: &[u8], mut at: usize) -> Result<usize, ()> {
    at += 1;
    while at < bytes.len() {
        match bytes[at] {
            b'"' => return Ok(at + 1),
            b'\\' => at += 2,
            b if b < 0x20 => return Err(()),
            _ => at += 1,
        }
    }
    Err(())
}

/// A string's text; a string whose escapes do not decode (`\q`, in a
/// line the entry parser refuses) is taken as written, which is just as
/// deterministic. Lone surrogates decode (to U+FFFD).
fn string_text(quoted: &str) -> String {
    let mut text = String::new();
    match unescape_json_string(quoted, &mut text) {
        Some(()) => text,
        None => quoted[1..quoted.len() - 1].to_owned(),
    }
}

/// Every string of a JSON text, and every value of a key that `redacted`
/// names (whatever its type: a number or an object under such a key is
/// replaced whole), in order. Iterative, so no depth is too deep; numbers
/// are never converted, so no number is too large. `Err` for text that is
/// not one JSON value.
pub(super) fn string_tokens(json: &str, redacted: impl Fn(&str) -> bool) -> Result<Tokens, ()> {
    #[derive(Clone, Copy, PartialEq)]
    enum In {
        Object,
        Array,
    }
    let bytes = json.as_bytes();
    let mut changes = Vec::new();
    let mut inner = Vec::new();
    let mut stack: Vec<In> = Vec::new();
    // The open container (its depth and start) whose value is redacted whole.
    let mut redacting: Option<(usize, usize)> = None;
    let mut at = 0;
    let skip_ws = |at: &mut usize| {
        while *at < bytes.len() && matches!(bytes[*at], b' ' | b'\t' | b'\n' | b'\r') {
            *at += 1;
        }
    };
    loop {
        skip_ws(&mut at);
        // `{}` and `[]`: nothing to read, straight to the closing below
        // (after a comma this cannot happen: a trailing comma is refused).
        let empty = matches!(
            (stack.last(), bytes.get(at)),
            (Some(In::Object), Some(b'}')) | (Some(In::Array), Some(b']'))
        );
        // In an object, the key first; its value is redacted when it names a field.
        // Keys are the log's own vocabulary: never rewritten.
        let mut redact_value = false;
        let mut scrub_value = true;
        if stack.last() == Some(&In::Object) && !empty {
            if bytes.get(at) != Some(&b'"') {
                return Err(());
            }
            let end = string_end(bytes, at)?;
            let key = string_text(&json[at..end]);
            redact_value = redacted(&key) && redacting.is_none();
            scrub_value = !CLASSIFYING_KEYS.contains(&key.as_str());
            at = end;
            skip_ws(&mut at);
            if bytes.get(at) != Some(&b':') {
                return Err(());
            }
            at += 1;
            skip_ws(&mut at);
        }
        if !empty {
            let start = at;
            match bytes.get(at) {
                Some(b'"') => {
                    let end = string_end(bytes, at)?;
                    let text = string_text(&json[at..end]);
                    if redact_value {
                        changes.push((start..end, Change::Pseudonym { original: text }));
                    } else if redacting.is_some() {
                        inner.push(text);
                    } else if scrub_value {
                        changes.push((start..end, Change::Text { unescaped: text }));
                    }
                    at = end;
                }
                Some(b'{') | Some(b'[') => {
                    stack.push(if bytes[at] == b'{' {
                        In::Object
                    } else {
                        In::Array
                    });
                    if redact_value {
                        redacting = Some((stack.len(), start));
                    }
                    at += 1;
                    continue;
                }
                Some(b'-' | b'0'..=b'9' | b't' | b'f' | b'n') => {
                    let end = scalar_end(bytes, at);
                    if serde_json::from_str::<serde::de::IgnoredAny>(&json[at..end]).is_err() {
                        return Err(());
                    }
                    if redact_value {
                        changes.push((
                            start..end,
                            Change::Pseudonym {
                                original: json[start..end].to_owned(),
                            },
                        ));
                    }
                    at = end;
                }
                _ => return Err(()),
            }
        }
        // After a value: a comma, or the end of one or more containers.
        loop {
            skip_ws(&mut at);
            match (stack.last(), bytes.get(at)) {
                (None, None) => return Ok(Tokens { changes, inner }),
                (None, Some(_)) => return Err(()),
                (Some(_), Some(b',')) => {
                    at += 1;
                    skip_ws(&mut at);
                    if matches!(bytes.get(at), Some(b'}' | b']')) {
                        return Err(());
                    }
                    break;
                }
                (Some(In::Object), Some(b'}')) | (Some(In::Array), Some(b']')) => {
                    at += 1;
                    if let Some((depth, start)) = redacting {
                        if depth == stack.len() {
                            redacting = None;
                            changes.push((
                                start..at,
                                Change::Pseudonym {
                                    original: json[start..at].to_owned(),
                                },
                            ));
                        }
                    }
                    stack.pop();
                }
                _ => return Err(()),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    #[test]
    fn the_tokenizer_reads_exactly_one_json_value() {
        let ok = |t: &str| string_tokens(t, |_| false).is_ok();
        for good in [
            r#"{}"#,
            r#"[]"#,
            r#" { "a" : [ 1 , { } , [ ] , "x" ] } "#,
            r#""s""#,
            "1",
            r#"{"a":{"b":{}}}"#,
        ] {
            assert!(ok(good), "{good}");
        }
        for bad in [
            r#"{"a":1,}"#,
            r#"[1,]"#,
            r#"{"a"}"#,
            r#"{"a":1}x"#,
            r#"{"a":tru}"#,
            "",
            r#"{"a":"b"#,
            r#"{1:2}"#,
            "[1 2]",
        ] {
            assert!(!ok(bad), "{bad}");
        }
    }

    proptest::proptest! {
        /// The fail-closed direction: whatever serde_json reads as one JSON
        /// value, the tokenizer reads too (it may take a little more).
        #[test]
        fn the_tokenizer_reads_whatever_serde_json_reads(text in "[ \\[\\]{}:,\"a-c0-9.eE+\\-tfnrul\\\\]{0,40}") {
            if serde_json::from_str::<serde::de::IgnoredAny>(&text).is_ok() {
                proptest::prop_assert!(string_tokens(&text, |_| false).is_ok(), "{}", text);
            }
        }

        #[test]
        fn generated_json_is_read(value in proptest::collection::vec(("[a-z]{1,3}", "[ -~\u{80}-\u{2030}]{0,8}", 0i64..1000), 0..6)) {
            let object: serde_json::Map<String, Value> = value
                .into_iter()
                .map(|(k, s, n)| (k, serde_json::json!([s, n, {"x": null, "y": [true, false]}])))
                .collect();
            let text = serde_json::to_string_pretty(&Value::Object(object)).unwrap();
            proptest::prop_assert!(string_tokens(&text, |_| false).is_ok(), "{}", text);
        }
    }
}
