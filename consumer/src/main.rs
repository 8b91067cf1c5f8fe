//! `tweet-consumer`: consumer-group roles that read the pipeline's topics. This file parses the
//! command line, wires a role to the at-least-once loop and prints the run's summary.

mod analysis;
mod analyze;
mod archive;
mod eval;
mod lag;
mod outputs;
mod report;
mod runner;
mod store;

use std::io::Write as _;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context as _;
use clap::{Parser, Subcommand, ValueEnum};
use prometheus::Registry;
use rdkafka::consumer::{BaseConsumer, Consumer};
use tweet_pipeline_common::config::{KafkaArgs, MetricsArgs, TopicNames};
use tweet_pipeline_common::metrics::{self, ConsumerMetrics, PosterMetrics};
use tweet_pipeline_common::{kafka, shutdown, telemetry};

use crate::analysis::AnalysisHandler;
use crate::analyze::Analyzer;
use crate::archive::{ArchiveConfig, ArchiveHandler};
use crate::outputs::Outputs;
use crate::report::ReportConfig;
use crate::runner::{Handler, RebalanceContext, RunStats, RunnerConfig};
use crate::store::{LanguageSentiment, Store, StoreLocation};
use tweet_pipeline_scheduler::poster;

/// Default `/metrics` address of the consumer.
const DEFAULT_METRICS_ADDR: &str = "127.0.0.1:9102";

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
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,

    /// Consumer group id. Instances with the same group share the partitions.
    #[arg(long, env = "CONSUMER_GROUP", default_value = "analysis")]
    group: String,

    /// What the group does; defaults to the group id when that names a role.
    #[arg(long, value_enum)]
    role: Option<Role>,

    /// The store: a SQLite file (created if missing) or a PostgreSQL URL
    /// (postgres://user:password@host:port/database; migrations are applied at start).
    #[arg(
        long,
        env = "TWEETS_DB",
        default_value = "tweets.db",
        hide_env_values = true
    )]
    db: StoreLocation,

    #[command(flatten)]
    archive: ArchiveArgs,

    /// Most records per batch (one store transaction per batch).
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    batch_size: u32,

    /// Longest wait in milliseconds, after a batch's first record, for more records.
    /// 10 ms keeps p99 latency under 100 ms at 5,000 posts/s (docs/benchmarks.md); while a
    /// backlog is read, batches fill to --batch-size long before it.
    #[arg(long, default_value_t = 10)]
    batch_wait_ms: u64,

    /// Exit once every assigned partition is read to its end (for batch jobs, tests, demos).
    #[arg(long)]
    exit_at_end: bool,

    /// Parse and store posts without language detection or sentiment (a benchmark baseline).
    #[arg(long)]
    no_analysis: bool,

    /// Detect only these languages (comma-separated ISO 639-1/639-3 codes, e.g. en,es,pt);
    /// default: every language whatlang knows. Uses whatlang (whichlang's languages are fixed).
    #[arg(long, env = "LANGUAGES", value_parser = analyze::parse_languages)]
    languages: Option<analyze::LanguageList>,

    /// Language identifier: whichlang (16 languages plus Indonesian and Tagalog, and whatlang
    /// for other scripts; a few µs a post) or whatlang (69 languages, about 40 µs a post).
    /// Default: whichlang, or whatlang with --languages. Accuracy of both on labelled tweets:
    /// docs/accuracy.md.
    #[arg(long, env = "DETECTOR", value_enum)]
    detector: Option<analyze::DetectorKind>,

    #[command(flatten)]
    kafka: KafkaArgs,

    #[command(flatten)]
    topics: TopicNames,

    #[command(flatten)]
    metrics: MetricsArgs,

    #[command(flatten)]
    poster: poster::PosterArgs,
}

/// Consumer-group roles.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Role {
    /// Language + sentiment analysis into the store; applies deletes.
    Analysis,
    /// Posts the scheduled posts when due, exactly once (see the README).
    Poster,
    /// Raw record values into rotating gzip JSON-lines files (readable by tweet-producer --replay).
    Archive,
}

/// The roles run by the at-least-once runner: every [`Role`] but the poster.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RunnerRole {
    /// [`Role::Analysis`].
    Analysis,
    /// [`Role::Archive`].
    Archive,
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
struct ArchiveArgs {
    /// Archive root folder: DIR/<topic>/<YYYY-MM-DD>/<topic>-<date>T<HH>-p<partition>-o<first offset>.jsonl.gz.
    #[arg(long, env = "ARCHIVE_DIR", default_value = "archive")]
    archive_dir: PathBuf,

    /// Rotate an archive file once it holds this many compressed bytes.
    #[arg(long, default_value_t = default_archive_max_bytes(), value_parser = clap::value_parser!(u64).range(1..))]
    archive_max_bytes: u64,

