//! The X API v2 batch compliance jobs of the emulator: jobs created, the ids uploaded to each,
//! and the compliance events the results report, with a test's control over them.
//!
//! A job is `created` until its ids are uploaded, then `in_progress` for one status poll, then
//! `complete` (or `failed`, when a test asked the next jobs to fail, see
//! [`ComplianceJobs::configure`]). The results list, for each uploaded id that has an event,
//! its event line as the real API gives it (one JSON object per line). Events come from the
//! real payload `x_api_v2/twarc-csv_test-data/tweets_compliance.jsonl` of the data folder,
//! loaded at start, and from `POST /_emulator/compliance`.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::Mutex;

use chrono::{DateTime, Duration as ChronoDuration, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

/// The real compliance results, relative to the data folder.
pub const RESULTS_FILE: &str = "x_api_v2/twarc-csv_test-data/tweets_compliance.jsonl";

/// A job's status, as X spells it (X API v2 compliance job schema).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Waiting for the upload.
    Created,
    /// Uploaded, being processed.
    InProgress,
    /// Results ready.
    Complete,
    /// Failed (on a test's request).
    Failed,
}

#[derive(Debug)]
struct Job {
    created_at: DateTime<Utc>,
    status: Status,
    /// Set when the job was created while a failure was queued.
    fails: bool,
    /// The ids uploaded, in upload order.
    ids: Vec<String>,
}

#[derive(Debug, Default)]
struct Inner {
    next_id: u64,
    jobs: BTreeMap<String, Job>,
    /// Event line per post id.
    events: HashMap<String, Value>,
    fail_next_jobs: u32,
    uploads: u64,
    downloads: u64,
}

/// Why a compliance request is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobError {
    /// No job with that id.
    NotFound,
    /// The job is not in the state the request needs (an upload to an uploaded job, a download
    /// of a job not complete).
    WrongState,
}

/// What `POST /_emulator/compliance` sets: events to report (each a result line; a later one
/// for the same id replaces the earlier) and how many of the next jobs fail.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ComplianceControl {
    /// Result lines, `{"id":"...","action":"delete",...}`.
    #[serde(default)]
    pub events: Vec<Value>,
    /// The next this many jobs created end `failed` after their upload.
    #[serde(default)]
    pub fail_next_jobs: u32,
}

/// The compliance jobs and events (see the module docs).
#[derive(Debug, Default)]
pub struct ComplianceJobs {
    inner: Mutex<Inner>,
}

