//! The consumer's command line: every flag of `tweet-consumer` and its subcommands, with its
//! environment variable (`TWEET_PIPELINE_<NAME>`; credentials keep their own names) and its
//! default.
//!
//! Three variables had older names, still read when the new one is unset, with a warning at
//! start ([`warn_legacy_env`]): `TWEETS_DB`, `CONSUMER_GROUP` and `ARCHIVE_DIR`. As with
//! `KAFKA_BOOTSTRAP` (`tweet_pipeline_common::config`), the older name only changes the
//! default, so the new name wins over it, and the flag over both.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::OnceLock;

use clap::{Args, Parser, Subcommand, ValueEnum};
use tweet_pipeline_common::config::{legacy_or, KafkaArgs, MetricsArgs, SummaryArgs, TopicNames};

use crate::runner::membership::{self, Membership};
use crate::store::StoreLocation;
use crate::text::{self, DetectorKind, LanguageList, SentimentKind};
use tweet_pipeline_scheduler::poster;

/// Default `/metrics` address of the consumer.
pub const DEFAULT_METRICS_ADDR: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 9102);

/// Default consumer group id (it names the analysis role).
pub const DEFAULT_GROUP: &str = "analysis";
/// Default store: a SQLite file in the working directory.
pub const DEFAULT_DB: &str = "tweets.db";
/// Default archive root folder, in the working directory.
pub const DEFAULT_ARCHIVE_DIR: &str = "archive";

/// The environment variables renamed to the `TWEET_PIPELINE_` prefix: (older name, new name).
/// The older one is read only when the new one is unset.
pub const LEGACY_ENV: [(&str, &str); 3] = [
    ("TWEETS_DB", "TWEET_PIPELINE_DB"),
    ("CONSUMER_GROUP", "TWEET_PIPELINE_GROUP"),
    ("ARCHIVE_DIR", "TWEET_PIPELINE_ARCHIVE_DIR"),
];

/// The default of a flag: the value of the older variable `legacy`, read once, else `default`.
fn legacy_default(
    cell: &'static OnceLock<String>,
    legacy: &str,
    default: &'static str,
) -> &'static str {
    cell.get_or_init(|| legacy_or(std::env::var(legacy).ok().as_deref(), default))
}

/// The `--db` default: `$TWEETS_DB` (the older name) if set, else [`DEFAULT_DB`].
fn default_db() -> &'static str {
    static CELL: OnceLock<String> = OnceLock::new();
    legacy_default(&CELL, LEGACY_ENV[0].0, DEFAULT_DB)
}

/// The `--group` default: `$CONSUMER_GROUP` (the older name) if set, else [`DEFAULT_GROUP`].
fn default_group() -> &'static str {
    static CELL: OnceLock<String> = OnceLock::new();
    legacy_default(&CELL, LEGACY_ENV[1].0, DEFAULT_GROUP)
}

/// The `--archive-dir` default: `$ARCHIVE_DIR` (the older name) if set, else
/// [`DEFAULT_ARCHIVE_DIR`].
fn default_archive_dir() -> &'static str {
    static CELL: OnceLock<String> = OnceLock::new();
    legacy_default(&CELL, LEGACY_ENV[2].0, DEFAULT_ARCHIVE_DIR)
}

/// The older variables of [`LEGACY_ENV`] that `get` finds set (not empty), with their new
/// names: (older, new, whether the new one is set too, and so wins).
pub fn legacy_env_in_use(
    get: impl Fn(&str) -> Option<String>,
) -> Vec<(&'static str, &'static str, bool)> {
    let set = |name: &str| get(name).is_some_and(|value| !value.trim().is_empty());
    LEGACY_ENV
        .iter()
        .filter(|(legacy, _)| set(legacy))
        .map(|&(legacy, new)| (legacy, new, set(new)))
        .collect()
}

/// Logs one warning per older variable name set in the environment, naming the new one.
pub fn warn_legacy_env() {
    for (legacy, new, new_set) in legacy_env_in_use(|name| std::env::var(name).ok()) {
        if new_set {
            tracing::warn!(
                legacy,
                new,
                "{legacy} is an older name and is ignored because {new} is set; unset {legacy}"
            );
        } else {
            tracing::warn!(
                legacy,
                new,
                "{legacy} is an older name, still read; set {new} instead"
            );
        }
    }
}

