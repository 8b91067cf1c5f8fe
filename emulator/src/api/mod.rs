//! The HTTP handlers of the emulated APIs, one module per API, and what they share: refusal
//! bodies, authentication headers, fault selection at connect and the streaming response.
//!
//! Stream connects are checked in this order: authentication (401), the single-connection
//! limit (v2 429, v1.1 420; no pending fault is consumed), then the next queued fault.

use axum::body::Body;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

use crate::state::{Api, AppState, ConnectionGuard, Fault};

pub mod bluesky;
pub mod compliance;
pub mod control;
pub mod jetstream;
pub mod mastodon;
pub mod mastodon_post;
pub mod posts;
pub mod v1;
pub mod v2;

/// The response an API gives when it refuses a connect with `status` (auth failures, the
/// connection limit, `connect_status` faults). Bodies are those of the real APIs where known
/// (Jetstream: plain text, see [`jetstream::plain_error`]):
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
        (Api::MastodonPost, 401) => json!({"error": "The access token is invalid"}),
        (Api::Mastodon | Api::MastodonPost, _) => json!({"error": reason}),
        // XRPC errors: `{"error": <name>, "message": <text>}` (atproto spec "HTTP API (XRPC)").
        (Api::BlueskyPost, 401) => {
            json!({"error": "AuthenticationRequired", "message": "Authentication Required"})
        }
        (Api::BlueskyPost, 429) => {
            json!({"error": "RateLimitExceeded", "message": "Rate Limit Exceeded"})
        }
        (Api::BlueskyPost, 500..=599) => {
            json!({"error": "InternalServerError", "message": "Internal Server Error"})
        }
        (Api::BlueskyPost, _) => json!({"error": "InvalidRequest", "message": reason}),
        // Jetstream v1 answers pre-upgrade errors with Go's `http.Error`: plain text.
        (Api::Jetstream, _) => return jetstream::plain_error(status, reason),
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

/// Takes the next fault queued for `api` (`accepts_gzip`: whether the request accepts a gzip
/// response, see [`crate::state::FaultQueue::take`]). A `connect_status` fault refuses the
/// connection: the guard is released and the refusal is returned as `Err`.
pub fn take_fault(
    state: &AppState,
    api: Api,
    guard: ConnectionGuard,
    accepts_gzip: bool,
) -> Result<(ConnectionGuard, Fault), Box<Response>> {
    let fault = state.faults.take(api, accepts_gzip).unwrap_or_default();
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
