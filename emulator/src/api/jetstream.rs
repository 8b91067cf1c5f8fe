//! Bluesky Jetstream v1: `GET /subscribe` upgraded to a WebSocket, serving the recorded
//! events (see `corpus/jetstream.rs`) as text frames holding each recorded line unchanged, and
//! `GET /_emulator/jetstream/log` (see `state/jetstream.rs`).
//!
//! Query parameters (bluesky-social/jetstream README "Consuming Jetstream"; validation as in
//! its `internal/subscribe/filter.go`, which keeps the legacy `pkg/server/subscriber.go` rules):
//!
//! - `wantedCollections` (repeatable, at most 100 after de-duplication): collection NSIDs or
//!   prefixes `a.b.*` (a value ending in `.*` is accepted without further checks, as v1 does;
//!   `app.bsky.fo*` is an invalid NSID). Filters commit events only: identity and account
//!   events are always sent; a commit without a collection passes.
//! - `wantedDids` (repeatable, at most 10,000 distinct): DIDs; filters every kind.
//! - `maxMessageSizeBytes`: events whose line is longer are skipped; empty, negative or
//!   malformed means no limit (v1 parity).
//! - `cursor`: unix microseconds; replay starts at the first event with `time_us >= cursor`.
//!   Without a cursor replay starts at the beginning of the recording: the emulator has no live
//!   tail beyond its recording (the real server live-tails then, and clamps a cursor older than
//!   its 36 h lookback to its oldest event; here the whole recording is the window). A cursor
//!   after the last event sends nothing.
//! - `requireHello=true` (exactly `true`): nothing is sent until the client sends an
//!   `options_update` message; `options_update` messages also replace the filters mid-stream
//!   (README "Subscriber Sourced messages"). A bad envelope or payload closes with 1007, invalid
//!   options with 1008 and the error as reason (as `internal/subscribe/handler.go` `runReader`).
//! - `compress=true` or `Socket-Encoding: zstd`: NOT SUPPORTED by the emulator, answered `400`
//!   before the upgrade (the real server sends zstd binary frames).
//!
//! Pre-upgrade errors are `400` with a plain-text body, as the real v1 handler's `http.Error`:
//! `invalid subscriber options: invalid collection: X`, `... too many wanted collections: > 100`,
//! `... invalid DID: X`, `... too many wanted DIDs: N > 10000`, `invalid cursor: X` (legacy
//! `pkg/server/server.go`). Without a loaded recording `/subscribe` answers `503` (the real
//! server's not-ready status) naming the missing file.
//!
//! Events are sent one per `--jetstream-rate` interval (0: as fast as the socket takes them).
//! After the last event the connection stays open and silent, like a quiet live stream; pings
//! from the client are answered by the WebSocket library. On shutdown the emulator closes with
//! 1001 (going away), as the real server does. Faults: see `state/faults.rs`.
//!
//! `slow_consumer_after_lines` closes with code 1008 (policy violation) and reason
//! `consumer too slow`. That frame is a GUESS: the real v1 server sends NO close frame to a
//! consumer that falls behind (legacy `pkg/server/subscriber.go`: "Don't send a close message
//! cause they won't get it"; the current `handler.go` returns and `CloseNow`s after its slow
//! detector fires, its `ConsumerTooSlow` error frame being v2-only). For that exact behaviour
//! use `drop_after_lines`.

use std::collections::HashSet;
use std::sync::Arc;

