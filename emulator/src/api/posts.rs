//! Posting as a user: `POST /2/tweets`, `GET /2/users/me` and `GET /2/users/:id/tweets` of the
//! X API v2 (manage posts, users lookup, user posts timeline), authenticated with OAuth 1.0a
//! user context (HMAC-SHA1, verified by `oauth.rs` with the v1.1 keys), plus
//! `GET /_emulator/posts` so that tests can count what was posted.
//!
//! Shapes (X API v2 reference): `POST /2/tweets` with `{"text": "..."}` answers
//! `201 {"data":{"id":"...","text":"...","edit_history_tweet_ids":["..."]}}`; the same text as
//! an earlier post of the account is refused like X does, `403 {"detail":"You are not allowed
//! to create a Tweet with duplicate content.","type":"about:blank","title":"Forbidden",
//! "status":403}`; a 429 carries `x-rate-limit-limit`, `x-rate-limit-remaining` and
//! `x-rate-limit-reset` (Unix epoch seconds). `GET /2/users/:id/tweets` answers newest first,
//! `max_results` 5..=100 (default 10), `start_time` (RFC 3339, inclusive), and
//! `pagination_token` from `meta.next_token`.
//!
//! `GET /_emulator/posts`: `{"count":N,"posts":[{"id","text","created_at"}...] (in the order
//! they were created), "duplicates_refused":N, "requests":N, "bluesky":[{"uri","rkey","cid",
//! "value","text","created_at"}...], "bluesky_rkey_conflicts":N, "mastodon":[{"id","text",
//! "idempotency_key","created_at"}...], "mastodon_idempotent_replays":N}`: X's posts, then
//! every record created on the emulated PDS (`api/bluesky.rs`) and every Mastodon status
//! (`api/mastodon_post.rs`), each network in creation order.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::json;

use super::{refusal, refuse};
use crate::oauth;
use crate::state::posts::Posted;
use crate::state::{Api, AppState};

/// The id of the emulated account.
pub const USER_ID: &str = "1500000000000000001";
/// Its handle.
const USERNAME: &str = "pipeline_emulator";
/// How long a `post_timeout` fault holds the request before giving up (the client should have
/// timed out long before).
const POST_TIMEOUT_HOLD: Duration = Duration::from_secs(600);

/// Checks the OAuth 1.0a signature of a request (query parameters are signed; a JSON body is
/// not, as in X's OAuth 1.0a for v2 endpoints).
fn authorize(
    state: &AppState,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
) -> Result<(), Box<Response>> {
    state.posts.count_request();
    let params: Vec<(String, String)> = uri
        .query()
        .map(oauth::parse_urlencoded)
        .unwrap_or_default()
        .into_iter()
        .filter(|(key, _)| !key.starts_with("oauth_"))
        .collect();
    let oauth_params = headers
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(oauth::parse_authorization)
        .unwrap_or_default();
    let host = headers
        .get(header::HOST)
        .and_then(|value| value.to_str().ok())
        .unwrap_or("127.0.0.1")
        .to_ascii_lowercase();
    let host = host.strip_suffix(":80").unwrap_or(&host);
    let base_uri = format!("http://{host}{}", uri.path());
    oauth::verify(
        &state.settings.oauth,
        method.as_str(),
        &base_uri,
        &oauth_params,
        &params,
    )
    .map_err(|error| {
        tracing::info!(%error, path = uri.path(), "v2 user-context authorization rejected");
        Box::new(refuse(state, Api::Tweets, StatusCode::UNAUTHORIZED))
    })
}

fn duplicate() -> Response {
    (
        StatusCode::FORBIDDEN,
        Json(json!({
            "detail": "You are not allowed to create a Tweet with duplicate content.",
            "type": "about:blank",
            "title": "Forbidden",
            "status": 403
        })),
    )
        .into_response()
}

fn rate_limited(reset_in_secs: u64) -> Response {
    let reset = Utc::now().timestamp() + reset_in_secs as i64;
    let mut response = (
        StatusCode::TOO_MANY_REQUESTS,
        Json(json!({"title": "Too Many Requests", "detail": "Too Many Requests", "type": "about:blank", "status": 429})),
    )
        .into_response();
    let headers = response.headers_mut();
    headers.insert("x-rate-limit-limit", HeaderValue::from_static("100"));
    headers.insert("x-rate-limit-remaining", HeaderValue::from_static("0"));
    if let Ok(value) = HeaderValue::from_str(&reset.to_string()) {
        headers.insert("x-rate-limit-reset", value);
    }
    response
}

