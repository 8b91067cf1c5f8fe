//! Delete compliance and poison records, against the real broker:
//! - a delete notice removes the post from the store and erases it from Kafka (a tombstone,
//!   then log compaction); a delete that arrives before its post keeps the post out of both;
//! - a record the consumer cannot parse goes to the dead-letter topic with its original
//!   topic, partition, offset and the reason, and the group's offset moves past it;
//! - a transient store failure (the database locked) does not move the offset;
//! - X API v2 batch compliance (`tweet-consumer compliance` against the in-process emulator):
//!   posts a job reports deleted vanish from the store and get tombstones, the others stay,
//!   and a failed job is replaced without any record written twice.
//!
//! Reads a v1.1 recording and the real compliance results (`x_api_v2/twarc-csv_test-data/
//! tweets_compliance.jsonl`) from ../shared/data (fails with a message when it is absent).

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use rdkafka::config::ClientConfig;
use rdkafka::consumer::Consumer;
use rdkafka::message::{Header, Message, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};
use support::{
    analysis_summary, bootstrap, delete_topics, json_summary, producer_command, read_back, run,
    shared_data, stored_ids, topic_flags, unique, PARTITIONS,
};
use tweet_pipeline_common::config::TopicNames;
use tweet_pipeline_common::{route_line, Destination, LineClass};
use tweet_pipeline_consumer::compliance::ComplianceSummary;

/// Topics whose post topics compact within seconds (the production settings in topics.sh do
/// the same within hours).
async fn fast_compacting_topics(prefix: &str) -> TopicNames {
    support::create_topics_on(
        &bootstrap(),
        prefix,
        &[
            ("segment.ms", "1000"),
            ("min.cleanable.dirty.ratio", "0.01"),
            ("delete.retention.ms", "1000"),
            ("min.compaction.lag.ms", "0"),
        ],
    )
    .await
}

/// (id, line) of the plain posts of a real sample-stream recording.
fn posts() -> Vec<(String, String)> {
    let path = shared_data().join("twitter_v1/stream_sample/sample_2013-05-05_MyCSHome.jsonl");
    let text = std::fs::read_to_string(&path).expect("recording");
    text.lines()
        .filter_map(|line| match route_line(line.as_bytes()) {
            LineClass::Record(routed) if routed.destination() == Destination::Tweets => {
                Some((routed.key?.into_owned(), line.to_owned()))
            }
            _ => None,
        })
        .collect()
}

/// A v1.1 delete notice, shaped like the stream's ("delete" → "status" → ids).
fn delete_notice(id: &str) -> String {
    format!(
        r#"{{"delete":{{"status":{{"id":{id},"id_str":"{id}","user_id":1,"user_id_str":"1"}}}}}}"#
    )
}

fn replay(lines: &[String], names: &TopicNames, dir: &Path, name: &str) {
    let path = dir.join(name);
    std::fs::write(&path, lines.join("\n") + "\n").expect("input");
    run(producer_command()
        .arg("--replay")
        .arg(&path)
        .args(topic_flags(names))
        .arg("--metrics-addr=off"));
}

fn consume(group: &str, db: &Path, names: &TopicNames) -> std::process::Output {
    run(support::consumer_command()
        .args(["--group", group, "--role", "analysis", "--exit-at-end"])
        .arg("--db")
        .arg(db)
        .args(topic_flags(names))
        .arg("--metrics-addr=off"))
}

/// The latest value per key in the post topics, as a reader from the beginning sees them:
/// `None` for a key whose last record is a tombstone.
fn latest_values(names: &TopicNames) -> BTreeMap<String, Option<usize>> {
    let consumer = support::from_beginning(&bootstrap(), &[&names.tweets, &names.retweets]);
    let mut ends = Vec::new();
    for topic in [&names.tweets, &names.retweets] {
        for partition in 0..PARTITIONS {
            let (_, high) = consumer
                .fetch_watermarks(topic, partition, Duration::from_secs(10))
                .expect("watermarks");
            ends.push(((topic.clone(), partition), high));
        }
    }
    let mut latest = BTreeMap::new();
    let mut positions: BTreeMap<(String, i32), i64> = BTreeMap::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline
        && ends
            .iter()
            .any(|(tp, high)| positions.get(tp).copied().unwrap_or(-1) + 1 < *high)
    {
        if let Some(Ok(message)) = consumer.poll(Duration::from_millis(200)) {
            positions.insert(
                (message.topic().to_owned(), message.partition()),
                message.offset(),
            );
            if let Some(key) = message.key() {
                latest.insert(
                    String::from_utf8_lossy(key).into_owned(),
                    message.payload().map(<[u8]>::len),
                );
            }
        }
    }
    latest
}

