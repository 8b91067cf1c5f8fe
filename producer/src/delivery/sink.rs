//! Delivery to Kafka: one idempotent producer, every record accounted for.
//!
//! A record counts as sent only when the broker acknowledged it (the delivery callback says
//! so). Memory is bounded by librdkafka's local queue (`queue.buffering.max.kbytes`). When the
//! queue stays full for `spill_after` (the broker is unreachable or slow), records go to the
//! on-disk [`Spool`] instead, and from then on every new record goes there too until a drainer
//! thread has handed the spool back to Kafka, so order is kept. A record librdkafka gives up on
//! (its retries or `message.timeout.ms` exhausted) goes to the spool as well, never lost. A
//! full spool pauses reading (backpressure) and says so. At the end, [`KafkaSink::finish`]
//! drains, flushes, moves whatever Kafka did not acknowledge in time to the spool, and reports.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use rdkafka::config::RDKafkaLogLevel;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header, Headers, Message, OwnedHeaders};
use rdkafka::producer::{
    BaseRecord, DeliveryResult, Producer, ProducerContext, PurgeConfig, ThreadedProducer,
};
use rdkafka::ClientContext;
use tweet_pipeline_common::config::{KafkaArgs, TopicNames};
use tweet_pipeline_common::kafka::ClientLog;
use tweet_pipeline_common::metrics::ProducerMetrics;
use tweet_pipeline_common::{headers, kafka, Destination, Kind};

use crate::spool::{RecordRef, Spool, SpoolConfig, SpoolError, SpooledRecord};

/// How long a full local queue is waited on before the send is tried again.
const QUEUE_FULL_BACKOFF: Duration = Duration::from_millis(5);
/// How long reading pauses before trying a full spool again.
const SPOOL_FULL_BACKOFF: Duration = Duration::from_millis(50);
/// How long the drainer waits for room in the local queue.
const DRAIN_BACKOFF: Duration = Duration::from_millis(10);
/// How long the drainer sleeps when the spool is empty (it is also woken on every append).
const DRAIN_IDLE: Duration = Duration::from_millis(200);

/// Per-destination delivery counts.
#[derive(Debug, Default)]
struct Tally {
    enqueued: [AtomicU64; 4],
    acked: [AtomicU64; 4],
    failed: [AtomicU64; 4],
    /// Handed to librdkafka, then given up on by it and moved to the spool.
    returned: [AtomicU64; 4],
}

fn slot(destination: Destination) -> usize {
    match destination {
        Destination::Tweets => 0,
        Destination::Retweets => 1,
        Destination::Control => 2,
        Destination::DeadLetter => 3,
    }
}

fn kind_at(kind_index: usize) -> Kind {
    Kind::ALL.get(kind_index).copied().unwrap_or(Kind::Unknown)
}

/// Delivery errors that sending again cannot fix: the record itself is refused.
fn is_permanent(error: &KafkaError) -> bool {
    matches!(
        error.rdkafka_error_code(),
        Some(
            RDKafkaErrorCode::MessageSizeTooLarge
                | RDKafkaErrorCode::InvalidMessageSize
                | RDKafkaErrorCode::InvalidMessage
                | RDKafkaErrorCode::InvalidRecord
                | RDKafkaErrorCode::TopicAuthorizationFailed
                | RDKafkaErrorCode::ClusterAuthorizationFailed
                | RDKafkaErrorCode::InvalidRequiredAcks
                | RDKafkaErrorCode::InvalidTopic
        )
    )
}

/// The spool and what waits beside it, behind one lock (the order of records is decided here).
struct SpoolSlot {
    spool: Spool,
    /// Records librdkafka gave up on while the spool was full: at most what its bounded queue
    /// held. Sent before the spool, since they are older.
    overflow: VecDeque<SpooledRecord>,
}

impl SpoolSlot {
    /// Whether records wait outside Kafka (new records must queue behind them).
    fn active(&self) -> bool {
        !self.spool.is_empty() || !self.overflow.is_empty()
    }
}

/// State shared by the sending side, the delivery callback and the drainer thread.
struct SpoolShared {
    /// `None` when the spool is off (`--spool-max-bytes 0`).
    slot: Option<Mutex<SpoolSlot>>,
    /// Wakes the drainer after an append.
    wake: Condvar,
    /// Set by [`KafkaSink::finish`]: drain what is left, until the deadline, then stop.
    stop_at: Mutex<Option<Instant>>,
    /// A "spool full" episode was reported (reset by the next successful append).
    full_reported: AtomicBool,
    metrics: ProducerMetrics,
}

