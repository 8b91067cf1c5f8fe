//! Posting to Bluesky: the three XRPC endpoints of a PDS that the poster calls, on one emulated
//! account (DID [`DID`]).
//!
//! - `POST /xrpc/com.atproto.server.createSession` `{"identifier","password"}` →
//!   `{"did","handle","accessJwt","refreshJwt","active":true}`. The emulator has no Bluesky
//!   account of its own: **any non-empty identifier and password** open a session (the handle
//!   answered is the identifier unless it is a DID); an empty one is refused with 401
//!   `AuthenticationRequired` "Invalid identifier or password", as a PDS refuses a wrong one.
//! - `POST /xrpc/com.atproto.repo.createRecord` (Bearer: a session's `accessJwt`, else 401
//!   `AuthenticationRequired`) `{"repo","collection","rkey"?,"record"}` → 200 `{"uri","cid",
//!   "commit":{"cid","rev"},"validationStatus":"valid"}` (shape of the real responses in
//!   `shared/data/bluesky/api-posts/`). `repo` must be the session's DID or handle, an
//!   `app.bsky.feed.post` rkey must be a TID (its lexicon says `key: "tid"`; else 400
//!   `InvalidRequest`), and `record.text` at most 300 graphemes' worth (checked as 3000 bytes,
//!   the lexicon's `maxLength`). **A record key that already exists is answered as the
//!   reference PDS (bluesky-social/atproto `packages/pds`) answers it today: HTTP 500
//!   `{"error":"InternalServerError","message":"Internal Server Error"}`**, nothing created
//!   (bluesky-social/atproto#4725, bluesky-social/indigo#873; PR #4728 proposes a dedicated
//!   error).
//! - `GET /xrpc/com.atproto.repo.getRecord?repo&collection&rkey` → `{"uri","cid","value"}`, or
//!   400 `{"error":"RecordNotFound","message":"Could not locate record: <uri>"}`.
//!
//! Faults `"api": "bluesky_post"` apply to createRecord as the `tweets` ones do to
//! `POST /2/tweets`: `connect_status` answers that status with an XRPC error body and creates
//! nothing; `post_timeout` creates the record and never answers.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::Utc;
use serde::Deserialize;
use serde_json::json;

use super::{bearer, refusal};
use crate::state::network_posts::BlueskyRecord;
use crate::state::{Api, AppState};

/// The DID of the emulated account.
pub const DID: &str = "did:plc:tweetpipelineemulat0r";
/// The collection of posts.
const POST_COLLECTION: &str = "app.bsky.feed.post";
/// The base32-sortable alphabet of TIDs (atproto spec "Timestamp Identifiers (TIDs)").
const TID_ALPHABET: &[u8; 32] = b"234567abcdefghijklmnopqrstuvwxyz";
/// The lexicon's `maxLength` of a post's text, in bytes.
const MAX_TEXT_BYTES: usize = 3000;
/// How long a `post_timeout` fault holds the request.
const POST_TIMEOUT_HOLD: Duration = Duration::from_secs(600);

fn xrpc_error(status: StatusCode, error: &str, message: &str) -> Response {
    (status, Json(json!({"error": error, "message": message}))).into_response()
}

/// Whether `key` is a TID: 13 characters of the base32-sortable alphabet, the first in
/// `234567abcdefghij` (top bit 0).
fn is_tid(key: &str) -> bool {
    let bytes = key.as_bytes();
    bytes.len() == 13
        && bytes.iter().all(|b| TID_ALPHABET.contains(b))
        && TID_ALPHABET[..16].contains(&bytes[0])
}

/// A TID for now (a record created without an rkey).
fn now_tid(sequence: u64) -> String {
    let micros = u64::try_from(Utc::now().timestamp_micros()).unwrap_or(0) & ((1 << 53) - 1);
    let value = (micros << 10) | (sequence & 0x3FF);
    (0..13)
        .rev()
        .map(|i| char::from(TID_ALPHABET[((value >> (i * 5)) & 0x1F) as usize]))
        .collect()
}

/// A CID-shaped string (a CIDv1 dag-cbor sha256 in base32 starts with `bafyrei`), unique per
/// `sequence`; not a hash of anything.
fn cid(sequence: u64) -> String {
    let mut value = sequence.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    let digits: String = (0..52)
        .map(|_| {
            value = value.rotate_left(5) ^ 0x5bd1_e995;
            char::from(b"abcdefghijklmnopqrstuvwxyz234567"[(value & 0x1F) as usize])
        })
        .collect();
    format!("bafyrei{digits}")
}

fn session_of(state: &AppState, headers: &HeaderMap) -> Result<(), Box<Response>> {
    match bearer(headers) {
        Some(token) if state.network_posts.valid_session(token) => Ok(()),
        _ => {
            state
                .stats(Api::BlueskyPost)
                .refused(StatusCode::UNAUTHORIZED);
            Err(Box::new(refusal(
                Api::BlueskyPost,
                StatusCode::UNAUTHORIZED,
            )))
        }
    }
}

