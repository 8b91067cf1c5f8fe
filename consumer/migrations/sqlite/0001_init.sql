-- The SQLite store, schema version 1 (PRAGMA user_version). Keep it equivalent to
-- ../postgres/0001_init.sql: same tables, columns, meanings and index.
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
