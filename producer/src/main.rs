//! `tweet-producer`: reads a social stream and writes every line, unchanged, to Kafka, routed by
//! field inspection (tweets, retweets, control, deadletter). This file parses the command line,
//! wires a source to the Kafka sink and prints the run's summary.

mod schedule;

use std::io::Write as _;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context as _};
use clap::{Parser, Subcommand, ValueEnum};
use prometheus::Registry;
use tweet_pipeline_common::config::{KafkaArgs, MetricsArgs, TopicNames};
use tweet_pipeline_common::framing::DEFAULT_MAX_LINE_BYTES;
use tweet_pipeline_common::metrics::{self, ProducerMetrics};
use tweet_pipeline_common::secret::{credential, read_credentials_file};
use tweet_pipeline_common::{shutdown, telemetry, Destination};

use tweet_pipeline_producer::delivery::{DeliveryReport, KafkaSink, SpoolSettings};
use tweet_pipeline_producer::ingest::IngestStats;
use tweet_pipeline_producer::source::replay::{self, ReplayConfig};
use tweet_pipeline_producer::source::{live, mastodon, x_v1, x_v2};
use tweet_pipeline_producer::spool::{FsyncPolicy, SpoolConfig};

/// Default `/metrics` address of the producer.
const DEFAULT_METRICS_ADDR: &str = "127.0.0.1:9101";
/// The X API v2 root.
const DEFAULT_X_V2_URL: &str = "https://api.x.com";
/// The historical v1.1 stream root (for compatible servers and the emulator).
const DEFAULT_X_V1_URL: &str = "https://stream.twitter.com";

