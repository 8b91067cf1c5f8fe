//! The spill to disk: the spool and what waits beside it, behind one lock shared by the sending
//! side, the delivery callback and the drainer thread.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::Instant;

use rdkafka::message::Headers;
use tweet_pipeline_common::metrics::ProducerMetrics;

use crate::spool::{RecordRef, Spool, SpoolError, SpooledRecord};

/// The spool and what waits beside it, behind one lock (the order of records is decided here).
pub(super) struct SpoolSlot {
    /// The spool on disk.
    pub(super) spool: Spool,
    /// Records librdkafka gave up on while the spool was full: at most what its bounded queue
    /// held. Sent before the spool, since they are older.
    pub(super) overflow: VecDeque<SpooledRecord>,
}

impl SpoolSlot {
    /// Whether records wait outside Kafka (new records must queue behind them).
    pub(super) fn active(&self) -> bool {
        !self.spool.is_empty() || !self.overflow.is_empty()
    }
}

/// State shared by the sending side, the delivery callback and the drainer thread.
pub(super) struct SpoolShared {
    /// `None` when the spool is off (`--spool-max-bytes 0`).
    pub(super) slot: Option<Mutex<SpoolSlot>>,
    /// Wakes the drainer after an append.
    pub(super) wake: Condvar,
    /// Set by [`KafkaSink::finish`]: drain what is left, until the deadline, then stop.
    pub(super) stop_at: Mutex<Option<Instant>>,
    /// A "spool full" episode was reported (reset by the next successful append).
    pub(super) full_reported: AtomicBool,
    /// The producer's metrics.
    pub(super) metrics: ProducerMetrics,
}

impl SpoolShared {
    /// The spool slot, locked; `None` when the spool is off.
    pub(super) fn lock(&self) -> Option<MutexGuard<'_, SpoolSlot>> {
        // A panic while holding the lock is a bug; the spool on disk stays consistent, so go on.
        self.slot
            .as_ref()
            .map(|m| m.lock().unwrap_or_else(|poisoned| poisoned.into_inner()))
    }

    /// Sets the spool size gauges.
    pub(super) fn update_gauges(&self, spool: &Spool) {
        self.metrics.spool_bytes.set(spool.pending_bytes() as i64);
        self.metrics.spool_records.set(spool.records() as i64);
    }

    /// Appends to the spool and counts it; reports a full spool once per episode.
    pub(super) fn append<H: Headers>(
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
