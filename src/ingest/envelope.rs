//! The CloudWatch Logs envelope, read by hand in the shape CloudWatch writes it.
//!
//! The log messages are nearly all of a batch's bytes. serde_json walks each
//! message string byte by byte to find its end, then walks it again to check
//! its UTF-8; here the buffer's UTF-8 is checked once, and one cursor finds
//! where strings may end 64 bytes at a time ([`Specials`]). A message that
//! is a flat IoT entry is read by the escaped scan
//! ([`scan_escaped_message`]), which classifies it and finds its end in the
//! same pass; any other message's end is found by [`string_end`].
//!
//! This reader takes the subset of JSON CloudWatch writes (plain strings for
//! names and ids, integer timestamps, string messages, each field once,
//! unknown fields with string values) and answers `None` for anything else,
//! which `decode::parse_batch` then hands to serde_json: whatever
//! this reader accepts, serde_json reads the same, and errors are always
//! serde_json's.

use std::borrow::Cow;

use crate::ingest::batch::{LogsBatch, RawLogEvent};
use crate::json::scan::{string_end, Specials};
use crate::model::category::Category;
use crate::model::classify::category_of_read;
use crate::model::essentials::scan_escaped_message;

/// The batch, if it is in the shape CloudWatch writes.
pub fn read_batch(buffer: &[u8]) -> Option<LogsBatch<'_>> {
    let mut reader = Reader {
        text: std::str::from_utf8(buffer).ok()?,
        bytes: buffer,
        at: 0,
        specials: Specials::new(buffer, 0),
    };
    let mut message_type = None;
    let mut owner = None;
    let mut log_group = None;
    let mut log_stream = None;
    let mut subscription_filters = None;
    let mut log_events = None;
    reader.object(|reader, key| match key {
        "messageType" => once(&mut message_type, reader.plain_string()?),
        "owner" => once(&mut owner, reader.plain_string()?),
        "logGroup" => once(&mut log_group, reader.plain_string()?),
        "logStream" => once(&mut log_stream, reader.plain_string()?),
        "subscriptionFilters" => once(
            &mut subscription_filters,
            reader.array(|reader| reader.plain_string().map(Cow::Borrowed))?,
        ),
        "logEvents" => once(&mut log_events, reader.array(Reader::log_event)?),
        _ => reader.string_literal().map(drop),
    })?;
    reader.whitespace();
    if reader.at != reader.bytes.len() {
        return None;
    }
    Some(LogsBatch {
        message_type: Cow::Borrowed(message_type?),
        owner: Cow::Borrowed(owner.unwrap_or_default()),
        log_group: Cow::Borrowed(log_group?),
        log_stream: Cow::Borrowed(log_stream?),
        subscription_filters: subscription_filters.unwrap_or_default(),
        log_events: log_events.unwrap_or_default(),
    })
}

/// Sets a field read for the first time; a repeated field is serde_json's to refuse.
fn once<T>(slot: &mut Option<T>, value: T) -> Option<()> {
    slot.is_none().then(|| *slot = Some(value))
}

struct Reader<'a> {
    text: &'a str,
    bytes: &'a [u8],
    at: usize,
    /// Where strings may end, for plain strings and the message scan alike.
    specials: Specials<'a>,
}

