//! Logging set-up: `tracing` to stderr, filtered by `RUST_LOG` (default `info`), so that stdout
//! carries only a program's output (summaries, tables).

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

/// Installs the global `tracing` subscriber. Call once, first thing in `main`.
pub fn init() {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        // Colours only for a person at a terminal, not in files, pipes or journald.
        .with_ansi(std::io::stderr().is_terminal())
        .with_target(false)
        .init();
}
