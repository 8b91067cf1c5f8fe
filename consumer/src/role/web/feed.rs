//! The web view's Kafka tail: reads the tweets, retweets and control topics from their end,
//! turns each record into a [`FeedEvent`] (a card, or a delete) and broadcasts it, serialised
//! once, to every browser's SSE stream.
//!
//! The tail never joins a consumer group and never commits: it assigns every partition at
//! the high watermark it has at start (so "ready" is a fact, not a guess about when
//! `auto.offset.reset=latest` resolved) with a throwaway group id, `enable.auto.commit=false`.
//! Other groups' offsets are therefore never touched.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use anyhow::Context as _;
use rdkafka::consumer::{BaseConsumer, Consumer as _};
use rdkafka::message::{BorrowedMessage, Message as _};
use rdkafka::{Offset, TopicPartitionList};
use serde::Serialize;
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;
use tweet_pipeline_common::config::{KafkaArgs, TopicNames};
use tweet_pipeline_common::post::parse_post;
use tweet_pipeline_common::{headers, route_line, Destination, Kind, LineClass};

/// How long the tail waits for one poll; the shutdown token is checked between polls.
const POLL_TIMEOUT: Duration = Duration::from_millis(200);
/// How long metadata and watermark requests may take at start.
const METADATA_TIMEOUT: Duration = Duration::from_secs(10);

/// What a browser is told about one record.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum FeedEvent {
    /// A post to show as a card.
    Post(Box<Card>),
    /// A delete notice: remove the card of post `id`.
    Delete {
        /// The deleted post's id (the control record's key).
        id: String,
    },
}

impl FeedEvent {
    /// The SSE event name: `post` or `delete`.
    pub fn name(&self) -> &'static str {
        match self {
            FeedEvent::Post(_) => "post",
            FeedEvent::Delete { .. } => "delete",
        }
    }
}

/// One post as the page shows it. Every string is untrusted content: the page sets it with
/// `textContent`, never as HTML.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Card {
    /// The post's id (decimal, or a Bluesky AT URI).
    pub id: String,
    /// `tweet` or `retweet`.
    pub kind: &'static str,
    /// The author's handle (or DID, or X user id), if known.
    pub author: Option<String>,
    /// When the post was created, RFC 3339 UTC (the page shows it in the browser's zone).
    pub created_at: Option<String>,
    /// When the producer received it, Unix milliseconds.
    pub received_at_ms: Option<i64>,
    /// The record's Kafka timestamp, Unix milliseconds (CreateTime: when the producer handed
    /// it to Kafka; LogAppendTime on topics set so), the start of the page's latency.
    pub kafka_at_ms: Option<i64>,
    /// The post's text (a retweet's original text).
    pub text: String,
    /// Hashtags without `#`, as the platform marked them.
    pub hashtags: Vec<String>,
    /// `http`/`https` links found in the text ([`links`]); nothing else becomes a link.
    pub links: Vec<String>,
    /// The platform's language tag, if sent.
    pub lang: Option<String>,
    /// Where it came from: `x`, `mastodon`, `bluesky` or `replay` ([`source_label`]).
    pub source: &'static str,
    /// The producer's `source` header as written (`replay:file.jsonl`, `bluesky:host`).
    pub source_detail: Option<String>,
    /// Tags of the rules that matched (the `matching_rules` header), each a column.
    pub rules: Vec<String>,
    /// Whether the post carries images or video ([`has_media`]).
    pub has_media: bool,
}

