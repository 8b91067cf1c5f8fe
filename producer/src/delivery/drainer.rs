//! The drainer thread: hands spooled records back to Kafka, oldest first.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{BaseRecord, ThreadedProducer};
use tweet_pipeline_common::Destination;

use super::context::{opaque, DeliveryContext, Tally};
use super::spill::SpoolShared;
use crate::spool::SpoolError;

/// How long the drainer waits for room in the local queue.
const DRAIN_BACKOFF: Duration = Duration::from_millis(10);
/// How long the drainer sleeps when the spool is empty (it is also woken on every append).
const DRAIN_IDLE: Duration = Duration::from_millis(200);

/// The drainer thread: hands spooled records back to Kafka, oldest first, whenever the local
/// queue has room; after [`KafkaSink::finish`] it stops once the spool is empty or the
/// deadline has passed.
pub(super) fn drain(
    shared: &SpoolShared,
    producer: &ThreadedProducer<DeliveryContext>,
    tally: &Tally,
) {
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
                    tally.failed[Destination::Tweets].fetch_add(lost, Ordering::Relaxed);
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
        let destination = record.kind.destination();
        let mut base = BaseRecord::with_opaque_to(&record.topic, opaque(record.kind, 0))
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
                tally.enqueued[destination].fetch_add(1, Ordering::Relaxed);
                shared.metrics.in_flight_records.inc();
            }
            Err(error) => {
                tally.enqueued[destination].fetch_add(1, Ordering::Relaxed);
                tally.failed[destination].fetch_add(1, Ordering::Relaxed);
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
