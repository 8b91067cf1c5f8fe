//! The control endpoints of the emulator itself:
//!
//! - `POST /_emulator/faults`: queue a fault (see `state/faults.rs`); `200 {"queued":<fault>,
//!   "pending":<faults now queued>}`, `400 {"error":"..."}` for a bad body.
//! - `GET /_emulator/faults`: `{"faults":[<pending fault>...]}`.
//! - `GET /_emulator/stats`: `{"v2":{...},"v1":{...},"mastodon":{...},"jetstream":{...},
//!   "faults":[...]}` where
//!   each API has `connections_accepted`, `connections_refused` (`{"<status>":count}`),
//!   `lines_sent`, `keepalives_sent`, `open_connections`, and `v2` also `rules`.
//! - `POST /_emulator/reset`: clears pending faults, counters and the Jetstream connection log
//!   (not rules, not `open_connections`); `200 {"reset":true}`.
//! - `GET /_emulator/jetstream/log`: the Jetstream connections and the events each sent (see
//!   `state/jetstream.rs`).
//! - `GET /_emulator/posts`: the posts created through `POST /2/tweets` (see `posts.rs`).
//! - `GET /healthz`: `200 ok`.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

use crate::state::{Api, AppState, Fault};

/// `POST /_emulator/faults`.
pub async fn post_fault(State(state): State<Arc<AppState>>, body: Bytes) -> Response {
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

/// `GET /_emulator/faults`.
pub async fn list_faults(State(state): State<Arc<AppState>>) -> Response {
    Json(json!({"faults": state.faults.list()})).into_response()
}

/// `GET /_emulator/stats`.
pub async fn stats(State(state): State<Arc<AppState>>) -> Response {
    let mut v2 = state.stats(Api::V2).snapshot();
    v2["rules"] = json!(state.rules.list(None));
    Json(json!({
        "v2": v2,
        "v1": state.stats(Api::V1).snapshot(),
        "mastodon": state.stats(Api::Mastodon).snapshot(),
        "jetstream": state.stats(Api::Jetstream).snapshot(),
        "tweets": state.stats(Api::Tweets).snapshot(),
        "bluesky_post": state.stats(Api::BlueskyPost).snapshot(),
        "mastodon_post": state.stats(Api::MastodonPost).snapshot(),
        "faults": state.faults.list(),
    }))
    .into_response()
}

/// `POST /_emulator/reset`.
pub async fn reset(State(state): State<Arc<AppState>>) -> Response {
    state.faults.clear();
    for api in [
        Api::V2,
        Api::V1,
        Api::Mastodon,
        Api::Tweets,
        Api::BlueskyPost,
        Api::MastodonPost,
        Api::Jetstream,
    ] {
        state.stats(api).reset();
    }
    state.jetstream.clear();
    tracing::info!("faults and counters reset");
    Json(json!({"reset": true})).into_response()
}
