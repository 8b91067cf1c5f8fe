//! The chaos suite: the pipeline under broker outage, crashes and rebalances, against real
//! Kafka brokers. Every case prints its tally (lines in, records out, rows stored, duplicates,
//! lost) and asserts 0 lost and 0 duplicated.
//!
//! - `broker_outage_and_full_spool`: a broker of its own (scripts/kafka-local.sh with its own
//!   ports and state folder, so the shared broker other tests use keeps running) is stopped for
//!   30 s and restarted during a replay at 2,500 lines/s (case a), then stopped again while a
//!   producer with a tiny spool runs until the spool is full (case d).
//! - `consumer_sigkilled_ten_times`: the analysis consumer SIGKILLed at random moments (case b).
//! - `group_member_sigkilled_partner_takes_over`: two analysis consumers in one group, one
//!   SIGKILLed (case c).
//! - `restarted_member_resumes_before_its_session_expires`: the bound of the default static
//!   membership: a member SIGKILLed and started again reads on before the dead one's 45 s
//!   session could have expired (a dynamic member waits it out).
//!
//! Case e (the producer SIGTERMed mid-stream) is `operations.rs`.
//!
//! Reads recordings from ../shared/data (fails with a message when it is absent).

mod support;

use std::collections::{BTreeSet, HashMap};
use std::hash::{Hash, Hasher};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use rdkafka::message::Message;
use support::{
    binary, create_topics, delete_topics, free_ports, producer_summary, repo_root, run, sample,
    scrape, shared_data, stored_ids, topic_flags, unique, PARTITIONS,
};
use tweet_pipeline_common::config::TopicNames;
use tweet_pipeline_common::{route_line, Destination, LineClass};

/// Every v1.1 sample- and filter-stream recording, concatenated (about 8,000 real lines with
/// tweets, retweets, deletes and limit notices), `times` times over.
fn recordings(times: usize) -> Vec<u8> {
    let data = shared_data().join("twitter_v1");
    let mut once = Vec::new();
    for folder in ["stream_sample", "stream_filter"] {
        let mut files: Vec<_> = std::fs::read_dir(data.join(folder))
            .expect("recordings folder")
            .map(|e| e.expect("entry").path())
            .filter(|p| p.extension().is_some_and(|e| e == "jsonl"))
            .collect();
        files.sort();
        for file in files {
            once.extend(std::fs::read(&file).expect("recording"));
            if !once.ends_with(b"\n") {
                once.push(b'\n');
            }
        }
    }
    once.repeat(times)
}

fn value_hash(bytes: &[u8]) -> u64 {
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    bytes.hash(&mut hasher);
    hasher.finish()
}

/// What a recording must become: how many times each record value appears, and the ids of the
/// rows the analysis store must end with (distinct posts less deleted ones).
struct Expected {
    values: HashMap<u64, u64>,
    records: u64,
    rows: BTreeSet<String>,
}

fn expected(bytes: &[u8]) -> Expected {
    let mut values = HashMap::new();
    let (mut records, mut posts, mut deleted) = (0, BTreeSet::new(), BTreeSet::new());
    for line in bytes.split(|b| *b == b'\n') {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let LineClass::Record(routed) = route_line(line) else {
            continue;
        };
        records += 1;
        *values.entry(value_hash(line)).or_insert(0) += 1;
        let destination = routed.destination();
        let key = routed.key.map(|k| k.into_owned());
        match (destination, key) {
            (Destination::Tweets | Destination::Retweets, Some(id)) => {
                posts.insert(id);
            }
            (Destination::Control, Some(id)) if line.starts_with(b"{\"delete\"") => {
                deleted.insert(id);
            }
            _ => {}
        }
    }
    Expected {
        values,
        records,
        rows: posts.difference(&deleted).cloned().collect(),
    }
}

/// Reads every record of the pipeline's topics on `bootstrap` and counts values by hash.
fn read_all(bootstrap: &str, names: &TopicNames, expected_records: u64) -> HashMap<u64, u64> {
    let topics: Vec<&str> = Destination::ALL.iter().map(|d| names.name(*d)).collect();
    let consumer = support::from_beginning(bootstrap, &topics);
    let mut values = HashMap::new();
    let mut count = 0;
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut quiet_since = Instant::now();
    // Until the expected number arrived and then 2 s more (a duplicate would show up), or 120 s.
    while Instant::now() < deadline
        && (count < expected_records || quiet_since.elapsed() < Duration::from_secs(2))
    {
        match consumer.poll(Duration::from_millis(200)) {
            Some(Ok(message)) => {
                *values
                    .entry(value_hash(message.payload().unwrap_or_default()))
                    .or_insert(0) += 1;
                count += 1;
                quiet_since = Instant::now();
            }
            Some(Err(error)) => panic!("reading back: {error}"),
            None => {}
        }
    }
    values
}

