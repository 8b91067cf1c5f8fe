//! The poster (`tweet-consumer --group poster`, started by [`run`]): posts each scheduled post when it is due, to
//! each of its destinations (X `POST /2/tweets`, [`x`]; Bluesky `createRecord`, [`bluesky`];
//! Mastodon `POST /api/v1/statuses`, [`mastodon`]), exactly once per destination across
//! restarts, crashes and rebalances.
//!
//! Each destination of a post is its own entry, with its own state, attempts and results
//! (key `<id>/<destination>` on the results topic, [`crate::model::result_key`]): a network
//! that fails never makes the poster post again to another.
//!
//! **The compacted `scheduled` topic is the durable schedule**; the compacted
//! `scheduled-results` topic (same partition count, the outcome of a post written to the
//! partition with the number of its scheduled record) is the durable memory of what was done.
//! The group never commits offsets: whenever a partition is assigned, the poster reads it from
//! the beginning, and reads the same partition of the results topic to its end, before it acts
//! on any post of that partition. No local state is needed to resume, so a second instance on
//! another machine takes over a partition with everything it needs.
//!
//! Exactly once, per post and destination:
//! 1. an `attempt` result is written and acknowledged (acks=all, idempotent producer) before
//!    the HTTP call;
//! 2. the answer is written as `posted` (with X's id), `duplicate`, `failed`, or `retry` (429 /
//!    5xx: certainly not posted; due again at `retry_at`);
//! 3. a post whose last result is `attempt` (a crash, a SIGKILL or a timeout between the call
//!    and its answer) is, on X, **reconciled before any retry**: the poster reads the account's
//!    posts since the attempt (`GET /2/users/me`, `GET /2/users/:id/tweets`) and records
//!    `posted` if the text is there; only otherwise does it post again. On Bluesky and Mastodon
//!    it is sent again as it was: the record key ([`bluesky::record_key`]) and the
//!    `Idempotency-Key` ([`mastodon::idempotency_key`]) are functions of the post, so the
//!    network answers the earlier post instead of creating a second one (Mastodon only within
//!    the hour it keeps a key; an older ambiguous attempt is recorded as `failed`).
//!
//! Rebalances cannot double-post: HTTP calls run on the thread that polls the consumer, so a
//! partition is revoked only between two polls, after every call of that poll's batch has its
//! outcome acknowledged on the results topic; the next owner reads those outcomes before
//! acting. A member that dies (SIGKILL) loses its partitions after `session.timeout.ms`; by
//! then any request it had sent has been answered, and the `attempt` it left is reconciled.
//! (A member cut off from Kafka but not from X for longer than the session timeout could still
//! post once more before noticing; reconciliation by text and X's own duplicate-content check
//! are the last guards there.)
//!
//! Catch-up: a post that has never been tried and is more than `--catch-up-tolerance-secs`
//! past due when the poster gets to it (the poster was down) is posted late
//! (`--catch-up post-late`) or recorded as `missed` (`--catch-up mark-missed`, the default),
//! like Airflow's `catchup`. Posts within the tolerance are always posted.
//!
//! Every one of those rules is a pure function of a clock reading in [`decide`]; the loop here
//! reads the clock once per step, passes it in, and does the I/O the decision calls for.

pub mod bluesky;
pub mod decide;
pub mod mastodon;
pub mod store;
pub mod x;

use std::collections::{HashMap, HashSet};
use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use anyhow::Context as _;
use chrono::{DateTime, Utc};
use clap::{Args, ValueEnum};
use rdkafka::client::ClientContext;
use rdkafka::config::RDKafkaLogLevel;
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext, Rebalance};
use rdkafka::error::KafkaError;
use rdkafka::message::Message as _;
use rdkafka::producer::{FutureProducer, FutureRecord, Producer as _};
use rdkafka::Offset;
use tokio::runtime::Handle;
use tokio_util::sync::CancellationToken;
use tweet_pipeline_common::config::{KafkaArgs, ScheduleTopics};
use tweet_pipeline_common::kafka::{self, ClientLog};
use tweet_pipeline_common::metrics::PosterMetrics;
use tweet_pipeline_common::secret::{credential, read_credentials_file, OAuthKeys};

use self::bluesky::{BlueskyClient, BlueskyCredentials};
use self::decide::{
    answer, decide, gate, state_after, state_on_load, Action, Gate, Policy, PostReply, PostView,
    State,
};
use self::mastodon::MastodonClient;
use self::store::PosterStore;
use self::x::{comparable, XClient};
use crate::model::{parse_result_key, result_key, Destination, Outcome, PostResult, ScheduledPost};
use crate::queue::{partitions_of, read_to_end};

