//! The deployed monitoring, checked by a real Prometheus (Debian's `prometheus` package;
//! scripts/ensure-deps.sh installs it): `promtool` validates deploy/prometheus.yml and
//! deploy/alerts.yml and runs the alert unit tests, then Prometheus runs on that same
//! configuration (ports, intervals and the rule file path rewritten for the test), scrapes a
//! producer replaying data/sample/stream.jsonl and an analysis consumer, and the series are
//! asserted through its HTTP API with the sample's known counts.

mod support;

use std::collections::BTreeMap;
use std::io::Write as _;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use support::{
    analysis_summary, create_topics, delete_topics, producer_command, terminate, topic_flags,
    unique,
};

fn repo() -> PathBuf {
    support::repo_root()
}

/// A Debian `prometheus` package tool on PATH (or in /usr/bin), else a failure that says how to
/// get it: CI installs it, so a missing one must not pass silently.
fn tool(name: &str) -> PathBuf {
    let found = std::env::var_os("PATH")
        .into_iter()
        .flat_map(|path| std::env::split_paths(&path).collect::<Vec<_>>())
        .chain([PathBuf::from("/usr/bin")])
        .map(|dir| dir.join(name))
        .find(|path| path.is_file());
    found.unwrap_or_else(|| {
        panic!(
            "{name} not found: run scripts/ensure-deps.sh (installs Debian's prometheus package)"
        )
    })
}