/// (records out, duplicated, lost) of what Kafka holds against what the input must produce.
fn compare(expected: &HashMap<u64, u64>, got: &HashMap<u64, u64>) -> (u64, u64, u64) {
    let (mut duplicated, mut lost) = (0, 0);
    for (hash, want) in expected {
        let have = got.get(hash).copied().unwrap_or(0);
        duplicated += have.saturating_sub(*want);
        lost += want.saturating_sub(have);
    }
    let strangers: u64 = got
        .iter()
        .filter(|(hash, _)| !expected.contains_key(hash))
        .map(|(_, n)| n)
        .sum();
    (got.values().sum(), duplicated + strangers, lost)
}

fn tally(case: &str, lines_in: u64, records_out: u64, rows: usize, duplicated: u64, lost: u64) {
    println!(
        "chaos {case}: lines in {lines_in}, records out {records_out}, rows stored {rows}, duplicates {duplicated}, lost {lost}"
    );
}

/// (missing, unexpected) ids of the store against the expected rows.
fn diff_rows(expected: &BTreeSet<String>, stored: &BTreeSet<String>) -> (usize, usize) {
    (
        expected.difference(stored).count(),
        stored.difference(expected).count(),
    )
}

fn kill(child: &mut Child) {
    let _ = rustix::process::kill_process(
        rustix::process::Pid::from_child(child),
        rustix::process::Signal::KILL,
    );
    let _ = child.wait();
}

fn output_of(child: Child) -> Output {
    child.wait_with_output().expect("child exits")
}

/// A broker of this test's own: the repository's scripts/kafka-local.sh with its own ports
/// and state folder. Stopped (by its pid file, so only the process it started) on drop.
struct OwnBroker {
    state: tempfile::TempDir,
    port: u16,
    controller_port: u16,
}

impl OwnBroker {
    fn start() -> Self {
        let (port, controller_port) = free_ports();
        let broker = Self {
            state: tempfile::tempdir().expect("state folder"),
            port,
            controller_port,
        };
        broker.script("start");
        broker
    }

    fn bootstrap(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    fn script(&self, action: &str) {
        // One retry: a start under heavy load has been seen to fail once with an empty log;
        // the failure is printed, not hidden.
        if let Err(failure) = self.try_script(action) {
            println!("kafka-local.sh {action} failed once, retrying:\n{failure}");
            if let Err(failure) = self.try_script(action) {
                panic!("kafka-local.sh {action} failed twice:\n{failure}");
            }
        }
    }

    fn try_script(&self, action: &str) -> Result<(), String> {
        let started = Instant::now();
        let output = Command::new(repo_root().join("scripts/kafka-local.sh"))
            .arg(action)
            .env("KAFKA_LOCAL_STATE", self.state.path())
            .env("KAFKA_LOCAL_PORT", self.port.to_string())
            .env(
                "KAFKA_LOCAL_CONTROLLER_PORT",
                self.controller_port.to_string(),
            )
            .env("KAFKA_BOOTSTRAP", self.bootstrap())
            .output()
            .expect("kafka-local.sh runs");
        if !output.status.success() {
            return Err(String::from_utf8_lossy(&output.stderr).into_owned());
        }
        println!(
            "own broker on {}: {action} took {:.1} s",
            self.bootstrap(),
            started.elapsed().as_secs_f64()
        );
        Ok(())
    }

    async fn create_topics(&self, prefix: &str) -> TopicNames {
        support::create_topics_on(&self.bootstrap(), prefix, &[]).await
    }

    fn flags(&self, names: &TopicNames) -> Vec<String> {
        let mut flags = topic_flags(names);
        flags.retain(|f| !f.starts_with("--bootstrap="));
        flags.push(format!("--bootstrap={}", self.bootstrap()));
        flags
    }
}

impl Drop for OwnBroker {
    fn drop(&mut self) {
        let _ = Command::new(repo_root().join("scripts/kafka-local.sh"))
            .arg("stop")
            .env("KAFKA_LOCAL_STATE", self.state.path())
            .env("KAFKA_LOCAL_PORT", self.port.to_string())
            .env(
                "KAFKA_LOCAL_CONTROLLER_PORT",
                self.controller_port.to_string(),
            )
            .env("KAFKA_BOOTSTRAP", self.bootstrap())
            .output();
    }
}

/// Scrapes `port` until `check` holds for the scrape, or panics after `timeout` with `log`.
fn wait_until(port: u16, timeout: Duration, log: &Path, what: &str, check: impl Fn(&str) -> bool) {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(text) = scrape(port) {
            if check(&text) {
                return;
            }
        }
        assert!(
            Instant::now() < deadline,
            "{what} did not happen within {timeout:?}; producer log:\n{}",
            std::fs::read_to_string(log).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(250));
    }
}

