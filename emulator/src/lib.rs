//! A local stand-in for the X API v2 filtered stream and batch compliance jobs, X API v1.1
//! `statuses/filter`, Mastodon streaming and Bluesky Jetstream v1 (`GET /subscribe`,
//! WebSocket), serving real recordings
//! from the shared data folder, with fault injection for tests and the demo
//! (`POST /_emulator/faults`, see [`Fault`]). Loopback only.
//!
//! Jetstream: each recorded event is one text frame holding its line unchanged, in `time_us`
//! order, paced at [`EmulatorConfig::jetstream_rate_per_sec`]; `wantedCollections`,
//! `wantedDids`, `cursor`, `maxMessageSizeBytes` and `requireHello` work as on the real
//! server, `compress=true` is refused; what each connection sent is in
//! `GET /_emulator/jetstream/log` ([`JetstreamLog`]). Without a Jetstream recording the other
//! APIs still serve and `/subscribe` answers 503.
//!
//! The `stream-emulator` binary parses its flags into an [`EmulatorConfig`] and calls
//! [`Emulator::load`] then [`Emulator::serve`]. Tests run the same server in process, in the
//! style of mini-redis's `tests/server.rs`:
//!
//! ```no_run
//! # async fn run() -> Result<(), tweet_pipeline_emulator::EmulatorError> {
//! use tweet_pipeline_emulator::{start, EmulatorConfig};
//!
//! let emulator = start(EmulatorConfig::new(Some("../shared/data".into()))).await?;
//! let url = emulator.url(); // http://127.0.0.1:PORT
//! // ... connect clients to `url` ...
//! emulator.stop().await?;
//! # Ok(()) }
//! ```
//!
//! Layout: `state` is what every handler shares (and imports no handler); `api/` holds the
//! handlers, one module per API plus the control endpoints; `router` maps paths to handlers;
//! `stream` is the streaming engine with the fault effects of the HTTP streams (Jetstream's
//! WebSocket session is in `api/jetstream.rs`); `corpus/` loads the recordings;
//! `rules/` is the v2 rule language and store; `oauth` verifies OAuth 1.0a signatures.

mod api;
mod corpus;
mod oauth;
mod router;
mod rules;
mod state;
mod stream;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use axum::serve::ListenerExt as _;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

pub use crate::corpus::jetstream::DEFAULT_JETSTREAM_FILE;
pub use crate::corpus::CorpusError;
pub use crate::oauth::{OAuthKeys, Secret};
pub use crate::state::faults::{ApiSelector, Fault, FaultError};
pub use crate::state::jetstream::{
    FaultEffect, JetstreamConnection, JetstreamLog, JetstreamQuery, SentEvent,
};

use crate::rules::{NewRule, RuleRejection, RuleStore};
use crate::state::{AppState, JetstreamState, Settings};

/// Default data folder, relative to the working directory: the shared data folder sits beside
/// the checkout (see the README).
pub const DEFAULT_DATA_DIR: &str = "../shared/data";

/// Default posts per second per stream connection.
pub const DEFAULT_RATE_PER_SEC: f64 = 20.0;

/// Default Jetstream events per second per `/subscribe` connection: fast enough to replay the
/// 152-event recording in under 2 s, slow enough for a test to act mid-stream.
pub const DEFAULT_JETSTREAM_RATE_PER_SEC: f64 = 100.0;

/// Default keep-alive of the v2 filtered stream: "a keep-alive signal ... every 20 seconds"
/// (X API v2 "Filtered stream" integration guide, handling disconnections).
const V2_KEEPALIVE_MS: u64 = 20_000;
/// Default keep-alive of the v1.1 streams: a blank line "every 30 seconds" (X API v1.1
/// "Connecting to a streaming endpoint", stalls).
const V1_KEEPALIVE_MS: u64 = 30_000;
/// Default Mastodon heartbeat: the streaming server writes `:thump` every 15 s
/// (mastodon/streaming/index.js).
const MASTODON_HEARTBEAT_MS: u64 = 15_000;

