//! Byte scanning for the hand-written fast paths: 64-byte blocks whose
//! masks the compiler vectorises ([`NextStop`]), and SWAR (SIMD within a
//! register) over `u64` words for the rest.
//!
//! All of it is portable, safe Rust: the Lambda runs on arm64 and the tests
//! on x86_64, and neither `unsafe` nor a per-architecture copy is needed.
//! Every mask here is exact (no false positives), so a set bit can be
//! trusted, not only the lowest one.

const ONES: u64 = 0x0101_0101_0101_0101;
const HIGHS: u64 = 0x8080_8080_8080_8080;

/// The high bit of each byte of `word` that equals `byte`.
#[inline(always)]
fn bytes_equal(word: u64, byte: u8) -> u64 {
    let x = word ^ (ONES * u64::from(byte));
    // A byte's high bit ends up clear only if the byte was zero.
    !(((x & !HIGHS) + !HIGHS) | x) & HIGHS
}

/// The high bit of each byte of `word` below 0x20 (a JSON control character).
#[inline(always)]
fn bytes_below_space(word: u64) -> u64 {
    !(((word & !HIGHS) + ONES * 0x60) | word) & HIGHS
}

/// Packs the high bit of each byte into one bit per byte, lowest byte first.
#[inline(always)]
fn high_bits(mask: u64) -> u64 {
    // Each byte's high bit lands in a distinct bit of the top byte and no
    // partial product reaches it otherwise (checked for all 256 masks).
    mask.wrapping_mul(0x0002_0408_1020_4081) >> 56
}

/// The little-endian word of an 8-byte chunk.
#[inline(always)]
fn word(chunk: &[u8]) -> u64 {
    u64::from_le_bytes(chunk.try_into().expect("8 bytes"))
}

/// One bit per byte of the whole words of `bytes` (at most 64 bytes), set
/// where `of` sets the byte's high bit.
#[inline(always)]
fn word_bits(bytes: &[u8], of: impl Fn(u64) -> u64) -> u64 {
    let mut bits = 0;
    // A plain loop: an iterator fold here is left uninlined in the scan loops.
    let mut i = 0;
    while let Some(chunk) = bytes.get(i * 8..i * 8 + 8) {
        bits |= high_bits(of(word(chunk))) << (i * 8);
        i += 1;
    }
    bits
}

/// One bit per byte of a 64-byte block, set where `test` holds. The tests
/// run over the whole block into a byte array first, a shape the compiler
/// turns into vector compares (SSE2, NEON), and the bytes are then packed a
/// word at a time: in safe, portable code, about twice as fast as testing
/// each word by SWAR.
#[inline(always)]
#[allow(clippy::needless_range_loop)] // indexes, not iterator adapters: see word_bits
fn block_bits(block: &[u8; 64], test: impl Fn(u8) -> bool) -> u64 {
    let mut flags = [0u8; 64];
    for i in 0..64 {
        flags[i] = u8::from(test(block[i])) << 7;
    }
    let mut bits = 0;
    for i in 0..8 {
        let word = u64::from_le_bytes(flags[i * 8..i * 8 + 8].try_into().expect("8 bytes"));
        bits |= high_bits(word) << (i * 8);
    }
    bits
}

/// [`block_bits`] of the 64 bytes from `start`; a partial last block is
/// padded with spaces, which no class of stops here includes.
#[inline(always)]
fn bits_from(bytes: &[u8], start: usize, test: impl Fn(u8) -> bool) -> u64 {
    if let Some(block) = bytes.get(start..start + 64) {
        return block_bits(block.try_into().expect("64 bytes"), test);
    }
    let rest = bytes.get(start..).unwrap_or_default();
    let mut padded = [b' '; 64];
    padded[..rest.len()].copy_from_slice(rest);
    block_bits(&padded, test)
}

/// A class of bytes a [`NextStop`] cursor stops at.
pub trait Stops {
    fn is_stop(byte: u8) -> bool;
}

/// Backslashes: in a valid string literal's text, where its escapes start.
pub struct Backslash;

impl Stops for Backslash {
    #[inline(always)]
    fn is_stop(byte: u8) -> bool {
        byte == b'\\'
    }
}

/// Whatever may end a JSON string or make it invalid: a backslash, a
/// quote, or a control character. In an IoT message still escaped in its
/// envelope, where each inner string ends; and a stop that is not a
/// backslash tells that the envelope's own string ends (or breaks) there.
pub struct Special;

