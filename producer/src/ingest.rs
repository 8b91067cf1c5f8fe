//! From a framed line to a Kafka record: routing, the dead-letter reasons, counting. Shared by
//! every source (replay, the X streams, Mastodon), so all of them route the same way.

use prometheus::IntGauge;
use tweet_pipeline_common::framing::Frame;
use tweet_pipeline_common::metrics::ProducerMetrics;
use tweet_pipeline_common::{headers, route_line, Destination, Kind, LineClass, Routed};

use crate::budget::{Pause, ReadBudget};
use crate::delivery::{KafkaSink, OutRecord};

/// Counts of what a source read.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct IngestStats {
    /// Lines (or events) read, keep-alives included.
    pub lines_read: u64,
    /// Keep-alives: blank lines, SSE heartbeats (counted, not written).
    pub keepalives: u64,
    /// Records librdkafka refused outright (also failures in the delivery report).
    pub send_errors: u64,
    /// The id of the last post written (empty before the first), for back-filling a gap
    /// after a disconnect. Overwritten in place: no allocation per post.
    pub last_post_id: String,
    /// When the last post was received, Unix ms.
    pub last_post_at_ms: Option<i64>,
    /// Posts and reposts that matched no client-side rule (Bluesky): read, not written.
    pub unmatched: u64,
}

/// Routes lines of one source into Kafka.
pub struct Ingest<'a> {
    sink: &'a KafkaSink,
    metrics: &'a ProducerMetrics,
    /// The `source` header value.
    source: String,
    max_line_bytes: usize,
    /// What was read so far.
    pub stats: IngestStats,
    /// The X read budget (X streams only): every post counts as a read.
    budget: Option<ReadBudget>,
    /// `x_post_reads_window{window="day"}` and `{window="month"}`, resolved once.
    window_gauges: Option<[IntGauge; 2]>,
}

impl<'a> Ingest<'a> {
    /// An ingest for `source` (the `source` header value) writing to `sink`.
    pub fn new(
        sink: &'a KafkaSink,
        metrics: &'a ProducerMetrics,
        source: String,
        max_line_bytes: usize,
    ) -> Self {
        Self {
            sink,
            metrics,
            source,
            max_line_bytes,
            stats: IngestStats::default(),
            budget: None,
            window_gauges: None,
        }
    }

    /// Counts every post against `budget` (and in `x_post_reads_total`).
    pub fn with_budget(mut self, budget: ReadBudget) -> Self {
        let m = self.metrics;
        m.x_price_per_read_usd.set(budget.price_per_read_usd);
        for (window, limit) in [
            ("day", budget.limits.per_day),
            ("month", budget.limits.per_month),
        ] {
            if let Some(limit) = limit {
                m.x_post_reads_limit
                    .with_label_values(&[window])
                    .set(i64::try_from(limit).unwrap_or(i64::MAX));
            }
        }
        let gauges = ["day", "month"].map(|w| m.x_post_reads_window.with_label_values(&[w]));
        set_window_gauges(&gauges, &budget);
        self.window_gauges = Some(gauges);
        self.budget = Some(budget);
        self
    }

    /// The pause the read budget asks for at `now`, if any (none without a budget).
    pub fn budget_pause(&mut self, now: chrono::DateTime<chrono::Utc>) -> Option<Pause> {
        let budget = self.budget.as_mut()?;
        budget.state.pause(budget.limits, now)
    }

    /// The read budget's counts, if there is a budget: (day reads, month reads).
    pub fn budget_reads(&self) -> Option<(u64, u64)> {
        self.budget
            .as_ref()
            .map(|b| (b.state.day_reads, b.state.month_reads))
    }

    /// Saves the read budget's counts (no-op without a budget or a file).
    pub fn save_budget(&mut self) {
        if let Some(budget) = self.budget.as_mut() {
            budget.save();
        }
    }

    /// Lines longer than this are dead-lettered.
    pub fn max_line_bytes(&self) -> usize {
        self.max_line_bytes
    }

    /// Counts one keep-alive (a blank line or an SSE heartbeat).
    pub fn keepalive(&mut self) {
        self.stats.lines_read += 1;
        self.stats.keepalives += 1;
        self.metrics.lines_read.inc();
        self.metrics.keepalives.inc();
    }

