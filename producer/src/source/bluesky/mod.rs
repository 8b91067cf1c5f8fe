//! Bluesky's Jetstream firehose as a live source: one WebSocket to `/subscribe`, every event
//! written unchanged (the record value is the text frame's bytes), routed as
//! [`tweet_pipeline_common::route::jetstream`] says, filtered client-side by [`rules`], and
//! resumed after a restart from the [`cursor`] Kafka has everything up to.
//!
//! Protocol (bluesky-social/jetstream README, "Consuming Jetstream"; the public instances are
//! `jetstream{1,2}.us-{east,west}.bsky.network`, no account needed): `GET /subscribe` upgraded
//! to a WebSocket; query `wantedCollections` (repeatable, up to 100, NSID prefixes such as
//! `app.bsky.graph.*` allowed), `wantedDids` (repeatable, up to 10,000) and `cursor` (unix
//! microseconds; absent: the live tip). Every message is one JSON event in a text frame. The
//! server sends identity and account events whatever `wantedCollections` says. `compress=true`
//! (zstd with a custom dictionary) is not asked for: the record value must be the event's JSON
//! bytes unchanged, and decompressing costs what it saves on loopback-to-Kafka.
//!
//! Liveness: Jetstream sends no keep-alive of its own, and a `wantedDids` stream may be quiet
//! for long, so the producer pings every third of the stall timeout; a connection that returns
//! no frame at all (not even the pong) within the stall timeout is closed and reconnected.
//! Reconnects back off as [`crate::source::reconnect`] documents; a close frame (the server
//! restarting, or cutting off a consumer too slow to keep up) reconnects at once when the
//! connection had delivered events.

pub mod cursor;
pub mod rules;

use std::borrow::Cow;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use futures::{SinkExt as _, StreamExt as _};
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};
use tokio_util::sync::CancellationToken;
use tweet_pipeline_common::framing::Frame;
use tweet_pipeline_common::{headers, route_line, Kind, LineClass};

use self::cursor::{lag_seconds, resume_cursor, CursorFile};
use self::rules::{RuleFilter, Verdict};
use crate::delivery::{KafkaSink, Watermark};
use crate::ingest::{Ingest, IngestStats};
use crate::source::live::LiveContext;
use crate::source::reconnect::{with_jitter, Backoff, Disconnect};

/// The default Jetstream endpoint: a public instance (README, "Public Instances").
pub const DEFAULT_JETSTREAM_URL: &str = "wss://jetstream2.us-east.bsky.network/subscribe";
/// The public AppView, which resolves handles without an account (Bluesky HTTP API reference).
pub const DEFAULT_APPVIEW_URL: &str = "https://public.api.bsky.app";
/// The default `wantedCollections`: posts and reposts.
pub const DEFAULT_COLLECTIONS: [&str; 2] = ["app.bsky.feed.post", "app.bsky.feed.repost"];
/// The firehose carries hundreds of events a second; a minute without even a pong means the
/// connection is dead.
pub const DEFAULT_STALL_TIMEOUT: Duration = Duration::from_secs(60);
/// How often the saved cursor is brought up to the watermark.
pub const CURSOR_SAVE_INTERVAL: Duration = Duration::from_secs(1);
/// The largest WebSocket message accepted (a record is at most a few hundred KB; larger lines
/// are dead-lettered by `--max-line-bytes` before this).
const MAX_MESSAGE_BYTES: usize = 16 << 20;
/// How long the WebSocket handshake may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(15);

/// The Bluesky source's configuration.
#[derive(Debug)]
pub struct Bluesky {
    /// The `/subscribe` URL (`wss://…` or, for the emulator, `ws://…`).
    pub url: reqwest::Url,
    /// `wantedCollections`.
    pub collections: Vec<String>,
    /// `wantedDids` (empty: every repository).
    pub dids: Vec<String>,
    /// The client-side rules.
    pub rules: RuleFilter,
    /// Where the cursor is kept across restarts.
    pub cursor_file: CursorFile,
    /// How far before the saved cursor a restart resumes.
    pub rewind: Duration,
    /// Reconnect when no frame arrived for this long.
    pub stall_timeout: Duration,
}

