//! The `tweet-consumer` library: consumer groups that read the pipeline's topics at least once
//! and act on every record, and the offline subcommands over what they stored.
//!
//! - [`runner`]: the at-least-once loop every role runs on, its consumer lag gauge
//!   ([`runner::lag`]) and the dead letters and tombstones it writes back ([`runner::outputs`]);
//! - [`role`]: one module per consumer-group role ([`role::analysis`], [`role::archive`]);
//! - [`text`]: text analysis (cleaning, language identification, VADER sentiment);
//! - [`store`]: one row per post id, in SQLite or PostgreSQL;
//! - [`offline`]: `stats`, `report` and `eval`;
//! - [`compliance`]: `tweet-consumer compliance`, X API v2 batch compliance for the store;
//! - the `poster` role lives in the scheduler crate (`tweet_pipeline_scheduler::poster`);
//! - [`cli`] (the flags) and [`summary`] (what a run prints at the end, as text or JSON).
//!
//! The `tweet-consumer` binary (`src/main.rs`) only parses its command line, wires these
//! pieces together and prints the run's summary.

pub mod cli;
pub mod compliance;
pub mod offline;
pub mod role;
pub mod runner;
pub mod store;
pub mod summary;
pub mod text;
