//! `tweet-consumer`: consumer-group roles that read the pipeline's topics. This file parses the
//! command line, wires a role to the at-least-once loop and prints the run's summary.

mod analysis;
mod analyze;
mod eval;
mod lag;
mod outputs;
mod poster;
mod runner;
mod store;

use std::io::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
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
use crate::outputs::Outputs;
use crate::runner::{RebalanceContext, RunnerConfig};
use crate::store::{LanguageSentiment, Store};

/// Default `/metrics` address of the consumer.
const DEFAULT_METRICS_ADDR: &str = "127.0.0.1:9102";

/// Read the pipeline's topics as a consumer group and act on every record, at least once.
///
/// `--group analysis` detects each post's language, scores English posts with VADER, stores one
/// row per post id in SQLite and applies delete notices. Offsets are committed only after the
/// rows are; a restart re-processes at most the uncommitted tail and never doubles a row.
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

    /// SQLite database file (created if missing).
    #[arg(long, env = "TWEETS_DB", default_value = "tweets.db")]
    db: PathBuf,

    /// Most records per batch (one store transaction per batch).
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    batch_size: u32,

    /// Longest wait in milliseconds, after a batch's first record, for more records.
    #[arg(long, default_value_t = 50)]
    batch_wait_ms: u64,

    /// Exit once every assigned partition is read to its end (for batch jobs, tests, demos).
    #[arg(long)]
    exit_at_end: bool,

    /// Parse and store posts without language detection or sentiment (a benchmark baseline).
    #[arg(long)]
    no_analysis: bool,

    /// Detect only these languages (comma-separated ISO 639-1/639-3 codes, e.g. en,es,pt);
    /// default: every language whatlang knows.
    #[arg(long, env = "LANGUAGES", value_parser = analyze::parse_languages)]
    languages: Option<analyze::LanguageList>,

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
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Print posts per detected language and sentiment label from the store.
    Stats {
        /// SQLite database file.
        #[arg(long, env = "TWEETS_DB", default_value = "tweets.db")]
        db: PathBuf,
        /// Show at most this many languages (the most frequent).
        #[arg(long, default_value_t = 15)]
        top: usize,
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
    },
}

fn main() -> ExitCode {
    telemetry::init();
    let cli = Cli::parse();
    let result = match &cli.command {
        Some(Command::Stats { db, top }) => print_stats(db, *top).map(|()| ExitCode::SUCCESS),
        Some(Command::Eval {
            data,
            vader_parity,
            languages,
        }) => eval::run(
            data,
            vader_parity.as_deref(),
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
            "group '{}' names no role; add --role analysis or --role poster (the roles: analysis, poster)",
            cli.group
        )
    })
}

async fn consume(cli: Cli) -> anyhow::Result<ExitCode> {
    let role = role_of(&cli)?;
    if role == Role::Poster {
        return run_poster(cli).await;
    }
    let shutdown = shutdown::on_signal();
    let registry = Registry::new();
    let metrics = ConsumerMetrics::register(&registry);
    let default_addr: SocketAddr = DEFAULT_METRICS_ADDR.parse().expect("static address");
    if let Some(addr) = cli.metrics.addr_or(default_addr) {
        metrics::serve(addr, registry.clone(), shutdown.child_token()).await?;
    }

    let store = Store::open(&cli.db)
        .with_context(|| format!("cannot open the store {}", cli.db.display()))?;
    let client_id = format!("tweet-consumer-{}", cli.group);
    let mut client_config = kafka::consumer_config(&cli.kafka, &cli.group, &client_id);
    lag::enable_statistics(&mut client_config);
    let lag = lag::LagGauge::new(metrics.lag_records.clone(), &cli.group, cli.topics.clone());
    let consumer: BaseConsumer<RebalanceContext> = client_config
        .create_with_context(RebalanceContext::with_lag(lag))
        .context("invalid Kafka consumer configuration (check -X properties)")?;
    let topics = [
        cli.topics.tweets.as_str(),
        cli.topics.retweets.as_str(),
        cli.topics.control.as_str(),
    ];
    kafka::check_topics(
        consumer.client(),
        &cli.kafka.bootstrap,
        &[&topics[..], &[cli.topics.deadletter.as_str()]].concat(),
        Duration::from_secs(10),
    )?;
    let outputs = Outputs::new(&cli.kafka, cli.topics.deadletter.clone(), &cli.group)?;
    consumer
        .subscribe(&topics)
        .context("subscribing to the topics")?;
    tracing::info!(group = %cli.group, role = ?role, topics = ?topics, db = %cli.db.display(), "consuming");

    let config = RunnerConfig {
        batch_max_records: cli.batch_size as usize,
        batch_max_wait: Duration::from_millis(cli.batch_wait_ms),
        exit_at_end: cli.exit_at_end,
    };
    let cancel = shutdown.clone();
    let topic_names = cli.topics.clone();
    let analyze = !cli.no_analysis;
    let languages = cli.languages.clone().map(|l| l.0);
    let (stats, handler) = tokio::task::spawn_blocking(move || {
        let mut handler = match role {
            // The poster runs its own loop (run_poster, above); only analysis reaches here.
            Role::Analysis | Role::Poster => {
                AnalysisHandler::new(topic_names, store, outputs, metrics, analyze, languages)
            }
        };
        let stats = runner::run(&consumer, &mut handler, &config, &cancel);
        drop(consumer);
        stats.map(|stats| (stats, handler))
    })
    .await
    .context("the consumer thread panicked")??;
    shutdown.cancel();

    let totals = handler.totals();
    let outcome = totals.outcome;
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "tweet-consumer summary (group {})", cli.group);
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

async fn run_poster(cli: Cli) -> anyhow::Result<ExitCode> {
    let shutdown = shutdown::on_signal();
    let registry = Registry::new();
    let metrics = PosterMetrics::register(&registry);
    let default_addr: SocketAddr = DEFAULT_METRICS_ADDR.parse().expect("static address");
    if let Some(addr) = cli.metrics.addr_or(default_addr) {
        metrics::serve(addr, registry.clone(), shutdown.child_token()).await?;
    }
    let handle = tokio::runtime::Handle::current();
    let cancel = shutdown.clone();
    let totals = tokio::task::spawn_blocking(move || {
        let poster =
            poster::Poster::new(cli.poster, &cli.kafka, &cli.group, &cli.db, metrics, handle)?;
        poster.run(&cancel)
    })
    .await
    .context("the poster thread panicked")??;
    shutdown.cancel();
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "tweet-consumer summary (poster)");
    let _ = writeln!(
        out,
        "  {:<28}{:>10}",
        "scheduled records read", totals.records
    );
    for outcome in ["posted", "duplicate", "failed", "missed"] {
        let count = totals.outcomes.get(outcome).copied().unwrap_or(0);
        let _ = writeln!(out, "  {:<28}{:>10}", outcome, count);
    }
    Ok(ExitCode::SUCCESS)
}

fn print_stats(db: &Path, top: usize) -> anyhow::Result<()> {
    if !db.exists() {
        anyhow::bail!(
            "no store at {}; run tweet-consumer --group analysis first (or pass --db)",
            db.display()
        );
    }
    let store =
        Store::open(db).with_context(|| format!("cannot open the store {}", db.display()))?;
    let table = store.language_sentiment_table()?;
    let total: u64 = table.iter().map(LanguageSentiment::total).sum();
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "{total} posts in {} (language detected by whatlang; sentiment by VADER, English only)",
        db.display()
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
    }
}
