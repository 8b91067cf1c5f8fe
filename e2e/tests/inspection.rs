//! Inspecting the topics as the README shows it: the real `kafka-console-consumer` (Apache
//! Kafka's ConsoleConsumer from the local broker's classpath, via scripts/kafka-local.sh) with
//! `print.key` and `print.headers` on topics filled by `tweet-producer --replay`, finding every
//! record's key and the `kind`, `source` and `received_at_ms` headers.

mod support;

use std::collections::BTreeMap;
use std::process::Command;

use support::{
    bootstrap, create_topics, delete_topics, producer_command, run, topic_flags, unique,
};
use tweet_pipeline_common::{route_line, Destination, LineClass};

#[tokio::test(flavor = "multi_thread")]
async fn console_consumer_shows_keys_and_headers() {
    let prefix = format!("{}-", unique("inspect"));
    let names = create_topics(&prefix).await;
    let repo = support::repo_root();
    let sample = repo.join("data/sample/stream.jsonl");
    run(producer_command()
        .arg("--replay")
        .arg(&sample)
        .args(topic_flags(&names))
        .arg("--metrics-addr=off"));

    // What routing puts on tweets and control: (kind, key or "null") → count.
    let bytes = std::fs::read(&sample).expect("sample");
    let mut expected: BTreeMap<(String, String), usize> = BTreeMap::new();
    for line in bytes.split(|b| *b == b'\n') {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if let LineClass::Record(routed) = route_line(line) {
            if matches!(
                routed.destination(),
                Destination::Tweets | Destination::Control
            ) {
                let key = routed.key.as_deref().unwrap_or("null").to_owned();
                *expected
                    .entry((routed.kind.as_str().to_owned(), key))
                    .or_default() += 1;
            }
        }
    }
    let total: usize = expected.values().sum();
    assert_eq!(total, 236 + 88, "the sample's posts and control messages");

    let output = run(Command::new(repo.join("scripts/kafka-local.sh"))
        .env("KAFKA_BOOTSTRAP", bootstrap())
        .arg("console-consumer")
        .arg("--include")
        .arg(format!("^{}$|^{}$", names.tweets, names.control))
        .args(["--from-beginning", "--timeout-ms", "30000"])
        .args(["--max-messages", &total.to_string()])
        .args(["--formatter-property", "print.partition=true"])
        .args(["--formatter-property", "print.key=true"])
        .args(["--formatter-property", "print.headers=true"]));
    let stdout = String::from_utf8(output.stdout).expect("utf-8 output");

    // Partition:N <tab> kind:K,source:S,received_at_ms:T <tab> key <tab> value
    let mut seen: BTreeMap<(String, String), usize> = BTreeMap::new();
    for line in stdout.lines() {
        let fields: Vec<&str> = line.splitn(4, '\t').collect();
        let [partition, headers, key, value] = fields[..] else {
            panic!("not partition, headers, key, value: {line}");
        };
        let partition: i32 = partition
            .strip_prefix("Partition:")
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("{line}"));
        assert!((0..support::PARTITIONS).contains(&partition), "{line}");
        let headers: BTreeMap<&str, &str> = headers
            .split(',')
            .map(|h| h.split_once(':').unwrap_or_else(|| panic!("header {h}")))
            .collect();
        assert_eq!(
            headers.keys().copied().collect::<Vec<_>>(),
            ["kind", "received_at_ms", "source"],
            "{line}"
        );
        assert_eq!(headers["source"], "replay:stream.jsonl");
        let received: u64 = headers["received_at_ms"]
            .parse()
            .expect("Unix milliseconds");
        assert!(received > 1_700_000_000_000, "{line}");
        let json: serde_json::Value = serde_json::from_str(value).expect("the raw JSON line");
        if headers["kind"] == "tweet" {
            assert_eq!(json["id_str"].as_str(), Some(key), "key is the post id");
        }
        *seen
            .entry((headers["kind"].to_owned(), key.to_owned()))
            .or_default() += 1;
    }
    assert_eq!(
        seen, expected,
        "keys and kinds printed by kafka-console-consumer"
    );
    assert!(seen.keys().any(|(kind, _)| kind == "delete"));
    assert!(seen.contains_key(&("limit".to_owned(), "null".to_owned())));
    delete_topics(&names).await;
}
