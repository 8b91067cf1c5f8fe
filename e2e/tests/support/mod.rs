//! Helpers shared by the integration tests: the broker address, fresh topics per test, the
//! binaries, and reading their summaries.
#![allow(dead_code)] // each test file uses its own subset

use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read as _, Write as _};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output};
use std::time::{Duration, Instant};

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Headers, Message};
use rdkafka::{Offset, TopicPartitionList};
use tweet_pipeline_common::config::TopicNames;
use tweet_pipeline_common::Destination;

pub const PARTITIONS: i32 = 2;

pub fn bootstrap() -> String {
    std::env::var("KAFKA_BOOTSTRAP").unwrap_or_else(|_| "127.0.0.1:9092".to_owned())
}

pub fn shared_data() -> PathBuf {
    let dir = std::env::var_os("TWEET_PIPELINE_SHARED_DATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/data"));
    assert!(
        dir.join("twitter_v1").is_dir(),
        "shared recordings not found at {}: put shared/ beside the checkout or set TWEET_PIPELINE_SHARED_DATA",
        dir.display()
    );
    dir
}

pub fn binary(name: &str) -> PathBuf {
    let consumer = PathBuf::from(env!("CARGO_BIN_EXE_tweet-consumer"));
    let path = consumer.with_file_name(name);
    assert!(
        path.exists(),
        "{} not found: build the binaries first (cargo build --release --bins, as scripts/test.sh does)",
        path.display()
    );
    path
}

/// `tweet-producer` with a spool folder of its own (the default folder, relative to the
/// working directory, is locked by one producer at a time and tests run in parallel).
pub fn producer_command() -> Command {
    let mut command = Command::new(binary("tweet-producer"));
    command.env(
        "TWEET_PIPELINE_SPOOL_DIR",
        std::env::temp_dir().join(unique("tweet-producer-spool")),
    );
    command
}

pub fn unique(prefix: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("{prefix}-{}-{nanos}", std::process::id())
}

/// Creates the four pipeline topics under a fresh prefix; panics with advice if no broker.
/// The raw post topics are compacted as topics.sh makes them (keys required, tombstones).
pub async fn create_topics(prefix: &str) -> TopicNames {
    create_topics_on(&bootstrap(), prefix, &[]).await
}

/// Creates the four pipeline topics under `prefix` on `bootstrap`; the post topics are
/// `cleanup.policy=compact,delete` plus `post_topic_config`.
pub async fn create_topics_on(
    bootstrap: &str,
    prefix: &str,
    post_topic_config: &[(&str, &str)],
) -> TopicNames {
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .create()
        .expect("admin client");
    admin
        .inner()
        .fetch_metadata(None, Duration::from_secs(10))
        .unwrap_or_else(|e| {
            panic!(
                "no Kafka broker at {bootstrap}: {e}; start one with scripts/kafka-local.sh start"
            )
        });
    let names = TopicNames::with_prefix(prefix);
    let topics: Vec<NewTopic<'_>> = Destination::ALL
        .iter()
        .map(|d| {
            let topic = NewTopic::new(names.name(*d), PARTITIONS, TopicReplication::Fixed(1));
            match d {
                Destination::Tweets | Destination::Retweets => post_topic_config.iter().fold(
                    topic.set("cleanup.policy", "compact,delete"),
                    |t, (k, v)| t.set(k, v),
                ),
                _ => topic,
            }
        })
        .collect();
    for result in admin
        .create_topics(
            &topics,
            &AdminOptions::new().operation_timeout(Some(Duration::from_secs(30))),
        )
        .await
        .expect("create topics")
    {
        result.expect("topic created");
    }
    names
}

/// The flags that point a binary at this test's topics and at the broker.
pub fn topic_flags(names: &TopicNames) -> Vec<String> {
    vec![
        format!("--tweets-topic={}", names.tweets),
        format!("--retweets-topic={}", names.retweets),
        format!("--control-topic={}", names.control),
        format!("--deadletter-topic={}", names.deadletter),
        format!("--bootstrap={}", bootstrap()),
    ]
}

