//! Routing over every line of every recording in `../shared/data/twitter_v1/`, and over every
//! event of the Jetstream v1 recordings in `../shared/data/bluesky/jetstream-v1/`.
//!
//! Each line must be accounted for exactly once, and the counts per kind must equal (a) an
//! independent classification that builds the whole JSON document (`serde_json::Value`) and
//! (b) for the stream recordings, the counts that `shared/data/MANIFEST.md` gives per file.
//!
//! The recordings are not in this repository (they are users' content). When they are absent
//! the test fails and says so; set `TWEET_PIPELINE_ALLOW_MISSING_DATA=1` to skip instead.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::Value;
use tweet_pipeline_common::framing::{Frame, LineFramer, DEFAULT_MAX_LINE_BYTES};
use tweet_pipeline_common::{route_line, Destination, Kind, LineClass};

fn shared_data() -> Option<PathBuf> {
    let dir = std::env::var_os("TWEET_PIPELINE_DATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/data"));
    if dir.join("twitter_v1").is_dir() {
        return Some(dir);
    }
    if std::env::var_os("TWEET_PIPELINE_ALLOW_MISSING_DATA").is_some() {
        eprintln!(
            "SKIPPED: shared data not found at {} (TWEET_PIPELINE_ALLOW_MISSING_DATA is set)",
            dir.display()
        );
        return None;
    }
    panic!(
        "shared recordings not found at {}: put the shared/ folder beside the checkout, point \
         TWEET_PIPELINE_DATA at its data/ folder, or set TWEET_PIPELINE_ALLOW_MISSING_DATA=1 to skip",
        dir.display()
    );
}

fn recordings(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut stack = vec![dir.join("twitter_v1")];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).expect("readable data folder") {
            let path = entry.expect("directory entry").path();
            if path.is_dir() {
                stack.push(path);
            } else if matches!(
                path.extension().and_then(|e| e.to_str()),
                Some("jsonl" | "json" | "txt")
            ) {
                files.push(path);
            }
        }
    }
    files.sort();
    files
}

/// Lines as `\n`-separated pieces, `\r` stripped, a last unterminated piece included: counted
/// without the framer under test.
fn independent_lines(bytes: &[u8]) -> Vec<&[u8]> {
    let mut lines: Vec<&[u8]> = bytes.split(|b| *b == b'\n').collect();
    if lines.last().is_some_and(|l| l.is_empty()) {
        lines.pop();
    }
    lines
        .into_iter()
        .map(|l| l.strip_suffix(b"\r").unwrap_or(l))
        .collect()
}

/// The same routing rules, applied to a fully built JSON document.
fn independent_kind(line: &[u8]) -> Option<&'static str> {
    if line.iter().all(u8::is_ascii_whitespace) {
        return None;
    }
    let Ok(text) = std::str::from_utf8(line) else {
        return Some("malformed");
    };
    let Ok(value) = serde_json::from_str::<Value>(text) else {
        return Some("malformed");
    };
    let Some(object) = value.as_object() else {
        return Some("unknown");
    };
    let has = |key: &str| object.contains_key(key);
    let kind = if has("delete") {
        "delete"
    } else if has("scrub_geo") {
        "scrub_geo"
    } else if has("status_withheld") {
        "status_withheld"
    } else if has("limit") {
        "limit"
    } else if has("disconnect") {
        "disconnect"
    } else if has("warning") {
        "warning"
    } else if has("user_withheld") {
        "user_withheld"
    } else if has("friends") || has("friends_str") {
        "friends"
    } else if has("control") || has("for_user") {
        "control"
    } else if (has("id") || has("id_str")) && (has("text") || has("full_text") || has("user")) {
        match object.get("retweeted_status") {
            Some(Value::Null) | None => "tweet",
            Some(_) => "retweet",
        }
    } else if has("event") {
        "event"
    } else if let Some(data) = object.get("data") {
        let retweet = data["referenced_tweets"]
            .as_array()
            .is_some_and(|refs| refs.iter().any(|r| r["type"] == "retweeted"));
        if retweet {
            "retweet"
        } else {
            "tweet"
        }
    } else if has("errors") {
        "stream_error"
    } else {
        "unknown"
    };
    Some(kind)
}

#[derive(Debug, Default, PartialEq, Eq)]
struct Counts {
    lines: usize,
    keepalives: usize,
    kinds: BTreeMap<&'static str, usize>,
}

