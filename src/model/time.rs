//! UTC civil-time conversions without a date-time dependency.
//!
//! IoT log timestamps are UTC strings (`2017-08-10 15:37:23.476`); the store
//! keys by day and the CLI takes RFC 3339. Howard Hinnant's days-from-civil
//! algorithm keeps all of it exact for the proleptic Gregorian calendar.

const MS_PER_DAY: i64 = 86_400_000;

fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

fn days_in_month(y: i64, m: u32) -> u32 {
    match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        _ if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        _ => 28,
    }
}

struct Cursor<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl Cursor<'_> {
    fn digits(&mut self, n: usize) -> Option<u32> {
        let slice = self.bytes.get(self.pos..self.pos + n)?;
        let mut value = 0u32;
        for &b in slice {
            if !b.is_ascii_digit() {
                return None;
            }
            value = value * 10 + u32::from(b - b'0');
        }
        self.pos += n;
        Some(value)
    }

    fn expect(&mut self, accepted: &[u8]) -> Option<u8> {
        let b = *self.bytes.get(self.pos)?;
        accepted.contains(&b).then(|| {
            self.pos += 1;
            b
        })
    }

    fn at_end(&self) -> bool {
        self.pos == self.bytes.len()
    }

    /// `.fff…` → milliseconds (extra digits are truncated, not rounded).
    fn fraction_ms(&mut self) -> Option<i64> {
        if self.expect(b".").is_none() {
            return Some(0);
        }
        let start = self.pos;
        let mut ms = 0i64;
        while let Some(&b) = self.bytes.get(self.pos) {
            if !b.is_ascii_digit() {
                break;
            }
            let place = self.pos - start;
            if place < 3 {
                ms = ms * 10 + i64::from(b - b'0');
            }
            self.pos += 1;
        }
        let len = self.pos - start;
        if len == 0 {
            return None;
        }
        for _ in len..3 {
            ms *= 10;
        }
        Some(ms)
    }
}

/// `YYYY-MM-DD[ T]HH:MM:SS[.fff…]` → (epoch ms, cursor after it).
fn parse_date_time(s: &str) -> Option<(i64, Cursor<'_>)> {
    let mut c = Cursor {
        bytes: s.as_bytes(),
        pos: 0,
    };
    let year = c.digits(4)?;
    c.expect(b"-")?;
    let month = c.digits(2)?;
    c.expect(b"-")?;
    let day = c.digits(2)?;
    c.expect(b" Tt")?;
    let hour = c.digits(2)?;
    c.expect(b":")?;
    let minute = c.digits(2)?;
    c.expect(b":")?;
    let second = c.digits(2)?;
    let ms = c.fraction_ms()?;
    let year = i64::from(year);
    if !(1..=12).contains(&month) || day == 0 || day > days_in_month(year, month) {
        return None;
    }
    if hour > 23 || minute > 59 || second > 60 {
        return None;
    }
    let days = days_from_civil(year, month, day);
    let secs = i64::from(hour) * 3600 + i64::from(minute) * 60 + i64::from(second.min(59));
    Some((days * MS_PER_DAY + secs * 1000 + ms, c))
}

/// Parses an AWS IoT log timestamp (`2017-08-10 15:37:23.476`, UTC) to epoch milliseconds.
pub fn parse_iot_timestamp(s: &str) -> Option<i64> {
    let (ms, mut c) = parse_date_time(s.trim())?;
    // Some producers append a `Z`; it means UTC, as the bare form does.
    let _ = c.expect(b"Zz");
    c.at_end().then_some(ms)
}

/// Parses RFC 3339 (`2026-11-22T10:00:00Z`, `…+02:00`, fractions allowed) to epoch milliseconds.
pub fn parse_rfc3339(s: &str) -> Option<i64> {
    let (ms, mut c) = parse_date_time(s.trim())?;
    let offset_ms = match c.expect(b"Zz+-")? {
        b'Z' | b'z' => 0,
        sign => {
            let h = c.digits(2)?;
            c.expect(b":")?;
            let m = c.digits(2)?;
            if h > 23 || m > 59 {
                return None;
            }
            let off = (i64::from(h) * 60 + i64::from(m)) * 60_000;
            if sign == b'+' {
                off
            } else {
                -off
            }
        }
    };
    c.at_end().then_some(ms - offset_ms)
}