    /// Rotate an archive file once it has been open this many seconds (its offsets are
    /// committed only then).
    #[arg(long, default_value_t = default_archive_max_age_secs(), value_parser = clap::value_parser!(u64).range(1..))]
    archive_max_age_secs: u64,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Print posts per detected language and sentiment label from the store.
    Stats {
        /// The store: a SQLite file or a PostgreSQL URL.
        #[arg(
            long,
            env = "TWEETS_DB",
            default_value = "tweets.db",
            hide_env_values = true
        )]
        db: StoreLocation,
        /// Show at most this many languages (the most frequent).
        #[arg(long, default_value_t = 15)]
        top: usize,
    },
    /// Draw the store as SVG pictures: posts per minute, sentiment over time per language,
    /// top hashtags.
    Report {
        /// The store: a SQLite file or a PostgreSQL URL.
        #[arg(
            long,
            env = "TWEETS_DB",
            default_value = "tweets.db",
            hide_env_values = true
        )]
        db: StoreLocation,
        /// Output folder for the SVG files (created if missing).
        #[arg(long, default_value = "report")]
        out: PathBuf,
        /// Hashtags in the hashtag chart.
        #[arg(long, default_value_t = 20)]
        top_hashtags: usize,
        /// Languages (the most scored) in the sentiment chart.
        #[arg(long, default_value_t = 6)]
        top_languages: usize,
    },
    /// Score language identification and sentiment on the labelled sets and print Markdown
    /// tables (see docs/accuracy.md).
    Eval {
        /// The shared data folder (the one holding MANIFEST.md).
        #[arg(long, env = "TWEET_DATA", default_value = "../shared/data")]
        data: PathBuf,
        /// Compound scores of Python vaderSentiment on the SemEval test texts, one per line
        /// (from scripts/bench/accuracy_reference.py --compound-out), to report score parity.
        #[arg(long)]
        vader_parity: Option<PathBuf>,
        /// Detect only these languages (comma-separated ISO 639-1/639-3 codes).
        #[arg(long, value_parser = analyze::parse_languages)]
        languages: Option<analyze::LanguageList>,
        /// Language identifier to score (see `tweet-consumer --detector`).
        #[arg(long, value_enum)]
        detector: Option<analyze::DetectorKind>,
    },
}

fn main() -> ExitCode {
    telemetry::init();
    let cli = Cli::parse();
    let result = match &cli.command {
        Some(Command::Stats { db, top }) => print_stats(db, *top).map(|()| ExitCode::SUCCESS),
        Some(Command::Report {
            db,
            out,
            top_hashtags,
            top_languages,
        }) => write_report(
            db,
            &ReportConfig {
                out: out.clone(),
                top_hashtags: *top_hashtags,
                top_languages: *top_languages,
            },
        )
        .map(|()| ExitCode::SUCCESS),
        Some(Command::Eval {
            data,
            vader_parity,
            languages,
            detector,
        }) => eval::run(
            data,
            vader_parity.as_deref(),
            *detector,
            languages.clone().map(|l| l.0),
        )
        .map(|report| {
            print!("{report}");
            ExitCode::SUCCESS
        }),
        None => tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .context("cannot start the async runtime")
            .and_then(|runtime| runtime.block_on(consume(cli))),
    };
    result.unwrap_or_else(|error| {
        eprintln!("error: {error:#}");
        ExitCode::FAILURE
    })
}

fn role_of(cli: &Cli) -> anyhow::Result<Role> {
    if let Some(role) = cli.role {
        return Ok(role);
    }
    Role::from_str(&cli.group, true).map_err(|_| {
        anyhow::anyhow!(
            "group '{}' names no role; add --role analysis (the roles: analysis, archive, poster)",
            cli.group
        )
    })
}

