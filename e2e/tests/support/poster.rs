//! The scheduled-post poster (`tweet-consumer --role poster`) against the stream emulator's
//! posting endpoints, for tests outside scheduled.rs (which keeps its own richer helper):
//! spawned with the emulator's fake credentials, waited for until it has loaded its
//! partitions, and the emulator's post log read back.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tweet_pipeline_common::config::ScheduleTopics;

use super::{binary, bootstrap, http, Emulator};

/// The emulator's fake posting credentials (X OAuth 1.0a, Bluesky, Mastodon), as the poster
/// reads them from the environment. The emulator opens a Bluesky session for any non-empty
/// identifier and password.
pub const EMULATOR_CREDENTIALS: [(&str, &str); 7] = [
    ("X_CONSUMER_KEY", "emulator-consumer-key"),
    ("X_CONSUMER_SECRET", "emulator-consumer-secret"),
    ("X_ACCESS_TOKEN", "emulator-access-token"),
    ("X_ACCESS_TOKEN_SECRET", "emulator-access-token-secret"),
    ("BLUESKY_IDENTIFIER", "pipeline-emulator.bsky.social"),
    ("BLUESKY_APP_PASSWORD", "emulator-app-password"),
    ("MASTODON_TOKEN", "emulator-mastodon-token"),
];

/// A running poster whose log goes to a file; killed when dropped.
pub struct PosterProcess {
    /// The process.
    pub child: Child,
    /// Its log (stderr, `RUST_LOG=info`).
    pub log: PathBuf,
}

/// Starts a poster of group `group` for the topics `names`, posting to `emulator` (X, Bluesky
/// and Mastodon all at the emulator), with its store and log in `dir`.
pub fn spawn_poster(
    emulator: &Emulator,
    names: &ScheduleTopics,
    group: &str,
    dir: &Path,
) -> PosterProcess {
    let log = dir.join(format!("{group}.log"));
    let log_file = std::fs::File::create(&log).expect("poster log file");
    let child = Command::new(binary("tweet-consumer"))
        .args(["--group", group, "--role", "poster"])
        .arg("--db")
        .arg(dir.join(format!("{group}.db")))
        .arg(format!("--x-api-url={}", emulator.url()))
        .arg(format!("--bluesky-pds-url={}", emulator.url()))
        .arg(format!("--mastodon-url={}", emulator.url()))
        .arg("--metrics-addr=off")
        .arg(format!("--scheduled-topic={}", names.scheduled))
        .arg(format!("--scheduled-results-topic={}", names.results))
        .arg(format!("--bootstrap={}", bootstrap()))
        .envs(EMULATOR_CREDENTIALS)
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(log_file)
        .spawn()
        .expect("poster starts");
    PosterProcess { child, log }
}

impl PosterProcess {
    /// Its log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits (at most 30 s) until it has loaded `count` partitions of the scheduled topic.
    pub fn wait_loaded(&self, count: usize) {
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
}

impl Drop for PosterProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The texts the emulator's X endpoint accepted, in order (`GET /_emulator/posts`).
pub fn emulator_x_posts(emulator: &Emulator) -> Vec<String> {
    let (status, body) = http(emulator.port, "GET", "/_emulator/posts", &[], "");
    assert_eq!(status, 200, "{body}");
    let json: serde_json::Value = serde_json::from_str(&body).expect("JSON");
    json["posts"]
        .as_array()
        .expect("posts")
        .iter()
        .map(|p| p["text"].as_str().expect("text").to_owned())
        .collect()
}
