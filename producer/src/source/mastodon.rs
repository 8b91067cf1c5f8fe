//! Mastodon streaming over Server-Sent Events.
//!
//! Source: Mastodon documentation, "streaming API methods": `GET /api/v1/streaming/hashtag`
//! (`tag`), `/api/v1/streaming/public`, `/api/v1/streaming/public/local`; a user token with
//! `read:statuses` in `Authorization: Bearer`; events `update` (a Status), `delete` (a status
//! id), `status.update` (an edited Status); the server sends a `:thump` comment as heartbeat.
//!
//! The SSE framing is parsed here (live.rs) rather than with reqwest-eventsource: that crate
//! drops comment lines, and the heartbeats are what stall detection and the keep-alive count
//! need; it also brings its own retry policy, where the project's documented one must rule.

use std::time::Duration;

use tweet_pipeline_common::secret::Secret;

use crate::source::live::{Framing, StreamApi};

/// Mastodon's streaming server sends a heartbeat about every 15 s; three missed ones stall.
pub const DEFAULT_STALL_TIMEOUT: Duration = Duration::from_secs(45);

/// Which timeline to stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Timeline {
    /// Public posts with a hashtag (without `#`).
    Hashtag(String),
    /// The federated public timeline.
    Public,
    /// The instance's local timeline.
    Local,
}

/// The Mastodon configuration.
#[derive(Debug, Clone)]
pub struct Mastodon {
    /// Instance root, e.g. `https://mastodon.social`.
    pub instance: String,
    /// User access token with `read:statuses`.
    pub token: Secret,
    /// The timeline.
    pub timeline: Timeline,
    /// Stall timeout.
    pub stall_timeout: Duration,
}

impl StreamApi for Mastodon {
    fn label(&self) -> &'static str {
        "mastodon"
    }

    fn source(&self) -> String {
        let host = self
            .instance
            .trim_start_matches("https://")
            .trim_start_matches("http://")
            .trim_end_matches('/');
        format!("mastodon:{host}")
    }

    fn framing(&self) -> Framing {
        Framing::ServerSentEvents
    }

    fn stall_timeout(&self) -> Duration {
        self.stall_timeout
    }

    fn request(&self, client: &reqwest::Client) -> anyhow::Result<reqwest::RequestBuilder> {
        let base = format!("{}/api/v1/streaming", self.instance.trim_end_matches('/'));
        let request = match &self.timeline {
            Timeline::Hashtag(tag) => client
                .get(format!("{base}/hashtag"))
                .query(&[("tag", tag.trim_start_matches('#'))]),
            Timeline::Public => client.get(format!("{base}/public")),
            Timeline::Local => client.get(format!("{base}/public/local")),
        };
        Ok(request
            .bearer_auth(self.token.expose())
            .header(reqwest::header::ACCEPT, "text/event-stream"))
    }

    fn unauthorized_hint(&self) -> &'static str {
        "check MASTODON_TOKEN (a user access token with the read:statuses scope)"
    }
}
