//! Fault injection: faults queued by `POST /_emulator/faults` and applied to the next stream
//! connections of an API.
//!
//! Body (every field optional except that at least one effect must be set):
//!
//! ```json
//! {"api": "v2" | "v1" | "mastodon" | "jetstream" | "any",      // default "any"
//!  "connect_status": 429,        // answer the connect with this status (400..=599) and its body
//!  "drop_after_lines": 3,        // close the connection abruptly after N lines
//!  "stall_after_lines": 3,       // after N lines send nothing, not even keep-alives
//!  "keepalive_only": true,       // only keep-alives, never a line
//!  "split_chunks": true,         // write every line in chunks of 1-7 bytes
//!  "malformed_after_lines": 3,   // after N lines send one truncated line, then go on
//!  "slow_consumer_after_lines": 3, // jetstream only: after N events close as "too slow"
//!  "gzip": true,                 // gzip the body, flushed per line (if Accept-Encoding allows)
//!  "gzip_cut_after_bytes": 3000, // gzip the body, cut it after N compressed bytes (see below)
//!  "times": 1}                   // how many connections the fault applies to (default 1)
//! ```
//!
//! `"api": "tweets"` faults apply to the next `POST /2/tweets` calls instead (`any` never
//! selects them), `"api": "bluesky_post"` to the next `com.atproto.repo.createRecord` calls
//! and `"api": "mastodon_post"` to the next `POST /api/v1/statuses` calls, the same way: `connect_status` answers with that status (429 with `x-rate-limit-reset`
//! `rate_limit_reset_secs` from now, default 2; 403 with X's duplicate-content body; others
//! with a problem body) without posting, and `"post_timeout": true` records the post and then
//! never answers (until the emulator stops), like a post accepted by X whose answer is lost.
//!
//! `gzip_cut_after_bytes: N` reproduces a stream cut by the network in the middle of a gzip
//! body (issue 13): the connection gets the real `Content-Encoding: gzip`, chunked stream,
//! sync-flushed after every message (so what was sent decodes up to the last byte received),
//! and after exactly N bytes of the gzip stream (its 10-byte header included, the chunked
//! framing not counted) nothing more is written and the connection is closed without the
//! terminating zero-length chunk. Only a connection whose request accepts gzip takes such a
//! fault; one that does not skips it and takes the next matching fault. To cut inside a line,
//! pick N inside that line's compressed bytes: each line is compressed on its own (sync flush
//! per line, `flate2` fast level), so a line of a few KB spans a few hundred to a few thousand
//! compressed bytes, and a cut strictly inside them leaves the client complete lines followed
//! by a partial one. A cut line does not count in `lines_sent` unless all its compressed bytes
//! went out. It combines with the other stream faults (whichever ends the stream first wins;
//! with `split_chunks` the cut falls inside the split pieces).
//!
//! `"api": "jetstream"` faults apply to the next `/subscribe` WebSocket connections (`any`
//! selects them too). There "lines" are complete events (text frames) only, never the
//! truncated frame: `connect_status` answers the upgrade request with that status (plain-text
//! body, as Jetstream's `http.Error`); `drop_after_lines` closes the TCP connection without a
//! close frame; `stall_after_lines` (and `keepalive_only`) sends nothing more but keeps reading
//! (pings are answered); `malformed_after_lines` sends the first half of the next event as one
//! text frame, then that event whole and the rest; `slow_consumer_after_lines` closes with the
//! close frame 1008 "consumer too slow" (see `api/jetstream.rs` for why that is a guess: the
//! real v1 server sends no close frame). `split_chunks`, `gzip` and `gzip_cut_after_bytes` do
//! not apply to Jetstream (a `gzip_cut_after_bytes` fault is never taken by it).
//!
//! "Lines" are messages: posts, v1.1 notices, Mastodon events (and the malformed line); never
//! keep-alives. Faults are taken in the order they were queued: the first pending fault whose
//! `api` is the connecting API or `any` applies to a connection.

use std::collections::VecDeque;
use std::sync::{Mutex, PoisonError};

