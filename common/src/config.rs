//! Command-line configuration shared by the binaries: the Kafka connection, the topic names,
//! the metrics listener, the X API root and the summary format. Each flag has a long name, an
//! environment fallback and a default.
//!
//! Environment variables carry one prefix, [`ENV_PREFIX`] (`TWEET_PIPELINE_SPOOL_DIR` for
//! `--spool-dir`), except credentials, which keep the names their providers document
//! (`X_BEARER_TOKEN`, `MASTODON_TOKEN`, ...), and `KAFKA_BOOTSTRAP`, still read when
//! `TWEET_PIPELINE_KAFKA_BOOTSTRAP` is unset because every script sets it.

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

/// The prefix of every environment variable the binaries read (credentials aside).
pub const ENV_PREFIX: &str = "TWEET_PIPELINE_";

/// The older name of `TWEET_PIPELINE_KAFKA_BOOTSTRAP`, read when that one is unset.
pub const LEGACY_BOOTSTRAP_ENV: &str = "KAFKA_BOOTSTRAP";

/// The `--bootstrap` default: the older [`LEGACY_BOOTSTRAP_ENV`] when it is set and not
/// empty, else [`DEFAULT_BOOTSTRAP`]. clap reads `TWEET_PIPELINE_KAFKA_BOOTSTRAP` before any
/// default, so the new name wins over the old one, and the flag over both.
fn default_bootstrap() -> String {
    legacy_or(
        std::env::var(LEGACY_BOOTSTRAP_ENV).ok().as_deref(),
        DEFAULT_BOOTSTRAP,
    )
}

/// The default of a flag whose environment variable had an older name: the older variable's
/// value `legacy` when it is set and not empty (trimmed), else `default`.
pub fn legacy_or(legacy: Option<&str>, default: &str) -> String {
    match legacy.map(str::trim) {
        Some(value) if !value.is_empty() => value.to_owned(),
        _ => default.to_owned(),
    }
}

/// How to reach Kafka.
#[derive(Clone, Args)]
pub struct KafkaArgs {
    /// Kafka bootstrap servers, comma separated (host:port). Default: $KAFKA_BOOTSTRAP (the
    /// older name) if set, else 127.0.0.1:9092.
    #[arg(
        long = "bootstrap",
        env = "TWEET_PIPELINE_KAFKA_BOOTSTRAP",
        value_name = "HOST:PORT",
        default_value_t = default_bootstrap(),
        hide_default_value = true
    )]
    pub bootstrap: String,

    /// A file of librdkafka properties (`key=value` lines, `#` comments), applied after the
    /// built-in settings and before -X; for security settings with secrets (e.g.
    /// `sasl.password`), so they stay off the command line. Must not be group- or
    /// world-readable (chmod 600).
    #[arg(long = "kafka-config", env = "TWEET_PIPELINE_KAFKA_CONFIG_FILE", value_name = "FILE", value_parser = parse_kafka_config_file)]
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
    #[arg(
        long = "tweets-topic",
        env = "TWEET_PIPELINE_TWEETS_TOPIC",
        default_value = "tweets"
    )]
    pub tweets: String,
    /// Topic for retweets.
    #[arg(
        long = "retweets-topic",
        env = "TWEET_PIPELINE_RETWEETS_TOPIC",
        default_value = "retweets"
    )]
    pub retweets: String,
    /// Topic for control messages (delete, limit, disconnect, warning, withheld, errors).
    #[arg(
        long = "control-topic",
        env = "TWEET_PIPELINE_CONTROL_TOPIC",
        default_value = "control"
    )]
    pub control: String,
    /// Topic for lines that could not be routed (malformed JSON, unknown shapes, oversized).
    #[arg(
        long = "deadletter-topic",
        env = "TWEET_PIPELINE_DEADLETTER_TOPIC",
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
        env = "TWEET_PIPELINE_SCHEDULED_TOPIC",
        default_value = "scheduled"
    )]
    pub scheduled: String,
    /// Compacted topic of the poster's outcomes (key: post id; the latest outcome is kept).
    /// It must have as many partitions as the scheduled topic.
    #[arg(
        long = "scheduled-results-topic",
        env = "TWEET_PIPELINE_SCHEDULED_RESULTS_TOPIC",
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
    #[arg(long = "metrics-addr", env = "TWEET_PIPELINE_METRICS_ADDR", value_parser = parse_metrics_addr)]
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

