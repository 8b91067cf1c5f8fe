//! The at-least-once consumer loop every consumer-group role runs on.
//!
//! Records are polled into batches (up to `batch_max_records`, or whatever arrived within
//! `batch_max_wait` of the first); the role's [`Handler`] makes each batch's side effect
//! durable; only then are the batch's offsets stored, and librdkafka commits stored offsets
//! every second, synchronously on partition revoke (rebalance) and at shutdown. A crash
//! therefore re-delivers at most the uncommitted tail, which idempotent handlers absorb.
//! Partitions are processed in order: one thread, batches in poll order.
//!
//! The loop runs on its own thread (`BaseConsumer`): analysis is CPU work and SQLite blocks,
//! neither belongs on the async reactor.

use std::time::{Duration, Instant};

use rdkafka::config::RDKafkaLogLevel;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance};
use rdkafka::error::{KafkaError, KafkaResult, RDKafkaErrorCode};
use rdkafka::message::{BorrowedMessage, Message};
use rdkafka::statistics::Statistics;
use rdkafka::{ClientContext, Offset, TopicPartitionList};
use tokio_util::sync::CancellationToken;
use tweet_pipeline_common::backoff::{Backoff, BackoffPolicy};
use tweet_pipeline_common::kafka::ClientLog;

pub mod lag;
pub mod membership;
pub mod outputs;

use self::lag::LagGauge;

/// How long one poll waits when nothing arrives (also how quickly shutdown is noticed).
const POLL_TIMEOUT: Duration = Duration::from_millis(200);
/// Waits between retries of a failing batch: 100 ms, doubling, at most 5 s.
const RETRY_BACKOFF: BackoffPolicy =
    BackoffPolicy::exponential(Duration::from_millis(100), Duration::from_secs(5));
/// Timeout of the metadata requests made by the end-of-partitions check.
const WATERMARK_TIMEOUT: Duration = Duration::from_secs(5);

/// Makes a batch's side effect durable.
pub trait Handler {
    /// Processes `batch` (records in poll order) durably. An error means nothing durable
    /// happened that cannot be repeated: the same batch is offered again after a backoff,
    /// and its offsets are not stored until it succeeds.
    fn handle(&mut self, batch: &[BorrowedMessage<'_>]) -> anyhow::Result<()>;

    /// `true` for a handler whose side effect is durable only later than `handle` returning
    /// (the archive: records sit in an open file until it is fsynced and renamed). The runner
    /// then stores no offsets after `handle` and stores only what [`Handler::durable`] reports.
    fn defers_durability(&self) -> bool {
        false
    }

    /// For a handler that [defers durability](Handler::defers_durability): called after each
    /// batch and each idle poll with `finish = false` (make durable what is due, e.g. files
    /// past their age), and once before the final commit with `finish = true` (make
    /// everything durable now). Returns the last offset made durable per partition since the
    /// previous call. An error stores nothing; the call is repeated at the next opportunity.
    fn durable(&mut self, finish: bool) -> anyhow::Result<Vec<DurableOffset>> {
        let _ = finish;
        Ok(Vec::new())
    }
}

/// The last offset of a partition whose record (and every earlier one) is durable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DurableOffset {
    /// Topic name.
    pub topic: String,
    /// Partition number.
    pub partition: i32,
    /// Offset of the last durable record (the committed position becomes this + 1).
    pub offset: i64,
}

/// Stores the offsets a deferring handler reports durable.
fn store_durable<C: ConsumerContext, H: Handler>(
    consumer: &BaseConsumer<C>,
    handler: &mut H,
    finish: bool,
) {
    if !handler.defers_durability() {
        return;
    }
    match handler.durable(finish) {
        Ok(offsets) => {
            for durable in offsets {
                // `rd_kafka_offset_store` stores offset + 1, as for a message.
                if let Err(error) =
                    consumer.store_offset(&durable.topic, durable.partition, durable.offset)
                {
                    tracing::debug!(topic = durable.topic, partition = durable.partition, %error, "offset not stored");
                }
            }
        }
        Err(error) => tracing::error!(
            error = format!("{error:#}"),
            "making records durable failed; offsets not stored, retrying"
        ),
    }
}

/// Batching and stopping.
#[derive(Debug, Clone)]
pub struct RunnerConfig {
    /// Most records per batch.
    pub batch_max_records: usize,
    /// Longest wait, after a batch's first record, for more records.
    pub batch_max_wait: Duration,
    /// Stop once every assigned partition has been read to its end (like `kcat -e`).
    pub exit_at_end: bool,
}

/// Counts of one run.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct RunStats {
    /// Records handled (and whose offsets were stored).
    pub records: u64,
    /// Batches handled.
    pub batches: u64,
    /// Failed attempts that were retried.
    pub retries: u64,
}

