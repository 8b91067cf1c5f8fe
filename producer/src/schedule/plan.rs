//! Turning drafts and times into a validated plan: time parsing (RFC 3339, or a local time in
//! an IANA zone), durations, draft files (`*.txt`: one draft per line; `*.csv`: `text,at`),
//! slot placement and validation.
//!
//! Daylight saving time: a local time that does not exist (skipped when the clocks jump
//! forward) or that exists twice (when they go back) is an error whose message names the
//! candidate instants with their offsets, so that the user picks one with an explicit RFC 3339
//! offset. Nothing is guessed. Slots (`--every`) are exact elapsed intervals in UTC: 8 hours
//! apart stay 8 hours apart across a change, so their wall-clock time shifts by the change.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context as _};
use chrono::{DateTime, Duration, LocalResult, NaiveDateTime, Offset as _, TimeZone, Utc};
use chrono_tz::Tz;
use tweet_pipeline_common::scheduled::{post_id, ScheduledPost};

use super::weight::{weighted_length, MAX_WEIGHTED_LENGTH};

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

/// Parses a duration: one or more `<number><unit>` with units `ms`, `s`, `m`, `h`, `d`, e.g.
/// `8h`, `1h30m`, `250ms`.
///
/// # Errors
/// A message naming the value when it is not such a duration or is zero.
pub fn parse_duration(value: &str) -> Result<Duration, String> {
    let bad = || format!("'{value}' is not a duration such as 8h, 1h30m, 90s or 250ms");
    let mut total = Duration::zero();
    let mut rest = value.trim();
    if rest.is_empty() {
        return Err(bad());
    }
    while !rest.is_empty() {
        let digits = rest.find(|c: char| !c.is_ascii_digit()).ok_or_else(bad)?;
        if digits == 0 {
            return Err(bad());
        }
        let number: i64 = rest[..digits].parse().map_err(|_| bad())?;
        rest = &rest[digits..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(rest.len());
        let part = match &rest[..unit_len] {
            "ms" => Duration::try_milliseconds(number),
            "s" => Duration::try_seconds(number),
            "m" => Duration::try_minutes(number),
            "h" => Duration::try_hours(number),
            "d" => Duration::try_days(number),
            _ => None,
        }
        .ok_or_else(bad)?;
        total = total.checked_add(&part).ok_or_else(bad)?;
        rest = &rest[unit_len..];
    }
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

/// A draft read from a file or the command line, before slot placement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Draft {
    /// The text, trimmed.
    pub text: String,
    /// An explicit time (a CSV `at` column); `None` takes the next slot.
    pub at: Option<DateTime<Utc>>,
    /// `file:line` or `cli`.
    pub source: String,
}

/// A draft that cannot be scheduled, with its `file:line` and the reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// `file:line` (or `cli`).
    pub source: String,
    /// What is wrong.
    pub reason: String,
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.source, self.reason)
    }
}

/// Reads drafts from files and folders: a folder contributes its `*.txt` and `*.csv` files in
/// name order; a `.csv` file has `text,at` rows (a header row naming `text` is optional; an
/// empty `at` takes the next slot); any other file has one draft per line (blank lines are
/// skipped). Rows whose `at` does not parse are problems.
///
/// # Errors
/// When a file or folder cannot be read, or no draft file is found.
pub fn read_drafts(paths: &[PathBuf], tz: Tz) -> anyhow::Result<(Vec<Draft>, Vec<Problem>)> {
    let mut files = Vec::new();
    for path in paths {
        if path.is_dir() {
            let mut found: Vec<PathBuf> = std::fs::read_dir(path)
                .with_context(|| format!("cannot read the folder {}", path.display()))?
                .filter_map(|entry| entry.ok().map(|e| e.path()))
                .filter(|p| {
                    p.is_file()
                        && matches!(p.extension().and_then(|e| e.to_str()), Some("txt" | "csv"))
                })
                .collect();
            found.sort();
            files.extend(found);
        } else {
            files.push(path.clone());
        }
    }
    if files.is_empty() {
        bail!("no draft files (*.txt, *.csv) in {paths:?}");
    }
    let mut drafts = Vec::new();
    let mut problems = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(&file)
            .with_context(|| format!("cannot read the drafts file {}", file.display()))?;
        if file.extension().and_then(|e| e.to_str()) == Some("csv") {
            read_csv(&file, &text, tz, &mut drafts, &mut problems);
        } else {
            for (index, line) in text.lines().enumerate() {
                if line.trim().is_empty() {
                    continue;
                }
                drafts.push(Draft {
                    text: line.trim().to_owned(),
                    at: None,
                    source: format!("{}:{}", file.display(), index + 1),
                });
            }
        }
    }
    Ok((drafts, problems))
}