/// Read the pipeline's topics as a consumer group and act on every record, at least once.
///
/// `--group analysis` detects each post's language, scores English posts with VADER, stores one
/// row per post id in SQLite or PostgreSQL and applies delete notices. Offsets are committed
/// only after the rows are; a restart re-processes at most the uncommitted tail and never
/// doubles a row. `--group archive` writes the raw records to rotating gzip JSON-lines files.
#[derive(Debug, Parser)]
#[command(
    name = "tweet-consumer",
    version,
    args_conflicts_with_subcommands = true
)]
pub struct Cli {
    /// An offline subcommand; none: consume as `--group`.
    #[command(subcommand)]
    pub command: Option<Command>,

    /// Consumer group id. Instances with the same group share the partitions. Default:
    /// $CONSUMER_GROUP (the older name) if set, else analysis.
    #[arg(
        long,
        env = "TWEET_PIPELINE_GROUP",
        default_value = default_group(),
        hide_default_value = true
    )]
    pub group: String,

    /// What the group does; defaults to the group id when that names a role.
    #[arg(long, value_enum)]
    pub role: Option<Role>,

    /// The store: a SQLite file (created if missing) or a PostgreSQL URL
    /// (postgres://user:password@host:port/database; migrations are applied at start).
    /// Default: $TWEETS_DB (the older name) if set, else tweets.db.
    #[arg(
        long,
        env = "TWEET_PIPELINE_DB",
        default_value = default_db(),
        hide_default_value = true,
        hide_env_values = true
    )]
    pub db: StoreLocation,

    /// The archive role's flags.
    #[command(flatten)]
    pub archive: ArchiveArgs,

    /// Most records per batch (one store transaction per batch).
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub batch_size: u32,

    /// Longest wait in milliseconds, after a batch's first record, for more records.
    /// 10 ms keeps p99 latency under 100 ms at 5,000 posts/s (docs/benchmarks.md); while a
    /// backlog is read, batches fill to --batch-size long before it.
    #[arg(long, default_value_t = 10)]
    pub batch_wait_ms: u64,

    /// Exit once every assigned partition is read to its end (for batch jobs, tests, demos).
    #[arg(long)]
    pub exit_at_end: bool,

    /// How this instance joins its consumer group: static (a `group.instance.id`, KIP-345: a
    /// restarted member takes its partitions back at once, without a rebalance) or dynamic (a
    /// new member at every start: a crashed member's partitions wait for its session to time
    /// out, 45 s by default). Measured in docs/benchmarks.md; what must stay unique:
    /// docs/operations.md.
    #[arg(long, env = "TWEET_PIPELINE_MEMBERSHIP", value_enum, default_value_t)]
    pub membership: Membership,

    /// The static member's `group.instance.id`: unique within the group and the same across
    /// restarts of one instance. Default: <host name>-<group>, right for one instance per group
    /// per host; give each of several instances on one host its own.
    #[arg(long, env = "TWEET_PIPELINE_INSTANCE_ID", value_parser = membership::parse_instance_id)]
    pub instance_id: Option<String>,

    /// Parse and store posts without language detection or sentiment (a benchmark baseline).
    #[arg(long)]
    pub no_analysis: bool,

    /// Detect only these languages (comma-separated ISO 639-1/639-3 codes, e.g. en,es,pt);
    /// default: every language whatlang knows. Uses whatlang (whichlang's languages are fixed).
    #[arg(long, env = "TWEET_PIPELINE_LANGUAGES", value_parser = text::parse_languages)]
    pub languages: Option<LanguageList>,

    /// Language identifier: whichlang (16 languages plus Indonesian and Tagalog, and whatlang
    /// for other scripts; a few µs a post) or whatlang (69 languages, about 40 µs a post).
    /// Default: whichlang, or whatlang with --languages. Accuracy of both on labelled tweets:
    /// docs/accuracy.md.
    #[arg(long, env = "TWEET_PIPELINE_DETECTOR", value_enum)]
    pub detector: Option<DetectorKind>,

    /// Sentiment scorer: model (the default: the trained model for ar, de, en, es, fr, hi, it,
    /// pt, scored as the post's language; docs/models.md) or vader (English posts only).
    #[arg(long, env = "TWEET_PIPELINE_SENTIMENT", value_enum, default_value_t = SentimentKind::Model)]
    pub sentiment: SentimentKind,

    /// How to reach Kafka.
    #[command(flatten)]
    pub kafka: KafkaArgs,

    /// The topic names.
    #[command(flatten)]
    pub topics: TopicNames,

    /// The `/metrics` endpoint.
    #[command(flatten)]
    pub metrics: MetricsArgs,

    /// `--summary text|json`.
    #[command(flatten)]
    pub summary: SummaryArgs,

    /// The poster role's flags.
    #[command(flatten)]
    pub poster: poster::PosterArgs,

    /// The web role's flags.
    #[command(flatten)]
    pub web: crate::role::web::WebArgs,
}