impl Stops for Special {
    #[inline(always)]
    fn is_stop(byte: u8) -> bool {
        matches!(byte, b'\\' | b'"' | 0..=0x1f)
    }
}

/// The stops of a text, in order, found 64 bytes at a time: in escaped
/// JSON text they come every few bytes, and a bit mask per block answers
/// each "next one" in a few instructions.
pub struct NextStop<'a, S: Stops> {
    bytes: &'a [u8],
    /// Where the current block starts.
    block: usize,
    /// Its stops, one bit per byte.
    mask: u64,
    stops: std::marker::PhantomData<S>,
}

/// The backslashes of a text.
pub type Backslashes<'a> = NextStop<'a, Backslash>;

/// The backslashes, quotes and control characters of a text.
pub type Specials<'a> = NextStop<'a, Special>;

impl<'a, S: Stops> NextStop<'a, S> {
    /// A cursor over `bytes` from `start` on.
    pub fn new(bytes: &'a [u8], start: usize) -> Self {
        Self {
            bytes,
            block: start,
            mask: bits_from(bytes, start, S::is_stop),
            stops: std::marker::PhantomData,
        }
    }

    /// The first stop at or after `from`, or the text's length. Fastest
    /// when `from` moves forward, as every caller's does.
    #[inline(always)]
    pub fn next_from(&mut self, from: usize) -> usize {
        if from >= self.block + 64 || from < self.block {
            self.block = from;
            self.mask = bits_from(self.bytes, from, S::is_stop);
        }
        let mut ahead = self.mask & (u64::MAX << (from - self.block));
        while ahead == 0 {
            self.block += 64;
            if self.block >= self.bytes.len() {
                self.mask = 0;
                return self.bytes.len();
            }
            self.mask = bits_from(self.bytes, self.block, S::is_stop);
            ahead = self.mask;
        }
        self.block + ahead.trailing_zeros() as usize
    }
}

/// One bit per byte of a 64-byte block: quotes and backslashes; and whether
/// it holds a control character at all (they are rare, so where is worked
/// out only for a block that has one).
struct BlockMasks {
    quotes: u64,
    backslashes: u64,
    any_control: bool,
}

#[inline(always)]
fn block_masks(block: &[u8; 64]) -> BlockMasks {
    BlockMasks {
        quotes: word_bits(block, |word| bytes_equal(word, b'"')),
        backslashes: word_bits(block, |word| bytes_equal(word, b'\\')),
        any_control: block.chunks_exact(8).fold(0, |controls, chunk| {
            controls | bytes_below_space(word(chunk))
        }) != 0,
    }
}

#[cold]
fn control_mask(block: &[u8; 64]) -> u64 {
    word_bits(block, bytes_below_space)
}

/// The bytes of a block escaped by a backslash, given whether its first
/// byte is (`carry`); updates `carry` for the next block. An escaped byte
/// follows an odd-length run of backslashes (simdjson's branchless method).
#[inline(always)]
fn escaped_bytes(backslashes: u64, carry: &mut u64) -> u64 {
    const EVEN: u64 = 0x5555_5555_5555_5555;
    let backslashes = backslashes & !*carry;
    let follows_escape = (backslashes << 1) | *carry;
    let odd_run_starts = backslashes & !EVEN & !follows_escape;
    let (runs_from_even, overflow) = odd_run_starts.overflowing_add(backslashes);
    *carry = u64::from(overflow);
    (EVEN ^ (runs_from_even << 1)) & follows_escape
}

/// The index of the next quote, backslash or control character at or after
/// `from`, or `bytes.len()`.
#[inline]
fn next_special(bytes: &[u8], mut from: usize) -> usize {
    while let Some(chunk) = bytes.get(from..from + 8) {
        let word = word(chunk);
        let found = bytes_equal(word, b'"') | bytes_equal(word, b'\\') | bytes_below_space(word);
        if found != 0 {
            return from + (found.trailing_zeros() / 8) as usize;
        }
        from += 8;
    }
    bytes[from..]
        .iter()
        .position(|&b| matches!(b, b'"' | b'\\' | 0..=0x1f))
        .map_or(bytes.len(), |i| from + i)
}

/// Where the JSON string starting at `from` (just past its opening quote)
/// ends: the index of its closing quote. `None` if it has no end, holds a
/// raw control character, or an escape JSON does not have; exactly what
/// serde_json refuses while skipping a string. UTF-8 is the caller's.
pub fn string_end(bytes: &[u8], from: usize) -> Option<usize> {
    // Names and ids are short and plain: a word at a time finds their end.
    let at = next_special(bytes, from);
    match *bytes.get(at)? {
        b'"' => Some(at),
        b'\\' => escaped_string_end(bytes, at),
        _ => None,
    }
}