impl<'a> Reader<'a> {
    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.at).copied()
    }

    /// JSON's four whitespace bytes.
    fn whitespace(&mut self) {
        while let Some(b' ' | b'\n' | b'\t' | b'\r') = self.peek() {
            self.at += 1;
        }
    }

    fn eat(&mut self, byte: u8) -> bool {
        self.whitespace();
        let found = self.peek() == Some(byte);
        self.at += usize::from(found);
        found
    }

    fn expect(&mut self, byte: u8) -> Option<()> {
        self.eat(byte).then_some(())
    }

    /// `{ "key": value, … }`, each value read by `field`.
    fn object(&mut self, mut field: impl FnMut(&mut Self, &'a str) -> Option<()>) -> Option<()> {
        self.expect(b'{')?;
        if self.eat(b'}') {
            return Some(());
        }
        loop {
            let key = self.plain_string()?;
            self.expect(b':')?;
            self.whitespace();
            field(self, key)?;
            if self.eat(b'}') {
                return Some(());
            }
            self.expect(b',')?;
        }
    }

    /// `[ item, … ]`.
    fn array<T>(&mut self, mut item: impl FnMut(&mut Self) -> Option<T>) -> Option<Vec<T>> {
        self.expect(b'[')?;
        let mut items = Vec::new();
        if self.eat(b']') {
            return Some(items);
        }
        loop {
            self.whitespace();
            items.push(item(self)?);
            if self.eat(b']') {
                return Some(items);
            }
            self.expect(b',')?;
        }
    }

    /// A string literal, quotes included, escapes and all.
    fn string_literal(&mut self) -> Option<&'a str> {
        self.whitespace();
        let start = self.at;
        (self.peek()? == b'"').then_some(())?;
        let end = string_end(self.bytes, start + 1)?;
        self.at = end + 1;
        // Both ends are quotes, so on character boundaries.
        Some(&self.text[start..self.at])
    }

    /// A log event's message literal and, for an entry the escaped scan
    /// reads, its category: one pass finds both its end and its category.
    fn message(&mut self) -> Option<(&'a str, Option<Option<Category>>)> {
        self.whitespace();
        let open = self.at;
        if let Some((category, closing)) =
            scan_escaped_message(self.text, open, &mut self.specials, category_of_read)
        {
            self.at = closing + 1;
            return Some((&self.text[open..self.at], Some(category)));
        }
        Some((self.string_literal()?, None))
    }

    /// The text of a string without escapes.
    fn plain_string(&mut self) -> Option<&'a str> {
        self.whitespace();
        (self.peek()? == b'"').then_some(())?;
        let start = self.at + 1;
        let end = self.specials.next_from(start);
        (self.bytes.get(end) == Some(&b'"')).then_some(())?;
        self.at = end + 1;
        Some(&self.text[start..end])
    }

    /// An integer as serde_json reads an `i64`: no fraction, no exponent,
    /// no leading zero, not `-0`; 18 digits at most, so it cannot overflow.
    fn integer(&mut self) -> Option<i64> {
        self.whitespace();
        let negative = self.eat(b'-');
        let start = self.at;
        while self.peek().is_some_and(|b| b.is_ascii_digit()) {
            self.at += 1;
        }
        let digits = &self.bytes[start..self.at];
        if digits.is_empty() || digits.len() > 18 || (digits[0] == b'0' && digits.len() > 1) {
            return None;
        }
        if let Some(b'.' | b'e' | b'E') = self.peek() {
            return None;
        }
        let value = digits
            .iter()
            .fold(0i64, |n, d| n * 10 + i64::from(d - b'0'));
        match (negative, value) {
            // serde_json reads `-0` as a float, which is no i64.
            (true, 0) => None,
            (true, _) => Some(-value),
            (false, _) => Some(value),
        }
    }

    /// `{"id": "…", "timestamp": 123, "message": "…"}`.
    fn log_event(&mut self) -> Option<RawLogEvent<'a>> {
        let start = self.at;
        if let Some(event) = self.log_event_as_written() {
            return Some(event);
        }
        self.at = start;
        self.log_event_in_any_order()
    }

    /// A log event byte for byte as CloudWatch writes it, with no space and
    /// its fields in CloudWatch's order: a few comparisons of fixed text
    /// instead of a key match per field.
    fn log_event_as_written(&mut self) -> Option<RawLogEvent<'a>> {
        self.literal(b"{\"id\":")?;
        let id = self.plain_string()?;
        self.literal(b",\"timestamp\":")?;
        let timestamp = self.integer()?;
        self.literal(b",\"message\":")?;
        let (message_json, category) = self.message()?;
        self.literal(b"}")?;
        Some(RawLogEvent {
            id: Cow::Borrowed(id),
            timestamp,
            message_json,
            category,
        })
    }

    /// `text` exactly, here.
    fn literal(&mut self, text: &[u8]) -> Option<()> {
        self.bytes
            .get(self.at..)?
            .starts_with(text)
            .then(|| self.at += text.len())
    }

    fn log_event_in_any_order(&mut self) -> Option<RawLogEvent<'a>> {
        let mut id = None;
        let mut timestamp = None;
        let mut message = None;
        self.object(|reader, key| match key {
            "id" => once(&mut id, reader.plain_string()?),
            "timestamp" => once(&mut timestamp, reader.integer()?),
            "message" => once(&mut message, reader.message()?),
            _ => reader.string_literal().map(drop),
        })?;
        let (message_json, category) = message?;
        Some(RawLogEvent {
            id: Cow::Borrowed(id?),
            timestamp: timestamp?,
            message_json,
            category,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use proptest::strategy::ValueTree;

    type Fields<'a> = (
        &'a str,
        &'a str,
        &'a str,
        &'a str,
        Vec<&'a str>,
        Vec<(&'a str, i64, &'a str)>,
    );

    fn fields<'a>(batch: &'a LogsBatch<'a>) -> Fields<'a> {
        (
            &batch.message_type,
            &batch.owner,
            &batch.log_group,
            &batch.log_stream,
            batch.subscription_filters.iter().map(|f| &**f).collect(),
            batch
                .log_events
                .iter()
                .map(|e| (&*e.id, e.timestamp, e.message_json))
                .collect(),
        )
    }

    /// Reads `json` both ways: whenever the hand reader answers, serde_json
    /// must read the same batch.
    fn agrees(json: &str) -> Result<bool, TestCaseError> {
        let Some(mine) = read_batch(json.as_bytes()) else {
            return Ok(false);
        };
        let theirs: LogsBatch = serde_json::from_str(json)
            .map_err(|e| TestCaseError::fail(format!("serde_json refuses {json}: {e}")))?;
        prop_assert_eq!(fields(&mine), fields(&theirs), "{}", json);
        // Classified on the way exactly as the scan of the found literal would.
        for (mine, theirs) in mine.log_events.iter().zip(&theirs.log_events) {
            let found = crate::model::record::category_of_escaped(theirs.message_json);
            prop_assert_eq!(mine.category, found, "{}", theirs.message_json);
        }
        Ok(true)
    }

    const CLOUDWATCH: &str = r#"{"messageType":"DATA_MESSAGE","owner":"123456789012","logGroup":"AWSIotLogsV2","logStream":"s","subscriptionFilters":["f"],"logEvents":[{"id":"1","timestamp":5,"message":"{\"eventType\":\"Connect\",\"details\":\"a \\\"b\\\" c\"}"},{"id":"2","timestamp":6,"message":"plain \u00e9 text"}]}"#;

    #[test]
    fn reads_what_cloudwatch_writes() {
        assert!(agrees(CLOUDWATCH).unwrap());
        let batch = read_batch(CLOUDWATCH.as_bytes()).unwrap();
        assert_eq!(batch.log_events[1].message_json, r#""plain \u00e9 text""#);
        assert_eq!(
            batch.log_events[0].category, None,
            "an escape inside an inner string: left to the parsers"
        );
        assert_eq!(batch.log_events[1].category, None, "not an object");
        let flat = CLOUDWATCH.replace(
            r#"\"details\":\"a \\\"b\\\" c\""#,
            r#"\"status\":\"Failure\""#,
        );
        let batch = read_batch(flat.as_bytes()).unwrap();
        assert_eq!(
            batch.log_events[0].message_json,
            r#""{\"eventType\":\"Connect\",\"status\":\"Failure\"}""#
        );
        assert_eq!(
            batch.log_events[0].category,
            Some(Some(Category::Failure)),
            "classified in place"
        );
        let spaced = r#" { "messageType" : "CONTROL_MESSAGE" , "logGroup":"" ,"logStream":"",
            "policyLevel":"ACCOUNT_LEVEL_POLICY", "logEvents" : [ ] , "subscriptionFilters":[] } "#;
        assert!(agrees(spaced).unwrap());
    }

    #[test]
    fn leaves_everything_else_to_serde_json() {
        let unusual = [
            // escapes in names, duplicate or missing fields, unknown non-string fields
            CLOUDWATCH.replace(
                r#""logGroup":"AWSIotLogsV2""#,
                r#""logGroup":"AWS\/IotLogsV2""#,
            ),
            CLOUDWATCH.replace(r#""id":"2""#, r#""id":"2","id":"3""#),
            CLOUDWATCH.replace(r#""owner":"123456789012","#, r#""owner":"1","owner":"2","#),
            CLOUDWATCH.replace(r#""logStream":"s","#, ""),
            CLOUDWATCH.replace(r#""id":"2","#, r#""id":"2","extra":{"a":1},"#),
            CLOUDWATCH.replace(r#""owner":"#, r#""size":12,"owner":"#),
            // timestamps serde_json reads otherwise, or not as an i64
            CLOUDWATCH.replace(r#""timestamp":5"#, r#""timestamp":1234567890123456789"#),
            CLOUDWATCH.replace(r#""timestamp":5"#, r#""timestamp":5.0"#),
            CLOUDWATCH.replace(r#""timestamp":5"#, r#""timestamp":05"#),
            CLOUDWATCH.replace(r#""timestamp":5"#, r#""timestamp":-0"#),
            CLOUDWATCH.replace(r#""timestamp":5"#, r#""timestamp":"5""#),
            // a message that is not a string, trailing text, bad escapes
            CLOUDWATCH.replace(r#""message":"plain \u00e9 text""#, r#""message":42"#),
            format!("{CLOUDWATCH} x"),
            CLOUDWATCH.replace(r#"\u00e9"#, r#"\x"#),
            CLOUDWATCH.replace(r#"["f"]"#, r#"["f",]"#),
        ];
        for json in unusual {
            assert!(read_batch(json.as_bytes()).is_none(), "{json}");
        }
        assert!(read_batch(b"{\"messageType\":\"\xff\"}").is_none());
    }

    fn whitespace() -> impl Strategy<Value = &'static str> {
        prop::sample::select(vec!["", "", "", " ", "\n  ", "\t", "\r\n"])
    }

    fn string_value() -> impl Strategy<Value = String> {
        prop_oneof![
            30 => "[a-zA-Z0-9/_.-]{0,12}".prop_map(|s| format!("\"{s}\"")),
            2 => "[ -~é\u{1F600}]{0,12}".prop_map(|s| serde_json::to_string(&s).unwrap()),
            1 => prop::sample::select(vec![
                r#""a\/b""#, r#""\u0041""#, r#""bad \x""#, "\"raw\ttab\"", "12", "null",
                "[]", "{}", "\"unterminated",
            ]).prop_map(str::to_owned),
        ]
    }

    fn number() -> impl Strategy<Value = String> {
        prop_oneof![
            30 => any::<i64>().prop_map(|n| (n / 1000).to_string()),
            1 => prop::sample::select(vec![
                "0", "-0", "01", "1.5", "1e3", "-", "9223372036854775807",
                "99999999999999999999", "\"5\"", "123456789012345678",
            ]).prop_map(str::to_owned),
        ]
    }

    fn message() -> impl Strategy<Value = String> {
        prop_oneof![
            20 => "[ -~é\t\n]{0,120}".prop_map(|m| {
                let entry = serde_json::json!({"eventType": "Connect", "details": m});
                serde_json::to_string(&entry.to_string()).unwrap()
            }),
            1 => string_value(),
        ]
    }

    /// `"key": value` pairs of an object, some repeated, some missing, in any order.
    fn object(pairs: Vec<(String, String)>, ws: Vec<&'static str>) -> String {
        let w = |i: usize| ws[i % ws.len()];
        let body: Vec<String> = pairs
            .iter()
            .enumerate()
            .map(|(i, (k, v))| format!("{}\"{k}\"{}:{}{v}{}", w(i), w(i + 1), w(i + 2), w(i + 3)))
            .collect();
        format!("{{{}}}", body.join(","))
    }

    /// Up to two more `"key": value` pairs, from known keys (so repeats) or not.
    fn pairs(
        known: Vec<(&'static str, BoxedStrategy<String>)>,
    ) -> impl Strategy<Value = Vec<(String, String)>> {
        let values: Vec<_> = known
            .into_iter()
            .map(|(k, v)| v.prop_map(move |v| (k.to_owned(), v)))
            .collect();
        prop_oneof![
            4 => Just(Vec::new()),
            1 => prop::collection::vec(prop::strategy::Union::new(values), 1..3),
        ]
    }

    fn log_event() -> impl Strategy<Value = String> {
        let standard = (string_value(), number(), message());
        (
            standard,
            pairs(vec![
                ("id", string_value().boxed()),
                ("timestamp", number().boxed()),
                ("extra", string_value().boxed()),
            ]),
            prop::collection::vec(whitespace(), 1..5),
            prop::bool::weighted(0.05),
        )
            .prop_map(|((id, ts, msg), mut extra, ws, drop_one)| {
                let mut all = vec![
                    ("id".to_owned(), id),
                    ("timestamp".to_owned(), ts),
                    ("message".to_owned(), msg),
                ];
                if drop_one {
                    all.remove(1);
                }
                all.append(&mut extra);
                object(all, ws)
            })
    }

    fn envelope() -> impl Strategy<Value = String> {
        (
            prop::collection::vec(log_event(), 0..6),
            prop::collection::vec(string_value(), 0..3),
            pairs(vec![
                ("owner", string_value().boxed()),
                ("logStream", string_value().boxed()),
                ("policyLevel", prop_oneof![string_value(), number()].boxed()),
            ]),
            prop::collection::vec(whitespace(), 1..6),
            any::<prop::sample::Index>(),
        )
            .prop_map(|(events, filters, mut extra, ws, rotate)| {
                let mut all = vec![
                    ("messageType".to_owned(), "\"DATA_MESSAGE\"".to_owned()),
                    ("owner".to_owned(), "\"123456789012\"".to_owned()),
                    ("logGroup".to_owned(), "\"AWSIotLogsV2\"".to_owned()),
                    ("logStream".to_owned(), "\"s\"".to_owned()),
                    (
                        "subscriptionFilters".to_owned(),
                        format!("[{}]", filters.join(",")),
                    ),
                    (
                        "logEvents".to_owned(),
                        format!("[{}]", events.join(&format!(",{}", ws[0]))),
                    ),
                ];
                all.append(&mut extra);
                let n = all.len();
                all.rotate_left(rotate.index(n));
                object(all, ws)
            })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(3000))]
        #[test]
        fn whatever_it_reads_serde_json_reads_the_same(json in envelope()) {
            agrees(&json)?;
        }
    }

    #[test]
    fn the_generated_envelopes_reach_the_hand_reader_often() {
        // Guards the property above against a generator that only makes
        // envelopes the hand reader refuses.
        let mut runner = proptest::test_runner::TestRunner::deterministic();
        let strategy = envelope();
        let (mut read, mut total) = (0, 0);
        for _ in 0..500 {
            let json = strategy.new_tree(&mut runner).unwrap().current();
            total += 1;
            read += usize::from(agrees(&json).unwrap());
        }
        eprintln!("{read} of {total} read by hand");
        assert!(read * 5 > total, "{read} of {total}");
    }
}
