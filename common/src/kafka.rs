//! Kafka client settings: the built-in librdkafka configuration of the producer and of the
//! consumers, with the user's `-X key=value` properties applied last.
//!
//! Property semantics: librdkafka CONFIGURATION.md (2.12).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use rdkafka::client::{Client, ClientContext};
use rdkafka::config::{ClientConfig, RDKafkaLogLevel};
use rdkafka::error::KafkaError;

use crate::config::KafkaArgs;

/// How often the same client error (by facility or error code) is logged above debug level.
/// librdkafka reports a refused connection on every reconnect attempt (every 100 ms to 10 s);
/// once per interval is enough for an operator, and the rest goes to debug.
const CLIENT_LOG_INTERVAL: Duration = Duration::from_secs(10);

/// Logs librdkafka's own log lines and client errors through `tracing`, each distinct error
/// at most once per [`CLIENT_LOG_INTERVAL`] at `warn` level (debug otherwise). Embed it in a
/// client context and forward `log` and `error` to it (the producer's delivery context and
/// the consumer's rebalance context do).
#[derive(Debug, Default)]
pub struct ClientLog {
    last_logged: Mutex<HashMap<String, Instant>>,
}

impl ClientLog {
    fn due(&self, key: &str) -> bool {
        let Ok(mut last) = self.last_logged.lock() else {
            return true;
        };
        let now = Instant::now();
        match last.get(key) {
            Some(at) if now.duration_since(*at) < CLIENT_LOG_INTERVAL => false,
            _ => {
                last.insert(key.to_owned(), now);
                true
            }
        }
    }

    /// Handles a librdkafka log line.
    pub fn log(&self, level: RDKafkaLogLevel, facility: &str, message: &str) {
        match level {
            RDKafkaLogLevel::Emerg
            | RDKafkaLogLevel::Alert
            | RDKafkaLogLevel::Critical
            | RDKafkaLogLevel::Error
            | RDKafkaLogLevel::Warning
                if self.due(facility) =>
            {
                tracing::warn!(facility, "librdkafka: {message}");
            }
            RDKafkaLogLevel::Notice | RDKafkaLogLevel::Info => {
                tracing::info!(facility, "librdkafka: {message}");
            }
            _ => tracing::debug!(facility, "librdkafka: {message}"),
        }
    }

    /// Handles a client-level error (the broker is unreachable, authentication failed, ...).
    pub fn error(&self, error: &KafkaError, reason: &str) {
        let key = format!("{:?}", error.rdkafka_error_code());
        if self.due(&key) {
            tracing::warn!(%error, "kafka client error: {reason} (repeats of this error are logged at debug for 10 s)");
        } else {
            tracing::debug!(%error, "kafka client error: {reason}");
        }
    }
}

/// Upper bound of librdkafka's producer queue in KiB (`queue.buffering.max.kbytes`).
/// librdkafka's default is 1 GiB; 32 MiB keeps the producer's memory bounded while still holding
/// several seconds of a full-rate stream (about 10,000 posts/s of 3 KB) if the broker is slow.
pub const PRODUCER_QUEUE_MAX_KBYTES: u32 = 32 * 1024;

/// Checks with one metadata request that the cluster answers within `timeout` and that every
/// topic in `topics` exists with at least one partition.
///
/// # Errors
/// A message naming the unreachable bootstrap address or the missing topic, and what to do.
pub fn check_topics<C: ClientContext>(
    client: &Client<C>,
    bootstrap: &str,
    topics: &[&str],
    timeout: Duration,
) -> anyhow::Result<()> {
    let metadata = client.fetch_metadata(None, timeout).with_context(|| {
        format!("cannot reach Kafka at {bootstrap}; start the local broker with scripts/kafka-local.sh start, or set --bootstrap")
    })?;
    for name in topics {
        let found = metadata.topics().iter().find(|t| t.name() == *name);
        match found {
            Some(topic) if topic.error().is_none() && !topic.partitions().is_empty() => {}
            _ => anyhow::bail!(
                "topic '{name}' does not exist on {bootstrap}; create the topics with ./topics.sh (or name existing ones with the --*-topic flags)"
            ),
        }
    }
    Ok(())
}