use axum::extract::rejection::QueryRejection;
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::{close_code, CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use tokio::time::{Interval, MissedTickBehavior};

use super::{log_open, take_fault};
use crate::corpus::jetstream::JetstreamEvent;
use crate::state::jetstream::{ConnectionId, FaultEffect, JetstreamQuery};
use crate::state::{Api, AppState, ConnectionGuard, Fault};

/// At most this many `wantedCollections` (Jetstream README; `MaxWantedCollections`).
pub const MAX_WANTED_COLLECTIONS: usize = 100;
/// At most this many distinct `wantedDids` (Jetstream README; `MaxWantedDIDs`).
pub const MAX_WANTED_DIDS: usize = 10_000;
/// A close reason is at most 123 bytes (RFC 6455 §5.5.1).
const MAX_CLOSE_REASON_BYTES: usize = 123;
/// The reason of the `slow_consumer_after_lines` close frame (a guess, see the module docs).
pub const SLOW_CONSUMER_REASON: &str = "consumer too slow";

/// Why a `/subscribe` request is refused before the upgrade (its `Display` is the body).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SubscribeError {
    /// `compress=true` or `Socket-Encoding: zstd`.
    #[error(
        "compression (compress=true / Socket-Encoding: zstd) is not supported by the stream emulator; connect without it"
    )]
    Compression,
    /// A `wantedCollections` value is neither an NSID nor a `prefix.*`.
    #[error("invalid subscriber options: invalid collection: {0}")]
    InvalidCollection(String),
    /// More than 100 distinct collections or prefixes.
    #[error("invalid subscriber options: too many wanted collections: > {MAX_WANTED_COLLECTIONS}")]
    TooManyCollections,
    /// A `wantedDids` value is not a DID.
    #[error("invalid subscriber options: invalid DID: {0}")]
    InvalidDid(String),
    /// More than 10,000 distinct DIDs.
    #[error("invalid subscriber options: too many wanted DIDs: {0} > {MAX_WANTED_DIDS}")]
    TooManyDids(usize),
    /// `cursor` is not an integer.
    #[error("invalid cursor: {0}")]
    InvalidCursor(String),
}

/// The parsed `wantedCollections`: exact NSIDs and prefixes (each ending in `.`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WantedCollections {
    exact: HashSet<String>,
    prefixes: Vec<String>,
}

impl WantedCollections {
    fn matches(&self, collection: &str) -> bool {
        self.exact.contains(collection) || self.prefixes.iter().any(|p| collection.starts_with(p))
    }
}

/// What a connection wants: its validated query (or last `options_update`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filter {
    /// `None`: every collection.
    pub collections: Option<WantedCollections>,
    /// `None`: every DID.
    pub dids: Option<HashSet<String>>,
    /// 0: no limit.
    pub max_message_size_bytes: u32,
}

impl Filter {
    /// Whether the event passes (module docs: DIDs gate every kind, collections only commits).
    pub fn wants(&self, event: &JetstreamEvent) -> bool {
        if self
            .dids
            .as_ref()
            .is_some_and(|dids| !dids.contains(&event.did))
        {
            return false;
        }
        if self.max_message_size_bytes > 0
            && event.line.len() > self.max_message_size_bytes as usize
        {
            return false;
        }
        match (&self.collections, &event.commit) {
            (Some(wanted), Some(commit)) if event.kind == "commit" => {
                commit.collection.is_empty() || wanted.matches(&commit.collection)
            }
            _ => true,
        }
    }

    /// The filter of `wantedCollections` and `wantedDids` values and `maxMessageSizeBytes`.
    ///
    /// # Errors
    /// [`SubscribeError`] for an invalid collection or DID, or too many of either.
    pub fn parse(
        collections: &[String],
        dids: &[String],
        max_message_size_bytes: u32,
    ) -> Result<Self, SubscribeError> {
        Ok(Self {
            collections: parse_collections(collections)?,
            dids: parse_dids(dids)?,
            max_message_size_bytes,
        })
    }
}

/// A validated `/subscribe` request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subscription {
    /// The filters.
    pub filter: Filter,
    /// `cursor`, unix microseconds.
    pub cursor: Option<i64>,
    /// `requireHello=true`.
    pub require_hello: bool,
    /// The query as logged.
    pub query: JetstreamQuery,
}