fn route_file(bytes: &[u8]) -> Counts {
    let mut counts = Counts::default();
    let mut framer = LineFramer::new(DEFAULT_MAX_LINE_BYTES);
    let mut on_frame = |frame: Frame<'_>| -> Result<(), ()> {
        counts.lines += 1;
        match frame {
            Frame::Line(line) => match route_line(line) {
                LineClass::KeepAlive => counts.keepalives += 1,
                LineClass::Record(routed) => {
                    assert_eq!(
                        routed.reason.is_some(),
                        routed.destination() == tweet_pipeline_common::Destination::DeadLetter
                    );
                    *counts.kinds.entry(routed.kind.as_str()).or_default() += 1;
                }
            },
            Frame::Oversized { .. } => {
                *counts.kinds.entry(Kind::Oversized.as_str()).or_default() += 1
            }
        }
        Ok(())
    };
    framer.push(bytes, &mut on_frame).unwrap();
    framer.finish(&mut on_frame).unwrap();
    counts
}

#[test]
fn every_line_of_every_recording_is_routed_once_and_counts_match_an_independent_count() {
    let Some(dir) = shared_data() else { return };
    let files = recordings(&dir);
    assert!(
        files.len() >= 30,
        "expected the twitter_v1 recordings, found {} files",
        files.len()
    );
    let mut total_lines = 0;
    for path in &files {
        let bytes = std::fs::read(path).expect("readable recording");
        let routed = route_file(&bytes);
        let lines = independent_lines(&bytes);
        let mut expected = Counts {
            lines: lines.len(),
            ..Counts::default()
        };
        for line in &lines {
            match independent_kind(line) {
                None => expected.keepalives += 1,
                Some(kind) => *expected.kinds.entry(kind).or_default() += 1,
            }
        }
        let accounted = routed.keepalives + routed.kinds.values().sum::<usize>();
        assert_eq!(
            accounted,
            routed.lines,
            "{}: a line counted twice or not at all",
            path.display()
        );
        assert_eq!(routed, expected, "{}", path.display());
        total_lines += routed.lines;
    }
    assert!(total_lines > 30_000, "only {total_lines} lines read");
}

/// Per-file counts from `shared/data/MANIFEST.md` sections 1 and 2:
/// (file, statuses, of which retweets, delete notices, limit notices).
const MANIFEST: &[(&str, usize, usize, usize, usize)] = &[
    (
        "stream_sample/sample_2013-05-05_MyCSHome.jsonl",
        819,
        196,
        128,
        0,
    ),
    (
        "stream_sample/sample_2013-05-07_brebory.jsonl",
        278,
        70,
        36,
        0,
    ),
    (
        "stream_sample/sample_2014-07-04_houxu.jsonl",
        777,
        233,
        103,
        0,
    ),
    (
        "stream_sample/sample_2014-07-13_jay6413682.jsonl",
        227,
        79,
        41,
        0,
    ),
    (
        "stream_sample/sample_2015-03-20_han-han.jsonl",
        874,
        343,
        122,
        0,
    ),
    (
        "stream_sample/sample_2015-10-03_juloi.jsonl",
        513,
        197,
        353,
        0,
    ),
    (
        "stream_sample/sample_2016-11-18_acidpizza.jsonl",
        209,
        83,
        28,
        0,
    ),
    (
        "stream_filter/filter_locations_2015-11-01_insight.jsonl",
        234,
        0,
        0,
        12,
    ),
    (
        "stream_filter/filter_locations_2016-01-19_insight.jsonl",
        651,
        0,
        0,
        42,
    ),
    (
        "stream_filter/filter_locations_2018-01-23_pablobarbera.jsonl",
        646,
        0,
        0,
        2,
    ),
    (
        "stream_filter/filter_japanese_2017-08-03_pablobarbera.jsonl",
        176,
        64,
        0,
        0,
    ),
    (
        "stream_filter/filter_track-apple_2020-03-19_elidgonzalez.jsonl",
        275,
        155,
        0,
        0,
    ),
];

#[test]
fn stream_recordings_match_the_manifest() {
    let Some(dir) = shared_data() else { return };
    for &(file, statuses, retweets, deletes, limits) in MANIFEST {
        let bytes = std::fs::read(dir.join("twitter_v1").join(file))
            .expect("recording listed in the manifest");
        let counts = route_file(&bytes);
        let mut expected = BTreeMap::new();
        for (kind, n) in [
            ("tweet", statuses - retweets),
            ("retweet", retweets),
            ("delete", deletes),
            ("limit", limits),
        ] {
            if n > 0 {
                expected.insert(kind, n);
            }
        }
        assert_eq!(counts.kinds, expected, "{file}");
        assert_eq!(counts.keepalives, 0, "{file}");
    }
}

