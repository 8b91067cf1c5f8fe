//! The one Prometheus registry and every metric the pipeline exports; `/metrics` serving.
//!
//! Names follow the Prometheus naming guide (`<app>_<subsystem>_<what>_<unit>`, counters end in
//! `_total`, base units). Labels come from closed sets only: `topic` is the topic's role
//! (`tweets`, `retweets`, `control`, `deadletter`), never a configured name; `kind` is a
//! [`crate::Kind`]; `reason` and `language` are fixed vocabularies.

use std::net::SocketAddr;

use anyhow::Context;
use axum::{http::header, routing::get, Router};
use prometheus::{
    exponential_buckets, Encoder, GaugeVec, HistogramOpts, HistogramVec, IntCounter, IntCounterVec,
    IntGauge, IntGaugeVec, Opts, Registry, TextEncoder,
};
use tokio_util::sync::CancellationToken;

/// Metric name prefix.
const NAMESPACE: &str = "tweet_pipeline";

fn opts(subsystem: &str, name: &str, help: &str) -> Opts {
    Opts::new(name, help)
        .namespace(NAMESPACE)
        .subsystem(subsystem)
}

/// Registers a metric built from static options; both steps fail only on programming errors
/// (invalid name, or the same name registered twice).
fn register<M: prometheus::core::Collector + Clone + 'static>(
    registry: &Registry,
    metric: prometheus::Result<M>,
) -> M {
    let metric = metric.expect("metric options are static and valid");
    registry
        .register(Box::new(metric.clone()))
        .expect("each metric is registered once");
    metric
}

fn counter(registry: &Registry, subsystem: &str, name: &str, help: &str) -> IntCounter {
    register(registry, IntCounter::with_opts(opts(subsystem, name, help)))
}

fn counter_vec(
    registry: &Registry,
    subsystem: &str,
    name: &str,
    help: &str,
    labels: &[&str],
) -> IntCounterVec {
    register(
        registry,
        IntCounterVec::new(opts(subsystem, name, help), labels),
    )
}

fn int_gauge_vec(
    registry: &Registry,
    subsystem: &str,
    name: &str,
    help: &str,
    labels: &[&str],
) -> IntGaugeVec {
    register(
        registry,
        IntGaugeVec::new(opts(subsystem, name, help), labels),
    )
}

fn gauge_vec(
    registry: &Registry,
    subsystem: &str,
    name: &str,
    help: &str,
    labels: &[&str],
) -> GaugeVec {
    register(registry, GaugeVec::new(opts(subsystem, name, help), labels))
}

fn gauge(registry: &Registry, subsystem: &str, name: &str, help: &str) -> IntGauge {
    register(registry, IntGauge::with_opts(opts(subsystem, name, help)))
}

