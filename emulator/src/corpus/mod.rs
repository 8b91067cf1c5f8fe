//! The recordings the emulator serves, loaded once at start-up from the shared data folder
//! (`../shared/data`, see its `MANIFEST.md` for provenance).
//!
//! What is real, what is split and what is derived:
//!
//! - **v1.1** (`statuses/filter`): REAL. Every line of `twitter_v1/stream_sample/*.jsonl` and
//!   `twitter_v1/stream_filter/*.jsonl` (and of each `--v1-file`), in file order. Statuses are
//!   served as their original line bytes; delete, limit and other notices are interleaved where
//!   they appear. The malformed line is the real truncated body of
//!   `twitter_v1/raw_http/statuses_filter_2015-12-02T165907Z_truncated.body.decoded.txt`.
//! - **v2** (`/2/tweets/search/stream`), in this order:
//!   1. REAL stream lines of `x_api_v2/twarc-csv_test-data/streaming_output_with_error.jsonl`
//!      (their `data` and `includes` bytes kept as recorded; twarc's `__twarc` key and the
//!      recorded `matching_rules` dropped). Its truncated last line is the v2 malformed line.
//!   2. SPLIT from real search pages (`x_api_v2/twarc-csv_test-data/*.jsonl` lines that hold a
//!      `"data":[...]` array of posts, and `x_api_v2/twarc-hashtags_test-data_tweets1.jsonl`):
//!      one `{"data":post,"includes":{...}}` per post, whose `includes` keep only the users,
//!      posts, media, places and polls that post references. The post objects are real; the
//!      per-post envelope is made here.
//!   3. DERIVED from the v1.1 statuses above (not real v2 traffic): `data` =
//!      `{id, text, lang, created_at, author_id, referenced_tweets, edit_history_tweet_ids}`,
//!      `includes.users` = `[{id, name, username}]`, `includes.tweets` = the retweeted or quoted
//!      post, converted the same way. Nothing in the payload marks a post as derived.
//!
//!   Posts are de-duplicated by `data.id`, the first occurrence winning.
//! - **Mastodon** (streaming): REAL Status payloads, one per line, of
//!   `mastodon/rtoot_stream_public_mastodon.social_2022-11-21.jsonl` then
//!   `mastodon/rtoot_cassette_statuses.jsonl`, served as their original bytes and de-duplicated
//!   by `uri`. The malformed line is the real broken line 50 of
//!   `mastodon/rtoot_stream_public_malformed_2022-11-24.jsonl`. (The SSE framing and the
//!   `delete` / `status.update` events are synthetic; see `mastodon.rs`.)
//! - **Jetstream v1** (`/subscribe`): REAL events of
//!   `bluesky/jetstream-v1/bluesky-social_jetstream__corpus_expected_v1.jsonl` (or the
//!   `--jetstream-file` recordings), served as their original bytes, sorted by `time_us`; loaded
//!   on their own by `jetstream.rs` (optional: without them only `/subscribe` is unavailable).

use std::collections::HashSet;
use std::fs;
use std::path::{Path, PathBuf};

use bytes::Bytes;
use serde_json::Value;

use crate::rules::PostFields;

pub mod jetstream;
mod mastodon;
mod v1;
mod v2;

use mastodon::toot;
use v1::{is_v1_status, v1_track_text};
use v2::{derive_v2, real_stream_post, split_page};

/// Why the corpus could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum CorpusError {
    /// A file or folder could not be read.
    #[error("cannot read {path}")]
    Read {
        /// The file or folder.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// Nothing usable was found for one of the APIs.
    #[error("no {what} found under {dir}; pass --data pointing at the shared data folder")]
    Empty {
        /// Which corpus is empty.
        what: &'static str,
        /// The data folder.
        dir: PathBuf,
    },
}

/// One v2 stream message without `matching_rules`.
#[derive(Debug)]
pub struct V2Post {
    /// `{"data":{...},"includes":{...}}` (`includes` omitted when empty), compact JSON.
    pub json: String,
    /// What rules are matched against.
    pub fields: PostFields,
}

/// One line of the v1.1 stream.
#[derive(Debug)]
pub enum V1Item {
    /// A status.
    Status {
        /// The original line bytes followed by `\r\n`.
        line: Bytes,
        /// The text, full text, retweeted and quoted texts, lower-cased, for `track`.
        text: String,
        /// The status's `lang`, if any.
        lang: Option<String>,
    },
    /// A delete, limit or other notice: the original bytes followed by `\r\n`.
    Notice(Bytes),
}

