//! A real Bluesky Jetstream v1 recording (`shared/data/bluesky/jetstream-v1/`, the
//! bluesky-social/jetstream corpus: 152 consecutive events) replayed by `tweet-producer` into
//! topics made for this test and read back: every event is one record, its value the event's
//! bytes unchanged, its key the AT URI (or the DID for identity and account events), on the
//! topic its `kind` header names, in the numbers the MANIFEST's counts give. Then the analysis
//! group stores one row per post and repost (keyed by AT URI), applies the recording's delete,
//! and dead-letters nothing; each post's hashtags (from its tag facets), reply parent, quote and
//! embed kind are stored as an independent reading of the recording finds them, and each repost
//! is analysed as its subject exactly when the subject is stored (in the recording, never: every
//! repost is stored without text). A second replay adds two reposts derived from recorded ones
//! (their subject pointed at a recorded post): they take their subject's analysis, and the
//! other rows come out unchanged.
//!
//! Needs the binaries built (`cargo build --release --bins`) and the shared recordings.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use support::{
    analysis_summary, analysis_to_end, create_topics, delete_topics, producer_command,
    producer_summary, read_back, run, shared_data, stored_ids, topic_flags, unique,
};
use tweet_pipeline_common::{Destination, Kind};

const RECORDING: &str = "bluesky/jetstream-v1/bluesky-social_jetstream__corpus_expected_v1.jsonl";

