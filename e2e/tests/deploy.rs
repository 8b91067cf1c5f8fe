//! The deployment files checked with the tools that read them: the systemd units in
//! deploy/systemd/ by `systemd-analyze verify` (skipped, with the reason printed, where
//! systemd-analyze is not installed), and docker-compose.kafka.yml by `docker compose config`
//! (or Debian's `docker-compose`; neither needs a Docker engine) plus its agreement with the
//! broker that scripts/kafka-local.sh runs.

mod support;

use std::path::PathBuf;
use std::process::{Command, Output};

fn repo() -> PathBuf {
    support::repo_root()
}

fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

const UNITS: [&str; 3] = [
    "tweet-producer.service",
    "tweet-consumer@.service",
    "tweet-kafka.service",
];

/// What every unit must say, whatever systemd-analyze thinks of it.
#[test]
fn units_restart_on_failure_and_read_credentials_from_an_environment_file() {
    for unit in UNITS {
        let body = std::fs::read_to_string(repo().join("deploy/systemd").join(unit))
            .unwrap_or_else(|e| panic!("deploy/systemd/{unit}: {e}"));
        for line in [
            "Restart=on-failure",
            "User=tweet-pipeline",
            "NoNewPrivileges=yes",
            "ProtectSystem=strict",
            "WantedBy=multi-user.target",
        ] {
            assert!(body.lines().any(|l| l == line), "{unit} lacks {line}");
        }
        assert!(
            body.lines().any(|l| l.starts_with("EnvironmentFile=")),
            "{unit} reads no environment file"
        );
    }
    let consumer =
        std::fs::read_to_string(repo().join("deploy/systemd/tweet-consumer@.service")).unwrap();
    assert!(consumer.contains("ExecStart=/usr/local/bin/tweet-consumer --group %i"));
    // The producer's credentials file is required, not optional (`-`): a service that starts
    // without credentials would only fail later.
    let producer =
        std::fs::read_to_string(repo().join("deploy/systemd/tweet-producer.service")).unwrap();
    assert!(producer.contains("\nEnvironmentFile=/etc/tweet-pipeline/producer.env\n"));
}

#[test]
fn systemd_analyze_verifies_the_units() {
    let probe = Command::new("systemd-analyze").arg("--version").output();
    if !probe.is_ok_and(|o| o.status.success()) {
        println!("skipped: systemd-analyze is not installed (Debian package systemd)");
        return;
    }
    // verify insists that ExecStart= programs exist: point the units' install paths at this
    // build and this checkout, in copies; everything else is verified as written.
    let dir = tempfile::tempdir().expect("temp dir");
    let binaries = format!("{}/", support::process::bin_dir().display());
    let checkout = format!("{}/", repo().canonicalize().expect("repo path").display());
    let mut paths = Vec::new();
    for unit in UNITS {
        let body = std::fs::read_to_string(repo().join("deploy/systemd").join(unit))
            .expect("unit file")
            .replace("/usr/local/bin/", &binaries)
            .replace("/opt/tweet-pipeline/", &checkout);
        // A template is verified as an instance of it.
        let name = unit.replace("@.", "@analysis.");
        std::fs::write(dir.path().join(&name), body).expect("write unit");
        paths.push(dir.path().join(name));
    }
    let output = Command::new("systemd-analyze")
        .args(["verify", "--man=no"])
        .args(&paths)
        .output()
        .expect("systemd-analyze runs");
    // Unknown keys and unparsable values are only warnings (exit 0): any output is a failure.
    let said = text(&output);
    assert!(
        output.status.success() && said.trim().is_empty(),
        "systemd-analyze verify: {}\n{said}",
        output.status
    );
}

/// `docker compose` (v2 plugin) or `docker-compose` (Debian's v1), whichever works here.
fn compose() -> Command {
    let v2 = Command::new("docker")
        .args(["compose", "version"])
        .output()
        .is_ok_and(|o| o.status.success());
    if v2 {
        let mut command = Command::new("docker");
        command.arg("compose");
        return command;
    }
    let v1 = Command::new("docker-compose")
        .arg("version")
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        v1,
        "neither `docker compose` nor `docker-compose` works: run scripts/ensure-deps.sh (installs Debian's docker-compose)"
    );
    Command::new("docker-compose")
}

/// `KEY: value` lines of the compose file's `environment:` block.
fn compose_environment(compose_file: &str) -> Vec<(String, String)> {
    compose_file
        .lines()
        .skip_while(|l| l.trim() != "environment:")
        .skip(1)
        .take_while(|l| l.starts_with("      "))
        .filter_map(|l| l.trim().split_once(": "))
        .map(|(k, v)| (k.to_owned(), v.trim_matches('"').to_owned()))
        .collect()
}

#[test]
fn docker_compose_file_is_valid_and_matches_the_local_broker() {
    let output = compose()
        .args(["-f", "docker-compose.kafka.yml", "config", "-q"])
        .current_dir(repo())
        .output()
        .expect("compose runs");
    assert!(
        output.status.success(),
        "docker-compose.kafka.yml is invalid:\n{}",
        text(&output)
    );

    let file = std::fs::read_to_string(repo().join("docker-compose.kafka.yml")).unwrap();
    let pom = std::fs::read_to_string(repo().join("kafka/pom.xml")).unwrap();
    let version = pom
        .split_once("<kafka.version>")
        .and_then(|(_, rest)| rest.split_once("</kafka.version>"))
        .map(|(v, _)| v)
        .expect("kafka.version in kafka/pom.xml");
    assert!(
        file.contains(&format!("image: apache/kafka:{version}\n")),
        "the image is not Kafka {version}, the version scripts/kafka-local.sh runs"
    );
    assert!(
        file.contains("- \"127.0.0.1:9092:9092\""),
        "publish on loopback only"
    );

    // Every broker property the file sets agrees with kafka/server.properties, except those
    // that differ inside a container by nature.
    let properties = std::fs::read_to_string(repo().join("kafka/server.properties")).unwrap();
    let property = |key: &str| {
        properties.lines().find_map(|l| {
            l.split_once('=')
                .filter(|(k, _)| k.trim() == key)
                .map(|(_, v)| v.trim().to_owned())
        })
    };
    let container_specific = ["listeners", "controller.quorum.voters", "log.dirs"];
    let environment = compose_environment(&file);
    assert!(environment.len() > 15, "{environment:?}");
    let mut compared = 0;
    for (name, value) in &environment {
        let Some(key) = name.strip_prefix("KAFKA_") else {
            continue;
        };
        let key = key.to_lowercase().replace('_', ".");
        if container_specific.contains(&key.as_str()) {
            continue;
        }
        if let Some(local) = property(&key) {
            assert_eq!(
                &local, value,
                "{name} differs from {key} in kafka/server.properties"
            );
            compared += 1;
        }
    }
    assert!(compared >= 15, "only {compared} settings compared");
    assert_eq!(
        property("auto.create.topics.enable").as_deref(),
        Some("false")
    );
}
