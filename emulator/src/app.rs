//! Shared state, the router, the control endpoints (`/_emulator/*`, `/healthz`), per-API
//! counters and connection slots, and the refusal bodies of each API.
//!
//! Control endpoints:
//!
//! - `POST /_emulator/faults`: queue a fault (see `faults.rs`); `200 {"queued":<fault>,
//!   "pending":<faults now queued>}`, `400 {"error":"..."}` for a bad body.
//! - `GET /_emulator/faults`: `{"faults":[<pending fault>...]}`.
//! - `GET /_emulator/stats`: `{"v2":{...},"v1":{...},"mastodon":{...},"faults":[...]}` where
//!   each API has `connections_accepted`, `connections_refused` (`{"<status>":count}`),
//!   `lines_sent`, `keepalives_sent`, `open_connections`, and `v2` also `rules`.
//! - `POST /_emulator/reset`: clears pending faults and counters (not rules, not
//!   `open_connections`); `200 {"reset":true}`.
//! - `GET /_emulator/posts`: the posts created through `POST /2/tweets` (see `posts.rs`).
//! - `GET /healthz`: `200 ok`.
//!
//! Stream connects are checked in this order: authentication (401), the single-connection
//! limit (v2 429, v1.1 420; no pending fault is consumed), then the next queued fault.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Serialize;
use serde_json::json;
use tokio_util::sync::CancellationToken;

use crate::corpus::Corpus;
use crate::faults::{Fault, FaultQueue};
use crate::oauth::{OAuthKeys, Secret};
use crate::rules::RuleStore;
use crate::{mastodon, posts, v1, v2};

/// The three emulated APIs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Api {
    /// X API v2 filtered stream.
    V2,
    /// X API v1.1 `statuses/filter`.
    V1,
    /// Mastodon streaming.
    Mastodon,
    /// X API v2 `POST /2/tweets` (posting; see `posts.rs`).
    Tweets,
}