impl ComplianceJobs {
    /// Jobs with the events of the real results file in `data_dir`, if it exists (a missing
    /// file leaves none; an unreadable line is skipped).
    pub fn load(data_dir: &Path) -> Self {
        let jobs = Self::default();
        if let Ok(text) = std::fs::read_to_string(data_dir.join(RESULTS_FILE)) {
            let events = text
                .lines()
                .filter_map(|line| serde_json::from_str::<Value>(line).ok())
                .collect();
            jobs.configure(ComplianceControl {
                events,
                fail_next_jobs: 0,
            });
        }
        jobs
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // A poisoned lock only means a handler panicked mid-update; the maps stay usable.
        self.inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Adds events and queues job failures; returns (events known, failures queued).
    pub fn configure(&self, control: ComplianceControl) -> (usize, u32) {
        let mut inner = self.lock();
        for event in control.events {
            if let Some(id) = event.get("id").and_then(Value::as_str) {
                inner.events.insert(id.to_owned(), event.clone());
            }
        }
        inner.fail_next_jobs += control.fail_next_jobs;
        (inner.events.len(), inner.fail_next_jobs)
    }

    /// Creates a job at `now`; returns its id.
    pub fn create(&self, now: DateTime<Utc>) -> String {
        let mut inner = self.lock();
        inner.next_id += 1;
        // Snowflake-like ids, as X's job ids are.
        let id = format!("{}", 1_421_185_651_106_480_128u64 + inner.next_id);
        let fails = inner.fail_next_jobs > 0;
        inner.fail_next_jobs = inner.fail_next_jobs.saturating_sub(1);
        inner.jobs.insert(
            id.clone(),
            Job {
                created_at: now,
                status: Status::Created,
                fails,
                ids: Vec::new(),
            },
        );
        id
    }

    /// Takes the upload of `body` (one id per line) for job `id`.
    ///
    /// # Errors
    /// [`JobError`] for an unknown job or one already uploaded.
    pub fn upload(&self, id: &str, body: &str) -> Result<usize, JobError> {
        let mut inner = self.lock();
        inner.uploads += 1;
        let job = inner.jobs.get_mut(id).ok_or(JobError::NotFound)?;
        if job.status != Status::Created {
            return Err(JobError::WrongState);
        }
        job.ids = body
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(str::to_owned)
            .collect();
        job.status = Status::InProgress;
        Ok(job.ids.len())
    }

    /// The job's status object (`data` of `GET /2/compliance/jobs/:id`), advancing an
    /// `in_progress` job to its end for the next poll. `base` is the emulator's root URL.
    ///
    /// # Errors
    /// [`JobError::NotFound`].
    pub fn poll(&self, id: &str, base: &str) -> Result<Value, JobError> {
        let mut inner = self.lock();
        let job = inner.jobs.get_mut(id).ok_or(JobError::NotFound)?;
        let shown = job_json(id, job, base);
        if job.status == Status::InProgress {
            job.status = if job.fails {
                Status::Failed
            } else {
                Status::Complete
            };
        }
        Ok(shown)
    }

    /// The job's object as created (`data` of `POST /2/compliance/jobs`).
    ///
    /// # Errors
    /// [`JobError::NotFound`].
    pub fn show(&self, id: &str, base: &str) -> Result<Value, JobError> {
        let inner = self.lock();
        let job = inner.jobs.get(id).ok_or(JobError::NotFound)?;
        Ok(job_json(id, job, base))
    }

    /// The results of a complete job: one event line per uploaded id that has one.
    ///
    /// # Errors
    /// [`JobError`] for an unknown job or one not complete.
    pub fn results(&self, id: &str) -> Result<String, JobError> {
        let mut inner = self.lock();
        inner.downloads += 1;
        let job = inner.jobs.get(id).ok_or(JobError::NotFound)?;
        if job.status != Status::Complete {
            return Err(JobError::WrongState);
        }
        let mut out = String::new();
        for event in job.ids.iter().filter_map(|id| inner.events.get(id)) {
            out.push_str(&event.to_string());
            out.push('\n');
        }
        Ok(out)
    }

    /// `GET /_emulator/compliance`: `{"jobs":[{"id","status","ids_uploaded"}...],
    /// "events":N,"uploads":N,"downloads":N,"fail_next_jobs":N}`.
    pub fn snapshot(&self) -> Value {
        let inner = self.lock();
        let jobs: Vec<Value> = inner
            .jobs
            .iter()
            .map(|(id, job)| json!({"id": id, "status": job.status, "ids_uploaded": job.ids.len()}))
            .collect();
        json!({
            "jobs": jobs,
            "events": inner.events.len(),
            "uploads": inner.uploads,
            "downloads": inner.downloads,
            "fail_next_jobs": inner.fail_next_jobs,
        })
    }
}

/// A job as X shows it: upload URL valid 15 minutes, download URL one week from creation
/// (X API v2 batch compliance quick start).
fn job_json(id: &str, job: &Job, base: &str) -> Value {
    let time = |t: DateTime<Utc>| t.to_rfc3339_opts(SecondsFormat::Millis, true);
    json!({
        "id": id,
        "type": "tweets",
        "resumable": false,
        "status": job.status,
        "created_at": time(job.created_at),
        "upload_url": format!("{base}/_emulator/compliance/upload/{id}"),
        "upload_expires_at": time(job.created_at + ChronoDuration::minutes(15)),
        "download_url": format!("{base}/_emulator/compliance/download/{id}"),
        "download_expires_at": time(job.created_at + ChronoDuration::days(7)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_job_goes_created_uploaded_in_progress_complete_and_lists_known_ids() {
        let jobs = ComplianceJobs::default();
        jobs.configure(ComplianceControl {
            events: vec![json!({"id": "1", "action": "delete", "reason": "deleted"})],
            fail_next_jobs: 0,
        });
        let id = jobs.create(Utc::now());
        assert_eq!(jobs.poll(&id, "http://e").unwrap()["status"], "created");
        assert_eq!(jobs.results(&id), Err(JobError::WrongState));
        assert_eq!(jobs.upload(&id, "1\n2\n"), Ok(2));
        assert_eq!(jobs.upload(&id, "1\n"), Err(JobError::WrongState));
        assert_eq!(jobs.poll(&id, "http://e").unwrap()["status"], "in_progress");
        assert_eq!(jobs.poll(&id, "http://e").unwrap()["status"], "complete");
        let results = jobs.results(&id).unwrap();
        assert_eq!(
            results.lines().count(),
            1,
            "only ids with an event: {results}"
        );
        assert!(results.contains(r#""id":"1""#));
    }

    #[test]
    fn queued_failures_fail_the_next_jobs_only() {
        let jobs = ComplianceJobs::default();
        jobs.configure(ComplianceControl {
            events: Vec::new(),
            fail_next_jobs: 1,
        });
        let (first, second) = (jobs.create(Utc::now()), jobs.create(Utc::now()));
        for id in [&first, &second] {
            jobs.upload(id, "1").unwrap();
            jobs.poll(id, "").unwrap();
        }
        assert_eq!(jobs.poll(&first, "").unwrap()["status"], "failed");
        assert_eq!(jobs.poll(&second, "").unwrap()["status"], "complete");
        assert_eq!(jobs.results(&first), Err(JobError::WrongState));
    }
}