impl Cli {
    /// The role: `--role`, else the one the group id names.
    ///
    /// # Errors
    /// When there is no `--role` and the group id names no role.
    pub fn role(&self) -> anyhow::Result<Role> {
        if let Some(role) = self.role {
            return Ok(role);
        }
        Role::from_str(&self.group, true).map_err(|_| {
            anyhow::anyhow!(
                "group '{}' names no role; add --role analysis (the roles: analysis, archive, poster, web)",
                self.group
            )
        })
    }
}

/// Consumer-group roles.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Role {
    /// Language + sentiment analysis into the store; applies deletes.
    Analysis,
    /// Posts the scheduled posts when due, exactly once (see the README).
    Poster,
    /// Raw record values into rotating gzip JSON-lines files (readable by tweet-producer --replay).
    Archive,
    /// A live web view of the stream, the analysis and the schedule (docs/web.md); commits
    /// nothing.
    Web,
}

/// Default rotation size of an archive file: 128 MiB of compressed data.
fn default_archive_max_bytes() -> u64 {
    128 * 1024 * 1024
}

/// Default rotation age of an archive file: 10 minutes, so a crash re-reads at most that much
/// and offsets are committed at least that often.
fn default_archive_max_age_secs() -> u64 {
    600
}

/// The archive role's flags.
#[derive(Debug, Clone, clap::Args)]
pub struct ArchiveArgs {
    /// Archive root folder: DIR/<topic>/<YYYY-MM-DD>/<topic>-<date>T<HH>-p<partition>-o<first offset>.jsonl.gz.
    /// Default: $ARCHIVE_DIR (the older name) if set, else archive.
    #[arg(
        long,
        env = "TWEET_PIPELINE_ARCHIVE_DIR",
        default_value = default_archive_dir(),
        hide_default_value = true
    )]
    pub archive_dir: PathBuf,

    /// Rotate an archive file once it holds this many compressed bytes.
    #[arg(long, default_value_t = default_archive_max_bytes(), value_parser = clap::value_parser!(u64).range(1..))]
    pub archive_max_bytes: u64,

    /// Rotate an archive file once it has been open this many seconds (its offsets are
    /// committed only then).
    #[arg(long, default_value_t = default_archive_max_age_secs(), value_parser = clap::value_parser!(u64).range(1..))]
    pub archive_max_age_secs: u64,
}

/// `--db` of the offline subcommands, which read an existing store.
#[derive(Debug, Args)]
pub struct StoreArg {
    /// The store: a SQLite file or a PostgreSQL URL. Default: $TWEETS_DB (the older name)
    /// if set, else tweets.db.
    #[arg(
        long,
        env = "TWEET_PIPELINE_DB",
        default_value = default_db(),
        hide_default_value = true,
        hide_env_values = true
    )]
    pub db: StoreLocation,
}

