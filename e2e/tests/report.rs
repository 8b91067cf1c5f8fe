//! `tweet-consumer report` on a SQLite store built here with the store's own schema: the three
//! SVG files exist and carry their titles, axes, series and labels. No broker needed.

mod support;

use std::path::Path;
use std::process::Command;

/// The consumer's own SQLite schema (its first migration).
const SCHEMA: &str = include_str!("../../consumer/migrations/sqlite/0001_init.sql");

fn insert(
    conn: &rusqlite::Connection,
    id: &str,
    created_at: &str,
    lang: &str,
    compound: Option<f64>,
    text: &str,
) {
    conn.execute(
        "INSERT INTO posts (id, kind, created_at, text, lang, detected_lang, sentiment_compound,
            source_topic, source_partition, source_offset, stored_at_ms)
         VALUES (?1, 'tweet', ?2, ?3, ?4, ?4, ?5, 'tweets', 0, 0, 0)",
        rusqlite::params![id, created_at, text, lang, compound],
    )
    .expect("insert");
}

fn svg(dir: &Path, name: &str) -> String {
    let path = dir.join(name);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{} not written: {e}", path.display()));
    assert!(text.starts_with("<svg"), "{name} is an SVG document");
    text
}

#[test]
fn report_draws_posts_sentiment_and_hashtags() {
    let dir = tempfile::tempdir().expect("temp dir");
    let db = dir.path().join("tweets.db");
    let conn = rusqlite::Connection::open(&db).expect("store");
    conn.execute_batch(SCHEMA).expect("schema");
    conn.pragma_update(None, "user_version", 1)
        .expect("version");
    insert(
        &conn,
        "1",
        "2014-07-04T10:00:05Z",
        "en",
        Some(0.6),
        "Happy 4th! #July4th #USA",
    );
    insert(
        &conn,
        "2",
        "2014-07-04T10:00:40Z",
        "en",
        Some(-0.4),
        "rain on #july4th",
    );
    insert(
        &conn,
        "3",
        "2014-07-04T10:03:10Z",
        "fr",
        Some(0.2),
        "bonne fête #USA #July4th",
    );
    insert(
        &conn,
        "4",
        "2014-07-04T10:04:00Z",
        "es",
        None,
        "hola #Mundial",
    );
    insert(&conn, "5", "2014-07-04T10:08:30Z", "es", None, "adiós");
    drop(conn);

    let out = dir.path().join("report");
    let output = Command::new(support::binary("tweet-consumer"))
        .arg("report")
        .arg("--db")
        .arg(&db)
        .arg("--out")
        .arg(&out)
        .output()
        .expect("tweet-consumer runs");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(String::from_utf8_lossy(&output.stdout).starts_with("5 posts from "));

    let posts = svg(&out, "posts_over_time.svg");
    assert!(posts.contains("Posts per minute (5 posts)"));
    assert!(
        posts.contains("07-04 10:0"),
        "minute labels on the time axis"
    );
    assert!(posts.contains("posts per minute"), "y axis description");
    assert!(posts.contains("<polygon") || posts.contains("<polyline") || posts.contains("<path"));

    let sentiment = svg(&out, "sentiment_over_time.svg");
    assert!(sentiment.contains("Mean VADER compound per minute by language"));
    assert!(sentiment.contains("en (2 scored posts)"));
    assert!(sentiment.contains("fr (1 scored posts)"));
    assert!(
        !sentiment.contains("es ("),
        "unscored languages have no line"
    );

    let hashtags = svg(&out, "top_hashtags.svg");
    assert!(hashtags.contains("Top 3 hashtags"));
    assert!(hashtags.contains("#july4th (3)"));
    assert!(hashtags.contains("#usa (2)"));
    assert!(hashtags.contains("#mundial (1)"));
}