/// The X API root.
const DEFAULT_X_API_URL: &str = "https://api.x.com";
/// Most posts handled between two polls of the consumer (keeps rebalances and new schedule
/// records flowing while a backlog is posted).
const MAX_BATCH: usize = 50;
/// After this long in one batch of calls, the rest of the batch waits for the next round, so
/// that the loop polls well within `max.poll.interval.ms` ([`MAX_POLL_INTERVAL_MS`]) even when
/// every call takes the whole HTTP timeout.
const BATCH_BUDGET: Duration = Duration::from_secs(30);
/// `max.poll.interval.ms` of the poster: a member that does not poll for this long leaves the
/// group and its partitions move. It must exceed [`BATCH_BUDGET`] plus one HTTP timeout plus a
/// reconciliation, or a slow batch could see its partitions handed to another instance while
/// its calls are still running.
const MAX_POLL_INTERVAL_MS: &str = "120000";
/// The longest `--http-timeout-secs` honoured (see [`MAX_POLL_INTERVAL_MS`]).
const MAX_HTTP_TIMEOUT_SECS: u64 = 30;
/// The longest wait between two polls.
const POLL_INTERVAL: Duration = Duration::from_millis(100);
/// How long Kafka gets to acknowledge a result before the poster gives up (and exits: an
/// unrecorded outcome must not be followed by more posts).
const ACK_TIMEOUT: Duration = Duration::from_secs(30);
/// The HTTP client of every destination's API: requests time out after `timeout` (connecting
/// after at most 5 s), with the poster's user agent.
///
/// # Errors
/// When the client cannot be built (TLS setup).
pub(crate) fn http_client(timeout: Duration) -> anyhow::Result<reqwest::Client> {
    reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(timeout.min(Duration::from_secs(5)))
        .user_agent(concat!("tweet-pipeline-poster/", env!("CARGO_PKG_VERSION")))
        .build()
        .context("cannot build the HTTP client")
}

/// Reconciliation reads the account's posts from this long before the attempt (clock skew
/// between this machine and X).
const RECONCILE_SLACK_SECS: i64 = 120;

/// What to do with a post that is more than the tolerance past due when first tried.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum CatchUp {
    /// Post it anyway, late.
    PostLate,
    /// Record it as `missed` and do not post it.
    MarkMissed,
}

/// Flags of the poster role.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Poster (--group poster)")]
pub struct PosterArgs {
    /// X API root for posting (e.g. the local emulator).
    #[arg(long = "x-api-url", env = "X_API_BASE_URL", default_value = DEFAULT_X_API_URL)]
    pub api_url: String,

    /// NAME=value lines with X_CONSUMER_KEY, X_CONSUMER_SECRET, X_ACCESS_TOKEN and
    /// X_ACCESS_TOKEN_SECRET, and optionally BLUESKY_IDENTIFIER, BLUESKY_APP_PASSWORD and
    /// MASTODON_TOKEN (mode 0600), for what the environment lacks.
    #[arg(long, env = "CREDENTIALS_FILE")]
    pub credentials_file: Option<PathBuf>,

    /// Bluesky PDS root for posting (posts to bluesky need BLUESKY_IDENTIFIER, a handle or
    /// DID, and BLUESKY_APP_PASSWORD).
    #[arg(long, env = "BLUESKY_PDS_URL", default_value = bluesky::DEFAULT_PDS_URL)]
    pub bluesky_pds_url: String,

    /// Mastodon instance root for posting, e.g. https://mastodon.social (posts to mastodon
    /// need it and MASTODON_TOKEN).
    #[arg(long, env = "TWEET_PIPELINE_MASTODON_INSTANCE", value_name = "URL")]
    pub mastodon_url: Option<String>,

    /// Posts more than --catch-up-tolerance-secs past due when first tried (the poster was
    /// down): post them late, or record them as missed.
    #[arg(long, value_enum, default_value_t = CatchUp::MarkMissed)]
    pub catch_up: CatchUp,

    /// How late a post may be and still be posted whatever --catch-up says.
    #[arg(long, default_value_t = 900)]
    pub catch_up_tolerance_secs: u64,

    /// Timeout of one X API call (at most 30); a post whose answer does not come in time is
    /// reconciled.
    #[arg(long, default_value_t = 10)]
    pub http_timeout_secs: u64,

    /// Attempts before a post that keeps getting 5xx is recorded as failed.
    #[arg(long, default_value_t = 8)]
    pub max_attempts: u32,

    /// After an answer was lost, wait this long before reading the account's posts (X may
    /// still be processing the request).
    #[arg(long, default_value_t = 2000)]
    pub reconcile_delay_ms: u64,

    #[command(flatten)]
    pub topics: ScheduleTopics,
}

