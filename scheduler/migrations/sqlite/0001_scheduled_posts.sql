-- The poster's copy of each scheduled post's latest state (tweet-consumer --group poster).
-- IF NOT EXISTS: databases written before the poster store had migrations already hold it.
CREATE TABLE IF NOT EXISTS scheduled_posts (
    id TEXT PRIMARY KEY,
    text TEXT NOT NULL,
    due_at TEXT NOT NULL,
    status TEXT NOT NULL,
    attempts INTEGER NOT NULL,
    post_id TEXT,
    reason TEXT,
    lateness_seconds REAL,
    updated_at TEXT NOT NULL
);
