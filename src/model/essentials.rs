//! What classification reads from an entry, and nothing else: read by a
//! serde visitor from unescaped text, or in place from the message still
//! escaped in its envelope (the fast scan), with one answer for both.

use std::borrow::Cow;
use std::fmt;
use std::ops::Range;

use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde_json::value::RawValue;

use crate::json::scan::Specials;
use crate::json::unescape::unescape_json_string;
use crate::model::field::Field;

/// The `eventType` values of CloudTrail records (never IoT log event types).
pub(crate) const CLOUDTRAIL_EVENT_TYPES: [&str; 5] = [
    "AwsApiCall",
    "AwsServiceEvent",
    "AwsConsoleAction",
    "AwsConsoleSignIn",
    "AwsCloudTrailInsight",
];

/// Why a message did not parse as an IoT v2 log entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotAnEntry {
    /// Not JSON at all (legacy v1 plain text, truncated JSON, …).
    NotJson,
    /// JSON, but not an object.
    NotAnObject,
    /// A JSON object with no string `eventType`.
    NoEventType,
}

impl NotAnEntry {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::NotJson => "not JSON",
            Self::NotAnObject => "JSON but not an object",
            Self::NoEventType => "no string eventType",
        }
    }
}

/// The shape checks shared by both parsers.
pub(crate) fn parse_object<'a, T: serde::Deserialize<'a>>(
    message: &'a str,
) -> Result<T, NotAnEntry> {
    if !message.trim_start().starts_with('{') {
        return Err(if serde_json::from_str::<de::IgnoredAny>(message).is_ok() {
            NotAnEntry::NotAnObject
        } else {
            NotAnEntry::NotJson
        });
    }
    serde_json::from_str::<T>(message).map_err(|_| NotAnEntry::NotJson)
}

/// The decoded text of a JSON string value, borrowed when it has no escapes.
pub(crate) fn json_text(raw: &RawValue) -> Option<Cow<'_, str>> {
    let quoted = raw.get();
    let inner = quoted.strip_prefix('"')?.strip_suffix('"')?;
    if memchr::memchr(b'\\', inner.as_bytes()).is_none() {
        return Some(Cow::Borrowed(inner));
    }
    let mut out = String::new();
    unescape_json_string(quoted, &mut out)?;
    Some(Cow::Owned(out))
}

/// The fields classification reads, one line each: its slot, the model's
/// field, its member of [`Essentials`], and every name it goes by, as bytes
/// (a test holds them to the field table). The serde reader, the escaped
/// scan, [`Essentials`] itself and the full entry's `essentials()` are all
/// generated from it, so reading one more field is one more line here (and
/// a look at what `classify` makes of it). `eventType` is always read.
macro_rules! classification_fields {
    ($($slot:ident: $field:ident => $member:ident [$($name:literal)|+]),+ $(,)?) => {
        /// What classification reads from an entry, and nothing else.
        #[derive(Debug, Clone, PartialEq, Eq, Default)]
        pub struct Essentials<'a> {
            pub event_type: Cow<'a, str>,
            $(pub $member: Option<Cow<'a, str>>,)+
        }

        /// The fields classification reads, as slots of [`EssentialsSlots`].
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub(crate) enum Slot {
            EventType,
            $($slot,)+
        }

        impl Slot {
            /// For each first letter (either case), the lengths of the names
            /// that start with it, as bits: nearly every key is turned away
            /// by its first letter and length together before any comparison.
            const LENGTHS_BY_LETTER: [u64; 26] = {
                let names: &[&[u8]] = &[b"eventType", b"EventType", $($($name),+),+];
                let mut table = [0u64; 26];
                let mut i = 0;
                while i < names.len() {
                    table[((names[i][0] | 0x20) - b'a') as usize] |= 1 << names[i].len();
                    i += 1;
                }
                table
            };

            /// The slot the string value of `key` fills, if classification reads it.
            #[inline(always)]
            pub(crate) fn of(key: &[u8]) -> Option<Slot> {
                let letter = (key.first()? | 0x20).wrapping_sub(b'a') as usize;
                if letter >= 26 || key.len() >= 64 || Self::LENGTHS_BY_LETTER[letter] >> key.len() & 1 == 0 {
                    return None;
                }
                match key {
                    b"eventType" | b"EventType" => Some(Slot::EventType),
                    $($($name)|+ => Some(Slot::$slot),)+
                    _ => None,
                }
            }

            /// The slot a field of the model fills, if classification reads it.
            #[cfg(test)]
            pub(crate) fn of_field(field: Field) -> Option<Slot> {
                match field {
                    $(Field::$field => Some(Slot::$slot),)+
                    _ => None,
                }
            }
        }

        impl<'a> EssentialsSlots<'a> {
            /// Fills a slot; the last of duplicate keys wins, as in serde.
            #[inline(always)]
            fn set(&mut self, slot: Slot, value: Cow<'a, str>) {
                match slot {
                    Slot::EventType => {
                        self.has_event_type = true;
                        self.essentials.event_type = value;
                    }
                    $(Slot::$slot => self.essentials.$member = Some(value),)+
                }
            }
        }

        impl<'a> Essentials<'a> {
            /// The essentials of an entry already read in full.
            pub(crate) fn from_fields(
                event_type: &'a str,
                get: impl Fn(Field) -> Option<&'a str>,
            ) -> Self {
                Essentials {
                    event_type: Cow::Borrowed(event_type),
                    $($member: get(Field::$field).map(Cow::Borrowed),)+
                }
            }
        }
    };
}

