//! A real Bluesky Jetstream v1 recording (`shared/data/bluesky/jetstream-v1/`, the
//! bluesky-social/jetstream corpus: 152 consecutive events) replayed by `tweet-producer` into
//! topics made for this test and read back: every event is one record, its value the event's
//! bytes unchanged, its key the AT URI (or the DID for identity and account events), on the
//! topic its `kind` header names, in the numbers the MANIFEST's counts give.
//!
//! Needs the binaries built (`cargo build --release --bins`) and the shared recordings.

mod support;

use std::collections::BTreeMap;

use support::{
    create_topics, delete_topics, producer_command, producer_summary, read_back, run, shared_data,
    topic_flags, unique,
};
use tweet_pipeline_common::{Destination, Kind};

const RECORDING: &str = "bluesky/jetstream-v1/bluesky-social_jetstream__corpus_expected_v1.jsonl";

#[tokio::test(flavor = "multi_thread")]
async fn replayed_jetstream_events_land_once_each_keyed_by_at_uri() {
    let names = create_topics(&format!("{}-", unique("e2e-jetstream"))).await;
    let path = shared_data().join(RECORDING);
    let text = std::fs::read_to_string(&path).expect("the Jetstream recording");
    let events: Vec<&str> = text.lines().collect();
    assert_eq!(events.len(), 152, "the MANIFEST's count of {RECORDING}");

    let produced = producer_summary(&run(producer_command()
        .arg("--replay")
        .arg(&path)
        .args(topic_flags(&names))
        .arg("--metrics-addr=off")));
    assert_eq!(produced.lines_read, 152);
    assert_eq!(produced.failed + produced.unacknowledged, 0);
    // MANIFEST: 17 post creates; 15 reposts; 1 post delete, 117 other commits, 1 identity and
    // 1 account on control; nothing unroutable.
    let acked: Vec<u64> = Destination::ALL
        .iter()
        .map(|d| produced.acked[*d])
        .collect();
    assert_eq!(
        acked,
        [17, 15, 120, 0],
        "tweets, retweets, control, deadletter"
    );

    let topics: Vec<&str> = Destination::ALL.iter().map(|d| names.name(*d)).collect();
    let records = read_back(&topics, events.len());
    assert_eq!(records.len(), events.len());
    let mut by_kind = BTreeMap::<Kind, usize>::new();
    let mut values = Vec::new();
    for (topic, key, value, headers) in &records {
        let kind = headers
            .get("kind")
            .and_then(|k| Kind::parse(k))
            .expect("kind header");
        assert_eq!(names.name(kind.destination()), topic);
        let event: serde_json::Value = serde_json::from_slice(value).expect("the event's JSON");
        let did = event["did"].as_str().expect("did");
        let commit = &event["commit"];
        let want_key = match commit["rkey"].as_str() {
            Some(rkey) => format!(
                "at://{did}/{}/{rkey}",
                commit["collection"].as_str().unwrap()
            ),
            None => did.to_owned(),
        };
        assert_eq!(key.as_deref(), Some(want_key.as_str()));
        *by_kind.entry(kind).or_default() += 1;
        values.push(value.clone());
    }
    assert_eq!(
        by_kind,
        BTreeMap::from([
            (Kind::Delete, 1),
            (Kind::Event, 117),
            (Kind::Post, 17),
            (Kind::Repost, 15),
            (Kind::Identity, 1),
            (Kind::Account, 1),
        ])
    );
    // The values are the recorded lines, byte for byte, each once.
    let mut want: Vec<Vec<u8>> = events.iter().map(|e| e.as_bytes().to_vec()).collect();
    values.sort();
    want.sort();
    assert!(
        values == want,
        "record values differ from the recorded events"
    );
    delete_topics(&names).await;
}
