//! Delivery to Kafka: one idempotent producer, every record accounted for.
//!
//! A record counts as sent only when the broker acknowledged it (the delivery callback says
//! so). Memory is bounded by librdkafka's local queue (`queue.buffering.max.kbytes`). When the
//! queue stays full for `spill_after` (the broker is unreachable or slow), records go to the
//! on-disk [`Spool`] instead, and from then on every new record goes there too until a drainer
//! thread has handed the spool back to Kafka, so order is kept. A record librdkafka gives up on
//! (its retries or `message.timeout.ms` exhausted) goes to the spool as well, never lost. A
//! full spool pauses reading (backpressure) and says so. At the end, [`KafkaSink::finish`]
//! drains, flushes, moves whatever Kafka did not acknowledge in time to the spool, and reports.
//!
//! One file per concern: `sink` ([`KafkaSink`]: sending and finishing), `context` (the
//! delivery callback and the per-destination tally), `spill` (the spool behind its lock),
//! `drainer` (the thread that empties the spool into Kafka), `report` ([`DeliveryReport`]) and
//! `watermark` ([`Watermark`]: the newest stream position up to which every record is safe, for
//! a source that resumes from a cursor).

mod context;
mod drainer;
mod report;
mod sink;
mod spill;
mod watermark;

pub use report::DeliveryReport;
pub use sink::{KafkaSink, OutRecord, SpoolSettings};
pub use watermark::{Watermark, WatermarkState};
