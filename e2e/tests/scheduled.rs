//! Scheduled posts end to end, against the real broker and the local emulator's
//! `POST /2/tweets`, Bluesky `createRecord` and Mastodon `POST /api/v1/statuses`:
//! `tweet-producer schedule` enqueues, `tweet-consumer --group poster` posts. Every test counts
//! what the emulator received (`GET /_emulator/posts`): each post exactly once at each of its
//! networks, through SIGKILLs, a lost answer, faults and a second instance.

mod support;

use std::collections::{HashMap, HashSet};

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use chrono::{SecondsFormat, Utc};
use rdkafka::config::ClientConfig;
use rdkafka::consumer::BaseConsumer;
use serde_json::Value;
use support::{
    binary, bootstrap, create_schedule_topics, delete_schedule_topics, free_ports, sample, scrape,
    terminate, unique, Emulator,
};
use tweet_pipeline_common::config::ScheduleTopics;
use tweet_pipeline_scheduler::model::{Destination, Outcome, PostResult};
use tweet_pipeline_scheduler::queue::read_to_end;

impl Emulator {
    fn start() -> Emulator {
        let repo = support::repo_root();
        let v1_file = repo.join("data/sample/stream.jsonl");
        support::spawn_emulator(&["--v1-file", v1_file.to_str().expect("UTF-8 path")])
    }

    fn http(&self, method: &str, path: &str, body: &str) -> (u16, String) {
        support::http(
            self.port,
            method,
            path,
            &[("Content-Type", "application/json")],
            body,
        )
    }

    fn fault(&self, fault: Value) {
        let (status, body) = self.http("POST", "/_emulator/faults", &fault.to_string());
        assert_eq!(status, 200, "fault not accepted: {body}");
    }

    /// The texts posted, in the order the emulator created them, and the duplicates refused.
    fn posts(&self) -> (Vec<String>, u64) {
        let (status, body) = self.http("GET", "/_emulator/posts", "");
        assert_eq!(status, 200, "{body}");
        let json: Value = serde_json::from_str(&body).expect("JSON");
        let texts = json["posts"]
            .as_array()
            .expect("posts")
            .iter()
            .map(|p| p["text"].as_str().expect("text").to_owned())
            .collect();
        (texts, json["duplicates_refused"].as_u64().expect("count"))
    }

    /// The whole post log: X's posts and every Bluesky record and Mastodon status.
    fn post_log(&self) -> Value {
        let (status, body) = self.http("GET", "/_emulator/posts", "");
        assert_eq!(status, 200, "{body}");
        serde_json::from_str(&body).expect("JSON")
    }
}

fn topic_flags(names: &ScheduleTopics) -> Vec<String> {
    vec![
        format!("--scheduled-topic={}", names.scheduled),
        format!("--scheduled-results-topic={}", names.results),
        format!("--bootstrap={}", bootstrap()),
    ]
}

/// A poster process whose log goes to a file (read to know when it is ready).
struct Poster {
    child: Option<Child>,
    log: PathBuf,
    metrics_port: u16,
}

