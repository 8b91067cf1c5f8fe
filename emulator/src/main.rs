//! `stream-emulator`: a local stand-in for the X API v2 filtered stream, X API v1.1
//! `statuses/filter`, Mastodon streaming and Bluesky Jetstream v1 (`/subscribe`), serving real
//! recordings from the shared data folder, with fault injection for tests and the demo.
//! Loopback only.
//!
//! This file parses the command line, loads the emulator, binds and serves (the library,
//! `tweet_pipeline_emulator`, does the rest); the first line on stdout is
//! `listening on http://ADDR`.

use std::io::Write as _;
use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context as _;
use clap::Parser;
use tweet_pipeline_common::{shutdown, telemetry};
use tweet_pipeline_emulator::default_credentials as creds;
use tweet_pipeline_emulator::{
    check_listen_addr, Emulator, EmulatorConfig, OAuthKeys, Secret, DEFAULT_JETSTREAM_RATE_PER_SEC,
    DEFAULT_RATE_PER_SEC,
};

/// Serves recorded social-stream traffic on loopback, shaped like the real APIs, with fault
/// injection (`POST /_emulator/faults`).
#[derive(Parser)]
#[command(name = "stream-emulator", version, about)]
struct Cli {
    /// Address to listen on; loopback only (127.0.0.0/8 or ::1). Port 0 picks a free port.
    #[arg(
        long,
        env = "TWEET_PIPELINE_EMULATOR_LISTEN",
        default_value = "127.0.0.1:8089"
    )]
    listen: SocketAddr,

    /// The shared data folder (default: ../shared/data if it exists).
    #[arg(long, env = "TWEET_PIPELINE_DATA", value_name = "DIR")]
    data: Option<PathBuf>,

    /// An extra v1.1 JSON-lines recording to serve (repeatable; comma-separated in the
    /// environment), e.g. data/sample/stream.jsonl.
    #[arg(
        long = "v1-file",
        env = "TWEET_PIPELINE_EMULATOR_V1_FILES",
        value_name = "FILE",
        value_delimiter = ','
    )]
    v1_files: Vec<PathBuf>,

    /// Posts per second per stream connection.
    #[arg(long, env = "TWEET_PIPELINE_EMULATOR_RATE", default_value_t = DEFAULT_RATE_PER_SEC)]
    rate: f64,

    /// Keep-alive interval in milliseconds for every API (default: v2 20000, v1.1 30000,
    /// Mastodon heartbeat 15000).
    #[arg(long = "keepalive-ms", env = "TWEET_PIPELINE_EMULATOR_KEEPALIVE_MS")]
    keepalive_ms: Option<u64>,

    /// The X API v2 bearer token clients must send.
    #[arg(long = "bearer-token", env = "X_BEARER_TOKEN", default_value = creds::BEARER_TOKEN, hide_env_values = true, value_parser = secret)]
    bearer_token: Secret,

    /// The v1.1 OAuth consumer key (API key).
    #[arg(long = "consumer-key", env = "X_CONSUMER_KEY", default_value = creds::CONSUMER_KEY, hide_env_values = true, value_parser = secret)]
    consumer_key: Secret,

    /// The v1.1 OAuth consumer secret.
    #[arg(long = "consumer-secret", env = "X_CONSUMER_SECRET", default_value = creds::CONSUMER_SECRET, hide_env_values = true, value_parser = secret)]
    consumer_secret: Secret,

    /// The v1.1 OAuth access token.
    #[arg(long = "access-token", env = "X_ACCESS_TOKEN", default_value = creds::ACCESS_TOKEN, hide_env_values = true, value_parser = secret)]
    access_token: Secret,

    /// The v1.1 OAuth access token secret.
    #[arg(long = "access-token-secret", env = "X_ACCESS_TOKEN_SECRET", default_value = creds::ACCESS_TOKEN_SECRET, hide_env_values = true, value_parser = secret)]
    access_token_secret: Secret,

    /// The Mastodon access token clients must send.
    #[arg(long = "mastodon-token", env = "MASTODON_TOKEN", default_value = creds::MASTODON_TOKEN, hide_env_values = true, value_parser = secret)]
    mastodon_token: Secret,

    /// A v2 rule that exists before any client arrives, as VALUE|TAG or VALUE (repeatable).
    #[arg(
        long = "seed-rule",
        env = "TWEET_PIPELINE_EMULATOR_SEED_RULE",
        value_name = "VALUE|TAG"
    )]
    seed_rules: Vec<String>,

    /// A Jetstream v1 JSON-lines recording to serve on /subscribe instead of the data folder's
    /// bluesky/jetstream-v1/bluesky-social_jetstream__corpus_expected_v1.jsonl (repeatable;
    /// comma-separated in the environment).
    #[arg(
        long = "jetstream-file",
        env = "TWEET_PIPELINE_EMULATOR_JETSTREAM_FILES",
        value_name = "FILE",
        value_delimiter = ','
    )]
    jetstream_files: Vec<PathBuf>,

    /// Jetstream events per second per /subscribe connection (0: as fast as possible).
    #[arg(
        long = "jetstream-rate",
        env = "TWEET_PIPELINE_EMULATOR_JETSTREAM_RATE",
        value_name = "EVENTS_PER_SEC",
        default_value_t = DEFAULT_JETSTREAM_RATE_PER_SEC
    )]
    jetstream_rate: f64,
}

fn secret(value: &str) -> Result<Secret, std::convert::Infallible> {
    Ok(Secret::new(value))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    telemetry::init();
    let cli = Cli::parse();
    let shutdown = shutdown::on_signal();

    check_listen_addr(cli.listen)?;
    let config = EmulatorConfig {
        data_dir: cli.data,
        v1_files: cli.v1_files,
        rate_per_sec: cli.rate,
        keepalive_ms: cli.keepalive_ms,
        bearer_token: cli.bearer_token,
        oauth: OAuthKeys {
            consumer_key: cli.consumer_key,
            consumer_secret: cli.consumer_secret,
            access_token: cli.access_token,
            access_token_secret: cli.access_token_secret,
        },
        mastodon_token: cli.mastodon_token,
        seed_rules: cli.seed_rules,
        jetstream_files: cli.jetstream_files,
        jetstream_rate_per_sec: cli.jetstream_rate,
    };
    let emulator = Emulator::load(config, shutdown).await?;

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
    emulator.serve(listener).await?;
    Ok(())
}
