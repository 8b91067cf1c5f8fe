//! The live sources against the local stream emulator (real sockets, real recordings) and a
//! real Kafka broker: rule sync, credentials, faults and reconnection, for the X API v2
//! filtered stream, X API v1.1 statuses/filter (OAuth 1.0a) and Mastodon streaming.

mod support;

use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use support::{
    analysis_summary, create_topics, delete_topics, free_ports, producer_command, producer_summary,
    read_back, sample, scrape, terminate, topic_flags, unique, Emulator,
};
use tweet_pipeline_common::config::TopicNames;
use tweet_pipeline_common::Destination;

impl Emulator {
    fn start(extra: &[&str]) -> Emulator {
        let repo = support::repo_root();
        let v1_file = repo.join("data/sample/stream.jsonl");
        let mut args = vec!["--rate", "200", "--keepalive-ms", "300", "--v1-file"];
        args.push(v1_file.to_str().expect("UTF-8 path"));
        args.extend_from_slice(extra);
        support::spawn_emulator(&args)
    }

    /// A plain HTTP/1.1 request; returns (status, body).
    fn http(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &str,
    ) -> (u16, String) {
        support::http(self.port, method, path, headers, body)
    }

    fn fault(&self, fault: Value) {
        let (status, body) = self.http(
            "POST",
            "/_emulator/faults",
            &[("Content-Type", "application/json")],
            &fault.to_string(),
        );
        assert!(
            (200..300).contains(&status),
            "fault not accepted: {status} {body}"
        );
    }

    fn stats(&self) -> Value {
        let (_, body) = self.http("GET", "/_emulator/stats", &[], "");
        serde_json::from_str(&body).unwrap_or_else(|e| panic!("stats: {e}: {body}"))
    }

    fn rules(&self) -> Vec<(String, String, String)> {
        let (status, body) = self.http(
            "GET",
            "/2/tweets/search/stream/rules",
            &[("Authorization", "Bearer emulator-bearer-token")],
            "",
        );
        assert_eq!(status, 200, "{body}");
        let value: Value = serde_json::from_str(&body).unwrap();
        let mut rules: Vec<_> = value["data"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|r| {
                (
                    r["id"].as_str().unwrap_or_default().to_owned(),
                    r["value"].as_str().unwrap_or_default().to_owned(),
                    r["tag"].as_str().unwrap_or_default().to_owned(),
                )
            })
            .collect();
        rules.sort_by(|a, b| a.1.cmp(&b.1));
        rules
    }
}

fn producer(
    emulator: &Emulator,
    names: &TopicNames,
    args: &[&str],
    env: &[(&str, &str)],
    metrics_port: Option<u16>,
) -> Command {
    let mut command = producer_command();
    command
        .arg("--base-url")
        .arg(emulator.url())
        .args(args)
        .args(topic_flags(names))
        .arg(match metrics_port {
            Some(port) => format!("--metrics-addr=127.0.0.1:{port}"),
            None => "--metrics-addr=off".to_owned(),
        })
        .env_remove("X_BEARER_TOKEN")
        .envs(env.iter().copied())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    command
}

/// The value of `series` in a scrape, 0 when absent.
fn metric(text: &str, series: &str) -> f64 {
    sample(text, series).unwrap_or(0.0)
}