classification_fields! {
    Status: Status => status [b"status"],
    LogLevel: LogLevel => log_level [b"logLevel"],
    EventName: EventName => event_name [b"eventName" | b"EventName"],
    EventSource: EventSource => event_source [b"eventSource" | b"EventSource"],
    ErrorCode: ErrorCode => error_code [b"errorCode" | b"ErrorCode"],
}

impl Essentials<'_> {
    /// A CloudTrail record: an `eventName` and one of CloudTrail's event types.
    pub fn is_cloudtrail(&self) -> bool {
        self.event_name.is_some() && CLOUDTRAIL_EVENT_TYPES.contains(&&*self.event_type)
    }
}

/// Reads only the fields of [`Essentials`], skipping every other value
/// without keeping it: most entries are healthy, and for them this is all
/// the work there is. Accepts and refuses exactly what [`parse_entry`] does,
/// and reads those fields the same way.
pub fn parse_essentials(message: &str) -> Result<Essentials<'_>, NotAnEntry> {
    parse_object::<ParsedEssentials>(message)?
        .0
        .ok_or(NotAnEntry::NoEventType)
}

/// Reads [`Essentials`] straight from a message as it sits, still escaped,
/// in the CloudWatch envelope (`"{\"eventType\":\"Connect\",…}"`), for the
/// common case of an entry whose strings hold no escapes of their own:
/// there every inner quote is `\"` and nothing else is escaped, so no
/// unescaping is needed, and the backslashes mark where strings end. Nested
/// values are checked and skipped. `None` when the message is anything else
/// (an escape inside a string, a number with an exponent, nesting deeper
/// than 16, a syntax error, not a string at all): the caller then unescapes
/// it and runs [`parse_essentials`], whose answer this one equals whenever
/// it gives one.
pub fn scan_escaped_essentials(quoted: &str) -> Option<Result<Essentials<'_>, NotAnEntry>> {
    let mut specials = Specials::new(quoted.as_bytes(), 0);
    let (essentials, closing) = scan_escaped_message(quoted, 0, &mut specials, |read| {
        read.cloned().ok_or(NotAnEntry::NoEventType)
    })?;
    (closing + 1 == quoted.len()).then_some(essentials)
}