impl SpoolShared {
    fn lock(&self) -> Option<MutexGuard<'_, SpoolSlot>> {
        // A panic while holding the lock is a bug; the spool on disk stays consistent, so go on.
        self.slot
            .as_ref()
            .map(|m| m.lock().unwrap_or_else(|poisoned| poisoned.into_inner()))
    }

    fn update_gauges(&self, spool: &Spool) {
        self.metrics.spool_bytes.set(spool.pending_bytes() as i64);
        self.metrics.spool_records.set(spool.records() as i64);
    }

    /// Appends to the spool and counts it; reports a full spool once per episode.
    fn append<H: Headers>(
        &self,
        slot: &mut SpoolSlot,
        record: &RecordRef<'_, H>,
        reason: &'static str,
    ) -> Result<(), SpoolError> {
        let was_empty = slot.spool.is_empty();
        match slot.spool.append(record) {
            Ok(()) => {
                self.metrics
                    .spooled_records
                    .with_label_values(&[reason])
                    .inc();
                self.update_gauges(&slot.spool);
                if was_empty {
                    tracing::warn!(
                        reason,
                        "Kafka is not taking records; spooling to disk until it does"
                    );
                }
                if self.full_reported.swap(false, Ordering::Relaxed) {
                    tracing::warn!("the spool has room again; reading resumed");
                }
                self.wake.notify_one();
                Ok(())
            }
            Err(error @ SpoolError::Full { .. }) => {
                self.metrics.spool_full_waits.inc();
                if !self.full_reported.swap(true, Ordering::Relaxed) {
                    tracing::error!(
                        %error,
                        "spool full: reading is paused until Kafka takes records again; nothing is dropped, but a live stream may disconnect us (raise --spool-max-bytes or bring the broker back)"
                    );
                }
                Err(error)
            }
            Err(error) => Err(error),
        }
    }
}

/// Receives librdkafka's delivery reports (on the producer's polling thread).
struct DeliveryContext {
    tally: Arc<Tally>,
    metrics: ProducerMetrics,
    spool: Arc<SpoolShared>,
    log: ClientLog,
}

impl ClientContext for DeliveryContext {
    fn log(&self, level: RDKafkaLogLevel, fac: &str, log_message: &str) {
        self.log.log(level, fac, log_message);
    }

    fn error(&self, error: KafkaError, reason: &str) {
        self.log.error(&error, reason);
    }
}

impl ProducerContext for DeliveryContext {
    /// The index of the record's [`Kind`] in [`Kind::ALL`].
    type DeliveryOpaque = usize;

    fn delivery(&self, result: &DeliveryResult<'_>, kind_index: usize) {
        let kind = kind_at(kind_index);
        let destination = kind.destination();
        self.metrics.in_flight_records.dec();
        let (error, message) = match result {
            Ok(_) => {
                self.tally.acked[slot(destination)].fetch_add(1, Ordering::Relaxed);
                self.metrics
                    .records_sent
                    .with_label_values(&[destination.as_str(), kind.as_str()])
                    .inc();
                return;
            }
            Err((error, message)) => (error, message),
        };
        if !is_permanent(error) {
            if let Some(mut guard) = self.spool.lock() {
                let reason = match error.rdkafka_error_code() {
                    Some(RDKafkaErrorCode::PurgeQueue | RDKafkaErrorCode::PurgeInflight) => {
                        "shutdown"
                    }
                    _ => "delivery_failed",
                };
                let record = RecordRef {
                    topic: message.topic(),
                    kind_index: kind_index as u8,
                    timestamp_ms: message
                        .timestamp()
                        .to_millis()
                        .unwrap_or_else(headers::now_ms),
                    key: message.key(),
                    headers: message.headers(),
                    payload: message.payload().unwrap_or_default(),
                };
                let kept = match self.spool.append(&mut guard, &record, reason) {
                    Ok(()) => true,
                    // Blocking here would stop every delivery report; the overflow is bounded
                    // by librdkafka's queue, which is where these records came from.
                    Err(SpoolError::Full { .. }) => {
                        guard.overflow.push_back(SpooledRecord::from_ref(&record));
                        true
                    }
                    Err(spool_error) => {
                        tracing::error!(topic = message.topic(), %error, spool_error = %spool_error, "a record Kafka did not acknowledge could not be spooled either; it is lost");
                        false
                    }
                };
                if kept {
                    self.tally.returned[slot(destination)].fetch_add(1, Ordering::Relaxed);
                    tracing::debug!(topic = message.topic(), %error, "record not acknowledged; spooled to send again");
                    return;
                }
            }
        }
        self.tally.failed[slot(destination)].fetch_add(1, Ordering::Relaxed);
        self.metrics
            .delivery_failures
            .with_label_values(&[destination.as_str()])
            .inc();
        tracing::error!(
            topic = message.topic(),
            key = message.key().and_then(|k| std::str::from_utf8(k).ok()),
            kind = kind.as_str(),
            %error,
            "record refused by Kafka; it is lost unless the source is replayed"
        );
    }
}

