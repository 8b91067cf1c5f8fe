//! The web view (`tweet-consumer --group web`) against the real broker: posts replayed by
//! `tweet-producer --replay` reach an open SSE stream (`/events`) with their text exactly as
//! recorded, `<script>` included; a delete notice reaches it as a delete event; the schedule
//! actions write the scheduled topic through the scheduler's code and need the CSRF token;
//! an access token, when set, is required on every request; and a non-loopback address
//! without one is refused at start. With `chromium` installed, the page itself is rendered
//! headless and its DOM checked (the `<script>` post shows as text), and a screenshot saved
//! under target/e2e-artifacts/. In Chromium too: cards gain the detected language and sentiment
//! once the analysis group stored them, and a sentiment column takes the matching ones; a post
//! scheduled from the page is posted once by the poster (against the emulator) and then shows
//! as posted; the stream-health panel shows its endpoints up or down. A retry of a failed post
//! schedules its text again; an access-token file must be private.

mod support;

use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use rdkafka::config::ClientConfig;
use serde_json::Value;
use support::{
    binary, bootstrap, create_schedule_topics, create_topics, delete_schedule_topics,
    delete_topics, free_ports, http, producer_command, run, shared_data, terminate, topic_flags,
    unique,
};
use tweet_pipeline_common::config::{ScheduleTopics, TopicNames};

/// How long a test waits for something that should take well under a second before it fails.
const PATIENCE: Duration = Duration::from_secs(30);

/// A running web view and its port.
struct Web {
    child: Option<Child>,
    port: u16,
}

impl Web {
    /// Starts `tweet-consumer --group web` on a free loopback port with `extra` flags and
    /// waits until it answers `/api/health` (its feed is assigned to the topics' ends by then).
    fn start(names: &TopicNames, schedule: &ScheduleTopics, db: &Path, extra: &[&str]) -> Web {
        let token = extra
            .iter()
            .position(|f| *f == "--auth-token")
            .map(|i| extra[i + 1].to_owned());
        Web::start_with_token(names, schedule, db, extra, token.as_deref().unwrap_or(""))
    }

