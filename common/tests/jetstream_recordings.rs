//! Routing over every event of the Jetstream v1 recordings in `../shared/data/bluesky/jetstream-v1/`.
//!
//! Each event's routing must equal an independent classification that builds the whole JSON
//! document (`serde_json::Value`) and reads the Jetstream README's fields by hand, and the
//! totals per destination must equal those that follow from the counts in
//! `shared/data/bluesky/MANIFEST.md` (per file: commits by operation and collection, identity,
//! account).
//!
//! The recordings are not in this repository (they are users' content). When they are absent
//! the test fails and says so; set `TWEET_PIPELINE_ALLOW_MISSING_DATA=1` to skip instead.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::Value;
use tweet_pipeline_common::{route_line, Destination, Kind, LineClass};

fn jetstream_dir() -> Option<PathBuf> {
    let data = std::env::var_os("TWEET_PIPELINE_DATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/data"));
    let dir = data.join("bluesky/jetstream-v1");
    if dir.is_dir() {
        return Some(dir);
    }
    if std::env::var_os("TWEET_PIPELINE_ALLOW_MISSING_DATA").is_some() {
        eprintln!(
            "SKIPPED: Jetstream recordings not found at {} (TWEET_PIPELINE_ALLOW_MISSING_DATA is set)",
            dir.display()
        );
        return None;
    }
    panic!(
        "Jetstream recordings not found at {}: put the shared/ folder beside the checkout, point \
         TWEET_PIPELINE_DATA at its data/ folder, or set TWEET_PIPELINE_ALLOW_MISSING_DATA=1 to skip",
        dir.display()
    );
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

fn route_file(path: &Path) -> BTreeMap<Destination, usize> {
    let text = std::fs::read_to_string(path).expect("readable recording");
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
    let Some(dir) = jetstream_dir() else { return };
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
            route_file(&dir.join(file)),
            BTreeMap::from(totals),
            "{file}"
        );
    }
}