use serde::{Deserialize, Serialize};

use super::Api;

/// Which API a fault is for.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ApiSelector {
    /// X API v2 filtered stream.
    V2,
    /// X API v1.1 `statuses/filter`.
    V1,
    /// Mastodon streaming.
    Mastodon,
    /// Bluesky Jetstream v1 `/subscribe`.
    Jetstream,
    /// The next connection of any streaming API (never `POST /2/tweets`).
    #[default]
    Any,
    /// `POST /2/tweets` (manage posts).
    Tweets,
    /// Bluesky `com.atproto.repo.createRecord`.
    #[serde(rename = "bluesky_post")]
    BlueskyPost,
    /// Mastodon `POST /api/v1/statuses`.
    #[serde(rename = "mastodon_post")]
    MastodonPost,
}

impl ApiSelector {
    fn selects(self, api: Api) -> bool {
        matches!(
            (self, api),
            (
                ApiSelector::Any,
                Api::V2 | Api::V1 | Api::Mastodon | Api::Jetstream
            ) | (ApiSelector::Tweets, Api::Tweets)
                | (ApiSelector::BlueskyPost, Api::BlueskyPost)
                | (ApiSelector::MastodonPost, Api::MastodonPost)
                | (ApiSelector::V2, Api::V2)
                | (ApiSelector::V1, Api::V1)
                | (ApiSelector::Mastodon, Api::Mastodon)
                | (ApiSelector::Jetstream, Api::Jetstream)
        )
    }
}

/// One fault, as posted to `/_emulator/faults` (see the module docs for the JSON).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Fault {
    /// The API whose next connections get the fault.
    #[serde(default)]
    pub api: ApiSelector,
    /// Refuse the connect with this HTTP status and the API's body for it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connect_status: Option<u16>,
    /// Close the connection abruptly (no final chunk) after this many lines.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub drop_after_lines: Option<u64>,
    /// After this many lines, send nothing at all until the client goes away.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stall_after_lines: Option<u64>,
    /// Send only keep-alives.
    #[serde(default, skip_serializing_if = "is_false")]
    pub keepalive_only: bool,
    /// Write every line in chunks of 1 to 7 bytes, split at random positions.
    #[serde(default, skip_serializing_if = "is_false")]
    pub split_chunks: bool,
    /// After this many lines, send one truncated line, then continue.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub malformed_after_lines: Option<u64>,
    /// Jetstream: after this many events, close with the "consumer too slow" close frame.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slow_consumer_after_lines: Option<u64>,
    /// `Content-Encoding: gzip`, flushed after every line, when the request accepts gzip.
    #[serde(default, skip_serializing_if = "is_false")]
    pub gzip: bool,
    /// Gzip the body like `gzip`, and cut the connection after this many bytes of the gzip
    /// stream (header included, chunked framing not), without the final chunk. Only taken by
    /// a connection that accepts gzip.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gzip_cut_after_bytes: Option<u64>,
    /// `POST /2/tweets`: record the post, then never answer.
    #[serde(default, skip_serializing_if = "is_false")]
    pub post_timeout: bool,
    /// `POST /2/tweets` with `connect_status` 429: seconds from now in `x-rate-limit-reset`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate_limit_reset_secs: Option<u64>,
    /// How many connections this fault applies to (at least 1).
    #[serde(default = "one")]
    pub times: u32,
}

fn one() -> u32 {
    1
}

fn is_false(value: &bool) -> bool {
    !*value
}

/// Why a fault was not queued.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum FaultError {
    /// `times` is 0.
    #[error("times must be at least 1")]
    ZeroTimes,
    /// `connect_status` is outside 400..=599.
    #[error("connect_status must be an HTTP error status (400..=599), got {0}")]
    BadStatus(u16),
    /// `gzip_cut_after_bytes` is 0.
    #[error("gzip_cut_after_bytes must be at least 1 (bytes of the gzip stream to send)")]
    ZeroGzipCut,
    /// `gzip_cut_after_bytes` is set on a `"tweets"` fault, which has no stream to cut.
    #[error("gzip_cut_after_bytes applies to stream connections; use api v2, v1, mastodon or any")]
    GzipCutWithoutStream,
    /// No effect is set.
    #[error(
        "the fault has no effect; set connect_status, drop_after_lines, stall_after_lines, \
         keepalive_only, split_chunks, malformed_after_lines, slow_consumer_after_lines, gzip, \
         gzip_cut_after_bytes or post_timeout"
    )]
    NoEffect,
}

