//! X API v2 filtered stream (X API v2 "Filtered stream" integration guide and API reference,
//! docs.x.com): the rules endpoints and the stream. Bearer (app-only) authentication on every
//! endpoint; a missing or wrong token gets `401` with X's problem body.
//!
//! - `GET /2/tweets/search/stream/rules[?ids=1,2]` ->
//!   `{"data":[{"id","value","tag"}],"meta":{"sent","result_count"}}`, or
//!   `{"meta":{"sent","result_count":0}}` without rules.
//! - `POST /2/tweets/search/stream/rules[?dry_run=true][&delete_all=true]` with
//!   `{"add":[{"value","tag"}]}` -> `201 {"data":[created],"meta":{"sent","summary":{"created",
//!   "not_created","valid","invalid"}},"errors":[...]}` (`data` only when a rule was created,
//!   `errors` only when one was not: `DuplicateRule` or `UnprocessableEntity` with `details`);
//!   or `{"delete":{"ids":[...]}}` (also `"values":[...]`) -> `200 {"meta":{"sent","summary":
//!   {"deleted","not_deleted"}}}`. `dry_run` answers the same without changing anything (`200`).
//!   A body that is not such JSON -> `400` with X's `invalid-request` problem.
//! - `GET /2/tweets/search/stream` (query parameters accepted and ignored): one connection at a
//!   time (a second gets `429 ConnectionException`); `Content-Type: application/json`, chunked;
//!   each post matching a rule, as `{"data","includes","matching_rules":[{"id","tag"}]}\r\n`,
//!   keep-alive `\r\n` after 20 s of silence. The posts are real stream lines, posts split from
//!   real search pages and posts derived from v1.1 recordings (see `corpus.rs`).

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

use super::{accepts_gzip, bearer, log_open, refusal, refuse, stream_response, take_fault};
use crate::rules::{NewRule, RuleRejection};
use crate::state::{Api, AppState, ConnectionGuard};
use crate::stream::{self, StreamPlan};

fn authorized(state: &AppState, headers: &HeaderMap) -> bool {
    bearer(headers) == Some(state.settings.bearer_token.expose())
}

/// `meta.sent`: the response time, RFC 3339 with milliseconds.
fn sent() -> String {
    chrono::Utc::now()
        .format("%Y-%m-%dT%H:%M:%S%.3fZ")
        .to_string()
}

fn invalid_request(message: String) -> Response {
    (
        StatusCode::BAD_REQUEST,
        Json(json!({
            "errors": [{"parameters": {}, "message": message}],
            "title": "Invalid Request",
            "detail": "One or more parameters to your request was invalid.",
            "type": "https://api.twitter.com/2/problems/invalid-request"
        })),
    )
        .into_response()
}

fn flag(query: &HashMap<String, String>, name: &str) -> bool {
    query.get(name).is_some_and(|value| value == "true")
}