#[test]
fn control_message_recordings_cover_every_v1_type() {
    let Some(dir) = shared_data() else { return };
    let bytes = std::fs::read(dir.join("twitter_v1/control_messages/doc_style_examples.jsonl"))
        .expect("control examples");
    let counts = route_file(&bytes);
    let expected: BTreeMap<&str, usize> = [
        ("delete", 3),
        ("disconnect", 2),
        ("limit", 3),
        ("scrub_geo", 4),
        ("status_withheld", 3),
        ("user_withheld", 3),
        ("warning", 3),
    ]
    .into_iter()
    .collect();
    assert_eq!(counts.kinds, expected);
    // The truncated HTTP capture ends mid-object: one malformed line, nothing else.
    let bytes =
        std::fs::read(dir.join(
            "twitter_v1/raw_http/statuses_filter_2015-12-02T165907Z_truncated.body.decoded.txt",
        ))
        .expect("raw capture");
    let counts = route_file(&bytes);
    assert_eq!(counts.kinds, [("malformed", 1)].into_iter().collect());
}

/// What the Jetstream README says an event is, read from the whole document.
fn by_hand(event: &Value) -> (Kind, String) {
    let did = event["did"]
        .as_str()
        .expect("every recorded event has a did");
    match event["kind"].as_str() {
        Some("identity") => (Kind::Identity, did.to_owned()),
        Some("account") => (Kind::Account, did.to_owned()),
        Some("commit") => {
            let commit = &event["commit"];
            let field = |name: &str| commit[name].as_str().expect("commit field");
            let (operation, collection) = (field("operation"), field("collection"));
            let post = collection == "app.bsky.feed.post";
            let repost = collection == "app.bsky.feed.repost";
            let kind = match operation {
                "delete" if post || repost => Kind::Delete,
                "create" if post => Kind::Post,
                "update" if post => Kind::Edit,
                _ if repost => Kind::Repost,
                _ => Kind::Event,
            };
            let uri = format!("at://{did}/{collection}/{}", field("rkey"));
            (kind, uri)
        }
        other => panic!("recorded event of kind {other:?}"),
    }
}

fn route_jetstream_file(path: &Path) -> BTreeMap<Destination, usize> {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("the Jetstream recording {}: {e}", path.display()));
    let mut totals = BTreeMap::new();
    for (number, line) in text.lines().enumerate() {
        let LineClass::Record(routed) = route_line(line.as_bytes()) else {
            panic!("{}:{}: routed as a keep-alive", path.display(), number + 1);
        };
        let event: Value = serde_json::from_str(line).expect("the recording is JSON");
        let (kind, key) = by_hand(&event);
        assert_eq!(
            (routed.kind, routed.key.as_deref()),
            (kind, Some(key.as_str())),
            "{}:{}",
            path.display(),
            number + 1
        );
        *totals.entry(routed.destination()).or_default() += 1;
    }
    totals
}

#[test]
fn every_recorded_jetstream_event_is_routed_as_the_readme_says() {
    let Some(data) = shared_data() else { return };
    let dir = data.join("bluesky/jetstream-v1");
    // From the MANIFEST: corpus_expected_v1 has 152 events, of which 17 post creates, 15
    // repost creates, 1 post delete, 117 other commits, 1 identity, 1 account; subscribe_golden_v1
    // has 10: 1 post create, 1 repost create, 6 other commits, 1 identity, 1 account.
    let expected = [
        (
            "bluesky-social_jetstream__corpus_expected_v1.jsonl",
            [
                (Destination::Tweets, 17),
                (Destination::Retweets, 15),
                (Destination::Control, 120),
            ],
        ),
        (
            "bluesky-social_jetstream__subscribe_golden_v1.jsonl",
            [
                (Destination::Tweets, 1),
                (Destination::Retweets, 1),
                (Destination::Control, 8),
            ],
        ),
    ];
    for (file, totals) in expected {
        assert_eq!(
            route_jetstream_file(&dir.join(file)),
            BTreeMap::from(totals),
            "{file}"
        );
    }
}

/// Per-post counts of the typed Bluesky records over a recording, each read twice: by
/// [`tweet_pipeline_common::bluesky`] and by hand from the whole document.
#[derive(Debug, Default, PartialEq, Eq)]
struct BlueskyCounts {
    posts: usize,
    reposts: usize,
    replies: usize,
    hashtags: usize,
    links: usize,
    mentions: usize,
    media: usize,
    quotes: usize,
    embeds: BTreeMap<String, usize>,
}