impl PosterArgs {
    /// The decision rules these flags set.
    pub fn policy(&self) -> Policy {
        Policy {
            catch_up: self.catch_up,
            catch_up_tolerance: i64::try_from(self.catch_up_tolerance_secs)
                .ok()
                .and_then(chrono::Duration::try_seconds)
                .unwrap_or(chrono::Duration::MAX),
            max_attempts: self.max_attempts,
            reconcile_delay: i64::try_from(self.reconcile_delay_ms)
                .ok()
                .and_then(chrono::Duration::try_milliseconds)
                .unwrap_or(chrono::Duration::MAX),
        }
    }
}

/// Counts of one run, for the summary.
#[derive(Debug, Default, Clone)]
pub struct PosterTotals {
    /// Scheduled records read (tombstones included).
    pub records: u64,
    /// Final outcomes written, by outcome.
    pub outcomes: HashMap<&'static str, u64>,
}

/// Rebalance events, handed from librdkafka's callback to the poll loop.
#[derive(Default)]
struct PosterContext {
    log: ClientLog,
    events: Mutex<Vec<(bool, Vec<i32>)>>,
}

impl ClientContext for PosterContext {
    fn log(&self, level: RDKafkaLogLevel, fac: &str, log_message: &str) {
        self.log.log(level, fac, log_message);
    }

    fn error(&self, error: KafkaError, reason: &str) {
        self.log.error(&error, reason);
    }
}

impl ConsumerContext for PosterContext {
    fn post_rebalance(&self, _consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        let (assigned, list) = match rebalance {
            Rebalance::Assign(list) => (true, list),
            Rebalance::Revoke(list) => (false, list),
            Rebalance::Error(error) => {
                tracing::warn!(%error, "rebalance failed");
                return;
            }
        };
        let partitions: Vec<i32> = list.elements().iter().map(|e| e.partition()).collect();
        tracing::info!(assigned, partitions = ?partitions, "poster partitions changed");
        self.events
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push((assigned, partitions));
    }
}

/// A scheduled record, owned: partition, key, value.
type OwnedRecord = (i32, Option<String>, Option<Vec<u8>>);

/// Polls once and copies the record out (so that the consumer is free for the rebalance
/// handling that follows).
fn poll_owned(
    consumer: &BaseConsumer<PosterContext>,
    timeout: Duration,
) -> Option<Result<OwnedRecord, KafkaError>> {
    consumer.poll(timeout).map(|result| {
        result.map(|record| {
            (
                record.partition(),
                record
                    .key()
                    .map(|k| String::from_utf8_lossy(k).into_owned()),
                record.payload().map(<[u8]>::to_vec),
            )
        })
    })
}

/// One post at one destination (key: [`result_key`]).
struct Entry {
    post: ScheduledPost,
    destination: Destination,
    partition: i32,
    state: State,
    attempts: u32,
    attempt_at: Option<DateTime<Utc>>,
}

/// Everything the poll loop owns.
pub struct Poster {
    args: PosterArgs,
    policy: Policy,
    consumer: BaseConsumer<PosterContext>,
    loader: BaseConsumer,
    producer: FutureProducer,
    x: XClient,
    bluesky: Option<BlueskyClient>,
    mastodon: Option<MastodonClient>,
    handle: Handle,
    store: Option<PosterStore>,
    metrics: PosterMetrics,
    instance: String,
    /// Per post and destination, by [`result_key`].
    entries: HashMap<String, Entry>,
    /// Results read at assignment, waiting for their scheduled record (by [`result_key`]).
    loaded: HashMap<String, PostResult>,
    /// Assigned partitions still being read up to this end offset.
    loading: HashMap<i32, i64>,
    assigned: HashSet<i32>,
    /// Per network: its rate limit's reset.
    rate_limited_until: HashMap<Destination, DateTime<Utc>>,
    totals: PosterTotals,
}

