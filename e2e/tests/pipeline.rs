//! End to end against a real Kafka broker (scripts/kafka-local.sh start; scripts/test.sh does
//! it): a real recording replayed by `tweet-producer` into topics made for this test, read
//! back record by record, then analysed and stored by `tweet-consumer` twice.
//!
//! Needs the two binaries built (`cargo build --release --bins`; scripts/test.sh does it) and
//! the shared recordings beside the checkout (`../shared/data`).

mod support;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use support::{
    analysis_summary, assert_group_at_end, create_topics, delete_topics, producer_command,
    producer_summary, read_back, run, shared_data, topic_flags, unique,
};
use tweet_pipeline_common::config::TopicNames;
use tweet_pipeline_common::{route_line, Destination, Kind, LineClass};

/// A real recording: two sample-stream files (tweets, retweets, deletes), a filter-stream file
/// (CRLF, extended tweets, limit notices), a keep-alive between each, and the truncated HTTP
/// capture last (a real cut-off message, no final newline).
fn recording(dir: &Path) -> (PathBuf, Vec<u8>) {
    let data = shared_data().join("twitter_v1");
    let mut bytes = Vec::new();
    for file in [
        "stream_sample/sample_2013-05-05_MyCSHome.jsonl",
        "stream_sample/sample_2015-10-03_juloi.jsonl",
        "stream_filter/filter_locations_2018-01-23_pablobarbera.jsonl",
    ] {
        bytes.extend(std::fs::read(data.join(file)).expect("recording"));
        if !bytes.ends_with(b"\n") {
            bytes.push(b'\n');
        }
        bytes.extend_from_slice(b"\r\n");
    }
    bytes.extend(
        std::fs::read(
            data.join("raw_http/statuses_filter_2015-12-02T165907Z_truncated.body.decoded.txt"),
        )
        .expect("capture"),
    );
    let path = dir.join("recording.jsonl");
    std::fs::write(&path, &bytes).expect("write recording");
    (path, bytes)
}

/// A record as (topic, key, value).
type Expected = (String, Option<String>, Vec<u8>);

/// (topic, key, value) of every record the recording must produce, by the routing rules.
fn expected_records(bytes: &[u8], names: &TopicNames) -> (Vec<Expected>, usize) {
    let mut records = Vec::new();
    let mut keepalives = 0;
    for line in bytes.split(|b| *b == b'\n') {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        match route_line(line) {
            LineClass::KeepAlive => keepalives += 1,
            LineClass::Record(routed) => records.push((
                names.name(routed.destination()).to_owned(),
                routed.key.map(|k| k.into_owned()),
                line.to_vec(),
            )),
        }
    }
    (records, keepalives)
}

