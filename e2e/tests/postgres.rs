//! PostgreSQL scale-out against Debian's real PostgreSQL server, started by this test in a
//! temporary folder: two analysis consumers in one group share the partitions of one topic
//! set filled with a real recording and write to one database, which must then hold exactly
//! one row per distinct undeleted post. The connection URL carries a password, which must
//! appear in no output.
//!
//! Needs the PostgreSQL server binaries (`scripts/ensure-deps.sh` installs Debian's
//! `postgresql`), the binaries built, the local broker, and `../shared/data`.

mod support;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rustix::process::{kill_process, Pid, Signal};
use support::{
    analysis_summary, bootstrap, consumer_command, create_topics, delete_topics, free_ports,
    group_at_end, json_summary, run, shared_data, terminate, topic_flags, unique,
};
use tweet_pipeline_common::{route_line, Destination, LineClass};
use tweet_pipeline_consumer::summary::StatsSummary;

const PASSWORD: &str = "pw-Xq7-not-in-logs";

/// The folder holding `initdb` and `postgres`: `$PG_BIN`, else the newest
/// `/usr/lib/postgresql/<version>/bin`.
fn pg_bin() -> PathBuf {
    if let Some(dir) = std::env::var_os("PG_BIN") {
        return PathBuf::from(dir);
    }
    let newest = std::fs::read_dir("/usr/lib/postgresql")
        .ok()
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let version: u32 = e.file_name().to_str()?.parse().ok()?;
            let bin = e.path().join("bin");
            bin.join("postgres").exists().then_some((version, bin))
        })
        .max();
    match newest {
        Some((_, bin)) => bin,
        None => panic!(
            "PostgreSQL server binaries not found under /usr/lib/postgresql: run scripts/ensure-deps.sh (it installs Debian's postgresql), or set PG_BIN"
        ),
    }
}

fn is_root() -> bool {
    rustix::process::geteuid().is_root()
}

/// A PostgreSQL server in a temporary folder, stopped (fast shutdown) on drop.
struct Postgres {
    child: Option<Child>,
    data: PathBuf,
    port: u16,
    _dir: tempfile::TempDir,
}

impl Postgres {
    fn start() -> Self {
        let bin = pg_bin();
        let dir = tempfile::tempdir().expect("temp dir");
        let data = dir.path().join("data");
        let pwfile = dir.path().join("pw");
        std::fs::write(&pwfile, PASSWORD).expect("password file");
        // initdb and postgres refuse to run as root: run them as the `postgres` user that
        // Debian's package creates (or `nobody`).
        let as_user = |program: &Path| -> Command {
            if is_root() {
                let user = if Command::new("id")
                    .arg("postgres")
                    .output()
                    .is_ok_and(|o| o.status.success())
                {
                    "postgres"
                } else {
                    "nobody"
                };
                let status = Command::new("chown")
                    .args(["-R", user])
                    .arg(dir.path())
                    .status()
                    .expect("chown runs");
                assert!(status.success());
                let mut command = Command::new("runuser");
                command.args(["-u", user, "--"]).arg(program);
                command
            } else {
                Command::new(program)
            }
        };
        let init = as_user(&bin.join("initdb"))
            .arg("-D")
            .arg(&data)
            .args([
                "-U",
                "tweet",
                "--auth-local=trust",
                "--auth-host=scram-sha-256",
                "-E",
                "UTF8",
                "--no-sync",
            ])
            .arg(format!("--pwfile={}", pwfile.display()))
            .output()
            .expect("initdb runs");
        assert!(
            init.status.success(),
            "initdb failed: {}",
            String::from_utf8_lossy(&init.stderr)
        );
        let (port, _) = free_ports();
        let child = as_user(&bin.join("postgres"))
            .arg("-D")
            .arg(&data)
            .arg("-k")
            .arg(dir.path())
            .args([
                "-h",
                "127.0.0.1",
                "-p",
                &port.to_string(),
                "-c",
                "fsync=off",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("postgres starts");
        let server = Self {
            child: Some(child),
            data,
            port,
            _dir: dir,
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            match postgres::Client::connect(&server.url("postgres"), postgres::NoTls) {
                Ok(mut client) => {
                    client
                        .batch_execute("CREATE DATABASE tweets")
                        .expect("create database");
                    break;
                }
                Err(error) if Instant::now() < deadline => {
                    let _ = error;
                    std::thread::sleep(Duration::from_millis(200));
                }
                Err(error) => panic!("PostgreSQL did not start on port {port}: {error}"),
            }
        }
        server
    }

    fn url(&self, database: &str) -> String {
        format!(
            "postgres://tweet:{PASSWORD}@127.0.0.1:{}/{database}",
            self.port
        )
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            // SIGINT to the postmaster (its pid is the first line of postmaster.pid; `child`
            // may be runuser, which does not pass signals on): PostgreSQL's fast shutdown.
            let pid = std::fs::read_to_string(self.data.join("postmaster.pid"))
                .ok()
                .and_then(|text| text.lines().next()?.trim().parse().ok())
                .and_then(Pid::from_raw)
                .unwrap_or_else(|| Pid::from_child(&child));
            let _ = kill_process(pid, Signal::INT);
            let _ = child.wait();
        }
    }
}

/// Members of `group` as the broker reports them.
fn group_members(group: &str) -> usize {
    let probe: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap())
        .create()
        .expect("consumer");
    probe
        .fetch_group_list(Some(group), Duration::from_secs(5))
        .ok()
        .and_then(|list| {
            list.groups()
                .iter()
                .find(|g| g.name() == group && g.state() == "Stable")
                .map(|g| g.members().len())
        })
        .unwrap_or(0)
}

