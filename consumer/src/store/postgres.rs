//! The PostgreSQL store, for scale-out: any number of analysis consumers in one group write to
//! one server with the same schema and the same idempotent semantics as the SQLite store.
//!
//! Migrations live in `consumer/migrations/postgres/` and are applied at connect, in order,
//! each in the transaction that records it in `schema_migrations`; a transaction-scoped
//! advisory lock serialises instances that start together (PostgreSQL docs, "Advisory Locks").
//!
//! Concurrency: two instances never hold the same partition, but a post and its delete notice
//! travel on different topics and so may be handled by different instances at the same time.
//! Under READ COMMITTED neither transaction would see the other's uncommitted row, and the post
//! could survive its delete. Each batch therefore first takes a transaction-scoped advisory lock
//! per post id it touches, in ascending key order (so two batches cannot deadlock): writes to
//! one id are serialised, and each statement after the lock sees the other's committed rows.

use postgres::{Client, NoTls, Statement};
use tweet_pipeline_common::secret::Secret;

use super::{
    Annotation, BatchLog, BatchOutcome, BeforeCommitError, Erased, LanguageSentiment, ReportRow,
    StoreError, TextFrom, Write, ANNOTATION_COLUMNS, COMPLIANCE_DUE, MARK_CHECKED, RECORD_WITHHELD,
    REPORT_QUERY, UNFILL_REPOSTS,
};

/// One migration: its version (recorded in `schema_migrations`), name and SQL.
struct Migration {
    version: i32,
    name: &'static str,
    sql: &'static str,
}

/// Every migration, oldest first.
const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "0001_init",
        sql: include_str!("../../migrations/postgres/0001_init.sql"),
    },
    Migration {
        version: 2,
        name: "0002_post_structure",
        sql: include_str!("../../migrations/postgres/0002_post_structure.sql"),
    },
    Migration {
        version: 3,
        name: "0003_compliance",
        sql: include_str!("../../migrations/postgres/0003_compliance.sql"),
    },
];

/// Advisory lock key (the single-`bigint` key space) held while migrating: ASCII "tweetmig".
const MIGRATION_LOCK_KEY: i64 = 0x7477_6565_746d_6967;
/// First half of the per-post advisory lock keys (the two-`int4` key space, which never
/// overlaps the single-`bigint` one); the second half is `hashtext(id)`.
const POST_LOCK_CLASS: i32 = 0x7477_7074; // ASCII "twpt"

const UPSERT: &str = "
INSERT INTO posts (id, kind, retweet_of, created_at, author, text, lang, detected_lang,
    detected_confidence, sentiment_compound, sentiment_pos, sentiment_neu, sentiment_neg,
    sentiment_label, source_topic, source_partition, source_offset, received_at_ms, stored_at_ms,
    hashtags, mentions, reply_to, quote_of, embed, text_from)
SELECT $1::text, $2::text, $3::text, $4::text, $5::text, $6::text, $7::text, $8::text,
    $9::float8, $10::float8, $11::float8, $12::float8, $13::float8, $14::text, $15::text,
    $16::int4, $17::int8, $18::int8, $19::int8, $20::text, $21::text, $22::text, $23::text,
    $24::text, $25::text
WHERE NOT EXISTS (SELECT 1 FROM deleted_posts WHERE id = $1::text)
ON CONFLICT (id) DO UPDATE SET
    kind = EXCLUDED.kind, retweet_of = EXCLUDED.retweet_of,
    created_at = EXCLUDED.created_at, author = EXCLUDED.author,
    text = EXCLUDED.text, lang = EXCLUDED.lang,
    detected_lang = EXCLUDED.detected_lang,
    detected_confidence = EXCLUDED.detected_confidence,
    sentiment_compound = EXCLUDED.sentiment_compound,
    sentiment_pos = EXCLUDED.sentiment_pos, sentiment_neu = EXCLUDED.sentiment_neu,
    sentiment_neg = EXCLUDED.sentiment_neg,
    sentiment_label = EXCLUDED.sentiment_label,
    source_topic = EXCLUDED.source_topic,
    source_partition = EXCLUDED.source_partition,
    source_offset = EXCLUDED.source_offset,
    received_at_ms = EXCLUDED.received_at_ms,
    stored_at_ms = EXCLUDED.stored_at_ms,
    hashtags = EXCLUDED.hashtags, mentions = EXCLUDED.mentions,
    reply_to = EXCLUDED.reply_to, quote_of = EXCLUDED.quote_of,
    embed = EXCLUDED.embed, text_from = EXCLUDED.text_from";