async fn consume(cli: Cli) -> anyhow::Result<ExitCode> {
    let role = role_of(&cli)?;
    let shutdown = shutdown::on_signal();
    // Served from here on; each role registers its metrics in it (a scrape reads them then).
    let registry = Registry::new();
    let default_addr: SocketAddr = DEFAULT_METRICS_ADDR.parse().expect("static address");
    if let Some(addr) = cli.metrics.addr_or(default_addr) {
        metrics::serve(addr, registry.clone(), shutdown.child_token()).await?;
    }
    // The poster runs its own loop; the other roles share the at-least-once runner.
    let role = match role {
        Role::Poster => return run_poster(cli, &registry, shutdown).await,
        Role::Analysis => RunnerRole::Analysis,
        Role::Archive => RunnerRole::Archive,
    };
    let metrics = ConsumerMetrics::register(&registry);

    let client_id = format!("tweet-consumer-{}", cli.group);
    let mut client_config = kafka::consumer_config(&cli.kafka, &cli.group, &client_id);
    lag::enable_statistics(&mut client_config);
    let lag = lag::LagGauge::new(metrics.lag_records.clone(), &cli.group, cli.topics.clone());
    let consumer: BaseConsumer<RebalanceContext> = client_config
        .create_with_context(RebalanceContext::with_lag(lag))
        .context("invalid Kafka consumer configuration (check -X properties)")?;
    let mut topics = vec![
        cli.topics.tweets.as_str(),
        cli.topics.retweets.as_str(),
        cli.topics.control.as_str(),
    ];
    if role == RunnerRole::Archive {
        topics.push(cli.topics.deadletter.as_str());
    }
    kafka::check_topics(
        consumer.client(),
        &cli.kafka.bootstrap,
        &[&topics[..], &[cli.topics.deadletter.as_str()]].concat(),
        Duration::from_secs(10),
    )?;

    let config = RunnerConfig {
        batch_max_records: cli.batch_size as usize,
        batch_max_wait: Duration::from_millis(cli.batch_wait_ms),
        exit_at_end: cli.exit_at_end,
    };
    let header = format!("tweet-consumer summary (group {})", cli.group);
    match role {
        RunnerRole::Analysis => {
            tracing::info!(group = %cli.group, role = ?role, topics = ?topics, db = %cli.db, "consuming");
            let (db, names) = (cli.db.clone(), cli.topics.clone());
            let analyzer = match cli.no_analysis {
                true => None,
                false => Some(
                    Analyzer::with_detector(cli.detector, cli.languages.clone().map(|l| l.0))
                        .map_err(anyhow::Error::msg)?,
                ),
            };
            let (kafka, group) = (cli.kafka.clone(), cli.group.clone());
            let make = move || {
                let store =
                    Store::open(&db).with_context(|| format!("cannot open the store {db}"))?;
                let outputs = Outputs::new(&kafka, names.deadletter.clone(), &group)?;
                Ok(AnalysisHandler::new(
                    names, store, outputs, metrics, analyzer,
                ))
            };
            let (stats, totals) =
                run_handler(consumer, &topics, make, |h| h.totals(), config, &shutdown).await?;
            let outcome = totals.outcome;
            let mut out = std::io::stdout().lock();
            let _ = writeln!(out, "{header}");
            let _ = writeln!(out, "  {:<28}{:>10}", "records consumed", stats.records);
            let _ = writeln!(out, "  {:<28}{:>10}", "rows written", outcome.rows_written);
            let _ = writeln!(
                out,
                "  {:<28}{:>10}",
                "deletes applied", outcome.deletes_applied
            );
            let _ = writeln!(
                out,
                "  {:<28}{:>10}",
                "posts kept out (deleted)", outcome.rows_suppressed
            );
            let _ = writeln!(
                out,
                "  {:<28}{:>10}",
                "records dead-lettered", totals.deadlettered
            );
            let _ = writeln!(
                out,
                "  {:<28}{:>10}",
                "tombstones written", totals.tombstones
            );
            let _ = writeln!(out, "  {:<28}{:>10}", "records skipped", totals.skipped);
            Ok(ExitCode::SUCCESS)
        }
        RunnerRole::Archive => {
            let archive = ArchiveConfig {
                dir: cli.archive.archive_dir.clone(),
                max_bytes: cli.archive.archive_max_bytes,
                max_age: Duration::from_secs(cli.archive.archive_max_age_secs),
            };
            tracing::info!(group = %cli.group, role = ?role, topics = ?topics, dir = %cli.archive.archive_dir.display(), "archiving");
            let names = cli.topics.clone();
            let make = move || ArchiveHandler::new(archive, names, metrics);
            let summary = |h: ArchiveHandler| (h.totals(), h.failed_partitions());
            let (stats, (totals, failed)) =
                run_handler(consumer, &topics, make, summary, config, &shutdown).await?;
            let mut out = std::io::stdout().lock();
            let _ = writeln!(out, "{header}");
            let _ = writeln!(out, "  {:<28}{:>10}", "records consumed", stats.records);
            let _ = writeln!(
                out,
                "  {:<28}{:>10}",
                "records archived", totals.records_written
            );
            let _ = writeln!(
                out,
                "  {:<28}{:>10}",
                "files finished", totals.files_finished
            );
            let _ = writeln!(
                out,
                "  {:<28}{:>10}",
                "records skipped", totals.records_skipped
            );
            let _ = writeln!(out, "  {:<28}{:>10}", "partitions failed", failed);
            if failed > 0 {
                tracing::error!(partitions = failed, "some partitions could not be archived; run again to archive them from their last durable file");
                return Ok(ExitCode::FAILURE);
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// On the consumer's own blocking thread: makes the handler (a store connection is opened
/// there: the synchronous PostgreSQL client runs its own runtime and must not be used, or
/// dropped, on the async reactor), subscribes, runs until shutdown (or the end, with
/// `--exit-at-end`) and returns `summary` of the handler; then cancels the rest of the process
/// (the metrics server).
async fn run_handler<H, T>(
    consumer: BaseConsumer<RebalanceContext>,
    topics: &[&str],
    make: impl FnOnce() -> anyhow::Result<H> + Send + 'static,
    summary: impl FnOnce(H) -> T + Send + 'static,
    config: RunnerConfig,
    shutdown: &tokio_util::sync::CancellationToken,
) -> anyhow::Result<(RunStats, T)>
where
    H: Handler,
    T: Send + 'static,
{
    let cancel = shutdown.clone();
    let topics: Vec<String> = topics.iter().map(|t| (*t).to_owned()).collect();
    let result = tokio::task::spawn_blocking(move || {
        let mut handler = make()?;
        let topics: Vec<&str> = topics.iter().map(String::as_str).collect();
        consumer
            .subscribe(&topics)
            .context("subscribing to the topics")?;
        let stats = runner::run(&consumer, &mut handler, &config, &cancel);
        drop(consumer);
        stats.map(|stats| (stats, summary(handler)))
    })
    .await
    .context("the consumer thread panicked")??;
    shutdown.cancel();
    Ok(result)
}

/// The poster ([`poster::run`]), which keeps its outcomes in a SQLite file.
async fn run_poster(
    cli: Cli,
    registry: &Registry,
    shutdown: tokio_util::sync::CancellationToken,
) -> anyhow::Result<ExitCode> {
    let StoreLocation::Sqlite(db) = cli.db else {
        anyhow::bail!("the poster keeps its outcomes in SQLite: give --db a file path");
    };
    let metrics = PosterMetrics::register(registry);
    poster::run(cli.poster, cli.kafka, cli.group, db, metrics, shutdown).await
}

fn open_existing(db: &StoreLocation) -> anyhow::Result<Store> {
    if let StoreLocation::Sqlite(path) = db {
        if !path.exists() {
            anyhow::bail!(
                "no store at {}; run tweet-consumer --group analysis first (or pass --db)",
                path.display()
            );
        }
    }
    Store::open(db).with_context(|| format!("cannot open the store {db}"))
}

fn write_report(db: &StoreLocation, config: &ReportConfig) -> anyhow::Result<()> {
    let mut store = open_existing(db)?;
    let rows = store
        .report_rows()
        .with_context(|| format!("cannot read the store {db}"))?;
    let paths = report::render(&rows, config)?;
    let mut out = std::io::stdout().lock();
    writeln!(out, "{} posts from {db}", rows.len())?;
    for path in paths {
        writeln!(out, "  {}", path.display())?;
    }
    Ok(())
}

fn print_stats(db: &StoreLocation, top: usize) -> anyhow::Result<()> {
    let mut store = open_existing(db)?;
    let table = store.language_sentiment_table()?;
    let total: u64 = table.iter().map(LanguageSentiment::total).sum();
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "{total} posts in {db} (detected language; sentiment by VADER, English only)"
    )?;
    writeln!(
        out,
        "{:<10}{:>9}{:>9}{:>9}{:>10}{:>9}",
        "language", "positive", "neutral", "negative", "unscored", "total"
    )?;
    for row in table.iter().take(top) {
        writeln!(
            out,
            "{:<10}{:>9}{:>9}{:>9}{:>10}{:>9}",
            row.language,
            row.positive,
            row.neutral,
            row.negative,
            row.unscored,
            row.total()
        )?;
    }
    if table.len() > top {
        let rest: u64 = table.iter().skip(top).map(LanguageSentiment::total).sum();
        writeln!(
            out,
            "{:<10}{:>46}",
            format!("{} more", table.len() - top),
            rest
        )?;
    }
    Ok(())
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
        assert_eq!(role_of(&cli).unwrap(), Role::Analysis);
        let cli = Cli::parse_from(["tweet-consumer", "--group", "test-42"]);
        assert!(role_of(&cli).unwrap_err().to_string().contains("--role"));
        let cli = Cli::parse_from(["tweet-consumer", "--group", "test-42", "--role", "analysis"]);
        assert_eq!(role_of(&cli).unwrap(), Role::Analysis);
        let cli = Cli::parse_from(["tweet-consumer", "--group", "archive"]);
        assert_eq!(role_of(&cli).unwrap(), Role::Archive);
    }
}
