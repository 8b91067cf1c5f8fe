//! The embedded store: SQLite, one row per post id, written in one transaction per batch.
//!
//! Writes are idempotent, so replaying records (at-least-once delivery) never doubles a row:
//! a post is an upsert by id, a delete removes the row and remembers the id in
//! `deleted_posts`, and an upsert of a remembered id is a no-op, whichever of the two arrives
//! first. The database runs in WAL mode with `synchronous=FULL`, so a committed batch survives
//! a crash or power loss before its Kafka offsets are stored (SQLite docs, "PRAGMA synchronous").

use std::path::Path;

use rusqlite::{params, Connection};

/// Current schema version (`PRAGMA user_version`).
const SCHEMA_VERSION: i64 = 1;

const SCHEMA_V1: &str = "
CREATE TABLE IF NOT EXISTS posts (
    id                  TEXT PRIMARY KEY,   -- post id (decimal string)
    kind                TEXT NOT NULL,      -- 'tweet' | 'retweet'
    retweet_of          TEXT,               -- original post id, for a retweet
    created_at          TEXT,               -- RFC 3339, UTC
    author              TEXT,
    text                TEXT NOT NULL,      -- the analysed text (the original's, for a retweet)
    lang                TEXT,               -- the platform's own language tag
    detected_lang       TEXT,               -- whatlang: ISO 639-1 (else 639-3)
    detected_confidence REAL,
    sentiment_compound  REAL,               -- VADER, English only
    sentiment_pos       REAL,
    sentiment_neu       REAL,
    sentiment_neg       REAL,
    sentiment_label     TEXT,               -- 'positive' | 'neutral' | 'negative' | NULL
    source_topic        TEXT NOT NULL,      -- where the record was read: topic, partition, offset
    source_partition    INTEGER NOT NULL,
    source_offset       INTEGER NOT NULL,
    received_at_ms      INTEGER,            -- when the producer received the line (Unix ms)
    stored_at_ms        INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS posts_lang_sentiment ON posts (detected_lang, sentiment_label);
CREATE TABLE IF NOT EXISTS deleted_posts (
    id               TEXT PRIMARY KEY,      -- a post the author deleted: never stored again
    deleted_at_ms    INTEGER NOT NULL,
    source_topic     TEXT NOT NULL,
    source_partition INTEGER NOT NULL,
    source_offset    INTEGER NOT NULL
);
";

/// Where a record was read from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourcePosition {
    /// Topic name.
    pub topic: String,
    /// Partition number.
    pub partition: i32,
    /// Offset within the partition.
    pub offset: i64,
}

/// One analysed post, as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct PostRow {
    /// Post id.
    pub id: String,
    /// `tweet` or `retweet`.
    pub kind: &'static str,
    /// Original post id, for a retweet.
    pub retweet_of: Option<String>,
    /// Creation time, RFC 3339 UTC.
    pub created_at: Option<String>,
    /// Author handle.
    pub author: Option<String>,
    /// Analysed text.
    pub text: String,
    /// The platform's language tag.
    pub lang: Option<String>,
    /// Detected language code.
    pub detected_lang: Option<&'static str>,
    /// Detection confidence in [0, 1].
    pub detected_confidence: f64,
    /// VADER (compound, pos, neu, neg, label) for English text.
    pub sentiment: Option<(f64, f64, f64, f64, &'static str)>,
    /// When the producer received the line, Unix ms.
    pub received_at_ms: Option<i64>,
    /// Where the record was read.
    pub source: SourcePosition,
}

/// One change to the store.
#[derive(Debug, Clone, PartialEq)]
pub enum Write {
    /// Insert or replace a post (unless its id was deleted).
    Upsert(Box<PostRow>),
    /// Delete a post and keep it from being stored later.
    Delete {
        /// The deleted post's id.
        id: String,
        /// Where the delete notice was read.
        source: SourcePosition,
    },
}

/// Posts of one detected language by sentiment label.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LanguageSentiment {
    /// Detected language code, `?` when undetected.
    pub language: String,
    /// Posts labelled positive.
    pub positive: u64,
    /// Posts labelled neutral.
    pub neutral: u64,
    /// Posts labelled negative.
    pub negative: u64,
    /// Posts without a sentiment (not English).
    pub unscored: u64,
}

impl LanguageSentiment {
    /// All posts of the language.
    pub fn total(&self) -> u64 {
        self.positive + self.neutral + self.negative + self.unscored
    }
}

/// What one batch changed.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct BatchOutcome {
    /// Rows inserted or updated.
    pub rows_written: u64,
    /// Upserts skipped because the post was deleted.
    pub rows_suppressed: u64,
    /// Delete notices applied.
    pub deletes_applied: u64,
}