impl Poster {
    fn start(
        emulator: &Emulator,
        names: &ScheduleTopics,
        group: &str,
        dir: &Path,
        tag: &str,
        extra: &[&str],
    ) -> Poster {
        let (metrics_port, _) = free_ports();
        let log = dir.join(format!("poster-{tag}.log"));
        let log_file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .expect("log file");
        let child = Command::new(binary("tweet-consumer"))
            .args(["--group", group, "--role", "poster"])
            .arg("--db")
            .arg(dir.join(format!("{tag}.db")))
            .arg(format!("--x-api-url={}", emulator.url()))
            .arg(format!("--bluesky-pds-url={}", emulator.url()))
            .arg(format!("--mastodon-url={}", emulator.url()))
            .arg(format!("--metrics-addr=127.0.0.1:{metrics_port}"))
            .args(topic_flags(names))
            .args(extra)
            .envs(support::EMULATOR_CREDENTIALS)
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(log_file)
            .spawn()
            .expect("poster starts");
        Poster {
            child: Some(child),
            log,
            metrics_port,
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits until the poster has loaded `count` partitions (across its lifetime in this log).
    fn wait_loaded(&self, count: usize) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while self.log().matches("partition loaded").count() < count {
            assert!(
                Instant::now() < deadline,
                "the poster did not load its partitions:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill(); // SIGKILL
            let _ = child.wait();
        }
    }

    fn stop(&mut self) -> Option<Output> {
        self.child.take().map(terminate)
    }
}

impl Drop for Poster {
    fn drop(&mut self) {
        self.kill();
    }
}

fn schedule(names: &ScheduleTopics, args: &[&str]) -> Output {
    support::producer_command()
        .arg("schedule")
        .args(args)
        .args(topic_flags(names))
        .output()
        .expect("tweet-producer runs")
}

fn rfc3339_in(delay: Duration) -> String {
    (Utc::now() + chrono::Duration::from_std(delay).unwrap())
        .to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// The latest result per results key (`<id>/<destination>`) on the results topic.
fn results(names: &ScheduleTopics) -> HashMap<String, PostResult> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap())
        .set("group.id", unique("results-reader"))
        .set("enable.auto.commit", "false")
        .create()
        .expect("consumer");
    read_to_end(&consumer, &names.results, &[0, 1], Duration::from_secs(30))
        .expect("results readable")
        .into_iter()
        .filter_map(|(_, id, value)| Some((id, serde_json::from_slice(&value?).expect("a result"))))
        .collect()
}

/// The records on a topic: (records, distinct keys).
fn topic_counts(topic: &str) -> (usize, usize) {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap())
        .set("group.id", unique("count"))
        .create()
        .expect("consumer");
    let records = read_to_end(&consumer, topic, &[0, 1], Duration::from_secs(30)).expect("read");
    let keys: HashSet<&String> = records.iter().map(|(_, k, _)| k).collect();
    (records.len(), keys.len())
}

/// Waits until every one of `expected` posts has a final result (or panics after `limit`).
fn wait_final(names: &ScheduleTopics, expected: usize, limit: Duration, posters: &[&Poster]) {
    let deadline = Instant::now() + limit;
    loop {
        let done = results(names)
            .values()
            .filter(|r| r.outcome.is_final())
            .count();
        if done >= expected {
            return;
        }
        if Instant::now() > deadline {
            let logs: Vec<String> = posters.iter().map(|p| p.log()).collect();
            panic!(
                "only {done} of {expected} posts have a final result after {limit:?}; logs:\n{}",
                logs.join("\n----\n")
            );
        }
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// Asserts that `texts` were each posted exactly once and nothing else was.
fn assert_each_once(emulator: &Emulator, texts: &[String]) {
    let (posted, duplicates) = emulator.posts();
    let mut counts: HashMap<&str, usize> = HashMap::new();
    for text in &posted {
        *counts.entry(text.as_str()).or_default() += 1;
    }
    let doubled: Vec<_> = counts.iter().filter(|(_, n)| **n > 1).collect();
    assert!(doubled.is_empty(), "posted more than once: {doubled:?}");
    let missing: Vec<_> = texts
        .iter()
        .filter(|t| !counts.contains_key(t.as_str()))
        .collect();
    assert!(missing.is_empty(), "never posted: {missing:?}");
    assert_eq!(posted.len(), texts.len(), "unexpected posts: {posted:?}");
    assert_eq!(
        duplicates, 0,
        "the poster sent a post twice (the emulator refused it as duplicate content)"
    );
}

fn write_drafts(dir: &Path, name: &str, texts: &[String]) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, texts.join("\n") + "\n").expect("drafts written");
    path
}