const REMEMBER_DELETE: &str = "
INSERT INTO deleted_posts (id, deleted_at_ms, source_topic, source_partition, source_offset)
VALUES ($1::text, $2::int8, $3::text, $4::int4, $5::int8) ON CONFLICT (id) DO NOTHING";

const DELETE: &str = "DELETE FROM posts WHERE id = $1::text RETURNING source_topic";

/// Locks every id of the batch, ascending by key, for the rest of the transaction.
const LOCK_IDS: &str = "
SELECT pg_advisory_xact_lock($1::int4, k)
FROM (SELECT DISTINCT hashtext(id) AS k FROM unnest($2::text[]) AS id ORDER BY k) AS keys";

const LANGUAGE_SENTIMENT: &str = "
SELECT COALESCE(detected_lang, '?') AS language,
       SUM(CASE WHEN sentiment_label = 'positive' THEN 1 ELSE 0 END)::int8,
       SUM(CASE WHEN sentiment_label = 'neutral' THEN 1 ELSE 0 END)::int8,
       SUM(CASE WHEN sentiment_label = 'negative' THEN 1 ELSE 0 END)::int8,
       SUM(CASE WHEN sentiment_label IS NULL THEN 1 ELSE 0 END)::int8
FROM posts GROUP BY language ORDER BY COUNT(*) DESC, language";

/// A connection to the PostgreSQL store, with its statements prepared.
pub struct PgStore {
    url: Secret,
    client: Client,
    upsert: Statement,
    remember_delete: Statement,
    delete: Statement,
    lock_ids: Statement,
    fill_from_subject: Statement,
    fill_reposts: Statement,
    unfill_reposts: Statement,
}

/// `postgres://user@host:port/database` for logs: the URL without its password (and without
/// options, which may carry one too).
pub fn redacted(url: &Secret) -> String {
    let Ok(config) = url.expose().parse::<postgres::Config>() else {
        return "postgres://(invalid URL)".to_owned();
    };
    let user = config
        .get_user()
        .map(|u| format!("{u}@"))
        .unwrap_or_default();
    let hosts: Vec<String> = config
        .get_hosts()
        .iter()
        .zip(config.get_ports().iter().chain(std::iter::repeat(&5432)))
        .map(|(host, port)| match host {
            postgres::config::Host::Tcp(name) => format!("{name}:{port}"),
            postgres::config::Host::Unix(path) => format!("{}:{port}", path.display()),
        })
        .collect();
    let database = config.get_dbname().unwrap_or_default();
    format!("postgres://{user}{}/{database}", hosts.join(","))
}

impl PgStore {
    /// Connects to `url` (plain TCP or a Unix socket; no TLS) and applies missing migrations.
    ///
    /// # Errors
    /// When the server cannot be reached or refuses the credentials, a migration fails, or the
    /// database holds a newer schema than this binary knows.
    pub fn connect(url: &Secret) -> Result<Self, StoreError> {
        let mut client = Client::connect(url.expose(), NoTls)?;
        migrate(&mut client)?;
        Ok(Self {
            url: url.clone(),
            upsert: client.prepare(UPSERT)?,
            remember_delete: client.prepare(REMEMBER_DELETE)?,
            delete: client.prepare(DELETE)?,
            lock_ids: client.prepare(LOCK_IDS)?,
            fill_from_subject: client.prepare(&super::fill_from_subject_sql())?,
            fill_reposts: client.prepare(&super::fill_reposts_sql())?,
            unfill_reposts: client.prepare(UNFILL_REPOSTS)?,
            client,
        })
    }