impl Poster {
    /// Checks the flags and topics, loads the credentials and subscribes. Call from a thread
    /// outside the async runtime (it blocks); `handle` runs the HTTP calls.
    ///
    /// # Errors
    /// A missing credential, an unreachable broker, a missing topic, mismatched partition
    /// counts, an unopenable store.
    pub fn new(
        args: PosterArgs,
        kafka_args: &KafkaArgs,
        group: &str,
        db: &std::path::Path,
        metrics: PosterMetrics,
        handle: Handle,
    ) -> anyhow::Result<Self> {
        let file = args
            .credentials_file
            .as_deref()
            .map(read_credentials_file)
            .transpose()?;
        let key = |name, what| credential(name, file.as_ref(), what);
        let keys = OAuthKeys {
            consumer_key: key("X_CONSUMER_KEY", "OAuth consumer key (API key)")?,
            consumer_secret: key("X_CONSUMER_SECRET", "OAuth consumer secret")?,
            access_token: key("X_ACCESS_TOKEN", "OAuth access token")?,
            access_token_secret: key("X_ACCESS_TOKEN_SECRET", "OAuth access token secret")?,
        };
        let timeout = Duration::from_secs(args.http_timeout_secs.clamp(1, MAX_HTTP_TIMEOUT_SECS));
        let x = XClient::new(&args.api_url, keys, timeout)?;
        let optional = |name| credential(name, file.as_ref(), name).ok();
        let bluesky = match optional("BLUESKY_IDENTIFIER") {
            Some(identifier) => Some(BlueskyClient::new(
                &args.bluesky_pds_url,
                BlueskyCredentials {
                    identifier: identifier.expose().to_owned(),
                    app_password: key("BLUESKY_APP_PASSWORD", "Bluesky app password")?,
                },
                timeout,
            )?),
            None => None,
        };
        let mastodon = match (optional("MASTODON_TOKEN"), &args.mastodon_url) {
            (Some(token), Some(url)) => Some(MastodonClient::new(url, token, timeout)?),
            (Some(_), None) => anyhow::bail!(
                "MASTODON_TOKEN is set but no instance: pass --mastodon-url (or TWEET_PIPELINE_MASTODON_INSTANCE)"
            ),
            (None, _) => None,
        };
        let instance = format!(
            "tweet-consumer-{group}-{}-{}",
            std::process::id(),
            Utc::now().timestamp_millis()
        );
        let mut config = kafka::consumer_config(kafka_args, group, &instance);
        // Never commit: every assignment reads the schedule from the beginning. A short
        // session lets a crashed instance's partitions move on within seconds.
        config
            .set("enable.auto.commit", "false")
            .set("auto.offset.reset", "earliest")
            .set("session.timeout.ms", "6000")
            .set("heartbeat.interval.ms", "1000")
            .set("max.poll.interval.ms", MAX_POLL_INTERVAL_MS);
        kafka::apply_overrides(&mut config, kafka_args);
        let consumer: BaseConsumer<PosterContext> = config
            .create_with_context(PosterContext::default())
            .context("invalid Kafka consumer configuration (check -X properties)")?;
        let loader: BaseConsumer =
            kafka::consumer_config(kafka_args, &format!("{group}-loader"), &instance)
                .set("enable.auto.commit", "false")
                .create()
                .context("invalid Kafka consumer configuration (check -X properties)")?;
        let mut producer_config = kafka::producer_config(kafka_args, &instance);
        // Each result is awaited before the next step: no reason to linger.
        producer_config.set("linger.ms", "0");
        kafka::apply_overrides(&mut producer_config, kafka_args);
        let producer: FutureProducer = producer_config
            .create()
            .context("invalid Kafka producer configuration (check -X properties)")?;

        let topics = &args.topics;
        kafka::check_topics(
            consumer.client(),
            &kafka_args.bootstrap,
            &[topics.scheduled.as_str(), topics.results.as_str()],
            Duration::from_secs(10),
        )?;
        let scheduled = partitions_of(
            consumer.client(),
            &topics.scheduled,
            Duration::from_secs(10),
        )?;
        let results = partitions_of(consumer.client(), &topics.results, Duration::from_secs(10))?;
        if results.len() < scheduled.len() {
            anyhow::bail!(
                "{} has {} partitions but {} has {}: the results topic needs at least as many (kafka-topics --alter --partitions)",
                topics.results,
                results.len(),
                topics.scheduled,
                scheduled.len()
            );
        }
        let store = match PosterStore::open(db) {
            Ok(store) => Some(store),
            Err(error) => {
                tracing::warn!(%error, db = %db.display(), "cannot open the poster store; outcomes go to the results topic only");
                None
            }
        };
        consumer
            .subscribe(&[topics.scheduled.as_str()])
            .context("subscribing to the scheduled topic")?;
        tracing::info!(
            group,
            scheduled = %topics.scheduled,
            results = %topics.results,
            api = %args.api_url,
            bluesky = bluesky.as_ref().map(BlueskyClient::base_url),
            mastodon = mastodon.as_ref().map(MastodonClient::base_url),
            "poster started"
        );
        Ok(Self {
            policy: args.policy(),
            args,
            consumer,
            loader,
            producer,
            x,
            bluesky,
            mastodon,
            handle,
            store,
            metrics,
            instance,
            entries: HashMap::new(),
            loaded: HashMap::new(),
            loading: HashMap::new(),
            assigned: HashSet::new(),
            rate_limited_until: HashMap::new(),
            totals: PosterTotals::default(),
        })
    }

