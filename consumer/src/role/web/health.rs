//! The stream-health panel: the server polls the producer's and consumers' `/metrics`
//! (`--metrics-url`, Prometheus text format 0.0.4) and summarises them for the page: lines per
//! second by topic, keep-alives, disconnects by reason, dead letters, spool bytes and consumer
//! lag. The browser only reads the summary (`GET /api/stream-health`), so any number of pages
//! costs one scrape per endpoint per [`POLL_INTERVAL`].
//!
//! The scrape is parsed by the `prometheus-parse` crate. Its label parser splits on `,` and
//! `=` without unescaping, which is enough here: the labels the panel reads (`topic`, `reason`,
//! `group`) carry identifiers only (docs/metrics.md).

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use prometheus_parse::Value;
use serde::Serialize;
use tokio_util::sync::CancellationToken;

/// How often every endpoint is scraped.
pub const POLL_INTERVAL: Duration = Duration::from_secs(5);
/// How long one scrape may take before the endpoint counts as down.
const SCRAPE_TIMEOUT: Duration = Duration::from_secs(3);

/// The counter, gauge and untyped samples of a text-format scrape (the exposition format
/// document, prometheus.io/docs/instrumenting/exposition_formats), as `(name, labels, value)`.
/// Comments and lines that do not parse are skipped; the rest still counts.
pub fn parse_samples(text: &str) -> Vec<Sample> {
    let lines = text.lines().map(|line| Ok(line.to_owned()));
    let Ok(scrape) = prometheus_parse::Scrape::parse(lines) else {
        return Vec::new(); // only a failing reader errs, and a &str cannot fail
    };
    scrape
        .samples
        .into_iter()
        .filter_map(|s| {
            let value = match s.value {
                Value::Counter(v) | Value::Gauge(v) | Value::Untyped(v) => v,
                Value::Histogram(_) | Value::Summary(_) => return None,
            };
            Some(Sample {
                name: s.metric,
                labels: s.labels,
                value,
            })
        })
        .collect()
}

/// One scalar sample of a scrape.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// The series name (`tweet_pipeline_producer_records_sent_total`).
    pub name: String,
    /// The sample's labels.
    pub labels: prometheus_parse::Labels,
    /// The value (`NaN`, `+Inf` included).
    pub value: f64,
}

impl Sample {
    /// The value of label `name`, or "".
    pub fn label(&self, name: &str) -> &str {
        self.labels.get(name).unwrap_or("")
    }
}

/// What one scrape holds that the panel shows (totals; rates come from two of them).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Totals {
    /// Records by topic role: acknowledged by Kafka (producer) or consumed (consumer).
    pub records_by_topic: BTreeMap<String, f64>,
    /// Keep-alive lines received (producer; `None` where not exported).
    pub keepalives: Option<f64>,
    /// Stream disconnects by reason, over every API (producer).
    pub disconnects_by_reason: BTreeMap<String, f64>,
    /// Dead letters by reason (producer lines and consumer records).
    pub dead_letters_by_reason: BTreeMap<String, f64>,
    /// Bytes in the producer's spool, if it exports them.
    pub spool_bytes: Option<f64>,
    /// Consumer lag in records by `group/topic`, over the partitions.
    pub lag_by_group_topic: BTreeMap<String, f64>,
}

/// The panel's totals of a scrape's samples (the pipeline's metric names, docs/metrics.md).
pub fn totals(samples: &[Sample]) -> Totals {
    let mut t = Totals::default();
    let add = |map: &mut BTreeMap<String, f64>, key: &str, value: f64| {
        *map.entry(key.to_owned()).or_default() += value;
    };
    for s in samples {
        match s.name.as_str() {
            "tweet_pipeline_producer_records_sent_total"
            | "tweet_pipeline_consumer_records_total" => {
                add(&mut t.records_by_topic, s.label("topic"), s.value);
            }
            "tweet_pipeline_producer_keepalives_total" => {
                *t.keepalives.get_or_insert(0.0) += s.value;
            }
            "tweet_pipeline_producer_stream_disconnects_total" => {
                add(&mut t.disconnects_by_reason, s.label("reason"), s.value);
            }
            "tweet_pipeline_producer_deadletter_lines_total"
            | "tweet_pipeline_consumer_records_deadlettered_total" => {
                add(&mut t.dead_letters_by_reason, s.label("reason"), s.value);
            }
            "tweet_pipeline_producer_spool_bytes" => {
                *t.spool_bytes.get_or_insert(0.0) += s.value;
            }
            "tweet_pipeline_consumer_lag_records" => {
                let key = format!("{}/{}", s.label("group"), s.label("topic"));
                add(&mut t.lag_by_group_topic, &key, s.value);
            }
            _ => {}
        }
    }
    t
}

