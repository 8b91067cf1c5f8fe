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

use std::collections::{HashMap, HashSet};
use std::fs;
use std::path::{Path, PathBuf};

use bytes::Bytes;
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{json, Map, Value};

use crate::rules::PostFields;

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

fn is_v1_status(value: &Value) -> bool {
    value.get("user").is_some_and(Value::is_object)
        && (value.get("text").is_some() || value.get("full_text").is_some())
}

/// The full text of a v1.1 status: `extended_tweet.full_text` when truncated, else
/// `full_text` or `text` (X API v1.1 "Extended Tweets").
fn v1_full_text(status: &Value) -> &str {
    status["extended_tweet"]["full_text"]
        .as_str()
        .or_else(|| status["full_text"].as_str())
        .or_else(|| status["text"].as_str())
        .unwrap_or_default()
}

fn v1_track_text(status: &Value) -> String {
    let mut text = v1_full_text(status).to_lowercase();
    for nested in ["retweeted_status", "quoted_status"] {
        if status[nested].is_object() {
            text.push('\n');
            text.push_str(&v1_full_text(&status[nested]).to_lowercase());
        }
    }
    text
}

fn id_str(value: &Value) -> Option<String> {
    value["id_str"]
        .as_str()
        .map(str::to_owned)
        .or_else(|| value["id"].as_u64().map(|id| id.to_string()))
}

/// `Sun May 05 18:04:07 +0000 2013` -> `2013-05-05T18:04:07.000Z`.
fn v1_time_to_rfc3339(created_at: &str) -> Option<String> {
    let time = chrono::DateTime::parse_from_str(created_at, "%a %b %d %H:%M:%S %z %Y").ok()?;
    Some(
        time.with_timezone(&chrono::Utc)
            .format("%Y-%m-%dT%H:%M:%S%.3fZ")
            .to_string(),
    )
}

/// A v1.1 status as a v2 post object (`data` or an `includes.tweets` entry).
fn v2_tweet_of(status: &Value) -> Option<Map<String, Value>> {
    let id = id_str(status)?;
    let mut tweet = Map::new();
    tweet.insert("id".into(), json!(id));
    tweet.insert("text".into(), json!(v1_full_text(status)));
    if let Some(lang) = status["lang"].as_str() {
        tweet.insert("lang".into(), json!(lang));
    }
    if let Some(created_at) = status["created_at"].as_str().and_then(v1_time_to_rfc3339) {
        tweet.insert("created_at".into(), json!(created_at));
    }
    if let Some(author) = id_str(&status["user"]) {
        tweet.insert("author_id".into(), json!(author));
    }
    tweet.insert("edit_history_tweet_ids".into(), json!([id]));
    Some(tweet)
}

fn v2_user_of(status: &Value) -> Option<Value> {
    let user = &status["user"];
    Some(json!({
        "id": id_str(user)?,
        "name": user["name"].as_str().unwrap_or_default(),
        "username": user["screen_name"].as_str().unwrap_or_default(),
    }))
}

