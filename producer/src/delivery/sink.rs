//! The sending side: [`KafkaSink`] hands records to the idempotent producer (or to the spool
//! while Kafka does not take them) and, at the end, drains, flushes and reports.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{BaseRecord, Producer, PurgeConfig, ThreadedProducer};
use tweet_pipeline_common::config::{KafkaArgs, TopicNames};
use tweet_pipeline_common::kafka::ClientLog;
use tweet_pipeline_common::metrics::ProducerMetrics;
use tweet_pipeline_common::{headers, kafka, Destination, Kind};

use super::context::{load, opaque, DeliveryContext, Tally};
use super::drainer::drain;
use super::report::DeliveryReport;
use super::spill::{SpoolShared, SpoolSlot};
use super::watermark::Watermark;
use crate::spool::{RecordRef, Spool, SpoolConfig, SpoolError};

/// How long a full local queue is waited on before the send is tried again.
const QUEUE_FULL_BACKOFF: Duration = Duration::from_millis(5);
/// How long reading pauses before trying a full spool again.
const SPOOL_FULL_BACKOFF: Duration = Duration::from_millis(50);

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
    /// The record's number in the sink's [`Watermark`] (from [`Watermark::register`]), for a
    /// resumable source; it is completed once the record is safe. `None` for other sources.
    pub sequence: Option<u64>,
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
    watermark: Arc<Watermark>,
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
        let watermark = Arc::new(Watermark::default());
        let context = DeliveryContext {
            tally: Arc::clone(&tally),
            metrics: metrics.clone(),
            spool: Arc::clone(&shared),
            log: ClientLog::default(),
            watermark: Arc::clone(&watermark),
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
            watermark,
        })
    }

    /// The watermark a resumable source registers its events in (see [`OutRecord::sequence`]).
    pub fn watermark(&self) -> &Watermark {
        &self.watermark
    }

    /// The watermark, to read after [`KafkaSink::finish`] consumed the sink.
    pub fn watermark_handle(&self) -> Arc<Watermark> {
        Arc::clone(&self.watermark)
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
        let sequence = record.sequence.unwrap_or(0);
        let mut base = BaseRecord::with_opaque_to(
            self.topics.name(destination),
            opaque(record.kind, sequence),
        )
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
                        self.tally.enqueued[destination].fetch_add(1, Ordering::Relaxed);
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
                        // Refused for good (counted and logged as lost): not waited for.
                        self.watermark.complete(sequence);
                        self.tally.enqueued[destination].fetch_add(1, Ordering::Relaxed);
                        self.tally.failed[destination].fetch_add(1, Ordering::Relaxed);
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
                kind: record.kind,
                timestamp_ms: record.received_at_ms,
                key: record.key.map(str::as_bytes),
                headers: base.headers.as_ref(),
                payload: record.payload,
            };
            match self.spool.append(spool_slot, &spooled, "queue_full") {
                Ok(()) => {
                    // On disk: the next start sends it first, so the position may pass it.
                    self.watermark.complete(sequence);
                    return Ok(());
                }
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
                    kind: record.kind,
                    timestamp_ms: record.timestamp_ms,
                    key: record.key.as_deref(),
                    headers: Some(&record.owned_headers()),
                    payload: &record.payload,
                };
                if let Err(error) = spool.append(&view) {
                    tracing::error!(%error, records = overflow.len() + 1, "records Kafka did not acknowledge do not fit in the spool; they are lost");
                    let destination = record.kind.destination();
                    self.tally.failed[destination]
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
