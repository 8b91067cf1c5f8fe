-- One row per scheduled post and destination (x, bluesky, mastodon): a post sent to several
-- networks has one state at each. SQLite cannot change a primary key in place, so the table is
-- rebuilt; the rows written before destinations existed are X's.
CREATE TABLE scheduled_posts_v2 (
    id TEXT NOT NULL,
    destination TEXT NOT NULL DEFAULT 'x',
    text TEXT NOT NULL,
    due_at TEXT NOT NULL,
    status TEXT NOT NULL,
    attempts INTEGER NOT NULL,
    post_id TEXT,
    reason TEXT,
    lateness_seconds REAL,
    updated_at TEXT NOT NULL,
    PRIMARY KEY (id, destination)
);
INSERT INTO scheduled_posts_v2 (id, destination, text, due_at, status, attempts, post_id, reason, lateness_seconds, updated_at)
    SELECT id, 'x', text, due_at, status, attempts, post_id, reason, lateness_seconds, updated_at FROM scheduled_posts;
DROP TABLE scheduled_posts;
ALTER TABLE scheduled_posts_v2 RENAME TO scheduled_posts;
