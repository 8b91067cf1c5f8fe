//! `tweet-consumer compliance`: X API v2 batch compliance for the store. Picks the stored X
//! post ids due for a check, runs one compliance job per batch of them (one job at a time:
//! X allows one concurrent job per type), and writes one control record per post that has a
//! compliance event to the `control` topic, where the analysis group honours it as it
//! honours a v1.1 delete notice (`role::analysis`).
//!
//! A command, not a consumer-group role: the work is periodic (a systemd timer, e.g. daily;
//! `deploy/`), reads the store rather than a topic, and waits minutes on X between steps,
//! which a consumer's poll loop must not (`max.poll.interval.ms`). Its output goes through
//! Kafka, so the one writer of the store stays the analysis group; this command writes only
//! the `compliance_checked_at_ms` marks.
//!
//! Delivery: a job that fails or expires writes nothing and is replaced by a new job for the
//! same ids (backoff, at most `--max-job-attempts` jobs); records are written only from a
//! complete job's results and the batch is marked checked only once Kafka acknowledged them.
//! A crash between the two writes the same records again on the next run (harmless: the
//! analysis group's deletes are idempotent).

pub mod client;

use std::collections::{BTreeMap, HashSet};
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context as _;
use clap::Args;
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord, Producer as _};
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;
use tweet_pipeline_common::compliance::{
    self, ComplianceEvent, JobPolicy, JobStatus, JobStep, DEFAULT_RETRY_BASE_MS,
};
use tweet_pipeline_common::config::{KafkaArgs, SummaryArgs, TopicNames, XApiArgs};
use tweet_pipeline_common::secret::{credential, read_credentials_file};
use tweet_pipeline_common::{headers, kafka, Kind};

use crate::cli::StoreArg;
use crate::store::Store;
use crate::summary::row;
use client::{Job, JobsClient};

/// The X API v2 root.
pub const DEFAULT_X_V2_URL: &str = "https://api.x.com";

/// How long Kafka may take to acknowledge a batch's records.
const DELIVERY_TIMEOUT: Duration = Duration::from_secs(60);

/// Most ids per job: "up to 500,000 Post IDs" per job (X API v2 batch compliance
/// introduction).
fn default_max_ids_per_job() -> u32 {
    500_000
}

/// The flags of `tweet-consumer compliance`.
#[derive(Debug, Args)]
pub struct ComplianceArgs {
    /// `--db`.
    #[command(flatten)]
    pub store: StoreArg,

    /// How to reach Kafka.
    #[command(flatten)]
    pub kafka: KafkaArgs,

    /// The topic names (the records go to the control topic).
    #[command(flatten)]
    pub topics: TopicNames,

    /// The X API root.
    #[command(flatten)]
    pub x_api: XApiArgs,

    /// A file of NAME=value lines (mode 0600) holding X_BEARER_TOKEN when it is not in the
    /// environment.
    #[arg(long, env = "TWEET_PIPELINE_CREDENTIALS_FILE", value_name = "FILE")]
    pub credentials_file: Option<PathBuf>,

    /// Check a post once it has been stored this many seconds.
    #[arg(
        long,
        env = "TWEET_PIPELINE_COMPLIANCE_MIN_AGE_SECS",
        default_value_t = 3600
    )]
    pub min_age_secs: u64,

    /// Check a post again once its last check is this many seconds old (X's Developer Policy
    /// asks for removal within 24 hours: run at least daily).
    #[arg(long, env = "TWEET_PIPELINE_COMPLIANCE_INTERVAL_SECS", default_value_t = 86_400, value_parser = clap::value_parser!(u64).range(1..))]
    pub interval_secs: u64,

    /// Most post ids per job.
    #[arg(long, default_value_t = default_max_ids_per_job(), value_parser = clap::value_parser!(u32).range(1..=500_000))]
    pub max_ids_per_job: u32,

    /// Most jobs (batches) per run; 0: until no post is due.
    #[arg(long, default_value_t = 0)]
    pub max_batches: u32,

    /// Wait between two polls of a job's status, ms.
    #[arg(long, default_value_t = 10_000, value_parser = clap::value_parser!(u64).range(1..))]
    pub poll_interval_ms: u64,

    /// A job not complete this many seconds after its creation counts as expired and is
    /// replaced by a new one (its upload URL lasts 15 minutes).
    #[arg(long, default_value_t = 3600)]
    pub job_timeout_secs: u64,

    /// Most jobs per batch: the first and its retries after a failed or expired job.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..))]
    pub max_job_attempts: u32,

    /// Wait before the first retry of a failed job, ms (doubling per retry, at most 15 min).
    #[arg(long, default_value_t = DEFAULT_RETRY_BASE_MS)]
    pub retry_base_ms: u64,

    /// `--summary text|json`.
    #[command(flatten)]
    pub summary: SummaryArgs,
}

