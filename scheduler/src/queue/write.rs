//! Writing the `scheduled` topic: posts keyed by their stable id (so a re-run writes the same
//! keys and compaction keeps one record per post) and tombstones that cancel them.

use std::time::Duration;

use anyhow::{bail, Context as _};
use rdkafka::producer::{FutureProducer, FutureRecord, Producer as _};
use tweet_pipeline_common::config::{KafkaArgs, ScheduleTopics};
use tweet_pipeline_common::kafka;

use crate::model::ScheduledPost;

/// How long the schedule waits for Kafka (metadata, acknowledgements, reading back).
pub const KAFKA_TIMEOUT: Duration = Duration::from_secs(30);

/// The idempotent producer of `tweet-producer schedule` (client id `tweet-producer-schedule`),
/// once the scheduled topic is known to exist.
///
/// # Errors
/// An invalid Kafka configuration (`-X`), an unreachable broker, a missing topic.
pub fn schedule_producer(
    kafka_args: &KafkaArgs,
    topics: &ScheduleTopics,
) -> anyhow::Result<FutureProducer> {
    let producer: FutureProducer = kafka::producer_config(kafka_args, "tweet-producer-schedule")
        .create()
        .context("invalid Kafka producer configuration (check -X properties)")?;
    kafka::check_topics(
        producer.client(),
        &kafka_args.bootstrap,
        &[topics.scheduled.as_str()],
        Duration::from_secs(10),
    )?;
    Ok(producer)
}

/// Writes `posts` to `topic` (key: the post's id; value: its JSON) and awaits every
/// acknowledgement. Returns how many were not acknowledged (each is logged at error).
///
/// # Errors
/// When a post cannot be serialised (nothing is then written).
pub async fn enqueue(
    producer: &FutureProducer,
    topic: &str,
    posts: &[ScheduledPost],
) -> anyhow::Result<usize> {
    let values = posts
        .iter()
        .map(serde_json::to_vec)
        .collect::<Result<Vec<_>, _>>()
        .context("serialising a scheduled post")?;
    let mut deliveries = Vec::with_capacity(posts.len());
    for (post, value) in posts.iter().zip(&values) {
        let record = FutureRecord::to(topic).key(&post.id).payload(value);
        deliveries.push(producer.send(record, KAFKA_TIMEOUT));
    }
    // The producer resolves the deliveries as acknowledgements arrive; all are awaited, so
    // nothing is left to flush.
    let mut failed = 0;
    for delivery in deliveries {
        if let Err((error, _)) = delivery.await {
            tracing::error!(%error, "a scheduled post was not acknowledged");
            failed += 1;
        }
    }
    Ok(failed)
}

/// Cancels the post `id` by writing a tombstone (a null value) for its key to `topic`, and
/// awaits the acknowledgement.
///
/// # Errors
/// When `id` does not look like a scheduled post id (`sp-...`), or Kafka does not acknowledge
/// the tombstone.
pub async fn cancel(producer: &FutureProducer, topic: &str, id: &str) -> anyhow::Result<()> {
    if !id.starts_with("sp-") {
        bail!("'{id}' is not a scheduled post id (they look like sp-0123456789abcdef)");
    }
    let record: FutureRecord<'_, str, [u8]> = FutureRecord::to(topic).key(id);
    producer
        .send(record, KAFKA_TIMEOUT)
        .await
        .map_err(|(error, _)| error)
        .with_context(|| format!("cannot write the tombstone for {id}"))?;
    Ok(())
}