/// Whether a post carries images or video: a Bluesky embed of `images`, `video` or
/// `recordWithMedia` (`embed`, from [`parse_post`]); X v1.1 `entities.media` or
/// `extended_entities.media` (of the post, its `extended_tweet` or its `retweeted_status`);
/// X v2 `data.attachments.media_keys`; Mastodon `media_attachments` (of the status or its
/// `reblog`). Each non-empty.
pub fn has_media(payload: &[u8], embed: Option<&str>) -> bool {
    if matches!(embed, Some("images" | "video" | "recordWithMedia")) {
        return true;
    }
    let Ok(value) = serde_json::from_slice::<serde_json::Value>(payload) else {
        return false;
    };
    let non_empty = |v: &serde_json::Value, path: &[&str]| {
        path.iter()
            .try_fold(v, |v, key| v.get(key))
            .and_then(serde_json::Value::as_array)
            .is_some_and(|a| !a.is_empty())
    };
    let v1 = |v: &serde_json::Value| {
        non_empty(v, &["entities", "media"])
            || non_empty(v, &["extended_entities", "media"])
            || non_empty(v, &["extended_tweet", "entities", "media"])
            || non_empty(v, &["extended_tweet", "extended_entities", "media"])
    };
    v1(&value)
        || value.get("retweeted_status").is_some_and(v1)
        || non_empty(&value, &["data", "attachments", "media_keys"])
        || non_empty(&value, &["media_attachments"])
        || non_empty(&value, &["reblog", "media_attachments"])
}

/// The page's source name of a record: `replay` for replays, else the platform, from the
/// `source` header (`bluesky:<host>`, `mastodon...`), else from the id (AT URIs are
/// Bluesky's), else `x`.
pub fn source_label(source_header: Option<&str>, id: &str) -> &'static str {
    let header = source_header.unwrap_or_default().to_ascii_lowercase();
    if header.starts_with("replay") {
        "replay"
    } else if header.contains("bluesky") || id.starts_with("at://") {
        "bluesky"
    } else if header.contains("mastodon") {
        "mastodon"
    } else {
        "x"
    }
}

/// The `http://` and `https://` links of `text`, in order: each runs to the next whitespace,
/// without trailing punctuation (`.,;:!?)]}'"…`).
pub fn links(text: &str) -> Vec<String> {
    text.split_whitespace()
        .filter_map(|word| {
            let start = word.find("https://").or_else(|| word.find("http://"))?;
            let link = word[start..].trim_end_matches(|c: char| {
                matches!(
                    c,
                    '.' | ',' | ';' | ':' | '!' | '?' | ')' | ']' | '}' | '\'' | '"' | '…'
                )
            });
            let rest = link.split_once("://").map_or("", |(_, rest)| rest);
            (!rest.is_empty()).then(|| link.to_owned())
        })
        .collect()
}

/// The rule tags of a `matching_rules` header value (comma-separated; blanks dropped).
pub fn rule_tags(header: Option<&str>) -> Vec<String> {
    header
        .unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|tag| !tag.is_empty())
        .map(str::to_owned)
        .collect()
}

/// The record's fields the feed reads, so that [`event_of`] is pure.
#[derive(Debug, Clone, Copy)]
pub struct RecordView<'a> {
    /// Which pipeline topic it came from.
    pub destination: Destination,
    /// The record key, if UTF-8.
    pub key: Option<&'a str>,
    /// The value; `None` for a tombstone.
    pub payload: Option<&'a [u8]>,
    /// The `kind` header.
    pub kind: Option<&'a str>,
    /// The `source` header.
    pub source: Option<&'a str>,
    /// The `matching_rules` header.
    pub matching_rules: Option<&'a str>,
    /// The `received_at_ms` header, else the record timestamp.
    pub received_at_ms: Option<i64>,
    /// The record timestamp.
    pub kafka_at_ms: Option<i64>,
}

