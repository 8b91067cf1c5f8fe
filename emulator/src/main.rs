//! `stream-emulator`: a local stand-in for the X API v2 filtered stream, X API v1.1
//! `statuses/filter` and Mastodon streaming, serving real recordings from the shared data
//! folder, with fault injection for tests and the demo. Loopback only.
//!
//! This file parses the command line, loads the corpus, wires the state and serves; the first
//! line on stdout is `listening on http://ADDR`.

mod app;
mod corpus;
mod faults;
mod mastodon;
mod oauth;
mod posts;
mod rules;
mod stream;
mod v1;
mod v2;

use std::io::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context as _};
use axum::serve::ListenerExt as _;
use clap::Parser;
use tweet_pipeline_common::{shutdown, telemetry};

use crate::app::{AppState, Settings};
use crate::oauth::{OAuthKeys, Secret};
use crate::rules::{NewRule, RuleRejection, RuleStore};

/// Default data folder, relative to the working directory: the shared data folder sits beside
/// the checkout (see the README).
const DEFAULT_DATA_DIR: &str = "../shared/data";

/// Default keep-alive of the v2 filtered stream: "a keep-alive signal ... every 20 seconds"
/// (X API v2 "Filtered stream" integration guide, handling disconnections).
const V2_KEEPALIVE_MS: u64 = 20_000;
/// Default keep-alive of the v1.1 streams: a blank line "every 30 seconds" (X API v1.1
/// "Connecting to a streaming endpoint", stalls).
const V1_KEEPALIVE_MS: u64 = 30_000;
/// Default Mastodon heartbeat: the streaming server writes `:thump` every 15 s
/// (mastodon/streaming/index.js).
const MASTODON_HEARTBEAT_MS: u64 = 15_000;

/// Serves recorded social-stream traffic on loopback, shaped like the real APIs, with fault
/// injection (`POST /_emulator/faults`).
#[derive(Parser)]
#[command(name = "stream-emulator", version, about)]
struct Cli {
    /// Address to listen on; loopback only (127.0.0.0/8 or ::1). Port 0 picks a free port.
    #[arg(long, env = "EMULATOR_LISTEN", default_value = "127.0.0.1:8089")]
    listen: SocketAddr,

    /// The shared data folder (default: ../shared/data if it exists).
    #[arg(long, env = "EMULATOR_DATA", value_name = "DIR")]
    data: Option<PathBuf>,

    /// An extra v1.1 JSON-lines recording to serve (repeatable; comma-separated in the
    /// environment), e.g. data/sample/stream.jsonl.
    #[arg(
        long = "v1-file",
        env = "EMULATOR_V1_FILES",
        value_name = "FILE",
        value_delimiter = ','
    )]
    v1_files: Vec<PathBuf>,

    /// Posts per second per stream connection.
    #[arg(long, env = "EMULATOR_RATE", default_value_t = 20.0)]
    rate: f64,

    /// Keep-alive interval in milliseconds for every API (default: v2 20000, v1.1 30000,
    /// Mastodon heartbeat 15000).
    #[arg(long = "keepalive-ms", env = "EMULATOR_KEEPALIVE_MS")]
    keepalive_ms: Option<u64>,

    /// The X API v2 bearer token clients must send.
    #[arg(long = "bearer-token", env = "X_BEARER_TOKEN", default_value = "emulator-bearer-token", hide_env_values = true, value_parser = secret)]
    bearer_token: Secret,

    /// The v1.1 OAuth consumer key (API key).
    #[arg(long = "consumer-key", env = "X_CONSUMER_KEY", default_value = "emulator-consumer-key", hide_env_values = true, value_parser = secret)]
    consumer_key: Secret,

    /// The v1.1 OAuth consumer secret.
    #[arg(long = "consumer-secret", env = "X_CONSUMER_SECRET", default_value = "emulator-consumer-secret", hide_env_values = true, value_parser = secret)]
    consumer_secret: Secret,

    /// The v1.1 OAuth access token.
    #[arg(long = "access-token", env = "X_ACCESS_TOKEN", default_value = "emulator-access-token", hide_env_values = true, value_parser = secret)]
    access_token: Secret,

    /// The v1.1 OAuth access token secret.
    #[arg(long = "access-token-secret", env = "X_ACCESS_TOKEN_SECRET", default_value = "emulator-access-token-secret", hide_env_values = true, value_parser = secret)]
    access_token_secret: Secret,

    /// The Mastodon access token clients must send.
    #[arg(long = "mastodon-token", env = "MASTODON_TOKEN", default_value = "emulator-mastodon-token", hide_env_values = true, value_parser = secret)]
    mastodon_token: Secret,

    /// A v2 rule that exists before any client arrives, as VALUE|TAG or VALUE (repeatable).
    #[arg(
        long = "seed-rule",
        env = "EMULATOR_SEED_RULE",
        value_name = "VALUE|TAG"
    )]
    seed_rules: Vec<String>,
}

