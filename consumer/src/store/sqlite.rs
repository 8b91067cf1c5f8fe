//! The SQLite store: one embedded file in WAL mode with `synchronous=FULL`, so a committed
//! batch survives a crash or power loss before its Kafka offsets are stored (SQLite docs,
//! "PRAGMA synchronous"); the schema is versioned by `PRAGMA user_version`.

use std::path::Path;

use rusqlite::{params, Connection, OptionalExtension as _, TransactionBehavior};

use super::{
    Annotation, BatchLog, BatchOutcome, BeforeCommitError, Erased, LanguageSentiment, ReportRow,
    StoreError, TextFrom, Write, ANNOTATION_COLUMNS, COMPLIANCE_DUE, MARK_CHECKED, RECORD_WITHHELD,
    REPORT_QUERY, UNFILL_REPOSTS,
};

/// Current schema version (`PRAGMA user_version`).
const SCHEMA_VERSION: i64 = 3;

/// Each schema version's migration, oldest first: version `i + 1` is `MIGRATIONS[i]`.
const MIGRATIONS: [&str; 3] = [
    include_str!("../../migrations/sqlite/0001_init.sql"),
    include_str!("../../migrations/sqlite/0002_post_structure.sql"),
    include_str!("../../migrations/sqlite/0003_compliance.sql"),
];

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
        let mut conn = Connection::open(path)?;
        conn.busy_timeout(std::time::Duration::from_secs(10))?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        // One write transaction (taken at BEGIN, so two instances opening together migrate
        // one after the other) for the missing migrations and the version they reach.
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let version: i64 = tx.pragma_query_value(None, "user_version", |row| row.get(0))?;
        if version > SCHEMA_VERSION {
            return Err(StoreError::NewerSchema {
                found: version,
                supported: SCHEMA_VERSION,
            });
        }
        if version < SCHEMA_VERSION {
            for sql in MIGRATIONS.iter().skip(version.max(0) as usize) {
                tx.execute_batch(sql)?;
            }
            tx.pragma_update(None, "user_version", SCHEMA_VERSION)?;
        }
        tx.commit()?;
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
                    source_partition, source_offset, received_at_ms, stored_at_ms, hashtags,
                    mentions, reply_to, quote_of, embed, text_from)
                 SELECT ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19,
                    ?20, ?21, ?22, ?23, ?24, ?25
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
                    stored_at_ms = excluded.stored_at_ms,
                    hashtags = excluded.hashtags, mentions = excluded.mentions,
                    reply_to = excluded.reply_to, quote_of = excluded.quote_of,
                    embed = excluded.embed, text_from = excluded.text_from",
            )?;
            let mut fill_from_subject = tx.prepare_cached(&super::fill_from_subject_sql())?;
            let mut fill_reposts = tx.prepare_cached(&super::fill_reposts_sql())?;
            let mut unfill_reposts = tx.prepare_cached(UNFILL_REPOSTS)?;
            let mut remember_delete = tx.prepare_cached(
                "INSERT INTO deleted_posts (id, deleted_at_ms, source_topic, source_partition, source_offset)
                 VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT(id) DO NOTHING",
            )?;
            let mut delete =
                tx.prepare_cached("DELETE FROM posts WHERE id = ?1 RETURNING source_topic")?;
            let mut withheld = tx.prepare_cached(RECORD_WITHHELD)?;
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
                            row.hashtags,
                            row.mentions,
                            row.reply_to,
                            row.quote_of,
                            row.embed,
                            row.text_from.as_str(),
                        ])?;
                        let written = changed > 0;
                        if written && row.text_from == TextFrom::Missing {
                            fill_from_subject.execute(params![row.id])?;
                        }
                        if written && row.reposts_follow {
                            fill_reposts.execute(params![row.id])?;
                        }
                        log.upserted(row, written);
                    }
                    Write::Delete {
                        id,
                        source,
                        reposts_follow,
                    } => {
                        remember_delete.execute(params![
                            id,
                            now_ms,
                            source.topic,
                            source.partition,
                            source.offset
                        ])?;
                        let removed_from =
                            delete.query_row(params![id], |row| row.get(0)).optional()?;
                        if *reposts_follow {
                            unfill_reposts.execute(params![id])?;
                        }
                        log.deleted(id, removed_from);
                    }
                    Write::Withheld { id, event } => {
                        withheld.execute(params![event, id])?;
                    }
                }
            }
        }
        before_commit(&log.erased).map_err(StoreError::BeforeCommit)?;
        tx.commit()?;
        Ok(log.outcome)
    }

    /// Up to `limit` X post ids due for a compliance check (see [`super::Store::compliance_due`]).
    ///
    /// # Errors
    /// When SQLite fails.
    pub fn compliance_due(
        &self,
        stored_before_ms: i64,
        checked_before_ms: i64,
        limit: u32,
    ) -> Result<Vec<String>, StoreError> {
        let mut statement = self.conn.prepare_cached(COMPLIANCE_DUE)?;
        let rows = statement
            .query_map(params![stored_before_ms, checked_before_ms, limit], |r| {
                r.get(0)
            })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Records that `ids` were checked at `now_ms`, in one transaction.
    ///
    /// # Errors
    /// When SQLite fails.
    pub fn mark_checked(&mut self, ids: &[String], now_ms: i64) -> Result<(), StoreError> {
        let tx = self.conn.transaction()?;
        {
            let mut mark = tx.prepare_cached(MARK_CHECKED)?;
            for id in ids {
                mark.execute(params![now_ms, id])?;
            }
        }
        tx.commit()?;
        Ok(())
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

    /// The analysis of the stored posts among `ids`, in one query.
    ///
    /// # Errors
    /// When SQLite fails.
    pub fn annotations(&self, ids: &[String]) -> Result<Vec<Annotation>, StoreError> {
        let marks = vec!["?"; ids.len()].join(",");
        let mut statement = self
            .conn
            .prepare(&format!("{ANNOTATION_COLUMNS} IN ({marks})"))?;
        let rows = statement.query_map(rusqlite::params_from_iter(ids), |row| {
            Ok(Annotation {
                id: row.get(0)?,
                detected_lang: row.get(1)?,
                sentiment_label: row.get(2)?,
                sentiment_compound: row.get(3)?,
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
    use crate::store::{PostRow, SourcePosition, TextFrom};

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
            hashtags: None,
            mentions: None,
            reply_to: None,
            quote_of: None,
            embed: None,
            text_from: TextFrom::Record,
            reposts_follow: false,
        }
    }

    /// A Bluesky post `id`, followed by its reposts.
    fn bluesky_post(id: &str) -> Write {
        let mut row = row(id, 0);
        row.hashtags = Some(r#"["tag"]"#.to_owned());
        row.reposts_follow = true;
        Write::Upsert(Box::new(row))
    }

    /// A Bluesky repost `id` of `subject`, without text.
    fn bluesky_repost(id: &str, subject: &str) -> Write {
        let mut row = row(id, 1);
        row.kind = "retweet";
        row.retweet_of = Some(subject.to_owned());
        (row.text, row.lang, row.detected_lang) = (String::new(), None, None);
        (row.detected_confidence, row.sentiment) = (None, None);
        row.text_from = TextFrom::Missing;
        Write::Upsert(Box::new(row))
    }

    /// `id`'s (text, lang, detected_lang, sentiment_label, text_from).
    fn analysed(
        store: &SqliteStore,
        id: &str,
    ) -> (
        String,
        Option<String>,
        Option<String>,
        Option<String>,
        String,
    ) {
        store
            .conn
            .query_row(
                "SELECT text, lang, detected_lang, sentiment_label, text_from FROM posts WHERE id = ?1",
                [id],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)),
            )
            .unwrap()
    }

    fn as_subject() -> (
        String,
        Option<String>,
        Option<String>,
        Option<String>,
        String,
    ) {
        let en = Some("en".to_owned());
        (
            "hello".to_owned(),
            en.clone(),
            en,
            Some("positive".to_owned()),
            "subject".to_owned(),
        )
    }

    fn without_text() -> (
        String,
        Option<String>,
        Option<String>,
        Option<String>,
        String,
    ) {
        (String::new(), None, None, None, "missing".to_owned())
    }

    #[test]
    fn reposts_take_their_subjects_analysis_in_either_order_and_lose_it_on_delete() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = SqliteStore::open(&dir.path().join("t.db")).unwrap();
        // Subject first, in the same batch; then a repost of a post never seen.
        let batch = [
            bluesky_post("at://s"),
            bluesky_repost("at://r1", "at://s"),
            bluesky_repost("at://r2", "at://unseen"),
        ];
        store.apply(&batch, 1, |_| Ok(())).unwrap();
        assert_eq!(analysed(&store, "at://r1"), as_subject());
        assert_eq!(analysed(&store, "at://r2"), without_text());
        // The replay gives the same rows.
        store.apply(&batch, 2, |_| Ok(())).unwrap();
        assert_eq!(analysed(&store, "at://r1"), as_subject());
        assert_eq!(analysed(&store, "at://r2"), without_text());
        // Repost first, subject in a later batch: the repost follows.
        store
            .apply(&[bluesky_repost("at://r3", "at://t")], 3, |_| Ok(()))
            .unwrap();
        assert_eq!(analysed(&store, "at://r3"), without_text());
        store
            .apply(&[bluesky_post("at://t")], 4, |_| Ok(()))
            .unwrap();
        assert_eq!(analysed(&store, "at://r3"), as_subject());
        // The subject's delete takes its text out of its reposts; the reposts stay.
        let delete = Write::Delete {
            id: "at://t".to_owned(),
            source: SourcePosition {
                topic: "control".to_owned(),
                partition: 0,
                offset: 0,
            },
            reposts_follow: true,
        };
        store.apply(&[delete], 5, |_| Ok(())).unwrap();
        assert_eq!(analysed(&store, "at://r3"), without_text());
        // ... and a replayed repost or post does not bring it back.
        store
            .apply(
                &[bluesky_repost("at://r3", "at://t"), bluesky_post("at://t")],
                6,
                |_| Ok(()),
            )
            .unwrap();
        assert_eq!(analysed(&store, "at://r3"), without_text());
        assert!(!store.contains("at://t").unwrap());
        // An X row that names the same id as retweet_of is not touched.
        let mut x = row("9", 2);
        (x.kind, x.retweet_of) = ("retweet", Some("at://s".to_owned()));
        x.text = "its own copy".to_owned();
        store
            .apply(
                &[Write::Upsert(Box::new(x)), bluesky_post("at://s")],
                7,
                |_| Ok(()),
            )
            .unwrap();
        assert_eq!(analysed(&store, "9").4, "record");
        assert_eq!(analysed(&store, "9").0, "its own copy");
    }

    #[test]
    fn a_version_1_file_is_migrated_and_keeps_its_rows() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("v1.db");
        {
            let conn = Connection::open(&path).unwrap();
            conn.execute_batch(MIGRATIONS[0]).unwrap();
            conn.execute(
                "INSERT INTO posts (id, kind, text, source_topic, source_partition, source_offset, stored_at_ms)
                 VALUES ('1', 'tweet', 'old', 'tweets', 0, 0, 1)",
                [],
            )
            .unwrap();
            conn.pragma_update(None, "user_version", 1).unwrap();
        }
        let mut store = SqliteStore::open(&path).unwrap();
        let version: i64 = store
            .conn
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .unwrap();
        assert_eq!(version, SCHEMA_VERSION);
        let text_from: Option<String> = store
            .conn
            .query_row("SELECT text_from FROM posts WHERE id = '1'", [], |r| {
                r.get(0)
            })
            .unwrap();
        assert_eq!(text_from, None, "rows from before version 2");
        store
            .apply(&[bluesky_post("at://s")], 2, |_| Ok(()))
            .unwrap();
        assert_eq!(store.post_count().unwrap(), 2);
        drop(store);
        // Opening again changes nothing.
        assert_eq!(SqliteStore::open(&path).unwrap().post_count().unwrap(), 2);
    }

    fn delete(id: &str) -> Write {
        Write::Delete {
            id: id.to_owned(),
            source: SourcePosition {
                topic: "control".to_owned(),
                partition: 0,
                offset: 0,
            },
            reposts_follow: false,
        }
    }

    #[test]
    fn annotations_are_looked_up_for_the_stored_ids_only() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = SqliteStore::open(&dir.path().join("t.db")).unwrap();
        let batch = vec![Write::Upsert(Box::new(row("1", 0)))];
        store.apply(&batch, 10, |_| Ok(())).unwrap();
        let found = store
            .annotations(&["1".to_owned(), "missing".to_owned()])
            .unwrap();
        assert_eq!(
            found,
            vec![Annotation {
                id: "1".into(),
                detected_lang: Some("en".into()),
                sentiment_label: Some("positive".into()),
                sentiment_compound: Some(0.5),
            }]
        );
    }

    #[test]
    fn compliance_picks_due_x_posts_and_records_checks_and_withholding() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = SqliteStore::open(&dir.path().join("t.db")).unwrap();
        let batch = [
            Write::Upsert(Box::new(row("1", 0))),
            Write::Upsert(Box::new(row("2", 1))),
            bluesky_post("at://b"),
        ];
        store.apply(&batch, 100, |_| Ok(())).unwrap();
        // Too young at 150 with a min age of 100.
        assert!(store.compliance_due(50, 150, 10).unwrap().is_empty());
        let due = store.compliance_due(100, 150, 10).unwrap();
        assert_eq!(due, vec!["1".to_owned(), "2".to_owned()], "X ids only");
        assert_eq!(store.compliance_due(100, 150, 1).unwrap().len(), 1, "limit");
        store.mark_checked(&["1".to_owned()], 200).unwrap();
        assert_eq!(
            store.compliance_due(100, 150, 10).unwrap(),
            vec!["2".to_owned()]
        );
        // A replayed upsert keeps the check; the next interval makes it due again.
        store.apply(&batch[..1], 300, |_| Ok(())).unwrap();
        assert_eq!(
            store.compliance_due(400, 200, 10).unwrap(),
            vec!["2".to_owned(), "1".to_owned()]
        );
        let withheld = Write::Withheld {
            id: "2".to_owned(),
            event: r#"{"id":"2","action":"withheld"}"#.to_owned(),
        };
        store.apply(&[withheld], 400, |_| Ok(())).unwrap();
        let recorded: Option<String> = store
            .conn
            .query_row("SELECT withheld FROM posts WHERE id = '2'", [], |r| {
                r.get(0)
            })
            .unwrap();
        assert_eq!(
            recorded.as_deref(),
            Some(r#"{"id":"2","action":"withheld"}"#)
        );
        assert!(store.contains("2").unwrap(), "a withheld post stays");
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