/// The `/subscribe` URL with its query: `wantedCollections`, `wantedDids` and `cursor`
/// (form-encoded, after any query `base` already has).
pub fn subscribe_url(
    base: &reqwest::Url,
    collections: &[String],
    dids: &[String],
    cursor: Option<i64>,
) -> String {
    let mut url = base.clone();
    {
        let mut query = url.query_pairs_mut();
        for collection in collections {
            query.append_pair("wantedCollections", collection);
        }
        for did in dids {
            query.append_pair("wantedDids", did);
        }
        if let Some(cursor) = cursor {
            query.append_pair("cursor", &cursor.to_string());
        }
    }
    url.into()
}

/// The `collection` label of a routed Jetstream event: its `app.bsky.*` NSID from the AT URI
/// key, `other` for any other lexicon (the label set stays bounded), empty without a commit.
pub fn collection_label(kind: Kind, key: Option<&str>) -> &str {
    if matches!(kind, Kind::Identity | Kind::Account) {
        return "";
    }
    let collection = key
        .and_then(|uri| uri.strip_prefix("at://"))
        .and_then(|rest| rest.split('/').nth(1))
        .unwrap_or_default();
    if collection.starts_with("app.bsky.") {
        collection
    } else {
        "other"
    }
}

/// Resolves the `from:` handles of the rules to DIDs with `com.atproto.identity.resolveHandle`
/// (Bluesky HTTP API reference; the public AppView answers it without an account).
///
/// # Errors
/// When a handle does not resolve: the message names it.
pub async fn resolve_handles(
    client: &reqwest::Client,
    appview: &str,
    config: &mut Bluesky,
) -> anyhow::Result<()> {
    let handles: Vec<String> = config.rules.handles();
    if handles.is_empty() {
        return Ok(());
    }
    #[derive(serde::Deserialize)]
    struct Resolved {
        did: String,
    }
    let mut resolved = HashMap::new();
    for handle in handles {
        let url = format!(
            "{}/xrpc/com.atproto.identity.resolveHandle",
            appview.trim_end_matches('/')
        );
        let answer = client
            .get(&url)
            .query(&[("handle", handle.as_str())])
            .send()
            .await
            .and_then(reqwest::Response::error_for_status)
            .map_err(|error| crate::source::live::without_url(&error))
            .map_err(|error| anyhow::anyhow!("cannot resolve the handle in from:{handle} at {appview}: {error}; give its DID instead (from:did:plc:…)"))?;
        let Resolved { did } = answer
            .json()
            .await
            .with_context(|| format!("resolveHandle answered no DID for {handle}"))?;
        tracing::info!(handle, did, "from: handle resolved");
        resolved.insert(handle, did);
    }
    config.rules.resolve_handles(&resolved);
    Ok(())
}

/// Reads the firehose until `cancel`, reconnecting as documented. Returns what was read; the
/// cursor is saved every [`CURSOR_SAVE_INTERVAL`] here and once more by the caller after the
/// sink's final flush ([`save_final_cursor`]).
///
/// # Errors
/// When the cursor file cannot be read (before connecting).
pub async fn run(mut config: Bluesky, context: &LiveContext) -> anyhow::Result<IngestStats> {
    let saved = config.cursor_file.load()?;
    tracing::info!(cursor_file = %config.cursor_file.path().display(), saved_cursor = saved, "jetstream cursor loaded");
    let stop_saver = context.cancel.child_token();
    let saver = tokio::spawn(save_cursor_periodically(
        context.sink.watermark_handle(),
        config.cursor_file.clone(),
        context.metrics.clone(),
        stop_saver.clone(),
    ));
    let read = read_until_cancelled(&mut config, saved, context).await;
    stop_saver.cancel();
    saver.await.context("the cursor saver panicked")?;
    read
}