/// Metrics of `tweet-producer`.
#[derive(Clone)]
pub struct ProducerMetrics {
    /// Lines read from the source, keep-alives included.
    pub lines_read: IntCounter,
    /// Blank keep-alive lines (counted, not written).
    pub keepalives: IntCounter,
    /// Records acknowledged by the broker, by `topic` role and `kind`.
    pub records_sent: IntCounterVec,
    /// Records the broker did not acknowledge (librdkafka gave up), by `topic` role.
    pub delivery_failures: IntCounterVec,
    /// Lines written to the dead-letter topic, by `reason` (`malformed`, `unknown`, `oversized`).
    pub deadlettered: IntCounterVec,
    /// Times the local producer queue was full and reading waited (backpressure).
    pub queue_full_waits: IntCounter,
    /// Records handed to librdkafka and not yet acknowledged or failed.
    pub in_flight_records: IntGauge,
    /// Stream connections established (HTTP 200), by `api` (`x_v2`, `x_v1`, `mastodon`).
    pub stream_connections: IntCounterVec,
    /// Stream disconnects and failed connection attempts, by `api` and `reason` (`dropped`,
    /// `network`, `stall`, `http_5xx`, `http_4xx`, `rate_limited`, `too_many_connections`,
    /// `unauthorized`).
    pub stream_disconnects: IntCounterVec,
    /// 1 while the stream is connected, by `api`.
    pub stream_connected: IntGaugeVec,
    /// The wait before the next connection attempt, in seconds (0 when connected), by `api`.
    pub stream_backoff_seconds: GaugeVec,
    /// Bytes in the on-disk spool (records waiting for Kafka), drained segments excluded.
    pub spool_bytes: IntGauge,
    /// The spool's size bound in bytes (`--spool-max-bytes`; 0 when the spool is off).
    pub spool_capacity_bytes: IntGauge,
    /// Records in the spool not yet handed back to Kafka.
    pub spool_records: IntGauge,
    /// Records written to the spool, by `reason` (`queue_full`: Kafka's local queue stayed
    /// full; `delivery_failed`: librdkafka gave up on a record; `shutdown`: unacknowledged at exit).
    pub spooled_records: IntCounterVec,
    /// Times the spool was full and reading paused (backpressure).
    pub spool_full_waits: IntCounter,
    /// Bluesky Jetstream events read, by `collection` (the `app.bsky.*` NSID of a commit;
    /// `other` for any other lexicon, empty for identity and account events) and `kind` (the
    /// routed kind: `post`, `edit`, `repost`, `delete`, `event`, `identity`, `account`, ...).
    pub jetstream_events: IntCounterVec,
    /// Posts and reposts that matched none of the client-side rules (counted, not written).
    pub rule_unmatched: IntCounter,
    /// How far the saved Jetstream cursor is behind the wall clock, in seconds (the cursor is
    /// the newest `time_us` up to which Kafka has every record).
    pub cursor_lag_seconds: IntGauge,
    /// Posts read from an X stream (what X bills), by `tag`: the first matching rule's tag
    /// (`none` without one; v1.1 has no rules). Tags come from the operator's rules, a closed set.
    pub x_post_reads: IntCounterVec,
    /// Estimated cost of the X posts read, US dollars (reads × `--price-per-read-usd`; an upper
    /// bound: X counts a post read twice in a UTC day once).
    pub x_estimated_cost_usd: prometheus::Counter,
    /// Posts read in the current UTC day and month, by `window` (`day`, `month`): the read
    /// budget's counts, which survive a restart (the counter above starts again from zero).
    pub x_post_reads_window: IntGaugeVec,
    /// The configured read limits, by `window` (`day`, `month`); absent without a limit.
    pub x_post_reads_limit: IntGaugeVec,
    /// The configured price of one post read, US dollars (`--price-per-read-usd`).
    pub x_price_per_read_usd: prometheus::Gauge,
}