// A plain test, not `#[tokio::test]`: the synchronous `postgres` client runs its own runtime
// and must not be called from inside another one.
#[test]
fn two_consumers_in_one_group_store_one_row_per_post_in_postgres() {
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let server = Postgres::start();
    let url = server.url("tweets");

    let prefix = unique("pg");
    let names = runtime.block_on(create_topics(&format!("{prefix}-")));
    let dir = tempfile::tempdir().expect("temp dir");
    let data = shared_data().join("twitter_v1/stream_sample");
    let mut bytes = Vec::new();
    for file in [
        "sample_2013-05-05_MyCSHome.jsonl",
        "sample_2015-10-03_juloi.jsonl",
    ] {
        bytes.extend(std::fs::read(data.join(file)).expect("recording"));
        if !bytes.ends_with(b"\n") {
            bytes.push(b'\n');
        }
    }
    let recording = dir.path().join("recording.jsonl");
    std::fs::write(&recording, &bytes).expect("write recording");

    // The distinct undeleted posts, by the routing rules (keys are post ids).
    let mut statuses = BTreeSet::new();
    let mut deleted = BTreeSet::new();
    let mut consumed_records = 0u64;
    for line in bytes.split(|b| *b == b'\n') {
        if let LineClass::Record(routed) = route_line(line) {
            let key = routed.key.as_ref().map(|k| k.to_string());
            match routed.destination() {
                Destination::Tweets | Destination::Retweets => {
                    statuses.insert(key.expect("post key"));
                }
                Destination::Control if line.starts_with(b"{\"delete\"") => {
                    deleted.insert(key.expect("delete key"));
                }
                _ => {}
            }
            if routed.destination() != Destination::DeadLetter {
                consumed_records += 1;
            }
        }
    }
    let expected: BTreeSet<String> = statuses.difference(&deleted).cloned().collect();
    assert!(
        statuses.len() > expected.len(),
        "the recording deletes some of its own posts"
    );

    // Two instances of one group, both joined before any record exists, so both get partitions.
    // On one host, each static member needs an instance id of its own (docs/operations.md).
    let group = unique("pg-analysis");
    let (port_a, port_b) = free_ports();
    let start = |port: u16| {
        consumer_command()
            .args(["--group", &group, "--role", "analysis"])
            .arg(format!("--instance-id=member-{port}"))
            .arg(format!("--db={url}"))
            .args(topic_flags(&names))
            .arg(format!("--metrics-addr=127.0.0.1:{port}"))
            .env("RUST_LOG", "info")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("tweet-consumer starts")
    };
    let a = start(port_a);
    let b = start(port_b);
    let deadline = Instant::now() + Duration::from_secs(60);
    let (mut a, mut b) = (a, b);
    while group_members(&group) < 2 {
        for child in [&mut a, &mut b] {
            if let Ok(Some(status)) = child.try_wait() {
                let mut stderr = String::new();
                if let Some(mut pipe) = child.stderr.take() {
                    let _ = std::io::Read::read_to_string(&mut pipe, &mut stderr);
                }
                panic!("a consumer exited early ({status}):\n{stderr}");
            }
        }
        assert!(
            Instant::now() < deadline,
            "the two consumers did not both join {group}"
        );
        std::thread::sleep(Duration::from_millis(250));
    }

    let produced = support::producer_summary(&run(support::producer_command()
        .arg("--replay")
        .arg(&recording)
        .args(topic_flags(&names))
        .arg("--metrics-addr=off")));
    assert_eq!(produced.failed, 0);

    let topics = [
        names.tweets.as_str(),
        names.retweets.as_str(),
        names.control.as_str(),
    ];
    let deadline = Instant::now() + Duration::from_secs(120);
    while !group_at_end(&group, &topics) {
        assert!(
            Instant::now() < deadline,
            "the group did not commit the end of every partition"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    let outputs = [terminate(a), terminate(b)];
    let mut total = 0;
    for output in &outputs {
        let stdout = String::from_utf8_lossy(&output.stdout);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            output.status.success(),
            "consumer failed:\n{stdout}\n{stderr}"
        );
        assert!(
            !stdout.contains(PASSWORD) && !stderr.contains(PASSWORD),
            "the password leaked into the output"
        );
        assert!(
            stderr.contains("postgres://tweet@127.0.0.1"),
            "the store is logged, redacted:\n{stderr}"
        );
        let consumed = analysis_summary(output).records_consumed;
        assert!(
            consumed > 0,
            "both instances consumed (each held partitions):\n{stdout}"
        );
        total += consumed;
    }
    assert!(
        total >= consumed_records,
        "{total} consumed < {consumed_records} records"
    );

    let mut client = postgres::Client::connect(&url, postgres::NoTls).expect("connect");
    let ids: BTreeSet<String> = client
        .query("SELECT id FROM posts", &[])
        .expect("posts")
        .iter()
        .map(|row| row.get(0))
        .collect();
    let rows: i64 = client
        .query_one("SELECT COUNT(*) FROM posts", &[])
        .expect("count")
        .get(0);
    assert_eq!(
        rows as usize,
        expected.len(),
        "one row per distinct undeleted post"
    );
    assert!(
        ids == expected,
        "stored ids differ from the distinct undeleted posts"
    );
    let migrations: Vec<i32> = client
        .query(
            "SELECT version FROM schema_migrations ORDER BY version",
            &[],
        )
        .expect("migrations")
        .iter()
        .map(|row| row.get(0))
        .collect();
    assert_eq!(migrations, vec![1, 2, 3]);
    let remembered: i64 = client
        .query_one("SELECT COUNT(*) FROM deleted_posts", &[])
        .expect("deleted")
        .get(0);
    assert_eq!(remembered as usize, deleted.len());

    // `stats` reads the same store through the URL.
    let stats = run(consumer_command().args(["stats", "--db", &url]));
    assert!(!String::from_utf8_lossy(&stats.stdout).contains(PASSWORD));
    let stats: StatsSummary = json_summary(&stats);
    assert_eq!(stats.total as usize, expected.len());
    assert_eq!(
        stats.db,
        format!("postgres://tweet@127.0.0.1:{}/tweets", server.port)
    );

    runtime.block_on(delete_topics(&names));
}
