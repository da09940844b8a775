//! The `start` / `stop` parameters of every read (pmds_rest_v1.yaml: "relative duration (e.g.
//! -30m, -1h, -1d) or unix timestamp in seconds; durations are relative to now()"; RFC 3339 is
//! accepted too). `start` defaults to `-1d`, `stop` to now; `stop` is exclusive.

/// Nanoseconds per unit of a relative duration.
const UNITS: [(&str, i64); 9] = [
    ("ns", 1),
    ("us", 1_000),
    ("µs", 1_000),
    ("ms", 1_000_000),
    ("s", 1_000_000_000),
    ("m", 60_000_000_000),
    ("h", 3_600_000_000_000),
    ("d", 86_400_000_000_000),
    ("w", 604_800_000_000_000),
];

/// Default `start`: one day back.
pub const DEFAULT_START: &str = "-1d";

/// `[start_ns, stop_ns)` from the two optional parameters; an error says which one is wrong.
pub fn parse_window(
    start: Option<&str>,
    stop: Option<&str>,
    now_ns: i64,
) -> Result<(i64, i64), String> {
    let start_ns = parse_time(start.unwrap_or(DEFAULT_START), now_ns)
        .map_err(|err| format!("invalid start: {err}"))?;
    let stop_ns = match stop {
        Some(stop) => parse_time(stop, now_ns).map_err(|err| format!("invalid stop: {err}"))?,
        None => now_ns,
    };
    if start_ns >= stop_ns {
        return Err(format!(
            "start must be before stop (start {}, stop {})",
            start.unwrap_or(DEFAULT_START),
            stop.unwrap_or("now")
        ));
    }
    Ok((start_ns, stop_ns))
}

/// One time: `now`, a relative duration (`-30s`, `-5m`, `-2h`, `-1d`, `-1w`, `-1h30m`, `+5m`),
/// unix seconds (`1644838147`, `1644838147.25`) or RFC 3339 (`2023-11-30T14:50:04.52Z`).
pub fn parse_time(text: &str, now_ns: i64) -> Result<i64, String> {
    let text = text.trim();
    if text.is_empty() {
        return Err("empty time".into());
    }
    if text == "now" || text == "now()" {
        return Ok(now_ns);
    }
    if let Some(duration) = text.strip_prefix('-').and_then(parse_duration) {
        return now_ns
            .checked_sub(duration)
            .ok_or_else(|| format!("{text:?} is too far back"));
    }
    if let Some(duration) = text.strip_prefix('+').and_then(parse_duration) {
        return now_ns
            .checked_add(duration)
            .ok_or_else(|| format!("{text:?} is too far ahead"));
    }
    if let Some(ns) = parse_unix_seconds(text) {
        return ns.ok_or_else(|| format!("{text:?} is out of range"));
    }
    if let Ok(time) = chrono::DateTime::parse_from_rfc3339(text) {
        return time
            .timestamp_nanos_opt()
            .ok_or_else(|| format!("{text:?} is out of range"));
    }
    Err(format!(
        "{text:?} is not a relative duration (-30m, -1h, -1d), unix seconds or an RFC 3339 time"
    ))
}

/// `1h30m` → nanoseconds; `None` unless the whole text is `<digits><unit>` pairs.
fn parse_duration(text: &str) -> Option<i64> {
    let mut rest = text;
    let mut total: i64 = 0;
    if rest.is_empty() {
        return None;
    }
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return None;
        }
        let amount: i64 = rest[..digits].parse().ok()?;
        rest = &rest[digits..];
        // Longest unit first so `ms` is not read as `m` + `s`.
        let (unit, scale) = UNITS
            .iter()
            .filter(|(unit, _)| rest.starts_with(unit))
            .max_by_key(|(unit, _)| unit.len())?;
        rest = &rest[unit.len()..];
        total = total.checked_add(amount.checked_mul(*scale)?)?;
    }
    Some(total)
}

/// `Some(Some(ns))` for unix seconds with an optional fraction, `Some(None)` when it looks like
/// one but overflows, `None` when it is not a number.
fn parse_unix_seconds(text: &str) -> Option<Option<i64>> {
    let (whole, fraction) = match text.split_once('.') {
        Some((whole, fraction)) => (whole, fraction),
        None => (text, ""),
    };
    let numeric = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if whole.is_empty() || !numeric(whole) || !numeric(fraction) || fraction.len() > 9 {
        return None;
    }
    let seconds: i64 = match whole.parse() {
        Ok(seconds) => seconds,
        Err(_) => return Some(None),
    };
    let nanos: i64 = if fraction.is_empty() {
        0
    } else {
        let padded = format!("{fraction:0<9}");
        padded.parse().ok()?
    };
    Some(
        seconds
            .checked_mul(1_000_000_000)
            .and_then(|ns| ns.checked_add(nanos)),
    )
}