/// `GET /2/tweets/search/stream/rules`.
pub async fn get_rules(
    State(state): State<Arc<AppState>>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    if !authorized(&state, &headers) {
        return refusal(Api::V2, StatusCode::UNAUTHORIZED);
    }
    let ids: Option<Vec<String>> = query
        .get("ids")
        .map(|ids| ids.split(',').map(|id| id.trim().to_owned()).collect());
    let rules = state.rules.list(ids.as_deref());
    let meta = json!({"sent": sent(), "result_count": rules.len()});
    if rules.is_empty() {
        Json(json!({ "meta": meta })).into_response()
    } else {
        Json(json!({"data": rules, "meta": meta})).into_response()
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RulesRequest {
    #[serde(default)]
    add: Option<Vec<NewRule>>,
    #[serde(default)]
    delete: Option<DeleteRequest>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct DeleteRequest {
    #[serde(default)]
    ids: Vec<String>,
    #[serde(default)]
    values: Vec<String>,
}

/// `POST /2/tweets/search/stream/rules`.
pub async fn post_rules(
    State(state): State<Arc<AppState>>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if !authorized(&state, &headers) {
        return refusal(Api::V2, StatusCode::UNAUTHORIZED);
    }
    let dry_run = flag(&query, "dry_run");
    if flag(&query, "delete_all") {
        let (deleted, not_deleted) = state.rules.delete(None, dry_run);
        tracing::info!(deleted, dry_run, "v2 rules deleted (delete_all)");
        return delete_response(deleted, not_deleted);
    }
    let request: RulesRequest = match serde_json::from_slice(&body) {
        Ok(request) => request,
        Err(error) => return invalid_request(format!("invalid JSON body: {error}")),
    };
    match request {
        RulesRequest {
            add: Some(add),
            delete: None,
        } if !add.is_empty() => add_rules(&state, add, dry_run),
        RulesRequest {
            add: None,
            delete: Some(delete),
        } if !delete.ids.is_empty() || !delete.values.is_empty() => {
            let mut ids = delete.ids;
            let rules = state.rules.list(None);
            for value in &delete.values {
                match rules.iter().find(|rule| &rule.value == value) {
                    Some(rule) => ids.push(rule.id.clone()),
                    // An unknown value is counted as not deleted.
                    None => ids.push(String::new()),
                }
            }
            let (deleted, not_deleted) = state.rules.delete(Some(&ids), dry_run);
            tracing::info!(deleted, not_deleted, dry_run, "v2 rules deleted");
            delete_response(deleted, not_deleted)
        }
        _ => invalid_request(
            "the body must be {\"add\":[{\"value\":...,\"tag\":...}]} or {\"delete\":{\"ids\":[...]}} \
             with at least one entry"
                .to_owned(),
        ),
    }
}

fn add_rules(state: &AppState, add: Vec<NewRule>, dry_run: bool) -> Response {
    let outcome = state.rules.add(add, dry_run);
    let errors: Vec<Value> = outcome
        .rejected
        .iter()
        .map(|(value, rejection)| match rejection {
            RuleRejection::Duplicate { id } => json!({
                "value": value, "id": id, "title": "DuplicateRule",
                "type": "https://api.twitter.com/2/problems/duplicate-rules"
            }),
            RuleRejection::Invalid { details } => json!({
                "value": value, "details": details, "title": "UnprocessableEntity",
                "type": "https://api.twitter.com/2/problems/invalid-rules"
            }),
        })
        .collect();
    let created = outcome.created.len();
    let rejected = outcome.rejected.len();
    tracing::info!(created, rejected, dry_run, "v2 rules added");
    let mut body = json!({
        "meta": {
            "sent": sent(),
            "summary": {
                "created": created, "not_created": rejected, "valid": created, "invalid": rejected
            }
        }
    });
    if created > 0 {
        body["data"] = json!(outcome.created);
    }
    if !errors.is_empty() {
        body["errors"] = Value::Array(errors);
    }
    let status = if dry_run {
        StatusCode::OK
    } else {
        StatusCode::CREATED
    };
    (status, Json(body)).into_response()
}

fn delete_response(deleted: usize, not_deleted: usize) -> Response {
    Json(json!({
        "meta": {"sent": sent(), "summary": {"deleted": deleted, "not_deleted": not_deleted}}
    }))
    .into_response()
}

/// `GET /2/tweets/search/stream`.
pub async fn stream(State(state): State<Arc<AppState>>, headers: HeaderMap) -> Response {
    if !authorized(&state, &headers) {
        return refuse(&state, Api::V2, StatusCode::UNAUTHORIZED);
    }
    let Some(guard) = ConnectionGuard::open(&state, Api::V2, true) else {
        return refuse(&state, Api::V2, StatusCode::TOO_MANY_REQUESTS);
    };
    let (guard, fault) = match take_fault(&state, Api::V2, guard, accepts_gzip(&headers)) {
        Ok(accepted) => accepted,
        Err(refused) => return *refused,
    };
    let gzip = fault.wants_gzip() && accepts_gzip(&headers);
    log_open(Api::V2, &fault, gzip);
    let plan = StreamPlan {
        api: Api::V2,
        keepalive: state.settings.v2_keepalive,
        post_interval: state.settings.post_interval,
        keepalive_bytes: b"\r\n",
        prelude: b"",
        malformed: state.corpus.v2_malformed.clone(),
        gzip,
        changes: Some(state.rules.subscribe()),
        fault,
    };
    let source = source(Arc::clone(&state));
    stream_response(
        "application/json",
        gzip,
        stream::body(state, guard, plan, source),
    )
}

/// The next post that matches a current rule, with `matching_rules` added, cycling through the
/// corpus from where the last connection stopped.
fn source(state: Arc<AppState>) -> impl FnMut() -> Option<Vec<Bytes>> + Send + 'static {
    let mut cursor = state.stats(Api::V2).resume_at.load(Ordering::Relaxed);
    move || {
        let posts = &state.corpus.v2;
        if posts.is_empty() || state.rules.is_empty() {
            return None;
        }
        for step in 0..posts.len() {
            let index = (cursor + step) % posts.len();
            let post = &posts[index];
            let matching = state.rules.matching(&post.fields);
            if matching.is_empty() {
                continue;
            }
            cursor = index + 1;
            state
                .stats(Api::V2)
                .resume_at
                .store(cursor, Ordering::Relaxed);
            let matching = serde_json::to_string(&matching).unwrap_or_else(|_| "[]".into());
            let message = post.json.strip_suffix('}').unwrap_or(&post.json);
            return Some(vec![Bytes::from(format!(
                "{message},\"matching_rules\":{matching}}}\r\n"
            ))]);
        }
        None
    }
}
