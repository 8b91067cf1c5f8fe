//! Delivery to Kafka: one idempotent producer, every record accounted for.

mod sink;

pub use sink::*;
