//! Secrets never leak: a full pipeline runs with known credential values (an X API v2 bearer
//! token, X API v1.1 OAuth keys from a credentials file, a Kafka SASL password in a
//! `--kafka-config` file and in `-X`), at debug log level, through success, a refused token
//! and a refused credentials file; then every byte the binaries printed (stdout, stderr, the
//! `/metrics` scrapes, `--help`) is searched for those values.
//!
//! Reads the emulator's corpus from ../shared/data (fails with a message when it is absent).

mod support;

use std::os::unix::fs::PermissionsExt as _;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use support::{
    create_topics, delete_topics, free_ports, producer_command, scrape, terminate, topic_flags,
    unique, Emulator,
};

const BEARER: &str = "bearer-SECRET-7f3a9c1e";
const CONSUMER_KEY: &str = "ckey-SECRET-51b2";
const CONSUMER_SECRET: &str = "csecret-SECRET-88d0";
const ACCESS_TOKEN: &str = "atoken-SECRET-c4e7";
const ACCESS_SECRET: &str = "asecret-SECRET-09fa";
const KAFKA_PASSWORD: &str = "kafka-SECRET-3d6b";
const KAFKA_X_PASSWORD: &str = "kafkaX-SECRET-a1f4";

const SECRETS: [&str; 7] = [
    BEARER,
    CONSUMER_KEY,
    CONSUMER_SECRET,
    ACCESS_TOKEN,
    ACCESS_SECRET,
    KAFKA_PASSWORD,
    KAFKA_X_PASSWORD,
];

fn emulator() -> Emulator {
    support::spawn_emulator(&[
        "--rate",
        "200",
        "--keepalive-ms",
        "300",
        "--bearer-token",
        BEARER,
        "--consumer-key",
        CONSUMER_KEY,
        "--consumer-secret",
        CONSUMER_SECRET,
        "--access-token",
        ACCESS_TOKEN,
        "--access-token-secret",
        ACCESS_SECRET,
    ])
}