/// `POST /xrpc/com.atproto.server.createSession`.
pub async fn create_session(State(state): State<Arc<AppState>>, body: Bytes) -> Response {
    let json: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
    let identifier = json["identifier"].as_str().unwrap_or_default();
    let password = json["password"].as_str().unwrap_or_default();
    if identifier.is_empty() || password.is_empty() {
        return xrpc_error(
            StatusCode::UNAUTHORIZED,
            "AuthenticationRequired",
            "Invalid identifier or password",
        );
    }
    let handle = if identifier.starts_with("did:") {
        "pipeline-emulator.bsky.social"
    } else {
        identifier
    };
    let access = state.network_posts.open_session();
    tracing::info!(handle, "bluesky session created");
    Json(json!({
        "did": DID,
        "handle": handle,
        "accessJwt": access,
        "refreshJwt": format!("{access}-refresh"),
        "active": true,
    }))
    .into_response()
}

/// `POST /xrpc/com.atproto.repo.createRecord`.
pub async fn create_record(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Err(refused) = session_of(&state, &headers) {
        return *refused;
    }
    let json: serde_json::Value = match serde_json::from_slice(&body) {
        Ok(json) => json,
        Err(_) => {
            return xrpc_error(
                StatusCode::BAD_REQUEST,
                "InvalidRequest",
                "Request body must be JSON",
            )
        }
    };
    let repo = json["repo"].as_str().unwrap_or_default();
    let collection = json["collection"].as_str().unwrap_or_default();
    if repo != DID {
        return xrpc_error(
            StatusCode::BAD_REQUEST,
            "InvalidRequest",
            &format!("Could not find repo: {repo}"),
        );
    }
    if collection != POST_COLLECTION {
        return xrpc_error(
            StatusCode::BAD_REQUEST,
            "InvalidRequest",
            &format!("Unsupported collection in this emulator: {collection}"),
        );
    }
    let sequence = state.network_posts.next();
    let rkey = match json["rkey"].as_str() {
        Some(rkey) if is_tid(rkey) => rkey.to_owned(),
        Some(rkey) => {
            return xrpc_error(
                StatusCode::BAD_REQUEST,
                "InvalidRequest",
                &format!("Invalid record key for {POST_COLLECTION} (expected a TID): {rkey}"),
            )
        }
        None => now_tid(sequence),
    };
    let record = &json["record"];
    let Some(text) = record["text"].as_str() else {
        return xrpc_error(
            StatusCode::BAD_REQUEST,
            "InvalidRequest",
            "Invalid app.bsky.feed.post record: Record must have the property \"text\"",
        );
    };
    if text.len() > MAX_TEXT_BYTES || record["createdAt"].as_str().is_none() {
        return xrpc_error(
            StatusCode::BAD_REQUEST,
            "InvalidRequest",
            "Invalid app.bsky.feed.post record: text too long or createdAt missing",
        );
    }
    let fault = state
        .faults
        .take(Api::BlueskyPost, false)
        .unwrap_or_default();
    if let Some(status) = fault.connect_status {
        let status = StatusCode::from_u16(status).unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
        state.stats(Api::BlueskyPost).refused(status);
        tracing::info!(status = status.as_u16(), "fault: bluesky record refused");
        return refusal(Api::BlueskyPost, status);
    }
    let uri = format!("at://{DID}/{POST_COLLECTION}/{rkey}");
    let created = state.network_posts.create_bluesky(BlueskyRecord {
        uri: uri.clone(),
        rkey: rkey.clone(),
        cid: cid(sequence),
        value: record.clone(),
        text: text.to_owned(),
        created_at: Utc::now(),
    });
    let Some(created) = created else {
        // What the reference PDS answers today for a taken rkey (see the module docs).
        state
            .stats(Api::BlueskyPost)
            .refused(StatusCode::INTERNAL_SERVER_ERROR);
        tracing::info!(%rkey, "createRecord: record key taken");
        return refusal(Api::BlueskyPost, StatusCode::INTERNAL_SERVER_ERROR);
    };
    state.stats(Api::BlueskyPost).accepted();
    if fault.post_timeout {
        tracing::info!(%uri, "fault: bluesky record created, answer withheld");
        tokio::select! {
            () = state.shutdown.cancelled() => {}
            () = tokio::time::sleep(POST_TIMEOUT_HOLD) => {}
        }
        return refusal(Api::BlueskyPost, StatusCode::SERVICE_UNAVAILABLE);
    }
    Json(json!({
        "uri": created.uri,
        "cid": created.cid,
        "commit": {"cid": cid(sequence + 1), "rev": now_tid(sequence + 1)},
        "validationStatus": "valid",
    }))
    .into_response()
}

/// The query of `getRecord`.
#[derive(Debug, Deserialize)]
pub struct GetRecordQuery {
    repo: String,
    collection: String,
    rkey: String,
}

/// `GET /xrpc/com.atproto.repo.getRecord`.
pub async fn get_record(
    State(state): State<Arc<AppState>>,
    Query(query): Query<GetRecordQuery>,
) -> Response {
    let uri = format!("at://{}/{}/{}", query.repo, query.collection, query.rkey);
    let found = state
        .network_posts
        .bluesky()
        .iter()
        .find(|r| r.uri == uri)
        .cloned();
    match found {
        Some(record) => Json(json!({
            "uri": record.uri,
            "cid": record.cid,
            "value": record.value,
        }))
        .into_response(),
        None => xrpc_error(
            StatusCode::BAD_REQUEST,
            "RecordNotFound",
            &format!("Could not locate record: {uri}"),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tids() {
        assert!(is_tid("3jzfcijpj2z2a"));
        assert!(!is_tid("kjzfcijpj2z2a"));
        assert!(!is_tid("not-a-tid"));
        assert!(is_tid(&now_tid(7)));
        assert!(cid(1).starts_with("bafyrei"));
    }
}
