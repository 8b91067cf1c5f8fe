//! Per-API counters (`GET /_emulator/stats`) and the connection slot that limits v2 and v1.1 to
//! one stream connection at a time.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use axum::http::StatusCode;
use serde_json::json;

use super::{Api, AppState};

/// Counters and the connection slot of one API.
#[derive(Debug, Default)]
pub struct ApiStats {
    connections_accepted: AtomicU64,
    connections_refused: Mutex<BTreeMap<u16, u64>>,
    lines_sent: AtomicU64,
    keepalives_sent: AtomicU64,
    open_connections: AtomicU64,
    /// Set while the API's single stream connection is open (v2, v1.1).
    slot_taken: AtomicBool,
    /// Where the next connection starts in the corpus: reconnects go on where the last
    /// connection stopped, like a live stream that moved on.
    pub resume_at: AtomicUsize,
}

impl ApiStats {
    /// Counts a refused connect.
    pub fn refused(&self, status: StatusCode) {
        *self
            .connections_refused
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .entry(status.as_u16())
            .or_default() += 1;
    }

    /// Counts an accepted request that is not a stream connection (`POST /2/tweets`).
    pub fn accepted(&self) {
        self.connections_accepted.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a line (post, notice, event) written.
    pub fn line_sent(&self) {
        self.lines_sent.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a keep-alive written.
    pub fn keepalive_sent(&self) {
        self.keepalives_sent.fetch_add(1, Ordering::Relaxed);
    }

    /// Zeroes the counters (not `open_connections`, not the slot, not `resume_at`).
    pub fn reset(&self) {
        self.connections_accepted.store(0, Ordering::Relaxed);
        self.connections_refused
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clear();
        self.lines_sent.store(0, Ordering::Relaxed);
        self.keepalives_sent.store(0, Ordering::Relaxed);
    }

    /// The counters as the JSON object of `GET /_emulator/stats`.
    pub fn snapshot(&self) -> serde_json::Value {
        let refused: BTreeMap<String, u64> = self
            .connections_refused
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .map(|(status, count)| (status.to_string(), *count))
            .collect();
        json!({
            "connections_accepted": self.connections_accepted.load(Ordering::Relaxed),
            "connections_refused": refused,
            "lines_sent": self.lines_sent.load(Ordering::Relaxed),
            "keepalives_sent": self.keepalives_sent.load(Ordering::Relaxed),
            "open_connections": self.open_connections.load(Ordering::Relaxed),
        })
    }
}

/// An accepted stream connection. Dropping it (when the response body is dropped: the client
/// went away, the stream ended or the server is shutting down) frees the API's connection slot
/// and counts the connection as closed.
#[derive(Debug)]
pub struct ConnectionGuard {
    state: Arc<AppState>,
    api: Api,
    holds_slot: bool,
    refused: bool,
}

impl ConnectionGuard {
    /// Takes the API's single connection slot when `exclusive` (v2 and v1.1 allow one stream
    /// connection at a time, X's default), and counts the connection as accepted and open.
    /// `None` when the slot is taken.
    pub fn open(state: &Arc<AppState>, api: Api, exclusive: bool) -> Option<Self> {
        let stats = state.stats(api);
        if exclusive
            && stats
                .slot_taken
                .compare_exchange(false, true, Ordering::AcqRel, Ordering::Acquire)
                .is_err()
        {
            return None;
        }
        stats.connections_accepted.fetch_add(1, Ordering::Relaxed);
        stats.open_connections.fetch_add(1, Ordering::Relaxed);
        Some(Self {
            state: Arc::clone(state),
            api,
            holds_slot: exclusive,
            refused: false,
        })
    }

    /// Turns an accepted connection into a refused one (a `connect_status` fault): the
    /// connection is counted as refused instead of accepted.
    pub fn refuse(mut self, status: StatusCode) {
        let stats = self.state.stats(self.api);
        stats.connections_accepted.fetch_sub(1, Ordering::Relaxed);
        stats.refused(status);
        self.refused = true;
    }
}

impl Drop for ConnectionGuard {
    fn drop(&mut self) {
        let stats = self.state.stats(self.api);
        stats.open_connections.fetch_sub(1, Ordering::Relaxed);
        if self.holds_slot {
            stats.slot_taken.store(false, Ordering::Release);
        }
        if !self.refused {
            tracing::info!(api = self.api.as_str(), "stream connection closed");
        }
    }
}
