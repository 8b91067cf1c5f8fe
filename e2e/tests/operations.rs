//! Running the pipeline as an operator does, against a real Kafka broker: both binaries up at
//! once with `/metrics` scraped, then stopped with SIGTERM. The producer must exit 0 with every
//! line it read acknowledged by Kafka (and no record twice); the consumer must commit what it
//! stored, so a later run ends with one row per distinct post.
//!
//! Uses the repository's own sample recording (data/sample/stream.jsonl).

mod support;

use std::collections::BTreeSet;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use support::{
    analysis_summary, assert_group_at_end, create_topics, delete_topics, free_ports,
    producer_command, producer_summary, read_back, run, sample, scrape, terminate, topic_flags,
    unique,
};
use tweet_pipeline_common::Destination;

/// Scrapes until `series` reaches at least `min` (or 60 s pass); returns the last scrape.
/// `log` is the process's stderr, shown when it fails.
fn wait_for(port: u16, series: &str, min: f64, log: &Path) -> String {
    let deadline = Instant::now() + Duration::from_secs(60);
    let log = || std::fs::read_to_string(log).unwrap_or_default();
    loop {
        if let Some(text) = scrape(port) {
            if sample(&text, series).is_some_and(|v| v >= min) {
                return text;
            }
            assert!(
                Instant::now() < deadline,
                "{series} never reached {min}:\n{text}\n{}",
                log()
            );
        }
        assert!(
            Instant::now() < deadline,
            "no /metrics on 127.0.0.1:{port}; stderr:\n{}",
            log()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Starts `command` with stdout piped and stderr written to `log`.
fn spawn(command: &mut Command, log: &Path) -> Child {
    command
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(log).expect("log file"))
        .spawn()
        .expect("binary starts")
}

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_loses_nothing_and_metrics_are_served() {
    let prefix = unique("ops");
    let names = create_topics(&format!("{prefix}-")).await;
    let recording = support::repo_root().join("data/sample/stream.jsonl");
    let (producer_port, consumer_port) = free_ports();
    let dir = tempfile::tempdir().expect("temp dir");
    let db = dir.path().join("tweets.db");
    let group = unique("analysis");
    let (producer_log, consumer_log) = (
        dir.path().join("producer.log"),
        dir.path().join("consumer.log"),
    );

    let producer = spawn(
        producer_command()
            .arg("--replay")
            .arg(&recording)
            .args(["--loop", "--rate", "1500"])
            .args(topic_flags(&names))
            .arg(format!("--metrics-addr=127.0.0.1:{producer_port}")),
        &producer_log,
    );
    let consumer_args = |metrics: String| {
        let mut command = support::consumer_command();
        command
            .args(["--group", &group, "--role", "analysis", "--db"])
            .arg(&db)
            .args(topic_flags(&names))
            .arg(metrics);
        command
    };
    let consumer = spawn(
        &mut consumer_args(format!("--metrics-addr=127.0.0.1:{consumer_port}")),
        &consumer_log,
    );

    // The consumer is storing rows while the producer loops over the sample (364 lines).
    let consumer_metrics = wait_for(
        consumer_port,
        "tweet_pipeline_consumer_rows_written_total",
        100.0,
        &consumer_log,
    );
    let producer_metrics = wait_for(
        producer_port,
        "tweet_pipeline_producer_lines_read_total",
        500.0,
        &producer_log,
    );
    assert!(
        sample(
            &producer_metrics,
            r#"tweet_pipeline_producer_records_sent_total{kind="tweet",topic="tweets"}"#
        )
        .is_some_and(|v| v > 0.0),
        "{producer_metrics}"
    );
    assert!(sample(
        &producer_metrics,
        r#"tweet_pipeline_producer_records_sent_total{kind="delete",topic="control"}"#
    )
    .is_some());
    assert!(
        sample(
            &consumer_metrics,
            r#"tweet_pipeline_consumer_processing_latency_seconds_count{topic="tweets"}"#
        )
        .is_some_and(|v| v > 0.0),
        "{consumer_metrics}"
    );
    assert!(
        consumer_metrics.contains("tweet_pipeline_consumer_posts_analysed_total{language=\"en\"")
    );
    assert!(consumer_metrics
        .contains("# TYPE tweet_pipeline_consumer_processing_latency_seconds histogram"));

    // SIGTERM mid-stream: stop reading, deliver everything read, exit 0.
    let produced = terminate(producer);
    assert!(
        produced.status.success(),
        "producer exit {}: {}",
        produced.status,
        String::from_utf8_lossy(&produced.stderr)
    );
    let summary = producer_summary(&produced);
    let lines = summary.lines_read;
    assert!(lines > 500);
    assert_eq!(summary.failed, 0);
    assert_eq!(summary.unacknowledged, 0);
    let acked = summary.acked.total();
    assert_eq!(
        acked + summary.keepalives,
        lines,
        "every line read is acknowledged"
    );
    let topics: Vec<&str> = Destination::ALL.iter().map(|d| names.name(*d)).collect();
    // (read_back skips the tombstones the running analysis group writes for deleted posts.)
    let records = read_back(&topics, acked as usize);
    assert_eq!(
        records.len() as u64,
        acked,
        "Kafka holds exactly the acknowledged records"
    );

    // SIGTERM the consumer: it commits what it stored and exits 0.
    let consumed = terminate(consumer);
    assert!(
        consumed.status.success(),
        "consumer exit {}: {}",
        consumed.status,
        String::from_utf8_lossy(&consumed.stderr)
    );
    let first = analysis_summary(&consumed).records_consumed;
    assert!(first > 0);

    // Finishing the rest from the committed offsets: one row per distinct, undeleted post.
    let rest = run(consumer_args("--metrics-addr=off".to_owned()).arg("--exit-at-end"));
    let posts = [&names.tweets, &names.retweets];
    let tombstones =
        analysis_summary(&consumed).tombstones_written + analysis_summary(&rest).tombstones_written;
    assert_eq!(
        first + analysis_summary(&rest).records_consumed,
        records
            .iter()
            .filter(|(t, ..)| t != &names.deadletter)
            .count() as u64
            + tombstones,
        "across a clean stop and restart each record (and tombstone) is read exactly once"
    );
    let ids: BTreeSet<&str> = records
        .iter()
        .filter(|(t, ..)| posts.contains(&t))
        .filter_map(|(_, k, ..)| k.as_deref())
        .collect();
    let deleted: BTreeSet<&str> = records
        .iter()
        .filter(|(t, _, v, _)| t == &names.control && v.starts_with(b"{\"delete\""))
        .filter_map(|(_, k, ..)| k.as_deref())
        .collect();
    let conn = rusqlite::Connection::open(&db).expect("store");
    let rows: i64 = conn
        .query_row("SELECT COUNT(*) FROM posts", [], |r| r.get(0))
        .expect("count");
    assert_eq!(rows as usize, ids.difference(&deleted).count());
    assert_group_at_end(&group, &[&names.tweets, &names.retweets, &names.control]);
    delete_topics(&names).await;
}
