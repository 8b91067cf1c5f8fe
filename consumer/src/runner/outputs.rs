//! What consumers write back to Kafka: dead letters (poison records, with their original
//! position and the reason) and tombstones (null values that let compaction erase a deleted
//! post from the raw topics).
//!
//! Writes are batched with the consumer's batch: [`Outputs::flush`] waits until Kafka
//! acknowledged every one, and fails if any was refused, so the runner retries the batch and
//! stores no offset past a record whose dead letter or tombstone is not durable. After a crash
//! the same dead letter or tombstone may be written twice (at-least-once); both are harmless.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use rdkafka::config::RDKafkaLogLevel;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{BorrowedMessage, Header, Headers, Message, OwnedHeaders};
use rdkafka::producer::{BaseProducer, BaseRecord, DeliveryResult, Producer, ProducerContext};
use rdkafka::ClientContext;
use tweet_pipeline_common::config::KafkaArgs;
use tweet_pipeline_common::headers;
use tweet_pipeline_common::kafka::{self, ClientLog};

/// How long [`Outputs::flush`] waits for acknowledgements.
const FLUSH_TIMEOUT: Duration = Duration::from_secs(30);
/// How long one wait for delivery reports lasts while flushing.
const FLUSH_POLL: Duration = Duration::from_millis(1);

struct OutputContext {
    failed: Arc<AtomicU64>,
    log: ClientLog,
}

impl ClientContext for OutputContext {
    fn log(&self, level: RDKafkaLogLevel, fac: &str, log_message: &str) {
        self.log.log(level, fac, log_message);
    }

    fn error(&self, error: KafkaError, reason: &str) {
        self.log.error(&error, reason);
    }
}

impl ProducerContext for OutputContext {
    type DeliveryOpaque = ();

    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        if let Err((error, message)) = result {
            self.failed.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(topic = message.topic(), %error, "dead letter or tombstone not acknowledged; the batch is retried");
        }
    }
}

/// The consumer's own idempotent producer for dead letters and tombstones.
pub struct Outputs {
    producer: BaseProducer<OutputContext>,
    failed: Arc<AtomicU64>,
    deadletter_topic: String,
    group: String,
    /// Records queued since the last flush.
    pending: u64,
}

impl Outputs {
    /// A producer with the pipeline's producer settings (idempotent, the same partitioner as
    /// `tweet-producer`, so a tombstone lands in the partition of the record it erases).
    ///
    /// # Errors
    /// When the Kafka configuration is invalid.
    pub fn new(kafka: &KafkaArgs, deadletter_topic: String, group: &str) -> anyhow::Result<Self> {
        let failed = Arc::new(AtomicU64::new(0));
        let producer = kafka::producer_config(kafka, &format!("tweet-consumer-{group}-outputs"))
            .create_with_context(OutputContext {
                failed: Arc::clone(&failed),
                log: ClientLog::default(),
            })
            .context("invalid Kafka producer configuration (check -X properties)")?;
        Ok(Self {
            producer,
            failed,
            deadletter_topic,
            group: group.to_owned(),
            pending: 0,
        })
    }

    /// Queues `message` for the dead-letter topic: its key, value and headers, plus `error`
    /// (`reason`), `original_topic`, `original_partition`, `original_offset` and
    /// `dead_lettered_by` (the group).
    pub fn dead_letter(&mut self, message: &BorrowedMessage<'_>, reason: &str) {
        let mut out = OwnedHeaders::new();
        if let Some(original) = message.headers() {
            for header in original.iter() {
                if header.key != headers::ERROR {
                    out = out.insert(header);
                }
            }
        }
        let (partition, offset) = (
            message.partition().to_string(),
            message.offset().to_string(),
        );
        for (key, value) in [
            (headers::ERROR, reason),
            (headers::ORIGINAL_TOPIC, message.topic()),
            (headers::ORIGINAL_PARTITION, partition.as_str()),
            (headers::ORIGINAL_OFFSET, offset.as_str()),
            (headers::DEAD_LETTERED_BY, self.group.as_str()),
        ] {
            out = out.insert(Header {
                key,
                value: Some(value),
            });
        }
        let mut record = BaseRecord::<[u8], [u8]>::to(&self.deadletter_topic).headers(out);
        if let Some(payload) = message.payload() {
            record = record.payload(payload);
        }
        if let Some(key) = message.key() {
            record = record.key(key);
        }
        if let Some(timestamp) = message.timestamp().to_millis() {
            record = record.timestamp(timestamp);
        }
        self.send(record);
        self.pending += 1;
    }