fn metric(port: u16, series: &str) -> f64 {
    scrape(port)
        .and_then(|text| sample(&text, series))
        .unwrap_or(0.0)
}

/// Replays `input` with its own spool, metrics on `port`, stderr to `log`, and `extra` flags;
/// its summary is JSON (read with `producer_summary`).
fn spawn_producer(
    input: &Path,
    spool: &Path,
    flags: &[String],
    port: u16,
    log: &Path,
    extra: &[&str],
) -> Child {
    Command::new(binary("tweet-producer"))
        .arg("--replay")
        .arg(input)
        .arg("--spool-dir")
        .arg(spool)
        .args(extra)
        .args(flags)
        .arg(format!("--metrics-addr=127.0.0.1:{port}"))
        .args(["--flush-timeout-secs", "120", "--summary", "json"])
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(log).expect("log"))
        .spawn()
        .expect("producer starts")
}

#[tokio::test(flavor = "multi_thread")]
async fn broker_outage_and_full_spool() {
    let broker = OwnBroker::start();
    let dir = tempfile::tempdir().expect("temp dir");

    // a. The broker stopped for 30 s and restarted during a replay at 2,500 lines/s.
    let names = broker
        .create_topics(&format!("{}-", unique("outage")))
        .await;
    let bytes = recordings(20);
    let want = expected(&bytes);
    let input = dir.path().join("input.jsonl");
    std::fs::write(&input, &bytes).expect("input");
    let lines_in = bytes
        .split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .count() as u64;
    let (port, _) = free_ports();
    let log = dir.path().join("producer-a.log");
    let producer = spawn_producer(
        &input,
        &dir.path().join("spool-a"),
        &broker.flags(&names),
        port,
        &log,
        &["--rate", "2500"],
    );
    wait_until(
        port,
        Duration::from_secs(60),
        &log,
        "records flowing",
        |t| sample(t, "tweet_pipeline_producer_lines_read_total").is_some_and(|v| v > 5000.0),
    );
    broker.script("stop");
    let read_at_stop = metric(port, "tweet_pipeline_producer_lines_read_total");
    std::thread::sleep(Duration::from_secs(30));
    let read_during = metric(port, "tweet_pipeline_producer_lines_read_total") - read_at_stop;
    let spooled_during = metric(port, "tweet_pipeline_producer_spool_records");
    broker.script("start");
    let output = output_of(producer);
    let stderr = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(
        output.status.success(),
        "producer failed: {}\n{}\n{stderr}",
        output.status,
        String::from_utf8_lossy(&output.stdout)
    );
    println!("{}", String::from_utf8_lossy(&output.stdout));
    assert!(
        read_during > 30_000.0,
        "the producer kept reading during the outage (read {read_during} lines in 30 s)"
    );
    assert!(
        spooled_during > 0.0 && stderr.contains("spooling to disk"),
        "the outage outlasted the in-memory queue, so records were spooled ({spooled_during} in the spool)"
    );
    let summary = producer_summary(&output);
    assert_eq!(summary.lines_read, lines_in);
    assert_eq!(summary.spooled_left, 0);
    let got = read_all(&broker.bootstrap(), &names, want.records);
    let (out, duplicated, lost) = compare(&want.values, &got);

    // ... and every distinct post once in the store.
    let db = dir.path().join("outage.db");
    run(support::analysis_to_end(&db)
        .args(broker.flags(&names))
        .arg("--metrics-addr=off"));
    let stored = stored_ids(&db);
    let (missing, unexpected) = diff_rows(&want.rows, &stored);
    tally(
        "a (broker down 30 s)",
        lines_in,
        out,
        stored.len(),
        duplicated + unexpected as u64,
        lost + missing as u64,
    );
    assert_eq!(
        (duplicated, lost),
        (0, 0),
        "Kafka holds every line exactly once"
    );
    assert_eq!(
        (missing, unexpected),
        (0, 0),
        "one row per distinct undeleted post"
    );

    // d. The spool filled on purpose: reading pauses with a clear message, nothing is dropped.
    let names = broker
        .create_topics(&format!("{}-", unique("spoolfull")))
        .await;
    let bytes = recordings(2);
    let want = expected(&bytes);
    let input = dir.path().join("input-d.jsonl");
    std::fs::write(&input, &bytes).expect("input");
    let lines_in = bytes
        .split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .count() as u64;
    let log = dir.path().join("producer-d.log");
    let producer = spawn_producer(
        &input,
        &dir.path().join("spool-d"),
        &broker.flags(&names),
        port,
        &log,
        &[
            "--rate",
            "2000",
            "--spill-after-ms",
            "200",
            "--spool-max-bytes",
            "4000000",
            "--spool-segment-bytes",
            "500000",
            "-X",
            "queue.buffering.max.kbytes=2048",
        ],
    );
    wait_until(
        port,
        Duration::from_secs(60),
        &log,
        "records flowing",
        |t| {
            sample(
                t,
                "tweet_pipeline_producer_records_sent_total{kind=\"tweet\",topic=\"tweets\"}",
            )
            .is_some_and(|v| v > 100.0)
        },
    );
    broker.script("stop");
    wait_until(port, Duration::from_secs(60), &log, "a full spool", |t| {
        sample(t, "tweet_pipeline_producer_spool_full_waits_total").is_some_and(|v| v > 0.0)
    });
    let paused_at = metric(port, "tweet_pipeline_producer_lines_read_total");
    std::thread::sleep(Duration::from_secs(3));
    let paused_later = metric(port, "tweet_pipeline_producer_lines_read_total");
    let spool_bytes = metric(port, "tweet_pipeline_producer_spool_bytes");
    assert_eq!(
        paused_at, paused_later,
        "reading paused while the spool was full"
    );
    assert!(
        spool_bytes <= 4_000_000.0,
        "the spool stays within its bound"
    );
    let stderr = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(
        stderr.contains("spool full: reading is paused"),
        "a clear message:\n{stderr}"
    );
    broker.script("start");
    let output = output_of(producer);
    assert!(
        output.status.success(),
        "producer failed: {}\n{}",
        output.status,
        std::fs::read_to_string(&log).unwrap_or_default()
    );
    assert_eq!(producer_summary(&output).lines_read, lines_in);
    let got = read_all(&broker.bootstrap(), &names, want.records);
    let (out, duplicated, lost) = compare(&want.values, &got);
    tally("d (spool full)", lines_in, out, 0, duplicated, lost);
    assert_eq!(
        (duplicated, lost),
        (0, 0),
        "Kafka holds every line exactly once"
    );
}