impl Api {
    /// Lower-case name, as in faults and stats.
    pub fn as_str(self) -> &'static str {
        match self {
            Api::V2 => "v2",
            Api::V1 => "v1",
            Api::Mastodon => "mastodon",
            Api::Tweets => "tweets",
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

/// Counters and the connection slot of one API.
#[derive(Debug, Default)]
pub struct ApiStats {
    connections_accepted: AtomicU64,
    connections_refused: Mutex<BTreeMap<u16, u64>>,
    lines_sent: AtomicU64,
    keepalives_sent: AtomicU64,
    open_connections: AtomicU64,
    /// Set while the API's single stream connection is open (v2, v1.1).
    slot_taken: AtomicBool,
    /// Where the next connection starts in the corpus: reconnects go on where the last
    /// connection stopped, like a live stream that moved on.
    pub resume_at: AtomicUsize,
}

impl ApiStats {
    /// Counts a refused connect.
    pub fn refused(&self, status: StatusCode) {
        *self
            .connections_refused
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .entry(status.as_u16())
            .or_default() += 1;
    }

    /// Counts an accepted request that is not a stream connection (`POST /2/tweets`).
    pub fn accepted(&self) {
        self.connections_accepted.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a line (post, notice, event) written.
    pub fn line_sent(&self) {
        self.lines_sent.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a keep-alive written.
    pub fn keepalive_sent(&self) {
        self.keepalives_sent.fetch_add(1, Ordering::Relaxed);
    }

    fn reset(&self) {
        self.connections_accepted.store(0, Ordering::Relaxed);
        self.connections_refused
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clear();
        self.lines_sent.store(0, Ordering::Relaxed);
        self.keepalives_sent.store(0, Ordering::Relaxed);
    }

    fn snapshot(&self) -> serde_json::Value {
        let refused: BTreeMap<String, u64> = self
            .connections_refused
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .map(|(status, count)| (status.to_string(), *count))
            .collect();
        json!({
            "connections_accepted": self.connections_accepted.load(Ordering::Relaxed),
            "connections_refused": refused,
            "lines_sent": self.lines_sent.load(Ordering::Relaxed),
            "keepalives_sent": self.keepalives_sent.load(Ordering::Relaxed),
            "open_connections": self.open_connections.load(Ordering::Relaxed),
        })
    }
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
    pub posts: crate::posts::PostLog,
    v2: ApiStats,
    v1: ApiStats,
    mastodon: ApiStats,
    tweets: ApiStats,
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
            posts: crate::posts::PostLog::default(),
            v2: ApiStats::default(),
            v1: ApiStats::default(),
            mastodon: ApiStats::default(),
            tweets: ApiStats::default(),
        }
    }

    /// The counters of one API.
    pub fn stats(&self, api: Api) -> &ApiStats {
        match api {
            Api::V2 => &self.v2,
            Api::V1 => &self.v1,
            Api::Mastodon => &self.mastodon,
            Api::Tweets => &self.tweets,
        }
    }
}

/// An accepted stream connection. Dropping it (when the response body is dropped: the client
/// went away, the stream ended or the server is shutting down) frees the API's connection slot
/// and counts the connection as closed.
#[derive(Debug)]
pub struct ConnectionGuard {
    state: Arc<AppState>,
    api: Api,
    holds_slot: bool,
    refused: bool,
}

impl ConnectionGuard {
    /// Takes the API's single connection slot when `exclusive` (v2 and v1.1 allow one stream
    /// connection at a time, X's default), and counts the connection as accepted and open.
    /// `None` when the slot is taken.
    pub fn open(state: &Arc<AppState>, api: Api, exclusive: bool) -> Option<Self> {
        let stats = state.stats(api);
        if exclusive
            && stats
                .slot_taken
                .compare_exchange(false, true, Ordering::AcqRel, Ordering::Acquire)
                .is_err()
        {
            return None;
        }
        stats.connections_accepted.fetch_add(1, Ordering::Relaxed);
        stats.open_connections.fetch_add(1, Ordering::Relaxed);
        Some(Self {
            state: Arc::clone(state),
            api,
            holds_slot: exclusive,
            refused: false,
        })
    }

    /// Turns an accepted connection into a refused one (a `connect_status` fault): the
    /// connection is counted as refused instead of accepted.
    pub fn refuse(mut self, status: StatusCode) {
        let stats = self.state.stats(self.api);
        stats.connections_accepted.fetch_sub(1, Ordering::Relaxed);
        stats.refused(status);
        self.refused = true;
    }
}

impl Drop for ConnectionGuard {
    fn drop(&mut self) {
        let stats = self.state.stats(self.api);
        stats.open_connections.fetch_sub(1, Ordering::Relaxed);
        if self.holds_slot {
            stats.slot_taken.store(false, Ordering::Release);
        }
        if !self.refused {
            tracing::info!(api = self.api.as_str(), "stream connection closed");
        }
    }
}

/// The response an API gives when it refuses a connect with `status` (auth failures, the
/// connection limit, `connect_status` faults). Bodies are those of the real APIs where known:
/// X API v2 problem objects (401 `Unauthorized`; 429 `ConnectionException` /
/// `TooManyConnections` as quoted in tweepy#1962), X API v1.1 error `32` and "Exceeded
/// connection limit for user", Mastodon `{"error": ...}`.
pub fn refusal(api: Api, status: StatusCode) -> Response {
    let reason = status.canonical_reason().unwrap_or("Error");
    let problem = || json!({"title": reason, "detail": reason, "type": "about:blank", "status": status.as_u16()});
    let body = match (api, status.as_u16()) {
        (Api::V2, 401) => json!({
            "title": "Unauthorized", "type": "about:blank", "status": 401, "detail": "Unauthorized"
        }),
        (Api::V2, 420 | 429) => json!({
            "title": "ConnectionException",
            "detail": "This stream is currently at the maximum allowed connection limit.",
            "connection_issue": "TooManyConnections",
            "type": "https://api.twitter.com/2/problems/streaming-connection"
        }),
        (Api::V1, 401) => {
            json!({"errors": [{"code": 32, "message": "Could not authenticate you."}]})
        }
        (Api::V1, 420 | 429) => {
            return (
                status,
                [(header::CONTENT_TYPE, "text/plain")],
                "Exceeded connection limit for user\r\n",
            )
                .into_response()
        }
        (Api::Mastodon, 401) => json!({"error": "Error while validating token"}),
        (Api::Mastodon, 429) => json!({"error": "Too many requests"}),
        (Api::Mastodon, _) => json!({"error": reason}),
        _ => problem(),
    };
    (status, Json(body)).into_response()
}

/// Counts and answers a refused connect.
pub fn refuse(state: &AppState, api: Api, status: StatusCode) -> Response {
    state.stats(api).refused(status);
    tracing::info!(
        api = api.as_str(),
        status = status.as_u16(),
        "stream connect refused"
    );
    refusal(api, status)
}

/// Whether the request accepts a gzip-encoded response.
pub fn accepts_gzip(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::ACCEPT_ENCODING)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .any(|coding| {
            let mut parts = coding.split(';');
            let name = parts.next().unwrap_or_default().trim();
            let refused = parts.any(|p| matches!(p.trim(), "q=0" | "q=0.0" | "q=0.00" | "q=0.000"));
            name.eq_ignore_ascii_case("gzip") && !refused
        })
}

/// The bearer token of an `Authorization: Bearer ...` header.
pub fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.trim().split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then_some(token.trim())
}

