//! Helpers shared by the end-to-end tests, one module per concern: [`kafka`] (the broker
//! address, fresh topics per test, reading records and group offsets back), [`process`] (the
//! binaries, found through cargo; their summaries; signals; the stream emulator), [`http`]
//! (free ports, `/metrics` scrapes, requests to the emulator), [`poster`] (the scheduled-post
//! poster against the emulator) and [`store`] (the SQLite
//! store). Everything is re-exported here, so a test file says `use support::{...}`.
//!
//! The shared recordings: `TWEET_PIPELINE_DATA`, else `../shared/data` beside the checkout.
#![allow(dead_code, unused_imports)] // each test file uses its own subset (re-exports too)

pub mod http;
pub mod kafka;
pub mod poster;
pub mod process;
pub mod store;

use std::path::{Path, PathBuf};

pub use http::{free_ports, get, http, sample, scrape};
pub use kafka::{
    assert_group_at_end, bootstrap, create_schedule_topics, create_topics, create_topics_on,
    delete_schedule_topics, delete_topics, from_beginning, group_at_end, group_positions,
    read_back, topic_flags, GroupPosition, Record, PARTITIONS,
};
pub use poster::{emulator_x_posts, spawn_poster, PosterProcess, EMULATOR_CREDENTIALS};
pub use process::{
    analysis_summary, analysis_to_end, archive_summary, binary, consumer_command, json_summary,
    producer_command, producer_summary, run, signal, spawn_emulator, terminate, Emulator,
};
pub use store::stored_ids;

/// The environment variable naming the shared data folder (the one holding MANIFEST.md and
/// `twitter_v1/`); the emulator reads the same variable.
pub const DATA_ENV: &str = "TWEET_PIPELINE_DATA";

/// The shared data folder: `$TWEET_PIPELINE_DATA`, else `../shared/data` beside the checkout.
///
/// # Panics
/// When the folder has no `twitter_v1/`, with where it looked and how to point elsewhere.
pub fn shared_data() -> PathBuf {
    let dir = std::env::var_os(DATA_ENV)
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join("../shared/data"));
    assert!(
        dir.join("twitter_v1").is_dir(),
        "shared recordings not found at {}: put shared/ beside the checkout or set {DATA_ENV}",
        dir.display()
    );
    dir
}

/// The checkout's root folder (the workspace, one level above this crate).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// `prefix-<pid>-<nanoseconds since the epoch>`: a name no other test (or run) uses.
pub fn unique(prefix: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("{prefix}-{}-{nanos}", std::process::id())
}