/// The credentials the emulator accepts unless told otherwise; the producer's tests and the
/// demo use the same values.
pub mod default_credentials {
    /// The X API v2 bearer token.
    pub const BEARER_TOKEN: &str = "emulator-bearer-token";
    /// The v1.1 OAuth consumer key (API key).
    pub const CONSUMER_KEY: &str = "emulator-consumer-key";
    /// The v1.1 OAuth consumer secret.
    pub const CONSUMER_SECRET: &str = "emulator-consumer-secret";
    /// The v1.1 OAuth access token.
    pub const ACCESS_TOKEN: &str = "emulator-access-token";
    /// The v1.1 OAuth access token secret.
    pub const ACCESS_TOKEN_SECRET: &str = "emulator-access-token-secret";
    /// The Mastodon access token.
    pub const MASTODON_TOKEN: &str = "emulator-mastodon-token";
}

/// What the emulator serves and how: the values of the binary's flags.
#[derive(Debug, Clone)]
pub struct EmulatorConfig {
    /// The shared data folder; `None` for [`DEFAULT_DATA_DIR`] if it exists (or, without it,
    /// only the `v1_files`).
    pub data_dir: Option<PathBuf>,
    /// Extra v1.1 JSON-lines recordings to serve.
    pub v1_files: Vec<PathBuf>,
    /// Posts per second per stream connection (above 0, at most 100000).
    pub rate_per_sec: f64,
    /// Keep-alive interval in milliseconds for every API; `None` for each API's own (v2 20000,
    /// v1.1 30000, Mastodon heartbeat 15000).
    pub keepalive_ms: Option<u64>,
    /// The X API v2 bearer token clients must send.
    pub bearer_token: Secret,
    /// The v1.1 OAuth 1.0a keys (also for `POST /2/tweets`).
    pub oauth: OAuthKeys,
    /// The Mastodon access token clients must send.
    pub mastodon_token: Secret,
    /// v2 rules that exist before any client arrives, as `VALUE|TAG` or `VALUE`.
    pub seed_rules: Vec<String>,
    /// Jetstream v1 JSON-lines recordings to serve instead of the data folder's
    /// [`DEFAULT_JETSTREAM_FILE`]; empty for that default (if it exists).
    pub jetstream_files: Vec<PathBuf>,
    /// Jetstream events per second per connection (0: as fast as possible, at most 100000).
    pub jetstream_rate_per_sec: f64,
}

impl EmulatorConfig {
    /// The defaults of the binary's flags, with this data folder.
    pub fn new(data_dir: Option<PathBuf>) -> Self {
        use default_credentials as c;
        Self {
            data_dir,
            v1_files: Vec::new(),
            rate_per_sec: DEFAULT_RATE_PER_SEC,
            keepalive_ms: None,
            bearer_token: Secret::new(c::BEARER_TOKEN),
            oauth: OAuthKeys {
                consumer_key: Secret::new(c::CONSUMER_KEY),
                consumer_secret: Secret::new(c::CONSUMER_SECRET),
                access_token: Secret::new(c::ACCESS_TOKEN),
                access_token_secret: Secret::new(c::ACCESS_TOKEN_SECRET),
            },
            mastodon_token: Secret::new(c::MASTODON_TOKEN),
            seed_rules: Vec::new(),
            jetstream_files: Vec::new(),
            jetstream_rate_per_sec: DEFAULT_JETSTREAM_RATE_PER_SEC,
        }
    }
}