impl ProducerMetrics {
    /// Registers the producer's metrics in `registry`.
    ///
    /// # Panics
    /// If they are already registered there (a programming error: register once at start-up).
    pub fn register(registry: &Registry) -> Self {
        const S: &str = "producer";
        Self {
            lines_read: counter(
                registry,
                S,
                "lines_read_total",
                "Lines read from the stream source, keep-alives included.",
            ),
            keepalives: counter(
                registry,
                S,
                "keepalives_total",
                "Blank keep-alive lines received (not written to Kafka).",
            ),
            records_sent: counter_vec(
                registry,
                S,
                "records_sent_total",
                "Records acknowledged by Kafka, by topic role and message kind.",
                &["topic", "kind"],
            ),
            delivery_failures: counter_vec(
                registry,
                S,
                "delivery_failures_total",
                "Records Kafka did not acknowledge, by topic role.",
                &["topic"],
            ),
            deadlettered: counter_vec(
                registry,
                S,
                "deadletter_lines_total",
                "Lines routed to the dead-letter topic, by reason.",
                &["reason"],
            ),
            queue_full_waits: counter(
                registry,
                S,
                "queue_full_waits_total",
                "Times the producer queue was full and reading paused (backpressure).",
            ),
            in_flight_records: gauge(
                registry,
                S,
                "in_flight_records",
                "Records handed to the Kafka client and not yet acknowledged or failed.",
            ),
            stream_connections: counter_vec(
                registry,
                S,
                "stream_connections_total",
                "Streaming connections established (HTTP 200), by API.",
                &["api"],
            ),
            stream_disconnects: counter_vec(
                registry,
                S,
                "stream_disconnects_total",
                "Stream disconnects and failed connection attempts, by API and reason.",
                &["api", "reason"],
            ),
            stream_connected: int_gauge_vec(
                registry,
                S,
                "stream_connected",
                "1 while the stream is connected, by API.",
                &["api"],
            ),
            stream_backoff_seconds: gauge_vec(
                registry,
                S,
                "stream_backoff_seconds",
                "Wait before the next connection attempt in seconds, by API.",
                &["api"],
            ),
            spool_bytes: gauge(
                registry,
                S,
                "spool_bytes",
                "Bytes in the on-disk spool waiting for Kafka.",
            ),
            spool_capacity_bytes: gauge(
                registry,
                S,
                "spool_capacity_bytes",
                "Size bound of the on-disk spool in bytes (0: spool off).",
            ),
            spool_records: gauge(
                registry,
                S,
                "spool_records",
                "Records in the on-disk spool not yet handed back to Kafka.",
            ),
            spooled_records: counter_vec(
                registry,
                S,
                "spooled_records_total",
                "Records written to the on-disk spool, by reason.",
                &["reason"],
            ),
            spool_full_waits: counter(
                registry,
                S,
                "spool_full_waits_total",
                "Times the spool was full and reading paused (backpressure).",
            ),
            jetstream_events: counter_vec(
                registry,
                S,
                "jetstream_events_total",
                "Bluesky Jetstream events read, by collection (app.bsky.* NSID, other, or empty) and routed kind.",
                &["collection", "kind"],
            ),
            rule_unmatched: counter(
                registry,
                S,
                "rule_unmatched_total",
                "Posts and reposts that matched none of the client-side rules (not written).",
            ),
            cursor_lag_seconds: gauge(
                registry,
                S,
                "cursor_lag_seconds",
                "Seconds the saved Jetstream cursor is behind the wall clock.",
            ),
            x_post_reads: counter_vec(
                registry,
                S,
                "x_post_reads_total",
                "Posts read from an X stream (billed reads), by the first matching rule's tag.",
                &["tag"],
            ),
            x_estimated_cost_usd: register(
                registry,
                prometheus::Counter::with_opts(opts(
                    S,
                    "x_estimated_cost_usd_total",
                    "Estimated cost of the X posts read, US dollars (reads times the price per read).",
                )),
            ),
            x_post_reads_window: int_gauge_vec(
                registry,
                S,
                "x_post_reads_window",
                "Posts read in the current UTC day or month (the read budget's counts).",
                &["window"],
            ),
            x_post_reads_limit: int_gauge_vec(
                registry,
                S,
                "x_post_reads_limit",
                "The read budget's limit per UTC day or month.",
                &["window"],
            ),
            x_price_per_read_usd: register(
                registry,
                prometheus::Gauge::with_opts(opts(
                    S,
                    "x_price_per_read_usd",
                    "The configured price of one post read, US dollars.",
                )),
            ),
        }
    }
}

/// Metrics of `tweet-consumer`.
#[derive(Clone)]
pub struct ConsumerMetrics {
    /// Records consumed, by `topic` role and `kind`.
    pub records: IntCounterVec,
    /// Post rows inserted or updated in the store.
    pub rows_written: IntCounter,
    /// Delete notices applied (row removed or future insert prevented).
    pub deletes_applied: IntCounter,
    /// Records consumed but not stored, by `reason` (`tombstone`: a deleted post's null
    /// value; `foreign_topic`).
    pub records_skipped: IntCounterVec,
    /// Records written to the dead-letter topic by the consumer, by `reason` (`unparseable`,
    /// `no_id`).
    pub records_deadlettered: IntCounterVec,
    /// Tombstones written to the raw topics for deleted posts.
    pub tombstones_written: IntCounter,
    /// Posts analysed, by detected `language` (ISO 639-1 where one exists, else 639-3, or
    /// `unknown`) and `sentiment` (`positive`, `neutral`, `negative`, `none` for non-English).
    pub posts_analysed: IntCounterVec,
    /// Seconds from the producer receiving a line to its row being committed, by `topic` role.
    pub processing_latency: HistogramVec,
    /// Records per processed batch.
    pub batch_records: HistogramVec,
    /// Records not yet made durable, per assigned partition: its high watermark minus the next
    /// offset to commit (from librdkafka's statistics), by consumer `group` id, `topic` role and
    /// `partition`. Each instance reports only the partitions assigned to it.
    pub lag_records: IntGaugeVec,
}

