//! The broker side of the tests: its address, fresh topics under a prefix per test, the flags
//! that point a binary at them, reading records back and where a consumer group stands.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Headers, Message};
use rdkafka::{Offset, TopicPartitionList};
use tweet_pipeline_common::config::{ScheduleTopics, TopicNames};
use tweet_pipeline_common::Destination;

use super::unique;

/// Partitions of every topic a test creates (as topics.sh makes them).
pub const PARTITIONS: i32 = 2;

/// The broker: `$KAFKA_BOOTSTRAP`, else `127.0.0.1:9092` (never `localhost`: librdkafka
/// tries IPv6 first, rust-rdkafka#809).
pub fn bootstrap() -> String {
    std::env::var("KAFKA_BOOTSTRAP").unwrap_or_else(|_| "127.0.0.1:9092".to_owned())
}

/// Creates the four pipeline topics under a fresh prefix; panics with advice if no broker.
/// The raw post topics are compacted as topics.sh makes them (keys required, tombstones).
pub async fn create_topics(prefix: &str) -> TopicNames {
    create_topics_on(&bootstrap(), prefix, &[]).await
}

/// Creates the four pipeline topics under `prefix` on `bootstrap`; the post topics are
/// `cleanup.policy=compact,delete` plus `post_topic_config`.
pub async fn create_topics_on(
    bootstrap: &str,
    prefix: &str,
    post_topic_config: &[(&str, &str)],
) -> TopicNames {
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .create()
        .expect("admin client");
    admin
        .inner()
        .fetch_metadata(None, Duration::from_secs(10))
        .unwrap_or_else(|e| {
            panic!(
                "no Kafka broker at {bootstrap}: {e}; start one with scripts/kafka-local.sh start"
            )
        });
    let names = TopicNames::with_prefix(prefix);
    let topics: Vec<NewTopic<'_>> = Destination::ALL
        .iter()
        .map(|d| {
            let topic = NewTopic::new(names.name(*d), PARTITIONS, TopicReplication::Fixed(1));
            match d {
                Destination::Tweets | Destination::Retweets => post_topic_config.iter().fold(
                    topic.set("cleanup.policy", "compact,delete"),
                    |t, (k, v)| t.set(k, v),
                ),
                _ => topic,
            }
        })
        .collect();
    for result in admin
        .create_topics(
            &topics,
            &AdminOptions::new().operation_timeout(Some(Duration::from_secs(30))),
        )
        .await
        .expect("create topics")
    {
        result.expect("topic created");
    }
    names
}

/// The flags that point a binary at this test's topics and at the broker.
pub fn topic_flags(names: &TopicNames) -> Vec<String> {
    vec![
        format!("--tweets-topic={}", names.tweets),
        format!("--retweets-topic={}", names.retweets),
        format!("--control-topic={}", names.control),
        format!("--deadletter-topic={}", names.deadletter),
        format!("--bootstrap={}", bootstrap()),
    ]
}

/// Removes a passed test's topics (a failed test leaves them for inspection).
pub async fn delete_topics(names: &TopicNames) {
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", bootstrap())
        .create()
        .expect("admin client");
    let topics: Vec<&str> = Destination::ALL.iter().map(|d| names.name(*d)).collect();
    let _ = admin.delete_topics(&topics, &AdminOptions::new()).await;
}