/// Write a social stream to Kafka, every line unchanged, routed by field inspection.
///
/// Sources: the X API v2 filtered stream (`--track`, `--rule`; the default), X API v1.1
/// statuses/filter (`--api v1 --track`), Mastodon streaming (`--source mastodon`), or a
/// recording (`--replay`). Each line becomes one record: posts go to the tweets topic,
/// retweets to the retweets topic, control messages (delete, limit, disconnect, warning,
/// scrub_geo, withheld, v2 errors) to the control topic, and lines that can't be routed to the
/// dead-letter topic with the reason in the `error` header. Keep-alives are counted, not written.
///
/// Credentials come from the environment or from --credentials-file (NAME=value lines, mode
/// 0600): X_BEARER_TOKEN (v2); X_CONSUMER_KEY, X_CONSUMER_SECRET, X_ACCESS_TOKEN,
/// X_ACCESS_TOKEN_SECRET (v1.1); MASTODON_TOKEN (Mastodon).
#[derive(Debug, Parser)]
#[command(
    name = "tweet-producer",
    version,
    args_conflicts_with_subcommands = true
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,

    /// Replay a recorded stream: a JSON-lines file (gzip detected), a folder (every file under
    /// it in path order, e.g. a tweet-consumer archive), or `-` for stdin.
    #[arg(long, value_name = "FILE", env = "REPLAY_FILE", conflicts_with_all = ["track", "rules", "hashtag", "timeline"])]
    replay: Option<PathBuf>,

    /// Replay at most this many lines per second (keep-alives included); default: full speed.
    #[arg(long, value_name = "LINES_PER_S", value_parser = parse_rate, requires = "replay")]
    rate: Option<f64>,

    /// Replay the file again from the start at its end, until stopped (not with stdin).
    #[arg(long = "loop", requires = "replay")]
    looped: bool,

    /// Live source: the X API or a Mastodon instance.
    #[arg(long, value_enum, default_value_t = Source::X)]
    source: Source,

    /// X API version: v2 (filtered stream, bearer token) or v1 (statuses/filter, OAuth 1.0a).
    #[arg(long, value_enum, default_value_t = Api::V2)]
    api: Api,

    /// Track a keyword or phrase (repeatable). v2: one rule per term; v1: the track list.
    #[arg(long = "track", value_name = "TERM")]
    track: Vec<String>,

    /// A v2 filtered-stream rule expression (repeatable), e.g. 'basketball lang:en -is:retweet'.
    #[arg(long = "rule", value_name = "EXPR")]
    rules: Vec<String>,

    /// Tag for the --rule at the same position (repeatable); the prefix is added.
    #[arg(long = "tag", value_name = "TAG")]
    tags: Vec<String>,

    /// Rules whose tag starts with this prefix belong to this producer: rule sync adds and
    /// deletes only those, never anyone else's.
    #[arg(long, env = "RULE_TAG_PREFIX", default_value = "tweet-pipeline:")]
    rule_tag_prefix: String,

    /// API root URL (for the local emulator or a compatible server); default: the real API.
    #[arg(long, env = "X_API_BASE_URL", value_name = "URL")]
    base_url: Option<String>,

    /// v2 `tweet.fields` to request.
    #[arg(long, default_value = x_v2::DEFAULT_TWEET_FIELDS)]
    tweet_fields: String,

    /// v2 `expansions` to request.
    #[arg(long, default_value = x_v2::DEFAULT_EXPANSIONS)]
    expansions: String,

    /// v2 `user.fields` to request.
    #[arg(long, default_value = x_v2::DEFAULT_USER_FIELDS)]
    user_fields: String,

    /// Mastodon instance URL, e.g. https://mastodon.social.
    #[arg(long, env = "MASTODON_INSTANCE", value_name = "URL")]
    instance: Option<String>,

    /// Mastodon: stream public posts with this hashtag.
    #[arg(long, conflicts_with = "timeline")]
    hashtag: Option<String>,

    /// Mastodon: stream the public (federated) or local timeline.
    #[arg(long, value_enum)]
    timeline: Option<TimelineArg>,

    /// File of NAME=value credential lines (mode 0600), read when the environment lacks one.
    #[arg(long, env = "CREDENTIALS_FILE", value_name = "FILE")]
    credentials_file: Option<PathBuf>,

    /// Reconnect when nothing, not even a keep-alive, arrived for this long; default per API
    /// (v2 30 s, v1.1 90 s, Mastodon 45 s).
    #[arg(long, value_name = "SECONDS")]
    stall_timeout_secs: Option<u64>,

    /// Lines longer than this many bytes go to the dead-letter topic (their first bytes).
    #[arg(long, value_name = "BYTES", default_value_t = DEFAULT_MAX_LINE_BYTES)]
    max_line_bytes: usize,

    /// At shutdown, wait this long for the spool to drain and Kafka to acknowledge outstanding
    /// records; what is left then goes to the spool and is sent at the next start.
    #[arg(long, value_name = "SECONDS", default_value_t = 60)]
    flush_timeout_secs: u64,

    /// Folder of the on-disk spool, where records wait while Kafka cannot take them (one
    /// folder per producer; it is locked).
    #[arg(long, env = "SPOOL_DIR", value_name = "DIR", default_value = DEFAULT_SPOOL_DIR)]
    spool_dir: PathBuf,

    /// Bound on the spool's size on disk; when it is full, reading pauses. 0 turns the spool
    /// off (a full queue then only pauses reading).
    #[arg(long, env = "SPOOL_MAX_BYTES", value_name = "BYTES", default_value_t = DEFAULT_SPOOL_MAX_BYTES)]
    spool_max_bytes: u64,

    /// Size of one spool segment file; drained segments are deleted.
    #[arg(long, value_name = "BYTES", default_value_t = DEFAULT_SPOOL_SEGMENT_BYTES, value_parser = clap::value_parser!(u64).range(4096..))]
    spool_segment_bytes: u64,

    /// When spooled records are forced to disk: always (every record), interval (at most
    /// once a second: a machine crash loses at most the last second), never.
    #[arg(long, value_enum, default_value_t = FsyncPolicy::Interval)]
    spool_fsync: FsyncPolicy,

    /// How long Kafka's local queue may stay full (a slow or absent broker) before records go
    /// to the spool; shorter bursts only pause reading.
    #[arg(long, value_name = "MS", default_value_t = 1000)]
    spill_after_ms: u64,

    #[command(flatten)]
    kafka: KafkaArgs,

    #[command(flatten)]
    topics: TopicNames,

    #[command(flatten)]
    metrics: MetricsArgs,
}

