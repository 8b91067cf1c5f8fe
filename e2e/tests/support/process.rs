//! The binaries under test: found in cargo's target folder (never a guessed path), run to
//! completion or spawned, stopped with real signals, and their summaries read; and the stream
//! emulator, spawned on a free loopback port.

use std::collections::BTreeMap;
use std::io::BufRead as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::OnceLock;

use rustix::process::{kill_process, Pid, Signal};
use serde::de::DeserializeOwned;
use tweet_pipeline_consumer::summary::{AnalysisSummary, ArchiveSummary};
use tweet_pipeline_producer::summary::ProducerSummary;

use super::{shared_data, unique};

/// The folder holding this build's binaries: `<target dir>/<profile>/`, where the target dir
/// is `$CARGO_TARGET_DIR` or cargo's own answer (`cargo metadata`, `target_directory`) and the
/// profile (with a `--target` triple, if any) is read off this test executable's own path,
/// `<target dir>/<profile>/deps/<test>-<hash>`: the binaries of the same build.
pub fn bin_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let exe = std::env::current_exe().expect("the test executable's path");
        let deps = exe.parent().expect("the test executable's folder");
        assert!(
            deps.ends_with("deps"),
            "test executable {} is not in <target>/<profile>/deps/",
            exe.display()
        );
        let profile_dir = deps.parent().expect("the profile folder");
        let target = target_dir();
        match profile_dir.strip_prefix(&target) {
            Ok(profile) => target.join(profile),
            // A test executable copied elsewhere: its own folder is still the right build.
            Err(_) => profile_dir.to_path_buf(),
        }
    })
}

/// `$CARGO_TARGET_DIR`, else `target_directory` from `cargo metadata` on this workspace.
fn target_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("CARGO_TARGET_DIR") {
        let dir = PathBuf::from(dir);
        // Relative to the workspace root, as cargo reads it.
        return if dir.is_absolute() {
            dir
        } else {
            super::repo_root().join(dir)
        };
    }
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let output = Command::new(&cargo)
        .args([
            "metadata",
            "--format-version",
            "1",
            "--no-deps",
            "--manifest-path",
        ])
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("Cargo.toml"))
        .stderr(Stdio::inherit())
        .output()
        .unwrap_or_else(|e| panic!("{cargo:?} metadata does not run: {e}"));
    assert!(
        output.status.success(),
        "cargo metadata failed: {}",
        output.status
    );
    let metadata: serde_json::Value =
        serde_json::from_slice(&output.stdout).expect("cargo metadata prints JSON");
    PathBuf::from(
        metadata["target_directory"]
            .as_str()
            .expect("target_directory in cargo metadata"),
    )
}

/// The path of the workspace binary `name` of this build (see [`bin_dir`]).
///
/// # Panics
/// When it is not built, saying how to build it: `cargo test` builds only the binaries of the
/// package under test, and this crate has none.
pub fn binary(name: &str) -> PathBuf {
    let path = bin_dir().join(name);
    assert!(
        path.exists(),
        "{} not found: run `cargo build --release --bins` first (scripts/test.sh does)",
        path.display()
    );
    path
}

/// `tweet-producer` with a spool folder of its own (the default folder, relative to the
/// working directory, is locked by one producer at a time and tests run in parallel), and its
/// run's summary as JSON (`TWEET_PIPELINE_SUMMARY=json`; read it with [`producer_summary`]).
/// An environment variable, not `--summary`: the `schedule` subcommand takes no stream flags.
pub fn producer_command() -> Command {
    let mut command = Command::new(binary("tweet-producer"));
    command
        .env(
            "TWEET_PIPELINE_SPOOL_DIR",
            std::env::temp_dir().join(unique("tweet-producer-spool")),
        )
        .env("TWEET_PIPELINE_SUMMARY", "json");
    command
}

/// Runs `command` to its end; panics with its status and output unless it succeeded.
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

/// `tweet-consumer`, printing its run's summary as JSON (`TWEET_PIPELINE_SUMMARY=json`; read it
/// with [`analysis_summary`], [`archive_summary`] or [`json_summary`]).
pub fn consumer_command() -> Command {
    let mut command = Command::new(binary("tweet-consumer"));
    command.env("TWEET_PIPELINE_SUMMARY", "json");
    command
}

/// A [`consumer_command`] of the analysis role for a fresh consumer group, storing into `db` and
/// exiting once every assigned partition is read to its end; the caller adds the topic and
/// metrics flags.
pub fn analysis_to_end(db: &Path) -> Command {
    let mut command = consumer_command();
    command
        .args(["--group", &unique("analysis"), "--role", "analysis"])
        .arg("--exit-at-end")
        .arg("--db")
        .arg(db);
    command
}

/// The JSON summary a binary printed as the last line of its stdout, as a `T`.
pub fn json_summary<T: DeserializeOwned>(output: &Output) -> T {
    let stdout = String::from_utf8_lossy(&output.stdout);
    let line = stdout.lines().last().unwrap_or_default();
    serde_json::from_str(line).unwrap_or_else(|e| {
        panic!(
            "no JSON {} on stdout ({e}):\n{stdout}",
            std::any::type_name::<T>()
        )
    })
}

/// The summary of an analysis run of a [`consumer_command`].
pub fn analysis_summary(output: &Output) -> AnalysisSummary {
    json_summary(output)
}

/// The summary of an archive run of a [`consumer_command`].
pub fn archive_summary(output: &Output) -> ArchiveSummary {
    json_summary(output)
}

/// The JSON summary a [`producer_command`] printed on stdout (its last line).
pub fn producer_summary(output: &Output) -> ProducerSummary {
    json_summary(output)
}

/// Sends `signal` to `child` (which must not have been waited for yet).
pub fn signal(child: &Child, signal: Signal) {
    kill_process(Pid::from_child(child), signal)
        .unwrap_or_else(|e| panic!("cannot send {signal:?} to process {}: {e}", child.id()));
}

/// Sends SIGTERM to `child` and waits for it to exit.
pub fn terminate(child: Child) -> Output {
    signal(&child, Signal::TERM);
    child.wait_with_output().expect("child exits")
}

/// Starts `stream-emulator` on a free loopback port with the shared recordings (and `args`);
/// returns the child and its port (read from its first line, `listening on http://ADDR`).
pub fn spawn_emulator(args: &[&str]) -> Emulator {
    let mut child = Command::new(binary("stream-emulator"))
        .args(["--listen", "127.0.0.1:0", "--data"])
        .arg(shared_data())
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
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
    /// The process.
    pub child: Child,
    /// Its loopback port.
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