/// The UTC day of an instant, `YYYY-MM-DD`.
pub fn utc_day(epoch_ms: i64) -> String {
    let (y, m, d) = civil_from_days(epoch_ms.div_euclid(MS_PER_DAY));
    format!("{y:04}-{m:02}-{d:02}")
}

/// The first millisecond of the UTC day holding `epoch_ms`.
pub fn start_of_day(epoch_ms: i64) -> i64 {
    epoch_ms.div_euclid(MS_PER_DAY) * MS_PER_DAY
}

pub const DAY_MS: i64 = MS_PER_DAY;

/// RFC 3339 with milliseconds, UTC: `2017-08-10T15:37:23.476Z`.
pub fn format_rfc3339(epoch_ms: i64) -> String {
    let (y, m, d) = civil_from_days(epoch_ms.div_euclid(MS_PER_DAY));
    let in_day = epoch_ms.rem_euclid(MS_PER_DAY);
    let (h, rest) = (in_day / 3_600_000, in_day % 3_600_000);
    let (min, rest) = (rest / 60_000, rest % 60_000);
    let (s, ms) = (rest / 1000, rest % 1000);
    format!("{y:04}-{m:02}-{d:02}T{h:02}:{min:02}:{s:02}.{ms:03}Z")
}

/// The IoT log form, `2017-08-10 15:37:23.476`.
pub fn format_iot_timestamp(epoch_ms: i64) -> String {
    let mut s = format_rfc3339(epoch_ms);
    s.pop();
    s.replace_range(10..11, " ");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_iot_timestamps_as_utc() {
        assert_eq!(parse_iot_timestamp("1970-01-01 00:00:00.000"), Some(0));
        assert_eq!(
            parse_iot_timestamp("2017-08-10 15:37:23.476"),
            Some(1_502_379_443_476)
        );
        assert_eq!(
            parse_iot_timestamp("2017-08-10 15:37:23"),
            Some(1_502_379_443_000)
        );
        assert_eq!(
            parse_iot_timestamp("2017-08-10 15:37:23.4"),
            Some(1_502_379_443_400)
        );
        assert_eq!(
            parse_iot_timestamp("2017-08-10T15:37:23.476123Z"),
            Some(1_502_379_443_476)
        );
        assert_eq!(
            parse_iot_timestamp("2024-02-29 00:00:00.000"),
            Some(1_709_164_800_000)
        );
    }

    #[test]
    fn rejects_malformed_timestamps() {
        for bad in [
            "",
            "1460159496",
            "2017-08-10",
            "2017-13-10 00:00:00",
            "2023-02-29 00:00:00",
            "2017-08-10 24:00:00",
            "2017-08-10 15:37:23.",
            "2017-08-10 15:37:23.476 junk",
            "２０17-08-10 15:37:23",
        ] {
            assert_eq!(parse_iot_timestamp(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn rfc3339_honours_offsets() {
        let utc = parse_rfc3339("2026-11-22T10:00:00Z").unwrap();
        assert_eq!(parse_rfc3339("2026-11-22T12:00:00+02:00"), Some(utc));
        assert_eq!(parse_rfc3339("2026-11-22T05:30:00-04:30"), Some(utc));
        assert_eq!(
            parse_rfc3339("2026-11-22T10:00:00"),
            None,
            "an offset is required"
        );
    }

    #[test]
    fn formatting_round_trips() {
        for ms in [
            0,
            1_502_379_443_476,
            1_709_164_800_000,
            4_102_444_799_999,
            -1,
        ] {
            assert_eq!(parse_rfc3339(&format_rfc3339(ms)), Some(ms));
            assert_eq!(parse_iot_timestamp(&format_iot_timestamp(ms)), Some(ms));
        }
        assert_eq!(
            format_iot_timestamp(1_502_379_443_476),
            "2017-08-10 15:37:23.476"
        );
        assert_eq!(utc_day(1_502_379_443_476), "2017-08-10");
        assert_eq!(start_of_day(1_502_379_443_476), 1_502_323_200_000);
    }
}
