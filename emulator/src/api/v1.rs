//! X API v1.1 `POST /1.1/statuses/filter.json` (X API v1.1 "POST statuses/filter" reference and
//! "Consuming streaming data"; `GET` is accepted too, as it was).
//!
//! Parameters (query or `application/x-www-form-urlencoded` body): `track` (comma-separated
//! phrases, any of which matches; the space-separated terms of a phrase must all occur),
//! `language` (comma-separated `lang` codes), `follow` and `locations` (accepted, not applied:
//! with only these every status passes), `stall_warnings` (accepted, no warnings are sent).
//! Without `track`, `follow` or `locations`: `406` as on X. Terms match case-insensitively as
//! tokens (see `rules::contains_token`) in the status text or full text and in the retweeted
//! and quoted statuses' texts.
//!
//! Authentication: OAuth 1.0a HMAC-SHA1 (see `oauth.rs`); failure -> `401
//! {"errors":[{"code":32,"message":"Could not authenticate you."}]}`. One connection at a time:
//! a second gets `420` "Exceeded connection limit for user".
//!
//! The body (`application/json`, chunked) is REAL recorded lines, `\r\n`-delimited: the
//! original bytes of each matching status, each preceded by the first delete/limit notice
//! recorded between it and the previous matching status (recording order is kept), and a
//! keep-alive `\r\n` after 30 s of silence.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};

use super::{accepts_gzip, log_open, refuse, stream_response, take_fault};
use crate::corpus::V1Item;
use crate::oauth;
use crate::rules::contains_token;
use crate::state::{Api, AppState, ConnectionGuard};
use crate::stream::{self, StreamPlan};

/// The `track` parameter: phrases (OR) of terms (AND), lower-cased.
#[derive(Debug, Default, PartialEq, Eq)]
struct Track(Vec<Vec<String>>);

impl Track {
    fn parse(values: &[&str]) -> Self {
        Self(
            values
                .iter()
                .flat_map(|value| value.split(','))
                .map(|phrase| {
                    phrase
                        .split_whitespace()
                        .map(str::to_lowercase)
                        .collect::<Vec<_>>()
                })
                .filter(|terms| !terms.is_empty())
                .collect(),
        )
    }

    /// Whether `text` (lower-case) matches; an empty track matches everything.
    fn matches(&self, text: &str) -> bool {
        self.0.is_empty()
            || self
                .0
                .iter()
                .any(|terms| terms.iter().all(|term| contains_token(text, term)))
    }
}

/// `POST /1.1/statuses/filter.json`.
pub async fn filter(
    State(state): State<Arc<AppState>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let mut params = uri.query().map(oauth::parse_urlencoded).unwrap_or_default();
    let is_form = headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.starts_with("application/x-www-form-urlencoded"));
    if is_form {
        params.extend(oauth::parse_urlencoded(&String::from_utf8_lossy(&body)));
    }
    let (in_params, params): (Vec<_>, Vec<_>) = params
        .into_iter()
        .partition(|(key, _)| key.starts_with("oauth_"));
    let oauth_params = headers
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(oauth::parse_authorization)
        .unwrap_or(in_params);
    let host = headers
        .get(header::HOST)
        .and_then(|value| value.to_str().ok())
        .unwrap_or("127.0.0.1")
        .to_ascii_lowercase();
    let host = host.strip_suffix(":80").unwrap_or(&host);
    let base_uri = format!("http://{host}{}", uri.path());
    if let Err(error) = oauth::verify(
        &state.settings.oauth,
        method.as_str(),
        &base_uri,
        &oauth_params,
        &params,
    ) {
        tracing::info!(%error, "v1.1 authorization rejected");
        return refuse(&state, Api::V1, StatusCode::UNAUTHORIZED);
    }

    let values = |name: &str| -> Vec<&str> {
        params
            .iter()
            .filter(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
            .collect()
    };
    let track = Track::parse(&values("track"));
    let languages: Vec<String> = values("language")
        .iter()
        .flat_map(|value| value.split(','))
        .map(|lang| lang.trim().to_lowercase())
        .filter(|lang| !lang.is_empty())
        .collect();
    let has_filter = !track.0.is_empty()
        || ["follow", "locations"]
            .iter()
            .any(|name| values(name).iter().any(|value| !value.trim().is_empty()));
    if !has_filter {
        return (
            StatusCode::NOT_ACCEPTABLE,
            [(header::CONTENT_TYPE, "text/plain")],
            "No filter parameters found. Expect at least one parameter: follow track locations\r\n",
        )
            .into_response();
    }

    let Some(guard) = ConnectionGuard::open(&state, Api::V1, true) else {
        return refuse(
            &state,
            Api::V1,
            StatusCode::from_u16(420).unwrap_or(StatusCode::TOO_MANY_REQUESTS),
        );
    };
    let (guard, fault) = match take_fault(&state, Api::V1, guard, accepts_gzip(&headers)) {
        Ok(accepted) => accepted,
        Err(refused) => return *refused,
    };
    let gzip = fault.wants_gzip() && accepts_gzip(&headers);
    log_open(Api::V1, &fault, gzip);
    let plan = StreamPlan {
        api: Api::V1,
        post_interval: state.settings.post_interval,
        keepalive: state.settings.v1_keepalive,
        keepalive_bytes: b"\r\n",
        prelude: b"",
        malformed: state.corpus.v1_malformed.clone(),
        gzip,
        changes: None,
        fault,
    };
    let source = source(Arc::clone(&state), track, languages);
    stream_response(
        "application/json",
        gzip,
        stream::body(state, guard, plan, source),
    )
}

/// The next matching status, preceded by the first notice recorded between it and the
/// previous matching status (if any), cycling through the recordings from where the last
/// connection stopped. Capping notices at one per status keeps a sparse `track` from turning
/// the stream into a stream of deletes; with no matching status at all only keep-alives flow,
/// as on X.
fn source(
    state: Arc<AppState>,
    track: Track,
    languages: Vec<String>,
) -> impl FnMut() -> Option<Vec<Bytes>> + Send + 'static {
    let mut cursor = state.stats(Api::V1).resume_at.load(Ordering::Relaxed);
    move || {
        let items = &state.corpus.v1;
        let mut notice = None;
        for step in 0..items.len() {
            let index = (cursor + step) % items.len();
            match &items[index] {
                V1Item::Notice(line) => {
                    notice.get_or_insert_with(|| line.clone());
                }
                V1Item::Status { line, text, lang } => {
                    let lang_ok = languages.is_empty()
                        || lang
                            .as_deref()
                            .is_some_and(|lang| languages.iter().any(|l| l == lang));
                    if !(lang_ok && track.matches(text)) {
                        continue;
                    }
                    cursor = index + 1;
                    state
                        .stats(Api::V1)
                        .resume_at
                        .store(cursor, Ordering::Relaxed);
                    let mut batch: Vec<Bytes> = notice.into_iter().collect();
                    batch.push(line.clone());
                    return Some(batch);
                }
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn track_is_or_of_and_phrases() {
        let track = Track::parse(&["Apple Pie, iPhone", "ipad"]);
        assert_eq!(track.0.len(), 3);
        assert!(track.matches("i love pie made of apple"));
        assert!(!track.matches("i love apple juice"));
        assert!(track.matches("new iphone!"));
        assert!(track.matches("#ipad"));
        assert!(!track.matches("iphones"));
        assert!(Track::default().matches("anything"));
    }
}
