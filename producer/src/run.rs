//! One run of the stream producer: check the flags, open the sink, read the source until it
//! ends or a signal stops it, flush, and sum up. The binary only parses the flags around it.

use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context as _};
use prometheus::Registry;
use tweet_pipeline_common::metrics::{self, ProducerMetrics};
use tweet_pipeline_common::secret::{credential, read_credentials_file};
use tweet_pipeline_common::shutdown;

use crate::cli::{
    Api, Source, StreamArgs, TimelineArg, DEFAULT_METRICS_ADDR, DEFAULT_X_V1_URL, DEFAULT_X_V2_URL,
    EXIT_SPOOLED,
};
use crate::delivery::{KafkaSink, SpoolSettings};
use crate::ingest::IngestStats;
use crate::source::bluesky::{self, cursor::CursorFile, rules::ClientRule, rules::RuleFilter};
use crate::source::replay::{self, ReplayConfig};
use crate::source::{live, mastodon, x_v1, x_v2};
use crate::spool::SpoolConfig;
use crate::summary::ProducerSummary;

/// A configured live source.
pub enum LiveSource {
    /// X API v2 filtered stream.
    XV2(x_v2::XV2),
    /// X API v1.1 statuses/filter.
    XV1(x_v1::XV1),
    /// Mastodon streaming.
    Mastodon(mastodon::Mastodon),
    /// Bluesky's Jetstream firehose.
    Bluesky(bluesky::Bluesky),
}

/// `tweet-producer rules --dry-run`: what the v2 rule sync of these flags would change.
///
/// # Errors
/// Flags that are not an X API v2 stream, a missing bearer token, or rules the X API cannot
/// give.
pub async fn rules_dry_run(
    cli: &StreamArgs,
) -> anyhow::Result<crate::source::x_v2_dry_run::RulesDryRun> {
    let LiveSource::XV2(api) = live_source(cli)? else {
        bail!("rules --dry-run is for the X API v2 filtered stream (--source x --api v2)");
    };
    let client = live::http_client().context("cannot build the HTTP client")?;
    api.dry_run(&client).await
}

