//! The stream producer's command line: every flag of `tweet-producer` (without a subcommand),
//! with its environment variable (`TWEET_PIPELINE_<NAME>`; credentials keep their own names)
//! and its default.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;

use clap::{Args, ValueEnum};
use tweet_pipeline_common::config::{KafkaArgs, MetricsArgs, SummaryArgs, TopicNames, XApiArgs};
use tweet_pipeline_common::framing::DEFAULT_MAX_LINE_BYTES;

use crate::source::{bluesky, x_v2};
use crate::spool::FsyncPolicy;

/// Default `/metrics` address of the producer.
pub const DEFAULT_METRICS_ADDR: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 9101);
/// The X API v2 root.
pub const DEFAULT_X_V2_URL: &str = "https://api.x.com";
/// The historical v1.1 stream root (for compatible servers and the emulator).
pub const DEFAULT_X_V1_URL: &str = "https://stream.twitter.com";

/// The flags of a stream or replay run (see `tweet-producer --help`).
#[derive(Debug, Args)]
pub struct StreamArgs {
    /// Replay a recorded stream: a JSON-lines file (gzip detected), a folder (every file under
    /// it in path order, e.g. a tweet-consumer archive), or `-` for stdin.
    #[arg(long, value_name = "FILE", env = "TWEET_PIPELINE_REPLAY_FILE", conflicts_with_all = ["track", "rules", "hashtag", "timeline"])]
    pub replay: Option<PathBuf>,

    /// Replay at most this many lines per second (keep-alives included); default: full speed.
    #[arg(long, value_name = "LINES_PER_S", value_parser = parse_rate, requires = "replay")]
    pub rate: Option<f64>,

    /// Replay the file again from the start at its end, until stopped (not with stdin).
    #[arg(long = "loop", requires = "replay")]
    pub looped: bool,

    /// Live source: the X API, a Mastodon instance, or Bluesky's Jetstream firehose (no
    /// account needed).
    #[arg(long, value_enum, default_value_t = Source::X)]
    pub source: Source,

    /// X API version: v2 (filtered stream, bearer token; the default) or v1 (statuses/filter,
    /// OAuth 1.0a). X answers 403 to v1.1 streaming for every app since 2023 ("Please use V2
    /// filtered stream"): v1 is for compatible servers and the emulator (--x-api-url).
    #[arg(long, value_enum, default_value_t = Api::V2)]
    pub api: Api,

    /// Track a keyword or phrase (repeatable). v2: one rule per term; v1: the track list.
    #[arg(long = "track", value_name = "TERM")]
    pub track: Vec<String>,

    /// A v2 filtered-stream rule expression (repeatable), e.g. 'basketball lang:en -is:retweet'.
    #[arg(long = "rule", value_name = "EXPR")]
    pub rules: Vec<String>,

    /// Tag for the --rule at the same position (repeatable); the prefix is added.
    #[arg(long = "tag", value_name = "TAG")]
    pub tags: Vec<String>,