/// One record to write: the line's exact bytes and its routing.
#[derive(Debug, Clone, Copy)]
pub struct OutRecord<'a> {
    /// The record value: the line as received, without its terminator.
    pub payload: &'a [u8],
    /// The record key (post id), if any.
    pub key: Option<&'a str>,
    /// The message kind; decides the topic.
    pub kind: Kind,
    /// Why the line is dead-lettered (the `error` header), if it is.
    pub error: Option<&'a str>,
    /// Comma-separated tags of the v2 rules that matched (the `matching_rules` header).
    pub rule_tags: Option<&'a str>,
    /// Value of the `source` header.
    pub source: &'a str,
    /// When the line was received, milliseconds since the Unix epoch.
    pub received_at_ms: i64,
}

/// Delivery counts after [`KafkaSink::finish`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryReport {
    /// Records handed to Kafka, per destination in [`Destination::ALL`] order (a record sent
    /// again from the spool counts each time).
    pub enqueued: [u64; 4],
    /// Records acknowledged by the broker, per destination.
    pub acked: [u64; 4],
    /// Records refused for good (too large, not authorised, ...), per destination: lost.
    pub failed: [u64; 4],
    /// Records Kafka gave up on that went to the spool to be sent again, per destination.
    pub returned: [u64; 4],
    /// Records waiting in the spool at the end (on disk; sent at the next start).
    pub spooled_left: u64,
    /// Records that were in the spool when the producer started.
    pub spooled_at_start: u64,
}

impl DeliveryReport {
    /// Records neither acknowledged, failed nor returned to the spool: still queued in memory
    /// when the producer stopped (lost with the process).
    pub fn unacknowledged(&self) -> u64 {
        let sum = |counts: &[u64; 4]| counts.iter().sum::<u64>();
        sum(&self.enqueued)
            .saturating_sub(sum(&self.acked) + sum(&self.failed) + sum(&self.returned))
    }

    /// Lost records: refused for good, or unacknowledged in memory at exit.
    pub fn not_delivered(&self) -> u64 {
        self.failed.iter().sum::<u64>() + self.unacknowledged()
    }
}

/// When records go to the on-disk spool.
#[derive(Debug, Clone)]
pub struct SpoolSettings {
    /// The spool; `None` turns it off (a full queue then only pauses reading).
    pub config: Option<SpoolConfig>,
    /// How long librdkafka's queue must stay full before records are spooled.
    pub spill_after: Duration,
}

/// The producer side of the pipeline: writes routed lines to their topics.
pub struct KafkaSink {
    producer: Arc<ThreadedProducer<DeliveryContext>>,
    topics: TopicNames,
    tally: Arc<Tally>,
    metrics: ProducerMetrics,
    spool: Arc<SpoolShared>,
    spill_after: Duration,
    drainer: Option<JoinHandle<()>>,
    spooled_at_start: u64,
}

