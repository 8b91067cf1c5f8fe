//! Reading the scheduled topics back: every record of some partitions from the beginning to the
//! high watermarks they had when the read began (compacted topics: the latest value per key).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use rdkafka::client::{Client, ClientContext};
use rdkafka::consumer::{BaseConsumer, Consumer as _, ConsumerContext};
use rdkafka::message::Message as _;
use rdkafka::{Offset, TopicPartitionList};
use tweet_pipeline_common::config::KafkaArgs;
use tweet_pipeline_common::kafka;

use super::write::KAFKA_TIMEOUT;

/// One record read back by [`read_to_end`]: partition, key, value (`None` for a tombstone).
pub type RawRecord = (i32, String, Option<Vec<u8>>);

/// Reads `partitions` of `topic` from the beginning to the high watermarks they had when the
/// call began, with `consumer` (which must not be subscribed: this assigns partitions to it and
/// leaves them assigned). Records without a key are skipped.
///
/// # Errors
/// When the watermarks cannot be fetched, a fetch fails, or the end is not reached within
/// `timeout`.
pub fn read_to_end<C: ConsumerContext>(
    consumer: &BaseConsumer<C>,
    topic: &str,
    partitions: &[i32],
    timeout: Duration,
) -> anyhow::Result<Vec<RawRecord>> {
    let deadline = Instant::now() + timeout;
    let mut ends = HashMap::new();
    let mut assignment = TopicPartitionList::new();
    for &partition in partitions {
        let (low, high) = consumer
            .fetch_watermarks(topic, partition, timeout)
            .with_context(|| format!("cannot read the end offsets of {topic}[{partition}]"))?;
        if high > low {
            ends.insert(partition, high);
            assignment
                .add_partition_offset(topic, partition, Offset::Beginning)
                .context("building the partition list")?;
        }
    }
    let mut records = Vec::new();
    if ends.is_empty() {
        return Ok(records);
    }
    consumer
        .assign(&assignment)
        .with_context(|| format!("cannot assign the partitions of {topic}"))?;
    while !ends.is_empty() {
        if Instant::now() > deadline {
            anyhow::bail!("reading {topic} to its end took longer than {timeout:?}");
        }
        match consumer.poll(Duration::from_millis(100)) {
            Some(Ok(message)) => {
                let partition = message.partition();
                if let Some(key) = message.key() {
                    records.push((
                        partition,
                        String::from_utf8_lossy(key).into_owned(),
                        message.payload().map(<[u8]>::to_vec),
                    ));
                }
                if ends
                    .get(&partition)
                    .is_some_and(|end| message.offset() + 1 >= *end)
                {
                    ends.remove(&partition);
                }
            }
            Some(Err(error)) => {
                return Err(error).with_context(|| format!("cannot read {topic}"));
            }
            None => {
                // Compaction may have removed the offsets just before the end: ask for the
                // position instead of waiting for a record that no longer exists.
                if let Ok(positions) = consumer.position() {
                    for element in positions.elements_for_topic(topic) {
                        if let Offset::Offset(position) = element.offset() {
                            if ends
                                .get(&element.partition())
                                .is_some_and(|end| position >= *end)
                            {
                                ends.remove(&element.partition());
                            }
                        }
                    }
                }
            }
        }
    }
    Ok(records)
}

/// The partition numbers of `topic`, from a metadata request.
///
/// # Errors
/// When the metadata request fails or the topic does not exist.
pub fn partitions_of<C: ClientContext>(
    client: &Client<C>,
    topic: &str,
    timeout: Duration,
) -> anyhow::Result<Vec<i32>> {
    let metadata = client
        .fetch_metadata(Some(topic), timeout)
        .with_context(|| format!("cannot read the metadata of {topic}"))?;
    let partitions: Vec<i32> = metadata
        .topics()
        .iter()
        .filter(|t| t.name() == topic && t.error().is_none())
        .flat_map(|t| t.partitions().iter().map(|p| p.id()))
        .collect();
    if partitions.is_empty() {
        anyhow::bail!("topic '{topic}' does not exist; create the topics with ./topics.sh");
    }
    Ok(partitions)
}

/// Every partition of `topic` read to its end by a fresh, unsubscribed consumer (group
/// `tweet-producer-schedule-list`, which never commits anything it reads here). Blocks: call
/// it off the async reactor.
///
/// # Errors
/// An invalid Kafka configuration, a missing topic, or a read that fails or times out
/// ([`KAFKA_TIMEOUT`]).
pub fn read_topic(kafka_args: &KafkaArgs, topic: &str) -> anyhow::Result<Vec<RawRecord>> {
    let consumer: BaseConsumer = kafka::consumer_config(
        kafka_args,
        "tweet-producer-schedule-list",
        "tweet-producer-schedule-list",
    )
    .create()
    .context("invalid Kafka consumer configuration (check -X properties)")?;
    let partitions = partitions_of(consumer.client(), topic, Duration::from_secs(10))?;
    read_to_end(&consumer, topic, &partitions, KAFKA_TIMEOUT)
}