/// How many of `keys` have a record with a value (not a tombstone) in the post topics.
fn values_for(names: &TopicNames, keys: &BTreeSet<String>) -> usize {
    let consumer = support::from_beginning(&bootstrap(), &[&names.tweets, &names.retweets]);
    let mut remaining = 0;
    for topic in [&names.tweets, &names.retweets] {
        for partition in 0..PARTITIONS {
            let (low, high) = consumer
                .fetch_watermarks(topic, partition, Duration::from_secs(10))
                .expect("watermarks");
            remaining += high - low;
        }
    }
    // Compacted partitions have offset gaps, so read until quiet rather than counting.
    let mut found = BTreeSet::new();
    let mut quiet_since = Instant::now();
    while quiet_since.elapsed() < Duration::from_secs(2) && remaining > 0 {
        if let Some(Ok(message)) = consumer.poll(Duration::from_millis(200)) {
            quiet_since = Instant::now();
            let key = message
                .key()
                .map(|k| String::from_utf8_lossy(k).into_owned());
            if let Some(key) = key.filter(|k| message.payload().is_some() && keys.contains(k)) {
                found.insert(key);
            }
        }
    }
    found.len()
}

#[tokio::test(flavor = "multi_thread")]
async fn deletes_erase_posts_from_the_store_and_from_kafka() {
    let names = fast_compacting_topics(&format!("{}-", unique("compliance"))).await;
    let dir = tempfile::tempdir().expect("temp dir");
    let db = dir.path().join("tweets.db");
    let group = unique("analysis");
    let posts = posts();
    assert!(posts.len() > 500, "the recording holds its posts");

    // 1. Posts, then delete notices for every tenth: gone from the store, tombstoned.
    let deleted: BTreeSet<String> = posts.iter().step_by(10).map(|(id, _)| id.clone()).collect();
    let mut lines: Vec<String> = posts.iter().map(|(_, line)| line.clone()).collect();
    lines.extend(deleted.iter().map(|id| delete_notice(id)));
    // 2. A delete for a post that has not arrived yet ...
    let (late_id, late_line) = posts.last().cloned().expect("a post");
    lines.retain(|line| line != &late_line);
    lines.push(delete_notice(&late_id));
    replay(&lines, &names, dir.path(), "first.jsonl");
    let first = consume(&group, &db, &names);
    let stored = stored_ids(&db);
    assert!(
        stored.is_disjoint(&deleted),
        "deleted posts are not in the store"
    );
    assert_eq!(stored.len(), posts.len() - deleted.len() - 1);
    assert_eq!(
        analysis_summary(&first).tombstones_written,
        deleted.len() as u64,
        "one tombstone per deleted post, to its own topic; none for a post not seen yet"
    );
    // ... then the post itself: kept out of the store, and tombstoned again after it.
    replay(&[late_line], &names, dir.path(), "late.jsonl");
    let second = consume(&group, &db, &names);
    assert_eq!(analysis_summary(&second).posts_kept_out, 1);
    assert_eq!(analysis_summary(&second).tombstones_written, 1);
    assert!(!stored_ids(&db).contains(&late_id));

    // 3. Compaction: once the segments roll (segment.ms 1 s; one more record rolls them) and
    // the cleaner runs, no reader finds a deleted post's content any more.
    let mut erased: BTreeSet<String> = deleted.clone();
    erased.insert(late_id.clone());
    let latest = latest_values(&names);
    for id in &erased {
        assert_eq!(
            latest.get(id),
            Some(&None),
            "the last record for {id} is a tombstone"
        );
    }
    let started = Instant::now();
    let mut remaining = usize::MAX;
    let mut roll = 0;
    while started.elapsed() < Duration::from_secs(120) {
        std::thread::sleep(Duration::from_millis(1500));
        // A fresh post in every partition rolls the segment that holds the tombstones.
        let (id, line) = &posts[roll % posts.len()];
        if !erased.contains(id) {
            replay(
                std::slice::from_ref(line),
                &names,
                dir.path(),
                &format!("roll-{roll}.jsonl"),
            );
        }
        roll += 1;
        remaining = values_for(&names, &erased);
        if remaining == 0 {
            break;
        }
    }
    println!(
        "deleted posts' content still in Kafka after {:.0} s: {remaining}",
        started.elapsed().as_secs_f64()
    );
    assert_eq!(
        remaining, 0,
        "compaction erased every deleted post from the post topics"
    );
    let kept: BTreeSet<String> = stored_ids(&db).into_iter().take(50).collect();
    assert_eq!(
        values_for(&names, &kept),
        kept.len(),
        "undeleted posts stay in Kafka"
    );
    delete_topics(&names).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn poison_records_are_dead_lettered_and_transient_failures_are_retried() {
    let names = support::create_topics(&format!("{}-", unique("poison"))).await;
    let dir = tempfile::tempdir().expect("temp dir");
    let db = dir.path().join("tweets.db");
    let group = unique("analysis");
    let posts = posts();
    let good: Vec<String> = posts
        .iter()
        .take(200)
        .map(|(_, line)| line.clone())
        .collect();

    // The consumer runs (its store open), then the store is locked for longer than the
    // consumer's 10 s busy timeout while records arrive: batches fail and are retried, and
    // the group's offsets do not move.
    let log = dir.path().join("consumer.log");
    let consumer = support::consumer_command()
        .args(["--group", &group, "--role", "analysis"])
        .arg("--db")
        .arg(&db)
        .args(topic_flags(&names))
        .arg("--metrics-addr=off")
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(&log).expect("log"))
        .spawn()
        .expect("consumer starts");
    let wait_for_log = |text: &str, what: &str| {
        let deadline = Instant::now() + Duration::from_secs(60);
        while !std::fs::read_to_string(&log)
            .unwrap_or_default()
            .contains(text)
        {
            assert!(Instant::now() < deadline, "{what} never happened");
            std::thread::sleep(Duration::from_millis(200));
        }
    };
    wait_for_log("partitions assigned", "the partition assignment");
    let lock = rusqlite::Connection::open(&db).expect("store");
    lock.execute_batch("BEGIN EXCLUSIVE; CREATE TABLE IF NOT EXISTS test_lock (x);")
        .expect("exclusive lock");
    replay(&good, &names, dir.path(), "good.jsonl");
    // Records another tool wrote to the post topic: not a post the consumer can parse.
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap())
        .create()
        .expect("producer");
    let poison: [(&str, &[u8]); 3] = [
        ("p1", b"{\"id_str\":\"1\",\"text\":"),
        ("p2", b"\xff\xfe not even UTF-8"),
        ("p3", b"[1,2,3]"),
    ];
    for (key, value) in poison {
        producer
            .send(
                FutureRecord::to(&names.tweets)
                    .key(key)
                    .payload(value)
                    .headers(OwnedHeaders::new().insert(Header {
                        key: "source",
                        value: Some("a foreign tool"),
                    })),
                Duration::from_secs(10),
            )
            .await
            .expect("poison produced");
    }
    wait_for_log(
        "batch failed; offsets not stored, retrying",
        "a failed batch while the store was locked",
    );
    assert_eq!(
        committed(&group, &names.tweets),
        0,
        "no offset stored past a failed batch"
    );
    lock.execute_batch("ROLLBACK;").expect("unlock");
    drop(lock);
    let topics = [
        names.tweets.as_str(),
        names.retweets.as_str(),
        names.control.as_str(),
    ];
    let deadline = Instant::now() + Duration::from_secs(60);
    while stored_ids(&db).len() < 200 || committed(&group, &names.tweets) < 203 {
        assert!(
            Instant::now() < deadline,
            "the consumer did not recover after the unlock"
        );
        std::thread::sleep(Duration::from_millis(300));
    }
    let output = support::terminate(consumer);
    assert!(
        output.status.success(),
        "{}",
        std::fs::read_to_string(&log).unwrap_or_default()
    );
    assert_eq!(analysis_summary(&output).records_dead_lettered, 3);
    assert_eq!(stored_ids(&db).len(), 200);
    support::assert_group_at_end(&group, &topics);

    let records = read_back(&[&names.deadletter], 3);
    assert_eq!(records.len(), 3, "three dead letters, no more");
    for (_, key, value, headers) in &records {
        let key = key.as_deref().expect("the original key");
        let (_, original) = poison
            .iter()
            .find(|(k, _)| *k == key)
            .expect("a poison key");
        assert_eq!(value.as_slice(), *original, "the original bytes");
        assert_eq!(headers.get("original_topic"), Some(&names.tweets));
        assert!(headers
            .get("original_partition")
            .is_some_and(|p| p.parse::<i32>().is_ok()));
        assert!(headers
            .get("original_offset")
            .is_some_and(|o| o.parse::<i64>().is_ok()));
        assert_eq!(headers.get("dead_lettered_by"), Some(&group));
        assert_eq!(
            headers.get("source").map(String::as_str),
            Some("a foreign tool")
        );
        assert!(
            headers
                .get("error")
                .is_some_and(|e| e.starts_with("the consumer cannot parse this post")),
            "{headers:?}"
        );
    }
    delete_topics(&names).await;
}