/// Reads every record of `topics` from the beginning until `count` records arrived (or 60 s
/// passed), then 2 s more for any duplicate. Tombstones (null values, written by the analysis
/// group for deleted posts) are skipped: they are not records anyone produced.
pub fn read_back(topics: &[&str], count: usize) -> Vec<Record> {
    let consumer = from_beginning(&bootstrap(), topics);
    let record = |message: &rdkafka::message::BorrowedMessage<'_>| -> Option<Record> {
        let payload = message.payload()?;
        let headers = message
            .headers()
            .map(|h| {
                h.iter()
                    .map(|h| {
                        (
                            h.key.to_owned(),
                            String::from_utf8_lossy(h.value.unwrap_or_default()).into_owned(),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default();
        Some((
            message.topic().to_owned(),
            message
                .key()
                .map(|k| String::from_utf8(k.to_vec()).expect("utf-8 key")),
            payload.to_vec(),
            headers,
        ))
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut records = Vec::new();
    while records.len() < count && Instant::now() < deadline {
        if let Some(result) = consumer.poll(Duration::from_millis(200)) {
            records.extend(record(&result.expect("consume")));
        }
    }
    // Anything beyond `count` would be a duplicate: give it a moment to show up.
    let settle = Instant::now() + Duration::from_secs(2);
    while Instant::now() < settle {
        if let Some(Ok(message)) = consumer.poll(Duration::from_millis(200)) {
            records.extend(record(&message));
        }
    }
    records
}

/// A consumer (fresh group, never committing) assigned every partition of `topics` from the
/// beginning, on `bootstrap`.
pub fn from_beginning(bootstrap: &str, topics: &[&str]) -> BaseConsumer {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", unique("read-back"))
        .set("enable.auto.commit", "false")
        .create()
        .expect("consumer");
    let mut assignment = TopicPartitionList::new();
    for topic in topics {
        for partition in 0..PARTITIONS {
            assignment
                .add_partition_offset(topic, partition, Offset::Beginning)
                .expect("partition");
        }
    }
    consumer.assign(&assignment).expect("assign");
    consumer
}

/// One record read back: topic, key, value, headers.
pub type Record = (String, Option<String>, Vec<u8>, BTreeMap<String, String>);

/// Where `group` stands on one partition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupPosition {
    pub topic: String,
    pub partition: i32,
    /// The committed offset (0 when the group committed none).
    pub committed: i64,
    /// The partition's high watermark.
    pub high: i64,
}

/// The committed offset and the high watermark of every partition of `topics` for `group`.
pub fn group_positions(
    group: &str,
    topics: &[&str],
) -> rdkafka::error::KafkaResult<Vec<GroupPosition>> {
    let probe: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap())
        .set("group.id", group)
        .create()
        .expect("consumer");
    let mut partitions = TopicPartitionList::new();
    for topic in topics {
        for partition in 0..PARTITIONS {
            partitions.add_partition(topic, partition);
        }
    }
    let committed = probe.committed_offsets(partitions, Duration::from_secs(10))?;
    committed
        .elements()
        .iter()
        .map(|element| {
            let (_, high) = probe.fetch_watermarks(
                element.topic(),
                element.partition(),
                Duration::from_secs(10),
            )?;
            Ok(GroupPosition {
                topic: element.topic().to_owned(),
                partition: element.partition(),
                committed: match element.offset() {
                    Offset::Offset(offset) => offset,
                    _ => 0,
                },
                high,
            })
        })
        .collect()
}

/// Asserts that `group` has committed the end (high watermark) of every partition of `topics`.
pub fn assert_group_at_end(group: &str, topics: &[&str]) {
    for position in group_positions(group, topics).expect("committed offsets and watermarks") {
        assert_eq!(
            position.committed, position.high,
            "{}[{}]",
            position.topic, position.partition
        );
    }
}

/// Whether `group` has committed the high watermark of every partition of `topics`.
pub fn group_at_end(group: &str, topics: &[&str]) -> bool {
    group_positions(group, topics)
        .is_ok_and(|positions| positions.iter().all(|p| p.committed == p.high))
}

/// The scheduled and results topics under a fresh prefix, both compacted, 2 partitions.
pub async fn create_schedule_topics(prefix: &str) -> ScheduleTopics {
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", bootstrap())
        .create()
        .expect("admin client");
    let names = ScheduleTopics::with_prefix(prefix);
    let topics: Vec<NewTopic<'_>> = [&names.scheduled, &names.results]
        .into_iter()
        .map(|name| {
            NewTopic::new(name, PARTITIONS, TopicReplication::Fixed(1))
                .set("cleanup.policy", "compact")
        })
        .collect();
    for result in admin
        .create_topics(
            &topics,
            &AdminOptions::new().operation_timeout(Some(Duration::from_secs(30))),
        )
        .await
        .unwrap_or_else(|e| panic!("no Kafka broker at {}: {e}", bootstrap()))
    {
        result.expect("topic created");
    }
    names
}

/// Deletes the topics of [`create_schedule_topics`].
pub async fn delete_schedule_topics(names: &ScheduleTopics) {
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", bootstrap())
        .create()
        .expect("admin client");
    let _ = admin
        .delete_topics(&[&names.scheduled, &names.results], &AdminOptions::new())
        .await;
}
