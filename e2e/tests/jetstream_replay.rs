//! A real Bluesky Jetstream v1 recording (`shared/data/bluesky/jetstream-v1/`, the
//! bluesky-social/jetstream corpus: 152 consecutive events) replayed by `tweet-producer` into
//! topics made for this test and read back: every event is one record, its value the event's
//! bytes unchanged, its key the AT URI (or the DID for identity and account events), on the
//! topic its `kind` header names, in the numbers the MANIFEST's counts give. Then the analysis
//! group stores one row per post and repost (keyed by AT URI), applies the recording's delete,
//! and dead-letters nothing.
//!
//! Needs the binaries built (`cargo build --release --bins`) and the shared recordings.

mod support;

use std::collections::{BTreeMap, BTreeSet};

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
    delete_topics(&names).await;
}
