//! The SQLite store: one embedded file in WAL mode with `synchronous=FULL`, so a committed
//! batch survives a crash or power loss before its Kafka offsets are stored (SQLite docs,
//! "PRAGMA synchronous"); the schema is versioned by `PRAGMA user_version`.

use std::path::Path;

use rusqlite::{params, Connection, OptionalExtension as _};

use super::{
    BatchLog, BatchOutcome, BeforeCommitError, Erased, LanguageSentiment, ReportRow, StoreError,
    Write, REPORT_QUERY,
};

/// Current schema version (`PRAGMA user_version`).
const SCHEMA_VERSION: i64 = 1;

const SCHEMA_V1: &str = include_str!("../../migrations/sqlite/0001_init.sql");

/// The SQLite store.
pub struct SqliteStore {
    conn: Connection,
}

impl SqliteStore {
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
            return Err(StoreError::NewerSchema {
                found: version,
                supported: SCHEMA_VERSION,
            });
        }
        if version < 1 {
            conn.execute_batch(SCHEMA_V1)?;
            conn.pragma_update(None, "user_version", SCHEMA_VERSION)?;
        }
        Ok(Self { conn })
    }

    /// Applies `writes` in order, in one transaction.
    ///
    /// # Errors
    /// When SQLite fails; nothing of the batch is then stored.
    pub fn apply(
        &mut self,
        writes: &[Write],
        now_ms: i64,
        before_commit: impl FnOnce(&[Erased]) -> Result<(), BeforeCommitError>,
    ) -> Result<BatchOutcome, StoreError> {
        let tx = self.conn.transaction()?;
        let mut log = BatchLog::default();
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
            let mut delete =
                tx.prepare_cached("DELETE FROM posts WHERE id = ?1 RETURNING source_topic")?;
            for write in writes {
                match write {
                    Write::Upsert(row) => {
                        let (compound, pos, neu, neg, label) = row.sentiment_columns();
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
                        log.upserted(row, changed > 0);
                    }
                    Write::Delete { id, source } => {
                        remember_delete.execute(params![
                            id,
                            now_ms,
                            source.topic,
                            source.partition,
                            source.offset
                        ])?;
                        let removed_from =
                            delete.query_row(params![id], |row| row.get(0)).optional()?;
                        log.deleted(id, removed_from);
                    }
                }
            }
        }
        before_commit(&log.erased).map_err(StoreError::BeforeCommit)?;
        tx.commit()?;
        Ok(log.outcome)
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

    /// Every stored post, for the report.
    ///
    /// # Errors
    /// When SQLite fails.
    pub fn report_rows(&self) -> Result<Vec<ReportRow>, StoreError> {
        let mut statement = self.conn.prepare(REPORT_QUERY)?;
        let rows = statement.query_map([], |row| {
            Ok(ReportRow {
                created_at: row.get(0)?,
                received_at_ms: row.get(1)?,
                lang: row.get(2)?,
                detected_lang: row.get(3)?,
                sentiment_compound: row.get(4)?,
                text: row.get(5)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{PostRow, SourcePosition};

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
            detected_confidence: Some(0.9),
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
        let mut store = SqliteStore::open(&dir.path().join("t.db")).unwrap();
        let batch = vec![
            Write::Upsert(Box::new(row("1", 0))),
            Write::Upsert(Box::new(row("2", 1))),
        ];
        store.apply(&batch, 10, |_| Ok(())).unwrap();
        store.apply(&batch, 11, |_| Ok(())).unwrap();
        assert_eq!(store.post_count().unwrap(), 2);
    }

    #[test]
    fn deletes_win_in_either_order() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = SqliteStore::open(&dir.path().join("t.db")).unwrap();
        // post then delete
        store
            .apply(
                &[Write::Upsert(Box::new(row("1", 0))), delete("1")],
                1,
                |_| Ok(()),
            )
            .unwrap();
        // delete then post
        let outcome = store
            .apply(
                &[delete("2"), Write::Upsert(Box::new(row("2", 5)))],
                2,
                |_| Ok(()),
            )
            .unwrap();
        assert_eq!(outcome.rows_suppressed, 1);
        // a replay of the post after its delete
        store
            .apply(&[Write::Upsert(Box::new(row("1", 0)))], 3, |_| Ok(()))
            .unwrap();
        assert!(!store.contains("1").unwrap());
        assert!(!store.contains("2").unwrap());
        assert_eq!(store.post_count().unwrap(), 0);
    }

    #[test]
    fn reopening_keeps_rows_and_schema() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.db");
        SqliteStore::open(&path)
            .unwrap()
            .apply(&[Write::Upsert(Box::new(row("1", 0)))], 1, |_| Ok(()))
            .unwrap();
        let store = SqliteStore::open(&path).unwrap();
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
