//! The posts created on the emulated Bluesky PDS (`createRecord`) and Mastodon instance
//! (`POST /api/v1/statuses`), listed by `GET /_emulator/posts` (`bluesky`, `mastodon`), and the
//! Bluesky sessions handed out by `createSession`.

use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};

use chrono::{DateTime, Utc};
use serde::Serialize;

/// One `app.bsky.feed.post` record.
#[derive(Debug, Clone, Serialize)]
pub struct BlueskyRecord {
    /// `at://<did>/app.bsky.feed.post/<rkey>`.
    pub uri: String,
    /// The record key (a TID).
    pub rkey: String,
    /// A CID-shaped content id (not a real hash of the record's CBOR).
    pub cid: String,
    /// The record as sent (`$type`, `text`, `createdAt`, ...).
    pub value: serde_json::Value,
    /// The record's text.
    pub text: String,
    /// When the emulator created it.
    pub created_at: DateTime<Utc>,
}

/// One Mastodon status.
#[derive(Debug, Clone, Serialize)]
pub struct MastodonStatus {
    /// The status id (increasing, as a string like Mastodon's).
    pub id: String,
    /// The text as received (`status`).
    pub text: String,
    /// The `Idempotency-Key` it was created with, if any.
    pub idempotency_key: Option<String>,
    /// When it was created.
    pub created_at: DateTime<Utc>,
}

/// Posts and sessions of the emulated networks.
#[derive(Debug, Default)]
pub struct NetworkPosts {
    bluesky: Mutex<Vec<BlueskyRecord>>,
    mastodon: Mutex<Vec<MastodonStatus>>,
    sessions: Mutex<HashSet<String>>,
    next: AtomicU64,
    /// createRecord calls refused because the record key was taken.
    rkey_conflicts: AtomicU64,
    /// Mastodon requests answered from an earlier status by their idempotency key.
    idempotent_replays: AtomicU64,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl NetworkPosts {
    /// A fresh number (ids, tokens, CIDs).
    pub fn next(&self) -> u64 {
        self.next.fetch_add(1, Ordering::Relaxed) + 1
    }

    /// Starts a session: its access token.
    pub fn open_session(&self) -> String {
        let token = format!("emulator-bluesky-access-{}", self.next());
        lock(&self.sessions).insert(token.clone());
        token
    }

    /// Whether `token` is a session's access token.
    pub fn valid_session(&self, token: &str) -> bool {
        lock(&self.sessions).contains(token)
    }

    /// The Bluesky records, in creation order.
    pub fn bluesky(&self) -> MutexGuard<'_, Vec<BlueskyRecord>> {
        lock(&self.bluesky)
    }

    /// Creates `record` unless its key is taken (`None` then, counted).
    pub fn create_bluesky(&self, record: BlueskyRecord) -> Option<BlueskyRecord> {
        let mut records = lock(&self.bluesky);
        if records.iter().any(|r| r.rkey == record.rkey) {
            self.rkey_conflicts.fetch_add(1, Ordering::Relaxed);
            return None;
        }
        records.push(record.clone());
        Some(record)
    }

    /// The Mastodon statuses, in creation order.
    pub fn mastodon(&self) -> MutexGuard<'_, Vec<MastodonStatus>> {
        lock(&self.mastodon)
    }

    /// Creates a status for `text`, or answers the one created earlier with the same
    /// `idempotency_key` (`(status, true)`).
    pub fn create_mastodon(
        &self,
        text: &str,
        idempotency_key: Option<&str>,
    ) -> (MastodonStatus, bool) {
        let mut statuses = lock(&self.mastodon);
        if let Some(key) = idempotency_key {
            if let Some(earlier) = statuses
                .iter()
                .find(|s| s.idempotency_key.as_deref() == Some(key))
            {
                self.idempotent_replays.fetch_add(1, Ordering::Relaxed);
                return (earlier.clone(), true);
            }
        }
        let status = MastodonStatus {
            id: (110_000_000_000_000_000 + self.next()).to_string(),
            text: text.to_owned(),
            idempotency_key: idempotency_key.map(str::to_owned),
            created_at: Utc::now(),
        };
        statuses.push(status.clone());
        (status, false)
    }

    /// createRecord calls refused for a taken record key.
    pub fn rkey_conflicts(&self) -> u64 {
        self.rkey_conflicts.load(Ordering::Relaxed)
    }

    /// Mastodon requests answered by idempotency key.
    pub fn idempotent_replays(&self) -> u64 {
        self.idempotent_replays.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn taken_record_keys_and_repeated_idempotency_keys_create_nothing() {
        let posts = NetworkPosts::default();
        let record = |rkey: &str| BlueskyRecord {
            uri: format!("at://did:plc:e/app.bsky.feed.post/{rkey}"),
            rkey: rkey.into(),
            cid: "bafy".into(),
            value: serde_json::json!({}),
            text: "t".into(),
            created_at: Utc::now(),
        };
        assert!(posts.create_bluesky(record("3k")).is_some());
        assert!(posts.create_bluesky(record("3k")).is_none());
        assert_eq!(posts.bluesky().len(), 1);
        assert_eq!(posts.rkey_conflicts(), 1);
        let (first, replay) = posts.create_mastodon("a", Some("k"));
        assert!(!replay);
        let (again, replay) = posts.create_mastodon("a", Some("k"));
        assert!(replay);
        assert_eq!(first.id, again.id);
        let (other, _) = posts.create_mastodon("a", None);
        assert_ne!(other.id, first.id);
        assert_eq!(posts.mastodon().len(), 2);
        let token = posts.open_session();
        assert!(posts.valid_session(&token) && !posts.valid_session("x"));
    }
}
