//! `tweet-producer`: reads a social stream and writes every line, unchanged, to Kafka, routed by
//! field inspection (tweets, retweets, control, deadletter). This file parses the command line,
//! runs the library ([`tweet_pipeline_producer::run`]) and prints the run's summary.

use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use tweet_pipeline_common::telemetry;
use tweet_pipeline_producer::cli::StreamArgs;
use tweet_pipeline_producer::run;
use tweet_pipeline_scheduler::command as schedule;

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

    #[command(flatten)]
    stream: StreamArgs,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Scheduled posts: queue one post or a folder of drafts on the `scheduled` topic, cancel,
    /// list (posted by `tweet-consumer --group poster`).
    Schedule(Box<schedule::ScheduleArgs>),
    /// X API v2 rules: with --dry-run, print the rules the stream flags would add and delete,
    /// each rule's length against 1,024 characters and the rule count against 1,000; nothing
    /// changes.
    Rules(Box<RulesArgs>),
}

#[derive(Debug, clap::Args)]
struct RulesArgs {
    /// Change nothing: only print the plan (the one mode for now).
    #[arg(long, required = true)]
    dry_run: bool,

    #[command(flatten)]
    stream: StreamArgs,
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
    match runtime.block_on(dispatch(cli)) {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

async fn dispatch(mut cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command.take() {
        Some(Command::Schedule(args)) => return schedule::run(*args).await,
        Some(Command::Rules(args)) => {
            let plan = run::rules_dry_run(&args.stream).await?;
            args.stream
                .summary
                .write(&plan, std::io::stdout().lock())
                .context("cannot print the plan")?;
            let code = if plan.over_limits {
                ExitCode::FAILURE
            } else {
                ExitCode::SUCCESS
            };
            return Ok(code);
        }
        None => {}
    }
    let args = cli.stream;
    let summary = run::run(&args).await?;
    // Only the summary goes to standard output; logs and warnings go to standard error.
    args.summary
        .write(&summary, std::io::stdout().lock())
        .context("cannot print the summary")?;
    Ok(run::exit_code(&summary, &args.spool_dir))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_is_consistent() {
        Cli::command().debug_assert();
    }
}