/// One Mastodon status.
#[derive(Debug)]
pub struct Toot {
    /// The original Status JSON (one line, no terminator).
    pub json: Bytes,
    /// The status id.
    pub id: String,
    /// `tags[].name`, lower-cased.
    pub tags: Vec<String>,
    /// `content` with HTML tags removed, lower-cased.
    pub content: String,
    /// `account.acct` has no `@domain`: the account is local to the instance that served it.
    pub local: bool,
}

/// Everything the emulator serves.
#[derive(Debug)]
pub struct Corpus {
    /// v2 posts: real stream lines, then split search pages, then derived from v1.1.
    pub v2: Vec<V2Post>,
    /// The real truncated v2 stream line.
    pub v2_malformed: Bytes,
    /// v1.1 lines in file order.
    pub v1: Vec<V1Item>,
    /// A real cut-off v1.1 status.
    pub v1_malformed: Bytes,
    /// Mastodon statuses.
    pub mastodon: Vec<Toot>,
    /// The real broken Mastodon line.
    pub mastodon_malformed: Bytes,
    /// How many v2 posts came from each source: (stream, split, derived).
    pub v2_counts: (usize, usize, usize),
}

/// Loads the corpus from the shared data folder `dir` plus extra v1.1 recordings.
///
/// # Errors
/// [`CorpusError`] when a folder cannot be listed, a listed file cannot be read, or one of
/// the three corpora ends up empty. Lines that are not valid JSON are skipped (and counted in a
/// warning), except where they are kept as the malformed line.
pub fn load(dir: &Path, extra_v1: &[PathBuf]) -> Result<Corpus, CorpusError> {
    let mut v1_files = jsonl_files(&dir.join("twitter_v1/stream_sample"))?;
    v1_files.extend(jsonl_files(&dir.join("twitter_v1/stream_filter"))?);
    v1_files.extend(extra_v1.iter().cloned());

    let mut v1 = Vec::new();
    let mut v1_statuses = Vec::new();
    for path in &v1_files {
        let text = read(path)?;
        let mut bad = 0usize;
        for line in text.lines() {
            let line = line.trim_end_matches('\r');
            if line.trim().is_empty() {
                continue;
            }
            let Ok(value) = serde_json::from_str::<Value>(line) else {
                bad += 1;
                continue;
            };
            let framed = Bytes::from(format!("{line}\r\n"));
            if is_v1_status(&value) {
                v1.push(V1Item::Status {
                    line: framed,
                    text: v1_track_text(&value),
                    lang: value["lang"].as_str().map(str::to_owned),
                });
                v1_statuses.push(value);
            } else {
                v1.push(V1Item::Notice(framed));
            }
        }
        warn_skipped(path, bad);
    }

    let mut seen = HashSet::new();
    let mut v2 = Vec::new();
    let stream_path = dir.join("x_api_v2/twarc-csv_test-data/streaming_output_with_error.jsonl");
    let mut v2_malformed = None;
    if stream_path.exists() {
        for line in read(&stream_path)?.lines() {
            if line.trim().is_empty() {
                continue;
            }
            match real_stream_post(line) {
                Some(post) => push_v2(&mut v2, &mut seen, post),
                None => v2_malformed = Some(Bytes::from(format!("{line}\r\n"))),
            }
        }
    }
    let from_stream = v2.len();

    let mut page_files = jsonl_files(&dir.join("x_api_v2/twarc-csv_test-data"))?;
    page_files.retain(|path| path != &stream_path);
    page_files.push(dir.join("x_api_v2/twarc-hashtags_test-data_tweets1.jsonl"));
    for path in page_files.iter().filter(|path| path.exists()) {
        for line in read(path)?.lines() {
            let Ok(page) = serde_json::from_str::<Value>(line) else {
                continue;
            };
            for post in split_page(&page) {
                push_v2(&mut v2, &mut seen, post);
            }
        }
    }
    let from_pages = v2.len() - from_stream;
    for status in &v1_statuses {
        if let Some(post) = derive_v2(status) {
            push_v2(&mut v2, &mut seen, post);
        }
    }
    let derived = v2.len() - from_stream - from_pages;

    let mut mastodon = Vec::new();
    let mut uris = HashSet::new();
    for name in [
        "mastodon/rtoot_stream_public_mastodon.social_2022-11-21.jsonl",
        "mastodon/rtoot_cassette_statuses.jsonl",
    ] {
        let path = dir.join(name);
        if !path.exists() {
            continue;
        }
        for line in read(&path)?.lines() {
            let Ok(value) = serde_json::from_str::<Value>(line) else {
                continue;
            };
            let uri = value["uri"].as_str().unwrap_or_default().to_owned();
            if uri.is_empty() || uris.insert(uri) {
                if let Some(toot) = toot(line, &value) {
                    mastodon.push(toot);
                }
            }
        }
    }
    let malformed_path = dir.join("mastodon/rtoot_stream_public_malformed_2022-11-24.jsonl");
    let mastodon_malformed = if malformed_path.exists() {
        read(&malformed_path)?
            .lines()
            .nth(49)
            .map(|line| Bytes::from(line.to_owned()))
    } else {
        None
    };
    let v1_malformed_path = dir
        .join("twitter_v1/raw_http/statuses_filter_2015-12-02T165907Z_truncated.body.decoded.txt");
    let v1_malformed = if v1_malformed_path.exists() {
        let body = read(&v1_malformed_path)?;
        Some(Bytes::from(format!("{}\r\n", body.trim_end())))
    } else {
        None
    };

    let empty = |what| CorpusError::Empty {
        what,
        dir: dir.to_owned(),
    };
    if v1.is_empty() {
        return Err(empty("v1.1 recordings (twitter_v1/stream_*/*.jsonl)"));
    }
    if v2.is_empty() {
        return Err(empty("v2 posts"));
    }
    if mastodon.is_empty() {
        return Err(empty("Mastodon statuses (mastodon/*.jsonl)"));
    }
    // Fallbacks keep the malformed fault usable with a partial data folder: half a real line.
    let v2_malformed = v2_malformed.unwrap_or_else(|| cut_in_half(v2[0].json.as_bytes(), b"\r\n"));
    let v1_malformed = v1_malformed.unwrap_or_else(|| {
        let first = v1.iter().find_map(|item| match item {
            V1Item::Status { line, .. } => Some(line.clone()),
            V1Item::Notice(_) => None,
        });
        cut_in_half(&first.unwrap_or_default(), b"\r\n")
    });
    let mastodon_malformed =
        mastodon_malformed.unwrap_or_else(|| cut_in_half(&mastodon[0].json, b""));
    Ok(Corpus {
        v2,
        v2_malformed,
        v1,
        v1_malformed,
        mastodon,
        mastodon_malformed,
        v2_counts: (from_stream, from_pages, derived),
    })
}