/// Exit status when nothing was lost but records wait in the spool (EX_TEMPFAIL, sysexits.h).
const EXIT_SPOOLED: u8 = 75;
/// Default spool folder, relative to the working directory.
const DEFAULT_SPOOL_DIR: &str = "tweet-producer.spool";
/// Default spool bound: 1 GiB, about 5 minutes of the full firehose's average rate at ~3 KB a
/// post (5,700 posts/s), or hours of a filtered stream.
const DEFAULT_SPOOL_MAX_BYTES: u64 = 1 << 30;
/// Default spool segment size: 16 MiB.
const DEFAULT_SPOOL_SEGMENT_BYTES: u64 = 16 << 20;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Source {
    /// The X API (see --api).
    X,
    /// A Mastodon instance (see --instance).
    Mastodon,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Scheduled posts: queue one post or a folder of drafts on the `scheduled` topic, cancel,
    /// list (posted by `tweet-consumer --group poster`).
    Schedule(schedule::ScheduleArgs),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Api {
    /// X API v2 filtered stream.
    V2,
    /// X API v1.1 statuses/filter.
    V1,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum TimelineArg {
    /// The federated public timeline.
    Public,
    /// The instance's local timeline.
    Local,
}

fn parse_rate(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(rate) if rate > 0.0 && rate.is_finite() => Ok(rate),
        _ => Err(format!(
            "expected a positive number of lines per second, got '{s}'"
        )),
    }
}

fn main() -> ExitCode {
    telemetry::init();
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

/// A configured live source.
enum LiveSource {
    XV2(x_v2::XV2),
    XV1(x_v1::XV1),
    Mastodon(mastodon::Mastodon),
}

/// Checks the flags of a live source and loads its credentials (before anything connects).
fn live_source(cli: &Cli) -> anyhow::Result<LiveSource> {
    let file = cli
        .credentials_file
        .as_deref()
        .map(read_credentials_file)
        .transpose()?;
    let stall = cli.stall_timeout_secs.map(Duration::from_secs);
    match (cli.source, cli.api) {
        (Source::X, Api::V2) => {
            if cli.track.is_empty() && cli.rules.is_empty() {
                bail!("nothing to stream: give --track TERM or --rule EXPR (or --replay FILE)");
            }
            if cli.tags.len() > cli.rules.len() {
                bail!("{} --tag given for {} --rule: each --tag names the --rule at the same position", cli.tags.len(), cli.rules.len());
            }
            Ok(LiveSource::XV2(x_v2::XV2 {
                base_url: cli
                    .base_url
                    .clone()
                    .unwrap_or_else(|| DEFAULT_X_V2_URL.to_owned()),
                bearer: credential("X_BEARER_TOKEN", file.as_ref(), "X API v2 bearer token")?,
                rules: x_v2::desired_rules(&cli.track, &cli.rules, &cli.tags, &cli.rule_tag_prefix),
                tag_prefix: cli.rule_tag_prefix.clone(),
                tweet_fields: cli.tweet_fields.clone(),
                expansions: cli.expansions.clone(),
                user_fields: cli.user_fields.clone(),
                stall_timeout: stall.unwrap_or(x_v2::DEFAULT_STALL_TIMEOUT),
            }))
        }
        (Source::X, Api::V1) => {
            if cli.track.is_empty() {
                bail!("nothing to stream: --api v1 needs --track TERM (rules are a v2 feature)");
            }
            if !cli.rules.is_empty() {
                bail!("--rule is for the v2 filtered stream; with --api v1 use --track");
            }
            let key = |name, what| credential(name, file.as_ref(), what);
            Ok(LiveSource::XV1(x_v1::XV1 {
                base_url: cli
                    .base_url
                    .clone()
                    .unwrap_or_else(|| DEFAULT_X_V1_URL.to_owned()),
                keys: tweet_pipeline_common::secret::OAuthKeys {
                    consumer_key: key("X_CONSUMER_KEY", "OAuth consumer key")?,
                    consumer_secret: key("X_CONSUMER_SECRET", "OAuth consumer secret")?,
                    access_token: key("X_ACCESS_TOKEN", "OAuth access token")?,
                    access_token_secret: key("X_ACCESS_TOKEN_SECRET", "OAuth access token secret")?,
                },
                track: cli.track.clone(),
                stall_timeout: stall.unwrap_or(x_v1::DEFAULT_STALL_TIMEOUT),
            }))
        }
        (Source::Mastodon, _) => {
            let Some(instance) = cli.instance.clone().or_else(|| cli.base_url.clone()) else {
                bail!("--source mastodon needs --instance URL (e.g. https://mastodon.social)");
            };
            let timeline = match (&cli.hashtag, cli.timeline) {
                (Some(tag), _) => mastodon::Timeline::Hashtag(tag.clone()),
                (None, Some(TimelineArg::Public)) => mastodon::Timeline::Public,
                (None, Some(TimelineArg::Local)) => mastodon::Timeline::Local,
                (None, None) => {
                    bail!("--source mastodon needs --hashtag TAG or --timeline public|local")
                }
            };
            Ok(LiveSource::Mastodon(mastodon::Mastodon {
                instance,
                token: credential("MASTODON_TOKEN", file.as_ref(), "Mastodon access token")?,
                timeline,
                stall_timeout: stall.unwrap_or(mastodon::DEFAULT_STALL_TIMEOUT),
            }))
        }
    }
}

async fn run(mut cli: Cli) -> anyhow::Result<ExitCode> {
    if let Some(Command::Schedule(args)) = cli.command.take() {
        return schedule::run(args).await;
    }
    if cli.max_line_bytes == 0 {
        bail!("--max-line-bytes must be at least 1");
    }
    if cli.looped && cli.replay.as_deref().is_some_and(|p| p.as_os_str() == "-") {
        bail!("--loop needs a file: standard input cannot be read twice");
    }
    // Flags and credentials are checked before anything connects.
    let live = match &cli.replay {
        Some(_) => None,
        None => Some(live_source(&cli)?),
    };
    let shutdown = shutdown::on_signal();
    let registry = Registry::new();
    let metrics = ProducerMetrics::register(&registry);
    let default_addr: SocketAddr = DEFAULT_METRICS_ADDR.parse().expect("static address");
    if let Some(addr) = cli.metrics.addr_or(default_addr) {
        metrics::serve(addr, registry.clone(), shutdown.child_token()).await?;
    }
    let spool = SpoolSettings {
        config: (cli.spool_max_bytes > 0).then(|| SpoolConfig {
            dir: cli.spool_dir.clone(),
            max_bytes: cli.spool_max_bytes,
            segment_bytes: cli.spool_segment_bytes.min(cli.spool_max_bytes),
            fsync: cli.spool_fsync,
        }),
        spill_after: Duration::from_millis(cli.spill_after_ms),
    };
    let sink = Arc::new(KafkaSink::connect(
        &cli.kafka,
        cli.topics.clone(),
        metrics.clone(),
        Duration::from_secs(10),
        spool,
    )?);

    let cancel = shutdown.clone();
    let task_sink = Arc::clone(&sink);
    let task_metrics = metrics.clone();
    let max_line_bytes = cli.max_line_bytes;
    let read: anyhow::Result<IngestStats> = match (live, cli.replay.clone()) {
        (None, Some(path)) => {
            let config = ReplayConfig {
                path,
                rate_lines_per_s: cli.rate,
                looped: cli.looped,
                max_line_bytes,
            };
            tracing::info!(source = %config.path.display(), rate = ?config.rate_lines_per_s, looped = config.looped, "replaying");
            tokio::task::spawn_blocking(move || {
                replay::run(&config, &task_sink, &task_metrics, &cancel)
            })
            .await
            .context("the replay thread panicked")?
        }
        (Some(live), _) => {
            let client = reqwest::Client::builder()
                .user_agent(concat!("tweet-pipeline/", env!("CARGO_PKG_VERSION")))
                .connect_timeout(Duration::from_secs(10))
                .build()
                .context("cannot build the HTTP client")?;
            let context = live::LiveContext {
                client,
                sink: task_sink,
                metrics: task_metrics,
                max_line_bytes,
                cancel,
            };
            tokio::spawn(async move {
                match live {
                    LiveSource::XV2(api) => {
                        api.sync_rules(&context.client).await?;
                        live::run(&api, &context).await
                    }
                    LiveSource::XV1(api) => live::run(&api, &context).await,
                    LiveSource::Mastodon(api) => live::run(&api, &context).await,
                }
            })
            .await
            .context("the stream task panicked")?
        }
        (None, None) => unreachable!("live_source is called when there is no --replay"),
    };
    let interrupted = shutdown.is_cancelled();

    // Whatever happened to reading, everything already handed to Kafka is flushed and counted.
    let sink = Arc::try_unwrap(sink)
        .map_err(|_| anyhow::anyhow!("the Kafka sink is still in use after the source ended"))?;
    let flush_timeout = Duration::from_secs(cli.flush_timeout_secs);
    let report = tokio::task::spawn_blocking(move || sink.finish(flush_timeout))
        .await
        .context("the flush thread panicked")?;
    shutdown.cancel();
    let stats = read?;
    print_summary(&stats, interrupted, &report, &cli.topics);

    let lost = report.not_delivered();
    if lost > 0 {
        tracing::error!(
            failed = report.failed.iter().sum::<u64>(),
            unacknowledged = report.unacknowledged(),
            "not every record was acknowledged by Kafka"
        );
        eprintln!("error: {lost} record(s) were not acknowledged by Kafka (see the log above); replay the input again to fill the gap");
        return Ok(ExitCode::FAILURE);
    }
    if report.spooled_left > 0 {
        eprintln!(
            "warning: {} record(s) wait in the spool {}; they are sent when tweet-producer starts again with the same --spool-dir",
            report.spooled_left,
            cli.spool_dir.display()
        );
        return Ok(ExitCode::from(EXIT_SPOOLED));
    }
    Ok(ExitCode::SUCCESS)
}

fn print_summary(
    stats: &IngestStats,
    interrupted: bool,
    report: &DeliveryReport,
    topics: &TopicNames,
) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(
        out,
        "tweet-producer summary{}",
        if interrupted {
            " (stopped by signal)"
        } else {
            ""
        }
    );
    let _ = writeln!(out, "  {:<24}{:>10}", "lines read", stats.lines_read);
    let _ = writeln!(
        out,
        "  {:<24}{:>10}",
        "keep-alives (skipped)", stats.keepalives
    );
    for (i, destination) in Destination::ALL.into_iter().enumerate() {
        let label = format!("records -> {}", topics.name(destination));
        let _ = writeln!(out, "  {label:<24}{:>10}", report.acked[i]);
    }
    let _ = writeln!(
        out,
        "  {:<24}{:>10}",
        "failed",
        report.failed.iter().sum::<u64>()
    );
    let _ = writeln!(
        out,
        "  {:<24}{:>10}",
        "unacknowledged",
        report.unacknowledged()
    );
    let _ = writeln!(
        out,
        "  {:<24}{:>10}",
        "retried via the spool",
        report.returned.iter().sum::<u64>()
    );
    let _ = writeln!(out, "  {:<24}{:>10}", "left in spool", report.spooled_left);
    if report.spooled_at_start > 0 {
        let _ = writeln!(
            out,
            "  {:<24}{:>10}",
            "from an earlier spool", report.spooled_at_start
        );
    }
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
    fn rate_must_be_positive() {
        assert!(parse_rate("100").is_ok());
        assert!(parse_rate("0").is_err());
        assert!(parse_rate("-5").is_err());
        assert!(parse_rate("fast").is_err());
    }
}