async fn read_until_cancelled(
    config: &mut Bluesky,
    saved: Option<i64>,
    context: &LiveContext,
) -> anyhow::Result<IngestStats> {
    let LiveContext {
        sink,
        metrics,
        max_line_bytes,
        cancel,
        ..
    } = context;
    let label = "bluesky";
    let mut reader = EventReader {
        ingest: Ingest::new(sink, metrics, source_label(&config.url), *max_line_bytes),
        sink,
        rules: &mut config.rules,
        last_seen: saved,
    };
    let mut backoff = Backoff::default();
    let connected = metrics.stream_connected.with_label_values(&[label]);
    let backoff_gauge = metrics.stream_backoff_seconds.with_label_values(&[label]);
    while !cancel.is_cancelled() {
        let cursor = resume_cursor(reader.last_seen, config.rewind);
        let url = subscribe_url(&config.url, &config.collections, &config.dids, cursor);
        tracing::info!(api = label, cursor, "connecting");
        let (disconnect, delivered) = tokio::select! {
            _ = cancel.cancelled() => break,
            ended = read_connection(&url, config.stall_timeout, *max_line_bytes, &mut reader, context) => ended,
        };
        connected.set(0);
        metrics
            .stream_disconnects
            .with_label_values(&[label, disconnect.reason()])
            .inc();
        let next = match (delivered, disconnect) {
            (true, _) => Disconnect::Dropped,
            (false, Disconnect::Dropped) => Disconnect::Network,
            (false, other) => other,
        };
        let Some(delay) = backoff.next_delay(next) else {
            anyhow::bail!("the Jetstream server refused the connection ({disconnect:?}); check --jetstream URL");
        };
        let delay = with_jitter(delay, rand::random::<f64>());
        backoff_gauge.set(delay.as_secs_f64());
        tracing::warn!(api = label, reason = disconnect.reason(), detail = ?disconnect, retry_in_ms = delay.as_millis() as u64, last_cursor = reader.last_seen, "jetstream disconnected; reconnecting from the last cursor");
        tokio::select! {
            _ = cancel.cancelled() => break,
            _ = tokio::time::sleep(delay) => {}
        }
        backoff_gauge.set(0.0);
    }
    Ok(reader.ingest.stats)
}

/// Saves the watermark's position once the sink has flushed: every record up to it is in Kafka
/// (or in the spool, which the next start sends first). Returns the saved cursor.
pub fn save_final_cursor(watermark: &Watermark, file: &CursorFile) -> Option<i64> {
    let position = watermark.safe_position()?;
    match file.save(position) {
        Ok(()) => {
            tracing::info!(cursor = position, "jetstream cursor saved");
            Some(position)
        }
        Err(error) => {
            tracing::error!(%error, "cannot save the jetstream cursor; the next start resumes from an older one");
            None
        }
    }
}

async fn save_cursor_periodically(
    watermark: Arc<Watermark>,
    file: CursorFile,
    metrics: tweet_pipeline_common::metrics::ProducerMetrics,
    cancel: CancellationToken,
) {
    let mut saved = None;
    let mut tick = tokio::time::interval(CURSOR_SAVE_INTERVAL);
    loop {
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tick.tick() => {}
        }
        let Some(position) = watermark.safe_position() else {
            continue;
        };
        metrics
            .cursor_lag_seconds
            .set(lag_seconds(headers::now_ms() * 1000, position));
        if saved == Some(position) {
            continue;
        }
        match file.save(position) {
            Ok(()) => saved = Some(position),
            Err(error) => tracing::warn!(%error, "cannot save the jetstream cursor; trying again"),
        }
    }
}

/// Turns frames into records: routing, rules, the watermark.
struct EventReader<'a> {
    ingest: Ingest<'a>,
    sink: &'a KafkaSink,
    rules: &'a mut RuleFilter,
    /// The newest `time_us` read (the cursor a reconnect resumes from, less the rewind).
    last_seen: Option<i64>,
}

