//! The properties the fuzz targets assert, one `check_*` function per target.
//!
//! The same file is compiled into `common/tests/fuzz_corpus.rs`, which replays `fuzz/corpus/*`,
//! `fuzz/regressions/*` and generated adversarial inputs through these functions on stable
//! Rust in every `cargo test`, so a crash the fuzzer found stays fixed.

mod checks;

pub use checks::*;