/// The event of one record: a card for a parseable post on the post topics, a delete for a
/// delete notice on the control topic (its key, else the id the router reads from the
/// notice); `None` for tombstones, other control messages, dead letters and unparseable posts.
pub fn event_of(record: &RecordView<'_>) -> Option<FeedEvent> {
    let payload = record.payload?;
    match record.destination {
        Destination::Tweets | Destination::Retweets => {
            let post = parse_post(payload).ok()?;
            let has_media = has_media(payload, post.embed);
            let id = post.id.into_owned();
            let text = post.text.into_owned();
            Some(FeedEvent::Post(Box::new(Card {
                source: source_label(record.source, &id),
                links: links(&text),
                kind: post.kind.as_str(),
                author: post.author.map(|a| a.into_owned()),
                created_at: post
                    .created_at
                    .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)),
                received_at_ms: record.received_at_ms,
                kafka_at_ms: record.kafka_at_ms,
                hashtags: post.hashtags.into_iter().map(|h| h.into_owned()).collect(),
                lang: post.lang.map(|l| l.into_owned()),
                source_detail: record.source.map(str::to_owned),
                rules: rule_tags(record.matching_rules),
                has_media,
                id,
                text,
            })))
        }
        Destination::Control => {
            let routed = match route_line(payload) {
                LineClass::Record(routed) => Some(routed),
                LineClass::KeepAlive => None,
            };
            let kind = record
                .kind
                .and_then(Kind::parse)
                .or_else(|| routed.as_ref().map(|r| r.kind))?;
            if kind != Kind::Delete {
                return None;
            }
            let id = record
                .key
                .map(str::to_owned)
                .or_else(|| routed.and_then(|r| r.key).map(|k| k.into_owned()))?;
            Some(FeedEvent::Delete { id })
        }
        Destination::DeadLetter => None,
    }
}

/// A [`FeedEvent`] and its JSON, serialised once for every browser.
pub type Broadcast = Arc<(FeedEvent, String)>;

/// How many of the latest posts a browser that connects is sent first, so a page opened after
/// the posts arrived is not empty (a column holds 200 cards).
pub const RECENT_POSTS: usize = 200;

/// What the browsers subscribe to: the live events, and the [`RECENT_POSTS`] latest posts that
/// no delete has removed since. Publishing and subscribing hold one lock, so a browser gets
/// every event exactly once: in its snapshot or from its receiver, never both or neither.
pub struct Feed {
    sender: broadcast::Sender<Broadcast>,
    recent: Mutex<VecDeque<Broadcast>>,
}

impl Feed {
    /// A feed whose slowest browser may fall `capacity` events behind before it is dropped.
    pub fn new(capacity: usize) -> Self {
        Self {
            sender: broadcast::channel(capacity).0,
            recent: Mutex::new(VecDeque::with_capacity(RECENT_POSTS)),
        }
    }

    /// Sends `event` to every browser and keeps it among the recent posts (a delete removes
    /// its post from them). No browser connected is not an error.
    pub fn publish(&self, event: Broadcast) {
        let mut recent = self.recent.lock().unwrap_or_else(PoisonError::into_inner);
        match &event.0 {
            FeedEvent::Post(_) => {
                if recent.len() == RECENT_POSTS {
                    recent.pop_front();
                }
                recent.push_back(event.clone());
            }
            FeedEvent::Delete { id } => {
                recent.retain(|kept| !matches!(&kept.0, FeedEvent::Post(card) if &card.id == id));
            }
        }
        let _ = self.sender.send(event);
    }

    /// The recent posts, oldest first, and a receiver of every event published after them.
    pub fn subscribe(&self) -> (Vec<Broadcast>, broadcast::Receiver<Broadcast>) {
        let recent = self.recent.lock().unwrap_or_else(PoisonError::into_inner);
        (recent.iter().cloned().collect(), self.sender.subscribe())
    }

    /// How many browsers' streams are open.
    pub fn browsers(&self) -> usize {
        self.sender.receiver_count()
    }
}

/// The tail's consumer, assigned to the end of every partition of the three topics.
pub struct Tail {
    consumer: BaseConsumer,
    topics: TopicNames,
}

