//! Timestamps in signed documents: RFC 3339 UTC with second precision (`2026-11-27T01:02:03Z`),
//! handled as seconds since the Unix epoch so no calendar crate is needed on either side.

use crate::CoreError;

/// Seconds since the Unix epoch.
pub type UnixTime = i64;

/// Formats seconds since the epoch as `YYYY-MM-DDTHH:MM:SSZ`.
pub fn format_rfc3339(t: UnixTime) -> String {
    let days = t.div_euclid(86_400);
    let secs = t.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        secs / 3600,
        (secs / 60) % 60,
        secs % 60
    )
}

/// Parses the exact form [`format_rfc3339`] writes (UTC, `Z`, no fractions).
pub fn parse_rfc3339(s: &str) -> Result<UnixTime, CoreError> {
    let bad = |reason: &str| CoreError::InvalidTime {
        value: s.to_string(),
        reason: reason.to_string(),
    };
    let b = s.as_bytes();
    if b.len() != 20
        || b[4] != b'-'
        || b[7] != b'-'
        || b[10] != b'T'
        || b[13] != b':'
        || b[16] != b':'
        || b[19] != b'Z'
    {
        return Err(bad("expected YYYY-MM-DDTHH:MM:SSZ"));
    }
    let num = |r: std::ops::Range<usize>| -> Result<i64, CoreError> {
        let part = &s[r];
        if !part.bytes().all(|c| c.is_ascii_digit()) {
            return Err(bad("non-digit in date"));
        }
        part.parse::<i64>().map_err(|_| bad("number out of range"))
    };
    let (y, mo, d, h, mi, se) = (
        num(0..4)?,
        num(5..7)?,
        num(8..10)?,
        num(11..13)?,
        num(14..16)?,
        num(17..19)?,
    );
    if !(1..=12).contains(&mo) || h > 23 || mi > 59 || se > 59 {
        return Err(bad("field out of range"));
    }
    if !(1..=days_in_month(y, mo)).contains(&d) {
        return Err(bad("no such day in that month"));
    }
    Ok(days_from_civil(y, mo, d) * 86_400 + h * 3600 + mi * 60 + se)
}

/// Now, in seconds since the epoch, for timestamps in logs and records. A clock set before
/// 1970 gives a negative time (never 0); decisions that depend on the clock use
/// [`now_checked`].
pub fn now() -> UnixTime {
    match std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        Err(e) => -i64::try_from(e.duration().as_secs()).unwrap_or(i64::MAX),
    }
}

/// Now, for expiry and validity checks: an error when the system clock is before 1970, so that
/// a broken clock can never make every expiry check pass.
pub fn now_checked() -> Result<UnixTime, CoreError> {
    let t = now();
    if t <= 0 {
        return Err(CoreError::InvalidTime {
            value: format_rfc3339(t),
            reason: "the system clock is set before 1970; set the clock before checking expiry"
                .into(),
        });
    }
    Ok(t)
}

fn is_leap(y: i64) -> bool {
    y % 4 == 0 && (y % 100 != 0 || y % 400 == 0)
}

fn days_in_month(y: i64, m: i64) -> i64 {
    match m {
        2 if is_leap(y) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

// Howard Hinnant's civil-date algorithms (public domain).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips() {
        for t in [0, 951_782_400, 1_700_000_000, 4_102_444_800] {
            assert_eq!(parse_rfc3339(&format_rfc3339(t)).unwrap(), t);
        }
        assert_eq!(format_rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(format_rfc3339(951_782_400), "2000-02-29T00:00:00Z");
    }

    #[test]
    fn rejects_other_forms() {
        for s in [
            "2026-01-01",
            "2026-01-01T00:00:00+01:00",
            "2026-13-01T00:00:00Z",
            "x",
        ] {
            assert!(parse_rfc3339(s).is_err(), "{s}");
        }
    }

    #[test]
    fn rejects_impossible_dates_and_times() {
        for s in [
            "2026-02-30T00:00:00Z",
            "2026-02-31T00:00:00Z",
            "2026-04-31T00:00:00Z",
            "2026-06-31T00:00:00Z",
            "2026-09-31T00:00:00Z",
            "2026-11-31T00:00:00Z",
            "2026-02-29T00:00:00Z",
            "1900-02-29T00:00:00Z",
            "2100-02-29T00:00:00Z",
            "2026-01-00T00:00:00Z",
            "2026-01-32T00:00:00Z",
            "2026-00-01T00:00:00Z",
            "2026-01-01T24:00:00Z",
            "2026-01-01T00:60:00Z",
            "2026-01-01T00:00:60Z",
            "2026-12-31T23:59:61Z",
        ] {
            let e = parse_rfc3339(s).unwrap_err().to_string();
            assert!(e.contains(s), "{e}");
        }
        // Leap years and the last valid second of each kind of month still parse and
        // round-trip.
        for s in [
            "2024-02-29T00:00:00Z",
            "2000-02-29T12:00:00Z",
            "2026-02-28T23:59:59Z",
            "2026-04-30T23:59:59Z",
            "2026-12-31T23:59:59Z",
        ] {
            assert_eq!(format_rfc3339(parse_rfc3339(s).unwrap()), s);
        }
    }
}
