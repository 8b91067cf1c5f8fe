//! Delivery to Kafka: one idempotent producer, every record accounted for.
//!
//! A record counts as sent only when the broker acknowledged it (the delivery callback says
//! so). When librdkafka's local queue is full, the caller waits and retries (backpressure on the
//! source) instead of dropping. At the end, [`KafkaSink::finish`] flushes and reports how many
//! records were acknowledged, failed, or still unacknowledged when the flush timed out.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use rdkafka::config::RDKafkaLogLevel;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header, Message, OwnedHeaders};
use rdkafka::producer::{BaseRecord, DeliveryResult, Producer, ProducerContext, ThreadedProducer};
use rdkafka::ClientContext;
use tweet_pipeline_common::config::{KafkaArgs, TopicNames};
use tweet_pipeline_common::kafka::ClientLog;
use tweet_pipeline_common::metrics::ProducerMetrics;
use tweet_pipeline_common::{headers, kafka, Destination, Kind};

/// How long a full local queue is waited on before the send is tried again.
const QUEUE_FULL_BACKOFF: Duration = Duration::from_millis(5);

/// Per-destination delivery counts.
#[derive(Debug, Default)]
struct Tally {
    enqueued: [AtomicU64; 4],
    acked: [AtomicU64; 4],
    failed: [AtomicU64; 4],
}

fn slot(destination: Destination) -> usize {
    match destination {
        Destination::Tweets => 0,
        Destination::Retweets => 1,
        Destination::Control => 2,
        Destination::DeadLetter => 3,
    }
}

/// Receives librdkafka's delivery reports (on the producer's polling thread).
struct DeliveryContext {
    tally: Arc<Tally>,
    metrics: ProducerMetrics,
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
        let kind = Kind::ALL[kind_index];
        let destination = kind.destination();
        self.metrics.in_flight_records.dec();
        match result {
            Ok(_) => {
                self.tally.acked[slot(destination)].fetch_add(1, Ordering::Relaxed);
                self.metrics
                    .records_sent
                    .with_label_values(&[destination.as_str(), kind.as_str()])
                    .inc();
            }
            Err((error, message)) => {
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
                    "record not acknowledged by Kafka; it is lost unless the source is replayed"
                );
            }
        }
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
    /// Records handed to Kafka, per destination in [`Destination::ALL`] order.
    pub enqueued: [u64; 4],
    /// Records acknowledged by the broker, per destination.
    pub acked: [u64; 4],
    /// Records that failed, per destination (the send was refused or delivery gave up).
    pub failed: [u64; 4],
}

impl DeliveryReport {
    /// Records neither acknowledged nor failed: still queued when the flush timed out.
    pub fn unacknowledged(&self) -> u64 {
        let sum = |counts: &[u64; 4]| counts.iter().sum::<u64>();
        sum(&self.enqueued).saturating_sub(sum(&self.acked) + sum(&self.failed))
    }

    /// Failed plus unacknowledged records.
    pub fn not_delivered(&self) -> u64 {
        self.failed.iter().sum::<u64>() + self.unacknowledged()
    }
}

/// The producer side of the pipeline: writes routed lines to their topics.
pub struct KafkaSink {
    producer: ThreadedProducer<DeliveryContext>,
    topics: TopicNames,
    tally: Arc<Tally>,
    metrics: ProducerMetrics,
}

impl KafkaSink {
    /// Creates the idempotent producer and checks, with a metadata request, that the broker is
    /// reachable and every topic exists.
    ///
    /// # Errors
    /// When the configuration is invalid, the broker does not answer within `metadata_timeout`,
    /// or a topic is missing (the message says how to create it).
    pub fn connect(
        kafka: &KafkaArgs,
        topics: TopicNames,
        metrics: ProducerMetrics,
        metadata_timeout: Duration,
    ) -> anyhow::Result<Self> {
        let tally = Arc::new(Tally::default());
        let context = DeliveryContext {
            tally: Arc::clone(&tally),
            metrics: metrics.clone(),
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
        Ok(Self {
            producer,
            topics,
            tally,
            metrics,
        })
    }

    /// Hands one record to Kafka, waiting while the local queue is full. Blocking: call it from
    /// a blocking thread, not from the async reactor.
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
        let mut headers = OwnedHeaders::new_with_capacity(4)
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
        loop {
            match self.producer.send(base) {
                Ok(()) => {
                    self.tally.enqueued[slot(destination)].fetch_add(1, Ordering::Relaxed);
                    self.metrics.in_flight_records.inc();
                    return Ok(());
                }
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), returned)) => {
                    self.metrics.queue_full_waits.inc();
                    base = returned;
                    std::thread::sleep(QUEUE_FULL_BACKOFF);
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
    }

    /// Waits up to `timeout` for every outstanding record to be acknowledged or to fail, then
    /// reports the counts. Records still queued after `timeout` are counted as unacknowledged
    /// (and are lost when the producer is dropped: dropping purges librdkafka's queue).
    pub fn finish(self, timeout: Duration) -> DeliveryReport {
        if let Err(error) = self.producer.flush(timeout) {
            tracing::error!(%error, timeout_s = timeout.as_secs(), "flush did not complete");
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
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn report_counts_unacknowledged_records() {
        let report = DeliveryReport {
            enqueued: [10, 5, 2, 1],
            acked: [9, 5, 2, 0],
            failed: [0, 0, 0, 1],
        };
        assert_eq!(report.unacknowledged(), 1);
        assert_eq!(report.not_delivered(), 2);
    }
}