/// Produces `times` copies of the recordings into fresh topics on the shared broker.
async fn produce_recordings(times: usize, dir: &Path) -> (TopicNames, Expected, u64) {
    let names = create_topics(&format!("{}-", unique("chaos"))).await;
    let bytes = recordings(times);
    let want = expected(&bytes);
    let input = dir.join("input.jsonl");
    std::fs::write(&input, &bytes).expect("input");
    let lines_in = bytes
        .split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .count() as u64;
    run(support::producer_command()
        .arg("--replay")
        .arg(&input)
        .args(topic_flags(&names))
        .arg("--metrics-addr=off"));
    (names, want, lines_in)
}

/// Waits (polling every 20 ms, at most 60 s) until the store at `db` holds a row.
fn wait_for_rows(db: &Path, log: &Path) {
    let deadline = Instant::now() + Duration::from_secs(60);
    // The file may exist before its schema does, or be busy: both count as no row yet.
    let rows = || {
        rusqlite::Connection::open(db)
            .and_then(|conn| {
                conn.query_row("SELECT COUNT(*) FROM posts", [], |r| r.get::<_, i64>(0))
            })
            .unwrap_or(0)
    };
    while !(db.exists() && rows() > 0) {
        assert!(
            Instant::now() < deadline,
            "no row was stored within 60 s:\n{}",
            std::fs::read_to_string(log).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// An analysis consumer in batches of 2 records: one store transaction (and fsync) per 2
/// records keeps the 19,638 records of these cases in flight for seconds, so that kills land
/// while rows are being written (with 100-record batches the consumer stored everything in
/// well under a second, before the first kill).
fn analysis_consumer(group: &str, db: &Path, names: &TopicNames, log: &Path) -> Command {
    let mut command = Command::new(support::binary("tweet-consumer"));
    command
        .args(["--group", group, "--role", "analysis", "--batch-size", "2"])
        .arg("--db")
        .arg(db)
        .args(topic_flags(names))
        .arg("--metrics-addr=off")
        // A SIGKILLed member is noticed after 6 s (the broker's minimum) rather than 45 s.
        .args([
            "-X",
            "session.timeout.ms=6000",
            "-X",
            "heartbeat.interval.ms=1000",
        ])
        .stdout(Stdio::piped())
        .stderr(
            std::fs::File::options()
                .create(true)
                .append(true)
                .open(log)
                .expect("log"),
        );
    command
}

#[tokio::test(flavor = "multi_thread")]
async fn consumer_sigkilled_ten_times() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (names, want, lines_in) = produce_recordings(3, dir.path()).await;
    let db = dir.path().join("tweets.db");
    let log = dir.path().join("consumer.log");
    let group = unique("analysis");
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .subsec_nanos();
    println!("kill delays from seed {seed}");
    let mut state = u64::from(seed) | 1;
    let mut kills = 0;
    let mut rows_at_kill = Vec::new();
    while kills < 10 {
        // xorshift: a kill 0.2 to 1 s after start, covering start-up, join and batches.
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        let delay = Duration::from_millis(200 + state % 800);
        // Static membership (KIP-345, the default): a restarted instance with the same
        // group.instance.id takes its partitions back at once, without waiting out the dead
        // one's session.
        let mut child = analysis_consumer(&group, &db, &names, &log)
            .spawn()
            .expect("consumer starts");
        if kills == 0 {
            // The first kill lands as soon as rows are being written, whatever the machine's
            // speed; the others at random points, start-up and join included.
            wait_for_rows(&db, &log);
        } else {
            std::thread::sleep(delay);
        }
        if child.try_wait().expect("status").is_some() {
            panic!(
                "the consumer exited by itself:\n{}",
                std::fs::read_to_string(&log).unwrap_or_default()
            );
        }
        kill(&mut child);
        kills += 1;
        // The store exists: the first run was killed only once it held rows.
        rows_at_kill.push(stored_ids(&db).len());
    }
    println!("rows after each SIGKILL: {rows_at_kill:?}");
    run(analysis_consumer(&group, &db, &names, &log).arg("--exit-at-end"));
    let stored = stored_ids(&db);
    let (missing, unexpected) = diff_rows(&want.rows, &stored);
    tally(
        "b (consumer SIGKILLed 10 times)",
        lines_in,
        want.records,
        stored.len(),
        unexpected as u64,
        missing as u64,
    );
    assert!(
        rows_at_kill.iter().any(|n| *n > 0 && *n < want.rows.len()),
        "a kill landed while rows were being written: {rows_at_kill:?}"
    );
    // (The killed runs may not have committed anything: offsets are committed every second
    // and at shutdown; rows written before a kill are simply written again.)
    assert_eq!(
        (missing, unexpected),
        (0, 0),
        "the store equals the distinct undeleted posts"
    );
    delete_topics(&names).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn group_member_sigkilled_partner_takes_over() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (names, want, lines_in) = produce_recordings(3, dir.path()).await;
    let db = dir.path().join("tweets.db");
    let (log_a, log_b) = (dir.path().join("a.log"), dir.path().join("b.log"));
    let group = unique("analysis");
    // Two static members on one host: each needs an instance id of its own (the default,
    // <host>-<group>, would make the second fence the first).
    let mut a = analysis_consumer(&group, &db, &names, &log_a)
        .args(["--instance-id", "member-a"])
        .spawn()
        .expect("consumer a starts");
    let b = analysis_consumer(&group, &db, &names, &log_b)
        .args(["--instance-id", "member-b"])
        .spawn()
        .expect("consumer b starts");
    // Both members hold partitions before one dies.
    let deadline = Instant::now() + Duration::from_secs(60);
    let assigned = |log: &Path| {
        std::fs::read_to_string(log)
            .unwrap_or_default()
            .lines()
            .rfind(|l| l.contains("partitions assigned") && l.contains('['))
            .map(str::to_owned)
    };
    while assigned(&log_a).is_none() || assigned(&log_b).is_none() {
        assert!(
            Instant::now() < deadline,
            "both members were never assigned partitions"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    // Killed while the members are writing rows.
    wait_for_rows(&db, &log_a);
    kill(&mut a);
    let rows_at_kill = stored_ids(&db).len();
    // The survivor gets the dead member's partitions after its session times out (6 s) and
    // reads them to the end.
    let topics = [
        names.tweets.as_str(),
        names.retweets.as_str(),
        names.control.as_str(),
    ];
    let deadline = Instant::now() + Duration::from_secs(90);
    while !support::group_at_end(&group, &topics) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(500));
    }
    let b = support::terminate(b);
    let stored = stored_ids(&db);
    let (missing, unexpected) = diff_rows(&want.rows, &stored);
    tally(
        "c (one of two group members SIGKILLed)",
        lines_in,
        want.records,
        stored.len(),
        unexpected as u64,
        missing as u64,
    );
    println!("rows when member a was killed: {rows_at_kill}");
    assert!(
        rows_at_kill < want.rows.len(),
        "member a died with work left"
    );
    let last_assignment = assigned(&log_b).unwrap_or_default();
    assert_eq!(
        last_assignment.matches('[').count(),
        3 * PARTITIONS as usize,
        "member b holds every partition after a died: {last_assignment}"
    );
    assert!(b.status.success(), "member b stopped cleanly: {}", b.status);
    assert_eq!(
        (missing, unexpected),
        (0, 0),
        "the store equals the distinct undeleted posts"
    );
    support::assert_group_at_end(&group, &[&names.tweets, &names.retweets, &names.control]);
    delete_topics(&names).await;
}

/// The session timeout of the dead member in the bound test: librdkafka's default, stated.
const DEFAULT_SESSION: Duration = Duration::from_secs(45);

#[tokio::test(flavor = "multi_thread")]
async fn restarted_member_resumes_before_its_session_expires() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (names, want, _) = produce_recordings(3, dir.path()).await;
    let db = dir.path().join("tweets.db");
    let log = dir.path().join("consumer.log");
    let group = unique("analysis");
    // The default membership (static, id <host>-<group>) with the default 45 s session: only
    // static membership can hand the partitions back sooner than the session expires.
    let consumer = || {
        let mut command = Command::new(support::binary("tweet-consumer"));
        command
            .args(["--group", &group, "--role", "analysis"])
            .arg("--db")
            .arg(&db)
            .args(topic_flags(&names))
            .arg("--metrics-addr=off")
            .args([
                "-X",
                &format!("session.timeout.ms={}", DEFAULT_SESSION.as_millis()),
            ])
            .stdout(Stdio::piped())
            .stderr(
                std::fs::File::options()
                    .create(true)
                    .append(true)
                    .open(&log)
                    .expect("log"),
            );
        command
    };
    let mut first = consumer().spawn().expect("consumer starts");
    wait_for_rows(&db, &log);
    kill(&mut first);
    let restarted = Instant::now();
    let mut rest = consumer()
        .arg("--exit-at-end")
        .spawn()
        .expect("consumer restarts");
    // --exit-at-end needs an assignment: a member that had to wait out the dead one's session
    // could not be done before it expired.
    let bound = DEFAULT_SESSION / 2;
    while rest.try_wait().expect("status").is_none() {
        if restarted.elapsed() > bound {
            kill(&mut rest);
            panic!(
                "the restarted member had not read to the end {bound:?} after the restart (the \
                 dead member's session is {DEFAULT_SESSION:?}):\n{}",
                std::fs::read_to_string(&log).unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let output = output_of(rest);
    println!(
        "restarted member read to the end {:.1} s after the restart",
        restarted.elapsed().as_secs_f64()
    );
    assert!(
        output.status.success(),
        "the restarted member exited cleanly"
    );
    let stored = stored_ids(&db);
    assert_eq!(
        diff_rows(&want.rows, &stored),
        (0, 0),
        "the store equals the distinct undeleted posts"
    );
    delete_topics(&names).await;
}
