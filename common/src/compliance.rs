//! X API v2 batch compliance: the result lines a compliance job returns, the control record
//! `tweet-consumer compliance` writes to the `control` topic for each of them, what each action
//! asks of the store, and the runner's decisions (which posts are due, what a job's status
//! means, when to retry), all pure functions of `now`.
//!
//! Protocol facts (X API v2 "Batch compliance" introduction, quick start and
//! `POST /2/compliance/jobs` reference, docs.x.com / developer.x.com):
//! - `POST /2/compliance/jobs` with `{"type":"tweets"}` (app-only bearer token) answers
//!   `{"data":{"id","type","status","upload_url","upload_expires_at","download_url",
//!   "download_expires_at","created_at"}}`;
//! - the ids are uploaded with `PUT upload_url` as plain text, one id per line; the URL is
//!   pre-signed (no credentials) and "expires after 15 minutes";
//! - `GET /2/compliance/jobs/{id}` gives the job's `status`: `created`, `in_progress`,
//!   `complete`, `failed` or `expired`;
//! - once `complete`, `GET download_url` gives one JSON line per post that has a compliance
//!   event (posts without one are not listed); the URL "expires after one week (from when the
//!   job was created)";
//! - "You can have one concurrent job per job type at any time", so the runner runs its jobs
//!   one after the other.
//!
//! The result lines of the real payloads (`x_api_v2/twarc-csv_test-data/tweets_compliance.jsonl`
//! of the shared data) look like
//! `{"id":"1170147183095664640","action":"delete","created_at":"2019-09-07T01:30:03.390Z",
//! "redacted_at":"2021-08-17T17:26:15.788Z","reason":"deactivated"}`.

use serde::{Deserialize, Serialize};

/// One line of a compliance job's results (see the module docs for its source).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ComplianceEvent {
    /// The post id.
    pub id: String,
    /// What to do: `delete`, `scrub_geo`, `withheld`, ... ([`ComplianceAction::parse`]).
    pub action: String,
    /// When the post was created, as X gives it (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<String>,
    /// When the content was redacted, as X gives it (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub redacted_at: Option<String>,
    /// Why: `deleted`, `protected`, `deactivated`, `suspended`, ... (open set).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// The control record `tweet-consumer compliance` writes to the `control` topic, keyed by the
/// post id: `{"compliance":{...the result line...,"job_id":"...","checked_at_ms":1700000000000}}`.
/// Routed as kind `compliance` with the key `compliance.id` (see `route`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ComplianceRecord {
    /// The event, with the job that reported it and when (Unix ms).
    pub compliance: ComplianceEntry,
}

/// The body of a [`ComplianceRecord`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ComplianceEntry {
    /// The result line as X gave it.
    #[serde(flatten)]
    pub event: ComplianceEvent,
    /// The compliance job that reported it.
    pub job_id: String,
    /// When the runner downloaded the result, Unix ms.
    pub checked_at_ms: i64,
}

/// A compliance action, as far as the store is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ComplianceAction {
    /// The post must go (`delete`, and the account-level `deactivate`, `protect`, `suspend`,
    /// which make the post no longer public): honoured exactly as a v1.1 delete notice.
    Remove,
    /// Location data must go (`scrub_geo`).
    ScrubGeo,
    /// The post is withheld in some countries (`withheld`): recorded, the post stays.
    Withheld,
    /// Anything else (a new action): nothing to do, logged.
    Other,
}

impl ComplianceAction {
    /// What `action` asks of the store.
    pub fn parse(action: &str) -> Self {
        match action {
            "delete" | "deactivate" | "protect" | "suspend" => Self::Remove,
            "scrub_geo" => Self::ScrubGeo,
            "withheld" => Self::Withheld,
            _ => Self::Other,
        }
    }
}

/// Which stored posts are due for a check at `now_ms`: stored at least `min_age_ms` ago, and
/// never checked or last checked at least `interval_ms` ago. Returns
/// `(stored_before_ms, checked_before_ms)`: a post is due when `stored_at_ms <= stored_before_ms`
/// and (`checked_at_ms` is unset or `checked_at_ms <= checked_before_ms`).
pub fn due_cutoffs(now_ms: i64, min_age_ms: i64, interval_ms: i64) -> (i64, i64) {
    (
        now_ms.saturating_sub(min_age_ms),
        now_ms.saturating_sub(interval_ms),
    )
}