impl EventReader<'_> {
    /// One text frame: one event.
    fn event(&mut self, line: &[u8], metrics: &tweet_pipeline_common::metrics::ProducerMetrics) {
        let max = self.ingest.max_line_bytes();
        if line.len() > max {
            self.ingest.frame(Frame::Oversized {
                prefix: &line[..max],
                len_bytes: line.len(),
            });
            return;
        }
        let mut routed = match route_line(line) {
            LineClass::KeepAlive => return self.ingest.keepalive(),
            LineClass::Record(routed) => routed,
        };
        metrics
            .jetstream_events
            .with_label_values(&[
                collection_label(routed.kind, routed.key.as_deref()),
                routed.kind.as_str(),
            ])
            .inc();
        if routed.cursor.is_some() {
            self.last_seen = routed.cursor;
        }
        let watermark = self.sink.watermark();
        match self.rules.decide(routed.kind, routed.key.as_deref(), line) {
            Verdict::Write(tags) => {
                routed.rule_tags = tags.into_iter().map(Cow::Owned).collect();
                let sequence = routed.cursor.map(|time_us| watermark.register(time_us));
                self.ingest.record_in_sequence(line, routed, sequence);
            }
            Verdict::Unmatched => {
                self.ingest.unmatched(routed.kind);
                if let Some(time_us) = routed.cursor {
                    watermark.skip(time_us);
                }
            }
            Verdict::Invalid(reason) => {
                let sequence = routed.cursor.map(|time_us| watermark.register(time_us));
                let dead = tweet_pipeline_common::Routed::dead_letter(Kind::Malformed, reason);
                self.ingest.record_in_sequence(line, dead, sequence);
            }
        }
    }
}

/// One connection: why it ended, and whether it delivered events.
async fn read_connection(
    url: &str,
    stall_timeout: Duration,
    max_line_bytes: usize,
    reader: &mut EventReader<'_>,
    context: &LiveContext,
) -> (Disconnect, bool) {
    let metrics = &context.metrics;
    let mut config = WebSocketConfig::default();
    config.max_message_size = Some(MAX_MESSAGE_BYTES.max(max_line_bytes + 1));
    config.max_frame_size = Some(MAX_MESSAGE_BYTES.max(max_line_bytes + 1));
    let connect = tokio_tungstenite::connect_async_with_config(url, Some(config), false);
    let mut socket = match tokio::time::timeout(CONNECT_TIMEOUT, connect).await {
        Err(_) => return (Disconnect::Network, false),
        Ok(Err(error)) => {
            let disconnect = classify_connect_error(&error);
            tracing::warn!(error = %without_query(&error), "jetstream connection refused");
            return (disconnect, false);
        }
        Ok(Ok((socket, _response))) => socket,
    };
    metrics
        .stream_connections
        .with_label_values(&["bluesky"])
        .inc();
    metrics
        .stream_connected
        .with_label_values(&["bluesky"])
        .set(1);
    tracing::info!(api = "bluesky", "connected");
    let mut delivered = false;
    let mut ping = tokio::time::interval(stall_timeout / 3);
    ping.tick().await;
    loop {
        let next = tokio::select! {
            _ = ping.tick() => None,
            next = tokio::time::timeout(stall_timeout, socket.next()) => Some(next),
        };
        let Some(next) = next else {
            if socket
                .send(Message::Ping(Default::default()))
                .await
                .is_err()
            {
                return (Disconnect::Network, delivered);
            }
            continue;
        };
        let message = match next {
            Err(_) => return (Disconnect::Stall, delivered),
            Ok(None) => return (Disconnect::Dropped, delivered),
            Ok(Some(Err(error))) => {
                tracing::debug!(%error, "jetstream read failed");
                return (Disconnect::Network, delivered);
            }
            Ok(Some(Ok(message))) => message,
        };
        match message {
            Message::Text(text) => {
                delivered = true;
                let line = text.as_str().as_bytes();
                // The sink may block (a full queue); reading waits, which is the backpressure.
                tokio::task::block_in_place(|| reader.event(line, metrics));
            }
            Message::Binary(bytes) => {
                // Not asked for (no compress=true): kept, with the reason, not decoded.
                delivered = true;
                let dead = tweet_pipeline_common::Routed::dead_letter(
                    Kind::Malformed,
                    format!("jetstream: unexpected binary frame of {} bytes (compression was not requested)", bytes.len()),
                );
                let max = bytes.len().min(max_line_bytes);
                tokio::task::block_in_place(|| reader.ingest.record(&bytes[..max], dead));
            }
            Message::Close(frame) => {
                tracing::warn!(code = ?frame.as_ref().map(|f| u16::from(f.code)), reason = frame.as_ref().map(|f| f.reason.as_str()), "jetstream closed the connection");
                return (Disconnect::Dropped, delivered);
            }
            Message::Ping(_) | Message::Pong(_) | Message::Frame(_) => {}
        }
    }
}

