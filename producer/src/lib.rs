//! The `tweet-producer` library: reads a social stream and writes every line, unchanged, to
//! Kafka, routed by field inspection (tweets, retweets, control, deadletter).
//!
//! - [`source`]: where lines come from (the X API v2 and v1.1 streams, Mastodon, a recording)
//!   and how a live connection is kept up ([`source::reconnect`]);
//! - [`budget`]: the X read budget (reads per UTC day and month, the pause, the usage cap);
//! - [`ingest`]: from a framed line to a routed record, shared by every source;
//! - [`delivery`]: the idempotent Kafka producer, its delivery reports and the spill to disk;
//! - [`spool`]: the on-disk queue records wait in while Kafka cannot take them;
//! - [`cli`] (the flags), [`run`] (one run, from flags to summary) and [`summary`] (the
//!   [`summary::ProducerSummary`] printed at the end, as text or JSON).
//!
//! The `tweet-producer` binary (`src/main.rs`) only parses its command line, wires these
//! pieces together and prints the run's summary.

pub mod budget;
pub mod cli;
pub mod delivery;
pub mod ingest;
pub mod run;
pub mod source;
pub mod spool;
pub mod summary;