fn read(path: &Path) -> Result<String, CorpusError> {
    let bytes = fs::read(path).map_err(|source| CorpusError::Read {
        path: path.to_owned(),
        source,
    })?;
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

/// The `*.jsonl` files of a folder, sorted by name; none when the folder does not exist.
fn jsonl_files(dir: &Path) -> Result<Vec<PathBuf>, CorpusError> {
    if !dir.exists() {
        return Ok(Vec::new());
    }
    let entries = fs::read_dir(dir).map_err(|source| CorpusError::Read {
        path: dir.to_owned(),
        source,
    })?;
    let mut files: Vec<PathBuf> = entries
        .filter_map(|entry| entry.ok().map(|entry| entry.path()))
        .filter(|path| path.extension().is_some_and(|ext| ext == "jsonl"))
        .collect();
    files.sort();
    Ok(files)
}

fn warn_skipped(path: &Path, bad: usize) {
    if bad > 0 {
        tracing::warn!(path = %path.display(), lines = bad, "skipped lines that are not JSON");
    }
}

fn cut_in_half(line: &[u8], terminator: &[u8]) -> Bytes {
    let trimmed = line.strip_suffix(b"\r\n").unwrap_or(line);
    let mut cut = trimmed[..trimmed.len() / 2].to_vec();
    cut.extend_from_slice(terminator);
    Bytes::from(cut)
}

fn push_v2(v2: &mut Vec<V2Post>, seen: &mut HashSet<String>, post: (String, V2Post)) {
    let (id, post) = post;
    if seen.insert(id) {
        v2.push(post);
    }
}