fn bluesky_counts(path: &Path) -> (BlueskyCounts, BlueskyCounts) {
    use tweet_pipeline_common::bluesky::{Commit, PostRecord, RepostRecord};
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("the Jetstream recording {}: {e}", path.display()));
    let (mut typed, mut by_hand) = (BlueskyCounts::default(), BlueskyCounts::default());
    for (number, line) in text.lines().enumerate() {
        let at = format!("{}:{}", path.display(), number + 1);
        let event: Value = serde_json::from_str(line).expect("the recording is JSON");
        let record = &event["commit"]["record"];
        let Some(collection) = record
            .is_object()
            .then(|| event["commit"]["collection"].as_str())
            .flatten()
        else {
            continue;
        };
        #[derive(serde::Deserialize)]
        struct Envelope<'a> {
            #[serde(borrow)]
            commit: Commit<'a>,
        }
        let envelope: Envelope<'_> = serde_json::from_str(line).expect("a commit envelope");
        let raw = envelope.commit.record.expect("a record");
        match collection {
            "app.bsky.feed.post" => {
                let post = PostRecord::from_raw(raw).unwrap_or_else(|e| panic!("{at}: {e}"));
                assert_eq!(post.text, record["text"].as_str().expect("text"), "{at}");
                typed.posts += 1;
                typed.replies += usize::from(post.is_reply());
                typed.hashtags += post.hashtags().count();
                typed.links += post.links().count();
                typed.mentions += post.mentions().count();
                typed.media += usize::from(post.has_media());
                typed.quotes += usize::from(post.quoted_uri().is_some());
                if let Some(embed) = &post.embed {
                    *typed.embeds.entry(embed.kind().to_owned()).or_default() += 1;
                }
                by_hand.posts += 1;
                by_hand.replies += usize::from(record["reply"]["parent"]["uri"].is_string());
                let features: Vec<&str> = record["facets"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .flat_map(|f| f["features"].as_array().into_iter().flatten())
                    .filter_map(|f| f["$type"].as_str())
                    .collect();
                let count = |suffix: &str| features.iter().filter(|t| t.ends_with(suffix)).count();
                let embed = record["embed"]["$type"].as_str();
                by_hand.hashtags += count("#tag") + record["tags"].as_array().map_or(0, Vec::len);
                by_hand.links += count("#link")
                    + usize::from(embed == Some("app.bsky.embed.external"))
                    + usize::from(record["embed"]["media"]["$type"] == "app.bsky.embed.external");
                by_hand.mentions += count("#mention");
                by_hand.media += usize::from(matches!(
                    embed,
                    Some(
                        "app.bsky.embed.images"
                            | "app.bsky.embed.video"
                            | "app.bsky.embed.recordWithMedia"
                    )
                ));
                by_hand.quotes += usize::from(matches!(
                    embed,
                    Some("app.bsky.embed.record" | "app.bsky.embed.recordWithMedia")
                ));
                if let Some(embed) = embed {
                    let kind = embed.trim_start_matches("app.bsky.embed.").to_owned();
                    *by_hand.embeds.entry(kind).or_default() += 1;
                }
            }
            "app.bsky.feed.repost" => {
                let repost = RepostRecord::from_raw(raw).unwrap_or_else(|e| panic!("{at}: {e}"));
                assert_eq!(
                    repost.subject.uri,
                    record["subject"]["uri"].as_str().expect("subject"),
                    "{at}"
                );
                typed.reposts += 1;
                by_hand.reposts += 1;
            }
            _ => {}
        }
    }
    (typed, by_hand)
}

#[test]
fn every_recorded_bluesky_post_and_repost_reads_as_its_lexicon_says() {
    let Some(data) = shared_data() else { return };
    let dir = data.join("bluesky/jetstream-v1");
    let (typed, by_hand) =
        bluesky_counts(&dir.join("bluesky-social_jetstream__corpus_expected_v1.jsonl"));
    assert_eq!(typed, by_hand);
    // MANIFEST: 17 post creates, 15 reposts; 8 replies; 4 link and 4 tag facets; embeds: images
    // 2, external 3 (each external card's URL is a link too).
    assert_eq!(
        (
            typed.posts,
            typed.reposts,
            typed.replies,
            typed.hashtags,
            typed.links
        ),
        (17, 15, 8, 4, 7)
    );
    assert_eq!(
        typed.embeds,
        BTreeMap::from([("external".to_owned(), 3), ("images".to_owned(), 2)])
    );
    assert_eq!((typed.media, typed.quotes, typed.mentions), (2, 0, 0));
    let (typed, by_hand) =
        bluesky_counts(&dir.join("bluesky-social_jetstream__subscribe_golden_v1.jsonl"));
    assert_eq!(typed, by_hand);
    // MANIFEST: 1 post (a reply) and 1 repost.
    assert_eq!((typed.posts, typed.reposts, typed.replies), (1, 1, 1));
}