/// Consumer context: commits stored offsets synchronously before partitions are revoked, so
/// the next owner starts exactly after what this instance made durable; with a [`LagGauge`],
/// turns librdkafka's statistics into the consumer lag metric.
#[derive(Debug, Default)]
pub struct RebalanceContext {
    log: ClientLog,
    lag: Option<LagGauge>,
}

impl RebalanceContext {
    /// A context that also reports consumer lag (needs `statistics.interval.ms`, see
    /// [`lag::enable_statistics`]).
    pub fn with_lag(lag: LagGauge) -> Self {
        Self {
            lag: Some(lag),
            ..Self::default()
        }
    }
}

impl ClientContext for RebalanceContext {
    fn log(&self, level: RDKafkaLogLevel, fac: &str, log_message: &str) {
        self.log.log(level, fac, log_message);
    }

    fn error(&self, error: KafkaError, reason: &str) {
        self.log.error(&error, reason);
    }

    fn stats(&self, statistics: Statistics) {
        if let Some(lag) = &self.lag {
            lag.record(&statistics);
        }
    }
}

impl ConsumerContext for RebalanceContext {
    fn pre_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Revoke(partitions) = rebalance {
            tracing::info!(partitions = %describe(partitions), "partitions revoked; committing stored offsets");
            commit_sync(consumer);
        }
    }

    fn post_rebalance(&self, _consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        match rebalance {
            Rebalance::Assign(partitions) => {
                tracing::info!(partitions = %describe(partitions), "partitions assigned");
            }
            Rebalance::Error(error) => tracing::warn!(%error, "rebalance failed"),
            Rebalance::Revoke(_) => {}
        }
    }

    fn commit_callback(&self, result: KafkaResult<()>, _offsets: &TopicPartitionList) {
        match result {
            Ok(()) | Err(KafkaError::ConsumerCommit(RDKafkaErrorCode::NoOffset)) => {}
            Err(error) => {
                tracing::warn!(%error, "offset commit failed; it is retried with the next commit")
            }
        }
    }
}

fn describe(partitions: &TopicPartitionList) -> String {
    partitions
        .elements()
        .iter()
        .map(|e| format!("{}[{}]", e.topic(), e.partition()))
        .collect::<Vec<_>>()
        .join(",")
}

/// Commits the stored offsets synchronously; "nothing to commit" is not an error.
pub fn commit_sync<C: ConsumerContext>(consumer: &BaseConsumer<C>) {
    match consumer.commit_consumer_state(CommitMode::Sync) {
        Ok(()) | Err(KafkaError::ConsumerCommit(RDKafkaErrorCode::NoOffset)) => {}
        Err(error) => tracing::warn!(%error, "synchronous offset commit failed"),
    }
}