/// A v2 stream message derived from a v1.1 status (see the module docs).
fn derive_v2(status: &Value) -> Option<(String, V2Post)> {
    let mut data = v2_tweet_of(status)?;
    let id = data["id"].as_str()?.to_owned();
    let mut users = Vec::new();
    users.extend(v2_user_of(status));
    let mut tweets = Vec::new();
    let mut referenced = Vec::new();
    let retweeted = &status["retweeted_status"];
    if retweeted.is_object() {
        let original = v2_tweet_of(retweeted)?;
        let author = retweeted["user"]["screen_name"]
            .as_str()
            .unwrap_or_default();
        data.insert(
            "text".into(),
            json!(format!("RT @{author}: {}", v1_full_text(retweeted))),
        );
        if !data.contains_key("lang") {
            if let Some(lang) = original.get("lang") {
                data.insert("lang".into(), lang.clone());
            }
        }
        referenced.push(json!({"type": "retweeted", "id": original["id"]}));
        tweets.push(Value::Object(original));
        users.extend(v2_user_of(retweeted));
    } else {
        if let Some(quoted_id) = status["quoted_status_id_str"].as_str() {
            referenced.push(json!({"type": "quoted", "id": quoted_id}));
            let quoted = &status["quoted_status"];
            if let Some(original) = quoted.is_object().then(|| v2_tweet_of(quoted)).flatten() {
                tweets.push(Value::Object(original));
                users.extend(v2_user_of(quoted));
            }
        }
        if let Some(reply_to) = status["in_reply_to_status_id_str"].as_str() {
            referenced.push(json!({"type": "replied_to", "id": reply_to}));
        }
    }
    if !referenced.is_empty() {
        data.insert("referenced_tweets".into(), Value::Array(referenced));
    }
    let mut unique = HashSet::new();
    users.retain(|user| unique.insert(user["id"].as_str().unwrap_or_default().to_owned()));
    let mut includes = Map::new();
    includes.insert("users".into(), Value::Array(users));
    if !tweets.is_empty() {
        includes.insert("tweets".into(), Value::Array(tweets));
    }
    let data = Value::Object(data);
    let includes = Value::Object(includes);
    let fields = v2_fields(&data, Some(&includes));
    let json = json!({"data": data, "includes": includes}).to_string();
    Some((id, V2Post { json, fields }))
}

#[derive(Deserialize)]
struct RecordedStreamLine<'a> {
    #[serde(borrow)]
    data: &'a RawValue,
    #[serde(borrow, default)]
    includes: Option<&'a RawValue>,
}

/// A real v2 stream line with its `data` and `includes` bytes kept; `None` when the line is
/// not a complete stream message (the recording's truncated last line).
fn real_stream_post(line: &str) -> Option<(String, V2Post)> {
    let recorded: RecordedStreamLine<'_> = serde_json::from_str(line).ok()?;
    let data: Value = serde_json::from_str(recorded.data.get()).ok()?;
    let includes: Option<Value> = recorded
        .includes
        .and_then(|raw| serde_json::from_str(raw.get()).ok());
    let id = data["id"].as_str()?.to_owned();
    let json = match recorded.includes {
        Some(includes) => format!(
            "{{\"data\":{},\"includes\":{}}}",
            recorded.data.get(),
            includes.get()
        ),
        None => format!("{{\"data\":{}}}", recorded.data.get()),
    };
    let fields = v2_fields(&data, includes.as_ref());
    Some((id, V2Post { json, fields }))
}

