//! The store: one row per post id, written in one transaction per batch, in an embedded SQLite
//! file ([`sqlite`](self::sqlite)) or, to scale out over several consumer instances, a
//! PostgreSQL server ([`postgres`](self::postgres)); [`Store`] is either, with the same schema
//! and semantics. This module holds what both share: the location, the rows, the errors.
//!
//! Writes are idempotent, so replaying records (at-least-once delivery) never doubles a row:
//! a post is an upsert by id, a delete removes the row and remembers the id in
//! `deleted_posts`, and an upsert of a remembered id is a no-op, whichever of the two arrives
//! first. A Bluesky repost carries no text: its row takes its subject's text and analysis
//! whenever the subject's row is stored, before or after it ([`TextFrom`]), and loses them
//! when the subject is deleted, so the rows do not depend on the order records arrive in.
//! The database runs in WAL mode with `synchronous=FULL`, so a committed batch survives
//! a crash or power loss before its Kafka offsets are stored (SQLite docs, "PRAGMA synchronous").

mod postgres;
mod sqlite;

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

use tweet_pipeline_common::secret::Secret;

pub use self::postgres::PgStore;
pub use self::sqlite::SqliteStore;

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
    /// Hashtags without `#`, as a JSON array (`["nba","tag"]`); `None` when there are none.
    pub hashtags: Option<String>,
    /// Mentioned accounts (Bluesky DIDs), as a JSON array; `None` when there are none.
    pub mentions: Option<String>,
    /// The id of the post replied to.
    pub reply_to: Option<String>,
    /// The id of the post quoted.
    pub quote_of: Option<String>,
    /// A Bluesky embed kind (`images`, `video`, `external`, `record`, `recordWithMedia`,
    /// `other`).
    pub embed: Option<&'static str>,
    /// Where `text` comes from; [`TextFrom::Missing`] asks the store to fill the row from its
    /// subject's.
    pub text_from: TextFrom,
    /// Whether rows of reposts of this post follow it (a Bluesky post): when it is stored they
    /// take its text and analysis, when it is deleted they lose them.
    pub reposts_follow: bool,
}

/// Where a row's `text` (and so its language and sentiment) comes from; stored in `text_from`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TextFrom {
    /// The record carried it (posts; an X retweet or Mastodon reblog carries its original).
    Record,
    /// A Bluesky repost whose subject is stored: the subject's text, `lang`, detected
    /// language and sentiment, copied by the store.
    Subject,
    /// A Bluesky repost whose subject is not stored: `text` is empty and `lang`, the detected
    /// language and the sentiment are `NULL`, until the subject's row is stored.
    Missing,
}

impl TextFrom {
    /// `record`, `subject` or `missing`, as stored.
    pub fn as_str(self) -> &'static str {
        match self {
            TextFrom::Record => "record",
            TextFrom::Subject => "subject",
            TextFrom::Missing => "missing",
        }
    }
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
        /// Whether rows of reposts of the post follow it ([`PostRow::reposts_follow`]): they
        /// lose the text and analysis they took from it.
        reposts_follow: bool,
    },
    /// Record a `withheld` compliance event on a stored post (the post stays): its JSON line
    /// goes to the `withheld` column; nothing happens for a post not stored.
    Withheld {
        /// The post id.
        id: String,
        /// The compliance event's JSON line.
        event: String,
    },
}

/// X post ids due for a compliance check, oldest check first: `$1` stored before, `$2`
/// checked before (or never), `$3` at most. Only numeric ids (X's): Bluesky AT URIs are left
/// out. (Mastodon status ids are numeric too: run the runner only on stores fed by X.)
const COMPLIANCE_DUE: &str = "SELECT id FROM posts
    WHERE stored_at_ms <= $1
      AND (compliance_checked_at_ms IS NULL OR compliance_checked_at_ms <= $2)
      AND id NOT LIKE 'at://%'
    ORDER BY compliance_checked_at_ms IS NOT NULL, compliance_checked_at_ms, stored_at_ms
    LIMIT $3";

/// Post `$2` was checked at `$1` (Unix ms). (Parameters in the order they appear: SQLite
/// numbers `$N` names by first appearance.)
const MARK_CHECKED: &str = "UPDATE posts SET compliance_checked_at_ms = $1 WHERE id = $2";

/// Post `$2` is withheld: `$1` is the compliance event's JSON line.
const RECORD_WITHHELD: &str = "UPDATE posts SET withheld = $1 WHERE id = $2";