pub fn run(command: &mut Command) -> Output {
    let output = command.output().expect("binary runs");
    assert!(
        output.status.success(),
        "{command:?} failed: {}\nstdout:\n{}\nstderr:\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

/// The number after `label` in a summary printed on stdout.
pub fn summary_value(output: &Output, label: &str) -> u64 {
    let stdout = String::from_utf8_lossy(&output.stdout);
    stdout
        .lines()
        .find_map(|line| {
            line.trim()
                .strip_prefix(label)
                .map(|rest| rest.trim().parse().expect("a count"))
        })
        .unwrap_or_else(|| panic!("no '{label}' in summary:\n{stdout}"))
}

/// Removes a passed test's topics (a failed test leaves them for inspection).
pub async fn delete_topics(names: &TopicNames) {
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", bootstrap())
        .create()
        .expect("admin client");
    let topics: Vec<&str> = Destination::ALL.iter().map(|d| names.name(*d)).collect();
    let _ = admin.delete_topics(&topics, &AdminOptions::new()).await;
}

/// Reads every record of `topics` from the beginning until `count` records arrived (or 60 s
/// passed), then 2 s more for any duplicate. Tombstones (null values, written by the analysis
/// group for deleted posts) are skipped: they are not records anyone produced.
pub fn read_back(topics: &[&str], count: usize) -> Vec<Record> {
    let consumer = from_beginning(&bootstrap(), topics);
    let record = |message: &rdkafka::message::BorrowedMessage<'_>| -> Option<Record> {
        let payload = message.payload()?;
        let headers = message
            .headers()
            .map(|h| {
                h.iter()
                    .map(|h| {
                        (
                            h.key.to_owned(),
                            String::from_utf8_lossy(h.value.unwrap_or_default()).into_owned(),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default();
        Some((
            message.topic().to_owned(),
            message
                .key()
                .map(|k| String::from_utf8(k.to_vec()).expect("utf-8 key")),
            payload.to_vec(),
            headers,
        ))
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut records = Vec::new();
    while records.len() < count && Instant::now() < deadline {
        if let Some(result) = consumer.poll(Duration::from_millis(200)) {
            records.extend(record(&result.expect("consume")));
        }
    }
    // Anything beyond `count` would be a duplicate: give it a moment to show up.
    let settle = Instant::now() + Duration::from_secs(2);
    while Instant::now() < settle {
        if let Some(Ok(message)) = consumer.poll(Duration::from_millis(200)) {
            records.extend(record(&message));
        }
    }
    records
}

/// A consumer (fresh group, never committing) assigned every partition of `topics` from the
/// beginning, on `bootstrap`.
pub fn from_beginning(bootstrap: &str, topics: &[&str]) -> BaseConsumer {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", unique("read-back"))
        .set("enable.auto.commit", "false")
        .create()
        .expect("consumer");
    let mut assignment = TopicPartitionList::new();
    for topic in topics {
        for partition in 0..PARTITIONS {
            assignment
                .add_partition_offset(topic, partition, Offset::Beginning)
                .expect("partition");
        }
    }
    consumer.assign(&assignment).expect("assign");
    consumer
}

/// One record read back: topic, key, value, headers.
pub type Record = (String, Option<String>, Vec<u8>, BTreeMap<String, String>);

/// Where `group` stands on one partition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupPosition {
    pub topic: String,
    pub partition: i32,
    /// The committed offset (0 when the group committed none).
    pub committed: i64,
    /// The partition's high watermark.
    pub high: i64,
}

/// The committed offset and the high watermark of every partition of `topics` for `group`.
pub fn group_positions(
    group: &str,
    topics: &[&str],
) -> rdkafka::error::KafkaResult<Vec<GroupPosition>> {
    let probe: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap())
        .set("group.id", group)
        .create()
        .expect("consumer");
    let mut partitions = TopicPartitionList::new();
    for topic in topics {
        for partition in 0..PARTITIONS {
            partitions.add_partition(topic, partition);
        }
    }
    let committed = probe.committed_offsets(partitions, Duration::from_secs(10))?;
    committed
        .elements()
        .iter()
        .map(|element| {
            let (_, high) = probe.fetch_watermarks(
                element.topic(),
                element.partition(),
                Duration::from_secs(10),
            )?;
            Ok(GroupPosition {
                topic: element.topic().to_owned(),
                partition: element.partition(),
                committed: match element.offset() {
                    Offset::Offset(offset) => offset,
                    _ => 0,
                },
                high,
            })
        })
        .collect()
}

/// Asserts that `group` has committed the end (high watermark) of every partition of `topics`.
pub fn assert_group_at_end(group: &str, topics: &[&str]) {
    for position in group_positions(group, topics).expect("committed offsets and watermarks") {
        assert_eq!(
            position.committed, position.high,
            "{}[{}]",
            position.topic, position.partition
        );
    }
}

/// Whether `group` has committed the high watermark of every partition of `topics`.
pub fn group_at_end(group: &str, topics: &[&str]) -> bool {
    group_positions(group, topics)
        .is_ok_and(|positions| positions.iter().all(|p| p.committed == p.high))
}

/// Two distinct free ports (both listeners are held until both are known).
pub fn free_ports() -> (u16, u16) {
    let bind = || TcpListener::bind("127.0.0.1:0").expect("a free port");
    let (a, b) = (bind(), bind());
    let port = |l: &TcpListener| l.local_addr().expect("bound address").port();
    (port(&a), port(&b))
}

/// `GET /metrics` over plain HTTP/1.1; `None` while nothing listens yet.
pub fn scrape(port: u16) -> Option<String> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(
        stream,
        "GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    response.starts_with("HTTP/1.1 200").then_some(response)
}

/// The value of the sample `series` (name with labels, as exposed) in a scrape.
pub fn sample(scrape: &str, series: &str) -> Option<f64> {
    scrape.lines().find_map(|line| {
        let (name, value) = line.rsplit_once(' ')?;
        (name == series).then(|| value.parse().ok()).flatten()
    })
}

/// Sends SIGTERM to `child` and waits for it to exit.
pub fn terminate(child: Child) -> Output {
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(status.success());
    child.wait_with_output().expect("child exits")
}

/// Starts `stream-emulator` on a free loopback port with the shared recordings (and `args`);
/// returns the child and its port (read from its first line, `listening on http://ADDR`).
pub fn spawn_emulator(args: &[&str]) -> Emulator {
    use std::io::BufRead as _;
    let mut child = Command::new(binary("stream-emulator"))
        .args(["--listen", "127.0.0.1:0", "--data"])
        .arg(shared_data())
        .args(args)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("emulator starts");
    let stdout = child.stdout.take().expect("stdout");
    let mut line = String::new();
    std::io::BufReader::new(stdout)
        .read_line(&mut line)
        .expect("emulator prints its address");
    let port = line
        .trim()
        .rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("unexpected first line from the emulator: {line:?}"));
    Emulator { child, port }
}

/// A running `stream-emulator`; killed when dropped. Test files add their own requests.
pub struct Emulator {
    pub child: Child,
    pub port: u16,
}

impl Emulator {
    /// Its base URL.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

impl Drop for Emulator {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A plain HTTP/1.1 request to 127.0.0.1:`port`; returns (status, body, de-chunked).
pub fn http(
    port: u16,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> (u16, String) {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).expect("server reachable");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let mut request = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    request.push_str(body);
    stream.write_all(request.as_bytes()).expect("request sent");
    let mut response = Vec::new();
    let _ = stream.read_to_end(&mut response);
    let response = String::from_utf8_lossy(&response).into_owned();
    let status = response
        .get(9..12)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    (status, dechunk(&body))
}

/// Undoes `Transfer-Encoding: chunked`; a body that is not chunked comes back as it is.
fn dechunk(body: &str) -> String {
    let mut out = String::new();
    let mut rest = body;
    loop {
        let Some((size, after)) = rest.split_once("\r\n") else {
            return body.to_owned();
        };
        let Ok(size) = usize::from_str_radix(size.trim(), 16) else {
            return body.to_owned();
        };
        if size == 0 {
            return out;
        }
        if after.len() < size {
            return body.to_owned();
        }
        out.push_str(&after[..size]);
        rest = after[size..].trim_start_matches("\r\n");
    }
}

/// The post ids in the SQLite store at `db`.
pub fn stored_ids(db: &Path) -> BTreeSet<String> {
    let conn = rusqlite::Connection::open(db).expect("store");
    let mut statement = conn.prepare("SELECT id FROM posts").expect("query");
    let ids = statement
        .query_map([], |row| row.get::<_, String>(0))
        .expect("rows");
    ids.collect::<Result<_, _>>().expect("ids")
}