#[tokio::test(flavor = "multi_thread")]
async fn a_thousand_posts_go_out_once_in_due_order_within_a_second() {
    let prefix = unique("sched-1000");
    let names = create_schedule_topics(&format!("{prefix}-")).await;
    let emulator = Emulator::start();
    let dir = tempfile::tempdir().unwrap();
    let mut poster = Poster::start(&emulator, &names, &prefix, dir.path(), "a", &[]);
    poster.wait_loaded(1);

    let texts: Vec<String> = (0..1000)
        .map(|i| format!("scheduled post {i:04} of {prefix}"))
        .collect();
    let drafts = write_drafts(dir.path(), "drafts.txt", &texts);
    let start = rfc3339_in(Duration::from_secs(4));
    let output = schedule(
        &names,
        &[
            "drafts",
            drafts.to_str().unwrap(),
            "--every",
            "25ms",
            "--start",
            &start,
        ],
    );
    assert!(output.status.success(), "{output:?}");
    assert!(String::from_utf8_lossy(&output.stdout).contains("enqueued 1000 post(s)"));

    wait_final(&names, 1000, Duration::from_secs(60), &[&poster]);
    std::thread::sleep(Duration::from_secs(1));
    assert_each_once(&emulator, &texts);
    let (posted, _) = emulator.posts();
    assert_eq!(posted, texts, "posts went out in due order");

    let results = results(&names);
    let mut lateness: Vec<f64> = results
        .values()
        .map(|r| {
            assert_eq!(r.outcome, Outcome::Posted, "{r:?}");
            r.lateness_seconds.expect("lateness recorded")
        })
        .collect();
    lateness.sort_by(f64::total_cmp);
    let p99 = lateness[(lateness.len() * 99) / 100 - 1];
    eprintln!(
        "lateness: p50 {:.3} s, p99 {p99:.3} s, max {:.3} s",
        lateness[lateness.len() / 2],
        lateness[lateness.len() - 1]
    );
    assert!(
        p99 < 1.0,
        "lateness p99 {p99:.3} s (max {:.3} s)",
        lateness.last().unwrap()
    );
    let metrics = scrape(poster.metrics_port).expect("metrics served");
    assert_eq!(
        sample(
            &metrics,
            "tweet_pipeline_poster_posts_total{outcome=\"posted\"}"
        ),
        Some(1000.0)
    );
    assert_eq!(
        sample(&metrics, "tweet_pipeline_poster_lateness_seconds_count"),
        Some(1000.0)
    );
    assert_eq!(
        sample(&metrics, "tweet_pipeline_poster_pending_posts"),
        Some(0.0)
    );
    let output = poster.stop().expect("running");
    assert!(output.status.success());
    delete_schedule_topics(&names).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn sigkill_at_random_points_and_restart_posts_each_once() {
    let prefix = unique("sched-kill");
    let names = create_schedule_topics(&format!("{prefix}-")).await;
    let emulator = Emulator::start();
    let dir = tempfile::tempdir().unwrap();
    let texts: Vec<String> = (0..200)
        .map(|i| format!("kill test {i:03} of {prefix}"))
        .collect();
    let drafts = write_drafts(dir.path(), "drafts.txt", &texts);
    let start = rfc3339_in(Duration::from_secs(3));
    let output = schedule(
        &names,
        &[
            "drafts",
            drafts.to_str().unwrap(),
            "--every",
            "50ms",
            "--start",
            &start,
        ],
    );
    assert!(output.status.success(), "{output:?}");

    let mut poster = Poster::start(&emulator, &names, &prefix, dir.path(), "k", &[]);
    for round in 0..3 {
        poster.wait_loaded(2 * (round + 1));
        let pause = Duration::from_millis(rand::random_range(300..2500));
        std::thread::sleep(pause);
        poster.kill();
        poster = Poster::start(&emulator, &names, &prefix, dir.path(), "k", &[]);
    }
    wait_final(&names, 200, Duration::from_secs(90), &[&poster]);
    std::thread::sleep(Duration::from_secs(1));
    assert_each_once(&emulator, &texts);
    let results = results(&names);
    assert!(
        results.values().all(|r| r.outcome == Outcome::Posted),
        "{results:?}"
    );
    poster.stop();
    delete_schedule_topics(&names).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn lost_answer_is_reconciled_faults_are_retried_and_cancelled_posts_never_go_out() {
    let prefix = unique("sched-faults");
    let names = create_schedule_topics(&format!("{prefix}-")).await;
    let emulator = Emulator::start();
    // In order, for the first three calls: the answer is lost after the post was created; a
    // 503; a 429 whose reset is 2 s away.
    emulator.fault(serde_json::json!({"api": "tweets", "post_timeout": true}));
    emulator.fault(serde_json::json!({"api": "tweets", "connect_status": 503}));
    emulator.fault(
        serde_json::json!({"api": "tweets", "connect_status": 429, "rate_limit_reset_secs": 2}),
    );
    let dir = tempfile::tempdir().unwrap();
    let texts: Vec<String> = (0..4)
        .map(|i| format!("fault test {i} of {prefix}"))
        .collect();
    let drafts = write_drafts(dir.path(), "drafts.txt", &texts);
    let start = rfc3339_in(Duration::from_secs(2));
    let output = schedule(
        &names,
        &[
            "drafts",
            drafts.to_str().unwrap(),
            "--every",
            "1s",
            "--start",
            &start,
        ],
    );
    assert!(output.status.success(), "{output:?}");
    // One more post, cancelled before it is due.
    let cancelled_text = format!("cancelled post of {prefix}");
    let at = rfc3339_in(Duration::from_secs(3));
    let output = schedule(&names, &["post", "--text", &cancelled_text, "--at", &at]);
    assert!(output.status.success(), "{output:?}");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let id = stdout
        .split_whitespace()
        .find(|w| w.starts_with("sp-"))
        .expect("the plan shows the id")
        .to_owned();
    let output = schedule(&names, &["cancel", &id]);
    assert!(output.status.success(), "{output:?}");

    let poster = Poster::start(
        &emulator,
        &names,
        &prefix,
        dir.path(),
        "f",
        &["--http-timeout-secs", "2", "--reconcile-delay-ms", "500"],
    );
    wait_final(&names, 4, Duration::from_secs(60), &[&poster]);
    std::thread::sleep(Duration::from_secs(2));
    assert_each_once(&emulator, &texts);
    let results = results(&names);
    assert!(
        !results.values().any(|r| r.id == id),
        "the cancelled post has a result"
    );
    assert!(
        results.values().all(|r| r.destination == Destination::X),
        "{results:?}"
    );
    let reconciled: Vec<_> = results.values().filter(|r| r.reconciled).collect();
    assert_eq!(reconciled.len(), 1, "{results:?}");
    assert_eq!(reconciled[0].outcome, Outcome::Posted);
    assert!(results.values().all(|r| r.outcome == Outcome::Posted));
    let metrics = scrape(poster.metrics_port).expect("metrics");
    for (result, count) in [
        ("timeout", 1.0),
        ("server_error", 1.0),
        ("rate_limited", 1.0),
    ] {
        assert_eq!(
            sample(
                &metrics,
                &format!("tweet_pipeline_poster_api_calls_total{{result=\"{result}\"}}")
            ),
            Some(count),
            "{result}"
        );
    }
    drop(poster);
    // The outcomes, as `schedule list` shows them and as the SQLite mirror has them.
    let output = schedule(&names, &["list", "--tz", "Europe/Paris"]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{output:?}");
    assert!(stdout.contains("4 post(s): 4 posted"), "{stdout}");
    assert!(
        stdout.contains("CET") && !stdout.contains(&cancelled_text),
        "{stdout}"
    );
    let db = rusqlite::Connection::open(dir.path().join("f.db")).expect("poster store");
    let stored: i64 = db
        .query_row(
            "SELECT COUNT(*) FROM scheduled_posts WHERE status = 'posted' AND post_id IS NOT NULL",
            [],
            |row| row.get(0),
        )
        .expect("scheduled_posts table");
    assert_eq!(stored, 4);
    delete_schedule_topics(&names).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn two_posters_in_one_group_one_killed_no_double_post() {
    let prefix = unique("sched-two");
    let names = create_schedule_topics(&format!("{prefix}-")).await;
    let emulator = Emulator::start();
    let dir = tempfile::tempdir().unwrap();
    let mut a = Poster::start(&emulator, &names, &prefix, dir.path(), "a", &[]);
    let b = Poster::start(&emulator, &names, &prefix, dir.path(), "b", &[]);
    a.wait_loaded(1);
    b.wait_loaded(1);
    let texts: Vec<String> = (0..200)
        .map(|i| format!("two posters {i:03} of {prefix}"))
        .collect();
    let drafts = write_drafts(dir.path(), "drafts.txt", &texts);
    let start = rfc3339_in(Duration::from_secs(2));
    let output = schedule(
        &names,
        &[
            "drafts",
            drafts.to_str().unwrap(),
            "--every",
            "50ms",
            "--start",
            &start,
        ],
    );
    assert!(output.status.success(), "{output:?}");
    std::thread::sleep(Duration::from_millis(rand::random_range(3000..6000)));
    a.kill();
    wait_final(&names, 200, Duration::from_secs(60), &[&a, &b]);
    std::thread::sleep(Duration::from_secs(1));
    assert_each_once(&emulator, &texts);
    let by: HashSet<String> = results(&names).values().map(|r| r.by.clone()).collect();
    assert!(by.len() >= 2, "both instances posted: {by:?}");
    drop(b);
    delete_schedule_topics(&names).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn invalid_drafts_are_rejected_with_their_line_numbers_and_nothing_is_enqueued() {
    let prefix = unique("sched-invalid");
    let names = create_schedule_topics(&format!("{prefix}-")).await;
    let dir = tempfile::tempdir().unwrap();
    let drafts = dir.path().join("drafts");
    std::fs::create_dir(&drafts).unwrap();
    std::fs::write(
        drafts.join("a.txt"),
        format!("a good draft\n\n{}\n日本語のテスト https://example.com/a/very/long/path/that/counts/as/23\n", "x".repeat(281)),
    )
    .unwrap();
    let start = rfc3339_in(Duration::from_secs(3600));
    std::fs::write(
        drafts.join("b.csv"),
        format!("text,at\n\"  \",{start}\n\"old, but quoted\",2020-01-01T00:00:00Z\nfine,2026-03-08 02:30\n"),
    )
    .unwrap();
    let args = [
        "drafts",
        drafts.to_str().unwrap(),
        "--every",
        "8h",
        "--start",
        &start,
        "--tz",
        "America/New_York",
    ];
    let output = schedule(&names, &args);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    let a = drafts.join("a.txt").display().to_string();
    let b = drafts.join("b.csv").display().to_string();
    assert!(
        stderr.contains(&format!("{a}:3: too long: weighted length 281 > 280")),
        "{stderr}"
    );
    assert!(!stderr.contains(&format!("{a}:4:")), "{stderr}");
    assert!(stderr.contains(&format!("{b}:2: empty draft")), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "{b}:3: due at 2020-01-01T00:00:00+00:00 is in the past"
        )),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!(
            "{b}:4: 2026-03-08 02:30:00 does not exist in America/New_York"
        )),
        "{stderr}"
    );
    assert!(stderr.contains("nothing enqueued"), "{stderr}");
    assert_eq!(topic_counts(&names.scheduled), (0, 0), "nothing enqueued");

    // With --skip-invalid the two valid drafts go, and running it again adds no post.
    let mut skip = args.to_vec();
    skip.push("--skip-invalid");
    for _ in 0..2 {
        let output = schedule(&names, &skip);
        assert!(output.status.success(), "{output:?}");
        assert!(String::from_utf8_lossy(&output.stdout).contains("enqueued 2 post(s)"));
    }
    assert_eq!(
        topic_counts(&names.scheduled),
        (4, 2),
        "the same two keys twice"
    );
    delete_schedule_topics(&names).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn sigkill_between_the_call_and_its_outcome_is_reconciled_on_restart() {
    let prefix = unique("sched-crash");
    let names = create_schedule_topics(&format!("{prefix}-")).await;
    let emulator = Emulator::start();
    // The first post is created but its answer never comes: the poster is stuck in the call,
    // with only its `attempt` recorded, when it is killed.
    emulator.fault(serde_json::json!({"api": "tweets", "post_timeout": true}));
    let dir = tempfile::tempdir().unwrap();
    let texts: Vec<String> = (0..2)
        .map(|i| format!("crash test {i} of {prefix}"))
        .collect();
    let drafts = write_drafts(dir.path(), "drafts.txt", &texts);
    let start = rfc3339_in(Duration::from_secs(2));
    let output = schedule(
        &names,
        &[
            "drafts",
            drafts.to_str().unwrap(),
            "--every",
            "1s",
            "--start",
            &start,
        ],
    );
    assert!(output.status.success(), "{output:?}");
    let mut poster = Poster::start(
        &emulator,
        &names,
        &prefix,
        dir.path(),
        "c",
        &["--http-timeout-secs", "30"],
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    while emulator.posts().0.is_empty() {
        assert!(
            Instant::now() < deadline,
            "nothing posted:\n{}",
            poster.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    std::thread::sleep(Duration::from_millis(300));
    poster.kill();
    let attempts = results(&names);
    assert!(
        attempts.values().any(|r| r.outcome == Outcome::Attempt),
        "the killed poster left an attempt: {attempts:?}"
    );
    let poster = Poster::start(&emulator, &names, &prefix, dir.path(), "c", &[]);
    wait_final(&names, 2, Duration::from_secs(40), &[&poster]);
    std::thread::sleep(Duration::from_secs(1));
    assert_each_once(&emulator, &texts);
    let results = results(&names);
    assert!(
        results
            .values()
            .any(|r| r.reconciled && r.outcome == Outcome::Posted),
        "{results:?}"
    );
    drop(poster);
    delete_schedule_topics(&names).await;
}

/// The results of the post `id`, by destination.
fn results_of(names: &ScheduleTopics, id: &str) -> HashMap<Destination, PostResult> {
    results(names)
        .into_values()
        .filter(|r| r.id == id)
        .map(|r| (r.destination, r))
        .collect()
}

/// Schedules one post of `text` due in `delay` to `to`; its id.
fn schedule_one(names: &ScheduleTopics, text: &str, delay: Duration, to: &str) -> String {
    let at = rfc3339_in(delay);
    let output = schedule(names, &["post", "--text", text, "--at", &at, "--to", to]);
    assert!(output.status.success(), "{output:?}");
    String::from_utf8_lossy(&output.stdout)
        .split_whitespace()
        .find(|w| w.starts_with("sp-"))
        .expect("the plan shows the id")
        .to_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn sigkill_between_the_call_and_its_outcome_posts_once_at_each_network() {
    let prefix = unique("sched-networks");
    let names = create_schedule_topics(&format!("{prefix}-")).await;
    let emulator = Emulator::start();
    // Both networks create the post and never answer: the poster is stuck in the Bluesky call
    // (the first of the batch, in key order) when it is killed; the Mastodon call is lost on
    // the restarted poster's timeout.
    emulator.fault(serde_json::json!({"api": "bluesky_post", "post_timeout": true}));
    emulator.fault(serde_json::json!({"api": "mastodon_post", "post_timeout": true}));
    let dir = tempfile::tempdir().unwrap();
    let text = format!("one post, three networks, {prefix}");
    let id = schedule_one(&names, &text, Duration::from_secs(2), "x,bluesky,mastodon");
    let mut poster = Poster::start(
        &emulator,
        &names,
        &prefix,
        dir.path(),
        "n",
        &["--http-timeout-secs", "30"],
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    while emulator.post_log()["bluesky"]
        .as_array()
        .expect("bluesky")
        .is_empty()
    {
        assert!(
            Instant::now() < deadline,
            "nothing posted:\n{}",
            poster.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    std::thread::sleep(Duration::from_millis(300));
    poster.kill();
    let before = results_of(&names, &id);
    assert_eq!(
        before.get(&Destination::Bluesky).map(|r| r.outcome),
        Some(Outcome::Attempt),
        "the killed poster left a Bluesky attempt: {before:?}"
    );

    let poster = Poster::start(
        &emulator,
        &names,
        &prefix,
        dir.path(),
        "n",
        &["--http-timeout-secs", "2", "--reconcile-delay-ms", "500"],
    );
    wait_final(&names, 3, Duration::from_secs(60), &[&poster]);
    std::thread::sleep(Duration::from_secs(1));
    let log = emulator.post_log();
    let bluesky = log["bluesky"].as_array().expect("bluesky");
    let mastodon = log["mastodon"].as_array().expect("mastodon");
    assert_eq!(bluesky.len(), 1, "{log}");
    assert_eq!(mastodon.len(), 1, "{log}");
    assert_eq!(bluesky[0]["text"], text.as_str());
    assert_eq!(mastodon[0]["text"], text.as_str());
    assert_each_once(&emulator, std::slice::from_ref(&text));
    // The resends were answered by the network, not posted again.
    assert_eq!(log["bluesky_rkey_conflicts"], 1, "{log}");
    assert!(
        log["mastodon_idempotent_replays"].as_u64() >= Some(1),
        "{log}"
    );
    let after = results_of(&names, &id);
    for destination in [Destination::X, Destination::Bluesky, Destination::Mastodon] {
        let result = &after[&destination];
        assert_eq!(result.outcome, Outcome::Posted, "{result:?}");
    }
    let rkey = bluesky[0]["rkey"].as_str().expect("rkey");
    assert_eq!(
        after[&Destination::Bluesky].post_id.as_deref(),
        bluesky[0]["uri"].as_str()
    );
    assert!(after[&Destination::Bluesky].reconciled);
    assert!(rkey.len() == 13, "{rkey}");
    assert_eq!(
        after[&Destination::Mastodon].post_id.as_deref(),
        mastodon[0]["id"].as_str()
    );
    assert_eq!(
        mastodon[0]["idempotency_key"].as_str(),
        Some(format!("tweet-pipeline-{id}-mastodon").as_str())
    );
    drop(poster);
    delete_schedule_topics(&names).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failing_network_never_reposts_to_another() {
    let prefix = unique("sched-one-fails");
    let names = create_schedule_topics(&format!("{prefix}-")).await;
    let emulator = Emulator::start();
    emulator
        .fault(serde_json::json!({"api": "mastodon_post", "connect_status": 500, "times": 100}));
    let dir = tempfile::tempdir().unwrap();
    let text = format!("bluesky yes, mastodon no, {prefix}");
    let id = schedule_one(&names, &text, Duration::from_secs(2), "bluesky,mastodon");
    let mut poster = Poster::start(
        &emulator,
        &names,
        &prefix,
        dir.path(),
        "m",
        &["--max-attempts", "3"],
    );
    wait_final(&names, 2, Duration::from_secs(40), &[&poster]);
    let results = results_of(&names, &id);
    assert_eq!(results.len(), 2, "{results:?}");
    assert_eq!(results[&Destination::Bluesky].outcome, Outcome::Posted);
    let mastodon = &results[&Destination::Mastodon];
    assert_eq!(mastodon.outcome, Outcome::Failed, "{mastodon:?}");
    assert_eq!(mastodon.attempt, 3);
    assert_eq!(
        mastodon.reason.as_deref(),
        Some("HTTP 500 after 3 attempts")
    );
    poster.stop();
    // A new instance reads both outcomes back and posts nothing.
    let poster = Poster::start(&emulator, &names, &prefix, dir.path(), "m", &[]);
    poster.wait_loaded(4);
    std::thread::sleep(Duration::from_secs(2));
    let log = emulator.post_log();
    assert_eq!(
        log["bluesky"].as_array().expect("bluesky").len(),
        1,
        "{log}"
    );
    assert_eq!(log["bluesky_rkey_conflicts"], 0, "{log}");
    assert_eq!(
        log["mastodon"].as_array().expect("mastodon").len(),
        0,
        "{log}"
    );
    assert_eq!(log["count"], 0, "nothing went to X: {log}");
    assert_eq!(results_of(&names, &id), results, "no new outcome");
    let output = schedule(&names, &["list"]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains("2 post(s): 1 failed, 1 posted"), "{stdout}");
    drop(poster);
    delete_schedule_topics(&names).await;
}