impl KafkaSink {
    /// Opens the spool, creates the idempotent producer, checks with a metadata request that
    /// the broker is reachable and every topic exists, and starts the drainer (which first
    /// sends what a previous run left in the spool).
    ///
    /// # Errors
    /// When the spool cannot be opened (in use by another producer, unreadable, corrupt), the
    /// configuration is invalid, the broker does not answer within `metadata_timeout`, or a
    /// topic is missing (the message says how to create it).
    pub fn connect(
        kafka: &KafkaArgs,
        topics: TopicNames,
        metrics: ProducerMetrics,
        metadata_timeout: Duration,
        spool: SpoolSettings,
    ) -> anyhow::Result<Self> {
        let opened = match &spool.config {
            None => None,
            Some(config) => Some(Spool::open(config.clone()).with_context(|| {
                format!(
                    "cannot open the spool in {} (give each producer its own --spool-dir; move a corrupt segment aside)",
                    config.dir.display()
                )
            })?),
        };
        let spooled_at_start = opened.as_ref().map_or(0, Spool::records);
        metrics
            .spool_capacity_bytes
            .set(opened.as_ref().map_or(0, |s| s.max_bytes() as i64));
        let shared = Arc::new(SpoolShared {
            slot: opened.map(|spool| {
                Mutex::new(SpoolSlot {
                    spool,
                    overflow: VecDeque::new(),
                })
            }),
            wake: Condvar::new(),
            stop_at: Mutex::new(None),
            full_reported: AtomicBool::new(false),
            metrics: metrics.clone(),
        });
        if let Some(slot) = shared.lock() {
            shared.update_gauges(&slot.spool);
        }
        let tally = Arc::new(Tally::default());
        let context = DeliveryContext {
            tally: Arc::clone(&tally),
            metrics: metrics.clone(),
            spool: Arc::clone(&shared),
            log: ClientLog::default(),
        };
        let producer: ThreadedProducer<DeliveryContext> =
            kafka::producer_config(kafka, "tweet-producer")
                .create_with_context(context)
                .context("invalid Kafka producer configuration (check -X properties)")?;
        let names: Vec<&str> = Destination::ALL.iter().map(|d| topics.name(*d)).collect();
        kafka::check_topics(
            producer.client(),
            &kafka.bootstrap,
            &names,
            metadata_timeout,
        )?;
        let producer = Arc::new(producer);
        if spooled_at_start > 0 {
            tracing::info!(
                records = spooled_at_start,
                "sending the records a previous run left in the spool first"
            );
        }
        let drainer = match shared.slot {
            None => None,
            Some(_) => {
                let (shared, producer, tally) = (
                    Arc::clone(&shared),
                    Arc::clone(&producer),
                    Arc::clone(&tally),
                );
                Some(
                    std::thread::Builder::new()
                        .name("spool-drainer".to_owned())
                        .spawn(move || drain(&shared, &producer, &tally))
                        .context("cannot start the spool drainer thread")?,
                )
            }
        };
        Ok(Self {
            producer,
            topics,
            tally,
            metrics,
            spool: shared,
            spill_after: spool.spill_after,
            drainer,
            spooled_at_start,
        })
    }