/// Whether one post is due (the same rule as [`due_cutoffs`], for one row).
pub fn is_due(
    stored_at_ms: i64,
    checked_at_ms: Option<i64>,
    now_ms: i64,
    min_age_ms: i64,
    interval_ms: i64,
) -> bool {
    let (stored_before, checked_before) = due_cutoffs(now_ms, min_age_ms, interval_ms);
    stored_at_ms <= stored_before && checked_at_ms.is_none_or(|at| at <= checked_before)
}

/// A compliance job's `status` (X API v2 compliance job schema).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobStatus {
    /// `created`: waiting for the upload.
    Created,
    /// `in_progress`: being processed.
    InProgress,
    /// `complete`: results at `download_url`.
    Complete,
    /// `failed`.
    Failed,
    /// `expired` (the upload or the job outlived its URL).
    Expired,
}

impl JobStatus {
    /// Parses X's status string; `None` for an unknown one.
    pub fn parse(status: &str) -> Option<Self> {
        Some(match status {
            "created" => Self::Created,
            "in_progress" => Self::InProgress,
            "complete" => Self::Complete,
            "failed" => Self::Failed,
            "expired" => Self::Expired,
            _ => return None,
        })
    }
}

/// What the runner does after polling a job.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobStep {
    /// Poll again after the poll interval.
    Poll,
    /// Download the results.
    Download,
    /// Give this job up without writing anything and start a new job for the same ids, after
    /// this many ms.
    Retry {
        /// Wait before the new job, ms.
        after_ms: u64,
    },
    /// Give the batch up for this run (its posts stay due; the next run tries again).
    GiveUp,
}

/// How the runner treats a batch's jobs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JobPolicy {
    /// A job still `created` or `in_progress` this long after its creation counts as expired, ms.
    pub job_timeout_ms: i64,
    /// Most jobs per batch (the first and its retries).
    pub max_attempts: u32,
    /// Wait before the first retry, ms; it doubles per retry ([`retry_delay_ms`]).
    pub retry_base_ms: u64,
}

/// Default wait before the first retry of a failed job: 30 s.
pub const DEFAULT_RETRY_BASE_MS: u64 = 30_000;

/// The step after a poll that saw `status` at `now_ms` for a job created at `created_at_ms`
/// (`attempt`: 0 for the first job of this batch). A job still `created` or `in_progress`
/// after `policy.job_timeout_ms` counts as expired. Failed or expired jobs are retried with
/// exponential backoff ([`retry_delay_ms`]) up to `policy.max_attempts` jobs per batch.
pub fn next_step(
    status: JobStatus,
    now_ms: i64,
    created_at_ms: i64,
    attempt: u32,
    policy: &JobPolicy,
) -> JobStep {
    let timed_out = now_ms.saturating_sub(created_at_ms) > policy.job_timeout_ms;
    match status {
        JobStatus::Complete => JobStep::Download,
        JobStatus::Created | JobStatus::InProgress if !timed_out => JobStep::Poll,
        _ if attempt + 1 >= policy.max_attempts => JobStep::GiveUp,
        _ => JobStep::Retry {
            after_ms: retry_delay_ms(attempt, policy.retry_base_ms),
        },
    }
}

/// Wait before the job that follows failed job number `attempt` (0-based): `base_ms`,
/// doubling, at most 15 min (the upload URL's lifetime, so a retry never waits longer than a
/// job lasts).
pub fn retry_delay_ms(attempt: u32, base_ms: u64) -> u64 {
    const MAX_MS: u64 = 15 * 60 * 1000;
    base_ms.saturating_mul(1u64 << attempt.min(16)).min(MAX_MS)
}