/// Checks the flags of a live source and loads its credentials (before anything connects).
///
/// # Errors
/// When the flags name nothing to stream or contradict each other, or a credential is
/// missing (from the environment and from `--credentials-file`).
pub fn live_source(cli: &StreamArgs) -> anyhow::Result<LiveSource> {
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
                base_url: cli.x_api.url_or(DEFAULT_X_V2_URL),
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
                base_url: cli.x_api.url_or(DEFAULT_X_V1_URL),
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
        (Source::Bluesky, _) => {
            if cli.tags.len() > cli.rules.len() {
                bail!("{} --tag given for {} --rule: each --tag names the --rule at the same position", cli.tags.len(), cli.rules.len());
            }
            let url = reqwest::Url::parse(&cli.jetstream_url)
                .ok()
                .filter(|url| matches!(url.scheme(), "ws" | "wss"))
                .with_context(|| {
                    format!(
                        "--jetstream {:?} is not a ws:// or wss:// URL (e.g. {})",
                        cli.jetstream_url,
                        bluesky::DEFAULT_JETSTREAM_URL
                    )
                })?;
            let rules =
                x_v2::desired_rules(&cli.track, &cli.rules, &cli.tags, &cli.rule_tag_prefix)
                    .into_iter()
                    .map(|rule| ClientRule::parse(&rule.value, rule.tag.unwrap_or_default()))
                    .collect::<anyhow::Result<Vec<_>>>()?;
            let collections = if cli.collections.is_empty() {
                bluesky::DEFAULT_COLLECTIONS.map(str::to_owned).to_vec()
            } else {
                cli.collections.clone()
            };
            Ok(LiveSource::Bluesky(bluesky::Bluesky {
                url,
                collections,
                dids: cli.dids.clone(),
                rules: RuleFilter::new(rules),
                cursor_file: CursorFile::new(
                    cli.cursor_file
                        .clone()
                        .unwrap_or_else(|| bluesky::default_cursor_file(&cli.spool_dir)),
                ),
                rewind: Duration::from_secs(cli.cursor_rewind_secs),
                stall_timeout: stall.unwrap_or(bluesky::DEFAULT_STALL_TIMEOUT),
            }))
        }
        (Source::Mastodon, _) => {
            let Some(instance) = cli.instance.clone().or_else(|| cli.x_api.x_api_url.clone())
            else {
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

/// Streams or replays as `cli` says until the source ends or SIGINT/SIGTERM, then flushes
/// (spooling what Kafka did not acknowledge in time) and returns the run's summary.
///
/// # Errors
/// When a flag or credential is wrong, the spool cannot be opened, the broker is unreachable
/// or a topic is missing (all before anything is read), or the live API refuses the
/// credential (401/403).
pub async fn run(cli: &StreamArgs) -> anyhow::Result<ProducerSummary> {
    if cli.max_line_bytes == 0 {
        bail!("--max-line-bytes must be at least 1");
    }
    if cli.looped && cli.replay.as_deref().is_some_and(|p| p.as_os_str() == "-") {
        bail!("--loop needs a file: standard input cannot be read twice");
    }
    // Flags and credentials are checked before anything connects.
    let live = match &cli.replay {
        Some(_) => None,
        None => Some(live_source(cli)?),
    };
    let shutdown = shutdown::on_signal();
    let registry = Registry::new();
    let metrics = ProducerMetrics::register(&registry);
    if let Some(addr) = cli.metrics.addr_or(DEFAULT_METRICS_ADDR) {
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
    let cursor_file = match &live {
        Some(LiveSource::Bluesky(api)) => Some(api.cursor_file.clone()),
        _ => None,
    };
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
            let client = live::http_client().context("cannot build the HTTP client")?;
            let appview_url = cli.appview_url.clone();
            let budget = matches!(live, LiveSource::XV2(_) | LiveSource::XV1(_)).then(|| {
                live::BudgetConfig {
                    limits: crate::budget::BudgetLimits {
                        per_day: cli.max_post_reads_per_day,
                        per_month: cli.max_post_reads_per_month,
                    },
                    price_per_read_usd: cli.price_per_read_usd,
                    state_file: Some(
                        cli.read_budget_file
                            .clone()
                            .unwrap_or_else(|| cli.spool_dir.join("x-read-budget.json")),
                    ),
                }
            });
            let context = live::LiveContext {
                client,
                sink: task_sink,
                metrics: task_metrics,
                max_line_bytes,
                cancel,
                budget,
            };
            tokio::spawn(async move {
                match live {
                    LiveSource::XV2(api) => {
                        api.sync_rules(&context.client).await?;
                        live::run(&api, &context).await
                    }
                    LiveSource::XV1(api) => live::run(&api, &context).await,
                    LiveSource::Mastodon(api) => live::run(&api, &context).await,
                    LiveSource::Bluesky(mut api) => {
                        bluesky::resolve_handles(&context.client, &appview_url, &mut api).await?;
                        bluesky::run(api, &context).await
                    }
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
    let watermark = sink.watermark_handle();
    let report = tokio::task::spawn_blocking(move || sink.finish(flush_timeout))
        .await
        .context("the flush thread panicked")?;
    // After the flush: every record up to the watermark is in Kafka or in the spool.
    let cursor = cursor_file
        .as_ref()
        .and_then(|file| bluesky::save_final_cursor(&watermark, file));
    shutdown.cancel();
    let stats = read?;
    let mut summary = ProducerSummary::new(&stats, interrupted, &report, &cli.topics);
    summary.cursor = cursor;
    Ok(summary)
}

/// The exit status of a run that ended with `summary`, with its explanation on standard
/// error: failure when records were lost, [`EXIT_SPOOLED`] when records wait in `spool_dir`,
/// success otherwise.
pub fn exit_code(summary: &ProducerSummary, spool_dir: &Path) -> ExitCode {
    let lost = summary.not_delivered();
    if lost > 0 {
        tracing::error!(
            failed = summary.failed,
            unacknowledged = summary.unacknowledged,
            "not every record was acknowledged by Kafka"
        );
        eprintln!("error: {lost} record(s) were not acknowledged by Kafka (see the log above); replay the input again to fill the gap");
        return ExitCode::FAILURE;
    }
    if summary.spooled_left > 0 {
        eprintln!(
            "warning: {} record(s) wait in the spool {}; they are sent when tweet-producer starts again with the same --spool-dir",
            summary.spooled_left,
            spool_dir.display()
        );
        return ExitCode::from(EXIT_SPOOLED);
    }
    ExitCode::SUCCESS
}