fn promtool(args: &[&str]) -> String {
    let output = Command::new(tool("promtool"))
        .args(args)
        .current_dir(repo())
        .output()
        .expect("promtool runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(output.status.success(), "promtool {args:?} failed:\n{text}");
    text
}

#[test]
fn promtool_accepts_the_config_and_the_alert_tests_pass() {
    let config = promtool(&["check", "config", "deploy/prometheus.yml"]);
    assert!(config.contains("SUCCESS: 1 rule files found"), "{config}");
    let rules = promtool(&["check", "rules", "deploy/alerts.yml"]);
    assert!(rules.contains("SUCCESS: 10 rules found"), "{rules}");
    let tests = promtool(&["test", "rules", "deploy/alerts.test.yml"]);
    assert!(tests.contains("SUCCESS"), "{tests}");
}

/// Three distinct free ports (all listeners held until all are known).
fn three_free_ports() -> [u16; 3] {
    let listeners: Vec<TcpListener> = (0..3)
        .map(|_| TcpListener::bind("127.0.0.1:0").expect("a free port"))
        .collect();
    let port = |i: usize| listeners[i].local_addr().expect("bound address").port();
    [port(0), port(1), port(2)]
}

/// deploy/prometheus.yml with the test's ports, 1 s intervals and an absolute rule file path.
fn test_config(producer_port: u16, consumer_port: u16) -> String {
    let deployed = std::fs::read_to_string(repo().join("deploy/prometheus.yml"))
        .expect("deploy/prometheus.yml");
    let rules = repo().join("deploy/alerts.yml");
    let rules = rules.to_str().expect("utf-8 path");
    [
        (
            "\"127.0.0.1:9101\"",
            format!("\"127.0.0.1:{producer_port}\""),
        ),
        (
            "\"127.0.0.1:9102\"",
            format!("\"127.0.0.1:{consumer_port}\""),
        ),
        ("scrape_interval: 15s", "scrape_interval: 1s".to_owned()),
        (
            "evaluation_interval: 15s",
            "evaluation_interval: 1s".to_owned(),
        ),
        ("  - alerts.yml", format!("  - {rules}")),
    ]
    .into_iter()
    .fold(deployed, |config, (from, to)| {
        assert!(
            config.contains(from),
            "deploy/prometheus.yml no longer has {from}"
        );
        config.replace(from, &to)
    })
}

/// Percent-encodes a query-string value (RFC 3986 unreserved characters pass).
fn encode(value: &str) -> String {
    value
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// `GET path` on Prometheus's HTTP API; `None` while it is not answering.
fn api(port: u16, path: &str) -> Option<Value> {
    serde_json::from_str(&support::get(port, path)?).ok()
}

/// An instant query's result as (labels → value).
fn query(port: u16, promql: &str) -> Option<BTreeMap<BTreeMap<String, String>, f64>> {
    let answer = api(port, &format!("/api/v1/query?query={}", encode(promql)))?;
    let result = answer.pointer("/data/result")?.as_array()?;
    result
        .iter()
        .map(|sample| {
            let labels = sample["metric"]
                .as_object()?
                .iter()
                .map(|(k, v)| Some((k.clone(), v.as_str()?.to_owned())))
                .collect::<Option<BTreeMap<_, _>>>()?;
            let value = sample.pointer("/value/1")?.as_str()?.parse().ok()?;
            Some((labels, value))
        })
        .collect()
}

/// `promql` summed by one label, e.g. {"tweets": 236.0, …}.
fn by(port: u16, label: &str, promql: &str) -> BTreeMap<String, f64> {
    query(port, &format!("sum by ({label}) ({promql})"))
        .unwrap_or_default()
        .into_iter()
        .map(|(labels, value)| (labels.get(label).cloned().unwrap_or_default(), value))
        .collect()
}

/// Polls until `check` holds (60 s at most); on failure shows what was last seen and the logs.
fn eventually<T: std::fmt::Debug>(
    what: &str,
    logs: &[&Path],
    mut probe: impl FnMut() -> T,
    check: impl Fn(&T) -> bool,
) -> T {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let seen = probe();
        if check(&seen) {
            return seen;
        }
        if Instant::now() > deadline {
            let logs: String = logs
                .iter()
                .map(|log| {
                    format!(
                        "--- {}\n{}",
                        log.display(),
                        std::fs::read_to_string(log).unwrap_or_default()
                    )
                })
                .collect();
            panic!("{what}: last seen {seen:?}\n{logs}");
        }
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// The metric names in a PromQL expression (ours all start with `tweet_`).
fn metric_names(expr: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut rest = expr;
    while let Some(start) = rest.find("tweet_") {
        let tail = &rest[start..];
        let end = tail
            .find(|c: char| !(c.is_ascii_lowercase() || c == '_'))
            .unwrap_or(tail.len());
        names.push(tail[..end].to_owned());
        rest = &tail[end..];
    }
    names
}

/// Every query of deploy/grafana/tweet-pipeline.json is valid PromQL to this Prometheus, names
/// only metrics declared in common/src/metrics.rs (or planned ones), and returns data whenever
/// every metric it names has been scraped.
fn check_dashboard(port: u16) {
    let dashboard: Value = serde_json::from_str(
        &std::fs::read_to_string(repo().join("deploy/grafana/tweet-pipeline.json"))
            .expect("deploy/grafana/tweet-pipeline.json"),
    )
    .expect("the dashboard is JSON");
    let declared =
        std::fs::read_to_string(repo().join("common/src/metrics.rs")).expect("metrics.rs");
    let scraped: Vec<String> = api(port, "/api/v1/label/__name__/values")
        .and_then(|v| serde_json::from_value(v["data"].clone()).ok())
        .expect("metric names");
    let panels = dashboard["panels"].as_array().expect("panels");
    let mut checked = 0;
    for panel in panels.iter().filter(|p| p["type"] != "row") {
        let title = panel["title"].as_str().unwrap_or_default();
        for target in panel["targets"].as_array().expect("targets") {
            let expr = target["expr"].as_str().expect("expr");
            let names = metric_names(expr);
            assert!(!names.is_empty(), "{title}: {expr}");
            for name in &names {
                let base = ["_bucket", "_count", "_sum"]
                    .iter()
                    .find_map(|s| name.strip_suffix(s))
                    .unwrap_or(name);
                let short = base
                    .strip_prefix("tweet_pipeline_producer_")
                    .or_else(|| base.strip_prefix("tweet_pipeline_consumer_"));
                assert!(
                    short.is_some_and(|s| declared.contains(&format!("\"{s}\""))),
                    "{title}: {name} is not a metric of common/src/metrics.rs"
                );
            }
            let promql = expr
                .replace("$__rate_interval", "1m")
                .replace("$instance", ".*");
            let answer = api(port, &format!("/api/v1/query?query={}", encode(&promql)))
                .unwrap_or_else(|| panic!("{title}: Prometheus rejected {promql}"));
            let result = answer["data"]["result"].as_array().expect("result");
            if names.iter().all(|n| scraped.contains(n)) {
                assert!(!result.is_empty(), "{title}: no data for {promql}");
                checked += 1;
            }
        }
    }
    assert!(
        checked >= 8,
        "only {checked} dashboard queries had data to check"
    );
}

fn spawn(command: &mut Command, log: &Path) -> Child {
    command
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(log).expect("log file"))
        .spawn()
        .expect("process starts")
}

#[tokio::test(flavor = "multi_thread")]
async fn prometheus_scrapes_the_pipeline_with_the_deployed_config() {
    let prometheus_binary = tool("prometheus");
    let names = create_topics(&format!("{}-", unique("prom"))).await;
    let [producer_port, consumer_port, prometheus_port] = three_free_ports();
    let dir = tempfile::tempdir().expect("temp dir");
    let config = dir.path().join("prometheus.yml");
    std::fs::write(&config, test_config(producer_port, consumer_port)).expect("write config");
    let logs = [
        dir.path().join("producer.log"),
        dir.path().join("consumer.log"),
        dir.path().join("prometheus.log"),
    ];
    let log_refs: Vec<&Path> = logs.iter().map(PathBuf::as_path).collect();

    // The sample through stdin, which stays open: the producer sends all 364 lines and keeps
    // serving /metrics until stdin closes.
    let mut producer = spawn(
        producer_command()
            .args(["--replay", "-"])
            .args(topic_flags(&names))
            .arg(format!("--metrics-addr=127.0.0.1:{producer_port}"))
            .stdin(Stdio::piped()),
        &logs[0],
    );
    let mut stdin = producer.stdin.take().expect("producer stdin");
    stdin
        .write_all(&std::fs::read(repo().join("data/sample/stream.jsonl")).expect("sample"))
        .expect("feed the producer");
    // Not --exit-at-end: the consumer must outlive a few scrapes. Statistics every second so
    // that the lag gauge follows within a scrape or two.
    let group = unique("analysis");
    let consumer = spawn(
        support::consumer_command()
            .args(["--group", &group, "--role", "analysis", "--db"])
            .arg(dir.path().join("tweets.db"))
            .args(topic_flags(&names))
            .args(["-X", "statistics.interval.ms=1000"])
            .arg(format!("--metrics-addr=127.0.0.1:{consumer_port}")),
        &logs[1],
    );
    let prometheus = spawn(
        Command::new(&prometheus_binary)
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{prometheus_port}"))
            .arg("--log.level=warn"),
        &logs[2],
    );

    // Both targets up, through the deployed job names.
    let up = eventually(
        "both targets scraped and up",
        &log_refs,
        || by(prometheus_port, "job", "up"),
        |up| up.get("tweet-producer") == Some(&1.0) && up.get("tweet-consumer") == Some(&1.0),
    );
    assert_eq!(up.len(), 2, "{up:?}");

    // Producer: the sample's known counts (data/sample/README.md): 236 posts, 40 retweets,
    // 83 deletes + 5 limit notices, nothing dead-lettered.
    let sent = "tweet_pipeline_producer_records_sent_total";
    let by_topic = eventually(
        "producer records by topic",
        &log_refs,
        || by(prometheus_port, "topic", sent),
        |seen| seen.values().sum::<f64>() >= 364.0,
    );
    let expected: BTreeMap<String, f64> =
        [("control", 88.0), ("retweets", 40.0), ("tweets", 236.0)]
            .into_iter()
            .map(|(t, n)| (t.to_owned(), n))
            .collect();
    assert_eq!(by_topic, expected);
    let control = by(
        prometheus_port,
        "kind",
        &format!("{sent}{{topic=\"control\"}}"),
    );
    assert_eq!(control.get("delete"), Some(&83.0), "{control:?}");
    assert_eq!(control.get("limit"), Some(&5.0), "{control:?}");
    let lines =
        query(prometheus_port, "tweet_pipeline_producer_lines_read_total").unwrap_or_default();
    assert_eq!(
        lines.values().copied().collect::<Vec<_>>(),
        vec![364.0],
        "{lines:?}"
    );

    // Consumer: every record of the three topics it reads, then a lag of zero on each of the
    // 3 × 2 partitions, labelled with the group and the topic role.
    eventually(
        "consumer records by topic",
        &log_refs,
        || {
            by(
                prometheus_port,
                "topic",
                "tweet_pipeline_consumer_records_total",
            )
        },
        |seen| *seen == expected,
    );
    let lag = eventually(
        "consumer lag on every partition, and zero",
        &log_refs,
        || query(prometheus_port, "tweet_pipeline_consumer_lag_records").unwrap_or_default(),
        |lag| lag.len() == 6 && lag.values().all(|v| *v == 0.0),
    );
    for labels in lag.keys() {
        assert_eq!(labels.get("group"), Some(&group), "{labels:?}");
        assert_eq!(
            labels.get("job").map(String::as_str),
            Some("tweet-consumer")
        );
        assert!(
            ["tweets", "retweets", "control"].contains(&labels["topic"].as_str())
                && ["0", "1"].contains(&labels["partition"].as_str()),
            "{labels:?}"
        );
    }
    let analysed = by(
        prometheus_port,
        "language",
        "tweet_pipeline_consumer_posts_analysed_total",
    );
    assert!(analysed.get("en").is_some_and(|n| *n > 0.0), "{analysed:?}");

    // rate() needs two samples in its window: a few scrapes of each target first.
    eventually(
        "a few scrapes of each target",
        &log_refs,
        || by(prometheus_port, "job", "count_over_time(up[1m])"),
        |scrapes| scrapes.len() == 2 && scrapes.values().all(|n| *n >= 4.0),
    );
    check_dashboard(prometheus_port);

    // The alert rules are loaded and none fires on a healthy pipeline.
    let rules = api(prometheus_port, "/api/v1/rules?type=alert").expect("rules API");
    let loaded: Vec<&str> = rules
        .pointer("/data/groups/0/rules")
        .and_then(Value::as_array)
        .map(|rules| rules.iter().filter_map(|r| r["name"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(loaded.len(), 10, "{rules}");
    assert!(loaded.contains(&"TweetConsumerLagGrowing"), "{loaded:?}");
    let alerts = api(prometheus_port, "/api/v1/alerts").expect("alerts API");
    assert_eq!(
        alerts
            .pointer("/data/alerts")
            .and_then(Value::as_array)
            .map(Vec::len),
        Some(0),
        "{alerts}"
    );

    // rows written as Prometheus last scraped it equals the consumer's own summary.
    let rows = query(
        prometheus_port,
        "tweet_pipeline_consumer_rows_written_total",
    )
    .unwrap_or_default()
    .into_values()
    .next()
    .expect("rows written series");
    let consumer_out = terminate(consumer);
    assert!(
        consumer_out.status.success(),
        "consumer exit {}",
        consumer_out.status
    );
    assert_eq!(rows, analysis_summary(&consumer_out).rows_written as f64);
    assert!(rows >= 270.0, "rows written {rows}");

    drop(stdin);
    let producer_out = producer.wait_with_output().expect("producer exits");
    assert!(
        producer_out.status.success(),
        "producer exit {}",
        producer_out.status
    );
    assert_eq!(support::producer_summary(&producer_out).unacknowledged, 0);
    let stopped = terminate(prometheus);
    assert!(
        stopped.status.success(),
        "prometheus exit {}",
        stopped.status
    );
    delete_topics(&names).await;
}
