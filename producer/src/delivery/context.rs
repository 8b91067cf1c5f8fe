//! The delivery callback: librdkafka's reports, the per-destination tally, and what happens to
//! a record Kafka gave up on (to the spool, or counted as lost).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use rdkafka::config::RDKafkaLogLevel;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::Message;
use rdkafka::producer::{DeliveryResult, ProducerContext};
use rdkafka::ClientContext;
use tweet_pipeline_common::kafka::ClientLog;
use tweet_pipeline_common::metrics::ProducerMetrics;
use tweet_pipeline_common::{headers, Kind, PerDestination};

use super::spill::SpoolShared;
use super::watermark::Watermark;
use crate::spool::{RecordRef, SpoolError, SpooledRecord};

/// Per-destination delivery counts, updated from the sending side, the delivery callback and
/// the drainer.
#[derive(Debug, Default)]
pub(super) struct Tally {
    /// Handed to librdkafka.
    pub(super) enqueued: PerDestination<AtomicU64>,
    /// Acknowledged by the broker.
    pub(super) acked: PerDestination<AtomicU64>,
    /// Refused for good, or lost.
    pub(super) failed: PerDestination<AtomicU64>,
    /// Handed to librdkafka, then given up on by it and moved to the spool.
    pub(super) returned: PerDestination<AtomicU64>,
}

/// A snapshot of per-destination counters.
pub(super) fn load(counts: &PerDestination<AtomicU64>) -> PerDestination<u64> {
    counts.map(|count| count.load(Ordering::Relaxed))
}

/// The delivery opaque of a record of `kind`: its [`Kind::code`] in the low 8 bits and its
/// [`Watermark`] sequence number (0: none) above them. (64-bit targets: 56 bits of sequence.)
pub(super) fn opaque(kind: Kind, sequence: u64) -> usize {
    (sequence << 8 | u64::from(kind.code())) as usize
}

/// The kind a delivery opaque stands for; [`Kind::Unknown`] for a code no kind has.
pub(super) fn kind_of(opaque: usize) -> Kind {
    Kind::from_code((opaque & 0xff) as u8).unwrap_or(Kind::Unknown)
}

/// The watermark sequence number a delivery opaque carries (0: none).
pub(super) fn sequence_of(opaque: usize) -> u64 {
    opaque as u64 >> 8
}

/// Delivery errors that sending again cannot fix: the record itself is refused.
pub(super) fn is_permanent(error: &KafkaError) -> bool {
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

/// Receives librdkafka's delivery reports (on the producer's polling thread).
pub(super) struct DeliveryContext {
    /// Counts per destination, shared with the sink.
    pub(super) tally: Arc<Tally>,
    /// The producer's metrics.
    pub(super) metrics: ProducerMetrics,
    /// Where records Kafka gave up on go.
    pub(super) spool: Arc<SpoolShared>,
    /// librdkafka's log and error callbacks.
    pub(super) log: ClientLog,
    /// Where records that carry a sequence number are completed.
    pub(super) watermark: Arc<Watermark>,
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
    /// The record's [`Kind::code`] and watermark sequence ([`opaque`]).
    type DeliveryOpaque = usize;

    fn delivery(&self, result: &DeliveryResult<'_>, opaque: usize) {
        let kind = kind_of(opaque);
        // Acknowledged, spooled or lost for good: either way nothing more is waited for.
        let sequence = sequence_of(opaque);
        if sequence != 0 {
            self.watermark.complete(sequence);
        }
        let destination = kind.destination();
        self.metrics.in_flight_records.dec();
        let (error, message) = match result {
            Ok(_) => {
                self.tally.acked[destination].fetch_add(1, Ordering::Relaxed);
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
                    kind,
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
                    self.tally.returned[destination].fetch_add(1, Ordering::Relaxed);
                    tracing::debug!(topic = message.topic(), %error, "record not acknowledged; spooled to send again");
                    return;
                }
            }
        }
        self.tally.failed[destination].fetch_add(1, Ordering::Relaxed);
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opaques_round_trip_every_kind_and_sequence() {
        for kind in Kind::ALL {
            for sequence in [0, 1, 255, 256, 1 << 40] {
                let packed = opaque(kind, sequence);
                assert_eq!(kind_of(packed), kind);
                assert_eq!(sequence_of(packed), sequence);
            }
        }
        assert_eq!(kind_of(0xff), Kind::Unknown);
    }
}
