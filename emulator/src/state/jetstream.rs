//! The Jetstream state every `/subscribe` connection shares: the recording, the pacing and
//! the connection log that `GET /_emulator/jetstream/log` returns.
//!
//! The log, as JSON (the serde shape of [`JetstreamLog`]):
//!
//! ```json
//! {"connections": [
//!   {"query": {"wantedCollections": ["app.bsky.feed.post"], "wantedDids": [],
//!              "cursor": 1783175888085434, "requireHello": false},
//!    "events_sent": 5,
//!    "fault": "drop",            // "drop" | "stall" | "slow_consumer" | null
//!    "malformed_after": null,    // events sent before the truncated frame, if one was sent
//!    "sent": [{"time_us": 1783175888085434, "did": "did:plc:...", "kind": "commit",
//!              "collection": "app.bsky.feed.post", "rkey": "3mp...", "operation": "create"}]}
//! ]}
//! ```
//!
//! Connections are listed in the order they were accepted (refused connects are not listed);
//! `sent` holds every event a connection sent completely, in order (never the truncated frame
//! of a `malformed_after_lines` fault), and is updated while the connection is open.
//! `collection`, `rkey` and `operation` are `null` for identity and account events.
//! `POST /_emulator/reset` empties the log.

use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::corpus::jetstream::JetstreamEvent;

/// The recording and the log of `/subscribe`.
#[derive(Debug, Default)]
pub struct JetstreamState {
    /// The events in `time_us` order; `None` when no recording was loaded (`/subscribe`
    /// answers 503).
    pub events: Option<Vec<JetstreamEvent>>,
    /// Time between two events on one connection; `None` for as fast as possible.
    pub event_interval: Option<Duration>,
    log: Mutex<LogEntries>,
}

#[derive(Debug, Default)]
struct LogEntries {
    next_id: u64,
    /// By increasing id.
    connections: Vec<(u64, JetstreamConnection)>,
}

/// Which log entry a connection writes to (entries removed by a reset are not written).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectionId(u64);

/// `GET /_emulator/jetstream/log` (see the module docs).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct JetstreamLog {
    /// Every accepted `/subscribe` connection since start or the last reset, in order.
    pub connections: Vec<JetstreamConnection>,
}

/// One `/subscribe` connection.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct JetstreamConnection {
    /// The connect's query parameters.
    pub query: JetstreamQuery,
    /// How many events were sent completely (`sent.len()`).
    pub events_sent: u64,
    /// The fault that ended or silenced the stream, if one did.
    pub fault: Option<FaultEffect>,
    /// Set when a `malformed_after_lines` fault sent its truncated frame: the number of
    /// complete events sent before it.
    pub malformed_after: Option<u64>,
    /// The events sent completely, in order.
    pub sent: Vec<SentEvent>,
}

/// The query parameters a connection was opened with (after validation).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct JetstreamQuery {
    /// `wantedCollections` as given (NSIDs or `prefix.*`); empty for all.
    #[serde(rename = "wantedCollections")]
    pub wanted_collections: Vec<String>,
    /// `wantedDids` as given; empty for all.
    #[serde(rename = "wantedDids")]
    pub wanted_dids: Vec<String>,
    /// `cursor` in unix microseconds, if given.
    pub cursor: Option<i64>,
    /// `requireHello=true`.
    #[serde(rename = "requireHello")]
    pub require_hello: bool,
}

/// One event sent, identified by the fields a test needs to match it to the recording.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SentEvent {
    /// `time_us`, unix microseconds.
    pub time_us: i64,
    /// `did`.
    pub did: String,
    /// `kind`: `commit`, `identity` or `account`.
    pub kind: String,
    /// `commit.collection` (commit events only).
    pub collection: Option<String>,
    /// `commit.rkey` (commit events only).
    pub rkey: Option<String>,
    /// `commit.operation`: `create`, `update` or `delete` (commit events only).
    pub operation: Option<String>,
}