    /// Hands one record to Kafka, or to the spool while Kafka does not take records. Waits
    /// while the local queue is full (up to `spill_after`) and while the spool is full.
    /// Blocking: call it from a blocking thread, not from the async reactor.
    ///
    /// # Errors
    /// When librdkafka refuses the record for a reason other than a full queue (e.g. it exceeds
    /// `message.max.bytes`); the record is counted as failed.
    pub fn send_blocking(&self, record: &OutRecord<'_>) -> Result<(), KafkaError> {
        let destination = record.kind.destination();
        let kind_index = Kind::ALL
            .iter()
            .position(|k| *k == record.kind)
            .expect("Kind::ALL holds every kind");
        let received = record.received_at_ms.to_string();
        let mut headers = OwnedHeaders::new_with_capacity(5)
            .insert(Header {
                key: headers::KIND,
                value: Some(record.kind.as_str()),
            })
            .insert(Header {
                key: headers::SOURCE,
                value: Some(record.source),
            })
            .insert(Header {
                key: headers::RECEIVED_AT_MS,
                value: Some(&received),
            });
        if let Some(error) = record.error {
            headers = headers.insert(Header {
                key: headers::ERROR,
                value: Some(error),
            });
        }
        if let Some(tags) = record.rule_tags {
            headers = headers.insert(Header {
                key: headers::MATCHING_RULES,
                value: Some(tags),
            });
        }
        let mut base = BaseRecord::with_opaque_to(self.topics.name(destination), kind_index)
            .payload(record.payload)
            .headers(headers)
            .timestamp(record.received_at_ms);
        if let Some(key) = record.key {
            base = base.key(key);
        }
        let mut queue_full_since: Option<Instant> = None;
        loop {
            let mut guard = self.spool.lock();
            // Records wait in the spool: this one queues behind them, so order is kept.
            let behind_spool = guard.as_ref().is_some_and(|g| g.active());
            if !behind_spool {
                match self.producer.send(base) {
                    Ok(()) => {
                        self.tally.enqueued[slot(destination)].fetch_add(1, Ordering::Relaxed);
                        self.metrics.in_flight_records.inc();
                        return Ok(());
                    }
                    Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), returned)) => {
                        base = returned;
                        let since = *queue_full_since.get_or_insert_with(Instant::now);
                        if guard.is_none() || since.elapsed() < self.spill_after {
                            drop(guard);
                            self.metrics.queue_full_waits.inc();
                            std::thread::sleep(QUEUE_FULL_BACKOFF);
                            continue;
                        }
                    }
                    Err((error, _)) => {
                        self.tally.enqueued[slot(destination)].fetch_add(1, Ordering::Relaxed);
                        self.tally.failed[slot(destination)].fetch_add(1, Ordering::Relaxed);
                        self.metrics
                            .delivery_failures
                            .with_label_values(&[destination.as_str()])
                            .inc();
                        return Err(error);
                    }
                }
            }
            let spool_slot = guard.as_mut().expect("spilling needs a spool");
            let spooled = RecordRef {
                topic: base.topic,
                kind_index: kind_index as u8,
                timestamp_ms: record.received_at_ms,
                key: record.key.map(str::as_bytes),
                headers: base.headers.as_ref(),
                payload: record.payload,
            };
            match self.spool.append(spool_slot, &spooled, "queue_full") {
                Ok(()) => return Ok(()),
                Err(SpoolError::Full { .. }) => {}
                Err(error) => {
                    tracing::error!(%error, "cannot write to the spool; reading is paused until it works or Kafka takes records again");
                }
            }
            drop(guard);
            std::thread::sleep(SPOOL_FULL_BACKOFF);
        }
    }

    /// Drains the spool into Kafka and waits for every outstanding record to be acknowledged,
    /// both for at most `timeout`; then moves what Kafka has not acknowledged to the spool
    /// (sent at the next start) and reports the counts.
    pub fn finish(mut self, timeout: Duration) -> DeliveryReport {
        let deadline = Instant::now() + timeout;
        *self
            .spool
            .stop_at
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = Some(deadline);
        self.spool.wake.notify_all();
        if let Some(drainer) = self.drainer.take() {
            if drainer.join().is_err() {
                tracing::error!(
                    "the spool drainer panicked; what it had not sent stays in the spool"
                );
            }
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if let Err(error) = self.producer.flush(left) {
            tracing::error!(%error, timeout_s = timeout.as_secs(), "flush did not complete");
            if self.spool.slot.is_some() {
                // Unacknowledged records come back through the delivery callback as purged
                // and go to the spool. In-flight requests get a last few seconds first.
                self.producer.purge(PurgeConfig::default().queue());
                let _ = self.producer.flush(Duration::from_secs(5));
                self.producer
                    .purge(PurgeConfig::default().queue().inflight());
                let _ = self.producer.flush(Duration::from_secs(2));
            }
        }
        let mut spooled_left = 0;
        if let Some(mut guard) = self.spool.lock() {
            let SpoolSlot { spool, overflow } = &mut *guard;
            while let Some(record) = overflow.pop_front() {
                let view = RecordRef {
                    topic: &record.topic,
                    kind_index: record.kind_index,
                    timestamp_ms: record.timestamp_ms,
                    key: record.key.as_deref(),
                    headers: Some(&record.owned_headers()),
                    payload: &record.payload,
                };
                if let Err(error) = spool.append(&view) {
                    tracing::error!(%error, records = overflow.len() + 1, "records Kafka did not acknowledge do not fit in the spool; they are lost");
                    let destination = kind_at(usize::from(record.kind_index)).destination();
                    self.tally.failed[slot(destination)]
                        .fetch_add(1 + overflow.len() as u64, Ordering::Relaxed);
                    overflow.clear();
                }
            }
            if let Err(error) = spool.close() {
                tracing::error!(%error, "cannot sync the spool");
            }
            spooled_left = spool.records();
            self.spool.update_gauges(spool);
        }
        if spooled_left > 0 {
            tracing::warn!(
                records = spooled_left,
                "records wait in the spool; they are sent when the producer starts again"
            );
        }
        let load = |counts: &[AtomicU64; 4]| {
            let mut out = [0; 4];
            for (o, c) in out.iter_mut().zip(counts) {
                *o = c.load(Ordering::Relaxed);
            }
            out
        };
        DeliveryReport {
            enqueued: load(&self.tally.enqueued),
            acked: load(&self.tally.acked),
            failed: load(&self.tally.failed),
            returned: load(&self.tally.returned),
            spooled_left,
            spooled_at_start: self.spooled_at_start,
        }
    }
}