/// The `source` header of the Bluesky source's records: `bluesky:` and the instance's host.
pub fn source_label(url: &reqwest::Url) -> String {
    format!("bluesky:{}", url.host_str().unwrap_or_default())
}

/// The reconnect class of a failed WebSocket handshake.
fn classify_connect_error(error: &WsError) -> Disconnect {
    match error {
        WsError::Http(response) => match response.status().as_u16() {
            429 => Disconnect::RateLimited(429),
            // A bad query (400) will not get better by itself, but the public instances answer
            // 4xx/5xx while restarting too: back off as for any HTTP error.
            status => Disconnect::Http(status),
        },
        _ => Disconnect::Network,
    }
}

/// The error without the request URL's query (it may name DIDs the operator filtered on).
fn without_query(error: &WsError) -> String {
    match error {
        WsError::Http(response) => format!("HTTP {}", response.status()),
        other => other.to_string(),
    }
}

/// The path of the cursor file when none is given: inside the producer's spool folder (one
/// folder per producer, locked while it runs).
pub fn default_cursor_file(spool_dir: &std::path::Path) -> PathBuf {
    spool_dir.join("jetstream.cursor")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(text: &str) -> reqwest::Url {
        reqwest::Url::parse(text).unwrap()
    }

    #[test]
    fn the_query_names_collections_dids_and_cursor() {
        let collections = vec![
            "app.bsky.feed.post".to_owned(),
            "app.bsky.graph.*".to_owned(),
        ];
        let dids = vec!["did:plc:abc".to_owned()];
        assert_eq!(
            subscribe_url(&url("ws://127.0.0.1:1/subscribe"), &collections, &dids, Some(17)),
            "ws://127.0.0.1:1/subscribe?wantedCollections=app.bsky.feed.post&wantedCollections=app.bsky.graph.*&wantedDids=did%3Aplc%3Aabc&cursor=17"
        );
        assert_eq!(
            subscribe_url(&url("wss://x/subscribe?requireHello=false"), &[], &[], None),
            "wss://x/subscribe?requireHello=false"
        );
    }

    #[test]
    fn collection_labels_stay_bounded() {
        let key = Some("at://did:plc:a/app.bsky.feed.like/3k");
        assert_eq!(collection_label(Kind::Event, key), "app.bsky.feed.like");
        assert_eq!(
            collection_label(
                Kind::Event,
                Some("at://did:plc:a/fm.teal.alpha.actor.status/self")
            ),
            "other"
        );
        assert_eq!(collection_label(Kind::Identity, Some("did:plc:a")), "");
        assert_eq!(collection_label(Kind::Unknown, None), "other");
    }

    #[test]
    fn handshake_refusals_back_off_by_status() {
        let refused = |status: u16| {
            let response = tokio_tungstenite::tungstenite::http::Response::builder()
                .status(status)
                .body(None)
                .unwrap();
            classify_connect_error(&WsError::Http(Box::new(response)))
        };
        assert_eq!(refused(429), Disconnect::RateLimited(429));
        assert_eq!(refused(503), Disconnect::Http(503));
        assert_eq!(
            classify_connect_error(&WsError::ConnectionClosed),
            Disconnect::Network
        );
    }
}
