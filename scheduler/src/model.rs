//! The scheduled-post record model (pure data, serde): the records of the `scheduled` topic
//! (written by `tweet-producer schedule`) and of the `scheduled-results` topic (written by the
//! poster, `tweet-consumer --group poster`). Both topics are compacted: `scheduled` is keyed by
//! the post's id, `scheduled-results` by [`result_key`] (`<id>/<destination>`), so each keeps
//! the latest value per post, and per post and destination: the schedule itself, and the last
//! outcome of each post at each network. Reading and writing them is [`crate::queue`].

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};

/// A network a scheduled post goes to (`--to x,bluesky,mastodon`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Destination {
    /// X, `POST /2/tweets` (poster/x.rs).
    X,
    /// Bluesky, `com.atproto.repo.createRecord` (poster/bluesky.rs).
    Bluesky,
    /// Mastodon, `POST /api/v1/statuses` (poster/mastodon.rs).
    Mastodon,
}

impl Destination {
    /// Every destination, in a fixed order (metric labels, `--to` help).
    pub const ALL: [Destination; 3] = [Destination::X, Destination::Bluesky, Destination::Mastodon];

    /// The lower-case name (`--to`, JSON, result keys, metric label).
    pub fn as_str(self) -> &'static str {
        match self {
            Destination::X => "x",
            Destination::Bluesky => "bluesky",
            Destination::Mastodon => "mastodon",
        }
    }
}

impl fmt::Display for Destination {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Destination {
    type Err = String;

    fn from_str(value: &str) -> Result<Self, Self::Err> {
        Destination::ALL
            .into_iter()
            .find(|d| d.as_str().eq_ignore_ascii_case(value.trim()))
            .ok_or_else(|| {
                format!("unknown destination {value:?}: expected x, bluesky or mastodon")
            })
    }
}

/// The destinations of a record written before destinations existed: X only.
pub fn default_destinations() -> Vec<Destination> {
    vec![Destination::X]
}

fn default_destination() -> Destination {
    Destination::X
}

fn is_x(destination: &Destination) -> bool {
    *destination == Destination::X
}

/// The key of a `scheduled-results` record: `<id>/<destination>` (`sp-6f1c0e5d2a9b4c7e/bluesky`).
///
/// One key per post *and* destination, because the topic is compacted: with the post's id
/// alone, a later outcome at one network (mastodon `failed`) would replace the last outcome
/// at another (bluesky `posted`), compaction would drop the latter, and the next owner of the
/// partition would post to bluesky again. A `destination` field in the value cannot prevent
/// that; only the key decides what compaction keeps. Results written before destinations
/// existed have the bare id as key and no `destination` field: they are X's ([`parse_result_key`]).
pub fn result_key(id: &str, destination: Destination) -> String {
    format!("{id}/{destination}")
}

/// The post id and destination of a `scheduled-results` key: `<id>/<destination>`, or a bare
/// id (a result written before destinations existed, X's). `None` for an unknown destination.
pub fn parse_result_key(key: &str) -> Option<(&str, Destination)> {
    match key.rsplit_once('/') {
        Some((id, destination)) => Some((id, destination.parse().ok()?)),
        None => Some((key, Destination::X)),
    }
}

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
    /// The networks to post it to, each once (`["x"]` when absent: records written before
    /// destinations existed).
    #[serde(default = "default_destinations")]
    pub destinations: Vec<Destination>,
}

/// What happened to a scheduled post at one destination, as recorded on the results topic.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// About to call the network (`POST /2/tweets`, `createRecord`, `POST /api/v1/statuses`);
    /// written (and acknowledged) before the call. A post whose last outcome is `attempt` may or
    /// may not have been posted: on X it is reconciled against the account's posts before any
    /// retry; on Bluesky and Mastodon it is sent again with the same record key / idempotency
    /// key, which cannot create a second post.
    Attempt,
    /// The call failed in a way that certainly did not post (429, 5xx with an answer); it will
    /// be tried again at `retry_at`.
    Retry,
    /// Posted; `post_id` is the network's id of the new post (X's id, Bluesky's AT URI,
    /// Mastodon's status id).
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

/// The value of a `scheduled-results` record (key: [`result_key`] of the post's id and
/// `destination`; written to the partition with the same number as the scheduled record's).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PostResult {
    /// The scheduled post's id.
    pub id: String,
    /// The network this outcome is for (`x` when absent: results written before destinations
    /// existed; omitted for `x`, so X results keep their earlier shape).
    #[serde(default = "default_destination", skip_serializing_if = "is_x")]
    pub destination: Destination,
    /// What happened.
    pub outcome: Outcome,
    /// When it happened, UTC.
    pub at: DateTime<Utc>,
    /// The post's due time, UTC.
    pub due_at: DateTime<Utc>,
    /// Attempts so far (1 for the first call).
    pub attempt: u32,
    /// The network's id of the new post (`posted`, or `duplicate` when reconciliation found
    /// it): X's post id, Bluesky's AT URI (`at://did/app.bsky.feed.post/rkey`), Mastodon's
    /// status id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub post_id: Option<String>,
    /// Seconds between `due_at` and the network accepting the post (`posted`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lateness_seconds: Option<f64>,
    /// Why it failed, is retried or was missed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// When the next attempt is due (`retry`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_at: Option<DateTime<Utc>>,
    /// True when the outcome was found after an ambiguous attempt (a crash or timeout between
    /// the call and its answer): by reading X's account posts, or by Bluesky's record at the
    /// post's record key. (Mastodon answers a repeated idempotency key exactly as a first
    /// request, so a resent Mastodon post that was already there is not marked.)
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
            destination: Destination::Bluesky,
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
        assert!(json.contains("\"destination\":\"bluesky\""), "{json}");
        assert_eq!(serde_json::from_str::<PostResult>(&json).unwrap(), result);
        assert!(Outcome::Missed.is_final() && !Outcome::Attempt.is_final());
    }

    #[test]
    fn old_records_are_x_only() {
        let post: ScheduledPost = serde_json::from_str(
            r#"{"id":"sp-1","text":"Hello","due_at":"2026-03-08T06:30:00Z","created_at":"2026-03-01T10:00:00Z","source":"cli"}"#,
        )
        .unwrap();
        assert_eq!(post.destinations, vec![Destination::X]);
        let result: PostResult = serde_json::from_str(
            r#"{"id":"sp-1","outcome":"posted","at":"2026-03-08T06:30:00Z","due_at":"2026-03-08T06:30:00Z","attempt":1,"post_id":"9"}"#,
        )
        .unwrap();
        assert_eq!(result.destination, Destination::X);
        // An X result keeps its earlier shape.
        assert!(!serde_json::to_string(&result)
            .unwrap()
            .contains("destination"));
    }

    #[test]
    fn result_keys_name_the_post_and_the_destination() {
        assert_eq!(result_key("sp-1", Destination::Mastodon), "sp-1/mastodon");
        assert_eq!(
            parse_result_key("sp-1/mastodon"),
            Some(("sp-1", Destination::Mastodon))
        );
        assert_eq!(parse_result_key("sp-1/x"), Some(("sp-1", Destination::X)));
        assert_eq!(parse_result_key("sp-1"), Some(("sp-1", Destination::X)));
        assert_eq!(parse_result_key("sp-1/myspace"), None);
        assert_eq!("Bluesky".parse::<Destination>(), Ok(Destination::Bluesky));
        assert!("fb".parse::<Destination>().is_err());
    }
}