/// `POST /2/tweets`.
pub async fn create(
    State(state): State<Arc<AppState>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Err(refused) = authorize(&state, &method, &uri, &headers) {
        return *refused;
    }
    let text = serde_json::from_slice::<serde_json::Value>(&body)
        .ok()
        .and_then(|v| v.get("text").and_then(|t| t.as_str()).map(str::to_owned));
    let Some(text) = text else {
        return (
            StatusCode::BAD_REQUEST,
            Json(json!({"title": "Invalid Request", "detail": "One or more parameters to your request was invalid.", "type": "https://api.twitter.com/2/problems/invalid-request", "errors": [{"message": "$.text: is missing"}]})),
        )
            .into_response();
    };
    let fault = state.faults.take(Api::Tweets, false).unwrap_or_default();
    if let Some(status) = fault.connect_status {
        let status = StatusCode::from_u16(status).unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
        state.stats(Api::Tweets).refused(status);
        tracing::info!(status = status.as_u16(), "fault: post refused");
        return match status.as_u16() {
            429 => rate_limited(fault.rate_limit_reset_secs.unwrap_or(2)),
            403 => duplicate(),
            _ => refusal(Api::Tweets, status),
        };
    }
    let Some(post) = state.posts.create(&text) else {
        state.stats(Api::Tweets).refused(StatusCode::FORBIDDEN);
        return duplicate();
    };
    state.stats(Api::Tweets).accepted();
    if fault.post_timeout {
        tracing::info!(id = %post.id, "fault: post recorded, answer withheld");
        tokio::select! {
            () = state.shutdown.cancelled() => {}
            () = tokio::time::sleep(POST_TIMEOUT_HOLD) => {}
        }
        return refusal(Api::Tweets, StatusCode::SERVICE_UNAVAILABLE);
    }
    (
        StatusCode::CREATED,
        Json(json!({"data": {"id": post.id, "text": post.text, "edit_history_tweet_ids": [post.id]}})),
    )
        .into_response()
}

/// `GET /2/users/me`.
pub async fn me(
    State(state): State<Arc<AppState>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    if let Err(refused) = authorize(&state, &method, &uri, &headers) {
        return *refused;
    }
    Json(json!({"data": {"id": USER_ID, "name": "Pipeline Emulator", "username": USERNAME}}))
        .into_response()
}

/// `GET /2/users/:id/tweets`.
pub async fn timeline(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    if let Err(refused) = authorize(&state, &method, &uri, &headers) {
        return *refused;
    }
    if id != USER_ID {
        return (
            StatusCode::OK,
            Json(json!({"errors": [{"title": "Not Found Error", "detail": format!("Could not find user with id: [{id}]."), "type": "https://api.twitter.com/2/problems/resource-not-found"}]})),
        )
            .into_response();
    }
    let params = uri.query().map(oauth::parse_urlencoded).unwrap_or_default();
    let param = |name: &str| {
        params
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    let max_results = param("max_results")
        .and_then(|v| v.parse::<usize>().ok())
        .unwrap_or(10)
        .clamp(5, 100);
    let start_time = param("start_time")
        .and_then(|v| DateTime::parse_from_rfc3339(v).ok())
        .map(|t| t.with_timezone(&Utc));
    let skip = param("pagination_token")
        .and_then(|v| v.parse::<usize>().ok())
        .unwrap_or(0);
    let posts = state.posts.lock();
    let matching: Vec<&Posted> = posts
        .iter()
        .rev()
        .filter(|p| start_time.is_none_or(|start| p.created_at >= start))
        .collect();
    let page: Vec<serde_json::Value> = matching
        .iter()
        .skip(skip)
        .take(max_results)
        .map(|p| json!({"id": p.id, "text": p.text, "created_at": p.created_at.to_rfc3339_opts(SecondsFormat::Millis, true), "edit_history_tweet_ids": [p.id]}))
        .collect();
    let mut meta = json!({"result_count": page.len()});
    if let (Some(first), Some(last)) = (page.first(), page.last()) {
        meta["newest_id"] = first["id"].clone();
        meta["oldest_id"] = last["id"].clone();
    }
    if skip + page.len() < matching.len() {
        meta["next_token"] = json!((skip + page.len()).to_string());
    }
    if page.is_empty() {
        return Json(json!({"meta": meta})).into_response();
    }
    Json(json!({"data": page, "meta": meta})).into_response()
}

/// `GET /_emulator/posts`.
pub async fn list(State(state): State<Arc<AppState>>) -> Response {
    let posts = state.posts.lock().clone();
    Json(json!({
        "count": posts.len(),
        "posts": posts,
        "duplicates_refused": state.posts.duplicates_refused(),
        "requests": state.posts.requests(),
        "bluesky": state.network_posts.bluesky().clone(),
        "bluesky_rkey_conflicts": state.network_posts.rkey_conflicts(),
        "mastodon": state.network_posts.mastodon().clone(),
        "mastodon_idempotent_replays": state.network_posts.idempotent_replays(),
    }))
    .into_response()
}
