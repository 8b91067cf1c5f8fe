//! The poster's copy of each scheduled post's state in SQLite (table `scheduled_posts`, in the
//! same database file as the analysis store but its own table and connection), for local
//! queries. The results topic stays the source of truth: a failed write here is logged and
//! does not stop posting.
//!
//! Migrations (`scheduler/migrations/sqlite/`) are applied at open, as the analysis store does
//! with its own. Their version is kept in the table `scheduled_posts_schema`, not in `PRAGMA
//! user_version`: the file is shared, and `user_version` is the analysis store's.

use std::path::Path;

use rusqlite::{params, Connection};

use crate::model::{PostResult, ScheduledPost};

/// The schema version this build writes (the last migration's number).
const SCHEMA_VERSION: i64 = 2;

/// The migrations, in order: (version, SQL).
const MIGRATIONS: [(i64, &str); 2] = [
    (
        1,
        include_str!("../../migrations/sqlite/0001_scheduled_posts.sql"),
    ),
    (
        2,
        include_str!("../../migrations/sqlite/0002_scheduled_posts_destination.sql"),
    ),
];

/// Why the poster store failed.
#[derive(Debug, thiserror::Error)]
pub enum PosterStoreError {
    /// SQLite refused an operation.
    #[error("sqlite: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// The file was migrated by a newer build.
    #[error("the poster tables are at schema version {found}, newer than this build's {supported}; run a newer tweet-consumer")]
    NewerSchema {
        /// The version in the file.
        found: i64,
        /// The newest version this build knows.
        supported: i64,
    },
}

/// The `scheduled_posts` table.
pub struct PosterStore {
    connection: Connection,
}

impl PosterStore {
    /// Opens (or creates) the database at `path` and brings the poster's tables up to date.
    ///
    /// # Errors
    /// When the file cannot be opened, a migration fails, or the tables are at a newer schema
    /// version than this build's.
    pub fn open(path: &Path) -> Result<Self, PosterStoreError> {
        let connection = Connection::open(path)?;
        connection.busy_timeout(std::time::Duration::from_secs(5))?;
        connection.pragma_update(None, "journal_mode", "WAL")?;
        migrate(&connection)?;
        Ok(Self { connection })
    }

    /// Records the latest outcome of a post at one destination (an upsert by id and
    /// destination).
    ///
    /// # Errors
    /// When SQLite refuses the write.
    pub fn record(
        &self,
        post: &ScheduledPost,
        result: &PostResult,
    ) -> Result<(), PosterStoreError> {
        self.connection.execute(
            "INSERT INTO scheduled_posts (id, destination, text, due_at, status, attempts, post_id, reason, lateness_seconds, updated_at)
             VALUES (?1, ?10, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)
             ON CONFLICT(id, destination) DO UPDATE SET status = excluded.status, attempts = excluded.attempts,
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
                result.destination.as_str(),
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

/// Applies the migrations newer than the file's version, each in one transaction with its
/// version row.
fn migrate(connection: &Connection) -> Result<(), PosterStoreError> {
    connection.execute_batch(
        "CREATE TABLE IF NOT EXISTS scheduled_posts_schema (
            version INTEGER PRIMARY KEY,
            applied_at TEXT NOT NULL
        );",
    )?;
    let found: i64 = connection.query_row(
        "SELECT COALESCE(MAX(version), 0) FROM scheduled_posts_schema",
        [],
        |row| row.get(0),
    )?;
    if found > SCHEMA_VERSION {
        return Err(PosterStoreError::NewerSchema {
            found,
            supported: SCHEMA_VERSION,
        });
    }
    for (version, sql) in MIGRATIONS.iter().filter(|(v, _)| *v > found) {
        let tx = connection.unchecked_transaction()?;
        tx.execute_batch(sql)?;
        tx.execute(
            "INSERT INTO scheduled_posts_schema (version, applied_at) VALUES (?1, datetime('now'))",
            params![version],
        )?;
        tx.commit()?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Destination, Outcome};
    use chrono::Utc;

    #[test]
    fn migrations_apply_once_and_refuse_a_newer_schema() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p.db");
        drop(PosterStore::open(&path).unwrap());
        let store = PosterStore::open(&path).unwrap();
        let rows: i64 = store
            .connection
            .query_row("SELECT COUNT(*) FROM scheduled_posts_schema", [], |row| {
                row.get(0)
            })
            .unwrap();
        assert_eq!(rows, 2);
        // The analysis store's version is left alone.
        let user_version: i64 = store
            .connection
            .pragma_query_value(None, "user_version", |row| row.get(0))
            .unwrap();
        assert_eq!(user_version, 0);
        store
            .connection
            .execute(
                "INSERT INTO scheduled_posts_schema VALUES (99, datetime('now'))",
                [],
            )
            .unwrap();
        drop(store);
        assert!(matches!(
            PosterStore::open(&path),
            Err(PosterStoreError::NewerSchema { found: 99, .. })
        ));
    }

    #[test]
    fn a_version_1_table_keeps_its_rows_as_xs() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p.db");
        {
            let connection = Connection::open(&path).unwrap();
            connection.execute_batch(MIGRATIONS[0].1).unwrap();
            connection
                .execute_batch(
                    "CREATE TABLE scheduled_posts_schema (version INTEGER PRIMARY KEY, applied_at TEXT NOT NULL);
                     INSERT INTO scheduled_posts_schema VALUES (1, datetime('now'));
                     INSERT INTO scheduled_posts (id, text, due_at, status, attempts, updated_at)
                     VALUES ('sp-old', 't', '2026-01-01T00:00:00Z', 'posted', 1, '2026-01-01T00:00:01Z');",
                )
                .unwrap();
        }
        let store = PosterStore::open(&path).unwrap();
        let destination: String = store
            .connection
            .query_row(
                "SELECT destination FROM scheduled_posts WHERE id = 'sp-old'",
                [],
                |row| row.get(0),
            )
            .unwrap();
        assert_eq!(destination, "x");
        assert_eq!(store.count("posted").unwrap(), 1);
    }

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
            destinations: vec![Destination::X, Destination::Mastodon],
        };
        let mut result = PostResult {
            id: "sp-1".into(),
            destination: Destination::X,
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
        // Another destination of the same post is a row of its own.
        result.destination = Destination::Mastodon;
        result.outcome = Outcome::Failed;
        store.record(&post, &result).unwrap();
        assert_eq!(store.count("posted").unwrap(), 1);
        assert_eq!(store.count("failed").unwrap(), 1);
    }
}
