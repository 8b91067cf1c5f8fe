//! `tweet-producer --source bluesky` against the stream emulator's Jetstream (`/subscribe` over
//! WebSocket, serving the real bluesky-social/jetstream corpus of 152 events), into topics
//! made for each test on the real broker:
//! - client-side rules: the posts each rule matches, read independently from the recording,
//!   are the records written with that rule's tag in `matching_rules`; the rest are counted
//!   as unmatched and not written; deletes, identity and account events are always written;
//! - a SIGKILL mid-stream and a restart on the saved cursor (rewind 0, so nothing the
//!   watermark did not cover is served again): every event the emulator served is in Kafka
//!   at least once, and the analysis group stores exactly one row per undeleted post.
//!
//! Needs the binaries built (`cargo build --release --bins`) and the shared recordings.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use rustix::process::Signal;
use support::{
    analysis_summary, analysis_to_end, create_topics, delete_topics, free_ports, get, http,
    producer_command, producer_summary, read_back, run, sample, scrape, shared_data, signal,
    spawn_emulator, stored_ids, terminate, topic_flags, unique, Emulator,
};
use tweet_pipeline_common::config::TopicNames;
use tweet_pipeline_common::Destination;
use tweet_pipeline_emulator::JetstreamLog;

const RECORDING: &str = "bluesky/jetstream-v1/bluesky-social_jetstream__corpus_expected_v1.jsonl";

/// The recording's events, parsed.
fn events() -> Vec<serde_json::Value> {
    let text =
        std::fs::read_to_string(shared_data().join(RECORDING)).expect("the Jetstream recording");
    text.lines()
        .map(|line| serde_json::from_str(line).expect("JSON"))
        .collect()
}

fn collection(event: &serde_json::Value) -> Option<&str> {
    event["commit"]["collection"].as_str()
}

/// The events the producer asks for by default: posts, reposts, and (always sent) identity
/// and account events.
fn asked_for(event: &serde_json::Value) -> bool {
    event["kind"] != "commit"
        || matches!(
            collection(event),
            Some("app.bsky.feed.post" | "app.bsky.feed.repost")
        )
}

/// The record key the producer must write: the AT URI, or the DID.
fn key_of(event: &serde_json::Value) -> String {
    let did = event["did"].as_str().expect("did");
    match (collection(event), event["commit"]["rkey"].as_str()) {
        (Some(collection), Some(rkey)) => format!("at://{did}/{collection}/{rkey}"),
        _ => did.to_owned(),
    }
}

fn jetstream_url(emulator: &Emulator) -> String {
    format!("ws://127.0.0.1:{}/subscribe", emulator.port)
}

fn jetstream_log(emulator: &Emulator) -> JetstreamLog {
    let body = get(emulator.port, "/_emulator/jetstream/log").expect("the jetstream log");
    serde_json::from_str(&body).expect("the log's JSON")
}

/// The producer's `lines_read_total`, once its `/metrics` answers.
fn lines_read(port: u16) -> Option<f64> {
    sample(&scrape(port)?, "tweet_pipeline_producer_lines_read_total")
}

/// Waits (at most 60 s) until `done`.
fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn spawn_producer(
    emulator: &Emulator,
    names: &TopicNames,
    spool: &Path,
    metrics_port: u16,
    extra: &[&str],
) -> Child {
    producer_command()
        .args([
            "--source",
            "bluesky",
            "--jetstream",
            &jetstream_url(emulator),
        ])
        .args(topic_flags(names))
        .arg("--spool-dir")
        .arg(spool)
        .arg(format!("--metrics-addr=127.0.0.1:{metrics_port}"))
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("tweet-producer starts")
}

/// Whether `text` (lower-cased) has `word` with no ASCII letter, digit or `_` on either side.
fn has_word(text: &str, word: &str) -> bool {
    let text = text.to_lowercase();
    let bytes = text.as_bytes();
    let is_word = |b: Option<&u8>| b.is_some_and(|b| b.is_ascii_alphanumeric() || *b == b'_');
    text.match_indices(word).any(|(at, _)| {
        !is_word(at.checked_sub(1).and_then(|i| bytes.get(i)))
            && !is_word(bytes.get(at + word.len()))
    })
}

