//! Command-line configuration shared by the binaries: the Kafka connection, the topic names and
//! the metrics listener. Each flag has a long name, an environment fallback and a default.

use std::net::SocketAddr;

use clap::Args;

use crate::route::Destination;

/// Default bootstrap address: the local broker of `scripts/kafka-local.sh`. `127.0.0.1`, not
/// `localhost`: librdkafka tries IPv6 first and the local broker listens on IPv4 only
/// (rust-rdkafka#809).
pub const DEFAULT_BOOTSTRAP: &str = "127.0.0.1:9092";

/// How to reach Kafka.
#[derive(Debug, Clone, Args)]
pub struct KafkaArgs {
    /// Kafka bootstrap servers, comma separated (host:port).
    #[arg(long = "bootstrap", env = "KAFKA_BOOTSTRAP", default_value = DEFAULT_BOOTSTRAP)]
    pub bootstrap: String,

    /// A librdkafka property, `key=value`, applied after every built-in setting (repeatable;
    /// like kcat's -X). Example: `-X security.protocol=SASL_SSL`.
    #[arg(short = 'X', value_name = "KEY=VALUE", value_parser = parse_property)]
    pub properties: Vec<(String, String)>,
}

/// Parses a `key=value` librdkafka property.
///
/// # Errors
/// When there is no `=` or the key is empty.
pub fn parse_property(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((key, value)) if !key.trim().is_empty() => {
            Ok((key.trim().to_owned(), value.to_owned()))
        }
        _ => Err(format!(
            "expected a librdkafka property as key=value (e.g. -X linger.ms=5), got '{s}'"
        )),
    }
}

/// The names of the pipeline's topics (created by `topics.sh`).
#[derive(Debug, Clone, Args)]
pub struct TopicNames {
    /// Topic for original posts, replies and quotes.
    #[arg(long = "tweets-topic", env = "TWEETS_TOPIC", default_value = "tweets")]
    pub tweets: String,
    /// Topic for retweets.
    #[arg(
        long = "retweets-topic",
        env = "RETWEETS_TOPIC",
        default_value = "retweets"
    )]
    pub retweets: String,
    /// Topic for control messages (delete, limit, disconnect, warning, withheld, errors).
    #[arg(
        long = "control-topic",
        env = "CONTROL_TOPIC",
        default_value = "control"
    )]
    pub control: String,
    /// Topic for lines that could not be routed (malformed JSON, unknown shapes, oversized).
    #[arg(
        long = "deadletter-topic",
        env = "DEADLETTER_TOPIC",
        default_value = "deadletter"
    )]
    pub deadletter: String,
}

impl TopicNames {
    /// The topic name of a destination.
    pub fn name(&self, destination: Destination) -> &str {
        match destination {
            Destination::Tweets => &self.tweets,
            Destination::Retweets => &self.retweets,
            Destination::Control => &self.control,
            Destination::DeadLetter => &self.deadletter,
        }
    }

    /// The destination a topic name stands for, if it is one of these topics.
    pub fn destination(&self, topic: &str) -> Option<Destination> {
        Destination::ALL
            .into_iter()
            .find(|destination| self.name(*destination) == topic)
    }

    /// The same names with `prefix` prepended (tests give every run its own topics).
    pub fn with_prefix(prefix: &str) -> Self {
        Self {
            tweets: format!("{prefix}tweets"),
            retweets: format!("{prefix}retweets"),
            control: format!("{prefix}control"),
            deadletter: format!("{prefix}deadletter"),
        }
    }
}

impl Default for TopicNames {
    fn default() -> Self {
        Self::with_prefix("")
    }
}

/// The topics of scheduled posts (created by `topics.sh`): the schedule and the poster's
/// outcomes, both compacted and keyed by the scheduled post's id.
#[derive(Debug, Clone, Args)]
pub struct ScheduleTopics {
    /// Compacted topic of scheduled posts (key: post id; value: JSON; a tombstone cancels).
    #[arg(
        long = "scheduled-topic",
        env = "SCHEDULED_TOPIC",
        default_value = "scheduled"
    )]
    pub scheduled: String,
    /// Compacted topic of the poster's outcomes (key: post id; the latest outcome is kept).
    /// It must have as many partitions as the scheduled topic.
    #[arg(
        long = "scheduled-results-topic",
        env = "SCHEDULED_RESULTS_TOPIC",
        default_value = "scheduled-results"
    )]
    pub results: String,
}

impl ScheduleTopics {
    /// The same names with `prefix` prepended.
    pub fn with_prefix(prefix: &str) -> Self {
        Self {
            scheduled: format!("{prefix}scheduled"),
            results: format!("{prefix}scheduled-results"),
        }
    }
}

/// Where `/metrics` is served.
#[derive(Debug, Clone, Args)]
pub struct MetricsArgs {
    /// Address for the Prometheus `/metrics` endpoint (port 0 picks a free port; `off`
    /// disables it). Loopback by default: metrics are for a local scraper.
    #[arg(long = "metrics-addr", env = "METRICS_ADDR", value_parser = parse_metrics_addr)]
    pub metrics_addr: Option<MetricsAddr>,
}

/// A parsed `--metrics-addr`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetricsAddr {
    /// Serve on this address.
    On(SocketAddr),
    /// Don't serve metrics.
    Off,
}

impl MetricsArgs {
    /// The address to serve on, `default` when the flag is absent, `None` when it is `off`.
    pub fn addr_or(&self, default: SocketAddr) -> Option<SocketAddr> {
        match self.metrics_addr {
            None => Some(default),
            Some(MetricsAddr::On(addr)) => Some(addr),
            Some(MetricsAddr::Off) => None,
        }
    }
}

fn parse_metrics_addr(s: &str) -> Result<MetricsAddr, String> {
    if s.eq_ignore_ascii_case("off") {
        return Ok(MetricsAddr::Off);
    }
    s.parse()
        .map(MetricsAddr::On)
        .map_err(|_| format!("expected host:port such as 127.0.0.1:9101, or 'off', got '{s}'"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn properties_need_a_key_and_an_equals_sign() {
        assert_eq!(
            parse_property("linger.ms=5"),
            Ok(("linger.ms".to_owned(), "5".to_owned()))
        );
        assert_eq!(
            parse_property("sasl.password=a=b"),
            Ok(("sasl.password".to_owned(), "a=b".to_owned()))
        );
        assert!(parse_property("linger.ms").is_err());
        assert!(parse_property("=5").is_err());
    }

    #[test]
    fn topic_names_map_both_ways() {
        let names = TopicNames::with_prefix("t1-");
        for destination in Destination::ALL {
            assert_eq!(
                names.destination(names.name(destination)),
                Some(destination)
            );
        }
        assert_eq!(names.destination("tweets"), None);
    }

    #[test]
    fn metrics_addr_parses_off_and_addresses() {
        assert_eq!(parse_metrics_addr("off"), Ok(MetricsAddr::Off));
        assert!(matches!(
            parse_metrics_addr("127.0.0.1:0"),
            Ok(MetricsAddr::On(_))
        ));
        assert!(parse_metrics_addr("localhost").is_err());
    }
}