fn read_csv(file: &Path, text: &str, tz: Tz, drafts: &mut Vec<Draft>, problems: &mut Vec<Problem>) {
    let rows = parse_csv(text);
    let mut text_column = 0;
    let mut at_column = Some(1);
    let mut first = true;
    for (line, fields) in rows {
        let source = format!("{}:{line}", file.display());
        if first {
            first = false;
            if fields.iter().any(|f| f.trim().eq_ignore_ascii_case("text")) {
                let find = |name: &str| {
                    fields
                        .iter()
                        .position(|f| f.trim().eq_ignore_ascii_case(name))
                };
                text_column = find("text").unwrap_or(0);
                at_column = find("at");
                continue;
            }
        }
        if fields.iter().all(|f| f.trim().is_empty()) {
            continue;
        }
        let text = fields
            .get(text_column)
            .map(|t| t.trim())
            .unwrap_or_default();
        let at = match at_column.and_then(|c| fields.get(c)).map(|a| a.trim()) {
            Some(value) if !value.is_empty() => match parse_time(value, tz) {
                Ok(at) => Some(at),
                Err(reason) => {
                    problems.push(Problem { source, reason });
                    continue;
                }
            },
            _ => None,
        };
        drafts.push(Draft {
            text: text.to_owned(),
            at,
            source,
        });
    }
}

/// RFC 4180 CSV: fields separated by commas, optionally in double quotes (a quoted field may
/// hold commas, newlines and `""` for a quote). Returns each row with the line it starts on.
fn parse_csv(text: &str) -> Vec<(usize, Vec<String>)> {
    let mut rows = Vec::new();
    let mut fields = Vec::new();
    let mut field = String::new();
    let mut quoted = false;
    let mut line = 1;
    let mut row_line = 1;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match (quoted, c) {
            (true, '"') if chars.peek() == Some(&'"') => {
                chars.next();
                field.push('"');
            }
            (true, '"') => quoted = false,
            (true, c) => {
                if c == '\n' {
                    line += 1;
                }
                field.push(c);
            }
            (false, '"') if field.trim().is_empty() => {
                field.clear();
                quoted = true;
            }
            (false, ',') => fields.push(std::mem::take(&mut field)),
            (false, '\r') => {}
            (false, '\n') => {
                fields.push(std::mem::take(&mut field));
                rows.push((row_line, std::mem::take(&mut fields)));
                line += 1;
                row_line = line;
            }
            (false, c) => field.push(c),
        }
    }
    if !field.is_empty() || !fields.is_empty() {
        fields.push(field);
        rows.push((row_line, fields));
    }
    rows
}

/// Where slot-placed drafts go: `start`, `start + every`, ...
#[derive(Debug, Clone, Copy)]
pub struct Slots {
    /// The first slot.
    pub start: DateTime<Utc>,
    /// Between two slots.
    pub every: Duration,
}

