//! Kafka I/O of the scheduled topics: enqueueing posts and cancelling them with tombstones on
//! the compacted `scheduled` topic ([`write`]), and reading a topic's partitions to their end
//! ([`read`]), as `schedule list` and the poster's assignment loading do.

pub mod read;
pub mod write;

pub use read::{partitions_of, read_to_end, read_topic, RawRecord};
pub use write::{cancel, enqueue, schedule_producer, KAFKA_TIMEOUT};