/// The root URL of the X API, for every binary that calls it (`--x-api-url`; the producer's
/// older `--base-url` is an alias).
#[derive(Debug, Clone, Default, Args)]
pub struct XApiArgs {
    /// X API root URL (for the local emulator or a compatible server); default: the real API
    /// of the chosen version.
    #[arg(
        long = "x-api-url",
        alias = "base-url",
        env = "TWEET_PIPELINE_X_API_URL",
        value_name = "URL"
    )]
    pub x_api_url: Option<String>,
}

impl XApiArgs {
    /// The given root, or `default` (the real API) when none was given.
    pub fn url_or(&self, default: &str) -> String {
        self.x_api_url.clone().unwrap_or_else(|| default.to_owned())
    }
}

/// How a binary prints its run's summary on standard output.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum SummaryFormat {
    /// An aligned table for people (the default).
    #[default]
    Text,
    /// Exactly one JSON object on one line, for scripts and tests.
    Json,
}

/// The `--summary` flag.
#[derive(Debug, Clone, Copy, Default, Args)]
pub struct SummaryArgs {
    /// How the run's summary is printed on standard output: text (a table for people) or json
    /// (exactly one JSON object on one line: snake_case fields, integer counts).
    #[arg(
        long = "summary",
        env = "TWEET_PIPELINE_SUMMARY",
        value_enum,
        default_value_t = SummaryFormat::Text
    )]
    pub summary: SummaryFormat,
}

impl SummaryArgs {
    /// Writes `summary` to `out` in the chosen format: its `Display` text, or its JSON form
    /// and a newline.
    ///
    /// # Errors
    /// When writing fails or the summary cannot be serialised.
    pub fn write<T: fmt::Display + serde::Serialize>(
        &self,
        summary: &T,
        mut out: impl std::io::Write,
    ) -> std::io::Result<()> {
        match self.summary {
            SummaryFormat::Text => write!(out, "{summary}"),
            SummaryFormat::Json => {
                serde_json::to_writer(&mut out, summary)?;
                writeln!(out)
            }
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
    fn the_legacy_bootstrap_variable_is_the_default_when_set() {
        let legacy_or_bootstrap = |legacy| legacy_or(legacy, DEFAULT_BOOTSTRAP);
        assert_eq!(legacy_or_bootstrap(None), DEFAULT_BOOTSTRAP);
        assert_eq!(legacy_or_bootstrap(Some("")), DEFAULT_BOOTSTRAP);
        assert_eq!(
            legacy_or_bootstrap(Some(" 10.0.0.1:9092 ")),
            "10.0.0.1:9092"
        );
    }

    #[test]
    fn shared_flags_read_prefixed_environment_variables() {
        use clap::CommandFactory as _;
        #[derive(clap::Parser)]
        struct Flags {
            #[command(flatten)]
            kafka: KafkaArgs,
            #[command(flatten)]
            topics: TopicNames,
            #[command(flatten)]
            schedule: ScheduleTopics,
            #[command(flatten)]
            metrics: MetricsArgs,
            #[command(flatten)]
            x_api: XApiArgs,
            #[command(flatten)]
            summary: SummaryArgs,
        }
        let command = Flags::command();
        command.clone().debug_assert();
        for arg in command.get_arguments() {
            if let Some(env) = arg.get_env() {
                let env = env.to_string_lossy();
                assert!(env.starts_with(ENV_PREFIX), "--{:?}: {env}", arg.get_long());
            }
        }
    }

    #[test]
    fn base_url_is_an_alias_of_x_api_url() {
        use clap::Parser as _;
        #[derive(clap::Parser)]
        struct Flags {
            #[command(flatten)]
            x_api: XApiArgs,
        }
        let flags = Flags::try_parse_from(["test", "--base-url", "http://127.0.0.1:1"]).unwrap();
        assert_eq!(
            flags.x_api.url_or("https://api.x.com"),
            "http://127.0.0.1:1"
        );
        let flags = Flags::try_parse_from(["test", "--x-api-url=http://127.0.0.1:2"]).unwrap();
        assert_eq!(flags.x_api.x_api_url.as_deref(), Some("http://127.0.0.1:2"));
    }

    #[test]
    fn summaries_print_as_text_or_one_json_line() {
        #[derive(serde::Serialize)]
        struct Summary {
            lines_read: u64,
        }
        impl fmt::Display for Summary {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                writeln!(f, "lines read {}", self.lines_read)
            }
        }
        let summary = Summary { lines_read: 3 };
        let mut text = Vec::new();
        SummaryArgs::default().write(&summary, &mut text).unwrap();
        assert_eq!(text, b"lines read 3\n");
        let mut json = Vec::new();
        SummaryArgs {
            summary: SummaryFormat::Json,
        }
        .write(&summary, &mut json)
        .unwrap();
        assert_eq!(json, b"{\"lines_read\":3}\n");
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
