//! The store: one row per post id, written in one transaction per batch, in an embedded SQLite
//! file or, to scale out over several consumer instances, a PostgreSQL server
//! ([`postgres`](self::postgres)); [`Store`] is either, with the same schema and semantics.
//!
//! Writes are idempotent, so replaying records (at-least-once delivery) never doubles a row:
//! a post is an upsert by id, a delete removes the row and remembers the id in
//! `deleted_posts`, and an upsert of a remembered id is a no-op, whichever of the two arrives
//! first. The database runs in WAL mode with `synchronous=FULL`, so a committed batch survives
//! a crash or power loss before its Kafka offsets are stored (SQLite docs, "PRAGMA synchronous").

mod postgres;

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use rusqlite::{params, Connection, OptionalExtension as _};
use tweet_pipeline_common::secret::Secret;

pub use self::postgres::PgStore;

/// Current schema version (`PRAGMA user_version`).
const SCHEMA_VERSION: i64 = 1;

const SCHEMA_V1: &str = include_str!("../migrations/sqlite/0001_init.sql");

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
    /// Detection confidence in [0, 1], when the detector gives one (whatlang does).
    pub detected_confidence: Option<f64>,
    /// VADER (compound, pos, neu, neg, label) for English text.
    pub sentiment: Option<(f64, f64, f64, f64, &'static str)>,
    /// When the producer received the line, Unix ms.
    pub received_at_ms: Option<i64>,
    /// Where the record was read.
    pub source: SourcePosition,
}

/// A post a batch took out of the store or kept out of it: the raw record that carried it (in
/// `topic`, keyed by `id`) should be erased from Kafka with a tombstone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Erased {
    /// The topic the post's record was read from.
    pub topic: String,
    /// The post id (the record key).
    pub id: String,
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

/// What a batch changed and erased so far, kept the same way by both backends.
#[derive(Default)]
struct BatchLog {
    outcome: BatchOutcome,
    erased: Vec<Erased>,
}

impl BatchLog {
    /// An upsert of `row` that wrote a row (`written`) or was refused because the post was
    /// deleted (its record is then erased too).
    fn upserted(&mut self, row: &PostRow, written: bool) {
        if written {
            self.outcome.rows_written += 1;
        } else {
            self.outcome.rows_suppressed += 1;
            self.erased.push(Erased {
                topic: row.source.topic.clone(),
                id: row.id.clone(),
            });
        }
    }

    /// A delete notice for `id`; `removed_from` is the topic of the row it removed, if any.
    fn deleted(&mut self, id: &str, removed_from: Option<String>) {
        if let Some(topic) = removed_from {
            self.erased.push(Erased {
                topic,
                id: id.to_owned(),
            });
        }
        self.outcome.deletes_applied += 1;
    }
}

/// `sentiment_compound`, `_pos`, `_neu`, `_neg` and `_label`, `NULL` without a score.
type SentimentColumns = (
    Option<f64>,
    Option<f64>,
    Option<f64>,
    Option<f64>,
    Option<&'static str>,
);

impl PostRow {
    /// The sentiment columns (compound, pos, neu, neg, label), all `None` without a score.
    fn sentiment_columns(&self) -> SentimentColumns {
        match self.sentiment {
            Some((c, p, n, g, l)) => (Some(c), Some(p), Some(n), Some(g), Some(l)),
            None => (None, None, None, None, None),
        }
    }
}

/// Why the work done before a store commit failed (the batch is then not stored).
pub type BeforeCommitError = Box<dyn std::error::Error + Send + Sync>;

/// Store errors.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The caller's work before the commit failed; nothing of the batch was stored.
    #[error("before the store commit: {0}")]
    BeforeCommit(#[source] BeforeCommitError),
    /// SQLite failed (disk full, locked past the busy timeout, corrupt file, ...).
    #[error("sqlite: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// PostgreSQL failed (connection refused or lost, authentication, a statement failed).
    /// The message never contains the connection string.
    #[error("postgres: {0}")]
    Postgres(#[from] ::postgres::Error),
    /// The database holds a newer schema than this binary knows.
    #[error("database schema version {found} is newer than this tweet-consumer supports ({supported}); upgrade tweet-consumer")]
    NewerSchema {
        /// The version found in the database.
        found: i64,
        /// The newest version this binary knows.
        supported: i64,
    },
}

/// Where the store lives: `--db` takes a SQLite file path or a PostgreSQL connection URL
/// (`postgres://` or `postgresql://`, libpq's URI form, e.g.
/// `postgres://user:password@db.example:5432/tweets`).
///
/// `Debug` and `Display` never show a password: a URL prints as `postgres://user@host:port/db`.
#[derive(Clone, PartialEq, Eq)]
pub enum StoreLocation {
    /// A SQLite file, created if missing.
    Sqlite(PathBuf),
    /// A PostgreSQL URL; it may carry a password, so it stays a [`Secret`].
    Postgres(Secret),
}

impl FromStr for StoreLocation {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.starts_with("postgres://") || s.starts_with("postgresql://") {
            // Parsed here only to fail at start-up with a clear line; the error names no value.
            s.parse::<::postgres::Config>()
                .map_err(|_| "invalid PostgreSQL URL (expected postgres://user[:password]@host[:port]/database[?options])".to_owned())?;
            Ok(Self::Postgres(Secret::new(s)))
        } else if s.is_empty() {
            Err("empty store location".to_owned())
        } else {
            Ok(Self::Sqlite(PathBuf::from(s)))
        }
    }
}