/// Creates the tail's consumer and assigns it to the current end of every partition of the
/// tweets, retweets and control topics. Blocks (metadata and watermark requests).
///
/// # Errors
/// An invalid Kafka configuration (`-X`), an unreachable broker or a missing topic.
pub fn start(kafka: &KafkaArgs, topics: &TopicNames) -> anyhow::Result<Tail> {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    // A throwaway group id: nothing is ever committed under it, and no group is joined
    // (partitions are assigned, not subscribed).
    let group = format!("tweet-consumer-web-{}-{nanos}", std::process::id());
    let mut config =
        tweet_pipeline_common::kafka::consumer_config(kafka, &group, "tweet-consumer-web");
    // A fetch waits at most 100 ms for records (librdkafka's default, 500 ms, is latency a
    // person watching the page sees); the user's -X properties still win.
    config
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "latest")
        .set("fetch.wait.max.ms", "100");
    tweet_pipeline_common::kafka::apply_overrides(&mut config, kafka);
    let consumer: BaseConsumer = config
        .create()
        .context("invalid Kafka consumer configuration (check -X properties)")?;
    let names = [
        topics.tweets.as_str(),
        topics.retweets.as_str(),
        topics.control.as_str(),
    ];
    tweet_pipeline_common::kafka::check_topics(
        consumer.client(),
        &kafka.bootstrap,
        &names,
        METADATA_TIMEOUT,
    )?;
    let mut assignment = TopicPartitionList::new();
    for topic in names {
        for partition in tweet_pipeline_scheduler::queue::partitions_of(
            consumer.client(),
            topic,
            METADATA_TIMEOUT,
        )? {
            let (_, high) = consumer
                .fetch_watermarks(topic, partition, METADATA_TIMEOUT)
                .with_context(|| format!("cannot read the end offset of {topic}[{partition}]"))?;
            assignment
                .add_partition_offset(topic, partition, Offset::Offset(high))
                .context("building the partition list")?;
        }
    }
    consumer
        .assign(&assignment)
        .context("cannot assign the topics' partitions")?;
    tracing::info!(
        partitions = assignment.count(),
        "web feed reading the post and control topics from their end"
    );
    Ok(Tail {
        consumer,
        topics: topics.clone(),
    })
}

fn view<'a>(message: &'a BorrowedMessage<'a>, destination: Destination) -> RecordView<'a> {
    let headers = message.headers();
    RecordView {
        destination,
        key: message.key().and_then(|k| std::str::from_utf8(k).ok()),
        payload: message.payload(),
        kind: headers::get(headers, headers::KIND),
        source: headers::get(headers, headers::SOURCE),
        matching_rules: headers::get(headers, headers::MATCHING_RULES),
        received_at_ms: headers::get(headers, headers::RECEIVED_AT_MS)
            .and_then(|v| v.parse().ok())
            .or_else(|| message.timestamp().to_millis()),
        kafka_at_ms: message.timestamp().to_millis(),
    }
}