/// One stream message per post of a search page, with the expansions that post references.
fn split_page(page: &Value) -> Vec<(String, V2Post)> {
    let Some(posts) = page["data"].as_array() else {
        return Vec::new();
    };
    let includes = &page["includes"];
    let index = |kind: &str, key: &str| -> HashMap<String, &Value> {
        includes[kind]
            .as_array()
            .map(|items| {
                items
                    .iter()
                    .filter_map(|item| Some((item[key].as_str()?.to_owned(), item)))
                    .collect()
            })
            .unwrap_or_default()
    };
    let users = index("users", "id");
    let tweets = index("tweets", "id");
    let media = index("media", "media_key");
    let places = index("places", "id");
    let polls = index("polls", "id");
    let strings = |value: &Value| -> Vec<String> {
        value
            .as_array()
            .map(|items| {
                items
                    .iter()
                    .filter_map(|item| item.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    };

    let mut out = Vec::new();
    for post in posts.iter().filter(|post| post["text"].is_string()) {
        let Some(id) = post["id"].as_str() else {
            continue;
        };
        let referenced_tweets: Vec<&Value> = post["referenced_tweets"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|reference| tweets.get(reference["id"].as_str()?).copied())
            .collect();
        let mut user_ids: Vec<String> = Vec::new();
        let mut add_user = |id: Option<&str>| {
            if let Some(id) = id {
                if users.contains_key(id) && !user_ids.iter().any(|known| known == id) {
                    user_ids.push(id.to_owned());
                }
            }
        };
        add_user(post["author_id"].as_str());
        add_user(post["in_reply_to_user_id"].as_str());
        for mention in post["entities"]["mentions"]
            .as_array()
            .into_iter()
            .flatten()
        {
            add_user(mention["id"].as_str());
        }
        for tweet in &referenced_tweets {
            add_user(tweet["author_id"].as_str());
        }
        let mut expansions = Map::new();
        let mut put = |name: &str, items: Vec<Value>| {
            if !items.is_empty() {
                expansions.insert(name.to_owned(), Value::Array(items));
            }
        };
        put(
            "users",
            user_ids
                .iter()
                .map(|id| users[id.as_str()].clone())
                .collect(),
        );
        put(
            "tweets",
            referenced_tweets.iter().map(|t| (*t).clone()).collect(),
        );
        put(
            "media",
            strings(&post["attachments"]["media_keys"])
                .iter()
                .filter_map(|key| media.get(key.as_str()).map(|m| (*m).clone()))
                .collect(),
        );
        put(
            "places",
            post["geo"]["place_id"]
                .as_str()
                .and_then(|place| places.get(place))
                .map(|place| vec![(*place).clone()])
                .unwrap_or_default(),
        );
        put(
            "polls",
            strings(&post["attachments"]["poll_ids"])
                .iter()
                .filter_map(|key| polls.get(key.as_str()).map(|p| (*p).clone()))
                .collect(),
        );
        let (message, includes) = if expansions.is_empty() {
            (json!({"data": post}), None)
        } else {
            let includes = Value::Object(expansions);
            (json!({"data": post, "includes": includes}), Some(includes))
        };
        let fields = v2_fields(post, includes.as_ref());
        out.push((
            id.to_owned(),
            V2Post {
                json: message.to_string(),
                fields,
            },
        ));
    }
    out
}

fn v2_fields(data: &Value, includes: Option<&Value>) -> PostFields {
    let has_reference = |kind: &str| {
        data["referenced_tweets"]
            .as_array()
            .is_some_and(|refs| refs.iter().any(|r| r["type"] == kind))
    };
    let author = data["author_id"].as_str().and_then(|author_id| {
        includes?["users"]
            .as_array()?
            .iter()
            .find(|user| user["id"] == author_id)?["username"]
            .as_str()
            .map(str::to_lowercase)
    });
    PostFields {
        text: data["text"].as_str().unwrap_or_default().to_lowercase(),
        lang: data["lang"].as_str().map(str::to_owned),
        author,
        is_retweet: has_reference("retweeted"),
        is_reply: has_reference("replied_to"),
        is_quote: has_reference("quoted"),
    }
}

fn toot(line: &str, status: &Value) -> Option<Toot> {
    let id = status["id"].as_str()?.to_owned();
    let tags = status["tags"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|tag| tag["name"].as_str().map(str::to_lowercase))
        .collect();
    let acct = status["account"]["acct"].as_str().unwrap_or_default();
    Some(Toot {
        json: Bytes::from(line.to_owned()),
        id,
        tags,
        content: strip_html(status["content"].as_str().unwrap_or_default()).to_lowercase(),
        local: !acct.contains('@'),
    })
}

/// Mastodon's `content` is HTML (`#<span>tag</span>`); matching wants the text.
fn strip_html(html: &str) -> String {
    let mut text = String::with_capacity(html.len());
    let mut in_tag = false;
    for c in html.chars() {
        match c {
            '<' => in_tag = true,
            '>' if in_tag => in_tag = false,
            _ if !in_tag => text.push(c),
            _ => {}
        }
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v1_times_become_rfc3339() {
        assert_eq!(
            v1_time_to_rfc3339("Sun May 05 18:04:07 +0000 2013").as_deref(),
            Some("2013-05-05T18:04:07.000Z")
        );
        assert_eq!(v1_time_to_rfc3339("yesterday"), None);
    }

    #[test]
    fn retweets_are_derived_with_their_original() {
        let status = json!({
            "created_at": "Sun May 05 18:04:07 +0000 2013",
            "id": 1u64, "id_str": "1", "text": "RT @orig: short…", "lang": "en",
            "user": {"id_str": "10", "name": "Ten", "screen_name": "ten"},
            "retweeted_status": {
                "created_at": "Sun May 05 18:00:00 +0000 2013",
                "id_str": "2", "text": "short", "truncated": true,
                "extended_tweet": {"full_text": "the whole original text"},
                "user": {"id_str": "20", "name": "Orig", "screen_name": "orig"}
            }
        });
        let (id, post) = derive_v2(&status).unwrap();
        assert_eq!(id, "1");
        let message: Value = serde_json::from_str(&post.json).unwrap();
        assert_eq!(message["data"]["text"], "RT @orig: the whole original text");
        assert_eq!(
            message["data"]["referenced_tweets"],
            json!([{"type": "retweeted", "id": "2"}])
        );
        assert_eq!(message["data"]["edit_history_tweet_ids"], json!(["1"]));
        assert_eq!(message["data"]["created_at"], "2013-05-05T18:04:07.000Z");
        assert_eq!(message["includes"]["tweets"][0]["id"], "2");
        assert_eq!(
            message["includes"]["users"],
            json!([{"id": "10", "name": "Ten", "username": "ten"},
                   {"id": "20", "name": "Orig", "username": "orig"}])
        );
        assert!(post.fields.is_retweet);
        assert_eq!(post.fields.author.as_deref(), Some("ten"));
    }

    #[test]
    fn replies_and_quotes_reference_their_targets() {
        let status = json!({
            "id_str": "5", "text": "hi", "in_reply_to_status_id_str": "4",
            "quoted_status_id_str": "3",
            "user": {"id_str": "10", "name": "Ten", "screen_name": "ten"}
        });
        let (_, post) = derive_v2(&status).unwrap();
        let message: Value = serde_json::from_str(&post.json).unwrap();
        assert_eq!(
            message["data"]["referenced_tweets"],
            json!([{"type": "quoted", "id": "3"}, {"type": "replied_to", "id": "4"}])
        );
        assert!(post.fields.is_reply && post.fields.is_quote && !post.fields.is_retweet);
    }

    #[test]
    fn pages_split_with_only_referenced_expansions() {
        let page = json!({
            "data": [
                {"id": "1", "text": "a", "author_id": "u1",
                 "referenced_tweets": [{"type": "quoted", "id": "9"}]},
                {"id": "2", "text": "b", "author_id": "u2"}
            ],
            "includes": {
                "users": [{"id": "u1", "username": "one"}, {"id": "u2", "username": "two"},
                          {"id": "u9", "username": "nine"}],
                "tweets": [{"id": "9", "text": "quoted", "author_id": "u9"}]
            }
        });
        let posts = split_page(&page);
        assert_eq!(posts.len(), 2);
        let first: Value = serde_json::from_str(&posts[0].1.json).unwrap();
        assert_eq!(
            first["includes"]["users"],
            json!([{"id": "u1", "username": "one"}, {"id": "u9", "username": "nine"}])
        );
        assert_eq!(first["includes"]["tweets"][0]["id"], "9");
        let second: Value = serde_json::from_str(&posts[1].1.json).unwrap();
        assert_eq!(
            second["includes"],
            json!({"users": [{"id": "u2", "username": "two"}]})
        );
        assert_eq!(posts[1].1.fields.author.as_deref(), Some("two"));
    }

    #[test]
    fn real_stream_lines_keep_their_bytes_and_drop_twarc() {
        let line = r#"{"data": {"id": "7", "text": "Hi"}, "includes": {"users": []}, "matching_rules": [{"id": 1, "tag": null}], "__twarc": {"url": "x"}}"#;
        let (id, post) = real_stream_post(line).unwrap();
        assert_eq!(id, "7");
        assert_eq!(
            post.json,
            r#"{"data":{"id": "7", "text": "Hi"},"includes":{"users": []}}"#
        );
        assert!(real_stream_post(r#"{"data": {"author_id": "1021"#).is_none());
    }

    #[test]
    fn html_is_stripped_for_hashtag_matching() {
        assert_eq!(
            strip_html(r#"<p>go <a href="x" class="hashtag">#<span>LAC</span></a></p>"#),
            "go #LAC"
        );
    }
}
