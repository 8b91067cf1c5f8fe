//! Mastodon streaming (docs.joinmastodon.org "methods/streaming"): Server-Sent Events.
//!
//! Endpoints: `GET /api/v1/streaming/public`, `/public/local`, `/hashtag?tag=T`,
//! `/hashtag/local?tag=T`, and `GET /api/v1/streaming?stream=public|public:local|hashtag|
//! hashtag:local[&tag=T]`; `GET /api/v1/streaming/health` -> `OK`. Authentication:
//! `Authorization: Bearer TOKEN` or `?access_token=TOKEN`; missing or wrong -> `401
//! {"error":"Error while validating token"}`. A hashtag stream without `tag` -> `400
//! {"error":"No tag for stream provided"}`; an unknown stream -> `400 {"error":"Unknown stream
//! type"}`. No connection limit.
//!
//! Body (`text/event-stream`, chunked): `:)\n` first (as Mastodon's streaming server writes),
//! then `event: update\ndata: <Status JSON>\n\n` per status, and the heartbeat comment
//! `:thump\n` after 15 s of silence. The Status payloads are REAL (see `corpus.rs`); the SSE
//! framing is built here. SYNTHETIC events: after every 10th status of a connection,
//! `event: delete\ndata: <that status id>\n\n`; after every 15th, `event: status.update\ndata:
//! <the same status with "edited_at" set to now>\n\n` (keys then in sorted order). The hashtag
//! stream passes statuses whose `tags[].name` equals the tag case-insensitively or whose
//! content text contains `#tag`; `local` streams pass statuses whose `account.acct` has no
//! `@domain` (local to the instance that served the recording).

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};

use super::{accepts_gzip, bearer, log_open, refuse, stream_response, take_fault};
use crate::corpus::Toot;
use crate::rules::contains_token;
use crate::state::{Api, AppState, ConnectionGuard};
use crate::stream::{self, StreamPlan};

/// Which statuses a stream passes.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Filter {
    /// Lower-case tag without `#`, for hashtag streams.
    tag: Option<String>,
    /// Only statuses local to their instance.
    local_only: bool,
}

impl Filter {
    fn matches(&self, toot: &Toot) -> bool {
        if self.local_only && !toot.local {
            return false;
        }
        match &self.tag {
            None => true,
            Some(tag) => {
                toot.tags.iter().any(|name| name == tag)
                    || contains_token(&toot.content, &format!("#{tag}"))
            }
        }
    }
}

fn error(status: StatusCode, message: &str) -> Response {
    (status, Json(json!({ "error": message }))).into_response()
}

/// `GET /api/v1/streaming/{*path}`.
pub async fn stream_by_path(
    State(state): State<Arc<AppState>>,
    Path(path): Path<String>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    let kind = match path.trim_end_matches('/') {
        "health" => return "OK".into_response(),
        "public" => "public",
        "public/local" => "public:local",
        "hashtag" => "hashtag",
        "hashtag/local" => "hashtag:local",
        _ => return error(StatusCode::NOT_FOUND, "Not found"),
    };
    open(state, kind, &query, &headers)
}

/// `GET /api/v1/streaming?stream=...`.
pub async fn stream_by_query(
    State(state): State<Arc<AppState>>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    let kind = query.get("stream").cloned().unwrap_or_default();
    open(state, &kind, &query, &headers)
}

fn open(
    state: Arc<AppState>,
    kind: &str,
    query: &HashMap<String, String>,
    headers: &HeaderMap,
) -> Response {
    let token = bearer(headers).or_else(|| query.get("access_token").map(String::as_str));
    if token != Some(state.settings.mastodon_token.expose()) {
        return refuse(&state, Api::Mastodon, StatusCode::UNAUTHORIZED);
    }
    let tag = || {
        query
            .get("tag")
            .map(|tag| tag.trim().trim_start_matches('#').to_lowercase())
            .filter(|tag| !tag.is_empty())
    };
    let filter = match kind {
        "public" | "public:local" => Filter {
            tag: None,
            local_only: kind == "public:local",
        },
        "hashtag" | "hashtag:local" => match tag() {
            Some(tag) => Filter {
                tag: Some(tag),
                local_only: kind == "hashtag:local",
            },
            None => return error(StatusCode::BAD_REQUEST, "No tag for stream provided"),
        },
        _ => return error(StatusCode::BAD_REQUEST, "Unknown stream type"),
    };
    let Some(guard) = ConnectionGuard::open(&state, Api::Mastodon, false) else {
        return refuse(&state, Api::Mastodon, StatusCode::TOO_MANY_REQUESTS);
    };
    let (guard, fault) = match take_fault(&state, Api::Mastodon, guard, accepts_gzip(headers)) {
        Ok(accepted) => accepted,
        Err(refused) => return *refused,
    };
    let gzip = fault.wants_gzip() && accepts_gzip(headers);
    log_open(Api::Mastodon, &fault, gzip);
    let plan = StreamPlan {
        api: Api::Mastodon,
        post_interval: state.settings.post_interval,
        keepalive: state.settings.mastodon_heartbeat,
        keepalive_bytes: b":thump\n",
        prelude: b":)\n",
        malformed: event("update", &state.corpus.mastodon_malformed),
        gzip,
        changes: None,
        fault,
    };
    let source = source(Arc::clone(&state), filter);
    stream_response(
        "text/event-stream",
        gzip,
        stream::body(state, guard, plan, source),
    )
}

