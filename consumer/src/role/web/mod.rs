//! The `web` role: a live web view of the stream. A Kafka tail ([`feed`]) reads the tweets,
//! retweets and control topics from their end, commits nothing, and broadcasts each post and
//! delete to the browsers over SSE; the page ([`page`]) shows them in TweetDeck-style
//! columns ([`filter`]) beside the analysis panel ([`analysis`], from the store) and the
//! schedule ([`schedule`], through the scheduler's own code) and the stream health
//! ([`health`], from the pipeline's `/metrics`). [`api`] holds the handlers,
//! [`security`] the access-token and CSRF rules. See docs/web.md.

pub mod analysis;
pub mod api;
pub mod feed;
pub mod filter;
pub mod health;
pub mod page;
pub mod schedule;
pub mod security;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context as _;
use tokio_util::sync::CancellationToken;
use tweet_pipeline_common::metrics::WebMetrics;
use tweet_pipeline_common::secret::Secret;

use crate::cli::Cli;

/// Default address of the web view: loopback only.
pub const DEFAULT_HTTP_ADDR: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 8080);

/// Events the feed holds for the slowest browser. A browser further behind than this is told
/// to reload and dropped, so memory stays bounded whatever the browsers do. 1024 events is
/// several seconds of a sampled stream and about 3 MB at 3 KB a post.
pub const FEED_CAPACITY: usize = 1024;

/// The web role's flags.
#[derive(Debug, Clone, clap::Args)]
pub struct WebArgs {
    /// Address of the web view (`--group web`). Anything but a loopback address needs
    /// --auth-token.
    #[arg(long, env = "TWEET_PIPELINE_HTTP_ADDR", default_value_t = DEFAULT_HTTP_ADDR)]
    pub http_addr: SocketAddr,

    /// Access token of the web view (at least 16 characters): every request must carry it
    /// (open /?token=TOKEN once to set the cookie, or send the x-web-token header).
    /// Required when --http-addr is not a loopback address.
    #[arg(
        long,
        env = "TWEET_PIPELINE_WEB_TOKEN",
        hide_env_values = true,
        value_parser = parse_secret
    )]
    pub auth_token: Option<Secret>,

    /// A file holding the access token on its first line, instead of --auth-token. Refused
    /// unless only its owner may read it (chmod 600).
    #[arg(
        long,
        env = "TWEET_PIPELINE_WEB_TOKEN_FILE",
        value_name = "PATH",
        conflicts_with = "auth_token"
    )]
    pub auth_token_file: Option<std::path::PathBuf>,

    /// A producer's or consumer's Prometheus endpoint for the stream-health panel
    /// (http://127.0.0.1:9100/metrics); repeat the flag for each. Polled by the server.
    #[arg(
        long = "metrics-url",
        env = "TWEET_PIPELINE_WEB_METRICS_URLS",
        value_delimiter = ',',
        value_name = "URL"
    )]
    pub metrics_urls: Vec<String>,
}

impl WebArgs {
    /// The access token: --auth-token, else the first line of --auth-token-file, else none.
    ///
    /// # Errors
    /// The token file is unreadable, not private, or empty ([`security::TokenFileError`]).
    pub fn token(&self) -> Result<Option<Secret>, security::TokenFileError> {
        match (&self.auth_token, &self.auth_token_file) {
            (Some(token), _) => Ok(Some(token.clone())),
            (None, Some(path)) => security::read_token_file(path).map(Some),
            (None, None) => Ok(None),
        }
    }
}

fn parse_secret(value: &str) -> Result<Secret, String> {
    Ok(Secret::new(value.trim()))
}

/// Runs the web view until `shutdown`, counting in `metrics`: checks the bind rule, assigns the tail to the end of
/// the topics, then serves the page. Logs (and prints on stdout) `web view on http://ADDR/`.
///
/// # Errors
/// A non-loopback address without a token, an unreachable broker or missing topic, or an
/// address that cannot be bound.
pub async fn run(
    cli: Cli,
    metrics: WebMetrics,
    shutdown: CancellationToken,
) -> anyhow::Result<ExitCode> {
    let args = cli.web.clone();
    let token = args.token()?;
    security::check_bind(args.http_addr, token.as_ref())?;
    let (kafka, topics) = (cli.kafka.clone(), cli.topics.clone());
    let tail = tokio::task::spawn_blocking(move || feed::start(&kafka, &topics))
        .await
        .context("the feed's start panicked")??;
    let live = Arc::new(feed::Feed::new(FEED_CAPACITY));
    let (tail_feed, feed_cancel) = (live.clone(), shutdown.clone());
    let feed = tokio::task::spawn_blocking(move || tail.run(&tail_feed, &feed_cancel));
    let health = health::panel(&args.metrics_urls);
    let poller = tokio::spawn(health::poll(health.clone(), shutdown.clone()));
    let state = Arc::new(api::AppState::new(
        live,
        security::random_token(),
        token.clone(),
        cli.db.clone(),
        cli.kafka.clone(),
        cli.poster.topics.clone(),
        [
            cli.topics.tweets.clone(),
            cli.topics.retweets.clone(),
            cli.topics.control.clone(),
        ],
        shutdown.clone(),
        health,
        metrics,
    ));
    let listener = tokio::net::TcpListener::bind(args.http_addr)
        .await
        .with_context(|| {
            format!(
                "cannot listen on {}; pick another --http-addr",
                args.http_addr
            )
        })?;
    let bound = listener
        .local_addr()
        .context("reading the web listener's address")?;
    tracing::info!(%bound, auth = token.is_some(), "serving the web view");
    println!("web view on http://{bound}/");
    let served = axum::serve(listener, api::router(state))
        .with_graceful_shutdown(shutdown.clone().cancelled_owned())
        .await;
    shutdown.cancel();
    feed.await.context("the feed thread panicked")?;
    poller.await.context("the stream-health poller panicked")?;
    served.context("the web server failed")?;
    Ok(ExitCode::SUCCESS)
}
