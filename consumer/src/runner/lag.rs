//! Consumer lag per assigned partition, read from librdkafka's statistics
//! (`statistics.interval.ms`; fields in librdkafka STATISTICS.md, "partitions") into the
//! `tweet_pipeline_consumer_lag_records` gauge, so alerts and dashboards see a group falling
//! behind without asking the broker.

use std::collections::BTreeSet;
use std::sync::Mutex;

use prometheus::IntGaugeVec;
use rdkafka::config::ClientConfig;
use rdkafka::statistics::{Partition, Statistics};
use tweet_pipeline_common::config::TopicNames;

/// librdkafka property that turns statistics on.
const STATISTICS_INTERVAL: &str = "statistics.interval.ms";
/// How often librdkafka emits statistics, in milliseconds, unless `-X statistics.interval.ms`
/// says otherwise: often enough for a 15 s scrape interval, rare enough to cost nothing.
const DEFAULT_STATISTICS_INTERVAL_MS: &str = "5000";

/// Turns librdkafka statistics on (every 5 s) unless the configuration already sets an
/// interval (a `-X statistics.interval.ms=…` override; `0` turns the lag gauge off).
pub fn enable_statistics(config: &mut ClientConfig) {
    if config.get(STATISTICS_INTERVAL).is_none() {
        config.set(STATISTICS_INTERVAL, DEFAULT_STATISTICS_INTERVAL_MS);
    }
}

/// Sets the lag gauge from each statistics report.
pub struct LagGauge {
    gauge: IntGaugeVec,
    group: String,
    topics: TopicNames,
    /// (topic role, partition) label sets set by the last report, so that partitions this
    /// instance no longer owns (revoked in a rebalance) stop being reported.
    shown: Mutex<BTreeSet<(&'static str, i32)>>,
}

impl std::fmt::Debug for LagGauge {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LagGauge")
            .field("group", &self.group)
            .finish_non_exhaustive()
    }
}

impl LagGauge {
    /// A gauge vector labelled `group`, `topic`, `partition` (see
    /// [`tweet_pipeline_common::metrics::ConsumerMetrics::lag_records`]); topic names are
    /// mapped to their roles through `topics`.
    pub fn new(gauge: IntGaugeVec, group: &str, topics: TopicNames) -> Self {
        Self {
            gauge,
            group: group.to_owned(),
            topics,
            shown: Mutex::new(BTreeSet::new()),
        }
    }

    /// Sets the gauge for every partition assigned to this instance in `statistics`, and
    /// removes the partitions it reported before but no longer owns.
    pub fn record(&self, statistics: &Statistics) {
        let mut now = BTreeSet::new();
        for (name, topic) in &statistics.topics {
            let Some(role) = self.topics.destination(name) else {
                continue;
            };
            for partition in topic.partitions.values() {
                // Partition -1 is librdkafka's internal "unassigned" queue; `desired` marks the
                // partitions the group assigned to this instance.
                if partition.partition < 0 || !partition.desired {
                    continue;
                }
                let Some(lag) = partition_lag(partition) else {
                    continue;
                };
                let number = partition.partition.to_string();
                self.gauge
                    .with_label_values(&[self.group.as_str(), role.as_str(), number.as_str()])
                    .set(lag);
                now.insert((role.as_str(), partition.partition));
            }
        }
        let Ok(mut shown) = self.shown.lock() else {
            return;
        };
        for (role, partition) in shown.difference(&now) {
            let number = partition.to_string();
            let _ = self
                .gauge
                .remove_label_values(&[self.group.as_str(), role, number.as_str()]);
        }
        *shown = now;
    }
}

/// Records between the partition's high watermark and the next offset this group will commit:
/// the stored offset (advanced only after a batch is durable), else the committed one, else the
/// log start (where `auto.offset.reset=earliest` begins). `None` until the high watermark is
/// known (librdkafka reports -1001, "invalid", before the first fetch response).
fn partition_lag(partition: &Partition) -> Option<i64> {
    if partition.hi_offset < 0 {
        return None;
    }
    let position = partition.stored_offset.max(partition.committed_offset);
    let position = if position >= 0 {
        position
    } else if partition.lo_offset >= 0 {
        partition.lo_offset
    } else {
        return None;
    };
    Some((partition.hi_offset - position).max(0))
}

#[cfg(test)]
mod tests {
    use super::*;
    use prometheus::{Opts, Registry};

    fn partition(
        number: i32,
        desired: bool,
        lo: i64,
        hi: i64,
        stored: i64,
        committed: i64,
    ) -> Partition {
        Partition {
            partition: number,
            desired,
            lo_offset: lo,
            hi_offset: hi,
            stored_offset: stored,
            committed_offset: committed,
            ..Partition::default()
        }
    }

    fn statistics(topic: &str, partitions: Vec<Partition>) -> Statistics {
        let mut statistics = Statistics::default();
        statistics.topics.insert(
            topic.to_owned(),
            rdkafka::statistics::Topic {
                topic: topic.to_owned(),
                partitions: partitions.into_iter().map(|p| (p.partition, p)).collect(),
                ..Default::default()
            },
        );
        statistics
    }

    #[test]
    fn lag_is_high_watermark_minus_next_commit() {
        assert_eq!(partition_lag(&partition(0, true, 0, 100, 40, 30)), Some(60));
        assert_eq!(
            partition_lag(&partition(0, true, 0, 100, -1001, 30)),
            Some(70)
        );
        assert_eq!(
            partition_lag(&partition(0, true, 10, 100, -1001, -1001)),
            Some(90)
        );
        assert_eq!(
            partition_lag(&partition(0, true, -1001, -1001, -1001, -1001)),
            None
        );
        assert_eq!(partition_lag(&partition(0, true, 0, 5, 7, 7)), Some(0));
    }

    #[test]
    fn reports_assigned_partitions_and_forgets_revoked_ones() {
        let registry = Registry::new();
        let gauge =
            IntGaugeVec::new(Opts::new("lag", "lag"), &["group", "topic", "partition"]).unwrap();
        registry.register(Box::new(gauge.clone())).unwrap();
        let lag = LagGauge::new(gauge.clone(), "analysis", TopicNames::with_prefix("t-"));

        lag.record(&statistics(
            "t-tweets",
            vec![
                partition(-1, false, -1001, -1001, -1001, -1001),
                partition(0, true, 0, 100, 40, 30),
                partition(1, true, 0, 50, 50, 50),
                partition(2, false, 0, 80, -1001, -1001),
            ],
        ));
        assert_eq!(
            gauge.with_label_values(&["analysis", "tweets", "0"]).get(),
            60
        );
        assert_eq!(
            gauge.with_label_values(&["analysis", "tweets", "1"]).get(),
            0
        );
        assert!(gauge
            .remove_label_values(&["analysis", "tweets", "2"])
            .is_err());

        // Partition 0 revoked: its series disappears.
        lag.record(&statistics(
            "t-tweets",
            vec![partition(1, true, 0, 60, 55, 50)],
        ));
        assert!(gauge
            .remove_label_values(&["analysis", "tweets", "0"])
            .is_err());
        assert_eq!(
            gauge.with_label_values(&["analysis", "tweets", "1"]).get(),
            5
        );

        // Topics that are not the pipeline's are ignored.
        lag.record(&statistics("other", vec![partition(0, true, 0, 9, 0, 0)]));
        assert_eq!(
            registry
                .gather()
                .iter()
                .map(|f| f.get_metric().len())
                .sum::<usize>(),
            0
        );
    }
}