    /// Queues a tombstone (null value) for `key` on `topic`.
    pub fn tombstone(&mut self, topic: &str, key: &str) {
        let record = BaseRecord::<str, [u8]>::to(topic).key(key);
        self.send(record);
        self.pending += 1;
    }

    /// Queues `record`, waiting while librdkafka's queue is full; a refusal is counted as a
    /// failure for [`Outputs::flush`].
    fn send<K: rdkafka::message::ToBytes + ?Sized, P: rdkafka::message::ToBytes + ?Sized>(
        &self,
        mut record: BaseRecord<'_, K, P>,
    ) {
        loop {
            match self.producer.send(record) {
                Ok(()) => return,
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), returned)) => {
                    record = returned;
                    self.producer.poll(Duration::from_millis(10));
                }
                Err((error, _)) => {
                    tracing::warn!(%error, "dead letter or tombstone refused; the batch is retried");
                    self.failed.fetch_add(1, Ordering::Relaxed);
                    return;
                }
            }
        }
    }

    /// Waits until Kafka acknowledged everything queued since the last flush.
    ///
    /// # Errors
    /// When a record was refused or not acknowledged within 30 s (the caller retries the batch).
    pub fn flush(&mut self) -> anyhow::Result<()> {
        if self.pending == 0 && self.failed.load(Ordering::Relaxed) == 0 {
            return Ok(());
        }
        let flushed = flush(&self.producer, FLUSH_TIMEOUT);
        let failed = self.failed.swap(0, Ordering::Relaxed);
        let pending = std::mem::take(&mut self.pending);
        flushed.with_context(|| {
            format!(
                "{pending} dead letter(s)/tombstone(s) not acknowledged within {}s",
                FLUSH_TIMEOUT.as_secs()
            )
        })?;
        if failed > 0 {
            anyhow::bail!("{failed} of {pending} dead letter(s)/tombstone(s) refused by Kafka");
        }
        Ok(())
    }
}

/// Waits until every queued record has its delivery report (served by `producer`'s poll).
///
/// Not `Producer::flush`: rust-rdkafka 0.39's `BaseProducer::poll` returns only once its
/// timeout has passed, events or not, and its `flush` polls in 100 ms steps, so every flush took
/// at least 100 ms (measured: exactly 100.1-100.4 ms for 1 to 6 tombstones, which held the
/// analysis consumer at about 10,000 posts/s). Polling in 1 ms steps until librdkafka's
/// out-queue (`rd_kafka_outq_len`: records not yet reported plus reports not yet served) is
/// empty waits for the acknowledgements and no longer.
///
/// # Errors
/// `timeout` passed with records still unacknowledged.
fn flush<C: ProducerContext>(producer: &BaseProducer<C>, timeout: Duration) -> anyhow::Result<()> {
    let deadline = std::time::Instant::now() + timeout;
    // `rd_kafka_flush` with no wait: wakes the broker threads to send now rather than after
    // `linger.ms`; it reports a time-out while anything is in flight, which is expected here.
    let _ = producer.flush(Duration::ZERO);
    while producer.in_flight_count() > 0 {
        if std::time::Instant::now() >= deadline {
            anyhow::bail!(
                "{} record(s) still unacknowledged",
                producer.in_flight_count()
            );
        }
        producer.poll(FLUSH_POLL);
    }
    Ok(())
}