impl ConsumerMetrics {
    /// Registers the consumer's metrics in `registry`.
    ///
    /// # Panics
    /// If they are already registered there.
    pub fn register(registry: &Registry) -> Self {
        const S: &str = "consumer";
        let histogram = |name: &str, help: &str, buckets: Vec<f64>, label: &str| {
            let options = HistogramOpts::new(name, help)
                .namespace(NAMESPACE)
                .subsystem(S)
                .buckets(buckets);
            register(registry, HistogramVec::new(options, &[label]))
        };
        let latency = histogram(
            "processing_latency_seconds",
            "Seconds from the producer receiving a line to its result being committed to the store.",
            // 0.5 ms .. ~80 s in steps of 25 %, so that percentiles read off the histogram
            // (benchmarks, dashboards) are within 25 % of the truth.
            exponential_buckets(0.0005, 1.25, 54).expect("static buckets"),
            "topic",
        );
        let batch = histogram(
            "batch_records",
            "Records per batch committed to the store.",
            exponential_buckets(1.0, 4.0, 8).expect("static buckets"),
            "group",
        );
        Self {
            records: counter_vec(
                registry,
                S,
                "records_total",
                "Records consumed, by topic role and message kind.",
                &["topic", "kind"],
            ),
            rows_written: counter(
                registry,
                S,
                "rows_written_total",
                "Post rows inserted or updated in the store.",
            ),
            deletes_applied: counter(
                registry,
                S,
                "deletes_applied_total",
                "Delete notices applied to the store.",
            ),
            records_skipped: counter_vec(
                registry,
                S,
                "records_skipped_total",
                "Records consumed but not stored, by reason.",
                &["reason"],
            ),
            records_deadlettered: counter_vec(
                registry,
                S,
                "records_deadlettered_total",
                "Records the consumer wrote to the dead-letter topic, by reason.",
                &["reason"],
            ),
            tombstones_written: counter(
                registry,
                S,
                "tombstones_written_total",
                "Tombstones written to the raw topics for deleted posts.",
            ),
            posts_analysed: counter_vec(
                registry,
                S,
                "posts_analysed_total",
                "Posts analysed, by detected language and sentiment label.",
                &["language", "sentiment"],
            ),
            processing_latency: latency,
            batch_records: batch,
            lag_records: int_gauge_vec(
                registry,
                S,
                "lag_records",
                "Records behind the high watermark per assigned partition, by group, topic role and partition.",
                &["group", "topic", "partition"],
            ),
        }
    }
}

/// Metrics of the scheduled-post poster (`tweet-consumer --group poster`).
#[derive(Clone)]
pub struct PosterMetrics {
    /// Scheduled posts of the assigned partitions not yet posted, failed, cancelled or missed.
    pub pending_posts: IntGauge,
    /// Final outcomes, by `outcome` (`posted`, `duplicate`, `failed`, `missed`).
    pub posts: IntCounterVec,
    /// Seconds between a post's due time and X accepting it.
    pub lateness: prometheus::Histogram,
    /// Calls to the X API, by `result` (`ok`, `rate_limited`, `server_error`, `client_error`,
    /// `timeout`, `network`).
    pub api_calls: IntCounterVec,
    /// Ambiguous attempts resolved by reading the account's posts, by `found` (`true`, `false`).
    pub reconciliations: IntCounterVec,
}

impl PosterMetrics {
    /// Registers the poster's metrics in `registry`.
    ///
    /// # Panics
    /// If they are already registered there.
    pub fn register(registry: &Registry) -> Self {
        const S: &str = "poster";
        let lateness = HistogramOpts::new(
            "lateness_seconds",
            "Seconds between a scheduled post's due time and X accepting it.",
        )
        .namespace(NAMESPACE)
        .subsystem(S)
        // 10 ms .. 1 h: the 1 s target sits on a bucket boundary.
        .buckets(vec![
            0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 3600.0,
        ]);
        Self {
            pending_posts: gauge(
                registry,
                S,
                "pending_posts",
                "Scheduled posts of the assigned partitions still to be posted.",
            ),
            posts: counter_vec(
                registry,
                S,
                "posts_total",
                "Scheduled posts by final outcome.",
                &["outcome"],
            ),
            lateness: register(registry, prometheus::Histogram::with_opts(lateness)),
            api_calls: counter_vec(
                registry,
                S,
                "api_calls_total",
                "Calls to the X API by result.",
                &["result"],
            ),
            reconciliations: counter_vec(
                registry,
                S,
                "reconciliations_total",
                "Ambiguous attempts resolved by reading the account's recent posts.",
                &["found"],
            ),
        }
    }
}