impl Subscription {
    /// Validates the query pairs (in order, repeated keys kept) and the headers.
    ///
    /// # Errors
    /// [`SubscribeError`] naming the first problem (compression first, then the filters, then
    /// the cursor).
    pub fn parse(pairs: &[(String, String)], headers: &HeaderMap) -> Result<Self, SubscribeError> {
        let all = |key: &str| -> Vec<String> {
            pairs
                .iter()
                .filter(|(k, _)| k == key)
                .map(|(_, v)| v.clone())
                .collect()
        };
        let first = |key: &str| {
            pairs
                .iter()
                .find(|(k, _)| k == key)
                .map(|(_, v)| v.as_str())
        };
        let zstd_header = headers
            .get_all("socket-encoding")
            .iter()
            .any(|value| value.to_str().is_ok_and(|v| v.contains("zstd")));
        if first("compress") == Some("true") || zstd_header {
            return Err(SubscribeError::Compression);
        }
        let collections = all("wantedCollections");
        let dids = all("wantedDids");
        let filter = Filter::parse(
            &collections,
            &dids,
            parse_max_size(first("maxMessageSizeBytes").unwrap_or_default()),
        )?;
        let cursor = match first("cursor") {
            None | Some("") => None,
            Some(raw) => Some(
                raw.parse::<i64>()
                    .map_err(|_| SubscribeError::InvalidCursor(raw.to_owned()))?,
            ),
        };
        let require_hello = first("requireHello") == Some("true");
        Ok(Self {
            filter,
            cursor,
            require_hello,
            query: JetstreamQuery {
                wanted_collections: collections,
                wanted_dids: dids,
                cursor,
                require_hello,
            },
        })
    }
}

fn parse_collections(values: &[String]) -> Result<Option<WantedCollections>, SubscribeError> {
    if values.is_empty() {
        return Ok(None);
    }
    let mut wanted = WantedCollections::default();
    for raw in values {
        if let Some(head) = raw.strip_suffix('*').filter(|_| raw.ends_with(".*")) {
            if !wanted.prefixes.iter().any(|p| p == head) {
                wanted.prefixes.push(head.to_owned());
            }
        } else if is_nsid(raw) {
            wanted.exact.insert(raw.clone());
        } else {
            return Err(SubscribeError::InvalidCollection(raw.clone()));
        }
        if wanted.exact.len() + wanted.prefixes.len() > MAX_WANTED_COLLECTIONS {
            return Err(SubscribeError::TooManyCollections);
        }
    }
    Ok(Some(wanted))
}

fn parse_dids(values: &[String]) -> Result<Option<HashSet<String>>, SubscribeError> {
    if values.is_empty() {
        return Ok(None);
    }
    let mut dids = HashSet::with_capacity(values.len().min(MAX_WANTED_DIDS + 1));
    for raw in values {
        if !is_did(raw) {
            return Err(SubscribeError::InvalidDid(raw.clone()));
        }
        dids.insert(raw.clone());
    }
    if dids.len() > MAX_WANTED_DIDS {
        return Err(SubscribeError::TooManyDids(dids.len()));
    }
    Ok(Some(dids))
}

/// `maxMessageSizeBytes`: empty, malformed, negative or too large values mean 0, no limit
/// (Jetstream README; `parseMaxMsgSizeQuery`).
fn parse_max_size(raw: &str) -> u32 {
    raw.parse::<i64>()
        .ok()
        .and_then(|n| u32::try_from(n).ok())
        .unwrap_or(0)
}

/// An NSID as the atproto spec defines it (atproto.com/specs/nsid): ASCII, at most 317 chars,
/// at least three `.`-separated segments; the domain-authority segments are 1-63 of
/// `[a-zA-Z0-9-]` not starting or ending with `-` (the first not starting with a digit), at
/// most 253 chars together; the name is 1-63 of `[a-zA-Z0-9]` starting with a letter.
pub fn is_nsid(value: &str) -> bool {
    if value.len() > 317 || !value.is_ascii() {
        return false;
    }
    let segments: Vec<&str> = value.split('.').collect();
    let Some((name, authority)) = segments.split_last() else {
        return false;
    };
    if authority.len() < 2 || value.len() - name.len() - 1 > 253 {
        return false;
    }
    let authority_ok = authority.iter().enumerate().all(|(i, segment)| {
        (1..=63).contains(&segment.len())
            && segment
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-')
            && !segment.starts_with('-')
            && !segment.ends_with('-')
            && !(i == 0 && segment.starts_with(|c: char| c.is_ascii_digit()))
    });
    authority_ok
        && (1..=63).contains(&name.len())
        && name.starts_with(|c: char| c.is_ascii_alphabetic())
        && name.bytes().all(|b| b.is_ascii_alphanumeric())
}

