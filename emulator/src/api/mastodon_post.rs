//! Posting to Mastodon: `POST /api/v1/statuses` (Mastodon API docs, "statuses", Post a new
//! status), authenticated with `Authorization: Bearer` and the emulator's Mastodon token
//! (`--mastodon-token`, the one its streaming API takes; else 401 `{"error":"The access token
//! is invalid"}`), the text in `status` of a JSON or form body (else 422 `{"error":
//! "Validation failed: Text can't be blank"}`).
//!
//! 200 answers a Status entity `{"id","created_at","content","visibility","uri","url",...}`.
//! **`Idempotency-Key`**: a request whose key was used before answers the status created then
//! (200, the same id) and creates nothing, as Mastodon does for an hour (the emulator keeps keys
//! for its lifetime).
//!
//! Faults `"api": "mastodon_post"` apply as the `tweets` ones do to `POST /2/tweets`:
//! `connect_status` answers that status with `{"error": ...}` and creates nothing;
//! `post_timeout` creates the status and never answers.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::SecondsFormat;
use serde_json::json;

use super::{bearer, refusal};
use crate::oauth;
use crate::state::network_posts::MastodonStatus;
use crate::state::{Api, AppState};

/// How long a `post_timeout` fault holds the request.
const POST_TIMEOUT_HOLD: Duration = Duration::from_secs(600);
/// The emulated instance's host (in status URLs).
const HOST: &str = "mastodon.emulator.invalid";

fn entity(status: &MastodonStatus) -> serde_json::Value {
    let escaped = status
        .text
        .replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;");
    json!({
        "id": status.id,
        "created_at": status.created_at.to_rfc3339_opts(SecondsFormat::Millis, true),
        "content": format!("<p>{escaped}</p>"),
        "visibility": "public",
        "uri": format!("https://{HOST}/users/pipeline/statuses/{}", status.id),
        "url": format!("https://{HOST}/@pipeline/{}", status.id),
        "account": {"id": "1", "username": "pipeline", "acct": "pipeline"},
    })
}

/// `POST /api/v1/statuses`.
pub async fn create(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if bearer(&headers) != Some(state.settings.mastodon_token.expose()) {
        state
            .stats(Api::MastodonPost)
            .refused(StatusCode::UNAUTHORIZED);
        return refusal(Api::MastodonPost, StatusCode::UNAUTHORIZED);
    }
    let form = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
    let text = if form {
        let body = String::from_utf8_lossy(&body);
        oauth::parse_urlencoded(&body)
            .into_iter()
            .find(|(k, _)| k == "status")
            .map(|(_, v)| v)
    } else {
        serde_json::from_slice::<serde_json::Value>(&body)
            .ok()
            .and_then(|v| v["status"].as_str().map(str::to_owned))
    };
    let Some(text) = text.filter(|t| !t.trim().is_empty()) else {
        return (
            StatusCode::UNPROCESSABLE_ENTITY,
            Json(json!({"error": "Validation failed: Text can't be blank"})),
        )
            .into_response();
    };
    let fault = state
        .faults
        .take(Api::MastodonPost, false)
        .unwrap_or_default();
    if let Some(status) = fault.connect_status {
        let status = StatusCode::from_u16(status).unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
        state.stats(Api::MastodonPost).refused(status);
        tracing::info!(status = status.as_u16(), "fault: mastodon status refused");
        return refusal(Api::MastodonPost, status);
    }
    let key = headers
        .get("idempotency-key")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let (status, replayed) = state.network_posts.create_mastodon(&text, key.as_deref());
    state.stats(Api::MastodonPost).accepted();
    if replayed {
        tracing::info!(id = %status.id, "mastodon status answered by its idempotency key");
    }
    if fault.post_timeout {
        tracing::info!(id = %status.id, "fault: mastodon status created, answer withheld");
        tokio::select! {
            () = state.shutdown.cancelled() => {}
            () = tokio::time::sleep(POST_TIMEOUT_HOLD) => {}
        }
        return refusal(Api::MastodonPost, StatusCode::SERVICE_UNAVAILABLE);
    }
    Json(entity(&status)).into_response()
}