/// The subcommands: the offline ones read the store or the labelled sets, not Kafka;
/// `compliance` reads the store and writes to the control topic.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run X API v2 batch compliance jobs for the stored X posts due for a check and write one
    /// control record per post that must go (or is withheld) to the control topic, for the
    /// analysis group to apply. Meant for a timer (e.g. daily); see docs/compliance.md.
    Compliance(Box<crate::compliance::ComplianceArgs>),
    /// Print posts per detected language and sentiment label from the store.
    Stats {
        /// `--db`.
        #[command(flatten)]
        store: StoreArg,
        /// Show at most this many languages (the most frequent).
        #[arg(long, default_value_t = 15)]
        top: usize,
        /// `--summary text|json`.
        #[command(flatten)]
        summary: SummaryArgs,
    },
    /// Draw the store as SVG pictures: posts per minute, sentiment over time per language,
    /// top hashtags.
    Report {
        /// `--db`.
        #[command(flatten)]
        store: StoreArg,
        /// Output folder for the SVG files (created if missing).
        #[arg(long, default_value = "report")]
        out: PathBuf,
        /// Hashtags in the hashtag chart.
        #[arg(long, default_value_t = 20)]
        top_hashtags: usize,
        /// Languages (the most scored) in the sentiment chart.
        #[arg(long, default_value_t = 6)]
        top_languages: usize,
        /// `--summary text|json`.
        #[command(flatten)]
        summary: SummaryArgs,
    },
    /// Score language identification and sentiment on the labelled sets and print Markdown
    /// tables (see docs/accuracy.md).
    Eval {
        /// The shared data folder (the one holding MANIFEST.md).
        #[arg(long, env = "TWEET_PIPELINE_DATA", default_value = "../shared/data")]
        data: PathBuf,
        /// Compound scores of Python vaderSentiment on the SemEval test texts, one per line
        /// (from scripts/bench/accuracy_reference.py --compound-out), to report score parity.
        #[arg(long)]
        vader_parity: Option<PathBuf>,
        /// Detect only these languages (comma-separated ISO 639-1/639-3 codes).
        #[arg(long, value_parser = text::parse_languages)]
        languages: Option<LanguageList>,
        /// Language identifier to score (see `tweet-consumer --detector`).
        #[arg(long, value_enum)]
        detector: Option<DetectorKind>,
        /// Score the models in this folder (langid.bin, sentiment.bin, as `train --out` writes
        /// them) instead of the ones built in (consumer/models).
        #[arg(long)]
        models: Option<PathBuf>,
    },
    /// Train the language and sentiment models on the labelled tweets (docs/models.md) and
    /// write langid.bin and sentiment.bin. Deterministic: the same data and seed give the same
    /// bytes.
    Train {
        /// The training data folder (the one holding its MANIFEST.md and EXCLUDE_* lists).
        #[arg(long, default_value = "../shared/data/training")]
        data: PathBuf,
        /// lingua's sentences folder (Apache-2.0; one file per language). Default:
        /// DATA/../langid/lingua_testdata/sentences.
        #[arg(long)]
        lingua: Option<PathBuf>,
        /// Output folder for the models (created if missing).
        #[arg(long, default_value = "consumer/models")]
        out: PathBuf,
        /// Also train on the sets whose licence does not allow shipping a derived model
        /// (TweetLID, Mozetič, TASS, airline, Sanders, ASTD: no licence, non-commercial or
        /// GPL). Models trained so are for local research only.
        #[arg(long)]
        include_research_data: bool,
        /// Seed of the example shuffles.
        #[arg(long, default_value_t = 14)]
        seed: u64,
    },
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn group_names_a_role_or_needs_one() {
        let cli = Cli::parse_from(["tweet-consumer", "--group", "analysis"]);
        assert_eq!(cli.role().unwrap(), Role::Analysis);
        let cli = Cli::parse_from(["tweet-consumer", "--group", "test-42"]);
        assert!(cli.role().unwrap_err().to_string().contains("--role"));
        let cli = Cli::parse_from(["tweet-consumer", "--group", "test-42", "--role", "analysis"]);
        assert_eq!(cli.role().unwrap(), Role::Analysis);
        let cli = Cli::parse_from(["tweet-consumer", "--group", "archive"]);
        assert_eq!(cli.role().unwrap(), Role::Archive);
    }

    #[test]
    fn an_older_variable_is_the_default_when_set() {
        assert_eq!(legacy_or(Some("old.db"), DEFAULT_DB), "old.db");
        assert_eq!(legacy_or(Some("  "), DEFAULT_DB), DEFAULT_DB);
        assert_eq!(legacy_or(None, DEFAULT_DB), DEFAULT_DB);
    }

    #[test]
    fn older_variables_in_use_are_named_with_the_new_ones() {
        let env = |name: &str| match name {
            "TWEETS_DB" => Some("old.db".to_owned()),
            "CONSUMER_GROUP" => Some("g".to_owned()),
            "TWEET_PIPELINE_GROUP" => Some("h".to_owned()),
            "ARCHIVE_DIR" => Some(String::new()),
            _ => None,
        };
        assert_eq!(
            legacy_env_in_use(env),
            vec![
                ("TWEETS_DB", "TWEET_PIPELINE_DB", false),
                ("CONSUMER_GROUP", "TWEET_PIPELINE_GROUP", true),
            ]
        );
        assert!(legacy_env_in_use(|_| None).is_empty());
    }
}
