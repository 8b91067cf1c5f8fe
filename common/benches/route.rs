//! Routing cost per line on the real v1.1 stream recordings (`../shared/data/twitter_v1`),
//! printed beside two references measured in the same run on the same lines: serde_json
//! validating each line without building it (`IgnoredAny`, the least a validating router can
//! do with serde_json) and UTF-8 validation alone (the least any router can do). The consumer's
//! `parse_post` on the same lines is printed too.
//!
//! `cargo bench -p tweet-pipeline-common --bench route` (`ROUTE_BENCH_ROUNDS`, default 5;
//! the best round of each is printed). Not a test: nothing here passes or fails.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde::de::IgnoredAny;
use tweet_pipeline_common::{route_line, LineClass};

fn recordings() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/data/twitter_v1");
    let mut files: Vec<PathBuf> = ["stream_sample", "stream_filter"]
        .iter()
        .filter_map(|dir| std::fs::read_dir(root.join(dir)).ok())
        .flatten()
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .filter(|path| path.extension().is_some_and(|e| e == "jsonl"))
        .collect();
    files.sort();
    files
}

fn best(rounds: usize, lines: &[&[u8]], mut each: impl FnMut(&[u8]) -> usize) -> (Duration, usize) {
    let mut best = Duration::MAX;
    let mut hits = 0;
    for _ in 0..rounds {
        let started = Instant::now();
        hits = lines.iter().map(|line| each(line)).sum();
        best = best.min(started.elapsed());
    }
    (best, hits)
}

fn main() {
    let files = recordings();
    if files.is_empty() {
        eprintln!("route bench: no recordings under ../shared/data/twitter_v1 beside the checkout; nothing measured");
        std::process::exit(1);
    }
    let data: Vec<u8> = files
        .iter()
        .flat_map(|path| std::fs::read(path).unwrap_or_default())
        .collect();
    let lines: Vec<&[u8]> = data
        .split(|&b| b == b'\n')
        .map(|line| line.strip_suffix(b"\r").unwrap_or(line))
        .filter(|line| !line.is_empty())
        .collect();
    let bytes: usize = lines.iter().map(|line| line.len()).sum();
    let rounds = std::env::var("ROUTE_BENCH_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5);

    let (route, keyed) = best(rounds, &lines, |line| match route_line(line) {
        LineClass::Record(routed) => usize::from(routed.key.is_some()),
        LineClass::KeepAlive => 0,
    });
    let (validate, valid) = best(rounds, &lines, |line| {
        usize::from(serde_json::from_slice::<IgnoredAny>(line).is_ok())
    });
    let (parse, parsed) = best(rounds, &lines, |line| {
        usize::from(tweet_pipeline_common::post::parse_post(line).is_ok())
    });
    let (utf8, text) = best(rounds, &lines, |line| {
        usize::from(std::str::from_utf8(line).is_ok())
    });

    println!(
        "{} lines ({:.1} MB) from {} recordings, best of {rounds} rounds\n",
        lines.len(),
        bytes as f64 / 1e6,
        files.len()
    );
    println!("| step | µs per line | MB/s | lines counted |\n|---|---:|---:|---:|");
    for (name, elapsed, count) in [
        ("route_line (validate + route + key)", route, keyed),
        ("serde_json IgnoredAny (validate only)", validate, valid),
        (
            "parse_post (the consumer's parse; control lines fail fast)",
            parse,
            parsed,
        ),
        ("std::str::from_utf8 (UTF-8 only)", utf8, text),
    ] {
        let secs = elapsed.as_secs_f64();
        println!(
            "| {name} | {:.2} | {:.0} | {count} |",
            secs * 1e6 / lines.len() as f64,
            bytes as f64 / secs / 1e6
        );
    }
}
