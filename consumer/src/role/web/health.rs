//! The stream-health panel: the server polls the producer's and consumers' `/metrics`
//! (`--metrics-url`, Prometheus text format 0.0.4) and summarises them for the page: lines per
//! second by topic, keep-alives, disconnects by reason, dead letters, spool bytes and consumer
//! lag. The browser only reads the summary (`GET /api/stream-health`), so any number of pages
//! costs one scrape per endpoint per [`POLL_INTERVAL`].
//!
//! The samples are read by [`parse_samples`], a small parser of the text format's sample
//! lines (the exposition format document, prometheus.io/docs/instrumenting/exposition_formats):
//! only names, labels and values are needed, and the pipeline's own endpoints are the input.

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use serde::Serialize;
use tokio_util::sync::CancellationToken;

/// How often every endpoint is scraped.
pub const POLL_INTERVAL: Duration = Duration::from_secs(5);
/// How long one scrape may take before the endpoint counts as down.
const SCRAPE_TIMEOUT: Duration = Duration::from_secs(3);

/// One sample: metric name, labels (in exposition order), value.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// The series name (`tweet_pipeline_producer_records_sent_total`).
    pub name: String,
    /// Label pairs, unescaped.
    pub labels: Vec<(String, String)>,
    /// The value (`NaN`, `+Inf` included).
    pub value: f64,
}

impl Sample {
    /// The value of label `name`, or "".
    pub fn label(&self, name: &str) -> &str {
        self.labels
            .iter()
            .find(|(k, _)| k == name)
            .map_or("", |(_, v)| v.as_str())
    }
}

/// The samples of a text-format scrape. Comments (`# HELP`, `# TYPE`) and blank lines are
/// skipped; a line that does not parse is skipped too (the rest still counts).
pub fn parse_samples(text: &str) -> Vec<Sample> {
    text.lines().filter_map(parse_line).collect()
}

fn parse_line(line: &str) -> Option<Sample> {
    let line = line.trim();
    if line.is_empty() || line.starts_with('#') {
        return None;
    }
    let name_end = line.find(|c: char| c == '{' || c.is_whitespace())?;
    let name = &line[..name_end];
    let mut rest = &line[name_end..];
    let mut labels = Vec::new();
    if let Some(inner) = rest.strip_prefix('{') {
        let mut chars = inner.char_indices();
        let mut key = String::new();
        let mut end = None;
        while let Some((i, c)) = chars.next() {
            match c {
                '}' => {
                    end = Some(i + 1);
                    break;
                }
                ',' | ' ' => {}
                '=' => {
                    if chars.next()?.1 != '"' {
                        return None;
                    }
                    let mut value = String::new();
                    loop {
                        match chars.next()?.1 {
                            '\\' => match chars.next()?.1 {
                                'n' => value.push('\n'),
                                other => value.push(other),
                            },
                            '"' => break,
                            other => value.push(other),
                        }
                    }
                    labels.push((std::mem::take(&mut key), value));
                }
                other => key.push(other),
            }
        }
        rest = &inner[end?..];
    }
    let value = match rest.split_whitespace().next()? {
        "+Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        other => other.parse().ok()?,
    };
    Some(Sample {
        name: name.to_owned(),
        labels,
        value,
    })
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
other_metric{path="a\"b\\c"} +Inf
"#;

    #[test]
    fn samples_are_parsed_with_escaped_labels_and_bad_lines_skipped() {
        let samples = parse_samples(SCRAPE);
        assert_eq!(samples.len(), 12, "{samples:#?}");
        assert_eq!(samples[0].label("topic"), "tweets");
        assert_eq!(samples[0].value, 10.0);
        let last = samples.last().unwrap();
        assert_eq!(last.label("path"), "a\"b\\c");
        assert!(last.value.is_infinite());
        assert_eq!(samples[3].labels, vec![]);
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