/// A streaming response: status 200, the content type, `Content-Encoding: gzip` when `gzip`,
/// and no length (so HTTP/1.1 uses chunked transfer encoding).
pub fn stream_response(content_type: &'static str, gzip: bool, body: Body) -> Response {
    let mut response = Response::new(body);
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    if gzip {
        headers.insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
    }
    response
}

/// Takes the next fault queued for `api`. A `connect_status` fault refuses the connection:
/// the guard is released and the refusal is returned as `Err`.
pub fn take_fault(
    state: &AppState,
    api: Api,
    guard: ConnectionGuard,
) -> Result<(ConnectionGuard, Fault), Box<Response>> {
    let fault = state.faults.take(api).unwrap_or_default();
    match fault.connect_status {
        Some(status) => {
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
            guard.refuse(status);
            tracing::info!(
                api = api.as_str(),
                status = status.as_u16(),
                "fault: connect refused"
            );
            Err(Box::new(refusal(api, status)))
        }
        None => Ok((guard, fault)),
    }
}

/// Logs an opened stream with its fault, if it has one.
pub fn log_open(api: Api, fault: &Fault, gzip: bool) {
    if *fault == Fault::default() {
        tracing::info!(api = api.as_str(), "stream connection opened");
    } else {
        let fault = serde_json::to_string(fault).unwrap_or_default();
        tracing::info!(api = api.as_str(), %fault, gzip, "stream connection opened with a fault");
    }
}

/// The router of every endpoint.
pub fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .route(
            "/2/tweets/search/stream/rules",
            get(v2::get_rules).post(v2::post_rules),
        )
        .route("/2/tweets/search/stream", get(v2::stream))
        .route(
            "/1.1/statuses/filter.json",
            post(v1::filter).get(v1::filter),
        )
        .route("/api/v1/streaming", get(mastodon::stream_by_query))
        .route("/api/v1/streaming/{*path}", get(mastodon::stream_by_path))
        .route("/2/tweets", post(posts::create))
        .route("/2/users/me", get(posts::me))
        .route("/2/users/{id}/tweets", get(posts::timeline))
        .route("/_emulator/posts", get(posts::list))
        .route("/_emulator/faults", post(post_fault).get(list_faults))
        .route("/_emulator/stats", get(stats))
        .route("/_emulator/reset", post(reset))
        .route("/healthz", get(|| async { "ok" }))
        .with_state(state)
}

async fn post_fault(State(state): State<Arc<AppState>>, body: Bytes) -> Response {
    let fault: Fault = match serde_json::from_slice(&body) {
        Ok(fault) => fault,
        Err(error) => {
            return (
                StatusCode::BAD_REQUEST,
                Json(json!({"error": format!("invalid fault: {error}")})),
            )
                .into_response()
        }
    };
    if let Err(error) = fault.validate() {
        return (
            StatusCode::BAD_REQUEST,
            Json(json!({"error": error.to_string()})),
        )
            .into_response();
    }
    tracing::info!(api = ?fault.api, fault = ?fault, "fault queued");
    state.faults.push(fault.clone());
    Json(json!({"queued": fault, "pending": state.faults.list().len()})).into_response()
}

async fn list_faults(State(state): State<Arc<AppState>>) -> Response {
    Json(json!({"faults": state.faults.list()})).into_response()
}

async fn stats(State(state): State<Arc<AppState>>) -> Response {
    let mut v2 = state.stats(Api::V2).snapshot();
    v2["rules"] = json!(state.rules.list(None));
    Json(json!({
        "v2": v2,
        "v1": state.stats(Api::V1).snapshot(),
        "mastodon": state.stats(Api::Mastodon).snapshot(),
        "tweets": state.stats(Api::Tweets).snapshot(),
        "faults": state.faults.list(),
    }))
    .into_response()
}

async fn reset(State(state): State<Arc<AppState>>) -> Response {
    state.faults.clear();
    for api in [Api::V2, Api::V1, Api::Mastodon, Api::Tweets] {
        state.stats(api).reset();
    }
    tracing::info!("faults and counters reset");
    Json(json!({"reset": true})).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gzip_acceptance() {
        let mut headers = HeaderMap::new();
        assert!(!accepts_gzip(&headers));
        headers.insert(
            header::ACCEPT_ENCODING,
            HeaderValue::from_static("deflate, gzip;q=1.0, *;q=0.5"),
        );
        assert!(accepts_gzip(&headers));
        headers.insert(
            header::ACCEPT_ENCODING,
            HeaderValue::from_static("gzip;q=0"),
        );
        assert!(!accepts_gzip(&headers));
    }

    #[test]
    fn bearer_tokens() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("Bearer abc"),
        );
        assert_eq!(bearer(&headers), Some("abc"));
        headers.insert(header::AUTHORIZATION, HeaderValue::from_static("OAuth x=y"));
        assert_eq!(bearer(&headers), None);
    }
}