/// One endpoint as the page shows it.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct EndpointHealth {
    /// The URL polled (configured by the operator; shown as given).
    pub url: String,
    /// Whether the last scrape answered 200 with the text format.
    pub up: bool,
    /// Why the last scrape failed, if it did.
    pub error: Option<String>,
    /// When it was last scraped successfully, Unix milliseconds.
    pub scraped_at_ms: Option<i64>,
    /// The totals of the last successful scrape.
    pub totals: Totals,
    /// Records per second by topic role between the last two successful scrapes.
    pub records_per_second: BTreeMap<String, f64>,
    /// Keep-alives per second over the same interval.
    pub keepalives_per_second: Option<f64>,
}

/// Per-second rates of the counters in `now` since `before`, `seconds` apart; a counter
/// that went down (the process restarted) starts again from zero, as Prometheus' `rate`
/// treats a reset.
pub fn rates(
    before: &BTreeMap<String, f64>,
    now: &BTreeMap<String, f64>,
    seconds: f64,
) -> BTreeMap<String, f64> {
    if seconds <= 0.0 {
        return BTreeMap::new();
    }
    now.iter()
        .map(|(key, value)| {
            let old = before.get(key).copied().unwrap_or(0.0);
            let delta = if *value >= old { value - old } else { *value };
            (key.clone(), delta / seconds)
        })
        .collect()
}

/// The endpoint after a successful scrape at `now_ms`, from its previous state.
pub fn observe(previous: &EndpointHealth, totals: Totals, now_ms: i64) -> EndpointHealth {
    let seconds = previous
        .scraped_at_ms
        .map_or(0.0, |then| (now_ms - then) as f64 / 1000.0);
    let (records_per_second, keepalives_per_second) = if previous.scraped_at_ms.is_some() {
        let keep = match (previous.totals.keepalives, totals.keepalives) {
            (Some(before), Some(now)) => rates(
                &BTreeMap::from([(String::new(), before)]),
                &BTreeMap::from([(String::new(), now)]),
                seconds,
            )
            .get("")
            .copied(),
            _ => None,
        };
        (
            rates(
                &previous.totals.records_by_topic,
                &totals.records_by_topic,
                seconds,
            ),
            keep,
        )
    } else {
        (BTreeMap::new(), None)
    };
    EndpointHealth {
        url: previous.url.clone(),
        up: true,
        error: None,
        scraped_at_ms: Some(now_ms),
        totals,
        records_per_second,
        keepalives_per_second,
    }
}

/// The panel, `GET /api/stream-health`: one entry per `--metrics-url`, in flag order.
pub type HealthPanel = Arc<RwLock<Vec<EndpointHealth>>>;

/// A panel with every URL not yet scraped.
pub fn panel(urls: &[String]) -> HealthPanel {
    Arc::new(RwLock::new(
        urls.iter()
            .map(|url| EndpointHealth {
                url: url.clone(),
                error: Some("not scraped yet".to_owned()),
                ..EndpointHealth::default()
            })
            .collect(),
    ))
}

async fn scrape(client: &reqwest::Client, url: &str) -> Result<String, String> {
    let response = client
        .get(url)
        .send()
        .await
        .map_err(|e| format!("unreachable: {}", e.without_url()))?;
    if !response.status().is_success() {
        return Err(format!("answered {}", response.status()));
    }
    response
        .text()
        .await
        .map_err(|e| format!("unreadable answer: {}", e.without_url()))
}

