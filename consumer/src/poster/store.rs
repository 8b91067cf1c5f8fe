//! The poster's copy of each scheduled post's state in SQLite (table `scheduled_posts`, in the
//! same database file as the analysis store but its own table and connection), for local
//! queries. The results topic stays the source of truth: a failed write here is logged and
//! does not stop posting.

use std::path::Path;

use rusqlite::{params, Connection};
use tweet_pipeline_common::scheduled::{PostResult, ScheduledPost};

/// Why the poster store failed.
#[derive(Debug, thiserror::Error)]
pub enum PosterStoreError {
    /// SQLite refused an operation.
    #[error("sqlite: {0}")]
    Sqlite(#[from] rusqlite::Error),
}

/// The `scheduled_posts` table.
pub struct PosterStore {
    connection: Connection,
}

impl PosterStore {
    /// Opens (or creates) the database at `path` and the table.
    ///
    /// # Errors
    /// When the file cannot be opened or the table created.
    pub fn open(path: &Path) -> Result<Self, PosterStoreError> {
        let connection = Connection::open(path)?;
        connection.busy_timeout(std::time::Duration::from_secs(5))?;
        connection.pragma_update(None, "journal_mode", "WAL")?;
        connection.execute_batch(
            "CREATE TABLE IF NOT EXISTS scheduled_posts (
                id TEXT PRIMARY KEY,
                text TEXT NOT NULL,
                due_at TEXT NOT NULL,
                status TEXT NOT NULL,
                attempts INTEGER NOT NULL,
                post_id TEXT,
                reason TEXT,
                lateness_seconds REAL,
                updated_at TEXT NOT NULL
            );",
        )?;
        Ok(Self { connection })
    }

    /// Records the latest outcome of a post (an upsert by id).
    ///
    /// # Errors
    /// When SQLite refuses the write.
    pub fn record(
        &self,
        post: &ScheduledPost,
        result: &PostResult,
    ) -> Result<(), PosterStoreError> {
        self.connection.execute(
            "INSERT INTO scheduled_posts (id, text, due_at, status, attempts, post_id, reason, lateness_seconds, updated_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)
             ON CONFLICT(id) DO UPDATE SET status = excluded.status, attempts = excluded.attempts,
                post_id = COALESCE(excluded.post_id, post_id), reason = excluded.reason,
                lateness_seconds = COALESCE(excluded.lateness_seconds, lateness_seconds),
                updated_at = excluded.updated_at",
            params![
                post.id,
                post.text,
                post.due_at.to_rfc3339(),
                result.outcome.as_str(),
                result.attempt,
                result.post_id,
                result.reason,
                result.lateness_seconds,
                result.at.to_rfc3339(),
            ],
        )?;
        Ok(())
    }

    /// Posts per status (for tests and a quick look).
    ///
    /// # Errors
    /// When SQLite refuses the query.
    #[cfg(test)]
    pub fn count(&self, status: &str) -> Result<u64, PosterStoreError> {
        Ok(self.connection.query_row(
            "SELECT COUNT(*) FROM scheduled_posts WHERE status = ?1",
            params![status],
            |row| row.get(0),
        )?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Utc;
    use tweet_pipeline_common::scheduled::Outcome;

    #[test]
    fn latest_outcome_wins() {
        let dir = tempfile::tempdir().unwrap();
        let store = PosterStore::open(&dir.path().join("p.db")).unwrap();
        let now = Utc::now();
        let post = ScheduledPost {
            id: "sp-1".into(),
            text: "t".into(),
            due_at: now,
            created_at: now,
            source: "cli".into(),
        };
        let mut result = PostResult {
            id: "sp-1".into(),
            outcome: Outcome::Attempt,
            at: now,
            due_at: now,
            attempt: 1,
            post_id: None,
            lateness_seconds: None,
            reason: None,
            retry_at: None,
            reconciled: false,
            by: "t".into(),
        };
        store.record(&post, &result).unwrap();
        result.outcome = Outcome::Posted;
        result.post_id = Some("9".into());
        store.record(&post, &result).unwrap();
        assert_eq!(store.count("posted").unwrap(), 1);
        assert_eq!(store.count("attempt").unwrap(), 0);
    }
}