/// [`scan_escaped_essentials`] of the string literal that opens at
/// `text[open]`, inside a larger text (the envelope) whose end is not known
/// yet: with the essentials, the index of the literal's closing quote.
/// Finding that end is the envelope reader's costliest step, and this scan
/// finds it on the way, so each message is read once. Every byte the scan
/// passes is either one it checks itself or inside an inner string, where
/// a raw quote or a control character stops it; so when it answers, the
/// literal is valid JSON and ends where it says. `text` must be valid UTF-8
/// (a `&str`) and is taken as it is: the caller checks it once.
/// `specials` is a cursor over `text`'s bytes, which the caller may share
/// with its own reading so that each block's mask is worked out once.
/// `then` is handed the essentials where they were read (`None`: an object
/// with no string `eventType`), so that the hot path copies none of them.
pub fn scan_escaped_message<'a, T>(
    text: &'a str,
    open: usize,
    specials: &mut Specials<'_>,
    then: impl FnOnce(Option<&Essentials<'a>>) -> T,
) -> Option<(T, usize)> {
    // Deeper values are left to the parsers (serde_json stops at 128).
    const MAX_DEPTH: u32 = 16;
    let bytes = text.as_bytes();
    if bytes.get(open) != Some(&b'"') {
        return None;
    }
    // One loop over the tokens, with the open containers as bits, rather
    // than a call per value: the cursor stays in a register.
    let mut at = open + 1;
    let mut slots = EssentialsSlots::default();
    spaces(bytes, &mut at);
    // An entry is an object; anything else is the parsers' to name.
    if bytes.get(at) != Some(&b'{') {
        return None;
    }
    at += 1;
    // The innermost open container's depth (the entry's own is 0), and
    // which of the open containers are arrays (bit d for depth d).
    let mut depth = 0u32;
    let mut arrays = 0u32;
    // Whether the cursor is just past an opening, where the container may close at once.
    let mut opened = true;
    loop {
        spaces(bytes, &mut at);
        let in_array = arrays >> depth & 1 != 0;
        let close = if in_array { b']' } else { b'}' };
        if !(opened && bytes.get(at) == Some(&close)) {
            // An element: a value, after its key in an object.
            let mut slot = None;
            if !in_array {
                let key = inner_string(bytes, &mut at, specials)?;
                spaces(bytes, &mut at);
                expect(bytes, &mut at, b':')?;
                spaces(bytes, &mut at);
                if depth == 0 {
                    slot = Slot::of(bytes.get(key)?);
                }
            }
            match *bytes.get(at)? {
                opening @ (b'{' | b'[') if depth < MAX_DEPTH => {
                    at += 1;
                    depth += 1;
                    arrays = (arrays & !(1 << depth)) | (u32::from(opening == b'[') << depth);
                    opened = true;
                    continue;
                }
                b'\\' => {
                    let value = inner_string(bytes, &mut at, specials)?;
                    // As in the other parsers, a value of another type leaves the field as it was.
                    if let Some(slot) = slot {
                        // Split at ASCII bytes, so on char boundaries.
                        slots.set(slot, Cow::Borrowed(text.get(value)?));
                    }
                }
                b'-' | b'0'..=b'9' => number(bytes, &mut at)?,
                b't' => word(bytes, &mut at, b"true")?,
                b'f' => word(bytes, &mut at, b"false")?,
                b'n' => word(bytes, &mut at, b"null")?,
                _ => return None,
            }
            spaces(bytes, &mut at);
        }
        // After an element, or at a closing: the next element, or closings.
        loop {
            let in_array = arrays >> depth & 1 != 0;
            match *bytes.get(at)? {
                b',' => {
                    at += 1;
                    opened = false;
                    break;
                }
                b']' if in_array => {}
                b'}' if !in_array => {}
                _ => return None,
            }
            at += 1;
            if depth == 0 {
                spaces(bytes, &mut at);
                return (bytes.get(at) == Some(&b'"')).then(|| (then(slots.read()), at));
            }
            depth -= 1;
            spaces(bytes, &mut at);
        }
    }
}

/// Literal spaces only: in escaped text, tabs and newlines arrive escaped.
#[inline(always)]
fn spaces(bytes: &[u8], at: &mut usize) {
    while bytes.get(*at) == Some(&b' ') {
        *at += 1;
    }
}

#[inline(always)]
fn expect(bytes: &[u8], at: &mut usize, byte: u8) -> Option<()> {
    (bytes.get(*at) == Some(&byte)).then(|| *at += 1)
}

/// `\"…\"` with no escape inside: where the text between starts and
/// ends. A quote before the closing `\"` is the envelope string's own
/// end, so no inner string's.
#[inline(always)]
fn inner_string(bytes: &[u8], at: &mut usize, specials: &mut Specials<'_>) -> Option<Range<usize>> {
    if bytes.get(*at..*at + 2) != Some(b"\\\"") {
        return None;
    }
    let start = *at + 2;
    let end = specials.next_from(start);
    if bytes.get(end..end + 2) != Some(b"\\\"") {
        return None;
    }
    *at = end + 2;
    Some(start..end)
}

#[inline(always)]
fn word(bytes: &[u8], at: &mut usize, word: &[u8]) -> Option<()> {
    bytes
        .get(*at..)?
        .starts_with(word)
        .then(|| *at += word.len())
}

/// `-?(0|[1-9][0-9]*)(\.[0-9]+)?`; exponents are left to the full parsers.
#[inline(always)]
fn number(bytes: &[u8], at: &mut usize) -> Option<()> {
    let digits = |at: &mut usize| {
        let start = *at;
        while bytes.get(*at).is_some_and(u8::is_ascii_digit) {
            *at += 1;
        }
        *at - start
    };
    if bytes.get(*at) == Some(&b'-') {
        *at += 1;
    }
    let first = *bytes.get(*at)?;
    let whole = digits(at);
    if whole == 0 || (first == b'0' && whole > 1) {
        return None;
    }
    if bytes.get(*at) == Some(&b'.') {
        *at += 1;
        if digits(at) == 0 {
            return None;
        }
    }
    match bytes.get(*at) {
        Some(b'e' | b'E') => None,
        _ => Some(()),
    }
}