#[tokio::test(flavor = "multi_thread")]
async fn replayed_recording_lands_once_per_line_and_is_stored_once_per_post() {
    let prefix = unique("e2e");
    let names = create_topics(&format!("{prefix}-")).await;
    let dir = tempfile::tempdir().expect("temp dir");
    let (path, bytes) = recording(dir.path());
    let (expected, keepalives) = expected_records(&bytes, &names);

    // 1. Producer: every non-blank line becomes exactly one record on its topic, unchanged.
    let produced = producer_summary(&run(producer_command()
        .arg("--replay")
        .arg(&path)
        .args(topic_flags(&names))
        .arg("--metrics-addr=off")));
    let lines = expected.len() + keepalives;
    assert_eq!(produced.lines_read, lines as u64);
    assert_eq!(produced.keepalives, keepalives as u64);
    assert_eq!(keepalives, 3);
    assert_eq!(produced.failed, 0);
    assert_eq!(produced.unacknowledged, 0);

    let topics: Vec<&str> = Destination::ALL.iter().map(|d| names.name(*d)).collect();
    let records = read_back(&topics, expected.len());
    assert_eq!(
        records.len(),
        expected.len(),
        "records in Kafka vs non-blank lines"
    );
    for (topic, _, payload, headers) in &records {
        let kind = headers
            .get("kind")
            .and_then(|k| Kind::parse(k))
            .expect("kind header");
        assert_eq!(names.name(kind.destination()), topic);
        assert_eq!(
            headers.get("source").map(String::as_str),
            Some("replay:recording.jsonl")
        );
        assert!(headers
            .get("received_at_ms")
            .and_then(|t| t.parse::<i64>().ok())
            .is_some());
        if topic == &names.deadletter {
            assert!(
                headers
                    .get("error")
                    .is_some_and(|e| e.starts_with("malformed json")),
                "{headers:?}"
            );
            assert!(
                payload.starts_with(b"{\"created_at\""),
                "the cut-off capture, as received"
            );
        }
    }
    let mut got: Vec<_> = records.into_iter().map(|(t, k, v, _)| (t, k, v)).collect();
    let mut want = expected.clone();
    got.sort();
    want.sort();
    assert!(
        got == want,
        "records in Kafka differ from the lines of the recording"
    );
    let per_topic = |t: &str| want.iter().filter(|(topic, _, _)| topic == t).count();
    assert!(per_topic(&names.tweets) > 1000 && per_topic(&names.retweets) > 300);
    assert!(per_topic(&names.control) > 480 && per_topic(&names.deadletter) == 1);

    // 2. Analysis consumer: one row per distinct post, deletes applied.
    let statuses: BTreeSet<String> = want
        .iter()
        .filter(|(t, _, _)| t == &names.tweets || t == &names.retweets)
        .map(|(_, k, _)| k.clone().expect("post key"))
        .collect();
    let deleted: BTreeSet<String> = want
        .iter()
        .filter(|(t, _, v)| t == &names.control && v.starts_with(b"{\"delete\""))
        .map(|(_, k, _)| k.clone().expect("delete key"))
        .collect();
    let expected_rows: BTreeSet<String> = statuses.difference(&deleted).cloned().collect();
    assert!(
        statuses.len() - expected_rows.len() >= 1,
        "the recording deletes some of its own posts"
    );

    let db = dir.path().join("tweets.db");
    let group = unique("analysis");
    let consume = || {
        run(support::consumer_command()
            .args(["--group", &group, "--role", "analysis", "--exit-at-end"])
            .arg("--db")
            .arg(&db)
            .args(topic_flags(&names))
            .arg("--metrics-addr=off"))
    };
    let first = consume();
    let consumed =
        per_topic(&names.tweets) + per_topic(&names.retweets) + per_topic(&names.control);
    // The run also reads back the tombstones it writes: one for each copy of a deleted post it
    // stored or kept out, none for deletes of posts the recording never carried.
    let tombstones = analysis_summary(&first).tombstones_written;
    let deleted_copies = want
        .iter()
        .filter(|(t, k, _)| {
            (t == &names.tweets || t == &names.retweets)
                && k.as_ref().is_some_and(|k| deleted.contains(k))
        })
        .count() as u64;
    let deleted_posts = (statuses.len() - expected_rows.len()) as u64;
    assert!(
        (deleted_posts..=deleted_copies).contains(&tombstones),
        "{tombstones} tombstones for {deleted_posts} deleted posts ({deleted_copies} copies)"
    );
    assert_eq!(
        analysis_summary(&first).records_consumed,
        consumed as u64 + tombstones
    );
    assert_eq!(analysis_summary(&first).records_dead_lettered, 0);
    let conn = rusqlite::Connection::open(&db).expect("store");
    let rows = support::stored_ids(&db);
    assert_eq!(rows.len(), expected_rows.len());
    assert!(
        rows == expected_rows,
        "stored ids differ from the distinct undeleted posts"
    );
    let scored: i64 = conn
        .query_row(
            "SELECT COUNT(*) FROM posts WHERE sentiment_label IS NOT NULL",
            [],
            |r| r.get(0),
        )
        .unwrap();
    // The sentiment model's languages, scored as the platform's tag (its primary subtag) or,
    // without one, the detected language (docs/models.md).
    let covered = "('ar', 'de', 'en', 'es', 'fr', 'hi', 'it', 'pt')";
    let in_covered: i64 = conn
        .query_row(
            &format!(
                "SELECT COUNT(*) FROM posts WHERE \
                 (lang IS NOT NULL AND lang != 'und' \
                  AND lower(substr(lang, 1, instr(lang || '-', '-') - 1)) IN {covered}) \
                 OR ((lang IS NULL OR lang = 'und') AND detected_lang IN {covered})"
            ),
            [],
            |r| r.get(0),
        )
        .unwrap();
    let english: i64 = conn
        .query_row("SELECT COUNT(*) FROM posts WHERE sentiment_label IS NOT NULL AND (lang = 'en' OR lang LIKE 'en-%' OR ((lang IS NULL OR lang = 'und') AND detected_lang = 'en'))", [], |r| r.get(0))
        .unwrap();
    assert_eq!(
        scored, in_covered,
        "exactly the posts in the sentiment model's languages carry a sentiment"
    );
    assert!(
        english > 100 && scored > english,
        "{english} English of {scored} scored"
    );

    // 3. A second run from the committed offsets adds nothing.
    let second = consume();
    assert_eq!(analysis_summary(&second).records_consumed, 0);
    assert_eq!(analysis_summary(&second).rows_written, 0);
    assert!(support::stored_ids(&db) == rows);

    // The group's committed offsets are the end of every partition.
    assert_group_at_end(&group, &[&names.tweets, &names.retweets, &names.control]);
    delete_topics(&names).await;
}