/// [`string_end`] from an escape on. Log messages are JSON inside JSON, with
/// an escaped quote every dozen bytes: stopping at each escape would cost
/// more than the bytes between, so whole 64-byte blocks are settled at once
/// from their masks, and only a block holding an escape other than `\"` and
/// `\\` is read byte by byte.
fn escaped_string_end(bytes: &[u8], mut from: usize) -> Option<usize> {
    let mut carry = 0;
    while let Some(block) = bytes.get(from..from + 64) {
        let block = block.try_into().expect("64 bytes");
        let masks = block_masks(block);
        let escaped = escaped_bytes(masks.backslashes, &mut carry);
        let closing = masks.quotes & !escaped;
        let before_end = closing.wrapping_sub(1) & !closing;
        if masks.any_control && control_mask(block) & before_end != 0 {
            return None;
        }
        if escaped & before_end & !(masks.quotes | masks.backslashes) != 0 {
            // `\n`, `\u00e9`, …: checked one by one, from the escape that
            // may have started in the previous block.
            return string_end_bytewise(bytes, from - usize::from(escaped & 1 != 0));
        }
        if closing != 0 {
            return Some(from + closing.trailing_zeros() as usize);
        }
        from += 64;
    }
    string_end_bytewise(bytes, from - carry as usize)
}

