//! Turning drafts and times into a validated plan: slot placement and validation, over
//! [`time`] (RFC 3339 or local times in an IANA zone, durations), [`drafts`] (draft files) and
//! [`weight`] (X's weighted length).
//!
//! Slots (`--every`) are exact elapsed intervals in UTC: 8 hours apart stay 8 hours apart
//! across a daylight saving change, so their wall-clock time shifts by the change.

pub mod drafts;
pub mod time;
pub mod weight;

use std::collections::HashSet;

use chrono::{DateTime, Duration, Utc};

use crate::model::{default_destinations, post_id, ScheduledPost};

pub use drafts::read_drafts;
pub use time::{parse_duration, parse_time, parse_tz};
use weight::{weighted_length, MAX_WEIGHTED_LENGTH};

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
                destinations: default_destinations(),
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
}