/// Producer settings: idempotent (which implies `acks=all`, bounded in-flight requests and
/// ordered retries, librdkafka CONFIGURATION.md `enable.idempotence`), lz4-compressed batches,
/// and a bounded local queue. A record counts as delivered only when the broker acknowledged it.
pub fn producer_config(kafka: &KafkaArgs, client_id: &str) -> ClientConfig {
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", &kafka.bootstrap)
        .set("client.id", client_id)
        .set("enable.idempotence", "true")
        .set("acks", "all")
        .set("compression.type", "lz4")
        // The Java client's partitioner (murmur2 of the key): a key lands in the same partition
        // whichever client writes it, so a tombstone written by a consumer (or by a Java tool)
        // meets the record it erases, as compaction requires. Keyless records go anywhere.
        .set("partitioner", "murmur2_random")
        // librdkafka's default since 1.7; stated so that the batching choice is visible here.
        .set("linger.ms", "5")
        .set("batch.num.messages", "10000")
        .set(
            "queue.buffering.max.kbytes",
            PRODUCER_QUEUE_MAX_KBYTES.to_string(),
        )
        .set("queue.buffering.max.messages", "100000")
        .set_log_level(RDKafkaLogLevel::Warning);
    apply_overrides(&mut config, kafka);
    config
}

/// Consumer settings for at-least-once processing: offsets are stored by the application only
/// after a record's side effect is durable (`enable.auto.offset.store=false`) and the stored
/// offsets are committed in the background every second and synchronously on revoke and at
/// shutdown (rust-rdkafka examples/at_least_once.rs). A new group starts at the earliest offset.
///
/// Prefetching (librdkafka CONFIGURATION.md), chosen by measurement with `scripts/bench.sh`'s
/// input (docs/benchmarks.md): the local queue holds at most 16 MiB
/// (`queued.max.messages.kbytes`, default 64 MiB, which alone took the analysis consumer's
/// RSS to about 146 MB), and a partition whose queue was full is fetched again 10 ms later
/// (`fetch.queue.backoff.ms`, default 1000 ms: reading 648 MB stalled for 0.5-0.7 s every
/// 20,000 records). Both can be overridden with `-X`.
pub fn consumer_config(kafka: &KafkaArgs, group_id: &str, client_id: &str) -> ClientConfig {
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", &kafka.bootstrap)
        .set("group.id", group_id)
        .set("client.id", client_id)
        .set("enable.auto.commit", "true")
        .set("auto.commit.interval.ms", "1000")
        .set("enable.auto.offset.store", "false")
        .set("auto.offset.reset", "earliest")
        .set("enable.partition.eof", "false")
        .set("queued.max.messages.kbytes", "16384")
        .set("fetch.queue.backoff.ms", "10")
        .set_log_level(RDKafkaLogLevel::Warning);
    apply_overrides(&mut config, kafka);
    config
}

/// Admin client settings (topic checks and creation in tests).
pub fn admin_config(kafka: &KafkaArgs) -> ClientConfig {
    let mut config = ClientConfig::new();
    config.set("bootstrap.servers", &kafka.bootstrap);
    apply_overrides(&mut config, kafka);
    config
}

/// Applies the user's librdkafka properties (`--kafka-config`, then `-X`) over `config`.
pub fn apply_overrides(config: &mut ClientConfig, kafka: &KafkaArgs) {
    for (key, value) in kafka.user_properties() {
        config.set(key, value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_properties_win() {
        let kafka = KafkaArgs {
            bootstrap: "127.0.0.1:1".to_owned(),
            config_file: None,
            properties: vec![("linger.ms".to_owned(), "50".to_owned())],
        };
        let config = producer_config(&kafka, "test");
        assert_eq!(config.get("linger.ms"), Some("50"));
        assert_eq!(config.get("enable.idempotence"), Some("true"));
        let config = consumer_config(&kafka, "g", "test");
        assert_eq!(config.get("enable.auto.offset.store"), Some("false"));
        assert_eq!(config.get("group.id"), Some("g"));
        assert_eq!(config.get("fetch.queue.backoff.ms"), Some("10"));
        let kafka = KafkaArgs {
            properties: vec![("queued.max.messages.kbytes".to_owned(), "4096".to_owned())],
            ..kafka
        };
        let config = consumer_config(&kafka, "g", "test");
        assert_eq!(config.get("queued.max.messages.kbytes"), Some("4096"));
    }
}
