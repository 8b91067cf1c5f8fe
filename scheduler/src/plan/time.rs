//! Times and durations on the command line: RFC 3339, or a local time in an IANA zone
//! (chrono-tz), and durations such as `8h` or `1h30m` (humantime).
//!
//! Daylight saving time: a local time that does not exist (skipped when the clocks jump
//! forward) or that exists twice (when they go back) is an error whose message names the
//! candidate instants with their offsets, so that the user picks one with an explicit RFC 3339
//! offset. Nothing is guessed.

use chrono::{DateTime, Duration, LocalResult, NaiveDateTime, Offset as _, TimeZone, Utc};
use chrono_tz::Tz;

/// Local time formats accepted with `--tz` (besides RFC 3339).
const LOCAL_FORMATS: [&str; 4] = [
    "%Y-%m-%d %H:%M",
    "%Y-%m-%dT%H:%M",
    "%Y-%m-%d %H:%M:%S",
    "%Y-%m-%dT%H:%M:%S",
];

/// Parses an IANA zone name (`America/New_York`, `UTC`).
///
/// # Errors
/// A message naming the value when it is not a zone name.
pub fn parse_tz(value: &str) -> Result<Tz, String> {
    value.parse::<Tz>().map_err(|_| {
        format!(
            "'{value}' is not an IANA time zone name (e.g. UTC, Europe/Paris, America/New_York)"
        )
    })
}

/// Parses a duration with humantime: one or more `<number><unit>`, e.g. `8h`, `1h30m`,
/// `250ms`, `2d` (humantime also takes spaces between the parts and longer unit names such as
/// `3 weeks` or `90min`).
///
/// # Errors
/// A message naming the value when it is not such a duration, is zero, or is too long for a
/// time difference.
pub fn parse_duration(value: &str) -> Result<Duration, String> {
    let bad = || format!("'{value}' is not a duration such as 8h, 1h30m, 90s or 250ms");
    let parsed = humantime::parse_duration(value.trim()).map_err(|_| bad())?;
    let total = Duration::from_std(parsed).map_err(|_| bad())?;
    if total <= Duration::zero() {
        return Err(bad());
    }
    Ok(total)
}

/// Parses a time: RFC 3339 (`2026-03-08T01:30:00-05:00`, `...Z`), or a local time
/// (`2026-03-08 01:30`, seconds optional, `T` or a space) in `tz`.
///
/// # Errors
/// A message naming the value when it does not parse, and, for a local time that does not
/// exist or exists twice in `tz`, the candidate instants (see the module docs).
pub fn parse_time(value: &str, tz: Tz) -> Result<DateTime<Utc>, String> {
    let value = value.trim();
    if let Ok(time) = DateTime::parse_from_rfc3339(value) {
        return Ok(time.with_timezone(&Utc));
    }
    let naive = LOCAL_FORMATS
        .iter()
        .find_map(|format| NaiveDateTime::parse_from_str(value, format).ok())
        .ok_or_else(|| {
            format!("'{value}' is not a time: use RFC 3339 (2026-03-08T01:30:00Z) or a local time (2026-03-08 01:30) with --tz")
        })?;
    resolve_local(naive, tz)
}

/// The UTC instant of the wall-clock time `naive` in `tz`, refusing times that a daylight
/// saving change skips or repeats.
fn resolve_local(naive: NaiveDateTime, tz: Tz) -> Result<DateTime<Utc>, String> {
    match tz.from_local_datetime(&naive) {
        LocalResult::Single(time) => Ok(time.with_timezone(&Utc)),
        LocalResult::Ambiguous(first, second) => Err(format!(
            "{naive} is ambiguous in {tz}: the clocks go back and it happens twice, at {} ({}) and at {} ({}); pass the one you mean in RFC 3339 with its offset",
            first.to_rfc3339(),
            first.format("%Z"),
            second.to_rfc3339(),
            second.format("%Z"),
        )),
        LocalResult::None => {
            // The offsets in force a few hours before and after the gap.
            let offset_at = |local: NaiveDateTime| {
                tz.from_local_datetime(&local)
                    .earliest()
                    .map(|t| t.offset().fix())
            };
            let before = offset_at(naive - Duration::hours(3));
            let after = offset_at(naive + Duration::hours(3));
            let candidates = [before, after]
                .into_iter()
                .flatten()
                .filter_map(|offset| {
                    offset
                        .from_local_datetime(&naive)
                        .single()
                        .map(|t| t.to_rfc3339())
                })
                .collect::<Vec<_>>()
                .join(" or ");
            Err(format!(
                "{naive} does not exist in {tz}: the clocks jump forward over it; pick another time, or pass {candidates} in RFC 3339"
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(value: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(value)
            .unwrap()
            .with_timezone(&Utc)
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("8h"), Ok(Duration::hours(8)));
        assert_eq!(parse_duration("1h30m"), Ok(Duration::minutes(90)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::milliseconds(250)));
        assert!(parse_duration("8").is_err());
        assert!(parse_duration("h").is_err());
        assert!(parse_duration("0s").is_err());
        // humantime takes spaces and long unit names (the hand parser before it refused them).
        assert_eq!(parse_duration("3 weeks"), Ok(Duration::days(21)));
        assert!(parse_duration("3 fortnights").is_err());
    }

    #[test]
    fn local_times_across_daylight_saving_changes() {
        let ny = parse_tz("America/New_York").unwrap();
        // Before the spring change: EST, UTC-5.
        assert_eq!(
            parse_time("2026-03-08 01:30", ny),
            Ok(utc("2026-03-08T06:30:00Z"))
        );
        // After it: EDT, UTC-4.
        assert_eq!(
            parse_time("2026-03-08 03:30", ny),
            Ok(utc("2026-03-08T07:30:00Z"))
        );
        // 02:30 is skipped on 2026-03-08.
        let gap = parse_time("2026-03-08 02:30", ny).unwrap_err();
        assert!(gap.contains("does not exist"), "{gap}");
        assert!(
            gap.contains("2026-03-08T02:30:00-05:00") && gap.contains("2026-03-08T02:30:00-04:00"),
            "{gap}"
        );
        // 01:30 happens twice on 2026-11-01.
        let twice = parse_time("2026-11-01 01:30", ny).unwrap_err();
        assert!(twice.contains("ambiguous"), "{twice}");
        assert!(
            twice.contains("2026-11-01T01:30:00-04:00")
                && twice.contains("2026-11-01T01:30:00-05:00")
                && twice.contains("EDT")
                && twice.contains("EST"),
            "{twice}"
        );
        // An explicit offset is always accepted.
        assert_eq!(
            parse_time("2026-11-01T01:30:00-05:00", ny),
            Ok(utc("2026-11-01T06:30:00Z"))
        );
        assert!(parse_time("tomorrow", ny).is_err());
        assert!(parse_tz("Mars/Olympus").is_err());
    }
}