/// Scrapes every endpoint of `panel` each [`POLL_INTERVAL`] until `shutdown`.
pub async fn poll(panel: HealthPanel, shutdown: CancellationToken) {
    let Ok(client) = reqwest::Client::builder().timeout(SCRAPE_TIMEOUT).build() else {
        tracing::warn!("no HTTP client for the stream-health panel; it stays empty");
        return;
    };
    let urls: Vec<String> = panel
        .read()
        .map(|p| p.iter().map(|e| e.url.clone()).collect())
        .unwrap_or_default();
    if urls.is_empty() {
        return;
    }
    let mut tick = tokio::time::interval(POLL_INTERVAL);
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            _ = tick.tick() => {}
        }
        for (i, url) in urls.iter().enumerate() {
            let scraped = scrape(&client, url).await;
            let now_ms = tweet_pipeline_common::headers::now_ms();
            let Ok(mut entries) = panel.write() else {
                return;
            };
            let Some(entry) = entries.get_mut(i) else {
                continue;
            };
            *entry = match scraped {
                Ok(text) => observe(entry, totals(&parse_samples(&text)), now_ms),
                Err(error) => EndpointHealth {
                    up: false,
                    error: Some(error),
                    ..entry.clone()
                },
            };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SCRAPE: &str = r#"# HELP tweet_pipeline_producer_records_sent_total Records acknowledged.
# TYPE tweet_pipeline_producer_records_sent_total counter
tweet_pipeline_producer_records_sent_total{kind="tweet",topic="tweets"} 10
tweet_pipeline_producer_records_sent_total{kind="retweet",topic="retweets"} 4
tweet_pipeline_producer_records_sent_total{kind="delete",topic="control"} 1
tweet_pipeline_producer_keepalives_total 3
tweet_pipeline_producer_stream_disconnects_total{api="x_v2",reason="stall"} 2
tweet_pipeline_producer_stream_disconnects_total{api="x_v1",reason="stall"} 1
tweet_pipeline_producer_deadletter_lines_total{reason="malformed"} 5
tweet_pipeline_consumer_records_deadlettered_total{reason="no_id"} 1
tweet_pipeline_producer_spool_bytes 4096
tweet_pipeline_consumer_lag_records{group="analysis",partition="0",topic="tweets"} 7
tweet_pipeline_consumer_lag_records{group="analysis",partition="1",topic="tweets"} 2
weird_line{unterminated="x 1
other_metric{path="/metrics"} +Inf
"#;

    #[test]
    fn samples_are_parsed_and_bad_lines_skipped() {
        let samples = parse_samples(SCRAPE);
        assert_eq!(samples.len(), 12, "{samples:#?}");
        assert_eq!(
            samples[0].name,
            "tweet_pipeline_producer_records_sent_total"
        );
        assert_eq!(samples[0].label("topic"), "tweets");
        assert_eq!(samples[0].value, 10.0);
        assert_eq!(samples[3].label("topic"), "", "no labels");
        assert!(samples.last().unwrap().value.is_infinite());
    }

    #[test]
    fn totals_and_rates_follow_the_pipeline_metrics() {
        let t = totals(&parse_samples(SCRAPE));
        assert_eq!(t.records_by_topic["tweets"], 10.0);
        assert_eq!(t.records_by_topic["control"], 1.0);
        assert_eq!(t.keepalives, Some(3.0));
        assert_eq!(totals(&[]).keepalives, None, "not a producer");
        assert_eq!(t.disconnects_by_reason["stall"], 3.0);
        assert_eq!(t.dead_letters_by_reason["malformed"], 5.0);
        assert_eq!(t.dead_letters_by_reason["no_id"], 1.0);
        assert_eq!(t.spool_bytes, Some(4096.0));
        assert_eq!(t.lag_by_group_topic["analysis/tweets"], 9.0);

        let first = observe(&EndpointHealth::default(), t.clone(), 10_000);
        assert!(first.up && first.records_per_second.is_empty());
        let mut later = t.clone();
        later.records_by_topic.insert("tweets".into(), 30.0);
        later.records_by_topic.insert("retweets".into(), 2.0); // restarted: a reset
        later.keepalives = Some(8.0);
        let second = observe(&first, later, 15_000);
        assert_eq!(second.records_per_second["tweets"], 4.0);
        assert_eq!(second.records_per_second["retweets"], 0.4);
        assert_eq!(second.records_per_second["control"], 0.0);
        assert_eq!(second.keepalives_per_second, Some(1.0));
    }
}