/// A time as the answers write it: RFC 3339 in UTC with a fraction (microseconds, or
/// nanoseconds when there are some), like `2023-11-30T14:50:04.520099Z`.
pub fn format_time(ns: i64) -> String {
    let time = chrono::DateTime::from_timestamp_nanos(ns);
    let digits = if ns.rem_euclid(1_000) == 0 {
        chrono::SecondsFormat::Micros
    } else {
        chrono::SecondsFormat::Nanos
    };
    time.to_rfc3339_opts(digits, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_701_355_804_000_000_000;

    #[test]
    fn relative_absolute_and_rfc3339_times() {
        assert_eq!(parse_time("-30s", NOW), Ok(NOW - 30_000_000_000));
        assert_eq!(parse_time("-5m", NOW), Ok(NOW - 300_000_000_000));
        assert_eq!(parse_time("-2h", NOW), Ok(NOW - 7_200_000_000_000));
        assert_eq!(parse_time("-1d", NOW), Ok(NOW - 86_400_000_000_000));
        assert_eq!(parse_time("-1w", NOW), Ok(NOW - 604_800_000_000_000));
        assert_eq!(parse_time("-1h30m", NOW), Ok(NOW - 5_400_000_000_000));
        assert_eq!(parse_time("-250ms", NOW), Ok(NOW - 250_000_000));
        assert_eq!(parse_time("+1m", NOW), Ok(NOW + 60_000_000_000));
        assert_eq!(parse_time("now", NOW), Ok(NOW));
        assert_eq!(parse_time("1644838147", NOW), Ok(1_644_838_147_000_000_000));
        assert_eq!(
            parse_time("1644838147.25", NOW),
            Ok(1_644_838_147_250_000_000)
        );
        assert_eq!(
            parse_time("2023-11-30T14:50:04.520099+00:00", NOW),
            Ok(1_701_355_804_520_099_000)
        );
        assert_eq!(
            parse_time("2023-11-30T16:50:04+02:00", NOW),
            Ok(1_701_355_804_000_000_000)
        );
    }

    #[test]
    fn bad_times_are_errors() {
        for bad in [
            "",
            "-",
            "-1",
            "-1x",
            "-m",
            "1d",
            "yesterday",
            "1.2.3",
            "-1.5h",
            "12e3",
            "99999999999999999999",
            "-999999999999w",
            "2023-13-01T00:00:00Z",
            "1.1234567891",
        ] {
            assert!(parse_time(bad, NOW).is_err(), "{bad:?} should fail");
        }
    }

    #[test]
    fn windows_default_and_must_be_ordered() {
        assert_eq!(
            parse_window(None, None, NOW),
            Ok((NOW - 86_400_000_000_000, NOW))
        );
        assert_eq!(
            parse_window(Some("-5m"), Some("-1m"), NOW).map(|w| w.1),
            Ok(NOW - 60_000_000_000)
        );
        let err = parse_window(Some("-1m"), Some("-5m"), NOW).unwrap_err();
        assert!(err.contains("start must be before stop"), "{err}");
        assert!(
            parse_window(Some("now"), None, NOW).is_err(),
            "empty window"
        );
        assert!(
            parse_window(Some("x"), None, NOW)
                .unwrap_err()
                .starts_with("invalid start")
        );
        assert!(
            parse_window(None, Some("x"), NOW)
                .unwrap_err()
                .starts_with("invalid stop")
        );
    }

    #[test]
    fn times_are_written_in_utc_with_a_fraction() {
        assert_eq!(
            format_time(1_701_355_804_520_099_000),
            "2023-11-30T14:50:04.520099Z"
        );
        assert_eq!(
            format_time(1_701_355_804_000_000_000),
            "2023-11-30T14:50:04.000000Z"
        );
        assert_eq!(
            format_time(1_701_355_804_000_000_001),
            "2023-11-30T14:50:04.000000001Z"
        );
        assert_eq!(format_time(0), "1970-01-01T00:00:00.000000Z");
    }
}