    /// Applies `writes` in order, in one transaction, with the semantics of the SQLite store.
    ///
    /// # Errors
    /// When PostgreSQL fails (a deadlock or serialisation failure included); nothing of the
    /// batch is then stored.
    pub fn apply(
        &mut self,
        writes: &[Write],
        now_ms: i64,
        before_commit: impl FnOnce(&[Erased]) -> Result<(), BeforeCommitError>,
    ) -> Result<BatchOutcome, StoreError> {
        if self.client.is_closed() {
            // The server restarted or the network dropped: the failed batch is retried by the
            // runner, on a fresh connection.
            tracing::warn!(db = %redacted(&self.url), "postgres connection lost; reconnecting");
            *self = Self::connect(&self.url)?;
        }
        let mut tx = self.client.transaction()?;
        let mut log = BatchLog::default();
        // A repost filled from its subject also locks the subject's id, so that it and a
        // concurrent write of the subject (which fills its reposts) see each other's rows.
        let ids: Vec<&str> = writes
            .iter()
            .flat_map(|write| match write {
                Write::Upsert(row) => {
                    let subject = match row.text_from {
                        TextFrom::Missing => row.retweet_of.as_deref(),
                        _ => None,
                    };
                    [Some(row.id.as_str()), subject]
                }
                Write::Delete { id, .. } | Write::Withheld { id, .. } => [Some(id.as_str()), None],
            })
            .flatten()
            .collect();
        if !ids.is_empty() {
            tx.execute(&self.lock_ids, &[&POST_LOCK_CLASS, &ids])?;
        }
        for write in writes {
            match write {
                Write::Upsert(row) => {
                    let (compound, pos, neu, neg, label) = row.sentiment_columns();
                    let changed = tx.execute(
                        &self.upsert,
                        &[
                            &row.id,
                            &row.kind,
                            &row.retweet_of,
                            &row.created_at,
                            &row.author,
                            &row.text,
                            &row.lang,
                            &row.detected_lang,
                            &row.detected_confidence,
                            &compound,
                            &pos,
                            &neu,
                            &neg,
                            &label,
                            &row.source.topic,
                            &row.source.partition,
                            &row.source.offset,
                            &row.received_at_ms,
                            &now_ms,
                            &row.hashtags,
                            &row.mentions,
                            &row.reply_to,
                            &row.quote_of,
                            &row.embed,
                            &row.text_from.as_str(),
                        ],
                    )?;
                    let written = changed > 0;
                    if written && row.text_from == TextFrom::Missing {
                        tx.execute(&self.fill_from_subject, &[&row.id])?;
                    }
                    if written && row.reposts_follow {
                        tx.execute(&self.fill_reposts, &[&row.id])?;
                    }
                    log.upserted(row, written);
                }
                Write::Delete {
                    id,
                    source,
                    reposts_follow,
                } => {
                    tx.execute(
                        &self.remember_delete,
                        &[
                            id,
                            &now_ms,
                            &source.topic,
                            &source.partition,
                            &source.offset,
                        ],
                    )?;
                    let removed_from = tx.query_opt(&self.delete, &[id])?.map(|row| row.get(0));
                    if *reposts_follow {
                        tx.execute(&self.unfill_reposts, &[id])?;
                    }
                    log.deleted(id, removed_from);
                }
                Write::Withheld { id, event } => {
                    tx.execute(RECORD_WITHHELD, &[event, id])?;
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
    /// When PostgreSQL fails.
    pub fn compliance_due(
        &mut self,
        stored_before_ms: i64,
        checked_before_ms: i64,
        limit: u32,
    ) -> Result<Vec<String>, StoreError> {
        let rows = self.client.query(
            COMPLIANCE_DUE,
            &[&stored_before_ms, &checked_before_ms, &i64::from(limit)],
        )?;
        Ok(rows.iter().map(|row| row.get(0)).collect())
    }

    /// Records that `ids` were checked at `now_ms`, in one transaction.
    ///
    /// # Errors
    /// When PostgreSQL fails.
    pub fn mark_checked(&mut self, ids: &[String], now_ms: i64) -> Result<(), StoreError> {
        let mut tx = self.client.transaction()?;
        for id in ids {
            tx.execute(MARK_CHECKED, &[&now_ms, id])?;
        }
        tx.commit()?;
        Ok(())
    }

    /// Posts per detected language and sentiment label, most frequent languages first.
    ///
    /// # Errors
    /// When PostgreSQL fails.
    pub fn language_sentiment_table(&mut self) -> Result<Vec<LanguageSentiment>, StoreError> {
        let count = |row: &postgres::Row, i: usize| row.get::<_, i64>(i).max(0) as u64;
        Ok(self
            .client
            .query(LANGUAGE_SENTIMENT, &[])?
            .iter()
            .map(|row| LanguageSentiment {
                language: row.get(0),
                positive: count(row, 1),
                neutral: count(row, 2),
                negative: count(row, 3),
                unscored: count(row, 4),
            })
            .collect())
    }

    /// The analysis of the stored posts among `ids`, in one query.
    ///
    /// # Errors
    /// When PostgreSQL fails.
    pub fn annotations(&mut self, ids: &[String]) -> Result<Vec<Annotation>, StoreError> {
        Ok(self
            .client
            .query(&format!("{ANNOTATION_COLUMNS} = ANY($1)"), &[&ids])?
            .iter()
            .map(|row| Annotation {
                id: row.get(0),
                detected_lang: row.get(1),
                sentiment_label: row.get(2),
                sentiment_compound: row.get(3),
            })
            .collect())
    }

    /// Every stored post, for the report.
    ///
    /// # Errors
    /// When PostgreSQL fails.
    pub fn report_rows(&mut self) -> Result<Vec<ReportRow>, StoreError> {
        Ok(self
            .client
            .query(REPORT_QUERY, &[])?
            .iter()
            .map(|row| ReportRow {
                created_at: row.get(0),
                received_at_ms: row.get(1),
                lang: row.get(2),
                detected_lang: row.get(3),
                sentiment_compound: row.get(4),
                text: row.get(5),
            })
            .collect())
    }
}

/// Applies the migrations not yet recorded in `schema_migrations`, under the migration lock.
fn migrate(client: &mut Client) -> Result<(), StoreError> {
    let mut tx = client.transaction()?;
    tx.execute(
        "SELECT pg_advisory_xact_lock($1::int8)",
        &[&MIGRATION_LOCK_KEY],
    )?;
    tx.batch_execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations (
            version    INTEGER PRIMARY KEY,
            name       TEXT NOT NULL,
            applied_at TIMESTAMPTZ NOT NULL DEFAULT now()
        )",
    )?;
    let applied: Vec<i32> = tx
        .query("SELECT version FROM schema_migrations", &[])?
        .iter()
        .map(|row| row.get(0))
        .collect();
    let supported = MIGRATIONS.iter().map(|m| m.version).max().unwrap_or(0);
    if let Some(&found) = applied.iter().max() {
        if found > supported {
            return Err(StoreError::NewerSchema {
                found: found.into(),
                supported: supported.into(),
            });
        }
    }
    for migration in MIGRATIONS {
        if applied.contains(&migration.version) {
            continue;
        }
        tx.batch_execute(migration.sql)?;
        tx.execute(
            "INSERT INTO schema_migrations (version, name) VALUES ($1, $2)",
            &[&migration.version, &migration.name],
        )?;
        tracing::info!(
            version = migration.version,
            name = migration.name,
            "postgres migration applied"
        );
    }
    tx.commit()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redaction_drops_the_password() {
        let url = Secret::new("postgres://app:s3cret@db.example:6543/tweets?password=other");
        let shown = redacted(&url);
        assert_eq!(shown, "postgres://app@db.example:6543/tweets");
        assert!(!shown.contains("s3cret"));
    }
}