/// [`string_end`] one byte at a time, from a byte that is not escaped.
fn string_end_bytewise(bytes: &[u8], mut at: usize) -> Option<usize> {
    loop {
        match *bytes.get(at)? {
            b'"' => return Some(at),
            b'\\' => {
                at += match *bytes.get(at + 1)? {
                    b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't' => 2,
                    b'u' => {
                        let digits = bytes.get(at + 2..at + 6)?;
                        digits.iter().all(u8::is_ascii_hexdigit).then_some(6)?
                    }
                    _ => return None,
                }
            }
            0..=0x1f => return None,
            _ => at += 1,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn word_with(byte: u8, lane: usize, fill: u8) -> u64 {
        let mut bytes = [fill; 8];
        bytes[lane] = byte;
        u64::from_le_bytes(bytes)
    }

    #[test]
    fn byte_masks_are_exact_for_every_byte_in_every_lane() {
        for fill in [0u8, b'a', b'"', b'\\', 0x1f, 0x20, 0x7f, 0x80, 0xff] {
            for lane in 0..8 {
                for byte in 0..=255u8 {
                    let word = word_with(byte, lane, fill);
                    let lanes = |pred: &dyn Fn(u8) -> bool| {
                        word.to_le_bytes()
                            .iter()
                            .enumerate()
                            .filter(|(_, b)| pred(**b))
                            .fold(0u64, |m, (i, _)| m | 0x80 << (8 * i))
                    };
                    assert_eq!(bytes_equal(word, b'"'), lanes(&|b| b == b'"'));
                    assert_eq!(bytes_equal(word, b'\\'), lanes(&|b| b == b'\\'));
                    assert_eq!(bytes_below_space(word), lanes(&|b| b < 0x20));
                }
            }
        }
    }

    #[test]
    fn high_bits_packs_all_256_masks() {
        for bits in 0..=255u64 {
            let spread = (0..8)
                .filter(|i| bits >> i & 1 == 1)
                .fold(0u64, |m, i| m | 0x80 << (8 * i));
            assert_eq!(high_bits(spread), bits);
        }
    }

    /// What serde_json makes of `"` + `body`: where the string ends, or none.
    fn serde_end(body: &[u8]) -> Option<usize> {
        let mut text = vec![b'"'];
        text.extend_from_slice(body);
        let mut stream =
            serde_json::Deserializer::from_slice(&text).into_iter::<serde::de::IgnoredAny>();
        match stream.next() {
            Some(Ok(_)) => Some(stream.byte_offset() - 2),
            _ => None,
        }
    }

    fn json_bytes() -> impl Strategy<Value = Vec<u8>> {
        // Heavy on what matters: quotes, backslashes, escapes' letters,
        // control characters, multi-byte text.
        let byte = prop_oneof![
            8 => Just(b'\\'),
            6 => Just(b'"'),
            4 => prop::sample::select(b"ubfnrt/0aF9".to_vec()),
            1 => 0u8..0x20,
            6 => 0x20u8..0x7f,
            1 => 0x80u8..=0xff,
        ];
        prop::collection::vec(byte, 0..300)
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(4000))]
        #[test]
        fn string_end_agrees_with_serde_json(body in json_bytes(), pad in 0usize..70) {
            // `pad` moves the string across block boundaries.
            let mut bytes = vec![b' '; pad];
            bytes.extend_from_slice(&body);
            let end = serde_end(&body);
            prop_assert_eq!(string_end(&bytes, pad).map(|end| end - pad), end);
            // The envelope's plain strings (ids, names): their first special
            // byte is their closing quote.
            let plain = end.filter(|&end| !body[..end].contains(&b'\\'));
            let first = Specials::new(&bytes, pad).next_from(pad);
            let read_plain = (bytes.get(first) == Some(&b'"')).then(|| first - pad);
            prop_assert_eq!(read_plain, plain);
        }

        #[test]
        fn string_end_agrees_on_escaped_messages(message in "[ -~é\u{1F600}\t\n]{0,400}", pad in 0usize..70) {
            let literal = serde_json::to_string(&serde_json::to_string(&message).unwrap()).unwrap();
            let mut bytes = vec![b' '; pad];
            bytes.extend_from_slice(literal.as_bytes());
            bytes.extend_from_slice(b",\"next\":\"x\"}");
            prop_assert_eq!(string_end(&bytes, pad + 1), Some(pad + literal.len() - 1));
        }
    }

    #[test]
    fn backslash_runs_across_block_boundaries() {
        // Runs of 1 to 4 backslashes ending at every position around the
        // first block boundary, then a quote: escaped or not by parity.
        for run in 1..=4 {
            for end in 56..72 {
                let mut bytes = vec![b'a'; end - run];
                bytes.extend(std::iter::repeat_n(b'\\', run));
                bytes.extend_from_slice(
                    b"\"tail\" and more padding past the block, long enough....",
                );
                assert_eq!(
                    string_end(&bytes, 0),
                    serde_end(&bytes),
                    "run {run} end {end}"
                );
            }
        }
    }

    #[test]
    fn backslashes_are_found_in_order_across_blocks() {
        for len in [0, 1, 7, 63, 64, 65, 130, 200] {
            let bytes: Vec<u8> = (0..len)
                .map(|i| if i % 7 == 3 || i == 64 { b'\\' } else { b'a' })
                .collect();
            let expected: Vec<usize> = (0..len).filter(|&i| bytes[i] == b'\\').collect();
            let mut cursor = Backslashes::new(&bytes, 0);
            let found: Vec<usize> = std::iter::successors(Some(cursor.next_from(0)), |&at| {
                Some(cursor.next_from(at + 1))
            })
            .take_while(|&at| at < len)
            .collect();
            assert_eq!(found, expected, "len {len}");
        }
        // High bytes and their neighbours are not backslashes.
        let text = "[]]\u{e9}\u{5c5}x\\";
        assert_eq!(Backslashes::new(text.as_bytes(), 0).next_from(0), 8);
    }

    proptest! {
        #[test]
        fn backslashes_match_a_plain_search(bytes in prop::collection::vec(prop::sample::select(b"\\a\"\xff".to_vec()), 0..300), jumps in prop::collection::vec(0usize..90, 0..40)) {
            let mut cursor = Backslashes::new(&bytes, 0);
            let mut at = 0;
            for jump in jumps {
                at = (at + jump).min(bytes.len());
                let expected = (at..bytes.len()).find(|&i| bytes[i] == b'\\').unwrap_or(bytes.len());
                let next = cursor.next_from(at);
                prop_assert_eq!(next, expected);
                at = next.min(bytes.len());
            }
        }

        #[test]
        fn specials_match_a_plain_search_from_any_start_and_either_way(
            bytes in prop::collection::vec(prop::sample::select(b"\\a\" \x00\x1f\x20\x7f\xff".to_vec()), 0..300),
            start in 0usize..300,
            moves in prop::collection::vec(-70isize..90, 0..40),
        ) {
            let is_special = |b: u8| b == b'\\' || b == b'"' || b < 0x20;
            let start = start.min(bytes.len());
            let mut cursor = Specials::new(&bytes, start);
            let mut at = start;
            for step in moves {
                at = at.saturating_add_signed(step).min(bytes.len());
                let expected = (at..bytes.len()).find(|&i| is_special(bytes[i])).unwrap_or(bytes.len());
                prop_assert_eq!(cursor.next_from(at), expected, "from {}", at);
            }
        }
    }
}