/// Why the emulator could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum EmulatorError {
    /// The listen address is not a loopback address.
    #[error(
        "refusing to listen on {0}: the emulator serves loopback only; use 127.0.0.1 or [::1]"
    )]
    NotLoopback(SocketAddr),
    /// The rate is not a positive number of posts per second up to 100000.
    #[error("--rate must be a number of posts per second above 0 (at most 100000), got {0}")]
    BadRate(f64),
    /// The Jetstream rate is not 0 or a positive number up to 100000.
    #[error(
        "--jetstream-rate must be a number of events per second from 0 (as fast as possible) to 100000, got {0}"
    )]
    BadJetstreamRate(f64),
    /// The keep-alive interval is 0.
    #[error("--keepalive-ms must be at least 1")]
    ZeroKeepalive,
    /// The data folder given is not a folder.
    #[error("--data {} is not a folder", .0.display())]
    NotAFolder(PathBuf),
    /// No data folder was given, the default does not exist and there is no `--v1-file`.
    #[error(
        "no data folder: {DEFAULT_DATA_DIR} does not exist here; pass --data DIR (the shared data folder) or --v1-file FILE"
    )]
    NoDataFolder,
    /// A seed rule is not a valid rule.
    #[error("--seed-rule {value:?} is not a valid rule: {why}")]
    BadSeedRule {
        /// The rule value.
        value: String,
        /// What is wrong with it.
        why: String,
    },
    /// The recordings could not be loaded.
    #[error("cannot load the recordings from {}", .dir.display())]
    Corpus {
        /// The data folder.
        dir: PathBuf,
        /// What failed.
        #[source]
        source: CorpusError,
    },
    /// The task loading the recordings panicked or was cancelled.
    #[error("corpus loading task failed")]
    LoadTask(#[source] tokio::task::JoinError),
    /// The listener could not be bound.
    #[error("cannot listen on {addr}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The listener's address could not be read.
    #[error("cannot read the bound address")]
    LocalAddr(#[source] std::io::Error),
    /// The HTTP server failed.
    #[error("the HTTP server failed")]
    Serve(#[source] std::io::Error),
    /// The in-process server task panicked or was cancelled.
    #[error("the emulator task failed")]
    Task(#[source] tokio::task::JoinError),
}

/// Refuses addresses other than loopback (127.0.0.0/8 or ::1): the emulator accepts any
/// credentials it is configured with and must not be reachable from elsewhere.
///
/// # Errors
/// [`EmulatorError::NotLoopback`].
pub fn check_listen_addr(addr: SocketAddr) -> Result<(), EmulatorError> {
    if addr.ip().is_loopback() {
        Ok(())
    } else {
        Err(EmulatorError::NotLoopback(addr))
    }
}

/// A loaded emulator: the recordings, the seeded rules and fresh counters, ready to serve.
#[derive(Debug)]
pub struct Emulator {
    state: Arc<AppState>,
    rate_per_sec: f64,
}

impl Emulator {
    /// Checks the configuration, seeds the rules and loads the recordings (on a blocking
    /// thread). Open streams end and [`Emulator::serve`] returns when `shutdown` is cancelled.
    ///
    /// # Errors
    /// [`EmulatorError`] for a value out of range, a missing data folder, an invalid seed rule
    /// or recordings that cannot be loaded.
    pub async fn load(
        config: EmulatorConfig,
        shutdown: CancellationToken,
    ) -> Result<Self, EmulatorError> {
        let rate = config.rate_per_sec;
        if !(rate.is_finite() && rate > 0.0 && rate <= 100_000.0) {
            return Err(EmulatorError::BadRate(rate));
        }
        let jetstream_rate = config.jetstream_rate_per_sec;
        if !(jetstream_rate.is_finite() && (0.0..=100_000.0).contains(&jetstream_rate)) {
            return Err(EmulatorError::BadJetstreamRate(jetstream_rate));
        }
        if config.keepalive_ms == Some(0) {
            return Err(EmulatorError::ZeroKeepalive);
        }
        let data = resolve_data_dir(config.data_dir, &config.v1_files)?;
        let rules = seed_rules(&config.seed_rules)?;

        let started = std::time::Instant::now();
        let v1_files = config.v1_files;
        let data_dir = data.clone();
        let jetstream_files = corpus::jetstream::files(&data, &config.jetstream_files);
        let (corpus, jetstream, compliance) = tokio::task::spawn_blocking(move || {
            Ok::<_, CorpusError>((
                corpus::load(&data_dir, &v1_files)?,
                corpus::jetstream::load(&jetstream_files)?,
                state::compliance::ComplianceJobs::load(&data_dir),
            ))
        })
        .await
        .map_err(EmulatorError::LoadTask)?
        .map_err(|source| EmulatorError::Corpus {
            dir: data.clone(),
            source,
        })?;
        if jetstream.is_none() {
            tracing::warn!(
                data = %data.display(),
                file = DEFAULT_JETSTREAM_FILE,
                "no Jetstream recording: /subscribe answers 503 (pass --jetstream-file FILE)"
            );
        }
        let (from_stream, split, derived) = corpus.v2_counts;
        tracing::info!(
            data = %data.display(),
            v1_lines = corpus.v1.len(),
            v2_stream = from_stream,
            v2_split = split,
            v2_derived = derived,
            mastodon = corpus.mastodon.len(),
            jetstream = jetstream.as_ref().map_or(0, Vec::len),
            elapsed_ms = started.elapsed().as_millis() as u64,
            "corpus loaded"
        );

        let keepalive =
            |default_ms| Duration::from_millis(config.keepalive_ms.unwrap_or(default_ms));
        let settings = Settings {
            post_interval: Duration::from_secs_f64(1.0 / rate),
            v2_keepalive: keepalive(V2_KEEPALIVE_MS),
            v1_keepalive: keepalive(V1_KEEPALIVE_MS),
            mastodon_heartbeat: keepalive(MASTODON_HEARTBEAT_MS),
            bearer_token: config.bearer_token,
            oauth: config.oauth,
            mastodon_token: config.mastodon_token,
        };
        let jetstream_interval =
            (jetstream_rate > 0.0).then(|| Duration::from_secs_f64(1.0 / jetstream_rate));
        let jetstream = JetstreamState::new(jetstream, jetstream_interval);
        Ok(Self {
            state: Arc::new(
                AppState::new(settings, corpus, rules, shutdown)
                    .with_jetstream(jetstream)
                    .with_compliance(compliance),
            ),
            rate_per_sec: rate,
        })
    }

    /// Serves on `listener` (which must be bound to a loopback address) until the shutdown
    /// token is cancelled, then lets open requests finish (open streams end with the token).
    ///
    /// # Errors
    /// [`EmulatorError::NotLoopback`], or [`EmulatorError::Serve`] when the server fails.
    pub async fn serve(self, listener: TcpListener) -> Result<(), EmulatorError> {
        let addr = listener.local_addr().map_err(EmulatorError::LocalAddr)?;
        check_listen_addr(addr)?;
        tracing::info!(%addr, rate = self.rate_per_sec, "stream emulator serving");
        // Small writes (keep-alives, split chunks) must leave at once, not wait for Nagle.
        let listener = listener.tap_io(|tcp| {
            if let Err(error) = tcp.set_nodelay(true) {
                tracing::warn!(%error, "cannot set TCP_NODELAY");
            }
        });
        let shutdown = self.state.shutdown.clone();
        axum::serve(listener, router::router(self.state))
            .with_graceful_shutdown(shutdown.cancelled_owned())
            .await
            .map_err(EmulatorError::Serve)?;
        tracing::info!("stream emulator stopped");
        Ok(())
    }
}

/// Loads the recordings and serves on `listener` until `shutdown` is cancelled: the in-process
/// entry point ([`Emulator::load`] then [`Emulator::serve`]).
///
/// # Errors
/// See [`Emulator::load`] and [`Emulator::serve`].
pub async fn serve(
    listener: TcpListener,
    config: EmulatorConfig,
    shutdown: CancellationToken,
) -> Result<(), EmulatorError> {
    Emulator::load(config, shutdown)
        .await?
        .serve(listener)
        .await
}

/// Loads the recordings, binds `127.0.0.1:0` and serves on a spawned task: for tests. The
/// server stops when the handle is stopped or dropped.
///
/// # Errors
/// See [`Emulator::load`]; [`EmulatorError::Bind`] when no port can be bound.
pub async fn start(config: EmulatorConfig) -> Result<RunningEmulator, EmulatorError> {
    let shutdown = CancellationToken::new();
    let emulator = Emulator::load(config, shutdown.clone()).await?;
    let addr = SocketAddr::from(([127, 0, 0, 1], 0));
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|source| EmulatorError::Bind { addr, source })?;
    let addr = listener.local_addr().map_err(EmulatorError::LocalAddr)?;
    let task = tokio::spawn(emulator.serve(listener));
    Ok(RunningEmulator {
        addr,
        shutdown,
        task: Some(task),
    })
}

/// An emulator serving on a spawned task (see [`start`]). Dropping it cancels the server
/// without waiting for it.
#[derive(Debug)]
pub struct RunningEmulator {
    addr: SocketAddr,
    shutdown: CancellationToken,
    task: Option<JoinHandle<Result<(), EmulatorError>>>,
}

impl RunningEmulator {
    /// The bound address (`127.0.0.1:PORT`).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The base URL, `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Stops the server (open streams end) and waits for it.
    ///
    /// # Errors
    /// The server's error, or [`EmulatorError::Task`] when its task panicked.
    pub async fn stop(mut self) -> Result<(), EmulatorError> {
        self.shutdown.cancel();
        match self.task.take() {
            Some(task) => task.await.map_err(EmulatorError::Task)?,
            None => Ok(()),
        }
    }
}

impl Drop for RunningEmulator {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// The data folder to load: `explicit` if it is a folder, else [`DEFAULT_DATA_DIR`] if it
/// exists, else (with extra v1.1 recordings only) the default anyway, whose missing
/// subfolders then serve nothing.
fn resolve_data_dir(
    explicit: Option<PathBuf>,
    v1_files: &[PathBuf],
) -> Result<PathBuf, EmulatorError> {
    match explicit {
        Some(dir) if dir.is_dir() => Ok(dir),
        Some(dir) => Err(EmulatorError::NotAFolder(dir)),
        None if Path::new(DEFAULT_DATA_DIR).is_dir() => Ok(PathBuf::from(DEFAULT_DATA_DIR)),
        // A fresh clone without the shared folder: the repository's own sample still serves
        // v1.1 and (derived) v2 posts.
        None if !v1_files.is_empty() => {
            tracing::warn!(
                "{DEFAULT_DATA_DIR} not found: serving only the --v1-file recordings (v2 posts derived from them, no Mastodon statuses)"
            );
            Ok(PathBuf::from(DEFAULT_DATA_DIR))
        }
        None => Err(EmulatorError::NoDataFolder),
    }
}

/// A rule store holding the seed rules (`VALUE|TAG` or `VALUE`).
fn seed_rules(seeds: &[String]) -> Result<RuleStore, EmulatorError> {
    let rules = RuleStore::new(first_rule_id());
    for seed in seeds {
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
            return Err(EmulatorError::BadSeedRule {
                value: value.clone(),
                why,
            });
        }
    }
    Ok(rules)
}

/// The first rule id: a snowflake-like number of the current time (ms since X's epoch,
/// 2010-11-04T01:42:54.657Z, shifted by 22 bits), so ids look like X's and increase.
fn first_rule_id() -> u64 {
    const X_EPOCH_MS: i64 = 1_288_834_974_657;
    let since_epoch = (chrono::Utc::now().timestamp_millis() - X_EPOCH_MS).max(0) as u64;
    since_epoch << 22
}
