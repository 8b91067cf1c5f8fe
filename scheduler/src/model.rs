//! The scheduled-post record model (pure data, serde): the records of the `scheduled` topic
//! (written by `tweet-producer schedule`) and of the `scheduled-results` topic (written by the
//! poster, `tweet-consumer --group poster`). Both topics are compacted and keyed by the post's
//! id, so each keeps the latest value per post: the schedule itself, and the last outcome of
//! each post. Reading and writing them is [`crate::queue`].

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};

/// The value of a `scheduled` record (key: [`ScheduledPost::id`]). A null value (tombstone)
/// for the key cancels the post.
///
/// ```json
/// {"id":"sp-6f1c0e5d2a9b4c7e","text":"Hello","due_at":"2026-03-08T06:30:00Z",
///  "created_at":"2026-03-01T10:00:00.123Z","source":"drafts/week1.txt:3"}
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScheduledPost {
    /// Stable id: [`post_id`] of the text and the due time, so that scheduling the same text
    /// for the same instant twice yields one record.
    pub id: String,
    /// The post's text, as it will be sent.
    pub text: String,
    /// When to post, UTC (RFC 3339 in JSON).
    pub due_at: DateTime<Utc>,
    /// When the record was written, UTC.
    pub created_at: DateTime<Utc>,
    /// Where it came from: `file:line`, `cli`, or a CSV row.
    pub source: String,
}

/// What happened to a scheduled post, as recorded on the results topic.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// About to call `POST /2/tweets`; written (and acknowledged) before the call. A post whose
    /// last outcome is `attempt` may or may not have been posted: it is reconciled against the
    /// account's posts before any retry.
    Attempt,
    /// The call failed in a way that certainly did not post (429, 5xx with an answer); it will
    /// be tried again at `retry_at`.
    Retry,
    /// Posted; `post_id` is X's id of the new post.
    Posted,
    /// X refused it as duplicate content (403): the same text is already on the account.
    Duplicate,
    /// Refused for good (another 4xx, or retries exhausted); `reason` says why.
    Failed,
    /// Not posted because it was due too long ago when the poster got to it
    /// (`--catch-up mark-missed`).
    Missed,
}

impl Outcome {
    /// Whether nothing more will be done for the post.
    pub fn is_final(self) -> bool {
        matches!(
            self,
            Outcome::Posted | Outcome::Duplicate | Outcome::Failed | Outcome::Missed
        )
    }

    /// The lower-case name (metric label, table column).
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Attempt => "attempt",
            Outcome::Retry => "retry",
            Outcome::Posted => "posted",
            Outcome::Duplicate => "duplicate",
            Outcome::Failed => "failed",
            Outcome::Missed => "missed",
        }
    }
}

/// The value of a `scheduled-results` record (key: the scheduled post's id; written to the
/// partition with the same number as the scheduled record's).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PostResult {
    /// The scheduled post's id.
    pub id: String,
    /// What happened.
    pub outcome: Outcome,
    /// When it happened, UTC.
    pub at: DateTime<Utc>,
    /// The post's due time, UTC.
    pub due_at: DateTime<Utc>,
    /// Attempts so far (1 for the first call).
    pub attempt: u32,
    /// X's id of the new post (`posted`, or `duplicate` when reconciliation found it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub post_id: Option<String>,
    /// Seconds between `due_at` and X accepting the post (`posted`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lateness_seconds: Option<f64>,
    /// Why it failed, is retried or was missed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// When the next attempt is due (`retry`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_at: Option<DateTime<Utc>>,
    /// True when the outcome was found by reading the account's posts after an ambiguous
    /// attempt (a crash or timeout between the call and its answer).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub reconciled: bool,
    /// The poster instance that wrote it (its Kafka client id and host process id).
    #[serde(default)]
    pub by: String,
}

/// The stable id of a scheduled post: `sp-` and 16 hex digits of the 64-bit FNV-1a hash of the
/// text, a NUL byte, and the due time as RFC 3339 UTC with seconds. FNV-1a is specified
/// (draft-eastlake-fnv) and does not change between Rust versions, unlike `DefaultHasher`.
pub fn post_id(text: &str, due_at: DateTime<Utc>) -> String {
    const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    let due = due_at.to_rfc3339_opts(SecondsFormat::Millis, true);
    let mut hash = OFFSET;
    for byte in text.bytes().chain([0u8]).chain(due.bytes()) {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(PRIME);
    }
    format!("sp-{hash:016x}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_stable_and_depend_on_text_and_time() {
        let at = DateTime::parse_from_rfc3339("2026-03-08T06:30:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let id = post_id("Hello", at);
        assert_eq!(id, post_id("Hello", at));
        assert_eq!(id.len(), 19);
        assert_ne!(id, post_id("Hello!", at));
        assert_ne!(id, post_id("Hello", at + chrono::Duration::seconds(1)));
    }

    #[test]
    fn results_round_trip() {
        let at = Utc::now();
        let result = PostResult {
            id: "sp-1".into(),
            outcome: Outcome::Posted,
            at,
            due_at: at,
            attempt: 1,
            post_id: Some("42".into()),
            lateness_seconds: Some(0.2),
            reason: None,
            retry_at: None,
            reconciled: false,
            by: "t".into(),
        };
        let json = serde_json::to_string(&result).unwrap();
        assert!(json.contains("\"outcome\":\"posted\""), "{json}");
        assert_eq!(serde_json::from_str::<PostResult>(&json).unwrap(), result);
        assert!(Outcome::Missed.is_final() && !Outcome::Attempt.is_final());
    }
}
