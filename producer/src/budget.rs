//! The X read budget: posts read per UTC day and month, the pause before a configured limit,
//! and the wait a `usage-capped` 429 asks for. Decisions are pure functions of `now`.
//!
//! Billing facts (X API pricing, pay-per-use; issue 16): reads are billed per post read
//! (about $0.005 a post, [`DEFAULT_PRICE_PER_READ_USD`]), the same post read twice within a
//! 24-hour UTC window counts once, and a monthly cap answers the stream with 429
//! `usage-capped` (`"type":"https://api.twitter.com/2/problems/usage-capped"`,
//! `"title":"UsageCapExceeded"`) until it resets. This budget counts every post delivered (an
//! upper bound of what X bills) and pauses the stream when a count reaches its limit, until
//! the next UTC day (or month).
//!
//! The counts survive a restart in a small JSON file (`--read-budget-file`), written at most
//! every [`SAVE_EVERY_READS`] reads, at each pause and at the end of a connection.

use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::{DateTime, Datelike as _, NaiveDate, TimeZone as _, Utc};
use serde::{Deserialize, Serialize};

/// Default price of one post read, in US dollars (X API pay-per-use: $0.005 a post read).
pub const DEFAULT_PRICE_PER_READ_USD: f64 = 0.005;

/// The state file is rewritten after this many reads (a crash forgets at most that many).
pub const SAVE_EVERY_READS: u64 = 100;

/// The limits (`--max-post-reads-per-day`, `--max-post-reads-per-month`); `None`: no limit.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BudgetLimits {
    /// Most posts read per UTC day.
    pub per_day: Option<u64>,
    /// Most posts read per UTC calendar month.
    pub per_month: Option<u64>,
}

/// Which window a pause waits out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Window {
    /// The UTC day.
    Day,
    /// The UTC calendar month.
    Month,
}

impl Window {
    /// `day` or `month`, for logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Window::Day => "day",
            Window::Month => "month",
        }
    }
}

/// A pause: the window whose limit was reached and when it ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pause {
    /// The window.
    pub window: Window,
    /// When the next window starts (the stream resumes then).
    pub until: DateTime<Utc>,
}

/// The counts of the current windows (the state file's content):
/// `{"day":"2026-12-02","day_reads":12,"month":"2026-12","month_reads":3400}`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BudgetState {
    /// The UTC day counted, `YYYY-MM-DD`.
    pub day: String,
    /// Posts read that day.
    pub day_reads: u64,
    /// The UTC month counted, `YYYY-MM`.
    pub month: String,
    /// Posts read that month.
    pub month_reads: u64,
    /// The UTC date the windows were last rolled for: a post read the same day skips
    /// formatting the window keys (every post read passes through [`Self::roll`]).
    #[serde(skip)]
    rolled_for: Option<NaiveDate>,
}

impl BudgetState {
    /// Starts new windows when `now` is past the counted ones.
    pub fn roll(&mut self, now: DateTime<Utc>) {
        let today = now.date_naive();
        if self.rolled_for == Some(today) {
            return;
        }
        self.rolled_for = Some(today);
        let (day, month) = (
            now.format("%Y-%m-%d").to_string(),
            now.format("%Y-%m").to_string(),
        );
        if self.day != day {
            self.day = day;
            self.day_reads = 0;
        }
        if self.month != month {
            self.month = month;
            self.month_reads = 0;
        }
    }

    /// Counts one post read at `now`.
    pub fn record(&mut self, now: DateTime<Utc>) {
        self.roll(now);
        self.day_reads += 1;
        self.month_reads += 1;
    }

    /// Whether to pause at `now`: a count at or past its limit pauses until its window ends
    /// (the month first: its pause is the longer).
    pub fn pause(&mut self, limits: BudgetLimits, now: DateTime<Utc>) -> Option<Pause> {
        self.roll(now);
        if limits.per_month.is_some_and(|max| self.month_reads >= max) {
            return Some(Pause {
                window: Window::Month,
                until: next_month(now),
            });
        }
        if limits.per_day.is_some_and(|max| self.day_reads >= max) {
            return Some(Pause {
                window: Window::Day,
                until: next_day(now),
            });
        }
        None
    }
}