/// The group's committed offsets on `topic`, summed over partitions (0 when none).
fn committed(group: &str, topic: &str) -> i64 {
    support::group_positions(group, &[topic])
        .expect("committed offsets")
        .iter()
        .map(|position| position.committed)
        .sum()
}

/// The real compliance result lines of the shared data, as shapes for the emulator's events.
fn real_compliance_lines() -> Vec<serde_json::Value> {
    let path = shared_data().join("x_api_v2/twarc-csv_test-data/tweets_compliance.jsonl");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e} (set TWEET_PIPELINE_DATA)", path.display()));
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).expect("a result line"))
        .collect()
}

fn compliance_run(db: &Path, names: &TopicNames, x_api: &str) -> ComplianceSummary {
    json_summary(&run(support::consumer_command()
        .arg("compliance")
        .arg("--db")
        .arg(db)
        .args(topic_flags(names))
        .args(["--x-api-url", x_api])
        .args([
            "--min-age-secs=0",
            "--poll-interval-ms=20",
            "--retry-base-ms=10",
        ])
        .env(
            "X_BEARER_TOKEN",
            tweet_pipeline_emulator::default_credentials::BEARER_TOKEN,
        )))
}

/// The compliance records in the control topic, by post id.
fn compliance_records(names: &TopicNames) -> BTreeMap<String, usize> {
    let consumer = support::from_beginning(&bootstrap(), &[&names.control]);
    let mut end = 0;
    for partition in 0..PARTITIONS {
        let (low, high) = consumer
            .fetch_watermarks(&names.control, partition, Duration::from_secs(10))
            .expect("watermarks");
        end += high - low;
    }
    let mut per_id = BTreeMap::new();
    let (mut read, deadline) = (0, Instant::now() + Duration::from_secs(30));
    while read < end && Instant::now() < deadline {
        if let Some(Ok(message)) = consumer.poll(Duration::from_millis(200)) {
            read += 1;
            let record: serde_json::Value =
                serde_json::from_slice(message.payload().unwrap_or_default()).expect("json");
            if let Some(id) = record["compliance"]["id"].as_str() {
                *per_id.entry(id.to_owned()).or_default() += 1;
            }
        }
    }
    assert_eq!(read, end, "the control topic read to its end");
    per_id
}

