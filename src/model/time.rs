//! Time as the logs, the store and the CLI write it, through `jiff`.
//!
//! IoT log timestamps are UTC strings (`2017-08-10 15:37:23.476`); the store
//! keys by UTC day and the CLI takes and shows RFC 3339. Instants are epoch
//! milliseconds everywhere else.

use jiff::civil::DateTime;
use jiff::tz::TimeZone;
use jiff::Timestamp;

const MS_PER_DAY: i64 = 86_400_000;

pub const DAY_MS: i64 = MS_PER_DAY;

/// The instant of `epoch_ms`, held to what `jiff` can represent (years
/// -9999 to 9999): a CloudWatch timestamp comes from outside.
fn instant(epoch_ms: i64) -> Timestamp {
    Timestamp::from_millisecond(epoch_ms).unwrap_or(if epoch_ms < 0 {
        Timestamp::MIN
    } else {
        Timestamp::MAX
    })
}

fn utc(epoch_ms: i64) -> DateTime {
    TimeZone::UTC.to_datetime(instant(epoch_ms))
}

/// Parses an AWS IoT log timestamp (`2017-08-10 15:37:23.476`, UTC) to epoch
/// milliseconds; fractions past milliseconds are truncated. Some producers
/// write a `T` or append a `Z`: both mean the same UTC time. A date alone,
/// or a time without seconds, is not a log timestamp.
pub fn parse_iot_timestamp(s: &str) -> Option<i64> {
    let s = s.trim();
    let s = s.strip_suffix(['Z', 'z']).unwrap_or(s);
    // Exactly `YYYY-MM-DD HH:MM:SS[.fff…]`: jiff alone would also take a bare
    // date, a comma fraction, or an offset it then ignores.
    let bytes = s.as_bytes();
    if bytes.len() < 19 || !matches!(bytes[10], b' ' | b'T' | b't') || bytes[16] != b':' {
        return None;
    }
    let fraction = &bytes[19..];
    if !fraction.is_empty()
        && (fraction[0] != b'.'
            || fraction.len() < 2
            || !fraction[1..].iter().all(u8::is_ascii_digit))
    {
        return None;
    }
    // jiff reads at most nanoseconds; the digits past them change no millisecond.
    let civil: DateTime = s[..s.len().min(19 + 10)].parse().ok()?;
    let at = TimeZone::UTC.to_timestamp(civil).ok()?;
    Some(millisecond_floor(at))
}

/// Epoch milliseconds, rounded down (as the old arithmetic did, before 1970 too).
fn millisecond_floor(at: Timestamp) -> i64 {
    at.as_nanosecond().div_euclid(1_000_000) as i64
}

/// Parses RFC 3339 (`2026-11-22T10:00:00Z`, `…+02:00`, fractions allowed) to
/// epoch milliseconds. An offset is required.
pub fn parse_rfc3339(s: &str) -> Option<i64> {
    s.trim().parse::<Timestamp>().ok().map(millisecond_floor)
}

/// The UTC day of an instant, `YYYY-MM-DD`.
pub fn utc_day(epoch_ms: i64) -> String {
    utc(epoch_ms).date().to_string()
}

/// The first millisecond of the UTC day holding `epoch_ms`.
pub fn start_of_day(epoch_ms: i64) -> i64 {
    epoch_ms.div_euclid(MS_PER_DAY) * MS_PER_DAY
}

/// `YYYY-MM-DD`, `separator`, `HH:MM:SS.mmm`: the two forms below.
fn format_with(epoch_ms: i64, separator: char) -> String {
    let t = utc(epoch_ms);
    format!(
        "{}{separator}{:02}:{:02}:{:02}.{:03}",
        t.date(),
        t.hour(),
        t.minute(),
        t.second(),
        t.millisecond()
    )
}

/// RFC 3339 with milliseconds, UTC: `2017-08-10T15:37:23.476Z`.
pub fn format_rfc3339(epoch_ms: i64) -> String {
    let mut s = format_with(epoch_ms, 'T');
    s.push('Z');
    s
}

/// The IoT log form, `2017-08-10 15:37:23.476`.
pub fn format_iot_timestamp(epoch_ms: i64) -> String {
    format_with(epoch_ms, ' ')
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
        assert_eq!(
            parse_iot_timestamp("2017-08-10 15:37:23.4761234567891"),
            Some(1_502_379_443_476),
            "digits past nanoseconds change nothing"
        );
        assert_eq!(
            parse_iot_timestamp("1969-12-31 23:59:59.9995"),
            Some(-1),
            "rounded down"
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
            "2017-08-10 17:37:23.476+02:00",
            "2017-08-10 17:37:23.476[Europe/Paris]",
            "2017-08-10 15:37:23,476",
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
        assert_eq!(utc_day(-1), "1969-12-31");
        assert!(
            utc_day(i64::MAX).starts_with("9999-12-"),
            "held to what can be shown"
        );
        assert!(
            format_rfc3339(i64::MIN).starts_with("-009999-01-0"),
            "{}",
            format_rfc3339(i64::MIN)
        );
    }
}