/// Runs the loop until `cancel` fires (or, with `exit_at_end`, until every assigned partition
/// is read to its end), then commits stored offsets synchronously.
///
/// # Errors
/// A fatal client error (librdkafka INTRODUCTION.md "Fatal consumer errors"), e.g. this
/// static member fenced by another instance that joined with the same `group.instance.id`.
/// Other poll errors are logged and retried, handler errors are retried with backoff.
pub fn run<C: ConsumerContext, H: Handler>(
    consumer: &BaseConsumer<C>,
    handler: &mut H,
    config: &RunnerConfig,
    cancel: &CancellationToken,
) -> anyhow::Result<RunStats> {
    let mut stats = RunStats::default();
    let mut batch: Vec<BorrowedMessage<'_>> = Vec::with_capacity(config.batch_max_records);
    while !cancel.is_cancelled() {
        collect_batch(consumer, config, &mut batch)?;
        if batch.is_empty() {
            store_durable(consumer, handler, false);
            if config.exit_at_end && at_end(consumer) {
                tracing::info!(
                    records = stats.records,
                    "every assigned partition read to its end"
                );
                break;
            }
            continue;
        }
        let mut backoff = Backoff::new(RETRY_BACKOFF);
        loop {
            match handler.handle(&batch) {
                Ok(()) => break,
                Err(error) => {
                    stats.retries += 1;
                    let first = &batch[0];
                    tracing::error!(
                        topic = first.topic(),
                        partition = first.partition(),
                        offset = first.offset(),
                        records = batch.len(),
                        error = format!("{error:#}"),
                        "batch failed; offsets not stored, retrying"
                    );
                    if cancel.is_cancelled() {
                        // Not stored, so not lost: the next run starts at this batch again.
                        store_durable(consumer, handler, true);
                        commit_sync(consumer);
                        return Ok(stats);
                    }
                    std::thread::sleep(backoff.next_delay());
                }
            }
        }
        if !handler.defers_durability() {
            for message in &batch {
                // Fails only for partitions no longer assigned (revoked mid-batch): their next
                // owner re-processes those records, which the idempotent handler absorbs.
                if let Err(error) = consumer.store_offset_from_message(message) {
                    tracing::debug!(topic = message.topic(), partition = message.partition(), %error, "offset not stored");
                }
            }
        }
        stats.records += batch.len() as u64;
        stats.batches += 1;
        tracing::debug!(records = batch.len(), total = stats.records, "batch stored");
        batch.clear();
        store_durable(consumer, handler, false);
    }
    store_durable(consumer, handler, true);
    commit_sync(consumer);
    Ok(stats)
}

fn collect_batch<'c, C: ConsumerContext>(
    consumer: &'c BaseConsumer<C>,
    config: &RunnerConfig,
    batch: &mut Vec<BorrowedMessage<'c>>,
) -> anyhow::Result<()> {
    let mut deadline = None;
    while batch.len() < config.batch_max_records {
        let timeout = match deadline {
            None => POLL_TIMEOUT,
            Some(deadline) => {
                let left = deadline - Instant::now().min(deadline);
                if left.is_zero() {
                    break;
                }
                left
            }
        };
        match consumer.poll(timeout) {
            None => break,
            Some(Ok(message)) => {
                deadline.get_or_insert_with(|| Instant::now() + config.batch_max_wait);
                batch.push(message);
            }
            Some(Err(error)) => {
                if let Some((code, reason)) = consumer.client().fatal_error() {
                    return Err(membership::explain_fatal(code, &reason));
                }
                tracing::warn!(%error, "consumer poll error");
                break;
            }
        }
    }
    Ok(())
}

/// Whether every assigned partition has been consumed to its high watermark.
///
/// Uses the high watermarks that fetch responses cache in the client where there are any, so
/// the check costs no request while records flow; a partition without one (nothing fetched
/// yet) costs a ListOffsets request, and one without a position an OffsetFetch.
fn at_end<C: ConsumerContext>(consumer: &BaseConsumer<C>) -> bool {
    let assignment = match consumer.assignment() {
        Ok(assignment) if assignment.count() > 0 => assignment,
        _ => return false,
    };
    let Ok(positions) = consumer.position() else {
        return false;
    };
    let mut committed = None;
    assignment.elements().iter().all(|element| {
        let (topic, partition) = (element.topic(), element.partition());
        // A ListOffsets request waits behind the connection's long-polling fetch (up to
        // fetch.wait.max.ms, 500 ms); the cached high watermark is free and as fresh as the
        // last fetch response.
        let fetched = || {
            consumer
                .fetch_watermarks(topic, partition, WATERMARK_TIMEOUT)
                .ok()
        };
        let Some(high) = cached_high_watermark(consumer, topic, partition)
            .or_else(|| fetched().map(|(_, high)| high))
        else {
            return false;
        };
        let position = positions
            .find_partition(topic, partition)
            .map(|e| e.offset());
        let next = match position {
            Some(Offset::Offset(offset)) => offset,
            _ => {
                let committed = committed.get_or_insert_with(|| {
                    consumer
                        .committed_offsets(assignment.clone(), WATERMARK_TIMEOUT)
                        .ok()
                });
                match committed
                    .as_ref()
                    .and_then(|c| c.find_partition(topic, partition))
                    .map(|e| e.offset())
                {
                    Some(Offset::Offset(offset)) => offset,
                    // Nothing consumed or committed: reading starts at the log start.
                    _ => match fetched() {
                        Some((low, _)) => low,
                        None => return false,
                    },
                }
            }
        };
        next >= high
    })
}