#[tokio::test(flavor = "multi_thread")]
async fn replayed_jetstream_events_land_once_each_keyed_by_at_uri() {
    let names = create_topics(&format!("{}-", unique("e2e-jetstream"))).await;
    let path = shared_data().join(RECORDING);
    let text = std::fs::read_to_string(&path).expect("the Jetstream recording");
    let events: Vec<&str> = text.lines().collect();
    assert_eq!(events.len(), 152, "the MANIFEST's count of {RECORDING}");

    let produced = producer_summary(&run(producer_command()
        .arg("--replay")
        .arg(&path)
        .args(topic_flags(&names))
        .arg("--metrics-addr=off")));
    assert_eq!(produced.lines_read, 152);
    assert_eq!(produced.failed + produced.unacknowledged, 0);
    // MANIFEST: 17 post creates; 15 reposts; 1 post delete, 117 other commits, 1 identity and
    // 1 account on control; nothing unroutable.
    let acked: Vec<u64> = Destination::ALL
        .iter()
        .map(|d| produced.acked[*d])
        .collect();
    assert_eq!(
        acked,
        [17, 15, 120, 0],
        "tweets, retweets, control, deadletter"
    );

    let topics: Vec<&str> = Destination::ALL.iter().map(|d| names.name(*d)).collect();
    let records = read_back(&topics, events.len());
    assert_eq!(records.len(), events.len());
    let mut by_kind = BTreeMap::<Kind, usize>::new();
    let mut values = Vec::new();
    for (topic, key, value, headers) in &records {
        let kind = headers
            .get("kind")
            .and_then(|k| Kind::parse(k))
            .expect("kind header");
        assert_eq!(names.name(kind.destination()), topic);
        let event: serde_json::Value = serde_json::from_slice(value).expect("the event's JSON");
        let did = event["did"].as_str().expect("did");
        let commit = &event["commit"];
        let want_key = match commit["rkey"].as_str() {
            Some(rkey) => format!(
                "at://{did}/{}/{rkey}",
                commit["collection"].as_str().unwrap()
            ),
            None => did.to_owned(),
        };
        assert_eq!(key.as_deref(), Some(want_key.as_str()));
        *by_kind.entry(kind).or_default() += 1;
        values.push(value.clone());
    }
    assert_eq!(
        by_kind,
        BTreeMap::from([
            (Kind::Delete, 1),
            (Kind::Event, 117),
            (Kind::Post, 17),
            (Kind::Repost, 15),
            (Kind::Identity, 1),
            (Kind::Account, 1),
        ])
    );
    // The values are the recorded lines, byte for byte, each once.
    let mut want: Vec<Vec<u8>> = events.iter().map(|e| e.as_bytes().to_vec()).collect();
    values.sort();
    want.sort();
    assert!(
        values == want,
        "record values differ from the recorded events"
    );

    // The analysis group: a row per post and repost AT URI that no delete in the recording names.
    let uri = |event: &serde_json::Value| {
        let commit = &event["commit"];
        let collection = commit["collection"].as_str()?;
        let did = event["did"].as_str()?;
        let uri = format!("at://{did}/{collection}/{}", commit["rkey"].as_str()?);
        let post = matches!(collection, "app.bsky.feed.post" | "app.bsky.feed.repost");
        post.then(|| (commit["operation"].as_str() == Some("delete"), uri))
    };
    let (mut rows, mut deleted) = (BTreeSet::new(), BTreeSet::new());
    for event in &events {
        let event: serde_json::Value = serde_json::from_str(event).expect("JSON");
        match uri(&event) {
            Some((true, uri)) => deleted.insert(uri),
            Some((false, uri)) => rows.insert(uri),
            None => false,
        };
    }
    let rows: BTreeSet<String> = rows.difference(&deleted).cloned().collect();
    assert_eq!(
        (rows.len(), deleted.len()),
        (32, 1),
        "17 posts and 15 reposts; 1 delete"
    );
    let dir = tempfile::tempdir().expect("temp dir");
    let db = dir.path().join("tweets.db");
    let consumed = analysis_summary(&run(analysis_to_end(&db)
        .args(topic_flags(&names))
        .arg("--metrics-addr=off")));
    assert_eq!(consumed.records_dead_lettered, 0);
    assert_eq!(consumed.deletes_applied, 1);
    assert!(
        stored_ids(&db) == rows,
        "stored ids differ from the undeleted posts and reposts"
    );
    let conn = rusqlite::Connection::open(&db).expect("store");
    let (reposts, with_lang): (i64, i64) = conn
        .query_row(
            "SELECT SUM(kind = 'retweet' AND retweet_of LIKE 'at://%'), SUM(lang IS NOT NULL) \
             FROM posts",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .expect("counts");
    // MANIFEST: of the 17 post creates, 16 carry `langs`.
    assert_eq!((reposts, with_lang), (15, 16));

    // Structure, read independently from the whole documents.
    let want = expected_structure(&events, &deleted);
    let got = stored_structure(&db);
    assert_eq!(
        got.keys().collect::<Vec<_>>(),
        want.keys().collect::<Vec<_>>()
    );
    for (id, want) in &want {
        assert_eq!(&got[id], want, "{id}");
    }
    let posts: Vec<&Structure> = want.values().filter(|s| s.repost_of.is_none()).collect();
    let count = |f: &dyn Fn(&Structure) -> bool| posts.iter().filter(|s| f(s)).count();
    // MANIFEST: 8 replies; 4 tag facets (in 2 posts); embeds: images 2, external 3; no quotes.
    assert_eq!(count(&|s| s.reply_to.is_some()), 8);
    assert_eq!(posts.iter().map(|s| s.hashtags.len()).sum::<usize>(), 4);
    assert_eq!(count(&|s| s.quote_of.is_some()), 0);
    assert_eq!(
        (
            count(&|s| s.embed.as_deref() == Some("images")),
            count(&|s| s.embed.as_deref() == Some("external"))
        ),
        (2, 3)
    );
    // Reposts: as their subject when the subject is a stored post, else without text.
    let (as_subject, without_text) = repost_split(&want);
    assert_eq!((as_subject.len(), without_text.len()), (0, 15));
    assert_reposts(&db, &as_subject, &without_text);

    // A second replay: the recording again, plus two reposts derived from recorded ones with
    // their subject pointed at recorded posts, read by a fresh group into the same store.
    let before = snapshot(&db);
    // Two recorded English posts with text, so that the copied analysis has a sentiment.
    let targets: Vec<String> = events
        .iter()
        .filter_map(|line| {
            let event: serde_json::Value = serde_json::from_str(line).ok()?;
            let (false, uri) = uri(&event)? else {
                return None;
            };
            let record = &event["commit"]["record"];
            let english = record["langs"][0].as_str()?.starts_with("en");
            let text = !record["text"].as_str()?.is_empty();
            (english && text && !deleted.contains(&uri)).then_some(uri)
        })
        .take(2)
        .collect();
    let derived: Vec<String> = events
        .iter()
        .filter_map(|line| {
            let event: serde_json::Value = serde_json::from_str(line).ok()?;
            (event["commit"]["collection"] == "app.bsky.feed.repost").then_some(event)
        })
        .zip(&targets)
        .map(|(mut event, subject)| {
            let rkey = format!("{}derived", event["commit"]["rkey"].as_str().expect("rkey"));
            event["commit"]["rkey"] = rkey.into();
            event["commit"]["record"]["subject"]["uri"] = subject.clone().into();
            event.to_string()
        })
        .collect();
    assert_eq!(derived.len(), 2);
    let replay = dir.path().join("replay.jsonl");
    let mut lines: Vec<&str> = derived.iter().map(String::as_str).collect();
    lines.extend(events.iter().copied());
    std::fs::write(&replay, lines.join("\n") + "\n").expect("derived replay");
    let produced = producer_summary(&run(producer_command()
        .arg("--replay")
        .arg(&replay)
        .args(topic_flags(&names))
        .arg("--metrics-addr=off")));
    assert_eq!(produced.failed + produced.unacknowledged, 0);
    let consumed = analysis_summary(&run(analysis_to_end(&db)
        .args(topic_flags(&names))
        .arg("--metrics-addr=off")));
    assert_eq!(consumed.records_dead_lettered, 0);
    let mut after = snapshot(&db);
    for line in &derived {
        let event: serde_json::Value = serde_json::from_str(line).expect("JSON");
        let (_, uri) = uri(&event).expect("a repost");
        assert!(after.remove(&uri).is_some(), "{uri} stored");
    }
    assert!(after == before, "the replay changed the recorded rows");
    let want = {
        let mut all: Vec<&str> = events.clone();
        all.extend(derived.iter().map(String::as_str));
        expected_structure(&all, &deleted)
    };
    assert_eq!(stored_structure(&db), want);
    let (as_subject, without_text) = repost_split(&want);
    assert_eq!((as_subject.len(), without_text.len()), (2, 15));
    assert_reposts(&db, &as_subject, &without_text);
    delete_topics(&names).await;
}

/// What a row's structure columns should hold, from the recording alone.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Structure {
    hashtags: Vec<String>,
    reply_to: Option<String>,
    quote_of: Option<String>,
    embed: Option<String>,
    /// For a repost: its subject's AT URI.
    repost_of: Option<String>,
}