    /// The poll loop, until `cancel`.
    ///
    /// # Errors
    /// When Kafka does not acknowledge a result (the poster stops rather than post without a
    /// record), or a partition cannot be loaded.
    pub fn run(mut self, cancel: &CancellationToken) -> anyhow::Result<PosterTotals> {
        while !cancel.is_cancelled() {
            let wait = self.next_wake(Utc::now()).min(POLL_INTERVAL);
            let mut message = poll_owned(&self.consumer, wait);
            let now = Utc::now();
            let mut drained = 0;
            loop {
                // Rebalance callbacks run inside poll(): apply them before the record that
                // poll returned, which belongs to the new assignment.
                self.apply_rebalances()?;
                let Some(result) = message else { break };
                match result {
                    Ok((partition, key, value)) => self.on_scheduled(now, partition, key, value),
                    Err(error) => tracing::warn!(%error, "consumer error"),
                }
                drained += 1;
                if drained >= 10_000 {
                    break;
                }
                message = poll_owned(&self.consumer, Duration::ZERO);
            }
            self.check_loaded();
            self.act(Utc::now())?;
            self.metrics.pending_posts.set(
                self.entries
                    .values()
                    .filter(|e| !matches!(e.state, State::Done(_)))
                    .count() as i64,
            );
        }
        let _ = self.producer.flush(ACK_TIMEOUT);
        tracing::info!("poster stopped");
        Ok(self.totals)
    }

    /// How long from `now` until something may be due.
    fn next_wake(&self, now: DateTime<Utc>) -> Duration {
        self.entries
            .values()
            .filter_map(|entry| match self.decide(entry, now) {
                Action::Wait(at) => at,
                _ => Some(now),
            })
            .min()
            .map(|at| (at - now).to_std().unwrap_or(Duration::ZERO))
            .unwrap_or(POLL_INTERVAL)
    }

    /// [`decide`] for `entry` at `now`.
    fn decide(&self, entry: &Entry, now: DateTime<Utc>) -> Action {
        let view = PostView {
            destination: entry.destination,
            state: entry.state,
            attempt_at: entry.attempt_at,
            due_at: entry.post.due_at,
            ready: self.ready(entry.partition),
        };
        let limited = self.rate_limited_until.get(&entry.destination).copied();
        decide(now, &view, limited, &self.policy)
    }

    /// Applies a record of the scheduled topic read at `now`.
    fn on_scheduled(
        &mut self,
        now: DateTime<Utc>,
        partition: i32,
        key: Option<String>,
        value: Option<Vec<u8>>,
    ) {
        self.totals.records += 1;
        let Some(id) = key else {
            tracing::warn!(partition, "scheduled record without a key skipped");
            return;
        };
        let Some(value) = value else {
            for destination in Destination::ALL {
                if let Some(entry) = self.entries.remove(&result_key(&id, destination)) {
                    if !matches!(entry.state, State::Done(_)) {
                        tracing::info!(%id, %destination, "scheduled post cancelled");
                    }
                }
            }
            return;
        };
        let post: ScheduledPost = match serde_json::from_slice(&value) {
            Ok(post) => post,
            Err(error) => {
                tracing::warn!(%id, partition, %error, "unreadable scheduled record skipped");
                return;
            }
        };
        // Destinations no longer listed (the post written again with another --to) are
        // dropped, like a cancellation of that destination.
        for destination in Destination::ALL {
            if !post.destinations.contains(&destination) {
                self.entries.remove(&result_key(&id, destination));
            }
        }
        for &destination in &post.destinations {
            let key = result_key(&id, destination);
            if let Some(entry) = self.entries.get_mut(&key) {
                // The same post written again (a re-run of the same command): keep its state.
                entry.post = post.clone();
                continue;
            }
            let (state, attempts, attempt_at) = match self.loaded.remove(&key) {
                None => (State::Waiting, 0, None),
                Some(result) => (state_on_load(now, &result), result.attempt, Some(result.at)),
            };
            self.entries.insert(
                key,
                Entry {
                    post: post.clone(),
                    destination,
                    partition,
                    state,
                    attempts,
                    attempt_at,
                },
            );
        }
    }

    fn apply_rebalances(&mut self) -> anyhow::Result<()> {
        let events: Vec<(bool, Vec<i32>)> = std::mem::take(
            &mut *self
                .consumer
                .context()
                .events
                .lock()
                .unwrap_or_else(PoisonError::into_inner),
        );
        for (assigned, partitions) in events {
            if !assigned {
                for partition in &partitions {
                    self.assigned.remove(partition);
                    self.loading.remove(partition);
                }
                self.entries
                    .retain(|_, e| !partitions.contains(&e.partition));
                continue;
            }
            let topic = self.args.topics.results.clone();
            let records = read_to_end(&self.loader, &topic, &partitions, ACK_TIMEOUT)
                .with_context(|| format!("cannot load the results of partitions {partitions:?}"))?;
            let mut count = 0;
            for (_, key, value) in records {
                // A bare id is a result written before destinations existed: X's.
                let Some((id, destination)) = parse_result_key(&key) else {
                    continue;
                };
                let key = result_key(id, destination);
                match value.and_then(|v| serde_json::from_slice::<PostResult>(&v).ok()) {
                    Some(mut result) => {
                        result.destination = destination;
                        self.loaded.insert(key, result);
                        count += 1;
                    }
                    None => {
                        self.loaded.remove(&key);
                    }
                }
            }
            for &partition in &partitions {
                let (low, high) = self
                    .consumer
                    .fetch_watermarks(&self.args.topics.scheduled, partition, ACK_TIMEOUT)
                    .context("cannot read the end offsets of the scheduled topic")?;
                self.assigned.insert(partition);
                if high > low {
                    self.loading.insert(partition, high);
                } else {
                    tracing::info!(partition, "partition loaded; posting");
                }
            }
            tracing::info!(partitions = ?partitions, results = count, "partitions loading");
        }
        Ok(())
    }