#[tokio::test(flavor = "multi_thread")]
async fn rules_are_matched_on_the_client_with_their_tags() {
    let names = create_topics(&format!("{}-", unique("e2e-bsky-rules"))).await;
    let events = events();
    let asked: Vec<&serde_json::Value> = events.iter().filter(|e| asked_for(e)).collect();
    assert_eq!(
        asked.len(),
        35,
        "17 posts, 1 post delete, 15 reposts, identity, account"
    );
    let first_reposter = asked
        .iter()
        .find(|e| collection(e) == Some("app.bsky.feed.repost"))
        .and_then(|e| e["did"].as_str())
        .expect("a repost")
        .to_owned();

    // The rules, and what each matches, read from the documents independently.
    let from_rule = format!("is:retweet from:{first_reposter}");
    let rules: [(&str, &str); 3] = [
        ("lang:tr", "turkish"),
        ("lang:en -has:media", "english-plain"),
        (&from_rule, "fan"),
    ];
    let langs = |e: &serde_json::Value| -> Vec<String> {
        e["commit"]["record"]["langs"]
            .as_array()
            .map(|l| {
                l.iter()
                    .filter_map(|l| l.as_str())
                    .map(str::to_lowercase)
                    .collect()
            })
            .unwrap_or_default()
    };
    let has_media = |e: &serde_json::Value| {
        matches!(
            e["commit"]["record"]["embed"]["$type"].as_str(),
            Some(
                "app.bsky.embed.images" | "app.bsky.embed.video" | "app.bsky.embed.recordWithMedia"
            )
        )
    };
    let mut want_tags = BTreeMap::<String, Vec<String>>::new();
    let mut posts_and_reposts = 0;
    for event in &asked {
        let is_post = collection(event) == Some("app.bsky.feed.post")
            && event["commit"]["operation"] != "delete";
        let is_repost = collection(event) == Some("app.bsky.feed.repost");
        if !(is_post || is_repost) {
            continue;
        }
        posts_and_reposts += 1;
        let mut tags = Vec::new();
        let text = event["commit"]["record"]["text"]
            .as_str()
            .unwrap_or_default();
        if is_post && has_word(text, "the") {
            tags.push("tweet-pipeline:track:the".to_owned());
        }
        let english = langs(event)
            .iter()
            .any(|l| l == "en" || l.starts_with("en-"));
        if is_post && langs(event).iter().any(|l| l == "tr") {
            tags.push("tweet-pipeline:turkish".to_owned());
        }
        if is_post && english && !has_media(event) {
            tags.push("tweet-pipeline:english-plain".to_owned());
        }
        if is_repost && event["did"] == first_reposter.as_str() {
            tags.push("tweet-pipeline:fan".to_owned());
        }
        if !tags.is_empty() {
            want_tags.insert(key_of(event), tags);
        }
    }
    // The recording decides these numbers; they pin that each rule selects something.
    let per_tag = |tag: &str| {
        want_tags
            .values()
            .filter(|t| t.iter().any(|x| x.ends_with(tag)))
            .count()
    };
    assert_eq!(per_tag(":turkish"), 3);
    assert!(per_tag(":english-plain") > 0 && per_tag(":track:the") > 0 && per_tag(":fan") > 0);
    let unmatched = posts_and_reposts - want_tags.len();
    assert!(unmatched > 0, "some posts match no rule");

    let emulator = spawn_emulator(&["--jetstream-rate", "0"]);
    let spool = tempfile::tempdir().expect("temp dir");
    let (metrics_port, _) = free_ports();
    let mut args: Vec<&str> = vec!["--track", "the"];
    for (rule, tag) in &rules {
        args.extend(["--rule", rule, "--tag", tag]);
    }
    let producer = spawn_producer(&emulator, &names, spool.path(), metrics_port, &args);
    wait_until("the producer to read the 35 events", || {
        lines_read(metrics_port) == Some(35.0)
    });
    let summary = producer_summary(&terminate(producer));
    assert_eq!(summary.lines_read, 35);
    assert_eq!(summary.unmatched as usize, unmatched);
    assert_eq!(summary.failed + summary.unacknowledged, 0);

    // Written: the matched posts and reposts, and the 3 control events.
    let written = want_tags.len() + 3;
    let topics: Vec<&str> = Destination::ALL.iter().map(|d| names.name(*d)).collect();
    let records = read_back(&topics, written);
    assert_eq!(records.len(), written);
    let mut got_tags = BTreeMap::new();
    let mut control = 0;
    for (topic, key, value, headers) in &records {
        let key = key.clone().expect("a key");
        let event: serde_json::Value = serde_json::from_slice(value).expect("the event's JSON");
        assert_eq!(key_of(&event), key, "the key is the AT URI or DID");
        assert!(
            asked.iter().any(|e| **e == event),
            "the value is a recorded event, unchanged"
        );
        if topic == names.name(Destination::Control) {
            control += 1;
            assert!(!headers.contains_key("matching_rules"));
            continue;
        }
        let tags: Vec<String> = headers["matching_rules"]
            .split(',')
            .map(str::to_owned)
            .collect();
        got_tags.insert(key, tags);
    }
    assert_eq!(control, 3, "the delete, the identity and the account event");
    assert_eq!(got_tags, want_tags);
    drop(emulator);
    delete_topics(&names).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_sigkilled_producer_resumes_from_its_cursor_and_loses_nothing() {
    let names = create_topics(&format!("{}-", unique("e2e-bsky-kill"))).await;
    let events = events();
    let asked: Vec<&serde_json::Value> = events.iter().filter(|e| asked_for(e)).collect();
    // 35 events at 10 a second: the kill lands in the middle.
    let emulator = spawn_emulator(&["--jetstream-rate", "10"]);
    let spool = tempfile::tempdir().expect("temp dir");
    let cursor_file = spool.path().join("jetstream.cursor");
    let (first_port, second_port) = free_ports();
    // Rewind 0: the restart asks for exactly the saved cursor, so an event the cursor passed
    // is never served again and must already be in Kafka.
    let rewind = ["--cursor-rewind-secs", "0"];

    let first = spawn_producer(&emulator, &names, spool.path(), first_port, &rewind);
    wait_until("12 events and a saved cursor", || {
        jetstream_log(&emulator)
            .connections
            .first()
            .is_some_and(|c| c.events_sent >= 12)
            && cursor_file.exists()
    });
    signal(&first, Signal::KILL);
    let killed = first.wait_with_output().expect("the producer exits");
    assert!(!killed.status.success(), "SIGKILL ends the producer");
    let saved: i64 = std::fs::read_to_string(&cursor_file)
        .expect("the cursor file")
        .trim()
        .parse()
        .expect("a time_us");

    let second = spawn_producer(&emulator, &names, spool.path(), second_port, &rewind);
    wait_until("the restart to reach the end of the recording", || {
        let log = jetstream_log(&emulator);
        let Some(resumed) = log.connections.get(1) else {
            return false;
        };
        resumed.sent.last().map(|e| e.time_us)
            == asked.iter().filter_map(|e| e["time_us"].as_i64()).max()
            && lines_read(second_port) == Some(resumed.events_sent as f64)
    });
    let resumed_summary = producer_summary(&terminate(second));
    assert_eq!(resumed_summary.failed + resumed_summary.unacknowledged, 0);

    let log = jetstream_log(&emulator);
    assert_eq!(log.connections.len(), 2, "one connection per run");
    assert_eq!(
        log.connections[0].query.cursor, None,
        "the first run starts at the live tip"
    );
    assert_eq!(
        log.connections[1].query.cursor,
        Some(saved),
        "the restart asks for the saved cursor"
    );
    let served: BTreeSet<String> = log
        .connections
        .iter()
        .flat_map(|c| &c.sent)
        .map(|e| match (&e.collection, &e.rkey) {
            (Some(collection), Some(rkey)) => format!("at://{}/{collection}/{rkey}", e.did),
            _ => e.did.clone(),
        })
        .collect();
    let all: BTreeSet<String> = asked.iter().map(|e| key_of(e)).collect();
    assert_eq!(
        served, all,
        "between them the two runs were served the whole recording"
    );

    let topics: Vec<&str> = Destination::ALL.iter().map(|d| names.name(*d)).collect();
    let records = read_back(&topics, served.len());
    let in_kafka: BTreeSet<String> = records.iter().filter_map(|r| r.1.clone()).collect();
    let missing: Vec<&String> = served.difference(&in_kafka).collect();
    assert!(missing.is_empty(), "served but not in Kafka: {missing:?}");

    // The store: one row per post and repost no delete names.
    let deleted: BTreeSet<String> = asked
        .iter()
        .filter(|e| e["commit"]["operation"] == "delete")
        .map(|e| key_of(e))
        .collect();
    let rows: BTreeSet<String> = asked
        .iter()
        .filter(|e| e["kind"] == "commit" && e["commit"]["operation"] != "delete")
        .map(|e| key_of(e))
        .filter(|key| !deleted.contains(key))
        .collect();
    assert_eq!((rows.len(), deleted.len()), (32, 1));
    let dir = tempfile::tempdir().expect("temp dir");
    let db = dir.path().join("tweets.db");
    let consumed = analysis_summary(&run(analysis_to_end(&db)
        .args(topic_flags(&names))
        .arg("--metrics-addr=off")));
    assert_eq!(consumed.records_dead_lettered, 0);
    assert!(consumed.deletes_applied >= 1);
    assert!(
        stored_ids(&db) == rows,
        "stored ids differ from the undeleted posts and reposts"
    );
    println!(
        "{}",
        serde_json::json!({
            "served_first": log.connections[0].events_sent,
            "served_after_restart": log.connections[1].events_sent,
            "saved_cursor": saved,
            "records_in_kafka": records.len(),
            "distinct_keys": in_kafka.len(),
            "rows": rows.len(),
        })
    );
    drop(emulator);
    delete_topics(&names).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_dropped_connection_resumes_and_a_malformed_frame_is_dead_lettered() {
    let names = create_topics(&format!("{}-", unique("e2e-bsky-faults"))).await;
    let events = events();
    let asked: Vec<&serde_json::Value> = events.iter().filter(|e| asked_for(e)).collect();
    let emulator = spawn_emulator(&["--jetstream-rate", "0"]);
    // The first connection is cut after 10 events without a close frame; the second sends
    // the first half of its 4th event as a frame of its own, then that event whole.
    for fault in [
        r#"{"api":"jetstream","drop_after_lines":10}"#,
        r#"{"api":"jetstream","malformed_after_lines":3}"#,
    ] {
        let (status, body) = http(
            emulator.port,
            "POST",
            "/_emulator/faults",
            &[("content-type", "application/json")],
            fault,
        );
        assert!((200..300).contains(&status), "{status} {body}");
    }
    let spool = tempfile::tempdir().expect("temp dir");
    let (metrics_port, _) = free_ports();
    let producer = spawn_producer(
        &emulator,
        &names,
        spool.path(),
        metrics_port,
        &["--cursor-rewind-secs", "0"],
    );
    let log_total = || {
        let log = jetstream_log(&emulator);
        (
            log.connections.len(),
            log.connections.iter().map(|c| c.events_sent).sum::<u64>(),
        )
    };
    // Connection 2 starts at the 10th event again (the cursor is inclusive): 10 + 26 events,
    // and the malformed frame.
    wait_until("the second connection to reach the end", || {
        log_total() == (2, 10 + 26) && lines_read(metrics_port) == Some(37.0)
    });
    let metrics = scrape(metrics_port).expect("/metrics");
    // Cut without a close frame: a network error (reconnected at once all the same, since
    // the connection had delivered events).
    let cut = sample(
        &metrics,
        r#"tweet_pipeline_producer_stream_disconnects_total{api="bluesky",reason="network"}"#,
    );
    let summary = producer_summary(&terminate(producer));
    assert_eq!(cut, Some(1.0), "one disconnect: {metrics}");
    assert_eq!(summary.lines_read, 37);
    assert_eq!(summary.acked[Destination::DeadLetter], 1);
    assert_eq!(summary.failed + summary.unacknowledged, 0);

    let topics: Vec<&str> = Destination::ALL.iter().map(|d| names.name(*d)).collect();
    let records = read_back(&topics, 37);
    assert_eq!(records.len(), 37);
    let dead: Vec<_> = records
        .iter()
        .filter(|r| r.0 == names.name(Destination::DeadLetter))
        .collect();
    assert_eq!(dead.len(), 1);
    let (_, key, value, headers) = dead[0];
    assert_eq!(headers["kind"], "malformed", "{headers:?}");
    assert!(
        !headers["error"].is_empty(),
        "the reason is in the error header"
    );
    assert!(key.is_none(), "a cut-off event has no key");
    let text = std::fs::read_to_string(shared_data().join(RECORDING)).expect("the recording");
    assert!(
        text.lines().any(|line| !value.is_empty()
            && value.len() < line.len()
            && line.as_bytes().starts_with(value)),
        "the dead letter holds the cut-off frame's bytes: the start of a recorded event"
    );
    let in_kafka: BTreeSet<String> = records.iter().filter_map(|r| r.1.clone()).collect();
    let all: BTreeSet<String> = asked.iter().map(|e| key_of(e)).collect();
    assert_eq!(in_kafka, all, "every event of the recording is in Kafka");
    drop(emulator);
    delete_topics(&names).await;
}
