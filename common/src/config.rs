//! Command-line configuration shared by the binaries: the Kafka connection, the topic names and
//! the metrics listener. Each flag has a long name, an environment fallback and a default.

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;

use clap::Args;

use crate::route::Destination;
use crate::secret::{check_private, Secret};

/// Default bootstrap address: the local broker of `scripts/kafka-local.sh`. `127.0.0.1`, not
/// `localhost`: librdkafka tries IPv6 first and the local broker listens on IPv4 only
/// (rust-rdkafka#809).
pub const DEFAULT_BOOTSTRAP: &str = "127.0.0.1:9092";

/// How to reach Kafka.
#[derive(Clone, Args)]
pub struct KafkaArgs {
    /// Kafka bootstrap servers, comma separated (host:port).
    #[arg(long = "bootstrap", env = "KAFKA_BOOTSTRAP", default_value = DEFAULT_BOOTSTRAP)]
    pub bootstrap: String,

    /// A file of librdkafka properties (`key=value` lines, `#` comments), applied after the
    /// built-in settings and before -X; for security settings with secrets (e.g.
    /// `sasl.password`), so they stay off the command line. Must not be group- or
    /// world-readable (chmod 600).
    #[arg(long = "kafka-config", env = "KAFKA_CONFIG_FILE", value_name = "FILE", value_parser = parse_kafka_config_file)]
    pub config_file: Option<KafkaConfigFile>,

    /// A librdkafka property, `key=value`, applied after every built-in setting (repeatable;
    /// like kcat's -X). Example: `-X security.protocol=SASL_SSL`.
    #[arg(short = 'X', value_name = "KEY=VALUE", value_parser = parse_property)]
    pub properties: Vec<(String, String)>,
}

impl KafkaArgs {
    /// Every librdkafka property the user set, in the order they apply: the config file's,
    /// then -X's. Values are secrets-in-waiting: never log them.
    pub fn user_properties(&self) -> impl Iterator<Item = (&str, &str)> {
        self.config_file
            .iter()
            .flat_map(|file| {
                file.properties
                    .iter()
                    .map(|(k, v)| (k.as_str(), v.expose()))
            })
            .chain(
                self.properties
                    .iter()
                    .map(|(k, v)| (k.as_str(), v.as_str())),
            )
    }
}

/// Whether a librdkafka property's value is a secret (passwords, keys, tokens, JAAS and
/// OAUTHBEARER configs), by its name (librdkafka CONFIGURATION.md).
pub fn is_sensitive_property(key: &str) -> bool {
    let key = key.to_ascii_lowercase();
    [
        "password",
        "secret",
        "key.pem",
        "ssl.key",
        "sasl.oauthbearer.config",
        "jaas",
        "token",
    ]
    .iter()
    .any(|word| key.contains(word))
}

impl fmt::Debug for KafkaArgs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let properties: Vec<String> = self
            .properties
            .iter()
            .map(|(key, value)| {
                if is_sensitive_property(key) {
                    format!("{key}=***")
                } else {
                    format!("{key}={value}")
                }
            })
            .collect();
        f.debug_struct("KafkaArgs")
            .field("bootstrap", &self.bootstrap)
            .field("config_file", &self.config_file)
            .field("properties", &properties)
            .finish()
    }
}

/// librdkafka properties read from `--kafka-config`; `Debug` shows the path and the keys only.
#[derive(Clone)]
pub struct KafkaConfigFile {
    /// Where they came from.
    pub path: PathBuf,
    /// `(key, value)` in file order.
    pub properties: Vec<(String, Secret)>,
}

impl fmt::Debug for KafkaConfigFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let keys: Vec<&str> = self.properties.iter().map(|(k, _)| k.as_str()).collect();
        f.debug_struct("KafkaConfigFile")
            .field("path", &self.path)
            .field("keys", &keys)
            .finish()
    }
}

/// Reads a librdkafka properties file: `key=value` lines, blank lines and `#` comments.
///
/// # Errors
/// When the file is group- or world-readable, unreadable, or a line has no `=` (the message
/// names the file and line, never a value).
pub fn parse_kafka_config_file(s: &str) -> Result<KafkaConfigFile, String> {
    let path = PathBuf::from(s);
    check_private(&path).map_err(|e| format!("{e:#}"))?;
    let text = std::fs::read_to_string(&path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let mut properties = Vec::new();
    for (number, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        // The file's values may be secrets: the error names the line, never its text.
        let (key, value) = parse_property(line).map_err(|_| {
            format!(
                "{}:{}: expected a librdkafka property as key=value",
                path.display(),
                number + 1
            )
        })?;
        properties.push((key, Secret::new(value.trim())));
    }
    Ok(KafkaConfigFile { path, properties })
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

    #[test]
    fn kafka_args_debug_hides_sensitive_values() {
        let args = KafkaArgs {
            bootstrap: "127.0.0.1:9092".to_owned(),
            config_file: Some(KafkaConfigFile {
                path: "kafka.properties".into(),
                properties: vec![("sasl.password".to_owned(), Secret::new("file-pass"))],
            }),
            properties: vec![
                ("sasl.password".to_owned(), "x-pass".to_owned()),
                ("linger.ms".to_owned(), "20".to_owned()),
            ],
        };
        let debug = format!("{args:?}");
        assert!(
            !debug.contains("file-pass") && !debug.contains("x-pass"),
            "{debug}"
        );
        assert!(debug.contains("linger.ms=20") && debug.contains("sasl.password=***"));
        let applied: Vec<_> = args.user_properties().collect();
        assert_eq!(
            applied,
            [
                ("sasl.password", "file-pass"),
                ("sasl.password", "x-pass"),
                ("linger.ms", "20")
            ],
            "the file first, then -X"
        );
    }

    #[cfg(unix)]
    #[test]
    fn kafka_config_files_must_be_private_and_well_formed() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("kafka.properties");
        std::fs::write(
            &path,
            "# comment\nsecurity.protocol=SASL_SSL\nsasl.password=p\n",
        )
        .unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert!(parse_kafka_config_file(path.to_str().unwrap()).is_err());
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        let file = parse_kafka_config_file(path.to_str().unwrap()).unwrap();
        assert_eq!(file.properties.len(), 2);
        std::fs::write(&path, "security.protocol\n").unwrap();
        let error = parse_kafka_config_file(path.to_str().unwrap()).unwrap_err();
        assert!(
            error.ends_with("kafka.properties:1: expected a librdkafka property as key=value"),
            "{error}"
        );
    }

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