/// The control records to write for a job's results: one per post id (a post listed twice
/// gets one record, its last line), only for ids the job was given, in the order first seen.
pub fn records_for(
    events: impl IntoIterator<Item = ComplianceEvent>,
    uploaded: &std::collections::HashSet<String>,
    job_id: &str,
    checked_at_ms: i64,
) -> Vec<ComplianceRecord> {
    let mut order: Vec<String> = Vec::new();
    let mut latest: std::collections::HashMap<String, ComplianceEvent> =
        std::collections::HashMap::new();
    for event in events {
        if !uploaded.contains(&event.id) {
            continue;
        }
        if !latest.contains_key(&event.id) {
            order.push(event.id.clone());
        }
        latest.insert(event.id.clone(), event);
    }
    order
        .into_iter()
        .filter_map(|id| latest.remove(&id))
        .map(|event| ComplianceRecord {
            compliance: ComplianceEntry {
                event,
                job_id: job_id.to_owned(),
                checked_at_ms,
            },
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{route_line, Destination, Kind, LineClass};

    /// The second line of the real `tweets_compliance.jsonl`.
    const REAL: &str = r#"{"id":"1170147183095664640","action":"delete","created_at":"2019-09-07T01:30:03.390Z","redacted_at":"2021-08-17T17:26:15.788Z","reason":"deactivated"}"#;

    #[test]
    fn records_route_to_control_keyed_by_the_post() {
        let event: ComplianceEvent = serde_json::from_str(REAL).unwrap();
        let uploaded = ["1170147183095664640".to_owned()].into_iter().collect();
        let records = records_for([event.clone(), event], &uploaded, "j1", 5);
        assert_eq!(records.len(), 1, "one record per post");
        let line = serde_json::to_string(&records[0]).unwrap();
        assert_eq!(
            line,
            r#"{"compliance":{"id":"1170147183095664640","action":"delete","created_at":"2019-09-07T01:30:03.390Z","redacted_at":"2021-08-17T17:26:15.788Z","reason":"deactivated","job_id":"j1","checked_at_ms":5}}"#
        );
        let LineClass::Record(routed) = route_line(line.as_bytes()) else {
            panic!("a record")
        };
        assert_eq!(routed.kind, Kind::Compliance);
        assert_eq!(routed.destination(), Destination::Control);
        assert_eq!(routed.key.as_deref(), Some("1170147183095664640"));
        let back: ComplianceRecord = serde_json::from_str(&line).unwrap();
        assert_eq!(back, records[0]);
    }

    #[test]
    fn results_for_ids_not_uploaded_are_ignored() {
        let event: ComplianceEvent = serde_json::from_str(REAL).unwrap();
        assert!(records_for([event], &Default::default(), "j", 1).is_empty());
    }

    #[test]
    fn actions_map_to_store_effects() {
        for action in ["delete", "deactivate", "protect", "suspend"] {
            assert_eq!(ComplianceAction::parse(action), ComplianceAction::Remove);
        }
        assert_eq!(
            ComplianceAction::parse("scrub_geo"),
            ComplianceAction::ScrubGeo
        );
        assert_eq!(
            ComplianceAction::parse("withheld"),
            ComplianceAction::Withheld
        );
        assert_eq!(ComplianceAction::parse("new"), ComplianceAction::Other);
    }

    #[test]
    fn posts_are_due_after_their_age_and_then_every_interval() {
        let (age, every) = (3_600_000, 86_400_000);
        let now = 1_000_000_000_000;
        assert!(!is_due(now - 10, None, now, age, every), "too young");
        assert!(is_due(now - age, None, now, age, every), "old enough");
        assert!(!is_due(now - 2 * age, Some(now - 1000), now, age, every));
        assert!(is_due(now - 2 * every, Some(now - every), now, age, every));
        assert_eq!(due_cutoffs(now, age, every), (now - age, now - every));
    }

    #[test]
    fn failed_and_expired_jobs_are_retried_with_backoff_then_given_up() {
        let created = 0;
        let p = JobPolicy {
            job_timeout_ms: 600_000,
            max_attempts: 3,
            retry_base_ms: DEFAULT_RETRY_BASE_MS,
        };
        assert_eq!(
            next_step(JobStatus::InProgress, 1000, created, 0, &p),
            JobStep::Poll
        );
        assert_eq!(
            next_step(JobStatus::Complete, 1000, created, 0, &p),
            JobStep::Download
        );
        assert_eq!(
            next_step(JobStatus::Failed, 1000, created, 0, &p),
            JobStep::Retry { after_ms: 30_000 }
        );
        assert_eq!(
            next_step(JobStatus::Expired, 1000, created, 1, &p),
            JobStep::Retry { after_ms: 60_000 }
        );
        // Still in progress past the timeout: treated as expired.
        assert_eq!(
            next_step(JobStatus::InProgress, 600_001, created, 0, &p),
            JobStep::Retry { after_ms: 30_000 }
        );
        assert_eq!(
            next_step(JobStatus::Failed, 1000, created, 2, &p),
            JobStep::GiveUp
        );
        assert_eq!(retry_delay_ms(10, DEFAULT_RETRY_BASE_MS), 15 * 60 * 1000);
        assert_eq!(retry_delay_ms(1, 100), 200);
        assert_eq!(JobStatus::parse("in_progress"), Some(JobStatus::InProgress));
        assert_eq!(JobStatus::parse("nope"), None);
    }
}
