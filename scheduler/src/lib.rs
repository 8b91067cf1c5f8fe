//! Scheduled posts, end to end: queued by `tweet-producer schedule`, posted exactly once by
//! `tweet-consumer --group poster`.
//!
//! - [`model`]: the records of the compacted `scheduled` and `scheduled-results` topics (pure
//!   data, serde) and the stable post id;
//! - [`queue`]: their Kafka I/O (enqueue, cancel with a tombstone, read a topic to its end);
//! - [`plan`]: from drafts to a validated plan (slots, time zones, draft files, X's weighted
//!   length);
//! - [`command`]: the `schedule` subcommand (its clap arguments and `run`);
//! - [`poster`]: the poster's loop, over the pure decisions of [`poster::decide`], its SQLite
//!   copy of each post's state and its X API client.
//!
//! The binaries only call in: `tweet-producer schedule ...` runs [`command::run`], and
//! `tweet-consumer --group poster` runs [`poster::run`].

pub mod command;
pub mod model;
pub mod plan;
pub mod poster;
pub mod queue;