/// `event: NAME\ndata: DATA\n\n`.
fn event(name: &str, data: &[u8]) -> Bytes {
    let mut framed = Vec::with_capacity(data.len() + name.len() + 16);
    framed.extend_from_slice(b"event: ");
    framed.extend_from_slice(name.as_bytes());
    framed.extend_from_slice(b"\ndata: ");
    framed.extend_from_slice(data);
    framed.extend_from_slice(b"\n\n");
    Bytes::from(framed)
}

/// The status with `edited_at` set to now, for a synthetic `status.update` event.
fn edited(json: &[u8]) -> Option<Bytes> {
    let mut status: Value = serde_json::from_slice(json).ok()?;
    let now = chrono::Utc::now()
        .format("%Y-%m-%dT%H:%M:%S%.3fZ")
        .to_string();
    status
        .as_object_mut()?
        .insert("edited_at".into(), json!(now));
    Some(Bytes::from(status.to_string()))
}

/// The next matching status with its synthetic follow-up events, cycling through the corpus.
fn source(
    state: Arc<AppState>,
    filter: Filter,
) -> impl FnMut() -> Option<Vec<Bytes>> + Send + 'static {
    let mut cursor = state.stats(Api::Mastodon).resume_at.load(Ordering::Relaxed);
    let mut statuses_sent: u64 = 0;
    move || {
        let toots = &state.corpus.mastodon;
        for step in 0..toots.len() {
            let index = (cursor + step) % toots.len();
            let toot = &toots[index];
            if !filter.matches(toot) {
                continue;
            }
            cursor = index + 1;
            state
                .stats(Api::Mastodon)
                .resume_at
                .store(cursor, Ordering::Relaxed);
            statuses_sent += 1;
            let mut batch = vec![event("update", &toot.json)];
            if statuses_sent.is_multiple_of(15) {
                if let Some(status) = edited(&toot.json) {
                    batch.push(event("status.update", &status));
                }
            }
            if statuses_sent.is_multiple_of(10) {
                batch.push(event("delete", toot.id.as_bytes()));
            }
            return Some(batch);
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn toot(tags: &[&str], content: &str, local: bool) -> Toot {
        Toot {
            json: Bytes::from_static(b"{\"id\":\"1\",\"edited_at\":null}"),
            id: "1".into(),
            tags: tags.iter().map(|t| t.to_string()).collect(),
            content: content.into(),
            local,
        }
    }

    #[test]
    fn hashtag_and_local_filters() {
        let rust = Filter {
            tag: Some("rust".into()),
            local_only: false,
        };
        assert!(rust.matches(&toot(&["rust"], "", false)));
        assert!(rust.matches(&toot(&[], "i like #rust", false)));
        assert!(!rust.matches(&toot(&[], "i like rust and #rustlang", false)));
        let local = Filter {
            tag: None,
            local_only: true,
        };
        assert!(local.matches(&toot(&[], "", true)));
        assert!(!local.matches(&toot(&[], "", false)));
    }

    #[test]
    fn events_are_sse_framed() {
        assert_eq!(
            event("delete", b"123"),
            Bytes::from_static(b"event: delete\ndata: 123\n\n")
        );
        let edited = edited(b"{\"id\":\"1\",\"edited_at\":null}").unwrap();
        let status: Value = serde_json::from_slice(&edited).unwrap();
        assert!(status["edited_at"].is_string());
    }
}