    /// [`Web::start`] where the access token is `token` ("" for none), however it is given.
    fn start_with_token(
        names: &TopicNames,
        schedule: &ScheduleTopics,
        db: &Path,
        extra: &[&str],
        token: &str,
    ) -> Web {
        let (port, _) = free_ports();
        let child = Command::new(binary("tweet-consumer"))
            .args(["--group", "web"])
            .arg(format!("--http-addr=127.0.0.1:{port}"))
            .args(topic_flags(names))
            .arg(format!("--scheduled-topic={}", schedule.scheduled))
            .arg(format!("--scheduled-results-topic={}", schedule.results))
            // No /metrics unless the test asks for one (a flag given once only).
            .args(
                (!extra.iter().any(|f| f.starts_with("--metrics-addr")))
                    .then_some("--metrics-addr=off"),
            )
            .arg("--db")
            .arg(db)
            .args(extra)
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("tweet-consumer starts");
        let web = Web {
            child: Some(child),
            port,
        };
        // `?token=` (the page's link) where a token is set: `get` sees no answer, not a panic,
        // while nothing listens yet.
        let query = if token.is_empty() {
            String::new()
        } else {
            format!("?token={token}")
        };
        let deadline = Instant::now() + PATIENCE;
        while support::get(port, &format!("/api/health{query}")).is_none() {
            assert!(
                Instant::now() < deadline,
                "the web view did not answer on port {port}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        web
    }
}

impl Drop for Web {
    fn drop(&mut self) {
        if let Some(child) = self.child.take() {
            let output = terminate(child);
            if !std::thread::panicking() {
                assert!(
                    output.status.success(),
                    "the web view exited with {}",
                    output.status
                );
            }
        }
    }
}

/// One SSE event: (event name, JSON data).
type SseEvent = (String, Value);

/// Opens `/events` on `port` (with `query`) and forwards each event to the returned channel
/// from a reader thread, once the `ready` event came.
fn open_events(port: u16, query: &str) -> mpsc::Receiver<SseEvent> {
    let (sender, receiver) = mpsc::channel();
    let (ready_tx, ready_rx) = mpsc::channel();
    let url = format!("http://127.0.0.1:{port}/events{query}");
    std::thread::spawn(move || {
        let response = reqwest::blocking::Client::builder()
            .timeout(None)
            .build()
            .expect("an HTTP client")
            .get(url)
            .send()
            .expect("the SSE stream opens");
        assert_eq!(response.status(), 200);
        let mut name = String::new();
        let mut data = String::new();
        for line in BufReader::new(response).lines() {
            let Ok(line) = line else { return };
            if let Some(value) = line.strip_prefix("event:") {
                name = value.trim().to_owned();
            } else if let Some(value) = line.strip_prefix("data:") {
                data.push_str(value.trim_start());
            } else if line.is_empty() && !data.is_empty() {
                let value: Value = serde_json::from_str(&data).expect("SSE data is JSON");
                if name == "ready" {
                    let _ = ready_tx.send(());
                } else if sender.send((name.clone(), value)).is_err() {
                    return;
                }
                name.clear();
                data.clear();
            }
        }
    });
    ready_rx
        .recv_timeout(PATIENCE)
        .expect("the SSE stream says ready");
    receiver
}

/// Events until `done` says enough, failing after [`PATIENCE`].
fn collect(events: &mpsc::Receiver<SseEvent>, done: impl Fn(&[SseEvent]) -> bool) -> Vec<SseEvent> {
    let deadline = Instant::now() + PATIENCE;
    let mut seen = Vec::new();
    while !done(&seen) {
        let left = deadline.saturating_duration_since(Instant::now());
        match events.recv_timeout(left) {
            Ok(event) => seen.push(event),
            Err(_) => panic!("SSE events so far: {seen:#?}"),
        }
    }
    seen
}

/// (id, line) of the first `n` plain posts of a real sample-stream recording, the last of
/// them the first post with a hashtag.
fn recorded_posts(n: usize) -> Vec<(String, String)> {
    let has_hashtag = |line: &str| {
        serde_json::from_str::<Value>(line).is_ok_and(|v| {
            v["entities"]["hashtags"]
                .as_array()
                .is_some_and(|h| !h.is_empty())
        })
    };
    let plain = plain_posts();
    let tagged = plain
        .iter()
        .find(|(_, line)| has_hashtag(line))
        .expect("a recorded post with a hashtag")
        .clone();
    let mut posts: Vec<(String, String)> = plain
        .into_iter()
        .filter(|(id, _)| *id != tagged.0)
        .take(n - 1)
        .collect();
    posts.push(tagged);
    posts
}

/// (id, line) of the plain posts (no retweets) of a real sample-stream recording.
fn plain_posts() -> Vec<(String, String)> {
    let path = shared_data().join("twitter_v1/stream_sample/sample_2013-05-05_MyCSHome.jsonl");
    let text = std::fs::read_to_string(&path).expect("recording");
    text.lines()
        .filter_map(|line| {
            let value: Value = serde_json::from_str(line).ok()?;
            let id = value.get("id_str")?.as_str()?.to_owned();
            (value.get("text").is_some() && value.get("retweeted_status").is_none())
                .then(|| (id, line.to_owned()))
        })
        .collect()
}

/// A recorded post with only its text (and id, so it is a post of its own) changed.
fn with_text(line: &str, id: &str, text: &str) -> String {
    let mut value: Value = serde_json::from_str(line).expect("JSON");
    value["text"] = Value::from(text);
    value["id_str"] = Value::from(id);
    value["id"] = Value::from(id.parse::<u64>().expect("a numeric id"));
    value.as_object_mut().map(|o| o.remove("extended_tweet"));
    value["truncated"] = Value::from(false);
    value.to_string()
}

fn delete_notice(id: &str) -> String {
    format!(
        r#"{{"delete":{{"status":{{"id":{id},"id_str":"{id}","user_id":1,"user_id_str":"1"}}}}}}"#
    )
}

/// A real v2 filtered-stream message with a rule tag set on its matching rule.
fn tagged_v2_post(tag: &str) -> (String, String) {
    let path = shared_data().join("x_api_v2/twarc-csv_test-data/streaming_output_with_error.jsonl");
    let text = std::fs::read_to_string(&path).expect("recording");
    let mut value: Value =
        serde_json::from_str(text.lines().next().expect("a line")).expect("JSON");
    value["matching_rules"][0]["tag"] = Value::from(tag);
    let id = value["data"]["id"].as_str().expect("data.id").to_owned();
    (id, value.to_string())
}

fn replay(lines: &[String], names: &TopicNames, dir: &Path) {
    let path = dir.join(format!("{}.jsonl", unique("web")));
    std::fs::write(&path, lines.join("\n") + "\n").expect("input");
    run(producer_command()
        .arg("--replay")
        .arg(&path)
        .args(topic_flags(names))
        .arg("--metrics-addr=off"));
}

const SCRIPT_TEXT: &str = "<script>alert('x')</script> & <b>bold</b> #webview";

#[tokio::test(flavor = "multi_thread")]
async fn replayed_posts_and_deletes_reach_the_browsers_stream() {
    let prefix = unique("e2e-web");
    let names = create_topics(&format!("{prefix}-")).await;
    let schedule = create_schedule_topics(&format!("{prefix}-")).await;
    let dir = tempfile::tempdir().expect("temp dir");
    let web = Web::start(&names, &schedule, &dir.path().join("none.db"), &[]);
    let all = open_events(web.port, "");
    let filtered = open_events(web.port, "?contains=%3Cscript%3E");

    let posts = recorded_posts(3);
    let script_id = "999000000000000001";
    let (tagged_id, tagged) = tagged_v2_post("web-e2e");
    let mut lines: Vec<String> = posts.iter().map(|(_, l)| l.clone()).collect();
    lines.push(with_text(&posts[0].1, script_id, SCRIPT_TEXT));
    lines.push(tagged);
    lines.push(delete_notice(&posts[1].0));
    replay(&lines, &names, dir.path());

    let want_posts = posts.len() + 2;
    let events = collect(&all, |seen| {
        seen.iter().filter(|e| e.0 == "post").count() >= want_posts
            && seen.iter().any(|e| e.0 == "delete")
    });
    let cards: Vec<&Value> = events
        .iter()
        .filter(|e| e.0 == "post")
        .map(|e| &e.1)
        .collect();
    let ids: std::collections::BTreeSet<&str> =
        cards.iter().map(|c| c["id"].as_str().unwrap()).collect();
    for (id, _) in &posts {
        assert!(
            ids.contains(id.as_str()),
            "post {id} on the stream: {ids:?}"
        );
    }
    let script = cards
        .iter()
        .find(|c| c["id"] == script_id)
        .expect("the <script> post on the stream");
    assert_eq!(
        script["text"], SCRIPT_TEXT,
        "text as recorded, not escaped or stripped"
    );
    assert_eq!(script["source"], "replay");
    assert_eq!(script["type"], "post");
    let tagged = cards
        .iter()
        .find(|c| c["id"] == tagged_id.as_str())
        .expect("the v2 post");
    assert_eq!(
        tagged["rules"],
        serde_json::json!(["web-e2e"]),
        "rule tags from matching_rules"
    );
    let deletes: Vec<&Value> = events
        .iter()
        .filter(|e| e.0 == "delete")
        .map(|e| &e.1)
        .collect();
    assert_eq!(
        deletes,
        vec![&serde_json::json!({"type": "delete", "id": posts[1].0})]
    );

    // The filtered stream gets only the <script> post (and deletes, which every column needs).
    let filtered_events = collect(&filtered, |seen| {
        seen.iter().any(|e| e.0 == "post") && seen.iter().any(|e| e.0 == "delete")
    });
    let filtered_ids: Vec<&str> = filtered_events
        .iter()
        .filter(|e| e.0 == "post")
        .map(|e| e.1["id"].as_str().unwrap())
        .collect();
    assert_eq!(filtered_ids, vec![script_id]);

    // The tail joined no group and committed nothing: the broker knows no group of this
    // process (its throwaway id is tweet-consumer-web-<pid>-<nanos>).
    let pid = web.child.as_ref().expect("running").id();
    drop(web);
    let groups = broker_groups();
    let own = format!("tweet-consumer-web-{pid}-");
    assert!(
        !groups.iter().any(|g| g.starts_with(&own)),
        "the web feed left a consumer group on the broker: {groups:?}"
    );
    delete_topics(&names).await;
}

/// The consumer groups the broker knows (those with members or committed offsets).
fn broker_groups() -> Vec<String> {
    use rdkafka::consumer::{BaseConsumer, Consumer as _};
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap())
        .create()
        .expect("a consumer");
    consumer
        .fetch_group_list(None, Duration::from_secs(10))
        .expect("the group list")
        .groups()
        .iter()
        .map(|g| g.name().to_owned())
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn schedule_actions_need_the_csrf_token_and_write_the_scheduled_topic() {
    let prefix = unique("e2e-web-sched");
    let names = create_topics(&format!("{prefix}-")).await;
    let schedule = create_schedule_topics(&format!("{prefix}-")).await;
    let dir = tempfile::tempdir().expect("temp dir");
    let web = Web::start(&names, &schedule, &dir.path().join("none.db"), &[]);
    let (status, page) = http(web.port, "GET", "/", &[], "");
    assert_eq!(status, 200);
    let csrf = page
        .split(r#"<meta name="csrf-token" content=""#)
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("the page embeds its CSRF token")
        .to_owned();
    let at = (chrono::Utc::now() + chrono::Duration::hours(2)).to_rfc3339();
    let body = serde_json::json!({"text": "from the web view", "at": at, "to": ["x", "mastodon"]})
        .to_string();
    let json = [("content-type", "application/json")];

    let (status, _) = http(web.port, "POST", "/api/schedule", &json, &body);
    assert_eq!(status, 403, "an action without the CSRF token is refused");
    let wrong = [
        json[0],
        ("x-csrf-token", "0123456789abcdef0123456789abcdef"),
    ];
    assert_eq!(
        http(web.port, "POST", "/api/schedule", &wrong, &body).0,
        403
    );

    let with = [json[0], ("x-csrf-token", csrf.as_str())];
    let (status, answer) = http(web.port, "POST", "/api/schedule", &with, &body);
    assert_eq!(status, 200, "{answer}");
    let id = serde_json::from_str::<Value>(&answer).unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let due: chrono::DateTime<chrono::Utc> = at.parse().unwrap();
    assert_eq!(
        id,
        tweet_pipeline_scheduler::model::post_id("from the web view", due),
        "the scheduler's stable id"
    );

    let states: Vec<[String; 2]> = schedule_rows(web.port, ["destination", "state"]);
    assert_eq!(
        states,
        vec![
            ["x".to_owned(), "pending".to_owned()],
            ["mastodon".to_owned(), "pending".to_owned()]
        ]
    );

    let cancel = serde_json::json!({ "id": id }).to_string();
    assert_eq!(
        http(web.port, "POST", "/api/schedule/cancel", &json, &cancel).0,
        403
    );
    let (status, answer) = http(web.port, "POST", "/api/schedule/cancel", &with, &cancel);
    assert_eq!(status, 200, "{answer}");

    // What the scheduled topic holds: the post as the scheduler writes it, then its tombstone.
    let kafka = tweet_pipeline_common::config::KafkaArgs {
        bootstrap: bootstrap(),
        config_file: None,
        properties: Vec::new(),
    };
    let records = tweet_pipeline_scheduler::queue::read_topic(&kafka, &schedule.scheduled)
        .expect("read back");
    assert_eq!(records.len(), 2, "one post and one tombstone");
    assert!(records.iter().all(|(_, key, _)| *key == id));
    let post: tweet_pipeline_scheduler::model::ScheduledPost =
        serde_json::from_slice(records[0].2.as_deref().expect("the post's value")).unwrap();
    assert_eq!(post.source, "web");
    assert_eq!(post.text, "from the web view");
    assert!(records[1].2.is_none(), "the cancel is a tombstone");
    drop(web);
    delete_topics(&names).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_access_token_guards_every_request_and_is_required_off_loopback() {
    // Off loopback without a token: refused at start, before anything is read or bound.
    let output = Command::new(binary("tweet-consumer"))
        .args([
            "--group",
            "web",
            "--http-addr=0.0.0.0:0",
            "--metrics-addr=off",
        ])
        .env_remove("TWEET_PIPELINE_WEB_TOKEN")
        .output()
        .expect("tweet-consumer runs");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("--auth-token"), "{stderr}");

    let prefix = unique("e2e-web-auth");
    let names = create_topics(&format!("{prefix}-")).await;
    let schedule = create_schedule_topics(&format!("{prefix}-")).await;
    let dir = tempfile::tempdir().expect("temp dir");
    let token = "e2e-token-0123456789";
    let web = Web::start(
        &names,
        &schedule,
        &dir.path().join("none.db"),
        &["--auth-token", token],
    );
    for path in ["/", "/events", "/api/analysis", "/api/schedule", "/app.js"] {
        assert_eq!(
            http(web.port, "GET", path, &[], "").0,
            401,
            "GET {path} without the token"
        );
    }
    let json = ("content-type", "application/json");
    let (status, _) = http(
        web.port,
        "POST",
        "/api/schedule/cancel",
        &[json],
        r#"{"id":"sp-0"}"#,
    );
    assert_eq!(status, 401, "an action without the access token");
    let (status, page) = http(web.port, "GET", "/", &[("x-web-token", token)], "");
    assert_eq!(status, 200);
    assert!(
        !page.contains(token),
        "the access token never reaches the page"
    );
    let (status, _) = http(
        web.port,
        "GET",
        "/api/analysis",
        &[("cookie", &format!("tweet_pipeline_web_token={token}"))],
        "",
    );
    assert_eq!(status, 200, "the cookie the ?token= link sets is accepted");
    let (status, _) = http(
        web.port,
        "GET",
        "/api/health",
        &[("x-web-token", "e2e-token-0123456788")],
        "",
    );
    assert_eq!(status, 401, "a wrong token");
    drop(web);
    delete_topics(&names).await;
}

/// A WebDriver session of a headless Chromium driven by `chromedriver` (W3C WebDriver over
/// HTTP), ended when dropped.
struct Browser {
    driver: Child,
    port: u16,
    session: String,
}

/// Chromium's WebDriver, or a panic saying how to install it.
fn chromedriver() -> PathBuf {
    let found = |name: &str| {
        std::env::var_os("PATH")
            .into_iter()
            .flat_map(|paths| std::env::split_paths(&paths).collect::<Vec<_>>())
            .map(|dir| dir.join(name))
            .find(|path| path.is_file())
    };
    match (found("chromium"), found("chromedriver")) {
        (Some(_), Some(driver)) => driver,
        _ => panic!(
            "chromium and chromedriver are needed for the browser test: run scripts/ensure-deps.sh (apt-get install chromium chromium-driver)"
        ),
    }
}

impl Browser {
    fn start() -> Browser {
        let (port, _) = free_ports();
        let driver = Command::new(chromedriver())
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver starts");
        let deadline = Instant::now() + PATIENCE;
        while support::get(port, "/status").is_none() {
            assert!(Instant::now() < deadline, "chromedriver did not answer");
            std::thread::sleep(Duration::from_millis(100));
        }
        let capabilities = serde_json::json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {"args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1400,1100"]}
        }}});
        let mut browser = Browser {
            driver,
            port,
            session: String::new(),
        };
        let value = browser.call("POST", "/session", capabilities);
        browser.session = value["sessionId"]
            .as_str()
            .expect("a session id")
            .to_owned();
        browser
    }

    /// A WebDriver command; returns its `value`.
    fn call(&self, method: &str, path: &str, body: Value) -> Value {
        let path = if self.session.is_empty() {
            path.to_owned()
        } else {
            format!("/session/{}{path}", self.session)
        };
        let json = [("content-type", "application/json")];
        // A GET has no body (chromedriver refuses `null` as one).
        let body = if body.is_null() {
            String::new()
        } else {
            body.to_string()
        };
        let (status, answer) = http(self.port, method, &path, &json, &body);
        assert_eq!(status, 200, "WebDriver {method} {path}: {answer}");
        serde_json::from_str::<Value>(&answer).expect("WebDriver JSON")["value"].take()
    }

    fn script(&self, script: &str) -> Value {
        self.call(
            "POST",
            "/execute/sync",
            serde_json::json!({"script": script, "args": []}),
        )
    }

    /// Opens the web view on `port` and waits until its event stream is live.
    fn open_live(&self, port: u16) {
        self.call(
            "POST",
            "/url",
            serde_json::json!({"url": format!("http://127.0.0.1:{port}/")}),
        );
        self.wait_for(
            "its live status",
            "return document.getElementById('status').textContent === 'live'",
        );
    }

    /// Polls `script` until it returns true, failing after [`PATIENCE`].
    fn wait_for(&self, what: &str, script: &str) {
        let deadline = Instant::now() + PATIENCE;
        while self.script(script) != Value::Bool(true) {
            assert!(Instant::now() < deadline, "the page never showed {what}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn screenshot(&self, name: &str) -> PathBuf {
        let png = base64_decode(
            self.call("GET", "/screenshot", Value::Null)
                .as_str()
                .expect("base64"),
        );
        let dir = support::repo_root().join("target/e2e-artifacts");
        std::fs::create_dir_all(&dir).expect("artifacts folder");
        let path = dir.join(name);
        std::fs::write(&path, png).expect("screenshot written");
        path
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        if !self.session.is_empty() {
            let path = format!("/session/{}", self.session);
            let _ = std::panic::catch_unwind(|| http(self.port, "DELETE", &path, &[], ""));
        }
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

/// Standard base64 (RFC 4648 §4), as WebDriver encodes screenshots.
fn base64_decode(text: &str) -> Vec<u8> {
    let value = |c: u8| match c {
        b'A'..=b'Z' => c - b'A',
        b'a'..=b'z' => c - b'a' + 26,
        b'0'..=b'9' => c - b'0' + 52,
        b'+' => 62,
        b'/' => 63,
        _ => panic!("not base64: {c}"),
    };
    let digits: Vec<u8> = text
        .bytes()
        .filter(|c| *c != b'=' && !c.is_ascii_whitespace())
        .map(value)
        .collect();
    let mut out = Vec::with_capacity(digits.len() * 3 / 4);
    for chunk in digits.chunks(4) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, d)| n | (u32::from(*d) << (18 - 6 * i)));
        out.extend_from_slice(&n.to_be_bytes()[1..chunk.len()]);
    }
    out
}

