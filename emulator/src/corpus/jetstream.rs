//! The Jetstream v1 side of the corpus: the recorded `/subscribe` events, one JSON object a
//! line, kept as their original bytes and put in `time_us` order.
//!
//! The default recording is `bluesky/jetstream-v1/bluesky-social_jetstream__corpus_expected_v1.jsonl`
//! of the shared data folder (152 real events of one contiguous 0.32 s window; see
//! `bluesky/MANIFEST.md`). That file is in relay-seq order and has 42 `time_us` inversions,
//! while a live Jetstream assigns `time_us` at ingestion ("witnessed_at ... monotonic with the
//! sequence number", bluesky-social/jetstream `docs/README.md` §8), so a live v1 stream is
//! monotonic in `time_us`. The events are therefore served stably sorted by `time_us`.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::{read, warn_skipped, CorpusError};

/// The default Jetstream v1 recording, relative to the shared data folder.
pub const DEFAULT_JETSTREAM_FILE: &str =
    "bluesky/jetstream-v1/bluesky-social_jetstream__corpus_expected_v1.jsonl";

/// One recorded Jetstream v1 event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JetstreamEvent {
    /// The recorded line, unchanged (no terminator): the text frame sent.
    pub line: String,
    /// `time_us`: unix microseconds, the v1 cursor.
    pub time_us: i64,
    /// `did`: the repo the event is about.
    pub did: String,
    /// `kind`: `commit`, `identity` or `account` (Jetstream README, "Example events").
    pub kind: String,
    /// `commit.collection`, `commit.rkey`, `commit.operation` of a commit event.
    pub commit: Option<CommitKey>,
}

/// What identifies a commit event's record.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct CommitKey {
    /// The collection NSID, e.g. `app.bsky.feed.post`.
    pub collection: String,
    /// The record key.
    pub rkey: String,
    /// `create`, `update` or `delete`.
    pub operation: String,
}

#[derive(Deserialize)]
struct Envelope {
    did: String,
    time_us: i64,
    kind: String,
    #[serde(default)]
    commit: Option<CommitKey>,
}

/// The recordings to serve: `explicit` when given (`--jetstream-file`), else the default file
/// of the data folder `dir` if it exists, else none (the Jetstream endpoint is then
/// unavailable).
pub fn files(dir: &Path, explicit: &[PathBuf]) -> Vec<PathBuf> {
    if !explicit.is_empty() {
        return explicit.to_vec();
    }
    let default = dir.join(DEFAULT_JETSTREAM_FILE);
    if default.is_file() {
        vec![default]
    } else {
        Vec::new()
    }
}

/// Loads the events of `files` (in file order, then stably sorted by `time_us`); `None` when
/// there are no files.
///
/// # Errors
/// [`CorpusError::Read`] when a file cannot be read; [`CorpusError::Empty`] when the files
/// hold no Jetstream event. Lines that are not a Jetstream event (JSON with `did`, `time_us`
/// and `kind`) are skipped and counted in a warning.
pub fn load(files: &[PathBuf]) -> Result<Option<Vec<JetstreamEvent>>, CorpusError> {
    let Some(first) = files.first() else {
        return Ok(None);
    };
    let mut events = Vec::new();
    for path in files {
        let (parsed, bad) = parse_lines(&read(path)?);
        warn_skipped(path, bad);
        events.extend(parsed);
    }
    if events.is_empty() {
        return Err(CorpusError::Empty {
            what: "Jetstream events",
            dir: first.clone(),
        });
    }
    sort_by_time(&mut events);
    Ok(Some(events))
}

/// The events of a JSON-lines text and how many non-blank lines were not events.
pub fn parse_lines(text: &str) -> (Vec<JetstreamEvent>, usize) {
    let mut events = Vec::new();
    let mut bad = 0;
    for line in text.lines() {
        let line = line.trim_end_matches('\r');
        if line.trim().is_empty() {
            continue;
        }
        match serde_json::from_str::<Envelope>(line) {
            Ok(envelope) => {
                let is_commit = envelope.kind == "commit";
                events.push(JetstreamEvent {
                    line: line.to_owned(),
                    time_us: envelope.time_us,
                    did: envelope.did,
                    kind: envelope.kind,
                    commit: envelope.commit.filter(|_| is_commit),
                });
            }
            Err(_) => bad += 1,
        }
    }
    (events, bad)
}

/// Stable sort by `time_us`: events with equal times keep their recorded order.
pub fn sort_by_time(events: &mut [JetstreamEvent]) {
    events.sort_by_key(|event| event.time_us);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_parse_and_sort_stably_by_time() {
        let text = concat!(
            r#"{"did":"did:plc:a","time_us":30,"kind":"commit","commit":{"rev":"r","operation":"create","collection":"app.bsky.feed.post","rkey":"k1","record":{},"cid":"c"}}"#,
            "\n\n",
            r#"{"did":"did:plc:b","time_us":10,"kind":"identity","identity":{"did":"did:plc:b","seq":1,"time":"t"}}"#,
            "\nnot json\n",
            r#"{"did":"did:plc:c","time_us":30,"kind":"account","account":{"active":true}}"#,
            "\r\n",
        );
        let (mut events, bad) = parse_lines(text);
        assert_eq!(bad, 1);
        sort_by_time(&mut events);
        let order: Vec<_> = events.iter().map(|e| e.did.as_str()).collect();
        assert_eq!(order, ["did:plc:b", "did:plc:a", "did:plc:c"]);
        assert_eq!(
            events[1].commit.as_ref().map(|c| c.collection.as_str()),
            Some("app.bsky.feed.post")
        );
        assert!(events[1]
            .line
            .starts_with(r#"{"did":"did:plc:a","time_us":30"#));
        assert!(events[2].line.ends_with("}}"));
    }
}
