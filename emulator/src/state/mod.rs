//! The state every handler shares: the settings, the recordings, the v2 rules, the queued
//! faults, the posts created through `POST /2/tweets`, and per-API counters and connection
//! slots, and the Jetstream recording and connection log. This module depends on no handler:
//! handlers (`crate::api`) depend on it.

use std::time::Duration;

use serde::Serialize;
use tokio_util::sync::CancellationToken;

use crate::corpus::Corpus;
use crate::oauth::{OAuthKeys, Secret};
use crate::rules::RuleStore;

pub mod compliance;
pub mod faults;
pub mod jetstream;
pub mod network_posts;
pub mod posts;
mod stats;

pub use faults::{Fault, FaultQueue};
pub use jetstream::JetstreamState;
pub use network_posts::NetworkPosts;
pub use posts::PostLog;
pub use stats::{ApiStats, ConnectionGuard};

/// The emulated APIs: the four streams and posting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Api {
    /// X API v2 filtered stream.
    V2,
    /// X API v1.1 `statuses/filter`.
    V1,
    /// Mastodon streaming.
    Mastodon,
    /// X API v2 `POST /2/tweets` (posting; see `api/posts.rs`).
    Tweets,
    /// Bluesky Jetstream v1 `/subscribe` (WebSocket; see `api/jetstream.rs`).
    Jetstream,
    /// Bluesky `com.atproto.repo.createRecord` (posting; see `api/bluesky.rs`).
    #[serde(rename = "bluesky_post")]
    BlueskyPost,
    /// Mastodon `POST /api/v1/statuses` (posting; see `api/mastodon_post.rs`).
    #[serde(rename = "mastodon_post")]
    MastodonPost,
}

impl Api {
    /// Lower-case name, as in faults and stats.
    pub fn as_str(self) -> &'static str {
        match self {
            Api::V2 => "v2",
            Api::V1 => "v1",
            Api::Mastodon => "mastodon",
            Api::Tweets => "tweets",
            Api::Jetstream => "jetstream",
            Api::BlueskyPost => "bluesky_post",
            Api::MastodonPost => "mastodon_post",
        }
    }
}

/// Run-time settings from the command line.
#[derive(Debug)]
pub struct Settings {
    /// Time between two posts on one connection (from `--rate`).
    pub post_interval: Duration,
    /// Keep-alive interval of the v2 stream (X: 20 s).
    pub v2_keepalive: Duration,
    /// Keep-alive interval of the v1.1 stream (X: 30 s).
    pub v1_keepalive: Duration,
    /// Heartbeat interval of Mastodon streams (Mastodon: 15 s).
    pub mastodon_heartbeat: Duration,
    /// The v2 app-only bearer token.
    pub bearer_token: Secret,
    /// The v1.1 OAuth 1.0a keys.
    pub oauth: OAuthKeys,
    /// The Mastodon access token.
    pub mastodon_token: Secret,
}

/// Everything the handlers share.
#[derive(Debug)]
pub struct AppState {
    /// Command-line settings.
    pub settings: Settings,
    /// The recordings.
    pub corpus: Corpus,
    /// v2 rules.
    pub rules: RuleStore,
    /// Pending faults.
    pub faults: FaultQueue,
    /// Process shutdown: open streams end when it is cancelled.
    pub shutdown: CancellationToken,
    /// Posts created through `POST /2/tweets`.
    pub posts: PostLog,
    /// The Jetstream recording, pacing and connection log.
    pub jetstream: JetstreamState,
    /// Bluesky records and Mastodon statuses created by posting.
    pub network_posts: NetworkPosts,
    /// X API v2 batch compliance jobs and the events they report.
    pub compliance: compliance::ComplianceJobs,
    v2: ApiStats,
    v1: ApiStats,
    mastodon: ApiStats,
    tweets: ApiStats,
    jetstream_stats: ApiStats,
    bluesky_post: ApiStats,
    mastodon_post: ApiStats,
}

impl AppState {
    /// New state with zeroed counters.
    pub fn new(
        settings: Settings,
        corpus: Corpus,
        rules: RuleStore,
        shutdown: CancellationToken,
    ) -> Self {
        Self {
            settings,
            corpus,
            rules,
            faults: FaultQueue::default(),
            shutdown,
            posts: PostLog::default(),
            jetstream: JetstreamState::default(),
            network_posts: NetworkPosts::default(),
            compliance: compliance::ComplianceJobs::default(),
            v2: ApiStats::default(),
            v1: ApiStats::default(),
            mastodon: ApiStats::default(),
            tweets: ApiStats::default(),
            jetstream_stats: ApiStats::default(),
            bluesky_post: ApiStats::default(),
            mastodon_post: ApiStats::default(),
        }
    }

    /// The state with this Jetstream recording and pacing (none by default).
    pub fn with_jetstream(mut self, jetstream: JetstreamState) -> Self {
        self.jetstream = jetstream;
        self
    }

    /// The state with these compliance jobs and events (none by default).
    pub fn with_compliance(mut self, compliance: compliance::ComplianceJobs) -> Self {
        self.compliance = compliance;
        self
    }

    /// The counters of one API.
    pub fn stats(&self, api: Api) -> &ApiStats {
        match api {
            Api::V2 => &self.v2,
            Api::V1 => &self.v1,
            Api::Mastodon => &self.mastodon,
            Api::Tweets => &self.tweets,
            Api::Jetstream => &self.jetstream_stats,
            Api::BlueskyPost => &self.bluesky_post,
            Api::MastodonPost => &self.mastodon_post,
        }
    }
}