    fn check_loaded(&mut self) {
        if self.loading.is_empty() {
            return;
        }
        let Ok(positions) = self.consumer.position() else {
            return;
        };
        for element in positions.elements_for_topic(&self.args.topics.scheduled) {
            if let (Offset::Offset(position), Some(end)) =
                (element.offset(), self.loading.get(&element.partition()))
            {
                if position >= *end {
                    tracing::info!(partition = element.partition(), "partition loaded; posting");
                    self.loading.remove(&element.partition());
                }
            }
        }
    }

    fn ready(&self, partition: i32) -> bool {
        self.assigned.contains(&partition) && !self.loading.contains_key(&partition)
    }

    /// Reconciles, marks missed, and posts what [`decide`] says is due at `now`.
    fn act(&mut self, now: DateTime<Utc>) -> anyhow::Result<()> {
        let mut due: Vec<(DateTime<Utc>, String)> = self
            .entries
            .iter()
            .filter(|(_, e)| !matches!(self.decide(e, now), Action::Wait(_)))
            .map(|(id, e)| (e.post.due_at, id.clone()))
            .collect();
        if due.is_empty() {
            return Ok(());
        }
        due.sort();
        due.truncate(MAX_BATCH);
        let ids: Vec<String> = due.into_iter().map(|(_, id)| id).collect();

        // 1. Ambiguous attempts: look for them on the account first.
        let ambiguous: Vec<&String> = ids
            .iter()
            .filter(|id| self.decide(&self.entries[*id], now) == Action::Reconcile)
            .collect();
        let mut outcomes: Vec<PostResult> = Vec::new();
        let mut to_post: Vec<String> = Vec::new();
        let mut not_found: Vec<String> = Vec::new();
        if !ambiguous.is_empty() {
            let since = ambiguous
                .iter()
                .filter_map(|id| self.entries[*id].attempt_at)
                .min()
                .unwrap_or(now)
                - chrono::Duration::seconds(RECONCILE_SLACK_SECS);
            match self.handle.block_on(self.x.recent_posts(since)) {
                Ok(posts) => {
                    let found: HashMap<String, String> = posts
                        .into_iter()
                        .map(|(id, text)| (comparable(&text), id))
                        .collect();
                    for id in ambiguous {
                        let entry = &self.entries[id];
                        match found.get(&comparable(&entry.post.text)) {
                            Some(post_id) => {
                                self.metrics
                                    .reconciliations
                                    .with_label_values(&["true"])
                                    .inc();
                                tracing::info!(%id, post_id, "reconciled: the post is on the account");
                                let mut result = self.result(id, Outcome::Posted, now);
                                result.post_id = Some(post_id.clone());
                                result.reconciled = true;
                                outcomes.push(result);
                            }
                            None => {
                                self.metrics
                                    .reconciliations
                                    .with_label_values(&["false"])
                                    .inc();
                                tracing::info!(%id, "reconciled: not on the account; posting again");
                                not_found.push(id.clone());
                            }
                        }
                    }
                }
                Err(error) => {
                    tracing::warn!(%error, "cannot read the account's posts to reconcile; trying again later");
                    let later = now + self.policy.reconcile_delay;
                    for id in ambiguous {
                        if let Some(entry) = self.entries.get_mut(id) {
                            entry.state = State::Ambiguous(later);
                        }
                    }
                }
            }
        }
        // Certainly not posted: tried again below (or after a rate limit's reset).
        for id in not_found {
            if let Some(entry) = self.entries.get_mut(&id) {
                entry.state = State::RetryAt(now);
            }
        }

        // 2. Catch-up policy for posts never tried; what is left to post. A post reconciled
        // above is still ambiguous here (its outcome is not written yet) and is skipped.
        for id in &ids {
            match self.decide(&self.entries[id], now) {
                Action::Abandon { reason } => {
                    tracing::warn!(%id, %reason, "ambiguous attempt given up");
                    let mut result = self.result(id, Outcome::Failed, now);
                    result.reason = Some(reason);
                    outcomes.push(result);
                }
                Action::Post => match self.unpostable(&self.entries[id]) {
                    Some(reason) => {
                        let mut result = self.result(id, Outcome::Failed, now);
                        result.reason = Some(reason);
                        outcomes.push(result);
                    }
                    None => to_post.push(id.clone()),
                },
                Action::MarkMissed { late_by } => {
                    let mut result = self.result(id, Outcome::Missed, now);
                    result.reason = Some(format!(
                        "due {} s ago when the poster got to it (catch-up tolerance {} s)",
                        late_by.num_seconds(),
                        self.policy.catch_up_tolerance.num_seconds()
                    ));
                    outcomes.push(result);
                }
                Action::Wait(_) | Action::Reconcile => {}
            }
        }
        // `ids` is in (due time, id) order, and so is `to_post`.
        self.write(&outcomes)?;

        if to_post.is_empty() {
            return Ok(());
        }
        // 3. Attempts, acknowledged before any call.
        let attempted_at = Utc::now();
        let attempts: Vec<PostResult> = to_post
            .iter()
            .filter_map(|id| {
                // The entry turns ambiguous in `write`, once the attempt is acknowledged.
                let entry = self.entries.get_mut(id)?;
                entry.attempts += 1;
                entry.attempt_at = Some(attempted_at);
                Some(self.result(id, Outcome::Attempt, attempted_at))
            })
            .collect();
        self.write(&attempts)?;

        // 4. The calls, in due order; each answer recorded.
        let mut answers = Vec::with_capacity(to_post.len());
        let started = std::time::Instant::now();
        for id in &to_post {
            let now = Utc::now();
            let destination = self.entries[id].destination;
            match gate(
                now,
                started.elapsed(),
                BATCH_BUDGET,
                self.rate_limited_until.get(&destination).copied(),
            ) {
                Gate::Defer { retry_at, reason } => {
                    // Not called: certainly not posted. Back to polling (rebalances, heartbeats
                    // of max.poll.interval.ms) before the next call.
                    let mut result = self.result(id, Outcome::Retry, now);
                    result.retry_at = Some(retry_at);
                    result.reason = Some(reason.to_owned());
                    answers.push(result);
                }
                Gate::Send => {
                    let post = self.entries[id].post.clone();
                    let reply = match destination {
                        Destination::X => self.handle.block_on(self.x.create_post(&post.text)),
                        Destination::Bluesky => match &self.bluesky {
                            Some(client) => self.handle.block_on(client.create_post(&post)),
                            None => PostReply::NotSent("no Bluesky client".to_owned()),
                        },
                        Destination::Mastodon => match &self.mastodon {
                            Some(client) => self.handle.block_on(client.create_post(&post)),
                            None => PostReply::NotSent("no Mastodon client".to_owned()),
                        },
                    };
                    answers.push(self.classify(id, reply, Utc::now()));
                }
            }
        }
        self.write(&answers)?;
        Ok(())
    }