fn secret(value: &str) -> Result<Secret, std::convert::Infallible> {
    Ok(Secret::new(value))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    telemetry::init();
    let cli = Cli::parse();
    let shutdown = shutdown::on_signal();

    if !cli.listen.ip().is_loopback() {
        bail!(
            "refusing to listen on {}: the emulator serves loopback only; use 127.0.0.1 or [::1]",
            cli.listen
        );
    }
    if !(cli.rate.is_finite() && cli.rate > 0.0 && cli.rate <= 100_000.0) {
        bail!(
            "--rate must be a number of posts per second above 0 (at most 100000), got {}",
            cli.rate
        );
    }
    if cli.keepalive_ms == Some(0) {
        bail!("--keepalive-ms must be at least 1");
    }
    let data = match cli.data {
        Some(dir) if dir.is_dir() => dir,
        Some(dir) => bail!("--data {} is not a folder", dir.display()),
        None if Path::new(DEFAULT_DATA_DIR).is_dir() => PathBuf::from(DEFAULT_DATA_DIR),
        // A fresh clone without the shared folder: the repository's own sample still serves
        // v1.1 and (derived) v2 posts.
        None if !cli.v1_files.is_empty() => {
            tracing::warn!(
                "{DEFAULT_DATA_DIR} not found: serving only the --v1-file recordings (v2 posts derived from them, no Mastodon statuses)"
            );
            PathBuf::from(DEFAULT_DATA_DIR)
        }
        None => bail!(
            "no data folder: {DEFAULT_DATA_DIR} does not exist here; pass --data DIR (the shared data folder) or --v1-file FILE"
        ),
    };

    let rules = RuleStore::new(first_rule_id());
    for seed in &cli.seed_rules {
        let (value, tag) = match seed.rsplit_once('|') {
            Some((value, tag)) => (value, Some(tag.to_owned()).filter(|t| !t.is_empty())),
            None => (seed.as_str(), None),
        };
        let outcome = rules.add(
            vec![NewRule {
                value: value.to_owned(),
                tag,
            }],
            false,
        );
        if let Some((value, rejection)) = outcome.rejected.first() {
            let why = match rejection {
                RuleRejection::Duplicate { id } => format!("it duplicates rule {id}"),
                RuleRejection::Invalid { details } => details.join("; "),
            };
            bail!("--seed-rule {value:?} is not a valid rule: {why}");
        }
    }

    let started = std::time::Instant::now();
    let v1_files = cli.v1_files.clone();
    let data_dir = data.clone();
    let corpus = tokio::task::spawn_blocking(move || corpus::load(&data_dir, &v1_files))
        .await
        .context("corpus loading task failed")?
        .with_context(|| format!("cannot load the recordings from {}", data.display()))?;
    let (from_stream, split, derived) = corpus.v2_counts;
    tracing::info!(
        data = %data.display(),
        v1_lines = corpus.v1.len(),
        v2_stream = from_stream,
        v2_split = split,
        v2_derived = derived,
        mastodon = corpus.mastodon.len(),
        elapsed_ms = started.elapsed().as_millis() as u64,
        "corpus loaded"
    );

    let keepalive = |default_ms| Duration::from_millis(cli.keepalive_ms.unwrap_or(default_ms));
    let settings = Settings {
        post_interval: Duration::from_secs_f64(1.0 / cli.rate),
        v2_keepalive: keepalive(V2_KEEPALIVE_MS),
        v1_keepalive: keepalive(V1_KEEPALIVE_MS),
        mastodon_heartbeat: keepalive(MASTODON_HEARTBEAT_MS),
        bearer_token: cli.bearer_token,
        oauth: OAuthKeys {
            consumer_key: cli.consumer_key,
            consumer_secret: cli.consumer_secret,
            access_token: cli.access_token,
            access_token_secret: cli.access_token_secret,
        },
        mastodon_token: cli.mastodon_token,
    };
    let state = Arc::new(AppState::new(settings, corpus, rules, shutdown.clone()));

    let listener = tokio::net::TcpListener::bind(cli.listen)
        .await
        .with_context(|| format!("cannot listen on {}", cli.listen))?;
    let addr = listener
        .local_addr()
        .context("cannot read the bound address")?;
    {
        let mut stdout = std::io::stdout().lock();
        writeln!(stdout, "listening on http://{addr}").context("cannot write to stdout")?;
        stdout.flush().context("cannot flush stdout")?;
    }
    tracing::info!(%addr, rate = cli.rate, "stream emulator serving");

    // Small writes (keep-alives, split chunks) must leave at once, not wait for Nagle.
    let listener = listener.tap_io(|tcp| {
        if let Err(error) = tcp.set_nodelay(true) {
            tracing::warn!(%error, "cannot set TCP_NODELAY");
        }
    });
    axum::serve(listener, app::router(state))
        .with_graceful_shutdown(shutdown.cancelled_owned())
        .await
        .context("the HTTP server failed")?;
    tracing::info!("stream emulator stopped");
    Ok(())
}

/// The first rule id: a snowflake-like number of the current time (ms since X's epoch,
/// 2010-11-04T01:42:54.657Z, shifted by 22 bits), so ids look like X's and increase.
fn first_rule_id() -> u64 {
    const X_EPOCH_MS: i64 = 1_288_834_974_657;
    let since_epoch = (chrono::Utc::now().timestamp_millis() - X_EPOCH_MS).max(0) as u64;
    since_epoch << 22
}
