//! The fuzz targets' properties on stable Rust, in every `cargo test`: replays every file of
//! `fuzz/corpus/<target>/` and `fuzz/regressions/<target>/` through the same `check_*`
//! functions the cargo-fuzz targets run (`fuzz/src/checks.rs`, included below), then generated
//! adversarial inputs: deeply nested JSON, invalid UTF-8, NUL bytes, lines over 512 KiB,
//! truncated objects (every prefix of a real line) and line ends split every way.
//!
//! The committed corpus holds only hand-written `seed-*` files; `fuzz/seed.sh` adds seeds cut
//! from `../shared/data` locally, and they are replayed here too when present.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};

#[allow(dead_code)]
#[path = "../../fuzz/src/checks.rs"]
mod checks;

use checks::{check_line_framer, check_mastodon_event, check_parse_post, check_route_line};

/// A target's property check: panics when a property fails.
type Check = fn(&[u8]);

/// The targets, by their corpus directory name.
const TARGETS: [(&str, Check); 4] = [
    ("route_line", check_route_line),
    ("mastodon_event", check_mastodon_event),
    ("line_framer", check_line_framer),
    ("parse_post", check_parse_post),
];

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz")
}

/// Fails the test with the first few failures (each shortened) and their count.
fn assert_none(failures: &[String]) {
    if failures.is_empty() {
        return;
    }
    let shown: Vec<String> = failures
        .iter()
        .take(10)
        .map(|f| f.chars().take(600).collect())
        .collect();
    panic!(
        "{} failures, the first {}:\n{}",
        failures.len(),
        shown.len(),
        shown.join("\n")
    );
}

/// Runs `check` on `input`; a panic becomes an `Err` naming `what`.
fn run(what: &str, check: Check, input: &[u8]) -> Result<(), String> {
    catch_unwind(AssertUnwindSafe(|| check(input))).map_err(|panic| {
        let message = panic
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| panic.downcast_ref::<&str>().copied())
            .unwrap_or("(no message)");
        format!("{what}: {message}")
    })
}

fn files(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = entries
        .map(|entry| entry.expect("readable fuzz directory entry").path())
        .filter(|path| path.is_file())
        .collect();
    files.sort();
    files
}

#[test]
fn corpus_and_regressions_replay_without_failures() {
    let mut failures = Vec::new();
    for (target, check) in TARGETS {
        let corpus = files(&fuzz_dir().join("corpus").join(target));
        assert!(
            corpus.iter().any(|path| path
                .file_name()
                .is_some_and(|name| name.to_string_lossy().starts_with("seed-"))),
            "fuzz/corpus/{target} has no committed seed-* file"
        );
        let regressions = files(&fuzz_dir().join("regressions").join(target));
        for path in corpus.iter().chain(&regressions) {
            let input = std::fs::read(path).expect("readable corpus file");
            if let Err(failure) = run(&path.display().to_string(), check, &input) {
                failures.push(failure);
            }
        }
        eprintln!(
            "{target}: {} corpus files, {} regressions replayed",
            corpus.len(),
            regressions.len()
        );
    }
    assert_none(&failures);
}

/// Checks `input` as a line, a Mastodon `update` payload, a post payload and a stream (512 KiB
/// and 17-byte lines), collecting failures.
fn check_everywhere(name: &str, input: &[u8], failures: &mut Vec<String>) {
    let mut as_update = b"update\n".to_vec();
    as_update.extend_from_slice(input);
    let mut as_stream = vec![0x80, 0x07];
    as_stream.extend_from_slice(input);
    let mut as_short_lines = vec![0x10, 0x2a];
    as_short_lines.extend_from_slice(input);
    let cases: [(&str, Check, &[u8]); 5] = [
        ("route_line", check_route_line, input),
        ("mastodon_event", check_mastodon_event, &as_update),
        ("parse_post", check_parse_post, input),
        ("line_framer/512KiB", check_line_framer, &as_stream),
        ("line_framer/17B", check_line_framer, &as_short_lines),
    ];
    for (target, check, bytes) in cases {
        if let Err(failure) = run(&format!("{target} on {name}"), check, bytes) {
            failures.push(failure);
        }
    }
}