/// The next UTC midnight after `now`.
pub fn next_day(now: DateTime<Utc>) -> DateTime<Utc> {
    let date = now.date_naive().succ_opt().unwrap_or(NaiveDate::MAX);
    Utc.from_utc_datetime(&date.and_time(chrono::NaiveTime::MIN))
}

/// The first instant of the next UTC calendar month after `now`.
pub fn next_month(now: DateTime<Utc>) -> DateTime<Utc> {
    let (year, month) = match now.month() {
        12 => (now.year() + 1, 1),
        m => (now.year(), m + 1),
    };
    let date = NaiveDate::from_ymd_opt(year, month, 1).unwrap_or(NaiveDate::MAX);
    Utc.from_utc_datetime(&date.and_time(chrono::NaiveTime::MIN))
}

/// The wait before reconnecting after a 429 `usage-capped` at `now`: until the reset the
/// response gives (`x-rate-limit-reset`, Unix seconds) when it is in the future, else until
/// the next UTC month (the cap is monthly). Never zero, so the producer cannot loop on it.
pub fn usage_cap_wait(reset_epoch_secs: Option<i64>, now: DateTime<Utc>) -> Duration {
    let reset = reset_epoch_secs
        .and_then(|secs| DateTime::from_timestamp(secs, 0))
        .filter(|reset| *reset > now)
        .unwrap_or_else(|| next_month(now));
    until(reset, now).max(Duration::from_secs(1))
}

/// The time from `now` to `at` (zero when past).
pub fn until(at: DateTime<Utc>, now: DateTime<Utc>) -> Duration {
    (at - now).to_std().unwrap_or(Duration::ZERO)
}

/// Whether a 429 body is X's usage cap (not a rate limit or a connection limit).
pub fn is_usage_capped(body: &str) -> bool {
    body.contains("usage-capped") || body.contains("UsageCapExceeded")
}

/// The budget of one X stream: limits, counts, the price and where the counts are kept.
#[derive(Debug)]
pub struct ReadBudget {
    /// The limits.
    pub limits: BudgetLimits,
    /// The counts.
    pub state: BudgetState,
    /// US dollars per post read, for the estimated cost.
    pub price_per_read_usd: f64,
    path: Option<PathBuf>,
    unsaved: u64,
}

impl ReadBudget {
    /// A budget whose counts are loaded from `path` (missing: zero; unreadable: a warning and
    /// zero) and saved there.
    pub fn load(limits: BudgetLimits, price_per_read_usd: f64, path: Option<PathBuf>) -> Self {
        let state = path
            .as_deref()
            .and_then(|path| match std::fs::read_to_string(path) {
                Ok(text) => serde_json::from_str(&text)
                    .map_err(|error| tracing::warn!(path = %path.display(), %error, "read budget file unreadable; counting from zero"))
                    .ok(),
                Err(error) if error.kind() == std::io::ErrorKind::NotFound => None,
                Err(error) => {
                    tracing::warn!(path = %path.display(), %error, "cannot read the read budget file; counting from zero");
                    None
                }
            })
            .unwrap_or_default();
        Self {
            limits,
            state,
            price_per_read_usd,
            path,
            unsaved: 0,
        }
    }

    /// Counts one post read at `now`; saves every [`SAVE_EVERY_READS`] reads.
    pub fn record(&mut self, now: DateTime<Utc>) {
        self.state.record(now);
        self.unsaved += 1;
        if self.unsaved >= SAVE_EVERY_READS {
            self.save();
        }
    }

    /// Writes the counts to the file (write then rename, so a crash leaves the old or the new
    /// file, never half of one). A failure is logged: the stream goes on.
    pub fn save(&mut self) {
        self.unsaved = 0;
        let Some(path) = self.path.as_deref() else {
            return;
        };
        if let Err(error) = write_atomically(path, &self.state) {
            tracing::warn!(path = %path.display(), %error, "cannot save the read budget; a restart may count from an older state");
        }
    }
}

