//! Logging set-up: `tracing` to stderr, filtered by `RUST_LOG` (default `info`), so that stdout
//! carries only a program's output (summaries, tables).

use tracing_subscriber::EnvFilter;

/// Installs the global `tracing` subscriber. Call once, first thing in `main`.
pub fn init() {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .init();
}
