//! Shared building blocks of tweet-pipeline: the stream message model and routing by field
//! inspection, line framing, Kafka client configuration, the one Prometheus registry, logging
//! and shutdown.
//!
//! The binaries (`tweet-producer`, `tweet-consumer`) only parse their command line, wire these
//! pieces together and run.

pub mod backoff;
pub mod bluesky;
pub mod compliance;
pub mod config;
pub mod emoji;
pub mod framing;
pub mod headers;
#[cfg(feature = "kafka")]
pub mod kafka;
pub mod metrics;
pub mod post;
pub mod route;
pub mod rule;
pub mod secret;
pub mod shutdown;
pub mod telemetry;

pub use route::{
    route_line, route_mastodon_event, Destination, Kind, LineClass, PerDestination, Routed,
};