    /// Rules whose tag starts with this prefix belong to this producer: rule sync adds and
    /// deletes only those, never anyone else's.
    #[arg(
        long,
        env = "TWEET_PIPELINE_RULE_TAG_PREFIX",
        default_value = "tweet-pipeline:"
    )]
    pub rule_tag_prefix: String,

    /// `--x-api-url` (alias `--base-url`).
    #[command(flatten)]
    pub x_api: XApiArgs,

    /// v2 `tweet.fields` to request.
    #[arg(long, default_value = x_v2::DEFAULT_TWEET_FIELDS)]
    pub tweet_fields: String,

    /// v2 `expansions` to request.
    #[arg(long, default_value = x_v2::DEFAULT_EXPANSIONS)]
    pub expansions: String,

    /// v2 `user.fields` to request.
    #[arg(long, default_value = x_v2::DEFAULT_USER_FIELDS)]
    pub user_fields: String,

    /// Mastodon instance URL, e.g. https://mastodon.social.
    #[arg(long, env = "TWEET_PIPELINE_MASTODON_INSTANCE", value_name = "URL")]
    pub instance: Option<String>,

    /// Mastodon: stream public posts with this hashtag.
    #[arg(long, conflicts_with = "timeline")]
    pub hashtag: Option<String>,

    /// Mastodon: stream the public (federated) or local timeline.
    #[arg(long, value_enum)]
    pub timeline: Option<TimelineArg>,

    /// Bluesky: the Jetstream `/subscribe` URL (a public instance by default; ws:// for a local
    /// one or the emulator).
    #[arg(long = "jetstream", env = "TWEET_PIPELINE_JETSTREAM_URL", value_name = "URL", default_value = bluesky::DEFAULT_JETSTREAM_URL)]
    pub jetstream_url: String,

    /// Bluesky: the collections to ask for (`wantedCollections`; NSIDs or prefixes such as
    /// app.bsky.graph.*; repeatable or comma-separated). Default: posts and reposts.
    #[arg(long = "collections", value_name = "NSID", value_delimiter = ',')]
    pub collections: Vec<String>,

    /// Bluesky: only these repositories (`wantedDids`; repeatable or comma-separated).
    #[arg(long = "did", value_name = "DID", value_delimiter = ',')]
    pub dids: Vec<String>,

    /// Bluesky: the file keeping the Jetstream cursor across restarts; default
    /// <spool-dir>/jetstream.cursor.
    #[arg(long, env = "TWEET_PIPELINE_CURSOR_FILE", value_name = "FILE")]
    pub cursor_file: Option<PathBuf>,

    /// Bluesky: a restart resumes this many seconds before the saved cursor (the repeats are
    /// absorbed by compaction and upserts).
    #[arg(long, value_name = "SECONDS", default_value_t = bluesky::cursor::DEFAULT_REWIND.as_secs())]
    pub cursor_rewind_secs: u64,

    /// Bluesky: where `from:handle` in a rule is resolved to a DID
    /// (com.atproto.identity.resolveHandle; the public AppView needs no account).
    #[arg(long, env = "TWEET_PIPELINE_APPVIEW_URL", value_name = "URL", default_value = bluesky::DEFAULT_APPVIEW_URL)]
    pub appview_url: String,

    /// File of NAME=value credential lines (mode 0600), read when the environment lacks one.
    #[arg(long, env = "TWEET_PIPELINE_CREDENTIALS_FILE", value_name = "FILE")]
    pub credentials_file: Option<PathBuf>,

    /// X streams: pause before this many posts are read in a UTC day (disconnect, resume at
    /// the next UTC midnight). Counts survive a restart (--read-budget-file).
    #[arg(long, env = "TWEET_PIPELINE_MAX_POST_READS_PER_DAY", value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub max_post_reads_per_day: Option<u64>,

    /// X streams: pause before this many posts are read in a UTC calendar month (resume on
    /// the 1st, 00:00 UTC). Keep it below the plan's monthly cap, beyond which X answers 429
    /// usage-capped.
    #[arg(long, env = "TWEET_PIPELINE_MAX_POST_READS_PER_MONTH", value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub max_post_reads_per_month: Option<u64>,

    /// X streams: US dollars per post read, for tweet_pipeline_producer_x_estimated_cost_usd_total
    /// (X pay-per-use: $0.005).
    #[arg(long, env = "TWEET_PIPELINE_PRICE_PER_READ_USD", default_value_t = crate::budget::DEFAULT_PRICE_PER_READ_USD)]
    pub price_per_read_usd: f64,

    /// Where the X read budget's counts are kept across restarts (a small JSON file);
    /// default: x-read-budget.json in --spool-dir.
    #[arg(long, env = "TWEET_PIPELINE_READ_BUDGET_FILE", value_name = "FILE")]
    pub read_budget_file: Option<PathBuf>,

    /// Reconnect when nothing, not even a keep-alive, arrived for this long; default per API
    /// (v2 30 s, v1.1 90 s, Mastodon 45 s, Bluesky 60 s).
    #[arg(long, value_name = "SECONDS")]
    pub stall_timeout_secs: Option<u64>,

    /// Lines longer than this many bytes go to the dead-letter topic (their first bytes).
    #[arg(long, value_name = "BYTES", default_value_t = DEFAULT_MAX_LINE_BYTES)]
    pub max_line_bytes: usize,

    /// At shutdown, wait this long for the spool to drain and Kafka to acknowledge outstanding
    /// records; what is left then goes to the spool and is sent at the next start.
    #[arg(long, value_name = "SECONDS", default_value_t = 60)]
    pub flush_timeout_secs: u64,

    /// Folder of the on-disk spool, where records wait while Kafka cannot take them (one
    /// folder per producer; it is locked).
    #[arg(long, env = "TWEET_PIPELINE_SPOOL_DIR", value_name = "DIR", default_value = DEFAULT_SPOOL_DIR)]
    pub spool_dir: PathBuf,

    /// Bound on the spool's size on disk; when it is full, reading pauses. 0 turns the spool
    /// off (a full queue then only pauses reading).
    #[arg(long, env = "TWEET_PIPELINE_SPOOL_MAX_BYTES", value_name = "BYTES", default_value_t = DEFAULT_SPOOL_MAX_BYTES)]
    pub spool_max_bytes: u64,

    /// Size of one spool segment file; drained segments are deleted.
    #[arg(long, value_name = "BYTES", default_value_t = DEFAULT_SPOOL_SEGMENT_BYTES, value_parser = clap::value_parser!(u64).range(4096..))]
    pub spool_segment_bytes: u64,

    /// When spooled records are forced to disk: always (every record), interval (at most
    /// once a second: a machine crash loses at most the last second), never.
    #[arg(long, value_enum, default_value_t = FsyncPolicy::Interval)]
    pub spool_fsync: FsyncPolicy,

    /// How long Kafka's local queue may stay full (a slow or absent broker) before records go
    /// to the spool; shorter bursts only pause reading.
    #[arg(long, value_name = "MS", default_value_t = 1000)]
    pub spill_after_ms: u64,

    /// `--bootstrap`, `--kafka-config`, `-X`.
    #[command(flatten)]
    pub kafka: KafkaArgs,

    /// `--tweets-topic` and the other topic names.
    #[command(flatten)]
    pub topics: TopicNames,

    /// `--metrics-addr`.
    #[command(flatten)]
    pub metrics: MetricsArgs,

    /// `--summary text|json`.
    #[command(flatten)]
    pub summary: SummaryArgs,
}

