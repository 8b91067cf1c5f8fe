//! Fault injection: faults queued by `POST /_emulator/faults` and applied to the next stream
//! connections of an API.
//!
//! Body (every field optional except that at least one effect must be set):
//!
//! ```json
//! {"api": "v2" | "v1" | "mastodon" | "any",      // default "any"
//!  "connect_status": 429,        // answer the connect with this status (400..=599) and its body
//!  "drop_after_lines": 3,        // close the connection abruptly after N lines
//!  "stall_after_lines": 3,       // after N lines send nothing, not even keep-alives
//!  "keepalive_only": true,       // only keep-alives, never a line
//!  "split_chunks": true,         // write every line in chunks of 1-7 bytes
//!  "malformed_after_lines": 3,   // after N lines send one truncated line, then go on
//!  "gzip": true,                 // gzip the body, flushed per line (if Accept-Encoding allows)
//!  "times": 1}                   // how many connections the fault applies to (default 1)
//! ```
//!
//! `"api": "tweets"` faults apply to the next `POST /2/tweets` calls instead (`any` never
//! selects them): `connect_status` answers with that status (429 with `x-rate-limit-reset`
//! `rate_limit_reset_secs` from now, default 2; 403 with X's duplicate-content body; others
//! with a problem body) without posting, and `"post_timeout": true` records the post and then
//! never answers (until the emulator stops), like a post accepted by X whose answer is lost.
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
    /// The next connection of any streaming API (never `POST /2/tweets`).
    #[default]
    Any,
    /// `POST /2/tweets` (manage posts).
    Tweets,
}

impl ApiSelector {
    fn selects(self, api: Api) -> bool {
        matches!(
            (self, api),
            (ApiSelector::Any, Api::V2 | Api::V1 | Api::Mastodon)
                | (ApiSelector::Tweets, Api::Tweets)
                | (ApiSelector::V2, Api::V2)
                | (ApiSelector::V1, Api::V1)
                | (ApiSelector::Mastodon, Api::Mastodon)
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
    /// `Content-Encoding: gzip`, flushed after every line, when the request accepts gzip.
    #[serde(default, skip_serializing_if = "is_false")]
    pub gzip: bool,
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
    /// No effect is set.
    #[error(
        "the fault has no effect; set connect_status, drop_after_lines, stall_after_lines, \
         keepalive_only, split_chunks, malformed_after_lines, gzip or post_timeout"
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
    /// and it leaves the queue at zero.
    pub fn take(&self, api: Api) -> Option<Fault> {
        let mut pending = self.lock();
        let index = pending.iter().position(|fault| fault.api.selects(api))?;
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
        assert_eq!(queue.take(Api::V2).unwrap().connect_status, Some(429));
        assert_eq!(queue.take(Api::V2).unwrap().connect_status, Some(429));
        assert!(queue.take(Api::V2).unwrap().keepalive_only);
        assert_eq!(queue.take(Api::V2), None);
        assert_eq!(queue.take(Api::V1), None);
        assert!(queue.take(Api::Mastodon).unwrap().gzip);
        assert!(queue.list().is_empty());
        queue.push(parse(r#"{"api":"any","gzip":true}"#));
        assert_eq!(queue.take(Api::Tweets), None);
        queue.push(parse(r#"{"api":"tweets","post_timeout":true}"#));
        assert!(queue.take(Api::Tweets).unwrap().post_timeout);
    }
}