/// The high watermark librdkafka cached from the last fetch response for a partition
/// (`rd_kafka_get_watermark_offsets`, librdkafka rdkafka.h), without a request; `None` when
/// no fetch response has been seen for the partition yet.
fn cached_high_watermark<C: ConsumerContext>(
    consumer: &BaseConsumer<C>,
    topic: &str,
    partition: i32,
) -> Option<i64> {
    let topic = std::ffi::CString::new(topic).ok()?;
    let (mut low, mut high) = (-1001_i64, -1001_i64);
    // SAFETY: the client pointer is valid for the consumer's lifetime, `topic` is a valid
    // NUL-terminated string for the duration of the call, and `low`/`high` are valid out
    // pointers; the function only reads client state under its own locks.
    let error = unsafe {
        rdkafka::bindings::rd_kafka_get_watermark_offsets(
            consumer.client().native_ptr(),
            topic.as_ptr(),
            partition,
            &mut low,
            &mut high,
        )
    };
    (error == rdkafka::bindings::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR_NO_ERROR && high >= 0)
        .then_some(high)
}

/// Creates group `group`'s consumer, joining as `membership` says (with `instance_id` as its
/// `group.instance.id` when static), with the lag gauge (`lag`) fed from librdkafka's
/// statistics, and checks at start that `topics` exist.
///
/// # Errors
/// An invalid client configuration (`-X`), or a topic missing on the broker.
pub fn create_consumer(
    kafka: &tweet_pipeline_common::config::KafkaArgs,
    group: &str,
    membership: membership::Membership,
    instance_id: Option<&str>,
    lag: LagGauge,
    topics: &[&str],
) -> anyhow::Result<BaseConsumer<RebalanceContext>> {
    use anyhow::Context as _;
    let client_id = format!("tweet-consumer-{group}");
    let mut client_config = tweet_pipeline_common::kafka::consumer_config(kafka, group, &client_id);
    membership::apply(&mut client_config, membership, instance_id, group);
    lag::enable_statistics(&mut client_config);
    let consumer: BaseConsumer<RebalanceContext> = client_config
        .create_with_context(RebalanceContext::with_lag(lag))
        .context("invalid Kafka consumer configuration (check -X properties)")?;
    tweet_pipeline_common::kafka::check_topics(
        consumer.client(),
        &kafka.bootstrap,
        topics,
        Duration::from_secs(10),
    )?;
    Ok(consumer)
}

/// On the consumer's own blocking thread: makes the handler (a store connection is opened
/// there: the synchronous PostgreSQL client runs its own runtime and must not be used, or
/// dropped, on the async reactor), subscribes, runs until shutdown (or the end, with
/// `--exit-at-end`) and returns `summary` of the handler; then cancels the rest of the process
/// (the metrics server).
///
/// # Errors
/// When the handler cannot be made, subscribing fails, the loop fails, or its thread panics.
pub async fn run_handler<H, T>(
    consumer: BaseConsumer<RebalanceContext>,
    topics: &[&str],
    make: impl FnOnce() -> anyhow::Result<H> + Send + 'static,
    summary: impl FnOnce(H) -> T + Send + 'static,
    config: RunnerConfig,
    shutdown: &CancellationToken,
) -> anyhow::Result<(RunStats, T)>
where
    H: Handler,
    T: Send + 'static,
{
    use anyhow::Context as _;
    let cancel = shutdown.clone();
    let topics: Vec<String> = topics.iter().map(|t| (*t).to_owned()).collect();
    let result = tokio::task::spawn_blocking(move || {
        let mut handler = make()?;
        let topics: Vec<&str> = topics.iter().map(String::as_str).collect();
        consumer
            .subscribe(&topics)
            .context("subscribing to the topics")?;
        let stats = run(&consumer, &mut handler, &config, &cancel);
        drop(consumer);
        stats.map(|stats| (stats, summary(handler)))
    })
    .await
    .context("the consumer thread panicked")??;
    shutdown.cancel();
    Ok(result)
}
