//! `tweet-producer`: reads a social stream and writes every line, unchanged, to Kafka, routed by
//! field inspection (tweets, retweets, control, deadletter). This file parses the command line,
//! wires the pieces and prints the run's summary.

mod delivery;
mod replay;

use std::io::Write as _;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context as _;
use clap::Parser;
use prometheus::Registry;
use tweet_pipeline_common::config::{KafkaArgs, MetricsArgs, TopicNames};
use tweet_pipeline_common::framing::DEFAULT_MAX_LINE_BYTES;
use tweet_pipeline_common::metrics::{self, ProducerMetrics};
use tweet_pipeline_common::{shutdown, telemetry, Destination};

use crate::delivery::{DeliveryReport, KafkaSink};
use crate::replay::{ReplayConfig, ReplayStats};

/// Default `/metrics` address of the producer.
const DEFAULT_METRICS_ADDR: &str = "127.0.0.1:9101";

/// Write a social stream to Kafka, every line unchanged, routed by field inspection.
///
/// Each line becomes one record: statuses go to the tweets topic, retweets to the retweets
/// topic, control messages (delete, limit, disconnect, warning, scrub_geo, withheld, v2 errors)
/// to the control topic, and lines that can't be routed to the dead-letter topic with the
/// reason in the `error` header. Blank keep-alive lines are counted, not written.
#[derive(Debug, Parser)]
#[command(name = "tweet-producer", version)]
struct Cli {
    /// Replay a recorded stream: a JSON-lines file (gzip detected), or `-` for stdin.
    #[arg(long, value_name = "FILE", env = "REPLAY_FILE")]
    replay: Option<PathBuf>,

    /// Replay at most this many lines per second (keep-alives included); default: full speed.
    #[arg(long, value_name = "LINES_PER_S", value_parser = parse_rate)]
    rate: Option<f64>,

    /// Replay the file again from the start at its end, until stopped (not with stdin).
    #[arg(long = "loop")]
    looped: bool,

    /// Lines longer than this many bytes go to the dead-letter topic (their first bytes).
    #[arg(long, value_name = "BYTES", default_value_t = DEFAULT_MAX_LINE_BYTES)]
    max_line_bytes: usize,

    /// At shutdown, wait this long for Kafka to acknowledge outstanding records.
    #[arg(long, value_name = "SECONDS", default_value_t = 60)]
    flush_timeout_secs: u64,

    #[command(flatten)]
    kafka: KafkaArgs,

    #[command(flatten)]
    topics: TopicNames,

    #[command(flatten)]
    metrics: MetricsArgs,
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

async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let Some(path) = cli.replay.clone() else {
        anyhow::bail!(
            "no source given: pass --replay FILE (a JSON-lines recording, or - for stdin)"
        );
    };
    if cli.looped && path.as_os_str() == "-" {
        anyhow::bail!("--loop needs a file: standard input cannot be read twice");
    }
    if cli.max_line_bytes == 0 {
        anyhow::bail!("--max-line-bytes must be at least 1");
    }
    let shutdown = shutdown::on_signal();
    let registry = Registry::new();
    let metrics = ProducerMetrics::register(&registry);
    let default_addr: SocketAddr = DEFAULT_METRICS_ADDR.parse().expect("static address");
    if let Some(addr) = cli.metrics.addr_or(default_addr) {
        metrics::serve(addr, registry.clone(), shutdown.child_token()).await?;
    }

    let sink = KafkaSink::connect(
        &cli.kafka,
        cli.topics.clone(),
        metrics.clone(),
        Duration::from_secs(10),
    )?;
    let config = ReplayConfig {
        path,
        rate_lines_per_s: cli.rate,
        looped: cli.looped,
        max_line_bytes: cli.max_line_bytes,
    };
    tracing::info!(source = %config.path.display(), rate = ?config.rate_lines_per_s, looped = config.looped, "replaying");
    let cancel = shutdown.clone();
    let worker_metrics = metrics.clone();
    let (sink, replayed) = tokio::task::spawn_blocking(move || {
        let replayed = replay::run(&config, &sink, &worker_metrics, &cancel);
        (sink, replayed)
    })
    .await
    .context("the replay thread panicked")?;

    // Whatever happened to reading, everything already handed to Kafka is flushed and counted.
    let flush_timeout = Duration::from_secs(cli.flush_timeout_secs);
    let report = tokio::task::spawn_blocking(move || sink.finish(flush_timeout))
        .await
        .context("the flush thread panicked")?;
    let stats = replayed?;
    print_summary(&stats, &report, &cli.topics);
    shutdown.cancel();

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
    Ok(ExitCode::SUCCESS)
}

fn print_summary(stats: &ReplayStats, report: &DeliveryReport, topics: &TopicNames) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(
        out,
        "tweet-producer summary{}",
        if stats.interrupted {
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
