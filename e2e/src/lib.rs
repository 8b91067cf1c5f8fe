//! `tweet-pipeline-e2e`: the tests that span binaries, and nothing else. Each file in `tests/`
//! runs the release binaries (`tweet-producer`, `tweet-consumer`, `stream-emulator`) as an
//! operator would, against a real Kafka broker (`KAFKA_BOOTSTRAP`, default `127.0.0.1:9092`)
//! and the shared recordings (`TWEET_PIPELINE_DATA`, default `../shared/data` beside the
//! checkout); `tests/deploy.rs` checks the deployment files with the tools that read them.
//!
//! Build the binaries first, then run the tests:
//!
//! ```text
//! cargo build --release --locked --bins
//! cargo test --release --locked -p tweet-pipeline-e2e
//! ```
//!
//! The helpers live in `tests/support/` (kafka, process, http, store), not in this library:
//! they are test code that panics with a message on any failure, which the house rules for a
//! library's public API (errors, not panics) would only get in the way of.