#[test]
fn adversarial_inputs_are_classified_without_panics() {
    let deep = |open: &str, n: usize| open.repeat(n).into_bytes();
    let nested_status = |n: usize| {
        let mut s = r#"{"id_str":"1","text":"t","retweeted_status":"#.repeat(n);
        s.push_str(r#"{"id_str":"0","text":"x"}"#);
        s.push_str(&"}".repeat(n));
        s.into_bytes()
    };
    let long_string = |len: usize| {
        let mut s = br#"{"id_str":"1","text":""#.to_vec();
        s.resize(s.len() + len, b'a');
        s.extend_from_slice(br#""}"#);
        s
    };
    let inputs: Vec<(&str, Vec<u8>)> = vec![
        ("100k [", deep("[", 100_000)),
        ("100k [ closed", [deep("[", 100_000), deep("]", 100_000)].concat()),
        ("100k {\"a\":", deep("{\"a\":", 100_000)),
        ("100 nested retweets", nested_status(100)),
        ("200 nested retweets", nested_status(200)),
        ("100k nested retweets", nested_status(100_000)),
        ("invalid utf-8", b"\xff\xfe\xfd".to_vec()),
        ("invalid utf-8 in a string", b"{\"id_str\":\"1\",\"text\":\"\xc3\x28\"}".to_vec()),
        ("overlong utf-8", b"{\"id_str\":\"\xc0\xaf\",\"text\":\"x\"}".to_vec()),
        ("lone surrogate escape", br#"{"id_str":"1","text":"\ud800"}"#.to_vec()),
        ("NUL", b"\0".to_vec()),
        ("NULs", vec![0; 4096]),
        ("NUL in a key", b"{\"id_str\0\":\"1\",\"text\":\"x\"}".to_vec()),
        ("NUL escaped", br#"{"id_str":"1\u0000","text":"a\u0000"}"#.to_vec()),
        ("line over 512 KiB", long_string(600 * 1024)),
        ("line of 512 KiB exactly", vec![b'x'; 512 * 1024]),
        ("CR only", b"\r\r\r".to_vec()),
        ("CRLF at every position", b"a\r\nb\rc\n\r\n\r\r\n\n\r".to_vec()),
        ("huge number id", br#"{"id":1e400,"text":"x"}"#.to_vec()),
        ("u64 overflow id", br#"{"id":18446744073709551616,"text":"x"}"#.to_vec()),
        ("negative id", br#"{"id":-1,"text":"x"}"#.to_vec()),
        ("duplicate keys", br#"{"id_str":"1","id_str":"2","text":"x"}"#.to_vec()),
        ("html stray <", b"<p>a < b &lt; c</p><br".to_vec()),
        ("html entities", b"&#x110000;&#0;&#xD800;&amp&lt;&nGt;&".to_vec()),
        (
            "mastodon html payload",
            br#"{"id":"1","content":"<p>x<br/><a href=\"<>\">&amp;</a>","reblog":{"id":"2","content":"<"}}"#
                .to_vec(),
        ),
    ];
    let mut failures = Vec::new();
    for (name, input) in &inputs {
        check_everywhere(name, input, &mut failures);
    }
    assert_none(&failures);
}

/// Every prefix of every committed seed (and of a recorded v1.1 status when `../shared/data` is
/// present): the truncated objects a dropped connection leaves.
#[test]
fn every_prefix_of_a_real_line_is_classified() {
    let mut lines: Vec<(String, Vec<u8>)> = Vec::new();
    for (target, _) in TARGETS {
        for path in files(&fuzz_dir().join("corpus").join(target)) {
            if path
                .file_name()
                .is_some_and(|name| name.to_string_lossy().starts_with("seed-"))
            {
                lines.push((
                    path.display().to_string(),
                    std::fs::read(&path).expect("readable seed"),
                ));
            }
        }
    }
    // The shared data folder, as the end-to-end tests (e2e/tests/support) find it.
    let data = std::env::var_os("TWEET_PIPELINE_DATA")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/data"));
    let recording = data.join("twitter_v1/stream_sample/sample_2013-05-07_brebory.jsonl");
    if let Ok(bytes) = std::fs::read(&recording) {
        if let Some(line) = bytes.split(|b| *b == b'\n').next() {
            lines.push((recording.display().to_string(), line.to_vec()));
        }
    }
    let mut failures = Vec::new();
    for (name, line) in &lines {
        for end in 0..=line.len() {
            check_everywhere(&format!("{name}[..{end}]"), &line[..end], &mut failures);
        }
    }
    assert_none(&failures);
}