    /// Why the entry cannot be posted at all (`None`: it can): its network is not configured,
    /// or its text is too long for it (Bluesky's 300 graphemes; X's limit is checked when
    /// scheduling, Mastodon's is the instance's and answered with a 422).
    fn unpostable(&self, entry: &Entry) -> Option<String> {
        match entry.destination {
            Destination::X => None,
            Destination::Bluesky if self.bluesky.is_none() => Some(
                "no Bluesky account configured: set BLUESKY_IDENTIFIER and BLUESKY_APP_PASSWORD"
                    .to_owned(),
            ),
            Destination::Bluesky => bluesky::check_text(&entry.post.text),
            Destination::Mastodon if self.mastodon.is_none() => Some(
                "no Mastodon account configured: set MASTODON_TOKEN and --mastodon-url".to_owned(),
            ),
            Destination::Mastodon => None,
        }
    }

    /// Turns the network's answer at `now` into the result to record ([`answer`]), counting the
    /// call and holding every post to that network while its rate limit lasts.
    fn classify(&mut self, id: &str, reply: PostReply, now: DateTime<Utc>) -> PostResult {
        let label = match &reply {
            PostReply::Created(_) | PostReply::AlreadyPosted(_) | PostReply::Duplicate => "ok",
            PostReply::RateLimited(_) => "rate_limited",
            PostReply::ServerError(_) => "server_error",
            PostReply::Refused(..) => "client_error",
            PostReply::NotSent(_) => "network",
            PostReply::Ambiguous(_) => "timeout",
        };
        self.metrics.api_calls.with_label_values(&[label]).inc();
        if let PostReply::Ambiguous(error) = &reply {
            tracing::warn!(%id, %error, "the answer to a post was lost; reconciling before any retry");
        }
        let entry = &self.entries[id];
        let destination = entry.destination;
        let verdict = answer(now, reply, entry.attempts, entry.post.due_at, &self.policy);
        if let Some(until) = verdict.rate_limited_until {
            tracing::warn!(%id, %destination, until = %until, "rate limited; waiting for the reset");
            self.rate_limited_until.insert(destination, until);
        }
        let mut result = self.result(id, verdict.outcome, now);
        result.reconciled = verdict.reconciled;
        result.post_id = verdict.post_id;
        result.lateness_seconds = verdict.lateness_seconds;
        result.reason = verdict.reason;
        result.retry_at = verdict.retry_at;
        result
    }