/// What a compliance run did.
///
/// JSON form (`--summary json`):
///
/// ```json
/// {"batches":1,"batches_given_up":0,"jobs_created":2,"jobs_retried":1,"ids_checked":40,
///  "events":3,"events_not_uploaded":0,"lines_unparseable":0,"records_written":3,
///  "actions":{"delete":3}}
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ComplianceSummary {
    /// Batches whose job completed and whose records were written.
    pub batches: u64,
    /// Batches given up after `--max-job-attempts` failed or expired jobs (their posts stay due).
    pub batches_given_up: u64,
    /// Jobs created.
    pub jobs_created: u64,
    /// Jobs that failed or expired and were replaced.
    pub jobs_retried: u64,
    /// Post ids checked (uploaded in a complete job) and marked checked.
    pub ids_checked: u64,
    /// Result lines of complete jobs.
    pub events: u64,
    /// Result lines for ids the job was not given (ignored).
    pub events_not_uploaded: u64,
    /// Result lines that are not compliance events (ignored).
    pub lines_unparseable: u64,
    /// Control records written (one per post with an event).
    pub records_written: u64,
    /// Records written per action (`delete`, `withheld`, ...).
    pub actions: BTreeMap<String, u64>,
}

impl fmt::Display for ComplianceSummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "compliance run")?;
        row(f, "batches", self.batches)?;
        row(f, "batches given up", self.batches_given_up)?;
        row(f, "jobs created", self.jobs_created)?;
        row(f, "jobs retried", self.jobs_retried)?;
        row(f, "ids checked", self.ids_checked)?;
        row(f, "events", self.events)?;
        row(f, "records written", self.records_written)?;
        for (action, count) in &self.actions {
            row(f, &format!("  {action}"), count)?;
        }
        Ok(())
    }
}

/// What [`run_job`] ended with.
enum JobOutcome {
    /// The results of the complete job.
    Complete {
        job_id: String,
        events: Vec<ComplianceEvent>,
        unparseable: u64,
    },
    /// Every attempt failed or expired.
    GivenUp,
    /// Shutdown was asked.
    Cancelled,
}

/// Runs compliance until no post is due (or `--max-batches`), or until `shutdown`.
///
/// # Errors
/// A missing bearer token, a store or Kafka that cannot be reached, a missing control topic,
/// an X API request that fails (its posts stay due for the next run), records Kafka refused.
pub async fn run(
    args: &ComplianceArgs,
    shutdown: &CancellationToken,
) -> anyhow::Result<ComplianceSummary> {
    let file = args
        .credentials_file
        .as_deref()
        .map(read_credentials_file)
        .transpose()?;
    let bearer = credential("X_BEARER_TOKEN", file.as_ref(), "X API v2 bearer token")?;
    let client = JobsClient::new(&args.x_api.url_or(DEFAULT_X_V2_URL), bearer)?;
    let producer: FutureProducer = kafka::producer_config(&args.kafka, "tweet-consumer-compliance")
        .create()
        .context("invalid Kafka producer configuration (check -X properties)")?;
    kafka::check_topics(
        producer.client(),
        &args.kafka.bootstrap,
        &[args.topics.control.as_str()],
        Duration::from_secs(10),
    )?;
    let db = &args.store.db;
    let mut store = Store::open(db).with_context(|| format!("cannot open the store {db}"))?;
    let policy = JobPolicy {
        job_timeout_ms: i64::try_from(args.job_timeout_secs.saturating_mul(1000))
            .unwrap_or(i64::MAX),
        max_attempts: args.max_job_attempts,
        retry_base_ms: args.retry_base_ms,
    };
    let ms = |secs: u64| i64::try_from(secs.saturating_mul(1000)).unwrap_or(i64::MAX);
    let mut summary = ComplianceSummary::default();
    loop {
        if args.max_batches > 0
            && summary.batches + summary.batches_given_up >= u64::from(args.max_batches)
        {
            break;
        }
        let (stored_before, checked_before) = compliance::due_cutoffs(
            headers::now_ms(),
            ms(args.min_age_secs),
            ms(args.interval_secs),
        );
        let ids = store
            .compliance_due(stored_before, checked_before, args.max_ids_per_job)
            .context("cannot read the posts due for a compliance check")?;
        if ids.is_empty() {
            tracing::info!(
                batches = summary.batches,
                "no post due for a compliance check"
            );
            break;
        }
        tracing::info!(ids = ids.len(), "compliance batch started");
        let (job_id, events, unparseable) = match run_job(
            &client,
            &ids,
            &policy,
            args,
            &mut summary,
            shutdown,
        )
        .await?
        {
            JobOutcome::Complete {
                job_id,
                events,
                unparseable,
            } => (job_id, events, unparseable),
            JobOutcome::GivenUp => {
                summary.batches_given_up += 1;
                tracing::error!(ids = ids.len(), attempts = policy.max_attempts, "compliance batch given up: every job failed or expired; its posts stay due for the next run");
                break;
            }
            JobOutcome::Cancelled => break,
        };
        let uploaded: HashSet<String> = ids.iter().cloned().collect();
        let lines = events.len() as u64;
        let not_uploaded = events.iter().filter(|e| !uploaded.contains(&e.id)).count() as u64;
        let records = compliance::records_for(events, &uploaded, &job_id, headers::now_ms());
        write_records(&producer, &args.topics.control, &records).await?;
        // Marked only once the records are durable: a failure above leaves the batch due.
        store
            .mark_checked(&ids, headers::now_ms())
            .context("cannot record the compliance check in the store")?;
        summary.batches += 1;
        summary.ids_checked += ids.len() as u64;
        summary.events += lines;
        summary.lines_unparseable += unparseable;
        summary.records_written += records.len() as u64;
        for record in &records {
            *summary
                .actions
                .entry(record.compliance.event.action.clone())
                .or_default() += 1;
        }
        summary.events_not_uploaded += not_uploaded;
        tracing::info!(job = %job_id, ids = ids.len(), events = lines, records = records.len(), "compliance batch done");
    }
    Ok(summary)
}