    /// Counts one post that matched no client-side rule (read, not written).
    pub fn unmatched(&mut self, kind: Kind) {
        self.stats.lines_read += 1;
        self.stats.unmatched += 1;
        self.metrics.lines_read.inc();
        self.metrics.rule_unmatched.inc();
        tracing::debug!(kind = kind.as_str(), "matched no rule; not written");
    }

    /// Routes one framed line by field inspection and writes it. Blocks while Kafka's local
    /// queue is full.
    pub fn frame(&mut self, frame: Frame<'_>) {
        match frame {
            Frame::Line(line) => match route_line(line) {
                LineClass::KeepAlive => self.keepalive(),
                LineClass::Record(routed) => self.record(line, routed),
            },
            Frame::Oversized { prefix, len_bytes } => {
                let reason = format!(
                    "oversized line: {len_bytes} bytes > max {} (value holds the first {} bytes)",
                    self.max_line_bytes,
                    prefix.len()
                );
                self.record(prefix, Routed::dead_letter(Kind::Oversized, reason));
            }
        }
    }

    /// Writes one already-routed payload (SSE events are routed by their event name).
    pub fn record(&mut self, payload: &[u8], routed: Routed<'_>) {
        self.record_in_sequence(payload, routed, None);
    }

    /// [`Ingest::record`] for a resumable source: `sequence` is the event's number in the
    /// sink's watermark, completed once the record is safe.
    pub fn record_in_sequence(
        &mut self,
        payload: &[u8],
        routed: Routed<'_>,
        sequence: Option<u64>,
    ) {
        // The post topics are compacted: Kafka refuses a record without a key there.
        let routed = match routed.destination() {
            Destination::Tweets | Destination::Retweets
                if routed.key.as_deref().is_none_or(str::is_empty) =>
            {
                Routed::dead_letter(
                    Kind::Malformed,
                    format!("{} without a post id", routed.kind.as_str()),
                )
            }
            _ => routed,
        };
        self.stats.lines_read += 1;
        self.metrics.lines_read.inc();
        let received_at_ms = headers::now_ms();
        let destination = routed.destination();
        if destination == Destination::DeadLetter {
            self.metrics
                .deadlettered
                .with_label_values(&[routed.kind.as_str()])
                .inc();
            tracing::debug!(
                kind = routed.kind.as_str(),
                error = routed.reason.as_deref(),
                "line dead-lettered"
            );
        }
        if matches!(destination, Destination::Tweets | Destination::Retweets) {
            self.stats.last_post_id.clear();
            self.stats
                .last_post_id
                .push_str(routed.key.as_deref().unwrap_or_default());
            self.stats.last_post_at_ms = Some(received_at_ms);
            if let Some(budget) = self.budget.as_mut() {
                let tag = routed.rule_tags.first().map_or("none", |t| t.as_ref());
                self.metrics.x_post_reads.with_label_values(&[tag]).inc();
                self.metrics
                    .x_estimated_cost_usd
                    .inc_by(budget.price_per_read_usd);
                budget.record(chrono::Utc::now());
                if let Some(gauges) = &self.window_gauges {
                    set_window_gauges(gauges, budget);
                }
            }
        }
        let rule_tags = (!routed.rule_tags.is_empty()).then(|| routed.rule_tags.join(","));
        let record = OutRecord {
            payload,
            key: routed.key.as_deref(),
            kind: routed.kind,
            error: routed.reason.as_deref(),
            rule_tags: rule_tags.as_deref(),
            source: &self.source,
            received_at_ms,
            sequence,
        };
        if let Err(error) = self.sink.send_blocking(&record) {
            self.stats.send_errors += 1;
            tracing::error!(kind = record.kind.as_str(), key = record.key, bytes = payload.len(), %error, "Kafka refused a record");
        }
    }
}

/// The budget's day and month counts into their gauges.
fn set_window_gauges(gauges: &[IntGauge; 2], budget: &ReadBudget) {
    let as_i64 = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
    gauges[0].set(as_i64(budget.state.day_reads));
    gauges[1].set(as_i64(budget.state.month_reads));
}