/// A DID as the atproto spec defines it (atproto.com/specs/did): `did:`, a lower-case method,
/// `:`, then `[a-zA-Z0-9._:%-]` not ending in `:` or `%`; at most 2048 chars.
pub fn is_did(value: &str) -> bool {
    let Some(rest) = value.strip_prefix("did:") else {
        return false;
    };
    let Some((method, id)) = rest.split_once(':') else {
        return false;
    };
    value.len() <= 2048
        && !method.is_empty()
        && method.bytes().all(|b| b.is_ascii_lowercase())
        && !id.is_empty()
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._:%-".contains(&b))
        && !id.ends_with(':')
        && !id.ends_with('%')
}

/// Where replay starts in events sorted by `time_us`: the first with `time_us >= cursor`, or 0
/// without a cursor.
pub fn start_index(events: &[JetstreamEvent], cursor: Option<i64>) -> usize {
    match cursor {
        Some(cursor) => events.partition_point(|event| event.time_us < cursor),
        None => 0,
    }
}

/// The first half of a line, cut on a character boundary: the truncated frame of a
/// `malformed_after_lines` fault.
pub fn truncated(line: &str) -> &str {
    let mut cut = line.len() / 2;
    while !line.is_char_boundary(cut) {
        cut -= 1;
    }
    &line[..cut]
}

/// A plain-text error response, as Go's `http.Error` writes it (`text/plain; charset=utf-8`,
/// the message and a newline).
pub fn plain_error(status: StatusCode, message: &str) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        format!("{message}\n"),
    )
        .into_response()
}

/// `GET /_emulator/jetstream/log`.
pub async fn log(State(state): State<Arc<AppState>>) -> Response {
    Json(state.jetstream.snapshot()).into_response()
}