impl Fault {
    /// Checks that the fault does something and that its values are in range.
    ///
    /// # Errors
    /// [`FaultError`] naming the problem.
    pub fn validate(&self) -> Result<(), FaultError> {
        if self.times == 0 {
            return Err(FaultError::ZeroTimes);
        }
        if let Some(status) = self.connect_status.filter(|s| !(400..=599).contains(s)) {
            return Err(FaultError::BadStatus(status));
        }
        match (self.gzip_cut_after_bytes, self.api) {
            (Some(0), _) => return Err(FaultError::ZeroGzipCut),
            (
                Some(_),
                ApiSelector::Tweets | ApiSelector::BlueskyPost | ApiSelector::MastodonPost,
            ) => return Err(FaultError::GzipCutWithoutStream),
            _ => {}
        }
        let no_effect = Fault {
            api: self.api,
            times: self.times,
            ..Fault::default()
        };
        if *self == no_effect {
            return Err(FaultError::NoEffect);
        }
        Ok(())
    }

    /// Whether the stream is to be gzip-encoded (when the request accepts it): `gzip` or
    /// `gzip_cut_after_bytes`.
    pub fn wants_gzip(&self) -> bool {
        self.gzip || self.gzip_cut_after_bytes.is_some()
    }

    /// Whether a connection may take this fault: a gzip cut needs a connection that accepts
    /// gzip.
    fn applies_to(&self, api: Api, accepts_gzip: bool) -> bool {
        self.api.selects(api) && (accepts_gzip || self.gzip_cut_after_bytes.is_none())
    }
}

/// The queue of pending faults.
#[derive(Debug, Default)]
pub struct FaultQueue {
    pending: Mutex<VecDeque<Fault>>,
}

impl FaultQueue {
    /// Queues a validated fault.
    pub fn push(&self, fault: Fault) {
        self.lock().push_back(fault);
    }

    /// The fault for the next connection of `api`, if any; its `times` count goes down by one
    /// and it leaves the queue at zero. `accepts_gzip`: whether the request accepts a gzip
    /// response (a `gzip_cut_after_bytes` fault is skipped otherwise).
    pub fn take(&self, api: Api, accepts_gzip: bool) -> Option<Fault> {
        let mut pending = self.lock();
        let index = pending
            .iter()
            .position(|fault| fault.applies_to(api, accepts_gzip))?;
        let fault = pending.get_mut(index)?;
        fault.times -= 1;
        let mut applied = fault.clone();
        applied.times = 1;
        if fault.times == 0 {
            pending.remove(index);
        }
        Some(applied)
    }

    /// The pending faults, in order.
    pub fn list(&self) -> Vec<Fault> {
        self.lock().iter().cloned().collect()
    }