/// The drainer thread: hands spooled records back to Kafka, oldest first, whenever the local
/// queue has room; after [`KafkaSink::finish`] it stops once the spool is empty or the
/// deadline has passed.
fn drain(shared: &SpoolShared, producer: &ThreadedProducer<DeliveryContext>, tally: &Tally) {
    let stop_at = || {
        *shared
            .stop_at
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    };
    let mut drained: u64 = 0;
    loop {
        let Some(mut guard) = shared.lock() else {
            return;
        };
        if !guard.active() {
            if drained > 0 {
                tracing::info!(
                    records = drained,
                    "spool drained; writing to Kafka directly again"
                );
                drained = 0;
            }
            if stop_at().is_some() {
                return;
            }
            let (guard, _) = shared
                .wake
                .wait_timeout(guard, DRAIN_IDLE)
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            drop(guard);
            continue;
        }
        if stop_at().is_some_and(|deadline| Instant::now() >= deadline) {
            return;
        }
        let spool_slot = &mut *guard;
        // Overflow first: those records are older than anything in the spool.
        let from_overflow = !spool_slot.overflow.is_empty();
        let record = if from_overflow {
            spool_slot.overflow.front()
        } else {
            match spool_slot.spool.peek() {
                Ok(record) => record,
                Err(error @ SpoolError::Corrupt { .. }) => {
                    let lost = spool_slot.spool.quarantine_oldest().unwrap_or(0);
                    tracing::error!(%error, lost_records = lost, "spool segment corrupt; moved aside as .corrupt, its remaining records are lost");
                    tally.failed[slot(Destination::Tweets)].fetch_add(lost, Ordering::Relaxed);
                    continue;
                }
                Err(error) => {
                    tracing::error!(%error, "cannot read the spool; retrying in a second");
                    drop(guard);
                    std::thread::sleep(Duration::from_secs(1));
                    continue;
                }
            }
        };
        let Some(record) = record else {
            continue;
        };
        let kind_index = usize::from(record.kind_index);
        let destination = kind_at(kind_index).destination();
        let mut base = BaseRecord::with_opaque_to(&record.topic, kind_index)
            .payload(&record.payload)
            .headers(record.owned_headers())
            .timestamp(record.timestamp_ms);
        if let Some(key) = &record.key {
            base = base.key(key);
        }
        let outcome = producer.send(base).map_err(|(error, _)| error);
        match outcome {
            Err(KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull)) => {
                drop(guard);
                std::thread::sleep(DRAIN_BACKOFF);
                continue;
            }
            Ok(()) => {
                tally.enqueued[slot(destination)].fetch_add(1, Ordering::Relaxed);
                shared.metrics.in_flight_records.inc();
            }
            Err(error) => {
                tally.enqueued[slot(destination)].fetch_add(1, Ordering::Relaxed);
                tally.failed[slot(destination)].fetch_add(1, Ordering::Relaxed);
                shared
                    .metrics
                    .delivery_failures
                    .with_label_values(&[destination.as_str()])
                    .inc();
                tracing::error!(topic = %record.topic, %error, "Kafka refused a spooled record; it is lost");
            }
        }
        drained += 1;
        if from_overflow {
            spool_slot.overflow.pop_front();
        } else if let Err(error) = spool_slot.spool.consume() {
            tracing::error!(%error, "cannot advance the spool; a record may be sent twice");
        }
        shared.update_gauges(&spool_slot.spool);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn report_counts_unacknowledged_records() {
        let report = DeliveryReport {
            enqueued: [12, 5, 2, 1],
            acked: [9, 5, 2, 0],
            failed: [0, 0, 0, 1],
            returned: [2, 0, 0, 0],
            spooled_left: 2,
            spooled_at_start: 0,
        };
        assert_eq!(report.unacknowledged(), 1);
        assert_eq!(report.not_delivered(), 2);
    }
}