/// `GET /subscribe`.
pub async fn subscribe(
    State(state): State<Arc<AppState>>,
    query: Result<Query<Vec<(String, String)>>, QueryRejection>,
    headers: HeaderMap,
    upgrade: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Response {
    if state.jetstream.events.is_none() {
        let status = StatusCode::SERVICE_UNAVAILABLE;
        state.stats(Api::Jetstream).refused(status);
        return plain_error(
            status,
            &format!(
                "service not ready: the stream emulator has no Jetstream recording; start it with --data DIR holding {} or with --jetstream-file FILE",
                crate::corpus::jetstream::DEFAULT_JETSTREAM_FILE
            ),
        );
    }
    let pairs = match query {
        Ok(Query(pairs)) => pairs,
        Err(rejection) => {
            return plain_error(
                StatusCode::BAD_REQUEST,
                &format!("invalid subscriber options: {rejection}"),
            )
        }
    };
    let subscription = match Subscription::parse(&pairs, &headers) {
        Ok(subscription) => subscription,
        Err(error) => {
            tracing::info!(api = "jetstream", %error, "subscribe refused");
            return plain_error(StatusCode::BAD_REQUEST, &error.to_string());
        }
    };
    let upgrade = match upgrade {
        Ok(upgrade) => upgrade,
        Err(rejection) => return rejection.into_response(),
    };
    let Some(guard) = ConnectionGuard::open(&state, Api::Jetstream, false) else {
        return plain_error(StatusCode::TOO_MANY_REQUESTS, "too many connections");
    };
    let (guard, fault) = match take_fault(&state, Api::Jetstream, guard, false) {
        Ok(accepted) => accepted,
        Err(refused) => return *refused,
    };
    log_open(Api::Jetstream, &fault, false);
    let id = state.jetstream.log_open(subscription.query.clone());
    upgrade.on_upgrade(move |socket| async move {
        Session::new(state, fault, subscription, id)
            .run(socket)
            .await;
        drop(guard);
    })
}

/// One open `/subscribe` connection.
struct Session {
    state: Arc<AppState>,
    fault: Fault,
    filter: Filter,
    waiting_for_hello: bool,
    id: ConnectionId,
    /// The next event to consider.
    next: usize,
    /// Complete events sent.
    sent: u64,
    malformed_due: Option<u64>,
}

/// How a session's loop goes on after a message from the client.
enum Next {
    Continue,
    Close(Option<CloseFrame>),
    Gone,
}

impl Session {
    fn new(
        state: Arc<AppState>,
        fault: Fault,
        subscription: Subscription,
        id: ConnectionId,
    ) -> Self {
        let next = start_index(
            state.jetstream.events.as_deref().unwrap_or_default(),
            subscription.cursor,
        );
        Self {
            malformed_due: fault.malformed_after_lines,
            state,
            fault,
            filter: subscription.filter,
            waiting_for_hello: subscription.require_hello,
            id,
            next,
            sent: 0,
        }
    }

    async fn run(mut self, mut socket: WebSocket) {
        let state = Arc::clone(&self.state);
        let events = state.jetstream.events.as_deref().unwrap_or_default();
        let mut ticker = state.jetstream.event_interval.map(|interval| {
            let mut ticker = tokio::time::interval(interval);
            ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
            ticker
        });
        let mut stalled = false;
        loop {
            if self.fault.drop_after_lines.is_some_and(|n| self.sent >= n) {
                tracing::info!(
                    api = "jetstream",
                    events = self.sent,
                    "fault: dropping the connection"
                );
                state.jetstream.log_fault(self.id, FaultEffect::Drop);
                // Dropping the socket closes the TCP connection without a close frame; every
                // frame sent before was flushed by `send`.
                return;
            }
            if self
                .fault
                .slow_consumer_after_lines
                .is_some_and(|n| self.sent >= n)
            {
                tracing::info!(
                    api = "jetstream",
                    events = self.sent,
                    "fault: closing as a too slow consumer"
                );
                state
                    .jetstream
                    .log_fault(self.id, FaultEffect::SlowConsumer);
                close(&mut socket, close_code::POLICY, SLOW_CONSUMER_REASON).await;
                return;
            }
            let stall_due = self.fault.keepalive_only
                || self.fault.stall_after_lines.is_some_and(|n| self.sent >= n);
            if stall_due && !stalled {
                tracing::info!(
                    api = "jetstream",
                    events = self.sent,
                    "fault: stalling the connection"
                );
                state.jetstream.log_fault(self.id, FaultEffect::Stall);
                stalled = true;
            }
            while events
                .get(self.next)
                .is_some_and(|event| !self.filter.wants(event))
            {
                self.next += 1;
            }
            let ready = !stalled && !self.waiting_for_hello && self.next < events.len();
            tokio::select! {
                biased;
                _ = state.shutdown.cancelled() => {
                    close(&mut socket, close_code::AWAY, "the stream emulator is shutting down").await;
                    return;
                }
                message = socket.recv() => match self.on_client_message(message) {
                    Next::Continue => {}
                    Next::Gone => return,
                    Next::Close(frame) => {
                        if let Some(frame) = frame {
                            close(&mut socket, frame.code, frame.reason.as_str()).await;
                        }
                        return;
                    }
                },
                _ = tick(&mut ticker), if ready => {
                    let event = &events[self.next];
                    if self.malformed_due.is_some_and(|n| self.sent >= n) {
                        self.malformed_due = None;
                        let cut = truncated(&event.line).to_owned();
                        if socket.send(Message::text(cut)).await.is_err() {
                            return;
                        }
                        tracing::info!(api = "jetstream", events = self.sent, "fault: sent a truncated event");
                        state.jetstream.log_malformed(self.id, self.sent);
                        continue;
                    }
                    if socket.send(Message::text(event.line.as_str())).await.is_err() {
                        return;
                    }
                    self.next += 1;
                    self.sent += 1;
                    state.stats(Api::Jetstream).line_sent();
                    state.jetstream.log_sent(self.id, event);
                }
            }
        }
    }

    /// Handles what the client sent: `options_update` messages (README "Subscriber Sourced
    /// messages"), close, or the end of the socket.
    fn on_client_message(&mut self, message: Option<Result<Message, axum::Error>>) -> Next {
        match message {
            None | Some(Err(_)) | Some(Ok(Message::Close(_))) => Next::Gone,
            Some(Ok(Message::Text(text))) => match options_update(text.as_str()) {
                Ok(Some(filter)) => {
                    self.filter = filter;
                    self.waiting_for_hello = false;
                    Next::Continue
                }
                Ok(None) => Next::Continue,
                Err(frame) => Next::Close(Some(frame)),
            },
            Some(Ok(_)) => Next::Continue,
        }
    }
}

#[derive(Deserialize)]
struct SubscriberSourcedMessage {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    payload: Option<Box<serde_json::value::RawValue>>,
}

#[derive(Deserialize)]
struct OptionsUpdate {
    #[serde(default, rename = "wantedCollections")]
    wanted_collections: Vec<String>,
    #[serde(default, rename = "wantedDids")]
    wanted_dids: Vec<String>,
    #[serde(default, rename = "maxMessageSizeBytes")]
    max_message_size_bytes: i64,
}

/// The new filter of an `options_update` message, `None` for another message type (ignored,
/// as v1 does), or the close frame for a bad message (`handler.go` `runReader`: 1007 for bad
/// JSON, 1008 with the error for invalid options).
pub fn options_update(text: &str) -> Result<Option<Filter>, CloseFrame> {
    let bad = |code, reason: &str| CloseFrame {
        code,
        reason: close_reason(reason).into(),
    };
    let message: SubscriberSourcedMessage = serde_json::from_str(text)
        .map_err(|_| bad(close_code::INVALID, "bad SubscriberSourcedMessage envelope"))?;
    if message.kind != "options_update" {
        return Ok(None);
    }
    let payload = message.payload.as_ref().map_or("null", |raw| raw.get());
    let update: OptionsUpdate = serde_json::from_str(payload)
        .map_err(|_| bad(close_code::INVALID, "bad options_update payload"))?;
    let max = u32::try_from(update.max_message_size_bytes.max(0)).unwrap_or(0);
    Filter::parse(&update.wanted_collections, &update.wanted_dids, max)
        .map(Some)
        .map_err(|error| bad(close_code::POLICY, &error.to_string()))
}

/// A close reason cut to 123 bytes on a character boundary, with `...` when cut (as
/// `truncateCloseReason` in Jetstream's `handler.go`).
fn close_reason(reason: &str) -> String {
    if reason.len() <= MAX_CLOSE_REASON_BYTES {
        return reason.to_owned();
    }
    let mut cut = MAX_CLOSE_REASON_BYTES - 3;
    while !reason.is_char_boundary(cut) {
        cut -= 1;
    }
    format!("{}...", &reason[..cut])
}

/// Sends a close frame and waits (at most 5 s) for the client's answer or the end of the
/// socket.
async fn close(socket: &mut WebSocket, code: u16, reason: &str) {
    let frame = CloseFrame {
        code,
        reason: close_reason(reason).into(),
    };
    if socket.send(Message::Close(Some(frame))).await.is_err() {
        return;
    }
    let answered = async {
        while let Some(Ok(message)) = socket.recv().await {
            if matches!(message, Message::Close(_)) {
                break;
            }
        }
    };
    let _ = tokio::time::timeout(std::time::Duration::from_secs(5), answered).await;
}

/// The next pacing tick; at once when there is no pacing.
async fn tick(ticker: &mut Option<Interval>) {
    if let Some(ticker) = ticker {
        ticker.tick().await;
    }
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;
    use crate::corpus::jetstream::CommitKey;

    fn commit(did: &str, time_us: i64, collection: &str) -> JetstreamEvent {
        JetstreamEvent {
            line: format!(r#"{{"did":"{did}","time_us":{time_us},"kind":"commit"}}"#),
            time_us,
            did: did.into(),
            kind: "commit".into(),
            commit: Some(CommitKey {
                collection: collection.into(),
                rkey: "k".into(),
                operation: "create".into(),
            }),
        }
    }

    fn other(kind: &str, did: &str, time_us: i64) -> JetstreamEvent {
        JetstreamEvent {
            line: String::from("{}"),
            time_us,
            did: did.into(),
            kind: kind.into(),
            commit: None,
        }
    }

    fn pairs(query: &[(&str, &str)]) -> Vec<(String, String)> {
        query
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn parse(query: &[(&str, &str)]) -> Result<Subscription, SubscribeError> {
        Subscription::parse(&pairs(query), &HeaderMap::new())
    }

    #[test]
    fn collections_filter_commits_only_and_prefixes_match() {
        let filter = parse(&[
            ("wantedCollections", "app.bsky.feed.post"),
            ("wantedCollections", "app.bsky.graph.*"),
        ])
        .unwrap()
        .filter;
        assert!(filter.wants(&commit("did:plc:a", 1, "app.bsky.feed.post")));
        assert!(filter.wants(&commit("did:plc:a", 1, "app.bsky.graph.follow")));
        assert!(!filter.wants(&commit("did:plc:a", 1, "app.bsky.feed.like")));
        assert!(!filter.wants(&commit("did:plc:a", 1, "app.bsky.feed.postgate")));
        assert!(filter.wants(&other("identity", "did:plc:a", 1)));
        assert!(filter.wants(&other("account", "did:plc:a", 1)));
        // Without wantedCollections, everything.
        let all = parse(&[]).unwrap().filter;
        assert!(all.wants(&commit("did:plc:a", 1, "fm.teal.alpha.actor.status")));
    }

    #[test]
    fn dids_filter_every_kind_and_size_limits_apply() {
        let filter = parse(&[
            ("wantedDids", "did:plc:a"),
            ("wantedCollections", "app.bsky.feed.post"),
        ])
        .unwrap()
        .filter;
        assert!(filter.wants(&commit("did:plc:a", 1, "app.bsky.feed.post")));
        assert!(!filter.wants(&commit("did:plc:b", 1, "app.bsky.feed.post")));
        assert!(filter.wants(&other("identity", "did:plc:a", 1)));
        assert!(!filter.wants(&other("account", "did:plc:b", 1)));
        let small = parse(&[("maxMessageSizeBytes", "10")]).unwrap().filter;
        assert!(!small.wants(&commit("did:plc:a", 1, "app.bsky.feed.post")));
        assert!(small.wants(&other("identity", "did:plc:a", 1)));
        for lenient in ["-5", "x", "", "99999999999"] {
            let filter = parse(&[("maxMessageSizeBytes", lenient)]).unwrap().filter;
            assert_eq!(filter.max_message_size_bytes, 0, "{lenient}");
        }
    }

    #[test]
    fn cursor_starts_at_the_first_event_at_or_after_it() {
        let events = [
            other("identity", "did:plc:a", 10),
            other("identity", "did:plc:a", 20),
            other("identity", "did:plc:a", 20),
            other("identity", "did:plc:a", 30),
        ];
        assert_eq!(start_index(&events, None), 0);
        assert_eq!(start_index(&events, Some(0)), 0);
        assert_eq!(start_index(&events, Some(20)), 1);
        assert_eq!(start_index(&events, Some(21)), 3);
        assert_eq!(start_index(&events, Some(31)), 4);
        assert_eq!(
            parse(&[("cursor", "1725519626134432")]).unwrap().cursor,
            Some(1_725_519_626_134_432)
        );
    }

    #[test]
    fn invalid_parameters_are_refused_with_jetstreams_messages() {
        assert_eq!(
            parse(&[("wantedCollections", "app.bsky.fo*")])
                .unwrap_err()
                .to_string(),
            "invalid subscriber options: invalid collection: app.bsky.fo*"
        );
        assert_eq!(
            parse(&[("wantedCollections", "post")]),
            Err(SubscribeError::InvalidCollection("post".into()))
        );
        assert_eq!(
            parse(&[("wantedDids", "plc:abc")]),
            Err(SubscribeError::InvalidDid("plc:abc".into()))
        );
        assert_eq!(
            parse(&[("cursor", "yesterday")]).unwrap_err().to_string(),
            "invalid cursor: yesterday"
        );
        assert_eq!(
            parse(&[("compress", "true")]),
            Err(SubscribeError::Compression)
        );
        let mut headers = HeaderMap::new();
        headers.insert("socket-encoding", HeaderValue::from_static("zstd"));
        assert_eq!(
            Subscription::parse(&[], &headers),
            Err(SubscribeError::Compression)
        );
        assert!(parse(&[("compress", "false")]).is_ok());

        let collections: Vec<String> = (0..=MAX_WANTED_COLLECTIONS)
            .map(|i| format!("app.bsky.c{i}"))
            .collect();
        let query: Vec<(String, String)> = collections
            .iter()
            .map(|c| ("wantedCollections".to_string(), c.clone()))
            .collect();
        assert_eq!(
            Subscription::parse(&query[..MAX_WANTED_COLLECTIONS], &HeaderMap::new())
                .map(|s| s.query.wanted_collections.len()),
            Ok(MAX_WANTED_COLLECTIONS)
        );
        assert_eq!(
            Subscription::parse(&query, &HeaderMap::new()),
            Err(SubscribeError::TooManyCollections)
        );
        let dids: Vec<(String, String)> = (0..=MAX_WANTED_DIDS)
            .map(|i| ("wantedDids".to_string(), format!("did:plc:{i}")))
            .collect();
        assert_eq!(
            Subscription::parse(&dids, &HeaderMap::new()),
            Err(SubscribeError::TooManyDids(MAX_WANTED_DIDS + 1))
        );
        // Duplicates count once, as in v1.
        let same = vec![("wantedDids".to_string(), "did:plc:a".to_string()); MAX_WANTED_DIDS + 5];
        assert!(Subscription::parse(&same, &HeaderMap::new()).is_ok());
    }

    #[test]
    fn nsids_and_dids_follow_the_atproto_syntax() {
        for good in [
            "app.bsky.feed.post",
            "fm.teal.alpha.actor.status",
            "com.example.fooBar",
        ] {
            assert!(is_nsid(good), "{good}");
        }
        for bad in [
            "app.bsky",
            "app.bsky.feed.",
            "1app.bsky.post",
            "app.-bsky.post",
            "app.bsky.feed.po-st",
            "app.bsky.feed.9post",
            "app.bsky.fo*",
        ] {
            assert!(!is_nsid(bad), "{bad}");
        }
        for good in [
            "did:plc:wq4aajammjtxdomz3e23667t",
            "did:web:example.com",
            "did:web:localhost%3A8080",
        ] {
            assert!(is_did(good), "{good}");
        }
        for bad in [
            "did:plc:",
            "did:PLC:abc",
            "did::abc",
            "plc:abc",
            "did:plc:abc:",
            "did:plc:a b",
        ] {
            assert!(!is_did(bad), "{bad}");
        }
    }

    #[test]
    fn requirehello_is_exactly_true() {
        assert!(parse(&[("requireHello", "true")]).unwrap().require_hello);
        assert!(!parse(&[("requireHello", "True")]).unwrap().require_hello);
    }

    #[test]
    fn options_updates_replace_the_filter_or_close() {
        let filter = options_update(
            r#"{"type":"options_update","payload":{"wantedCollections":["app.bsky.feed.post"],"wantedDids":[],"maxMessageSizeBytes":-1}}"#,
        )
        .unwrap()
        .unwrap();
        assert!(filter.wants(&commit("did:plc:z", 1, "app.bsky.feed.post")));
        assert!(!filter.wants(&commit("did:plc:z", 1, "app.bsky.feed.like")));
        assert_eq!(options_update(r#"{"type":"other","payload":{}}"#), Ok(None));
        assert_eq!(
            options_update("nope").unwrap_err().code,
            close_code::INVALID
        );
        let invalid =
            options_update(r#"{"type":"options_update","payload":{"wantedDids":["nope"]}}"#)
                .unwrap_err();
        assert_eq!(invalid.code, close_code::POLICY);
        assert_eq!(
            invalid.reason.as_str(),
            "invalid subscriber options: invalid DID: nope"
        );
        assert_eq!(close_reason(&"é".repeat(100)).len(), 123);
    }

    #[test]
    fn truncation_cuts_on_a_character_boundary() {
        assert_eq!(truncated("abcd"), "ab");
        assert_eq!(truncated("aé"), "a");
        assert!(serde_json::from_str::<serde_json::Value>(truncated(r#"{"a":"bcdef"}"#)).is_err());
    }
}