/// Exit status when nothing was lost but records wait in the spool (EX_TEMPFAIL, sysexits.h).
pub const EXIT_SPOOLED: u8 = 75;
/// Default spool folder, relative to the working directory.
pub const DEFAULT_SPOOL_DIR: &str = "tweet-producer.spool";
/// Default spool bound: 1 GiB, about 5 minutes of the full firehose's average rate at ~3 KB a
/// post (5,700 posts/s), or hours of a filtered stream.
pub const DEFAULT_SPOOL_MAX_BYTES: u64 = 1 << 30;
/// Default spool segment size: 16 MiB.
pub const DEFAULT_SPOOL_SEGMENT_BYTES: u64 = 16 << 20;

/// `--source`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Source {
    /// The X API (see --api).
    X,
    /// A Mastodon instance (see --instance).
    Mastodon,
    /// Bluesky's Jetstream firehose (see --jetstream); rules are matched by the producer.
    Bluesky,
}

/// `--api`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Api {
    /// X API v2 filtered stream.
    V2,
    /// X API v1.1 statuses/filter: X answers 403 to it; for compatible servers and the
    /// emulator.
    V1,
}

/// `--timeline`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum TimelineArg {
    /// The federated public timeline.
    Public,
    /// The instance's local timeline.
    Local,
}

/// Parses `--rate`: a positive, finite number of lines per second.
///
/// # Errors
/// When `s` is not such a number (the message quotes it).
pub fn parse_rate(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(rate) if rate > 0.0 && rate.is_finite() => Ok(rate),
        _ => Err(format!(
            "expected a positive number of lines per second, got '{s}'"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rate_must_be_positive() {
        assert!(parse_rate("100").is_ok());
        assert!(parse_rate("0").is_err());
        assert!(parse_rate("-5").is_err());
        assert!(parse_rate("fast").is_err());
    }
}
