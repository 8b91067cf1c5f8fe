//! The router: every endpoint of the emulator and its handler. This is the one module that
//! knows every handler; handlers know only the shared state.

use std::sync::Arc;

use axum::routing::{get, post, put};
use axum::Router;

use crate::api::{bluesky, compliance, control, jetstream, mastodon, mastodon_post, posts, v1, v2};
use crate::state::AppState;

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
        .route("/subscribe", get(jetstream::subscribe))
        .route("/2/tweets", post(posts::create))
        .route("/2/users/me", get(posts::me))
        .route("/2/users/{id}/tweets", get(posts::timeline))
        .route(
            "/xrpc/com.atproto.server.createSession",
            post(bluesky::create_session),
        )
        .route(
            "/xrpc/com.atproto.repo.createRecord",
            post(bluesky::create_record),
        )
        .route("/xrpc/com.atproto.repo.getRecord", get(bluesky::get_record))
        .route("/api/v1/statuses", post(mastodon_post::create))
        .route("/2/compliance/jobs", post(compliance::create))
        .route("/2/compliance/jobs/{id}", get(compliance::status))
        .route("/_emulator/compliance/upload/{id}", put(compliance::upload))
        .route(
            "/_emulator/compliance/download/{id}",
            get(compliance::download),
        )
        .route(
            "/_emulator/compliance",
            post(compliance::control).get(compliance::snapshot),
        )
        .route("/_emulator/posts", get(posts::list))
        .route(
            "/_emulator/faults",
            post(control::post_fault).get(control::list_faults),
        )
        .route("/_emulator/stats", get(control::stats))
        .route("/_emulator/jetstream/log", get(jetstream::log))
        .route("/_emulator/reset", post(control::reset))
        .route("/healthz", get(|| async { "ok" }))
        .with_state(state)
}