fn text(output: &Output) -> String {
    format!(
        "{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// Runs `child` for `seconds`, scraping its metrics on `port` meanwhile, then SIGTERM.
fn run_for(child: Child, seconds: u64, port: u16) -> String {
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let mut scrapes = String::new();
    while Instant::now() < deadline {
        if let Some(text) = scrape(port) {
            scrapes = text;
        }
        std::thread::sleep(Duration::from_millis(300));
    }
    let output = terminate(child);
    format!("{}\n{scrapes}", text(&output))
}

#[tokio::test(flavor = "multi_thread")]
async fn no_secret_appears_in_any_output() {
    let names = create_topics(&format!("{}-", unique("secrets"))).await;
    let dir = tempfile::tempdir().expect("temp dir");
    let emulator = emulator();
    let mut captured = Vec::new();

    // Kafka security settings from a private file (plaintext here: librdkafka ignores the SASL
    // password, but it is parsed, carried and logged about like a real one).
    let kafka_config = dir.path().join("kafka.properties");
    std::fs::write(
        &kafka_config,
        format!(
            "# librdkafka properties\nsasl.username=pipeline\nsasl.password={KAFKA_PASSWORD}\n"
        ),
    )
    .expect("kafka config");
    std::fs::set_permissions(&kafka_config, std::fs::Permissions::from_mode(0o600)).unwrap();
    let kafka_flags = |command: &mut Command| {
        command
            .arg("--kafka-config")
            .arg(&kafka_config)
            .args(["-X", &format!("sasl.password={KAFKA_X_PASSWORD}")])
            .env("RUST_LOG", "debug");
    };

    // 1. X API v2 with the right bearer token, streaming for a few seconds.
    let (port, consumer_port) = free_ports();
    let mut command = producer_command();
    command
        .args(["--base-url", &emulator.url(), "--track", "the"])
        .args(topic_flags(&names))
        .arg(format!("--metrics-addr=127.0.0.1:{port}"))
        .env("X_BEARER_TOKEN", BEARER)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    kafka_flags(&mut command);
    let child = command.spawn().expect("producer starts");
    let out = run_for(child, 4, port);
    // Its JSON summary (producer_command asks for it) says what it acknowledged.
    assert!(out.contains(r#""acked":{"#), "the producer ran:\n{out}");
    captured.push(("producer, v2", out));

    // 2. A refused bearer token (401): the error names the problem, not the token.
    let wrong = format!("{BEARER}-wrong");
    let mut command = producer_command();
    command
        .args(["--base-url", &emulator.url(), "--track", "the"])
        .args(topic_flags(&names))
        .arg("--metrics-addr=off")
        .env("X_BEARER_TOKEN", &wrong)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    kafka_flags(&mut command);
    let child = command.spawn().expect("producer starts");
    let output = {
        // The producer gives up on 401 by itself, or is stopped after 4 s.
        std::thread::sleep(Duration::from_secs(4));
        let mut child = child;
        match child.try_wait().expect("status") {
            Some(_) => child.wait_with_output().expect("output"),
            None => terminate(child),
        }
    };
    let out = text(&output);
    assert!(
        out.contains("401") || out.to_lowercase().contains("unauthorized"),
        "the refusal is reported:\n{out}"
    );
    assert!(
        !out.contains(&wrong),
        "the refused token is not echoed:\n{out}"
    );
    captured.push(("producer, refused token", out));

    // 3. X API v1.1 with OAuth keys from a credentials file.
    let credentials = dir.path().join("credentials.env");
    std::fs::write(
        &credentials,
        format!("X_CONSUMER_KEY={CONSUMER_KEY}\nX_CONSUMER_SECRET={CONSUMER_SECRET}\nX_ACCESS_TOKEN={ACCESS_TOKEN}\nX_ACCESS_TOKEN_SECRET={ACCESS_SECRET}\n"),
    )
    .expect("credentials");
    std::fs::set_permissions(&credentials, std::fs::Permissions::from_mode(0o600)).unwrap();
    let mut command = producer_command();
    command
        .args([
            "--base-url",
            &emulator.url(),
            "--api",
            "v1",
            "--track",
            "the",
        ])
        .arg("--credentials-file")
        .arg(&credentials)
        .args(topic_flags(&names))
        .arg(format!("--metrics-addr=127.0.0.1:{port}"))
        .env_remove("X_CONSUMER_KEY")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    kafka_flags(&mut command);
    let child = command.spawn().expect("producer starts");
    let out = run_for(child, 4, port);
    assert!(
        out.contains(r#""acked":{"#),
        "the v1.1 producer ran:\n{out}"
    );
    captured.push(("producer, v1.1", out));

    // 4. The same files, readable by others: refused with a message, nothing printed of them.
    for file in [&credentials, &kafka_config] {
        std::fs::set_permissions(file, std::fs::Permissions::from_mode(0o644)).unwrap();
    }
    let mut command = producer_command();
    command
        .args([
            "--base-url",
            &emulator.url(),
            "--api",
            "v1",
            "--track",
            "the",
        ])
        .arg("--credentials-file")
        .arg(&credentials)
        .args(topic_flags(&names))
        .arg("--metrics-addr=off");
    let output = command.output().expect("producer runs");
    let out = text(&output);
    assert!(!output.status.success());
    assert!(out.contains("chmod 600") || out.contains("0600"), "{out}");
    captured.push(("producer, open credentials file", out));
    let mut command = producer_command();
    command.arg("--replay").arg("-").args(topic_flags(&names));
    kafka_flags(&mut command);
    let output = command
        .stdin(Stdio::null())
        .output()
        .expect("producer runs");
    let out = text(&output);
    assert!(
        !output.status.success(),
        "an open --kafka-config is refused:\n{out}"
    );
    captured.push(("producer, open kafka config", out));
    std::fs::set_permissions(&kafka_config, std::fs::Permissions::from_mode(0o600)).unwrap();

    // 5. The analysis consumer with the same Kafka settings, and its metrics.
    let mut command = support::analysis_to_end(&dir.path().join("tweets.db"));
    command
        .args(topic_flags(&names))
        .arg(format!("--metrics-addr=127.0.0.1:{consumer_port}"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    kafka_flags(&mut command);
    let output = command.output().expect("consumer runs");
    assert!(output.status.success(), "{}", text(&output));
    captured.push(("consumer", text(&output)));

    // 6. --help of every binary (environment values must not be shown).
    for binary in ["tweet-producer", "tweet-consumer", "stream-emulator"] {
        let output = Command::new(support::binary(binary))
            .arg("--help")
            .env("X_BEARER_TOKEN", BEARER)
            .env("X_CONSUMER_SECRET", CONSUMER_SECRET)
            .output()
            .expect("help");
        captured.push((binary, text(&output)));
    }

    let mut leaks = Vec::new();
    let mut bytes = 0;
    for (what, output) in &captured {
        bytes += output.len();
        for secret in SECRETS {
            if output.contains(secret) {
                leaks.push(format!("{what}: {secret}"));
            }
        }
    }
    println!(
        "searched {bytes} bytes of output from {} runs for {} secrets: {} found",
        captured.len(),
        SECRETS.len(),
        leaks.len()
    );
    assert!(bytes > 10_000, "debug logging produced output to search");
    assert!(leaks.is_empty(), "secrets leaked: {leaks:?}");
    drop(emulator);
    delete_topics(&names).await;
}