/// Every undeleted post and repost of `events` by AT URI: hashtags from tag facets (and the
/// record's `tags`), `reply.parent.uri`, an `app.bsky.embed.record` (or recordWithMedia's)
/// URI, the embed `$type`'s last part, a repost's `subject.uri`.
fn expected_structure(events: &[&str], deleted: &BTreeSet<String>) -> BTreeMap<String, Structure> {
    let mut out = BTreeMap::new();
    for line in events {
        let event: serde_json::Value = serde_json::from_str(line).expect("JSON");
        let commit = &event["commit"];
        let record = &commit["record"];
        let (Some(collection), Some(rkey), Some(did)) = (
            commit["collection"].as_str(),
            commit["rkey"].as_str(),
            event["did"].as_str(),
        ) else {
            continue;
        };
        let uri = format!("at://{did}/{collection}/{rkey}");
        if !record.is_object() || deleted.contains(&uri) {
            continue;
        }
        let text = |v: &serde_json::Value| v.as_str().map(str::to_owned);
        let structure = match collection {
            "app.bsky.feed.post" => {
                let mut hashtags: Vec<String> = record["facets"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .flat_map(|f| f["features"].as_array().into_iter().flatten())
                    .filter(|f| f["$type"] == "app.bsky.richtext.facet#tag")
                    .filter_map(|f| text(&f["tag"]))
                    .collect();
                hashtags.extend(
                    record["tags"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .filter_map(text),
                );
                let embed = &record["embed"];
                let quote_of = match embed["$type"].as_str() {
                    Some("app.bsky.embed.record") => text(&embed["record"]["uri"]),
                    Some("app.bsky.embed.recordWithMedia") => {
                        text(&embed["record"]["record"]["uri"])
                    }
                    _ => None,
                };
                Structure {
                    hashtags,
                    reply_to: text(&record["reply"]["parent"]["uri"]),
                    quote_of,
                    embed: embed["$type"]
                        .as_str()
                        .map(|t| t.trim_start_matches("app.bsky.embed.").to_owned()),
                    repost_of: None,
                }
            }
            "app.bsky.feed.repost" => Structure {
                hashtags: Vec::new(),
                reply_to: None,
                quote_of: None,
                embed: None,
                repost_of: text(&record["subject"]["uri"]),
            },
            _ => continue,
        };
        out.insert(uri, structure);
    }
    out
}

/// The structure columns of every stored row (hashtags parsed from their JSON array).
fn stored_structure(db: &Path) -> BTreeMap<String, Structure> {
    let conn = rusqlite::Connection::open(db).expect("store");
    let mut statement = conn
        .prepare(
            "SELECT id, hashtags, reply_to, quote_of, embed, \
             CASE WHEN kind = 'retweet' THEN retweet_of END FROM posts",
        )
        .expect("query");
    let rows = statement
        .query_map([], |r| {
            let hashtags: Option<String> = r.get(1)?;
            let hashtags = hashtags
                .map(|json| serde_json::from_str(&json).expect("hashtags are a JSON array"))
                .unwrap_or_default();
            Ok((
                r.get(0)?,
                Structure {
                    hashtags,
                    reply_to: r.get(2)?,
                    quote_of: r.get(3)?,
                    embed: r.get(4)?,
                    repost_of: r.get(5)?,
                },
            ))
        })
        .expect("rows");
    rows.collect::<Result<_, _>>().expect("structure")
}

/// The reposts whose subject is a stored post (subject id by repost id), and the others.
fn repost_split(
    want: &BTreeMap<String, Structure>,
) -> (BTreeMap<String, String>, BTreeSet<String>) {
    let (mut as_subject, mut without_text) = (BTreeMap::new(), BTreeSet::new());
    for (id, structure) in want {
        let Some(subject) = &structure.repost_of else {
            continue;
        };
        match want.get(subject) {
            Some(s) if s.repost_of.is_none() => {
                as_subject.insert(id.clone(), subject.clone());
            }
            _ => {
                without_text.insert(id.clone());
            }
        }
    }
    (as_subject, without_text)
}

/// (text, lang, detected_lang, sentiment_compound, sentiment_label, text_from) of a row.
type Analysed = (
    String,
    Option<String>,
    Option<String>,
    Option<f64>,
    Option<String>,
    Option<String>,
);

fn analysed(conn: &rusqlite::Connection, id: &str) -> Analysed {
    conn.query_row(
        "SELECT text, lang, detected_lang, sentiment_compound, sentiment_label, text_from \
         FROM posts WHERE id = ?1",
        [id],
        |r| {
            Ok((
                r.get(0)?,
                r.get(1)?,
                r.get(2)?,
                r.get(3)?,
                r.get(4)?,
                r.get(5)?,
            ))
        },
    )
    .unwrap_or_else(|e| panic!("{id} not stored: {e}"))
}

/// Reposts analysed as their subject carry its text and analysis; the others none.
fn assert_reposts(
    db: &Path,
    as_subject: &BTreeMap<String, String>,
    without_text: &BTreeSet<String>,
) {
    let conn = rusqlite::Connection::open(db).expect("store");
    for (repost, subject) in as_subject {
        let (text, lang, detected, compound, label, from) = analysed(&conn, repost);
        let subject = analysed(&conn, subject);
        assert!(!text.is_empty() && label.is_some(), "{repost}");
        assert_eq!(
            (text, lang, detected, compound, label),
            (subject.0, subject.1, subject.2, subject.3, subject.4),
            "{repost}"
        );
        assert_eq!(from.as_deref(), Some("subject"), "{repost}");
    }
    for repost in without_text {
        let got = analysed(&conn, repost);
        let want: Analysed = (
            String::new(),
            None,
            None,
            None,
            None,
            Some("missing".to_owned()),
        );
        assert_eq!(got, want, "{repost}");
    }
    let from_record: i64 = conn
        .query_row(
            "SELECT COUNT(*) FROM posts WHERE text_from = 'record' AND kind = 'tweet'",
            [],
            |r| r.get(0),
        )
        .expect("count");
    let posts: i64 = conn
        .query_row("SELECT COUNT(*) FROM posts WHERE kind = 'tweet'", [], |r| {
            r.get(0)
        })
        .expect("count");
    assert_eq!(from_record, posts, "every post's text is its record's");
}

/// Every stored row's columns by id, as JSON, but those that say when and from which offset
/// it was written (a replay writes the records again, at later offsets).
fn snapshot(db: &Path) -> BTreeMap<String, serde_json::Value> {
    let conn = rusqlite::Connection::open(db).expect("store");
    let mut statement = conn.prepare("SELECT * FROM posts").expect("query");
    let names: Vec<String> = statement
        .column_names()
        .iter()
        .map(|n| n.to_string())
        .collect();
    let rows = statement
        .query_map([], |r| {
            let mut row = serde_json::Map::new();
            for (i, name) in names.iter().enumerate() {
                let value = match r.get_ref(i)? {
                    rusqlite::types::ValueRef::Null => serde_json::Value::Null,
                    rusqlite::types::ValueRef::Integer(n) => n.into(),
                    rusqlite::types::ValueRef::Real(x) => x.into(),
                    rusqlite::types::ValueRef::Text(t) => String::from_utf8_lossy(t).into(),
                    rusqlite::types::ValueRef::Blob(_) => "blob".into(),
                };
                if !matches!(
                    name.as_str(),
                    "stored_at_ms" | "received_at_ms" | "source_offset"
                ) {
                    row.insert(name.clone(), value);
                }
            }
            Ok((r.get::<_, String>("id")?, serde_json::Value::Object(row)))
        })
        .expect("rows");
    rows.collect::<Result<_, _>>().expect("snapshot")
}