/// (detected language, sentiment label) per post id in the SQLite store at `db`.
fn annotations_in(
    db: &Path,
) -> std::collections::HashMap<String, (Option<String>, Option<String>)> {
    let conn = rusqlite::Connection::open(db).expect("store");
    let mut statement = conn
        .prepare("SELECT id, detected_lang, sentiment_label FROM posts")
        .expect("query");
    let rows = statement
        .query_map([], |row| Ok((row.get(0)?, (row.get(1)?, row.get(2)?))))
        .expect("rows");
    rows.collect::<Result<_, _>>().expect("annotations")
}

/// The sentiment label most of `ids` carry in `stored`, and those ids.
fn most_common_sentiment(
    stored: &std::collections::HashMap<String, (Option<String>, Option<String>)>,
    ids: &[String],
) -> (String, Vec<String>) {
    let mut by_label: std::collections::BTreeMap<String, Vec<String>> = Default::default();
    for id in ids {
        if let Some((_, Some(label))) = stored.get(id) {
            by_label.entry(label.clone()).or_default().push(id.clone());
        }
    }
    by_label
        .into_iter()
        .max_by_key(|(_, ids)| ids.len())
        .expect("at least one replayed post has a sentiment label")
}

#[tokio::test(flavor = "multi_thread")]
async fn the_page_shows_live_cards_escaped_and_removes_a_deleted_one_in_chromium() {
    chromedriver();
    let prefix = unique("e2e-web-browser");
    let names = create_topics(&format!("{prefix}-")).await;
    let schedule = create_schedule_topics(&format!("{prefix}-")).await;
    let dir = tempfile::tempdir().expect("temp dir");
    let db = dir.path().join("store.db");
    let web = Web::start(&names, &schedule, &db, &[]);
    let browser = Browser::start();
    browser.open_live(web.port);

    let posts = recorded_posts(3);
    let script_id = "999000000000000002";
    let (tagged_id, tagged) = tagged_v2_post("web-e2e");
    let mut lines: Vec<String> = posts.iter().map(|(_, l)| l.clone()).collect();
    lines.push(with_text(&posts[0].1, script_id, SCRIPT_TEXT));
    lines.push(tagged);
    replay(&lines, &names, dir.path());
    let all_ids: Vec<String> = posts
        .iter()
        .map(|(id, _)| id.clone())
        .chain([script_id.to_owned(), tagged_id.clone()])
        .collect();
    let in_all = |ids: &[String]| {
        format!(
            "const ids = {}; const column = document.querySelector('section.column[aria-label=\"column All\"]'); \
             return ids.every((id) => Array.from(column.querySelectorAll('.card')).some((c) => c.dataset.id === id));",
            serde_json::to_string(ids).unwrap()
        )
    };
    browser.wait_for("every replayed post in the All column", &in_all(&all_ids));

    // The <script> post renders as text: its characters in the card, no element made of them.
    let script_card = browser.script(&format!(
        "const card = Array.from(document.querySelectorAll('.card')).find((c) => c.dataset.id === '{script_id}'); \
         return {{text: card.querySelector('.text').textContent, elements: card.querySelectorAll('.text script, .text b').length, \
                 scripts: document.scripts.length, html: document.documentElement.outerHTML}};"
    ));
    assert_eq!(script_card["text"], SCRIPT_TEXT);
    assert_eq!(
        script_card["elements"], 0,
        "no element from the post's text"
    );
    assert_eq!(script_card["scripts"], 1, "only the page's own script");
    let html = script_card["html"].as_str().unwrap();
    assert!(
        html.contains("&lt;script&gt;alert('x')&lt;/script&gt;"),
        "escaped in the DOM"
    );
    // A recorded hashtag is a link that opens without the page's context; the derived post's
    // `#webview` is text only (its entities are the recording's, which do not mark it).
    let hashtag_id = &posts[2].0;
    let hashtag = browser.script(&format!(
        "const card = Array.from(document.querySelectorAll('.card')).find((c) => c.dataset.id === '{hashtag_id}'); \
         const a = Array.from(card.querySelectorAll('.text a')).find((x) => x.textContent.startsWith('#')); return a ? [a.rel, a.href.startsWith('https://x.com/hashtag/')] : null;"
    ));
    assert_eq!(hashtag, serde_json::json!(["noopener noreferrer", true]));
    let unsafe_links = browser.script(
        "return Array.from(document.querySelectorAll('.card a')).filter((a) => a.rel !== 'noopener noreferrer' || !/^https?:/.test(a.href)).length;",
    );
    assert_eq!(
        unsafe_links, 0,
        "every link in a card is http(s) with rel=noopener noreferrer"
    );
    // The rule tag has its own column with its post.
    let rule_column = browser.script(
        "const c = document.querySelector('section.column[aria-label=\"column web-e2e\"]'); \
         return c ? Array.from(c.querySelectorAll('.card')).map((x) => x.dataset.id) : null;",
    );
    assert_eq!(rule_column, serde_json::json!([tagged_id]));
    let latency = browser.script(
        "return Array.from(document.querySelectorAll('section.column[aria-label=\"column All\"] .card')).map((c) => Number(c.dataset.latencyMs));",
    );
    eprintln!("producer receipt to card, ms: {latency}");
    let kafka_latency = browser.script(
        "return Array.from(document.querySelectorAll('section.column[aria-label=\"column All\"] .card')).map((c) => Number(c.dataset.kafkaLatencyMs));",
    );
    eprintln!("record's Kafka timestamp to card, ms: {kafka_latency}");

    // Once the analysis group has stored the posts, their cards show the detected language
    // and (English posts) the sentiment, looked up from the store by the page.
    run(support::analysis_to_end(&db)
        .args(topic_flags(&names))
        .arg("--metrics-addr=off"));
    let stored = support::stored_ids(&db);
    assert!(
        stored.contains(script_id),
        "the analysis stored the posts: {stored:?}"
    );
    browser.wait_for(
        "the <script> post's detected language and sentiment",
        &format!(
            "const card = Array.from(document.querySelectorAll('.card')).find((c) => c.dataset.id === '{script_id}'); \
             return !!card && !!card.dataset.detectedLang && !!card.querySelector('.badge.detected');"
        ),
    );
    let annotated = browser.script(
        "return Array.from(document.querySelectorAll('section.column[aria-label=\"column All\"] .card')).map((c) => [c.dataset.id, c.dataset.detectedLang || null, c.dataset.sentiment || null]);"
    );
    eprintln!("cards' (id, detected language, sentiment): {annotated}");
    let expected = annotations_in(&db);
    for row in annotated.as_array().expect("cards") {
        let id = row[0].as_str().expect("id");
        let (lang, sentiment) = expected.get(id).cloned().unwrap_or_default();
        if lang.is_some() {
            browser.wait_for(
                &format!("card {id}'s analysis"),
                &format!("return Array.from(document.querySelectorAll('.card')).some((c) => c.dataset.id === '{id}' && c.dataset.detectedLang === {});", serde_json::to_string(&lang).unwrap()),
            );
        }
        if let Some(sentiment) = sentiment {
            browser.wait_for(
                &format!("card {id}'s sentiment {sentiment}"),
                &format!("return Array.from(document.querySelectorAll('.card')).some((c) => c.dataset.id === '{id}' && c.dataset.sentiment === '{sentiment}');"),
            );
        }
    }
    // A column filtered by sentiment takes the cards whose stored label matches, and only them.
    let (wanted_sentiment, wanted_ids) = most_common_sentiment(&expected, &all_ids);
    browser.script(&format!(
        "const f = document.getElementById('add-column'); f.elements.name.value = 'mood'; f.elements.sentiment.value = '{wanted_sentiment}'; f.requestSubmit(); return true;"
    ));
    let mood = |ids: &[String]| {
        format!(
            "const ids = {}; const c = document.querySelector('section.column[aria-label=\"column mood\"]'); \
             const shown = Array.from(c.querySelectorAll('.card')).map((x) => x.dataset.id); \
             return shown.length === ids.length && ids.every((id) => shown.includes(id));",
            serde_json::to_string(ids).unwrap()
        )
    };
    // Cards that arrived before the column was added are not back-filled: replay the posts
    // again (their analysis is stored already, so the page finds it at its next lookup).
    replay(&lines, &names, dir.path());
    browser.wait_for(
        &format!("the {wanted_sentiment} column with {wanted_ids:?}"),
        &mood(&wanted_ids),
    );
    let live = browser.screenshot("web-live.png");

    // A delete notice removes its card from every column.
    replay(&[delete_notice(&posts[1].0)], &names, dir.path());
    browser.wait_for(
        "the deleted post gone",
        &format!("return !Array.from(document.querySelectorAll('.card')).some((c) => c.dataset.id === '{}')", posts[1].0),
    );
    let rest: Vec<String> = all_ids
        .iter()
        .filter(|id| **id != posts[1].0)
        .cloned()
        .collect();
    assert_eq!(
        browser.script(&in_all(&rest)),
        Value::Bool(true),
        "the other cards stay"
    );
    let after = browser.screenshot("web-after-delete.png");
    eprintln!("screenshots: {} {}", live.display(), after.display());
    drop(browser);
    drop(web);
    delete_topics(&names).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_post_scheduled_from_the_page_is_posted_once_and_shows_as_posted_in_chromium() {
    chromedriver();
    let prefix = unique("e2e-web-poster");
    let names = create_topics(&format!("{prefix}-")).await;
    let schedule = create_schedule_topics(&format!("{prefix}-")).await;
    let dir = tempfile::tempdir().expect("temp dir");
    let emulator = support::spawn_emulator(&[
        "--v1-file",
        support::repo_root()
            .join("data/sample/stream.jsonl")
            .to_str()
            .expect("UTF-8 path"),
    ]);
    let poster = support::spawn_poster(&emulator, &schedule, &unique("web-poster"), dir.path());
    poster.wait_loaded(support::PARTITIONS as usize);
    // The web view's stream-health panel polls its own /metrics (up) and a port where nothing
    // listens (down).
    let (metrics_port, dead_port) = free_ports();
    let web = Web::start(
        &names,
        &schedule,
        &dir.path().join("none.db"),
        &[
            &format!("--metrics-addr=127.0.0.1:{metrics_port}"),
            &format!("--metrics-url=http://127.0.0.1:{metrics_port}/metrics"),
            &format!("--metrics-url=http://127.0.0.1:{dead_port}/metrics"),
        ],
    );
    let browser = Browser::start();
    browser.open_live(web.port);

    // Fill the form as a person would: the text, a local time 3 s from now, X only.
    let text = format!("posted from the web view {prefix}");
    browser.script(&format!(
        "const f = document.getElementById('schedule-form'); f.elements.text.value = {}; \
         const d = new Date(Date.now() + 3000); const p = (n) => String(n).padStart(2, '0'); \
         f.elements.at.value = d.getFullYear() + '-' + p(d.getMonth() + 1) + '-' + p(d.getDate()) + 'T' + p(d.getHours()) + ':' + p(d.getMinutes()) + ':' + p(d.getSeconds()); \
         f.querySelectorAll('input[name=\"to\"]').forEach((i) => {{ i.checked = i.value === 'x'; }}); \
         f.querySelector('button[type=\"submit\"]').click(); return true;",
        serde_json::to_string(&text).unwrap()
    ));
    browser.wait_for(
        "the scheduled message",
        "return document.getElementById('schedule-message').textContent.startsWith('scheduled sp-')",
    );
    let message = browser.script("return document.getElementById('schedule-message').textContent");
    let id = message
        .as_str()
        .and_then(|m| m.strip_prefix("scheduled "))
        .expect("the scheduled id")
        .to_owned();
    browser.wait_for(
        &format!("{id} as posted (poster log:\n{})", poster.log()),
        &format!(
            "return Array.from(document.querySelectorAll('#schedule tbody tr')).some((r) => r.dataset.id === '{id}' && r.dataset.destination === 'x' && r.dataset.state === 'posted')"
        ),
    );
    let posted = support::emulator_x_posts(&emulator);
    assert_eq!(
        posted.iter().filter(|t| **t == text).count(),
        1,
        "posted exactly once: {posted:?}"
    );
    // A posted row offers no action; the row's detail is X's id of the new post.
    let row = browser.script(&format!(
        "const r = Array.from(document.querySelectorAll('#schedule tbody tr')).find((r) => r.dataset.id === '{id}'); \
         return {{buttons: r.querySelectorAll('button').length, cells: Array.from(r.cells).map((c) => c.textContent)}};"
    ));
    assert_eq!(row["buttons"], 0, "{row}");
    assert_eq!(row["cells"][0], "posted");
    assert_eq!(row["cells"][5], text.as_str());

    // The stream-health panel, polled by the server.
    browser.wait_for(
        "the stream-health panel's two endpoints",
        "const rows = document.querySelectorAll('#stream-health tbody tr'); \
         return rows.length === 2 && rows[0].cells[1].textContent === 'up' && rows[1].cells[1].textContent.startsWith('down');",
    );
    let shot = browser.screenshot("web-schedule-posted.png");
    eprintln!("screenshot: {}", shot.display());
    drop(browser);
    drop(web);
    drop(poster);
    delete_schedule_topics(&schedule).await;
    delete_topics(&names).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_retry_of_a_failed_post_schedules_its_text_again_through_the_create_path() {
    let prefix = unique("e2e-web-retry");
    let names = create_topics(&format!("{prefix}-")).await;
    let schedule = create_schedule_topics(&format!("{prefix}-")).await;
    let dir = tempfile::tempdir().expect("temp dir");
    let web = Web::start(&names, &schedule, &dir.path().join("none.db"), &[]);
    let (_, page) = http(web.port, "GET", "/", &[], "");
    let csrf = page
        .split(r#"<meta name="csrf-token" content=""#)
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("the page embeds its CSRF token")
        .to_owned();
    let with = [
        ("content-type", "application/json"),
        ("x-csrf-token", csrf.as_str()),
    ];
    let at = (chrono::Utc::now() + chrono::Duration::hours(1)).to_rfc3339();
    let body = serde_json::json!({"text": "retry me", "at": at, "to": ["bluesky"]}).to_string();
    let (status, answer) = http(web.port, "POST", "/api/schedule", &with, &body);
    assert_eq!(status, 200, "{answer}");
    let id = serde_json::from_str::<Value>(&answer).unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let retry = serde_json::json!({"id": id, "destination": "bluesky"}).to_string();
    // Pending: nothing to retry.
    let (status, answer) = http(web.port, "POST", "/api/schedule/retry", &with, &retry);
    assert_eq!(status, 422, "{answer}");
    assert_eq!(
        http(web.port, "POST", "/api/schedule/retry", &with[..1], &retry).0,
        403,
        "a retry needs the CSRF token"
    );

    // The poster's failed outcome, as it writes one.
    let due: chrono::DateTime<chrono::Utc> = at.parse().unwrap();
    let failed = tweet_pipeline_scheduler::model::PostResult {
        id: id.clone(),
        destination: tweet_pipeline_scheduler::model::Destination::Bluesky,
        outcome: tweet_pipeline_scheduler::model::Outcome::Failed,
        at: chrono::Utc::now(),
        due_at: due,
        attempt: 3,
        post_id: None,
        lateness_seconds: None,
        reason: Some("retries exhausted".into()),
        retry_at: None,
        reconciled: false,
        by: "e2e".into(),
    };
    let producer: rdkafka::producer::FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap())
        .create()
        .expect("a producer");
    producer
        .send(
            rdkafka::producer::FutureRecord::to(&schedule.results)
                .key(&format!("{id}/bluesky"))
                .payload(&serde_json::to_vec(&failed).unwrap()),
            Duration::from_secs(10),
        )
        .await
        .expect("the result written");
    let (status, answer) = http(web.port, "POST", "/api/schedule/retry", &with, &retry);
    assert_eq!(status, 200, "{answer}");
    let answer: Value = serde_json::from_str(&answer).unwrap();
    let new_id = answer["id"].as_str().unwrap().to_owned();
    assert_ne!(new_id, id, "a new post with its own stable id");
    let new_due: chrono::DateTime<chrono::Utc> =
        answer["due_at"].as_str().unwrap().parse().unwrap();
    assert_eq!(
        new_id,
        tweet_pipeline_scheduler::model::post_id("retry me", new_due)
    );
    let states = schedule_rows(web.port, ["id", "destination", "state"]);
    assert_eq!(
        states,
        vec![
            [new_id.clone(), "bluesky".to_owned(), "pending".to_owned()],
            [id.clone(), "bluesky".to_owned(), "failed".to_owned()],
        ],
        "the retry is due now, before the failed post's time"
    );
    let kafka = tweet_pipeline_common::config::KafkaArgs {
        bootstrap: bootstrap(),
        config_file: None,
        properties: Vec::new(),
    };
    let records = tweet_pipeline_scheduler::queue::read_topic(&kafka, &schedule.scheduled)
        .expect("read back");
    let post: tweet_pipeline_scheduler::model::ScheduledPost = serde_json::from_slice(
        records
            .iter()
            .find(|(_, key, _)| *key == new_id)
            .and_then(|r| r.2.as_deref())
            .expect("the retry's record"),
    )
    .unwrap();
    assert_eq!(post.source, "web");
    assert_eq!(post.text, "retry me");
    drop(web);
    delete_schedule_topics(&schedule).await;
    delete_topics(&names).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_access_token_file_must_be_private_and_then_guards_the_page() {
    use std::os::unix::fs::PermissionsExt as _;
    let dir = tempfile::tempdir().expect("temp dir");
    let token = "file-token-0123456789abcdef";
    let path = dir.path().join("web-token");
    std::fs::write(&path, format!("{token}\n")).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
    let output = Command::new(binary("tweet-consumer"))
        .args([
            "--group",
            "web",
            "--http-addr=0.0.0.0:0",
            "--metrics-addr=off",
        ])
        .arg("--auth-token-file")
        .arg(&path)
        .env_remove("TWEET_PIPELINE_WEB_TOKEN")
        .env("RUST_LOG", "debug")
        .output()
        .expect("tweet-consumer runs");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("chmod 600"), "{stderr}");
    assert!(
        !stderr.contains(token),
        "the token is never logged: {stderr}"
    );

    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    let prefix = unique("e2e-web-tokenfile");
    let names = create_topics(&format!("{prefix}-")).await;
    let schedule = create_schedule_topics(&format!("{prefix}-")).await;
    let flag = format!("--auth-token-file={}", path.display());
    let web = Web::start_with_token(
        &names,
        &schedule,
        &dir.path().join("none.db"),
        &[&flag],
        token,
    );
    assert_eq!(http(web.port, "GET", "/", &[], "").0, 401);
    let (status, page) = http(web.port, "GET", "/", &[("x-web-token", token)], "");
    assert_eq!(status, 200);
    assert!(!page.contains(token), "the token never reaches the page");
    drop(web);
    delete_topics(&names).await;
}

/// `GET /api/schedule` of the web view on `port`: each row's string `fields`, in row order.
fn schedule_rows<const N: usize>(port: u16, fields: [&str; N]) -> Vec<[String; N]> {
    let (status, listed) = http(port, "GET", "/api/schedule", &[], "");
    assert_eq!(status, 200, "{listed}");
    let rows: Value = serde_json::from_str(&listed).unwrap();
    rows["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| fields.map(|f| r[f].as_str().unwrap().to_owned()))
        .collect()
}
