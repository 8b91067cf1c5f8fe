//! What a run delivered: the counts [`super::KafkaSink::finish`] reports.

use tweet_pipeline_common::PerDestination;

/// Delivery counts after [`super::KafkaSink::finish`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryReport {
    /// Records handed to Kafka, per destination (a record sent again from the spool counts
    /// each time).
    pub enqueued: PerDestination<u64>,
    /// Records acknowledged by the broker, per destination.
    pub acked: PerDestination<u64>,
    /// Records refused for good (too large, not authorised, ...), per destination: lost.
    pub failed: PerDestination<u64>,
    /// Records Kafka gave up on that went to the spool to be sent again, per destination.
    pub returned: PerDestination<u64>,
    /// Records waiting in the spool at the end (on disk; sent at the next start).
    pub spooled_left: u64,
    /// Records that were in the spool when the producer started.
    pub spooled_at_start: u64,
}

impl DeliveryReport {
    /// Records neither acknowledged, failed nor returned to the spool: still queued in memory
    /// when the producer stopped (lost with the process).
    pub fn unacknowledged(&self) -> u64 {
        self.enqueued
            .total()
            .saturating_sub(self.acked.total() + self.failed.total() + self.returned.total())
    }

    /// Lost records: refused for good, or unacknowledged in memory at exit.
    pub fn not_delivered(&self) -> u64 {
        self.failed.total() + self.unacknowledged()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn report_counts_unacknowledged_records() {
        let report = DeliveryReport {
            enqueued: PerDestination::from([12, 5, 2, 1]),
            acked: PerDestination::from([9, 5, 2, 0]),
            failed: PerDestination::from([0, 0, 0, 1]),
            returned: PerDestination::from([2, 0, 0, 0]),
            spooled_left: 2,
            spooled_at_start: 0,
        };
        assert_eq!(report.unacknowledged(), 1);
        assert_eq!(report.not_delivered(), 2);
    }
}