/// The fields of [`Essentials`] while they are read, by either reader.
#[derive(Default)]
struct EssentialsSlots<'a> {
    essentials: Essentials<'a>,
    /// Whether `essentials.event_type` was read (an entry needs one).
    has_event_type: bool,
}

impl<'a> EssentialsSlots<'a> {
    /// The essentials where they lie, if a string `eventType` was found.
    fn read(&self) -> Option<&Essentials<'a>> {
        self.has_event_type.then_some(&self.essentials)
    }

    /// The essentials, if a string `eventType` was found.
    fn finish(self) -> Option<Essentials<'a>> {
        self.has_event_type.then_some(self.essentials)
    }
}

struct ParsedEssentials<'a>(Option<Essentials<'a>>);

impl<'de> serde::Deserialize<'de> for ParsedEssentials<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_map(EssentialsVisitor)
    }
}

struct EssentialsVisitor;

impl<'de> Visitor<'de> for EssentialsVisitor {
    type Value = ParsedEssentials<'de>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an AWS IoT log entry object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut slots = EssentialsSlots::default();
        while let Some(key) = map.next_key::<Cow<'de, str>>()? {
            let Some(slot) = Slot::of(key.as_bytes()) else {
                map.next_value::<de::IgnoredAny>()?;
                continue;
            };
            // As in the full parse, a value of another type leaves the field as it was.
            if let Some(text) = json_text(map.next_value::<&'de RawValue>()?) {
                slots.set(slot, text);
            }
        }
        Ok(ParsedEssentials(slots.finish()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn escaped(message: &str) -> String {
        serde_json::to_string(message).unwrap()
    }

    #[test]
    fn the_escaped_scan_reads_flat_entries_in_place() {
        let line = r#"{"timestamp":"2017-08-10 15:37:23.476","logLevel":"ERROR", "traceId":"t","accountId":"1","status":"Failure","eventType":"RuleNotFound","sourcePort":-12.5,"retained":false,"qos":null,"EventType":"Publish-In"}"#;
        let quoted = escaped(line);
        let e = scan_escaped_essentials(&quoted).unwrap().unwrap();
        assert!(
            matches!(e.event_type, Cow::Borrowed(_)),
            "borrowed from the envelope"
        );
        assert_eq!(
            e.event_type, "Publish-In",
            "the last of duplicate keys wins, as in serde"
        );
        assert_eq!(e.status.as_deref(), Some("Failure"));
        assert_eq!(e.log_level.as_deref(), Some("ERROR"));
        assert_eq!(Ok(e), parse_essentials(line));
        let nested = r#"{"eventType":"RuleExecution","status":{"a":[1,{"b":null}]},"resources": {"TableName":"t", "Keys":[ ]},"logLevel":"WARN"}"#;
        let quoted = escaped(nested);
        let e = scan_escaped_essentials(&quoted).unwrap();
        assert_eq!(e.as_ref().unwrap().status, None, "an object is no status");
        assert_eq!(e, parse_essentials(nested));
        assert_eq!(
            scan_escaped_essentials(&escaped(r#" { } "#)),
            Some(Err(NotAnEntry::NoEventType))
        );
        assert_eq!(
            scan_escaped_essentials(&escaped(r#"{"eventType":7,"status":"Failure"}"#)),
            Some(Err(NotAnEntry::NoEventType)),
            "a value of another type leaves the field unset"
        );
    }

    #[test]
    fn the_escaped_scan_leaves_everything_else_to_the_parsers() {
        for message in [
            r#"{"eventType":"Con\"nect"}"#,
            r#"{"eventType":"Connect","details":"tab\there"}"#,
            r#"{"eventType":"Connect","resources":["a\"b"]}"#,
            r#"{"eventType":"Connect","userIdentity":{"type":"x",}}"#,
            r#"{"eventType":"Connect","userIdentity":{"type":"x"]}"#,
            r#"{"eventType":"Connect","resources":[1,]}"#,
            r#"{"eventType":"Connect","resources":[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]}"#,
            r#"{"eventType":"Connect","n":1e5}"#,
            r#"{"eventType":"Connect","n":01}"#,
            r#"{"eventType":"Connect",}"#,
            r#"{"eventType":"Connect"} x"#,
            r#"{"eventType":"Connect""#,
            "{\"eventType\":\"Connect\",\n\"status\":\"Failure\"}",
            "[1]",
            "plain text",
            "",
        ] {
            assert_eq!(
                scan_escaped_essentials(&escaped(message)),
                None,
                "{message}"
            );
        }
        assert_eq!(scan_escaped_essentials("7"), None, "not a string");
    }
}