/// The columns a repost's row takes from its subject's row `s` ([`TextFrom::Subject`]).
/// (`$1` is the first parameter in both SQLite and PostgreSQL.)
const SUBJECT_COLUMNS: &str = "text = s.text, lang = s.lang, detected_lang = s.detected_lang,
    detected_confidence = s.detected_confidence, sentiment_compound = s.sentiment_compound,
    sentiment_pos = s.sentiment_pos, sentiment_neu = s.sentiment_neu,
    sentiment_neg = s.sentiment_neg, sentiment_label = s.sentiment_label,
    text_from = 'subject'";

/// A repost `$1` stored as [`TextFrom::Missing`] takes its subject's columns if the subject
/// (an original post) is stored: one indexed lookup.
fn fill_from_subject_sql() -> String {
    format!(
        "UPDATE posts SET {SUBJECT_COLUMNS} FROM posts AS s
         WHERE posts.id = $1 AND s.id = posts.retweet_of AND s.kind = 'tweet'"
    )
}

/// The reposts of a just-stored post `$1` that follow it take its columns (through the
/// `retweet_of` index).
fn fill_reposts_sql() -> String {
    format!(
        "UPDATE posts SET {SUBJECT_COLUMNS} FROM posts AS s
         WHERE s.id = $1 AND posts.retweet_of = $1 AND posts.text_from IN ('missing', 'subject')"
    )
}

/// The reposts of a deleted post `$1` lose what they took from it.
const UNFILL_REPOSTS: &str = "UPDATE posts SET text = '', lang = NULL, detected_lang = NULL,
    detected_confidence = NULL, sentiment_compound = NULL, sentiment_pos = NULL,
    sentiment_neu = NULL, sentiment_neg = NULL, sentiment_label = NULL, text_from = 'missing'
    WHERE retweet_of = $1 AND text_from = 'subject'";

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

/// What the analysis stored for one post: the web view's cards show it beside the post.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Annotation {
    /// The post's id.
    pub id: String,
    /// Detected language code.
    pub detected_lang: Option<String>,
    /// `positive`, `neutral` or `negative` (English only).
    pub sentiment_label: Option<String>,
    /// VADER compound score in [-1, 1].
    pub sentiment_compound: Option<f64>,
}

/// The columns of [`Annotation`], in order, for the posts whose id is in a list; each backend
/// adds its own list syntax.
const ANNOTATION_COLUMNS: &str =
    "SELECT id, detected_lang, sentiment_label, sentiment_compound FROM posts WHERE id";

/// The most ids one [`Store::annotations`] call looks up (the rest are ignored), so one
/// request costs one bounded query.
pub const MAX_ANNOTATION_IDS: usize = 500;

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

    /// Up to `limit` X post ids due for a compliance check: stored at or before
    /// `stored_before_ms` and never checked or last checked at or before `checked_before_ms`
    /// (the cutoffs of `tweet_pipeline_common::compliance::due_cutoffs`), never-checked first.
    ///
    /// # Errors
    /// When the database fails.
    pub fn compliance_due(
        &mut self,
        stored_before_ms: i64,
        checked_before_ms: i64,
        limit: u32,
    ) -> Result<Vec<String>, StoreError> {
        match self {
            Self::Sqlite(store) => store.compliance_due(stored_before_ms, checked_before_ms, limit),
            Self::Postgres(store) => {
                store.compliance_due(stored_before_ms, checked_before_ms, limit)
            }
        }
    }

    /// Records that the posts `ids` were checked by a compliance job at `now_ms`.
    ///
    /// # Errors
    /// When the database fails.
    pub fn mark_checked(&mut self, ids: &[String], now_ms: i64) -> Result<(), StoreError> {
        match self {
            Self::Sqlite(store) => store.mark_checked(ids, now_ms),
            Self::Postgres(store) => store.mark_checked(ids, now_ms),
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

    /// The analysis of those of `ids` (at most [`MAX_ANNOTATION_IDS`], the rest ignored)
    /// that are stored, in one query; unknown ids are left out.
    ///
    /// # Errors
    /// When the database fails.
    pub fn annotations(&mut self, ids: &[String]) -> Result<Vec<Annotation>, StoreError> {
        let ids = &ids[..ids.len().min(MAX_ANNOTATION_IDS)];
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        match self {
            Self::Sqlite(store) => store.annotations(ids),
            Self::Postgres(store) => store.annotations(ids),
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

#[cfg(test)]
mod tests {
    use super::*;

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
}