impl Tail {
    /// Polls until `cancel` fires, publishing each record's event to `feed`. Blocks: run it
    /// on a thread of its own.
    pub fn run(self, feed: &Feed, cancel: &CancellationToken) {
        while !cancel.is_cancelled() {
            match self.consumer.poll(POLL_TIMEOUT) {
                None => {}
                Some(Ok(message)) => {
                    let Some(destination) = self.topics.destination(message.topic()) else {
                        continue;
                    };
                    let Some(event) = event_of(&view(&message, destination)) else {
                        continue;
                    };
                    match serde_json::to_string(&event) {
                        Ok(json) => feed.publish(Arc::new((event, json))),
                        Err(error) => tracing::warn!(%error, "feed event not serialised"),
                    }
                }
                Some(Err(error)) => tracing::warn!(%error, "web feed poll error"),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record<'a>(destination: Destination, payload: &'a [u8]) -> RecordView<'a> {
        RecordView {
            destination,
            key: None,
            payload: Some(payload),
            kind: None,
            source: None,
            matching_rules: None,
            received_at_ms: None,
            kafka_at_ms: None,
        }
    }

    #[test]
    fn links_are_http_only_and_lose_trailing_punctuation() {
        assert_eq!(
            links("see https://t.co/abc. and (http://x.org/a?b=1), javascript:alert(1) ftp://f https://"),
            vec!["https://t.co/abc", "http://x.org/a?b=1"]
        );
        assert!(links("no links here").is_empty());
    }

    #[test]
    fn media_is_read_from_each_platforms_fields() {
        assert!(has_media(br#"{"entities":{"media":[{"id":1}]}}"#, None));
        assert!(has_media(
            br#"{"retweeted_status":{"extended_entities":{"media":[{}]}}}"#,
            None
        ));
        assert!(has_media(
            br#"{"data":{"attachments":{"media_keys":["3_1"]}}}"#,
            None
        ));
        assert!(has_media(
            br#"{"media_attachments":[{"type":"image"}]}"#,
            None
        ));
        assert!(has_media(b"{}", Some("images")));
        assert!(!has_media(b"{}", Some("external")));
        assert!(!has_media(
            br#"{"entities":{"media":[]},"media_attachments":[]}"#,
            None
        ));
        assert!(!has_media(b"not json", None));
    }

    #[test]
    fn sources_are_named_by_header_then_id() {
        assert_eq!(source_label(Some("replay:a.jsonl"), "1"), "replay");
        assert_eq!(
            source_label(Some("bluesky:jetstream.example"), "x"),
            "bluesky"
        );
        assert_eq!(
            source_label(None, "at://did:plc:a/app.bsky.feed.post/1"),
            "bluesky"
        );
        assert_eq!(
            source_label(Some("mastodon:example.social"), "1"),
            "mastodon"
        );
        assert_eq!(source_label(Some("x-v2:filter"), "1"), "x");
        assert_eq!(rule_tags(Some(" cats, ,dogs")), vec!["cats", "dogs"]);
        assert!(rule_tags(None).is_empty());
    }

    #[test]
    fn posts_become_cards_with_text_as_sent() {
        let line = br#"{"id_str":"7","text":"<script>alert(1)</script> #hi https://e.org","lang":"en","user":{"screen_name":"amy"},"created_at":"Sun May 05 10:00:00 +0000 2013","entities":{"hashtags":[{"text":"hi"}]}}"#;
        let mut view = record(Destination::Tweets, line);
        view.source = Some("replay:a.jsonl");
        view.matching_rules = Some("cats");
        let Some(FeedEvent::Post(card)) = event_of(&view) else {
            panic!("a card")
        };
        assert_eq!(card.id, "7");
        assert_eq!(card.text, "<script>alert(1)</script> #hi https://e.org");
        assert_eq!(card.author.as_deref(), Some("amy"));
        assert_eq!(card.created_at.as_deref(), Some("2013-05-05T10:00:00Z"));
        assert_eq!(card.hashtags, vec!["hi"]);
        assert_eq!(card.links, vec!["https://e.org"]);
        assert_eq!(card.source, "replay");
        assert_eq!(card.rules, vec!["cats"]);
        assert!(!card.has_media);
        let json = serde_json::to_string(&FeedEvent::Post(card)).unwrap();
        assert!(json.starts_with(r#"{"type":"post""#), "{json}");
    }

    #[test]
    fn deletes_carry_the_key_or_the_notice_id_and_other_control_is_skipped() {
        let notice =
            br#"{"delete":{"status":{"id":9,"id_str":"9","user_id":1,"user_id_str":"1"}}}"#;
        assert_eq!(
            event_of(&record(Destination::Control, notice)),
            Some(FeedEvent::Delete { id: "9".into() })
        );
        let mut keyed = record(Destination::Control, notice);
        keyed.key = Some("10");
        keyed.kind = Some("delete");
        assert_eq!(
            event_of(&keyed),
            Some(FeedEvent::Delete { id: "10".into() })
        );
        let limit = br#"{"limit":{"track":3}}"#;
        assert_eq!(event_of(&record(Destination::Control, limit)), None);
        let mut tombstone = record(Destination::Tweets, b"");
        tombstone.payload = None;
        assert_eq!(event_of(&tombstone), None);
        assert_eq!(event_of(&record(Destination::Tweets, b"not json")), None);
        assert_eq!(event_of(&record(Destination::DeadLetter, notice)), None);
    }
}
