-- The PostgreSQL store, migration 1 (recorded in schema_migrations). Equivalent to
-- ../sqlite/0001_init.sql: same tables, columns, meanings and index; SQLite's REAL is
-- DOUBLE PRECISION here and its 64-bit INTEGER columns are BIGINT.
CREATE TABLE posts (
    id                  TEXT PRIMARY KEY,   -- post id (decimal string)
    kind                TEXT NOT NULL,      -- 'tweet' | 'retweet'
    retweet_of          TEXT,               -- original post id, for a retweet
    created_at          TEXT,               -- RFC 3339, UTC
    author              TEXT,
    text                TEXT NOT NULL,      -- the analysed text (the original's, for a retweet)
    lang                TEXT,               -- the platform's own language tag
    detected_lang       TEXT,               -- whatlang: ISO 639-1 (else 639-3)
    detected_confidence DOUBLE PRECISION,
    sentiment_compound  DOUBLE PRECISION,   -- VADER, English only
    sentiment_pos       DOUBLE PRECISION,
    sentiment_neu       DOUBLE PRECISION,
    sentiment_neg       DOUBLE PRECISION,
    sentiment_label     TEXT,               -- 'positive' | 'neutral' | 'negative' | NULL
    source_topic        TEXT NOT NULL,      -- where the record was read: topic, partition, offset
    source_partition    INTEGER NOT NULL,
    source_offset       BIGINT NOT NULL,
    received_at_ms      BIGINT,             -- when the producer received the line (Unix ms)
    stored_at_ms        BIGINT NOT NULL
);
CREATE INDEX posts_lang_sentiment ON posts (detected_lang, sentiment_label);
CREATE TABLE deleted_posts (
    id               TEXT PRIMARY KEY,      -- a post the author deleted: never stored again
    deleted_at_ms    BIGINT NOT NULL,
    source_topic     TEXT NOT NULL,
    source_partition INTEGER NOT NULL,
    source_offset    BIGINT NOT NULL
);