/// Waits (up to `secs`) until `check` holds on the producer's metrics; returns the scrape.
fn wait_metrics(port: u16, secs: u64, what: &str, check: impl Fn(&str) -> bool) -> String {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        let text = scrape(port).unwrap_or_default();
        if check(&text) {
            return text;
        }
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}; last scrape:\n{text}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The records the producer's summary says it wrote, over the four topics.
fn records_written(output: &Output) -> u64 {
    producer_summary(output).acked.total()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

const BEARER: (&str, &str) = ("X_BEARER_TOKEN", "emulator-bearer-token");

#[tokio::test(flavor = "multi_thread")]
async fn x_v2_rules_faults_and_reconnection() {
    let names = create_topics(&format!("{}-", unique("v2"))).await;
    let emulator = Emulator::start(&["--seed-rule", "cats|someone-else"]);

    // A wrong bearer token stops the producer with a message naming the variable, not the value.
    let refused = producer(
        &emulator,
        &names,
        &["--track", "the"],
        &[("X_BEARER_TOKEN", "wrong-secret-value")],
        None,
    )
    .output()
    .expect("runs");
    assert!(!refused.status.success());
    let message = stderr(&refused);
    assert!(
        message.contains("X_BEARER_TOKEN") && !message.contains("wrong-secret-value"),
        "{message}"
    );

    // Faults for the next connections, in order.
    emulator.fault(serde_json::json!({"api": "v2", "drop_after_lines": 5}));
    emulator.fault(serde_json::json!({"api": "v2", "stall_after_lines": 5}));
    emulator.fault(serde_json::json!({"api": "v2", "connect_status": 503}));
    emulator.fault(serde_json::json!({"api": "v2", "split_chunks": true, "gzip": true, "malformed_after_lines": 3, "drop_after_lines": 10}));
    emulator.fault(serde_json::json!({"api": "v2", "connect_status": 429}));

    let port = free_ports().0;
    let args = [
        "--track",
        "the",
        "--track",
        "love",
        "--stall-timeout-secs",
        "2",
    ];
    let child = producer(&emulator, &names, &args, &[BEARER], Some(port))
        .spawn()
        .expect("producer starts");
    let reason = |r: &str| {
        format!(r#"tweet_pipeline_producer_stream_disconnects_total{{api="x_v2",reason="{r}"}}"#)
    };
    // abrupt drop (a network error) -> immediate reconnect; stall -> detected after 2 s,
    // reconnect; 503 -> 5 s wait; a gzip, split-chunk stream with one cut-off line, dropped
    // again; then a zombie 429 -> >= 60 s wait.
    let text = wait_metrics(port, 60, "the 429 backoff", |t| {
        metric(t, &reason("too_many_connections")) >= 1.0
    });
    assert!(
        metric(&text, &reason("network")) >= 2.0,
        "two abrupt drops:\n{text}"
    );
    for r in ["stall", "http_5xx", "too_many_connections"] {
        assert!(
            metric(&text, &reason(r)) >= 1.0,
            "no {r} disconnect:\n{text}"
        );
    }
    let backoff = metric(
        &text,
        r#"tweet_pipeline_producer_stream_backoff_seconds{api="x_v2"}"#,
    );
    assert!(
        (60.0..=66.0).contains(&backoff),
        "TooManyConnections waits at least 60 s (+10 % jitter), got {backoff}"
    );
    assert!(
        metric(
            &text,
            r#"tweet_pipeline_producer_stream_connections_total{api="x_v2"}"#
        ) >= 3.0
    );

    // Rule sync: ours added, the foreign rule untouched.
    let rules = emulator.rules();
    let values: Vec<(&str, &str)> = rules
        .iter()
        .map(|(_, v, t)| (v.as_str(), t.as_str()))
        .collect();
    assert_eq!(
        values,
        vec![
            ("cats", "someone-else"),
            ("love", "tweet-pipeline:track:love"),
            ("the", "tweet-pipeline:track:the")
        ]
    );

    let output = terminate(child);
    assert!(output.status.success(), "{}", stderr(&output));
    let summary = producer_summary(&output);
    assert_eq!(summary.failed, 0);
    assert_eq!(summary.unacknowledged, 0);
    let written = records_written(&output);
    // Nothing received before a fault is lost: every line the emulator sent is in Kafka.
    let stats = emulator.stats();
    let sent = stats["v2"]["lines_sent"].as_u64().expect("lines_sent");
    assert_eq!(written, sent, "emulator stats: {stats}");
    let topics: Vec<&str> = Destination::ALL.iter().map(|d| names.name(*d)).collect();
    let records = read_back(&topics, written as usize);
    assert_eq!(records.len() as u64, written);
    let deadletters: Vec<_> = records.iter().filter(|r| r.0 == names.deadletter).collect();
    assert_eq!(deadletters.len(), 1, "the one cut-off line");
    for (topic, key, _, headers) in records
        .iter()
        .filter(|r| r.0 == names.tweets || r.0 == names.retweets)
    {
        assert!(key.is_some(), "{topic}: post without key");
        let tags = headers
            .get("matching_rules")
            .map(String::as_str)
            .unwrap_or_default();
        assert!(tags.contains("tweet-pipeline:track:"), "{headers:?}");
        assert_eq!(headers.get("source").map(String::as_str), Some("x:v2"));
    }

    // A second run with the same flags changes no rule; fewer flags delete only our stale rule.
    let again = producer(&emulator, &names, &args, &[BEARER], None)
        .spawn()
        .expect("starts");
    std::thread::sleep(Duration::from_secs(2));
    assert!(terminate(again).status.success());
    assert_eq!(emulator.rules(), rules, "rule sync is idempotent");
    let fewer = producer(&emulator, &names, &["--track", "love"], &[BEARER], None)
        .spawn()
        .expect("starts");
    std::thread::sleep(Duration::from_secs(2));
    assert!(terminate(fewer).status.success());
    let values: Vec<String> = emulator.rules().into_iter().map(|(_, v, _)| v).collect();
    assert_eq!(values, vec!["cats".to_owned(), "love".to_owned()]);
    delete_topics(&names).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn x_v1_oauth_and_mastodon_sse() {
    let names = create_topics(&format!("{}-", unique("v1m"))).await;
    let emulator = Emulator::start(&[]);
    let dir = tempfile::tempdir().unwrap();
    let creds = dir.path().join("credentials.env");
    std::fs::write(
        &creds,
        "X_CONSUMER_KEY=emulator-consumer-key\nX_CONSUMER_SECRET=emulator-consumer-secret\nX_ACCESS_TOKEN=emulator-access-token\nX_ACCESS_TOKEN_SECRET=emulator-access-token-secret\nMASTODON_TOKEN=emulator-mastodon-token\n",
    )
    .unwrap();
    let creds_arg = creds.to_str().expect("utf-8 temp path");
    // A credentials file others can read is refused.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(&creds, std::fs::Permissions::from_mode(0o644)).unwrap();
        let refused = producer(
            &emulator,
            &names,
            &[
                "--api",
                "v1",
                "--track",
                "the",
                "--credentials-file",
                creds_arg,
            ],
            &[],
            None,
        )
        .output()
        .unwrap();
        assert!(!refused.status.success());
        assert!(
            stderr(&refused).contains("chmod 600"),
            "{}",
            stderr(&refused)
        );
        std::fs::set_permissions(&creds, std::fs::Permissions::from_mode(0o600)).unwrap();
    }

    // Wrong consumer secret: the signature fails, 401, the producer stops naming the keys.
    let wrong = producer(
        &emulator,
        &names,
        &[
            "--api",
            "v1",
            "--track",
            "the",
            "--credentials-file",
            creds_arg,
        ],
        &[("X_CONSUMER_SECRET", "not-the-secret")],
        None,
    )
    .output()
    .unwrap();
    assert!(!wrong.status.success());
    assert!(
        stderr(&wrong).contains("X_CONSUMER_SECRET") && !stderr(&wrong).contains("not-the-secret"),
        "{}",
        stderr(&wrong)
    );

    // v1.1 with a signed request: the original v1.1 lines, routed as for replay; the second
    // connection is answered 420 (v1.1's rate limit) and waits at least a minute.
    emulator.fault(serde_json::json!({"api": "v1", "drop_after_lines": 40}));
    emulator.fault(serde_json::json!({"api": "v1", "connect_status": 420}));
    let port = free_ports().0;
    let v1 = producer(
        &emulator,
        &names,
        &[
            "--api",
            "v1",
            "--track",
            "the",
            "--credentials-file",
            creds_arg,
        ],
        &[],
        Some(port),
    )
    .spawn()
    .unwrap();
    let text = wait_metrics(port, 30, "the v1.1 420", |t| {
        metric(
            t,
            r#"tweet_pipeline_producer_stream_disconnects_total{api="x_v1",reason="rate_limited"}"#,
        ) >= 1.0
    });
    let backoff = metric(
        &text,
        r#"tweet_pipeline_producer_stream_backoff_seconds{api="x_v1"}"#,
    );
    assert!(
        (60.0..=66.0).contains(&backoff),
        "420 waits at least 60 s, got {backoff}"
    );
    let v1_out = terminate(v1);
    assert!(v1_out.status.success(), "{}", stderr(&v1_out));
    assert_eq!(emulator.stats()["v1"]["lines_sent"].as_u64(), Some(40));
    let v1_written = records_written(&v1_out);
    assert_eq!(
        v1_written, 40,
        "every line received before the drop is in Kafka"
    );
    assert!(producer_summary(&v1_out).acked[Destination::Tweets] > 0);

    // Mastodon over SSE: updates, synthetic deletes and edits, routed by event; the real broken
    // line of the shared Mastodon recording comes after the third event.
    emulator.fault(serde_json::json!({"api": "mastodon", "malformed_after_lines": 3}));
    let port = free_ports().0;
    let masto = producer_command()
        .args(["--source", "mastodon", "--timeline", "public", "--instance"])
        .arg(emulator.url())
        .arg("--credentials-file")
        .arg(&creds)
        .args(topic_flags(&names))
        .arg(format!("--metrics-addr=127.0.0.1:{port}"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let text = wait_metrics(port, 30, "mastodon deletes and heartbeats", |t| {
        metric(t, "tweet_pipeline_producer_keepalives_total") >= 1.0
            && metric(
                t,
                r#"tweet_pipeline_producer_records_sent_total{kind="delete",topic="control"}"#,
            ) >= 2.0
    });
    assert!(
        metric(
            &text,
            r#"tweet_pipeline_producer_records_sent_total{kind="edit",topic="tweets"}"#
        ) >= 1.0,
        "{text}"
    );
    let masto_out = terminate(masto);
    assert!(masto_out.status.success(), "{}", stderr(&masto_out));
    let total = records_written(&v1_out) + records_written(&masto_out);
    let topics: Vec<&str> = Destination::ALL.iter().map(|d| names.name(*d)).collect();
    let records = read_back(&topics, total as usize);
    assert_eq!(records.len() as u64, total);
    let sources: std::collections::BTreeSet<&str> = records
        .iter()
        .filter_map(|r| r.3.get("source").map(String::as_str))
        .collect();
    assert!(
        sources.contains("x:v1.1") && sources.iter().any(|s| s.starts_with("mastodon:")),
        "{sources:?}"
    );
    let broken: Vec<_> = records
        .iter()
        .filter(|r| r.0 == names.deadletter)
        .filter(|r| {
            r.3.get("source")
                .is_some_and(|s| s.starts_with("mastodon:"))
        })
        .collect();
    assert_eq!(
        broken.len(),
        1,
        "the broken Mastodon line is dead-lettered once"
    );
    assert!(
        broken[0]
            .3
            .get("error")
            .is_some_and(|e| e.starts_with("malformed mastodon status")),
        "{:?}",
        broken[0].3
    );

    // The analysis consumer stores both: Mastodon text without its HTML, deletes applied.
    let db = dir.path().join("tweets.db");
    let consumed = support::run(
        support::analysis_to_end(&db)
            .arg("--metrics-addr=off")
            .args(topic_flags(&names)),
    );
    assert!(analysis_summary(&consumed).deletes_applied >= 2);
    let conn = rusqlite::Connection::open(&db).unwrap();
    let count = |sql: &str| -> i64 { conn.query_row(sql, [], |r| r.get(0)).unwrap() };
    assert!(count("SELECT COUNT(*) FROM posts WHERE source_topic LIKE '%tweets'") > 20);
    assert_eq!(
        count("SELECT COUNT(*) FROM posts WHERE text LIKE '%<p>%' OR text LIKE '%</a>%'"),
        0,
        "HTML left in a Mastodon text"
    );
    assert_eq!(
        count("SELECT COUNT(*) FROM posts WHERE id IN (SELECT id FROM deleted_posts)"),
        0
    );
    assert!(count("SELECT COUNT(*) FROM deleted_posts") >= 2);
    delete_topics(&names).await;
}

/// A gzip stream cut inside a line (the emulator's `gzip_cut_after_bytes` fault, issue 13):
/// every line decodable before the cut is in Kafka once, the cut-off line is the one dead
/// letter, and the producer reconnects and goes on.
#[tokio::test(flavor = "multi_thread")]
async fn x_v2_gzip_stream_cut_mid_line_loses_nothing() {
    let names = create_topics(&format!("{}-", unique("v2-gzip-cut"))).await;
    let emulator = Emulator::start(&[]);
    emulator.fault(serde_json::json!({"api": "v2", "gzip_cut_after_bytes": 5000}));
    let port = free_ports().0;
    let child = producer(
        &emulator,
        &names,
        &["--track", "the"],
        &[BEARER],
        Some(port),
    )
    .spawn()
    .expect("producer starts");
    let connections = r#"tweet_pipeline_producer_stream_connections_total{api="x_v2"}"#;
    let lines_after_reconnect = |t: &str| metric(t, connections) >= 2.0;
    wait_metrics(
        port,
        60,
        "the reconnect after the cut",
        lines_after_reconnect,
    );
    // Some lines of the second connection too.
    std::thread::sleep(Duration::from_secs(1));
    let output = terminate(child);
    assert!(output.status.success(), "{}", stderr(&output));
    let written = records_written(&output);
    let stats = emulator.stats();
    let sent = stats["v2"]["lines_sent"].as_u64().expect("lines_sent");
    // The emulator counts whole lines; the producer also wrote the cut-off one.
    assert_eq!(written, sent + 1, "emulator stats: {stats}");
    let topics: Vec<&str> = Destination::ALL.iter().map(|d| names.name(*d)).collect();
    let records = read_back(&topics, written as usize);
    assert_eq!(records.len() as u64, written);
    let deadletters: Vec<_> = records.iter().filter(|r| r.0 == names.deadletter).collect();
    assert_eq!(deadletters.len(), 1, "the one cut-off line");
    let cut_off = &deadletters[0].2;
    assert!(
        cut_off.starts_with(b"{") && serde_json::from_slice::<Value>(cut_off).is_err(),
        "the dead letter is the start of a line: {}",
        String::from_utf8_lossy(cut_off)
    );
    delete_topics(&names).await;
}