    /// Removes every pending fault.
    pub fn clear(&self) {
        self.lock().clear();
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, VecDeque<Fault>> {
        self.pending.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(json: &str) -> Fault {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn json_fields_and_defaults() {
        let fault = parse(r#"{"api":"v2","drop_after_lines":3}"#);
        assert_eq!(fault.api, ApiSelector::V2);
        assert_eq!(fault.drop_after_lines, Some(3));
        assert_eq!(fault.times, 1);
        assert_eq!(fault.validate(), Ok(()));
        assert_eq!(parse(r#"{"gzip":true}"#).api, ApiSelector::Any);
        assert!(serde_json::from_str::<Fault>(r#"{"drop_after":3}"#).is_err());
        assert_eq!(
            parse(r#"{"api":"v1"}"#).validate(),
            Err(FaultError::NoEffect)
        );
        assert_eq!(
            parse(r#"{"connect_status":200}"#).validate(),
            Err(FaultError::BadStatus(200))
        );
        assert_eq!(
            parse(r#"{"gzip":true,"times":0}"#).validate(),
            Err(FaultError::ZeroTimes)
        );
    }

    #[test]
    fn faults_apply_in_order_per_api_and_count_down() {
        let queue = FaultQueue::default();
        queue.push(parse(r#"{"api":"mastodon","gzip":true}"#));
        queue.push(parse(r#"{"api":"v2","connect_status":429,"times":2}"#));
        queue.push(parse(r#"{"api":"any","keepalive_only":true}"#));
        assert_eq!(queue.take(Api::V2, true).unwrap().connect_status, Some(429));
        assert_eq!(queue.take(Api::V2, true).unwrap().connect_status, Some(429));
        assert!(queue.take(Api::V2, true).unwrap().keepalive_only);
        assert_eq!(queue.take(Api::V2, true), None);
        assert_eq!(queue.take(Api::V1, true), None);
        assert!(queue.take(Api::Mastodon, true).unwrap().gzip);
        assert!(queue.list().is_empty());
        queue.push(parse(r#"{"api":"any","gzip":true}"#));
        assert_eq!(queue.take(Api::Tweets, false), None);
        queue.push(parse(r#"{"api":"tweets","post_timeout":true}"#));
        assert!(queue.take(Api::Tweets, false).unwrap().post_timeout);
        // Each posting API takes only its own faults.
        queue.push(parse(r#"{"api":"mastodon_post","connect_status":500}"#));
        queue.push(parse(r#"{"api":"bluesky_post","post_timeout":true}"#));
        assert_eq!(queue.take(Api::Tweets, false), None);
        assert!(queue.take(Api::BlueskyPost, false).unwrap().post_timeout);
        assert_eq!(queue.take(Api::BlueskyPost, false), None);
        assert_eq!(
            queue.take(Api::MastodonPost, false).unwrap().connect_status,
            Some(500)
        );
    }

    #[test]
    fn jetstream_faults_are_selected_by_name_and_by_any() {
        let slow = parse(r#"{"api":"jetstream","slow_consumer_after_lines":4}"#);
        assert_eq!(slow.validate(), Ok(()));
        let queue = FaultQueue::default();
        queue.push(slow);
        queue.push(parse(r#"{"api":"any","drop_after_lines":2}"#));
        assert_eq!(
            queue.take(Api::V2, false).unwrap().drop_after_lines,
            Some(2)
        );
        queue.push(parse(r#"{"drop_after_lines":5}"#));
        assert_eq!(
            queue
                .take(Api::Jetstream, false)
                .unwrap()
                .slow_consumer_after_lines,
            Some(4)
        );
        assert_eq!(
            queue.take(Api::Jetstream, false).unwrap().drop_after_lines,
            Some(5)
        );
        assert_eq!(queue.take(Api::Jetstream, false), None);
    }

    #[test]
    fn gzip_cut_is_validated_and_waits_for_a_gzip_connection() {
        let cut = parse(r#"{"gzip_cut_after_bytes":3000}"#);
        assert_eq!(cut.validate(), Ok(()));
        assert!(cut.wants_gzip());
        assert_eq!(
            parse(r#"{"gzip_cut_after_bytes":0}"#).validate(),
            Err(FaultError::ZeroGzipCut)
        );
        assert_eq!(
            parse(r#"{"api":"tweets","gzip_cut_after_bytes":10}"#).validate(),
            Err(FaultError::GzipCutWithoutStream)
        );
        let queue = FaultQueue::default();
        queue.push(cut);
        queue.push(parse(r#"{"api":"v1","split_chunks":true}"#));
        // A connection without Accept-Encoding: gzip passes the cut over.
        assert!(queue.take(Api::V1, false).unwrap().split_chunks);
        assert_eq!(queue.take(Api::V2, false), None);
        assert_eq!(
            queue.take(Api::V2, true).unwrap().gzip_cut_after_bytes,
            Some(3000)
        );
        assert!(queue.list().is_empty());
    }
}