/// Metrics of the web view (`tweet-consumer --group web`).
#[derive(Clone)]
pub struct WebMetrics {
    /// Browsers' event streams open now.
    pub browsers: IntGauge,
    /// Events sent to browsers, by `event` (`post`, `recent`, `delete`).
    pub events_sent: IntCounterVec,
    /// Browsers that fell more than the feed's capacity behind, told to reload and dropped.
    pub browsers_dropped: IntCounter,
}

impl WebMetrics {
    /// Registers the web view's metrics in `registry`.
    ///
    /// # Panics
    /// If they are already registered there.
    pub fn register(registry: &Registry) -> Self {
        const S: &str = "web";
        Self {
            browsers: gauge(registry, S, "browsers", "Browsers' event streams open now."),
            events_sent: counter_vec(
                registry,
                S,
                "events_sent_total",
                "Events sent to browsers by event.",
                &["event"],
            ),
            browsers_dropped: counter(
                registry,
                S,
                "browsers_dropped_total",
                "Browsers that fell behind the feed, told to reload and dropped.",
            ),
        }
    }
}

/// Renders `registry` in the Prometheus text exposition format (version 0.0.4).
pub fn render(registry: &Registry) -> String {
    let mut buffer = Vec::new();
    // Encoding into a Vec cannot fail for well-formed metric families.
    if let Err(error) = TextEncoder::new().encode(&registry.gather(), &mut buffer) {
        tracing::warn!(%error, "encoding metrics failed");
    }
    String::from_utf8(buffer).unwrap_or_default()
}

/// Binds `addr` and serves `GET /metrics` until `shutdown` is cancelled. Returns the bound
/// address (useful with port 0) once listening.
///
/// # Errors
/// When the address cannot be bound (in use, not local, no permission).
pub async fn serve(
    addr: SocketAddr,
    registry: Registry,
    shutdown: CancellationToken,
) -> anyhow::Result<SocketAddr> {
    let listener = tokio::net::TcpListener::bind(addr).await.with_context(|| {
        format!("cannot listen for /metrics on {addr}; pick another --metrics-addr or 'off'")
    })?;
    let bound = listener
        .local_addr()
        .context("reading the metrics listener's address")?;
    let app = Router::new().route(
        "/metrics",
        get(move || {
            let registry = registry.clone();
            async move {
                (
                    [(
                        header::CONTENT_TYPE,
                        "text/plain; version=0.0.4; charset=utf-8",
                    )],
                    render(&registry),
                )
            }
        }),
    );
    tokio::spawn(async move {
        let served = axum::serve(listener, app)
            .with_graceful_shutdown(shutdown.cancelled_owned())
            .await;
        if let Err(error) = served {
            tracing::error!(%error, "metrics endpoint stopped");
        }
    });
    tracing::info!(%bound, "serving Prometheus metrics on /metrics");
    Ok(bound)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_conventions_and_render() {
        let registry = Registry::new();
        let producer = ProducerMetrics::register(&registry);
        let consumer = ConsumerMetrics::register(&registry);
        producer
            .records_sent
            .with_label_values(&["tweets", "tweet"])
            .inc();
        consumer
            .processing_latency
            .with_label_values(&["tweets"])
            .observe(0.01);
        let text = render(&registry);
        assert!(
            text.contains(
                "tweet_pipeline_producer_records_sent_total{kind=\"tweet\",topic=\"tweets\"} 1"
            ),
            "{text}"
        );
        assert!(text.contains("tweet_pipeline_consumer_processing_latency_seconds_bucket"));
        for family in registry.gather() {
            let name = family.name();
            assert!(name.starts_with("tweet_pipeline_"), "{name}");
            if family.get_field_type() == prometheus::proto::MetricType::COUNTER {
                assert!(
                    name.ends_with("_total"),
                    "counter {name} must end in _total"
                );
            }
        }
    }
}
