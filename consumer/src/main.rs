//! `tweet-consumer`: consumer-group roles that read the pipeline's topics. This file parses the
//! command line, wires a role of the library ([`tweet_pipeline_consumer`]) to the
//! at-least-once loop and prints the run's summary.

use std::process::ExitCode;

use anyhow::Context as _;
use clap::Parser;
use prometheus::Registry;
use tweet_pipeline_common::config::SummaryArgs;
use tweet_pipeline_common::metrics::{self, ConsumerMetrics, PosterMetrics, WebMetrics};
use tweet_pipeline_common::{shutdown, telemetry};
use tweet_pipeline_consumer::cli::{self, Cli, Command, Role, DEFAULT_METRICS_ADDR};
use tweet_pipeline_consumer::offline::{self, eval, report::ReportConfig};
use tweet_pipeline_consumer::store::StoreLocation;
use tweet_pipeline_consumer::{compliance, role};
use tweet_pipeline_scheduler::poster;

fn main() -> ExitCode {
    telemetry::init();
    let cli = Cli::parse();
    cli::warn_legacy_env();
    let result = match &cli.command {
        Some(Command::Stats {
            store,
            top,
            summary,
        }) => offline::stats::run(&store.db, *top).and_then(|stats| print(summary, &stats)),
        Some(Command::Report {
            store,
            out,
            top_hashtags,
            top_languages,
            summary,
        }) => {
            let config = ReportConfig {
                out: out.clone(),
                top_hashtags: *top_hashtags,
                top_languages: *top_languages,
            };
            offline::report::run(&store.db, &config).and_then(|report| print(summary, &report))
        }
        Some(Command::Eval {
            data,
            vader_parity,
            languages,
            detector,
            models,
        }) => eval::run(
            data,
            vader_parity.as_deref(),
            *detector,
            languages.clone().map(|l| l.0),
            models.as_deref(),
        )
        .map(|report| {
            print!("{report}");
            ExitCode::SUCCESS
        }),
        Some(Command::Compliance(args)) => runtime().and_then(|runtime| {
            runtime.block_on(async {
                let shutdown = shutdown::on_signal();
                let summary = compliance::run(args, &shutdown).await?;
                print(&args.summary, &summary)
            })
        }),
        Some(Command::Train {
            data,
            lingua,
            out,
            include_research_data,
            seed,
        }) => {
            let lingua = lingua
                .clone()
                .unwrap_or_else(|| data.join("../langid/lingua_testdata/sentences"));
            let sentiment140 =
                data.join("../sentiment/sentiment140/testdata.manual.2009.06.14.csv");
            offline::train::run(&offline::train::TrainArgs {
                data,
                lingua: &lingua,
                sentiment140: &sentiment140,
                out,
                include_research_data: *include_research_data,
                seed: *seed,
            })
            .map(|report| {
                print!("{report}");
                ExitCode::SUCCESS
            })
        }
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

/// A one-worker async runtime.
fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}

/// Prints `summary` on standard output in the format `args` chose.
fn print<T: std::fmt::Display + serde::Serialize>(
    args: &SummaryArgs,
    summary: &T,
) -> anyhow::Result<ExitCode> {
    args.write(summary, std::io::stdout().lock())
        .context("cannot print the summary")?;
    Ok(ExitCode::SUCCESS)
}

async fn consume(cli: Cli) -> anyhow::Result<ExitCode> {
    let role = cli.role()?;
    let shutdown = shutdown::on_signal();
    // Served from here on; each role registers its metrics in it (a scrape reads them then).
    let registry = Registry::new();
    if let Some(addr) = cli.metrics.addr_or(DEFAULT_METRICS_ADDR) {
        metrics::serve(addr, registry.clone(), shutdown.child_token()).await?;
    }
    // The poster runs its own loop; the other roles share the at-least-once runner.
    let runner = |cli: &Cli| {
        let metrics = ConsumerMetrics::register(&registry);
        role::consumer(cli, role, &metrics).map(|consumer| (consumer, metrics))
    };
    match role {
        Role::Poster => run_poster(cli, &registry, shutdown).await,
        Role::Web => role::web::run(cli, WebMetrics::register(&registry), shutdown).await,
        Role::Analysis => {
            let (consumer, metrics) = runner(&cli)?;
            let summary = role::analysis::run(&cli, consumer, metrics, &shutdown).await?;
            print(&cli.summary, &summary)
        }
        Role::Archive => {
            let (consumer, metrics) = runner(&cli)?;
            let summary = role::archive::run(&cli, consumer, metrics, &shutdown).await?;
            print(&cli.summary, &summary)?;
            if summary.partitions_failed > 0 {
                tracing::error!(partitions = summary.partitions_failed, "some partitions could not be archived; run again to archive them from their last durable file");
                return Ok(ExitCode::FAILURE);
            }
            Ok(ExitCode::SUCCESS)
        }
    }
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
