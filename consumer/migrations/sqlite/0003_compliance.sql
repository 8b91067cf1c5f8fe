-- The SQLite store, schema version 3 (PRAGMA user_version): X API v2 batch compliance.
-- Keep it equivalent to ../postgres/0003_compliance.sql.
-- When `tweet-consumer compliance` last had the post checked by a compliance job (Unix ms); NULL: never.
ALTER TABLE posts ADD COLUMN compliance_checked_at_ms INTEGER;
-- A `withheld` compliance event for the post: the event's JSON line (id, action, reason, ...); NULL: none.
ALTER TABLE posts ADD COLUMN withheld TEXT;
CREATE INDEX IF NOT EXISTS posts_compliance_due ON posts (compliance_checked_at_ms, stored_at_ms);
