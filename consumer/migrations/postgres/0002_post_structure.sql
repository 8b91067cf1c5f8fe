-- The PostgreSQL store, migration 2 (recorded in schema_migrations): a post's structure, and Bluesky
-- reposts analysed as their subject. Keep it equivalent to ../sqlite/0002_post_structure.sql.
ALTER TABLE posts ADD COLUMN hashtags TEXT;   -- JSON array of hashtags without '#', in order; NULL when none
ALTER TABLE posts ADD COLUMN mentions TEXT;   -- JSON array of mentioned accounts (Bluesky DIDs); NULL when none
ALTER TABLE posts ADD COLUMN reply_to TEXT;   -- id of the post replied to
ALTER TABLE posts ADD COLUMN quote_of TEXT;   -- id of the post quoted
ALTER TABLE posts ADD COLUMN embed TEXT;      -- Bluesky embed kind: 'images' | 'video' | 'external' | 'record' | 'recordWithMedia' | 'other'
-- Where `text` came from: 'record' (the record carried it; an X retweet carries its original's),
-- 'subject' (a Bluesky repost: copied with its analysis from the stored row of retweet_of),
-- 'missing' (a Bluesky repost whose subject is not stored: text '', lang, detection and
-- sentiment NULL). NULL for rows stored before version 2.
ALTER TABLE posts ADD COLUMN text_from TEXT;
CREATE INDEX posts_retweet_of ON posts (retweet_of);
