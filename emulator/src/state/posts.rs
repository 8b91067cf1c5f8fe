//! The posts of the emulated account, created through `POST /2/tweets` and listed by
//! `GET /2/users/:id/tweets` and `GET /_emulator/posts`.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};

use chrono::{DateTime, Utc};
use serde::Serialize;

/// One created post.
#[derive(Debug, Clone, Serialize)]
pub struct Posted {
    /// X-style id (increasing).
    pub id: String,
    /// The text as received.
    pub text: String,
    /// When it was created.
    pub created_at: DateTime<Utc>,
}

/// The posts of the emulated account.
#[derive(Debug, Default)]
pub struct PostLog {
    posts: Mutex<Vec<Posted>>,
    next_id: AtomicU64,
    duplicates_refused: AtomicU64,
    requests: AtomicU64,
}

impl PostLog {
    /// The posts, in the order they were created.
    pub fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Posted>> {
        self.posts.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Creates a post, or `None` when the account already has one with the same text.
    pub fn create(&self, text: &str) -> Option<Posted> {
        let mut posts = self.lock();
        if posts.iter().any(|p| p.text == text) {
            self.duplicates_refused.fetch_add(1, Ordering::Relaxed);
            return None;
        }
        // Snowflake-like ids: milliseconds since X's epoch shifted by 22 bits, plus a sequence.
        const X_EPOCH_MS: i64 = 1_288_834_974_657;
        let base = ((Utc::now().timestamp_millis() - X_EPOCH_MS).max(0) as u64) << 22;
        let sequence = self.next_id.fetch_add(1, Ordering::Relaxed);
        let post = Posted {
            id: (base + (sequence & 0x3F_FFFF)).to_string(),
            text: text.to_owned(),
            created_at: Utc::now(),
        };
        posts.push(post.clone());
        Some(post)
    }

    /// Counts a request to a posting endpoint (before authentication).
    pub fn count_request(&self) {
        self.requests.fetch_add(1, Ordering::Relaxed);
    }

    /// Posts refused as duplicates.
    pub fn duplicates_refused(&self) -> u64 {
        self.duplicates_refused.load(Ordering::Relaxed)
    }

    /// Requests to the posting endpoints.
    pub fn requests(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn duplicates_are_refused_and_ids_increase() {
        let log = PostLog::default();
        let a = log.create("one").unwrap();
        let b = log.create("two").unwrap();
        assert!(log.create("one").is_none());
        assert!(a.id.parse::<u64>().unwrap() < b.id.parse::<u64>().unwrap());
        assert_eq!(log.duplicates_refused(), 1);
    }
}