/// Places drafts into slots (those without an explicit time, in order) and validates them:
/// non-empty, weighted length at most 280, due no more than `past_tolerance` before `now`.
/// Drafts with the same id (same text, same time) are kept once.
pub fn plan(
    drafts: Vec<Draft>,
    slots: Option<Slots>,
    now: DateTime<Utc>,
    past_tolerance: Duration,
) -> (Vec<ScheduledPost>, Vec<Problem>) {
    let mut posts = Vec::new();
    let mut problems = Vec::new();
    let mut seen = HashSet::new();
    let mut slot = 0i32;
    for draft in drafts {
        let due_at = match (draft.at, slots) {
            (Some(at), _) => at,
            (None, Some(slots)) => {
                let at = slots.start + slots.every * slot;
                slot += 1;
                at
            }
            (None, None) => {
                problems.push(Problem {
                    source: draft.source,
                    reason: "no time: give --every and --start, or an 'at' column".to_owned(),
                });
                continue;
            }
        };
        let weighted = weighted_length(&draft.text);
        let reason = if draft.text.is_empty() {
            Some("empty draft".to_owned())
        } else if weighted > MAX_WEIGHTED_LENGTH {
            Some(format!(
                "too long: weighted length {weighted} > {MAX_WEIGHTED_LENGTH} (X counts a URL as 23 and CJK characters and emoji as 2)"
            ))
        } else if due_at < now - past_tolerance {
            Some(format!(
                "due at {} is in the past (more than {} s ago)",
                due_at.to_rfc3339(),
                past_tolerance.num_seconds()
            ))
        } else {
            None
        };
        if let Some(reason) = reason {
            problems.push(Problem {
                source: draft.source,
                reason,
            });
            continue;
        }
        let id = post_id(&draft.text, due_at);
        if seen.insert(id.clone()) {
            posts.push(ScheduledPost {
                id,
                text: draft.text,
                due_at,
                created_at: now,
                source: draft.source,
            });
        }
    }
    (posts, problems)
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
        assert!(parse_duration("3 weeks").is_err());
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

    #[test]
    fn slots_are_elapsed_intervals_across_a_change() {
        let ny = parse_tz("America/New_York").unwrap();
        let start = parse_time("2026-03-07 20:00", ny).unwrap();
        let drafts: Vec<Draft> = (0..3)
            .map(|i| Draft {
                text: format!("draft {i}"),
                at: None,
                source: format!("d.txt:{}", i + 1),
            })
            .collect();
        let (posts, problems) = plan(
            drafts,
            Some(Slots {
                start,
                every: Duration::hours(8),
            }),
            utc("2026-03-01T00:00:00Z"),
            Duration::seconds(60),
        );
        assert!(problems.is_empty());
        let due: Vec<_> = posts.iter().map(|p| p.due_at).collect();
        assert_eq!(
            due,
            [
                utc("2026-03-08T01:00:00Z"),
                utc("2026-03-08T09:00:00Z"),
                utc("2026-03-08T17:00:00Z")
            ]
        );
        // 04:00 EST then 13:00 EDT: the wall clock moves by the change.
        assert_eq!(
            due[1].with_timezone(&ny).format("%H:%M %Z").to_string(),
            "05:00 EDT"
        );
    }

    #[test]
    fn validation_names_the_line() {
        let now = utc("2026-03-01T00:00:00Z");
        let drafts = vec![
            Draft {
                text: "fine".into(),
                at: None,
                source: "a.txt:1".into(),
            },
            Draft {
                text: "x".repeat(281),
                at: None,
                source: "a.txt:2".into(),
            },
            Draft {
                text: String::new(),
                at: Some(now),
                source: "b.csv:3".into(),
            },
            Draft {
                text: "old".into(),
                at: Some(now - Duration::hours(1)),
                source: "b.csv:4".into(),
            },
            Draft {
                text: "fine".into(),
                at: Some(now),
                source: "b.csv:5".into(),
            },
        ];
        let (posts, problems) = plan(
            drafts,
            Some(Slots {
                start: now,
                every: Duration::hours(8),
            }),
            now,
            Duration::seconds(60),
        );
        let shown: Vec<String> = problems.iter().map(ToString::to_string).collect();
        assert!(
            shown[0].starts_with("a.txt:2: too long: weighted length 281"),
            "{shown:?}"
        );
        assert_eq!(shown[1], "b.csv:3: empty draft");
        assert!(shown[2].starts_with("b.csv:4: due at"), "{shown:?}");
        // "fine" at `now` twice (slot 0 and the CSV row) is one post.
        assert_eq!(posts.len(), 1);
    }

    #[test]
    fn csv_rows_quotes_and_lines() {
        let rows = parse_csv("text,at\n\"a, \"\"quoted\"\"\ntext\",2026-03-01T00:00:00Z\nplain,\n");
        assert_eq!(rows.len(), 3);
        assert_eq!(rows[1].0, 2);
        assert_eq!(rows[1].1[0], "a, \"quoted\"\ntext");
        assert_eq!(rows[2].0, 4);
        assert_eq!(rows[2].1, vec!["plain".to_owned(), String::new()]);
    }
}