#[tokio::test(flavor = "multi_thread")]
async fn v2_batch_compliance_removes_reported_posts_and_retries_failed_jobs_once() {
    let names = fast_compacting_topics(&format!("{}-", unique("xcompliance"))).await;
    let dir = tempfile::tempdir().expect("temp dir");
    let db = dir.path().join("tweets.db");
    let group = unique("analysis");
    let posts: Vec<(String, String)> = posts().into_iter().take(40).collect();
    let lines: Vec<String> = posts.iter().map(|(_, line)| line.clone()).collect();
    replay(&lines, &names, dir.path(), "posts.jsonl");
    consume(&group, &db, &names);
    assert_eq!(stored_ids(&db).len(), posts.len());

    // Every eighth post reported deleted, in the shapes of the real results (their reasons,
    // timestamps), plus the real lines themselves (ids never stored: ignored).
    let real = real_compliance_lines();
    let deleted: BTreeSet<String> = posts.iter().step_by(8).map(|(id, _)| id.clone()).collect();
    let mut events: Vec<serde_json::Value> = deleted
        .iter()
        .zip(real.iter().cycle())
        .map(|(id, shape)| {
            let mut event = shape.clone();
            event["id"] = serde_json::Value::String(id.clone());
            event
        })
        .collect();
    events.extend(real.iter().cloned());
    let emulator = tweet_pipeline_emulator::start(tweet_pipeline_emulator::EmulatorConfig::new(
        Some(shared_data()),
    ))
    .await
    .expect("emulator");
    let http = reqwest::Client::new();
    let control = format!("{}/_emulator/compliance", emulator.url());
    http.post(&control)
        .json(&serde_json::json!({"events": events, "fail_next_jobs": 1}))
        .send()
        .await
        .and_then(reqwest::Response::error_for_status)
        .expect("emulator control");

    // The first job fails: nothing written, a second job for the same ids completes.
    let x_api = emulator.url();
    let (db_run, names_run, api_run) = (db.clone(), names.clone(), x_api.clone());
    let summary =
        tokio::task::spawn_blocking(move || compliance_run(&db_run, &names_run, &api_run))
            .await
            .expect("compliance run");
    assert_eq!(summary.jobs_created, 2, "{summary:?}");
    assert_eq!(summary.jobs_retried, 1);
    assert_eq!(summary.batches, 1);
    assert_eq!(summary.ids_checked, posts.len() as u64);
    assert_eq!(summary.records_written, deleted.len() as u64);
    assert_eq!(summary.actions.get("delete"), Some(&(deleted.len() as u64)));
    let jobs: serde_json::Value = http
        .get(&control)
        .send()
        .await
        .expect("snapshot")
        .json()
        .await
        .expect("json");
    let statuses: Vec<&str> = jobs["jobs"]
        .as_array()
        .expect("jobs")
        .iter()
        .filter_map(|job| job["status"].as_str())
        .collect();
    assert_eq!(statuses, ["failed", "complete"]);
    let records = compliance_records(&names);
    assert_eq!(
        records.keys().cloned().collect::<BTreeSet<_>>(),
        deleted,
        "one record per reported post, none for ids not uploaded"
    );
    assert!(
        records.values().all(|&n| n == 1),
        "no record twice: {records:?}"
    );

    // A second run finds nothing due (checked within the interval) and writes nothing.
    let (db_run, names_run, api_run) = (db.clone(), names.clone(), x_api.clone());
    let again = tokio::task::spawn_blocking(move || compliance_run(&db_run, &names_run, &api_run))
        .await
        .expect("compliance run");
    assert_eq!((again.jobs_created, again.records_written), (0, 0));

    // The analysis group applies them as deletes: rows gone, tombstones to the post topics.
    let applied = analysis_summary(&consume(&group, &db, &names));
    assert_eq!(applied.deletes_applied, deleted.len() as u64);
    assert_eq!(applied.tombstones_written, deleted.len() as u64);
    let stored = stored_ids(&db);
    assert!(
        stored.is_disjoint(&deleted),
        "reported posts left the store"
    );
    assert_eq!(
        stored.len(),
        posts.len() - deleted.len(),
        "the other posts stay"
    );
    let latest = latest_values(&names);
    for (id, _) in &posts {
        let expected = deleted.contains(id);
        assert_eq!(
            latest.get(id).map(Option::is_none),
            Some(expected),
            "{id}: tombstone last iff reported deleted"
        );
    }
    emulator.stop().await.expect("emulator stops");
    delete_topics(&names).await;
}
