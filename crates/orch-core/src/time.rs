//! Time as a value: milliseconds since the Unix epoch, handed to the core by a [`crate::Clock`],
//! and its RFC 3339 form (the `timestamp` of hydra-mail pulses), both ways.

use serde::{Deserialize, Serialize};
use std::time::Duration;

/// A point in time, in milliseconds since the Unix epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Timestamp(pub u64);

impl Timestamp {
    /// A timestamp from whole seconds since the epoch.
    pub fn from_secs(secs: u64) -> Self {
        Timestamp(secs.saturating_mul(1000))
    }

    /// Whole seconds since the epoch.
    pub fn as_secs(self) -> u64 {
        self.0 / 1000
    }

    /// Milliseconds since the epoch.
    pub fn as_millis(self) -> u64 {
        self.0
    }

    /// `self + d`, saturating.
    pub fn plus(self, d: Duration) -> Self {
        Timestamp(self.0.saturating_add(duration_ms(d)))
    }

    /// The time from `earlier` to `self`, or `None` when `earlier` is later (time went back).
    pub fn since(self, earlier: Timestamp) -> Option<Duration> {
        self.0.checked_sub(earlier.0).map(Duration::from_millis)
    }

    /// This time as RFC 3339 UTC with milliseconds, e.g. `2026-11-24T06:27:25.871Z`.
    pub fn to_rfc3339(self) -> String {
        let secs = self.0 / 1000;
        let (days, rem) = (secs / 86_400, secs % 86_400);
        let (year, month, day) = civil_from_days(days as i64);
        format!(
            "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
            rem / 3600,
            rem % 3600 / 60,
            rem % 60,
            self.0 % 1000
        )
    }

    /// Parses an RFC 3339 date-time (`2026-11-24T05:47:25.871368348Z`, `...+02:00`), as
    /// hydra-mail writes pulse timestamps. Fractions below a millisecond are dropped; times
    /// before the epoch and malformed text are `None`.
    pub fn parse_rfc3339(text: &str) -> Option<Timestamp> {
        let b = text.trim().as_bytes();
        let num = |range: std::ops::Range<usize>| -> Option<i64> {
            let s = b.get(range)?;
            if s.iter().all(u8::is_ascii_digit) {
                std::str::from_utf8(s).ok()?.parse().ok()
            } else {
                None
            }
        };
        if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't' | b' ') {
            return None;
        }
        if b[13] != b':' || b[16] != b':' {
            return None;
        }
        let (year, month, day) = (num(0..4)?, num(5..7)?, num(8..10)?);
        let (hour, minute, second) = (num(11..13)?, num(14..16)?, num(17..19)?);
        if !(1..=12).contains(&month) || !(1..=31).contains(&day) || hour > 23 || minute > 59 || second > 60 {
            return None;
        }
        let mut i = 19;
        let mut millis = 0i64;
        if b.get(i) == Some(&b'.') {
            i += 1;
            let start = i;
            while b.get(i).is_some_and(u8::is_ascii_digit) {
                i += 1;
            }
            if i == start {
                return None;
            }
            let digits = &b[start..i.min(start + 3)];
            let mut ms = 0i64;
            for (k, d) in digits.iter().enumerate() {
                ms += i64::from(d - b'0') * [100, 10, 1][k];
            }
            millis = ms;
        }
        let offset_secs = match b.get(i)? {
            b'Z' | b'z' if i + 1 == b.len() => 0,
            sign @ (b'+' | b'-') if i + 6 == b.len() && b[i + 3] == b':' => {
                let (h, m) = (num(i + 1..i + 3)?, num(i + 4..i + 6)?);
                let s = h * 3600 + m * 60;
                if *sign == b'+' {
                    s
                } else {
                    -s
                }
            }
            _ => return None,
        };
        let days = days_from_civil(year, month, day);
        let secs = days * 86_400 + hour * 3600 + minute * 60 + second - offset_secs;
        let ms = secs.checked_mul(1000)?.checked_add(millis)?;
        u64::try_from(ms).ok().map(Timestamp)
    }
}

/// A duration in whole milliseconds, saturating at `u64::MAX`.
pub(crate) fn duration_ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// (year, month, day) of the day `days` after 1970-01-01, proleptic Gregorian, by 400-year eras.
pub fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(month <= 2), month, day)
}

/// Days from 1970-01-01 to (year, month, day), the inverse of [`civil_from_days`].
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = if month > 2 { month - 3 } else { month + 9 };
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn since_is_none_when_time_goes_back() {
        assert_eq!(Timestamp(5).since(Timestamp(7)), None);
        assert_eq!(Timestamp(7).since(Timestamp(5)), Some(Duration::from_millis(2)));
        assert_eq!(Timestamp::from_secs(3).as_secs(), 3);
        assert_eq!(Timestamp(u64::MAX).plus(Duration::from_secs(1)), Timestamp(u64::MAX));
    }

    #[test]
    fn rfc3339_round_trips_and_reads_hydra_mail_timestamps() {
        let t = Timestamp(1_795_498_045_871);
        assert_eq!(t.to_rfc3339(), "2026-11-24T05:27:25.871Z");
        assert_eq!(Timestamp::parse_rfc3339(&t.to_rfc3339()), Some(t));
        // hydra-mail writes nanoseconds.
        assert_eq!(Timestamp::parse_rfc3339("2026-11-24T05:27:25.871368348Z"), Some(t));
        assert_eq!(Timestamp::parse_rfc3339("2026-11-24T07:27:25.871+02:00"), Some(t));
        assert_eq!(Timestamp::parse_rfc3339("1970-01-01T00:00:00Z"), Some(Timestamp(0)));
        assert_eq!(
            Timestamp::parse_rfc3339("2000-02-29T12:00:00Z"),
            Some(Timestamp::from_secs(951_825_600))
        );
    }

    #[test]
    fn malformed_rfc3339_is_none() {
        for bad in [
            "",
            "2026-11-24",
            "2026-11-24T05:27:25",
            "2026-13-24T05:27:25Z",
            "2026-11-24T25:27:25Z",
            "2026-11-24T05:27:25.Z",
            "2026-11-24T05:27:25Zjunk",
            "1969-12-31T23:59:59Z",
            "२०२६-11-24T05:27:25Z",
        ] {
            assert_eq!(Timestamp::parse_rfc3339(bad), None, "{bad:?}");
        }
    }
}