fn write_atomically(path: &Path, state: &BudgetState) -> std::io::Result<()> {
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)?;
    }
    let tmp = path.with_extension("tmp");
    std::fs::write(
        &tmp,
        serde_json::to_vec(state).map_err(std::io::Error::other)?,
    )?;
    std::fs::rename(tmp, path)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn a_daily_limit_pauses_until_the_next_utc_day_and_a_new_day_resumes() {
        let limits = BudgetLimits {
            per_day: Some(2),
            per_month: Some(10),
        };
        let mut state = BudgetState::default();
        let now = at("2026-12-02T23:59:00Z");
        state.record(now);
        assert_eq!(state.pause(limits, now), None);
        state.record(now);
        assert_eq!(
            state.pause(limits, now),
            Some(Pause {
                window: Window::Day,
                until: at("2026-12-03T00:00:00Z")
            })
        );
        assert_eq!(state.pause(limits, at("2026-12-03T00:00:00Z")), None);
        assert_eq!((state.day_reads, state.month_reads), (0, 2));
    }

    #[test]
    fn a_monthly_limit_pauses_until_the_next_month_even_across_days() {
        let limits = BudgetLimits {
            per_day: None,
            per_month: Some(3),
        };
        let mut state = BudgetState::default();
        for day in ["2026-12-01", "2026-12-15", "2026-12-31"] {
            state.record(at(&format!("{day}T12:00:00Z")));
        }
        let pause = state.pause(limits, at("2026-12-31T12:00:00Z")).unwrap();
        assert_eq!(
            (pause.window, pause.until),
            (Window::Month, at("2027-01-01T00:00:00Z"))
        );
        assert_eq!(state.pause(limits, at("2027-01-01T00:00:01Z")), None);
    }

    #[test]
    fn a_usage_cap_waits_for_its_reset_or_the_next_month_never_zero() {
        let now = at("2026-12-02T10:00:00Z");
        let reset = now.timestamp() + 3600;
        assert_eq!(usage_cap_wait(Some(reset), now), Duration::from_secs(3600));
        let to_month = until(at("2027-01-01T00:00:00Z"), now);
        assert_eq!(usage_cap_wait(None, now), to_month);
        assert_eq!(usage_cap_wait(Some(now.timestamp() - 5), now), to_month);
        assert!(is_usage_capped(
            r#"{"title":"UsageCapExceeded","type":"https://api.twitter.com/2/problems/usage-capped"}"#
        ));
        assert!(!is_usage_capped(
            r#"{"connection_issue":"TooManyConnections"}"#
        ));
    }

    #[test]
    fn the_counts_survive_a_restart_and_a_pause_stays_paused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("budget").join("x-read-budget.json");
        let limits = BudgetLimits {
            per_day: Some(150),
            per_month: None,
        };
        let now = Utc::now();
        let mut budget = ReadBudget::load(limits, DEFAULT_PRICE_PER_READ_USD, Some(path.clone()));
        for _ in 0..150 {
            budget.record(now);
        }
        assert!(path.exists(), "saved every {SAVE_EVERY_READS} reads");
        budget.save();
        let mut restarted = ReadBudget::load(limits, DEFAULT_PRICE_PER_READ_USD, Some(path));
        assert_eq!(restarted.state.day_reads, 150);
        assert_eq!(
            restarted.state.pause(limits, now).map(|p| p.window),
            Some(Window::Day),
            "a restart does not reopen a paused window"
        );
    }

    #[test]
    fn the_state_file_shape_is_pinned() {
        let mut state = BudgetState::default();
        state.record(at("2026-12-02T10:00:00Z"));
        assert_eq!(
            serde_json::to_string(&state).unwrap(),
            r#"{"day":"2026-12-02","day_reads":1,"month":"2026-12","month_reads":1}"#
        );
    }
}