impl fmt::Display for StoreLocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Sqlite(path) => write!(f, "{}", path.display()),
            Self::Postgres(url) => f.write_str(&postgres::redacted(url)),
        }
    }
}

impl fmt::Debug for StoreLocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "StoreLocation({self})")
    }
}

/// One post as the report reads it (see `tweet-consumer report`).
#[derive(Debug, Clone, PartialEq)]
pub struct ReportRow {
    /// Creation time, RFC 3339 UTC.
    pub created_at: Option<String>,
    /// When the producer received the line, Unix ms.
    pub received_at_ms: Option<i64>,
    /// The platform's language tag.
    pub lang: Option<String>,
    /// Detected language code.
    pub detected_lang: Option<String>,
    /// VADER compound score in [-1, 1], English only.
    pub sentiment_compound: Option<f64>,
    /// Analysed text.
    pub text: String,
}

/// The columns of [`ReportRow`], in order; the same SQL on both backends.
const REPORT_QUERY: &str =
    "SELECT created_at, received_at_ms, lang, detected_lang, sentiment_compound, text FROM posts";

/// The store: SQLite or PostgreSQL, the same operations and semantics on both.
pub enum Store {
    /// An embedded SQLite file (one consumer instance, or several on one machine).
    Sqlite(SqliteStore),
    /// A PostgreSQL server (any number of consumer instances).
    Postgres(Box<PgStore>),
}

impl Store {
    /// Opens the store at `location`, creating the SQLite file or applying PostgreSQL
    /// migrations as needed.
    ///
    /// # Errors
    /// When the database cannot be opened or reached, or holds a newer schema.
    pub fn open(location: &StoreLocation) -> Result<Self, StoreError> {
        Ok(match location {
            StoreLocation::Sqlite(path) => Self::Sqlite(SqliteStore::open(path)?),
            StoreLocation::Postgres(url) => Self::Postgres(Box::new(PgStore::connect(url)?)),
        })
    }

    /// Applies `writes` in order, in one transaction; see [`SqliteStore::apply`]. Before the
    /// transaction commits, `before_commit` gets the posts the batch erased (rows a delete
    /// removed, upserts refused because the post was deleted); if it fails, nothing of the
    /// batch is stored, so a retry sees the same posts again.
    ///
    /// # Errors
    /// When the database fails; nothing of the batch is then stored.
    pub fn apply(
        &mut self,
        writes: &[Write],
        now_ms: i64,
        before_commit: impl FnOnce(&[Erased]) -> Result<(), BeforeCommitError>,
    ) -> Result<BatchOutcome, StoreError> {
        match self {
            Self::Sqlite(store) => store.apply(writes, now_ms, before_commit),
            Self::Postgres(store) => store.apply(writes, now_ms, before_commit),
        }
    }

    /// Posts per detected language and sentiment label, most frequent languages first.
    ///
    /// # Errors
    /// When the database fails.
    pub fn language_sentiment_table(&mut self) -> Result<Vec<LanguageSentiment>, StoreError> {
        match self {
            Self::Sqlite(store) => store.language_sentiment_table(),
            Self::Postgres(store) => store.language_sentiment_table(),
        }
    }

    /// Every stored post's time, languages, compound score and text, for the report.
    ///
    /// # Errors
    /// When the database fails.
    pub fn report_rows(&mut self) -> Result<Vec<ReportRow>, StoreError> {
        match self {
            Self::Sqlite(store) => store.report_rows(),
            Self::Postgres(store) => store.report_rows(),
        }
    }
}

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
    fn locations_are_paths_or_urls_and_never_show_a_password() {
        let sqlite: StoreLocation = "data/tweets.db".parse().unwrap();
        assert_eq!(
            sqlite,
            StoreLocation::Sqlite(PathBuf::from("data/tweets.db"))
        );
        for url in [
            "postgres://app:hunter2@db:5433/tweets",
            "postgresql://app:hunter2@db:5433/tweets",
        ] {
            let location: StoreLocation = url.parse().unwrap();
            assert!(matches!(location, StoreLocation::Postgres(_)));
            assert_eq!(location.to_string(), "postgres://app@db:5433/tweets");
            assert!(!format!("{location:?}").contains("hunter2"));
        }
        let error = "postgres://app:hunter2@db:notaport/x"
            .parse::<StoreLocation>()
            .unwrap_err();
        assert!(!error.contains("hunter2"), "{error}");
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
