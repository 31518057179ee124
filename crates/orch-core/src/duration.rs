//! Human durations such as `4h`, `30m`, `1h30m`, `90s`, both ways (pure text handling).

use std::time::Duration;

/// Parses `<n><unit>` groups (units `d`, `h`, `m`, `s`), e.g. `1h30m`. Refuses signs, bare
/// numbers, a trailing number without unit, repeated or out-of-order units, and overflow.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let help = "use whole numbers with units d, h, m, s, largest first: 4h, 30m, 1h30m, 90s";
    let text = text.trim();
    if text.is_empty() {
        return Err(format!("empty duration; {help}"));
    }
    let mut total: u64 = 0;
    let mut digits = String::new();
    let mut last_rank = 5;
    for c in text.chars() {
        if c.is_ascii_digit() {
            digits.push(c);
            continue;
        }
        let (rank, secs) = match c {
            'd' => (4, 86_400u64),
            'h' => (3, 3_600),
            'm' => (2, 60),
            's' => (1, 1),
            _ => return Err(format!("{text:?}: unexpected {c:?}; {help}")),
        };
        if digits.is_empty() || rank >= last_rank {
            return Err(format!("{text:?} is not a duration; {help}"));
        }
        let n: u64 = digits.parse().map_err(|_| format!("{text:?} is too large"))?;
        total = n
            .checked_mul(secs)
            .and_then(|v| total.checked_add(v))
            .ok_or_else(|| format!("{text:?} is too large"))?;
        digits.clear();
        last_rank = rank;
    }
    if !digits.is_empty() {
        return Err(format!("{text:?} ends in a number without a unit; {help}"));
    }
    Ok(Duration::from_secs(total))
}

/// Writes `d` the way [`parse_duration`] reads it: `4h`, `1h30m`, `90s` (`0s` for zero).
pub fn format_duration(d: Duration) -> String {
    let mut secs = d.as_secs();
    if secs == 0 {
        return "0s".into();
    }
    let mut out = String::new();
    for (unit, size) in [('d', 86_400), ('h', 3_600), ('m', 60), ('s', 1)] {
        if secs >= size {
            out.push_str(&format!("{}{unit}", secs / size));
            secs %= size;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_documented_forms() {
        assert_eq!(parse_duration("4h"), Ok(Duration::from_secs(14_400)));
        assert_eq!(parse_duration("30m"), Ok(Duration::from_secs(1_800)));
        assert_eq!(parse_duration("1h30m"), Ok(Duration::from_secs(5_400)));
        assert_eq!(parse_duration("90s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("2d"), Ok(Duration::from_secs(172_800)));
    }

    #[test]
    fn formats_what_it_parses() {
        for text in ["4h", "1h30m", "90s", "2d", "1d2h3m4s", "0s"] {
            let d = parse_duration(text).expect("parses");
            assert_eq!(parse_duration(&format_duration(d)), Ok(d), "{text}");
        }
        assert_eq!(format_duration(Duration::from_secs(5400)), "1h30m");
        assert_eq!(format_duration(Duration::ZERO), "0s");
    }

    #[test]
    fn refuses_hostile_forms() {
        for bad in [
            "-1h",
            "1h30",
            "h",
            "",
            "1x",
            "30m1h",
            "1h1h",
            "1.5h",
            "99999999999999999999h",
            "1 h",
        ] {
            assert!(parse_duration(bad).is_err(), "{bad:?}");
        }
        // Parses, but the session config refuses it as beyond 30 days.
        assert_eq!(parse_duration("99999999h"), Ok(Duration::from_secs(99_999_999 * 3600)));
    }
}