/// One batch's job, retried per `policy` until it completes or is given up.
async fn run_job(
    client: &JobsClient,
    ids: &[String],
    policy: &JobPolicy,
    args: &ComplianceArgs,
    summary: &mut ComplianceSummary,
    shutdown: &CancellationToken,
) -> anyhow::Result<JobOutcome> {
    let poll = Duration::from_millis(args.poll_interval_ms);
    let mut attempt = 0;
    loop {
        let created_at_ms = headers::now_ms();
        let job = client.create().await?;
        summary.jobs_created += 1;
        tracing::info!(job = %job.id, attempt, "compliance job created");
        client.upload(&job, ids).await?;
        let mut current: Job = job;
        let step = loop {
            let status = JobStatus::parse(&current.status).unwrap_or(JobStatus::InProgress);
            match compliance::next_step(status, headers::now_ms(), created_at_ms, attempt, policy) {
                JobStep::Poll => {
                    tokio::select! {
                        () = shutdown.cancelled() => return Ok(JobOutcome::Cancelled),
                        () = tokio::time::sleep(poll) => {}
                    }
                    current = client.status(&current.id).await?;
                }
                step => break step,
            }
        };
        match step {
            JobStep::Download => {
                let (events, unparseable) = client.download(&current).await?;
                return Ok(JobOutcome::Complete {
                    job_id: current.id,
                    events,
                    unparseable,
                });
            }
            JobStep::Retry { after_ms } => {
                summary.jobs_retried += 1;
                tracing::warn!(job = %current.id, status = %current.status, attempt, retry_in_ms = after_ms, "compliance job failed or expired; nothing written, a new job follows");
                tokio::select! {
                    () = shutdown.cancelled() => return Ok(JobOutcome::Cancelled),
                    () = tokio::time::sleep(Duration::from_millis(after_ms)) => {}
                }
                attempt += 1;
            }
            JobStep::GiveUp | JobStep::Poll => return Ok(JobOutcome::GivenUp),
        }
    }
}

/// Writes `records` to `topic`, keyed by post id with the `kind` header, and waits for every
/// acknowledgement.
///
/// # Errors
/// The first record Kafka refused or did not acknowledge within [`DELIVERY_TIMEOUT`].
async fn write_records(
    producer: &FutureProducer,
    topic: &str,
    records: &[compliance::ComplianceRecord],
) -> anyhow::Result<()> {
    let now = headers::now_ms().to_string();
    let mut pending = Vec::with_capacity(records.len());
    for record in records {
        let payload =
            serde_json::to_string(record).context("cannot serialise a compliance record")?;
        let headers = OwnedHeaders::new()
            .insert(Header {
                key: headers::KIND,
                value: Some(Kind::Compliance.as_str()),
            })
            .insert(Header {
                key: headers::RECEIVED_AT_MS,
                value: Some(now.as_str()),
            });
        let key = record.compliance.event.id.clone();
        let future = producer.send_result(
            FutureRecord::to(topic)
                .key(&key)
                .payload(&payload)
                .headers(headers),
        );
        match future {
            Ok(delivery) => pending.push(delivery),
            Err((error, _)) => return Err(error).context("cannot queue a compliance record"),
        }
    }
    for delivery in pending {
        match tokio::time::timeout(DELIVERY_TIMEOUT, delivery).await {
            Ok(Ok(Ok(_))) => {}
            Ok(Ok(Err((error, _)))) => {
                return Err(error).context("Kafka refused a compliance record")
            }
            Ok(Err(_)) | Err(_) => {
                anyhow::bail!(
                    "a compliance record was not acknowledged by Kafka within {DELIVERY_TIMEOUT:?}"
                )
            }
        }
    }
    Ok(())
}