impl From<&JetstreamEvent> for SentEvent {
    fn from(event: &JetstreamEvent) -> Self {
        let commit = event.commit.as_ref();
        Self {
            time_us: event.time_us,
            did: event.did.clone(),
            kind: event.kind.clone(),
            collection: commit.map(|c| c.collection.clone()),
            rkey: commit.map(|c| c.rkey.clone()),
            operation: commit.map(|c| c.operation.clone()),
        }
    }
}

/// A fault effect that ended or silenced a `/subscribe` stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FaultEffect {
    /// `drop_after_lines`: the TCP connection was closed without a close frame.
    Drop,
    /// `stall_after_lines` (or `keepalive_only`): nothing more was sent.
    Stall,
    /// `slow_consumer_after_lines`: closed with the too-slow close frame.
    SlowConsumer,
}

impl JetstreamState {
    /// A state serving `events` (already in `time_us` order) with `event_interval` between
    /// two events (`None`: as fast as possible).
    pub fn new(events: Option<Vec<JetstreamEvent>>, event_interval: Option<Duration>) -> Self {
        Self {
            events,
            event_interval,
            log: Mutex::default(),
        }
    }

    /// Adds a connection to the log.
    pub fn log_open(&self, query: JetstreamQuery) -> ConnectionId {
        let mut log = self.lock();
        let id = log.next_id;
        log.next_id += 1;
        log.connections.push((
            id,
            JetstreamConnection {
                query,
                ..JetstreamConnection::default()
            },
        ));
        ConnectionId(id)
    }

    /// Records an event sent completely.
    pub fn log_sent(&self, id: ConnectionId, event: &JetstreamEvent) {
        self.update(id, |connection| {
            connection.sent.push(SentEvent::from(event));
            connection.events_sent += 1;
        });
    }

    /// Records the fault that ended or silenced the stream.
    pub fn log_fault(&self, id: ConnectionId, effect: FaultEffect) {
        self.update(id, |connection| connection.fault = Some(effect));
    }

    /// Records the truncated frame of a `malformed_after_lines` fault.
    pub fn log_malformed(&self, id: ConnectionId, after_events: u64) {
        self.update(id, |connection| {
            connection.malformed_after = Some(after_events)
        });
    }

    /// The log now.
    pub fn snapshot(&self) -> JetstreamLog {
        JetstreamLog {
            connections: self
                .lock()
                .connections
                .iter()
                .map(|(_, connection)| connection.clone())
                .collect(),
        }
    }

    /// Empties the log (open connections go on, unlogged).
    pub fn clear(&self) {
        self.lock().connections.clear();
    }

    fn update(&self, id: ConnectionId, change: impl FnOnce(&mut JetstreamConnection)) {
        let mut log = self.lock();
        if let Ok(index) = log
            .connections
            .binary_search_by_key(&id.0, |(entry, _)| *entry)
        {
            change(&mut log.connections[index].1);
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, LogEntries> {
        self.log.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(time_us: i64) -> JetstreamEvent {
        JetstreamEvent {
            line: String::new(),
            time_us,
            did: "did:plc:a".into(),
            kind: "identity".into(),
            commit: None,
        }
    }

    #[test]
    fn log_round_trips_and_reset_detaches_open_connections() {
        let state = JetstreamState::default();
        let first = state.log_open(JetstreamQuery::default());
        state.log_sent(first, &event(1));
        state.log_fault(first, FaultEffect::Drop);
        let json = serde_json::to_value(state.snapshot()).unwrap();
        assert_eq!(json["connections"][0]["events_sent"], 1);
        assert_eq!(json["connections"][0]["fault"], "drop");
        assert_eq!(
            json["connections"][0]["query"]["cursor"],
            serde_json::Value::Null
        );
        assert_eq!(
            json["connections"][0]["sent"][0]["collection"],
            serde_json::Value::Null
        );
        let back: JetstreamLog = serde_json::from_value(json).unwrap();
        assert_eq!(back, state.snapshot());

        state.clear();
        state.log_sent(first, &event(2));
        assert!(state.snapshot().connections.is_empty());
        let second = state.log_open(JetstreamQuery::default());
        state.log_sent(second, &event(3));
        assert_eq!(state.snapshot().connections[0].sent[0].time_us, 3);
    }
}