    fn result(&self, id: &str, outcome: Outcome, at: DateTime<Utc>) -> PostResult {
        let entry = &self.entries[id];
        PostResult {
            id: entry.post.id.clone(),
            destination: entry.destination,
            outcome,
            at,
            due_at: entry.post.due_at,
            attempt: entry.attempts,
            post_id: None,
            lateness_seconds: None,
            reason: None,
            retry_at: None,
            reconciled: false,
            by: self.instance.clone(),
        }
    }

    /// Writes results to their post's partition of the results topic, waits for every
    /// acknowledgement, then applies them to memory, the store and the metrics.
    fn write(&mut self, results: &[PostResult]) -> anyhow::Result<()> {
        if results.is_empty() {
            return Ok(());
        }
        let values = results
            .iter()
            .map(serde_json::to_vec)
            .collect::<Result<Vec<_>, _>>()
            .context("serialising a result")?;
        let topic = self.args.topics.results.clone();
        let keys: Vec<String> = results
            .iter()
            .map(|result| result_key(&result.id, result.destination))
            .collect();
        let deliveries: Vec<_> = keys
            .iter()
            .zip(&values)
            .map(|(key, value)| {
                let partition = self.entries[key].partition;
                let record = FutureRecord::to(&topic)
                    .key(key)
                    .payload(value)
                    .partition(partition);
                self.producer.send(record, ACK_TIMEOUT)
            })
            .collect();
        for delivery in deliveries {
            self.handle
                .block_on(delivery)
                .map_err(|(error, _)| error)
                .context(
                "Kafka did not acknowledge a result; stopping rather than posting without a record",
            )?;
        }
        for result in results {
            let Some(entry) = self
                .entries
                .get_mut(&result_key(&result.id, result.destination))
            else {
                continue;
            };
            entry.state = state_after(result, self.policy.reconcile_delay);
            if result.outcome.is_final() {
                *self
                    .totals
                    .outcomes
                    .entry(result.outcome.as_str())
                    .or_default() += 1;
                self.metrics
                    .posts
                    .with_label_values(&[result.outcome.as_str()])
                    .inc();
                if let Some(lateness) = result.lateness_seconds {
                    self.metrics.lateness.observe(lateness.max(0.0));
                }
                tracing::info!(id = %result.id, destination = %result.destination, outcome = result.outcome.as_str(), post_id = ?result.post_id, lateness_s = ?result.lateness_seconds, "scheduled post done");
            }
            if let Some(store) = &self.store {
                if let Err(error) = store.record(&entry.post, result) {
                    tracing::warn!(%error, id = %result.id, destination = %result.destination, "cannot record the outcome in the store");
                }
            }
        }
        Ok(())
    }
}

/// `tweet-consumer --group poster`: on a blocking thread (the poll loop blocks; HTTP calls
/// run on this runtime), checks the flags, topics and credentials, posts until `shutdown`,
/// then cancels the rest of the process (the metrics server) and prints the summary.
///
/// # Errors
/// What [`Poster::new`] and [`Poster::run`] return.
pub async fn run(
    args: PosterArgs,
    kafka_args: KafkaArgs,
    group: String,
    db: PathBuf,
    metrics: PosterMetrics,
    shutdown: CancellationToken,
) -> anyhow::Result<ExitCode> {
    let handle = Handle::current();
    let cancel = shutdown.clone();
    let totals = tokio::task::spawn_blocking(move || {
        let poster = Poster::new(args, &kafka_args, &group, &db, metrics, handle)?;
        poster.run(&cancel)
    })
    .await
    .context("the poster thread panicked")??;
    shutdown.cancel();
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "tweet-consumer summary (poster)");
    let _ = writeln!(
        out,
        "  {:<28}{:>10}",
        "scheduled records read", totals.records
    );
    for outcome in ["posted", "duplicate", "failed", "missed"] {
        let count = totals.outcomes.get(outcome).copied().unwrap_or(0);
        let _ = writeln!(out, "  {:<28}{:>10}", outcome, count);
    }
    Ok(ExitCode::SUCCESS)
}