/// Store errors.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// SQLite failed (disk full, locked past the busy timeout, corrupt file, ...).
    #[error("sqlite: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// The file holds a newer schema than this binary knows.
    #[error("database schema version {found} is newer than this tweet-consumer supports ({SCHEMA_VERSION}); upgrade tweet-consumer")]
    NewerSchema {
        /// The version found in the file.
        found: i64,
    },
}

/// The SQLite store.
pub struct Store {
    conn: Connection,
}

impl Store {
    /// Opens (creating if needed) the database at `path` and brings its schema up to date.
    ///
    /// # Errors
    /// When the file cannot be opened or created, or holds a newer schema.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let conn = Connection::open(path)?;
        conn.busy_timeout(std::time::Duration::from_secs(10))?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        let version: i64 = conn.pragma_query_value(None, "user_version", |row| row.get(0))?;
        if version > SCHEMA_VERSION {
            return Err(StoreError::NewerSchema { found: version });
        }
        if version < 1 {
            conn.execute_batch(SCHEMA_V1)?;
            conn.pragma_update(None, "user_version", SCHEMA_VERSION)?;
        }
        Ok(Self { conn })
    }

    /// Whether a delete notice for `id` has been applied.
    ///
    /// # Errors
    /// When SQLite fails.
    pub fn is_deleted(&self, id: &str) -> Result<bool, StoreError> {
        let mut query = self
            .conn
            .prepare_cached("SELECT 1 FROM deleted_posts WHERE id = ?1")?;
        Ok(query.exists([id])?)
    }

    /// Applies `writes` in order, in one transaction.
    ///
    /// # Errors
    /// When SQLite fails; nothing of the batch is then stored.
    pub fn apply(&mut self, writes: &[Write], now_ms: i64) -> Result<BatchOutcome, StoreError> {
        let tx = self.conn.transaction()?;
        let mut outcome = BatchOutcome::default();
        {
            // `INSERT ... SELECT ... WHERE NOT EXISTS`: a deleted id is never stored again.
            // The `WHERE` also resolves SQLite's parsing ambiguity of SELECT + ON CONFLICT.
            let mut upsert = tx.prepare_cached(
                "INSERT INTO posts (id, kind, retweet_of, created_at, author, text, lang,
                    detected_lang, detected_confidence, sentiment_compound, sentiment_pos,
                    sentiment_neu, sentiment_neg, sentiment_label, source_topic,
                    source_partition, source_offset, received_at_ms, stored_at_ms)
                 SELECT ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19
                 WHERE NOT EXISTS (SELECT 1 FROM deleted_posts WHERE id = ?1)
                 ON CONFLICT(id) DO UPDATE SET
                    kind = excluded.kind, retweet_of = excluded.retweet_of,
                    created_at = excluded.created_at, author = excluded.author,
                    text = excluded.text, lang = excluded.lang,
                    detected_lang = excluded.detected_lang,
                    detected_confidence = excluded.detected_confidence,
                    sentiment_compound = excluded.sentiment_compound,
                    sentiment_pos = excluded.sentiment_pos, sentiment_neu = excluded.sentiment_neu,
                    sentiment_neg = excluded.sentiment_neg,
                    sentiment_label = excluded.sentiment_label,
                    source_topic = excluded.source_topic,
                    source_partition = excluded.source_partition,
                    source_offset = excluded.source_offset,
                    received_at_ms = excluded.received_at_ms,
                    stored_at_ms = excluded.stored_at_ms",
            )?;
            let mut remember_delete = tx.prepare_cached(
                "INSERT INTO deleted_posts (id, deleted_at_ms, source_topic, source_partition, source_offset)
                 VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT(id) DO NOTHING",
            )?;
            let mut delete = tx.prepare_cached("DELETE FROM posts WHERE id = ?1")?;
            for write in writes {
                match write {
                    Write::Upsert(row) => {
                        let (compound, pos, neu, neg, label) = match row.sentiment {
                            Some((c, p, n, g, l)) => (Some(c), Some(p), Some(n), Some(g), Some(l)),
                            None => (None, None, None, None, None),
                        };
                        let changed = upsert.execute(params![
                            row.id,
                            row.kind,
                            row.retweet_of,
                            row.created_at,
                            row.author,
                            row.text,
                            row.lang,
                            row.detected_lang,
                            row.detected_confidence,
                            compound,
                            pos,
                            neu,
                            neg,
                            label,
                            row.source.topic,
                            row.source.partition,
                            row.source.offset,
                            row.received_at_ms,
                            now_ms,
                        ])?;
                        if changed > 0 {
                            outcome.rows_written += 1;
                        } else {
                            outcome.rows_suppressed += 1;
                        }
                    }
                    Write::Delete { id, source } => {
                        remember_delete.execute(params![
                            id,
                            now_ms,
                            source.topic,
                            source.partition,
                            source.offset
                        ])?;
                        delete.execute(params![id])?;
                        outcome.deletes_applied += 1;
                    }
                }
            }
        }
        tx.commit()?;
        Ok(outcome)
    }

    /// Number of stored posts.
    ///
    /// # Errors
    /// When SQLite fails.
    #[cfg(test)]
    pub fn post_count(&self) -> Result<u64, StoreError> {
        Ok(self
            .conn
            .query_row("SELECT COUNT(*) FROM posts", [], |row| row.get(0))?)
    }

    /// Whether a post is stored.
    ///
    /// # Errors
    /// When SQLite fails.
    #[cfg(test)]
    pub fn contains(&self, id: &str) -> Result<bool, StoreError> {
        use rusqlite::OptionalExtension as _;
        Ok(self
            .conn
            .query_row("SELECT 1 FROM posts WHERE id = ?1", [id], |_| Ok(()))
            .optional()?
            .is_some())
    }

    /// Posts per detected language and sentiment label, most frequent languages first.
    ///
    /// # Errors
    /// When SQLite fails.
    pub fn language_sentiment_table(&self) -> Result<Vec<LanguageSentiment>, StoreError> {
        let mut statement = self.conn.prepare(
            "SELECT COALESCE(detected_lang, '?') AS language,
                    SUM(CASE WHEN sentiment_label = 'positive' THEN 1 ELSE 0 END),
                    SUM(CASE WHEN sentiment_label = 'neutral' THEN 1 ELSE 0 END),
                    SUM(CASE WHEN sentiment_label = 'negative' THEN 1 ELSE 0 END),
                    SUM(CASE WHEN sentiment_label IS NULL THEN 1 ELSE 0 END)
             FROM posts GROUP BY language ORDER BY COUNT(*) DESC, language",
        )?;
        let rows = statement.query_map([], |row| {
            Ok(LanguageSentiment {
                language: row.get(0)?,
                positive: row.get(1)?,
                neutral: row.get(2)?,
                negative: row.get(3)?,
                unscored: row.get(4)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(id: &str, offset: i64) -> PostRow {
        PostRow {
            id: id.to_owned(),
            kind: "tweet",
            retweet_of: None,
            created_at: None,
            author: Some("a".to_owned()),
            text: "hello".to_owned(),
            lang: Some("en".to_owned()),
            detected_lang: Some("en"),
            detected_confidence: 0.9,
            sentiment: Some((0.5, 0.5, 0.5, 0.0, "positive")),
            received_at_ms: Some(1),
            source: SourcePosition {
                topic: "tweets".to_owned(),
                partition: 0,
                offset,
            },
        }
    }

    fn delete(id: &str) -> Write {
        Write::Delete {
            id: id.to_owned(),
            source: SourcePosition {
                topic: "control".to_owned(),
                partition: 0,
                offset: 0,
            },
        }
    }

    #[test]
    fn upserts_are_idempotent() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open(&dir.path().join("t.db")).unwrap();
        let batch = vec![
            Write::Upsert(Box::new(row("1", 0))),
            Write::Upsert(Box::new(row("2", 1))),
        ];
        store.apply(&batch, 10).unwrap();
        store.apply(&batch, 11).unwrap();
        assert_eq!(store.post_count().unwrap(), 2);
    }

    #[test]
    fn deletes_win_in_either_order() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open(&dir.path().join("t.db")).unwrap();
        // post then delete
        store
            .apply(&[Write::Upsert(Box::new(row("1", 0))), delete("1")], 1)
            .unwrap();
        // delete then post
        let outcome = store
            .apply(&[delete("2"), Write::Upsert(Box::new(row("2", 5)))], 2)
            .unwrap();
        assert_eq!(outcome.rows_suppressed, 1);
        // a replay of the post after its delete
        store
            .apply(&[Write::Upsert(Box::new(row("1", 0)))], 3)
            .unwrap();
        assert!(!store.contains("1").unwrap());
        assert!(!store.contains("2").unwrap());
        assert_eq!(store.post_count().unwrap(), 0);
    }

    #[test]
    fn reopening_keeps_rows_and_schema() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.db");
        Store::open(&path)
            .unwrap()
            .apply(&[Write::Upsert(Box::new(row("1", 0)))], 1)
            .unwrap();
        let store = Store::open(&path).unwrap();
        assert_eq!(store.post_count().unwrap(), 1);
        let table = store.language_sentiment_table().unwrap();
        let en = LanguageSentiment {
            language: "en".to_owned(),
            positive: 1,
            neutral: 0,
            negative: 0,
            unscored: 0,
        };
        assert_eq!(table, vec![en]);
    }
}
