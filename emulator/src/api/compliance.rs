//! X API v2 batch compliance (X API v2 "Batch compliance" quick start and reference):
//!
//! - `POST /2/compliance/jobs` with `{"type":"tweets"}` (bearer token): `200 {"data":<job>}`,
//!   where a job is `{"id","type","resumable","status","created_at","upload_url",
//!   "upload_expires_at","download_url","download_expires_at"}`; another `type` answers 400;
//! - `PUT <upload_url>` (pre-signed: no credentials) with the ids as plain text, one per line;
//! - `GET /2/compliance/jobs/:id` (bearer token): `{"data":<job>}` with its `status`;
//! - `GET <download_url>` (pre-signed): the results, one JSON line per uploaded post that has
//!   a compliance event (`{"id","action","created_at","redacted_at","reason"}`).
//!
//! Control: `POST /_emulator/compliance` with `{"events":[<result line>...],"fail_next_jobs":N}`
//! and `GET /_emulator/compliance` (see `state/compliance.rs`).

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

use super::{bearer, refusal};
use crate::state::compliance::{ComplianceControl, JobError};
use crate::state::{Api, AppState};

/// The emulator's root URL as the client reached it (`http://HOST`), for the job's URLs.
fn base(headers: &HeaderMap) -> String {
    let host = headers
        .get(header::HOST)
        .and_then(|value| value.to_str().ok())
        .unwrap_or("127.0.0.1");
    format!("http://{host}")
}

fn authorized(state: &AppState, headers: &HeaderMap) -> Result<(), Box<Response>> {
    match bearer(headers) {
        Some(token) if token == state.settings.bearer_token.expose() => Ok(()),
        _ => Err(Box::new(refusal(Api::V2, StatusCode::UNAUTHORIZED))),
    }
}

/// An X API v2 problem for a request the compliance endpoints refuse.
fn problem(status: StatusCode, detail: &str) -> Response {
    let title = status.canonical_reason().unwrap_or("Error");
    (
        status,
        Json(json!({"title": title, "detail": detail, "type": "about:blank", "status": status.as_u16()})),
    )
        .into_response()
}

fn job_error(error: JobError) -> Response {
    match error {
        JobError::NotFound => problem(StatusCode::NOT_FOUND, "no such compliance job"),
        JobError::WrongState => problem(
            StatusCode::BAD_REQUEST,
            "the compliance job is not in a state that allows this request",
        ),
    }
}

/// `POST /2/compliance/jobs`.
pub async fn create(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Err(refused) = authorized(&state, &headers) {
        return *refused;
    }
    let kind = serde_json::from_slice::<serde_json::Value>(&body)
        .ok()
        .and_then(|v| v.get("type").and_then(|t| t.as_str()).map(str::to_owned));
    if kind.as_deref() != Some("tweets") {
        return problem(
            StatusCode::BAD_REQUEST,
            "the emulator serves compliance jobs of type tweets only",
        );
    }
    let id = state.compliance.create(chrono::Utc::now());
    tracing::info!(job = %id, "compliance job created");
    match state.compliance.show(&id, &base(&headers)) {
        Ok(job) => Json(json!({ "data": job })).into_response(),
        Err(error) => job_error(error),
    }
}

/// `GET /2/compliance/jobs/:id`.
pub async fn status(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    if let Err(refused) = authorized(&state, &headers) {
        return *refused;
    }
    match state.compliance.poll(&id, &base(&headers)) {
        Ok(job) => Json(json!({ "data": job })).into_response(),
        Err(error) => job_error(error),
    }
}

/// `PUT /_emulator/compliance/upload/:id` (the job's `upload_url`).
pub async fn upload(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    match state
        .compliance
        .upload(&id, &String::from_utf8_lossy(&body))
    {
        Ok(count) => {
            tracing::info!(job = %id, ids = count, "compliance ids uploaded");
            StatusCode::OK.into_response()
        }
        Err(error) => job_error(error),
    }
}

/// `GET /_emulator/compliance/download/:id` (the job's `download_url`).
pub async fn download(State(state): State<Arc<AppState>>, Path(id): Path<String>) -> Response {
    match state.compliance.results(&id) {
        Ok(lines) => ([(header::CONTENT_TYPE, "application/json")], lines).into_response(),
        Err(error) => job_error(error),
    }
}

/// `POST /_emulator/compliance`.
pub async fn control(State(state): State<Arc<AppState>>, body: Bytes) -> Response {
    match serde_json::from_slice::<ComplianceControl>(&body) {
        Ok(control) => {
            let (events, fail_next_jobs) = state.compliance.configure(control);
            Json(json!({"events": events, "fail_next_jobs": fail_next_jobs})).into_response()
        }
        Err(error) => (
            StatusCode::BAD_REQUEST,
            Json(json!({"error": format!("invalid compliance control: {error}")})),
        )
            .into_response(),
    }
}

/// `GET /_emulator/compliance`.
pub async fn snapshot(State(state): State<Arc<AppState>>) -> Response {
    Json(state.compliance.snapshot()).into_response()
}
