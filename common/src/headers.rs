//! Names of the Kafka record headers the pipeline writes, and helpers to read them back.
//!
//! Every record the producer writes carries `kind`, `source` and `received_at_ms`; a
//! dead-lettered record also carries `error`, and one a consumer dead-lettered also the
//! `original_*` position and `dead_lettered_by`. Header values are UTF-8 text.

#[cfg(feature = "kafka")]
use rdkafka::message::{BorrowedHeaders, Headers};

/// Message kind, one of [`crate::Kind::as_str`] (`tweet`, `retweet`, `delete`, `limit`, ...).
pub const KIND: &str = "kind";
/// Where the line came from: `replay:<file name>`, `replay:stdin`, or a live source name.
pub const SOURCE: &str = "source";
/// When the producer received the line: milliseconds since the Unix epoch, decimal text.
/// The record timestamp (CreateTime) carries the same instant.
pub const RECEIVED_AT_MS: &str = "received_at_ms";
/// Why a line was dead-lettered (only on `deadletter` records).
pub const ERROR: &str = "error";
/// On a record a consumer dead-lettered: the topic it was read from.
pub const ORIGINAL_TOPIC: &str = "original_topic";
/// On a record a consumer dead-lettered: its partition (decimal text).
pub const ORIGINAL_PARTITION: &str = "original_partition";
/// On a record a consumer dead-lettered: its offset (decimal text).
pub const ORIGINAL_OFFSET: &str = "original_offset";
/// On a record a consumer dead-lettered: the consumer group that gave up on it.
pub const DEAD_LETTERED_BY: &str = "dead_lettered_by";
/// Comma-separated tags of the X API v2 rules that matched the post (`matching_rules[].tag`),
/// only on v2 posts whose rules have tags.
pub const MATCHING_RULES: &str = "matching_rules";

/// The current time in milliseconds since the Unix epoch: the unit of [`RECEIVED_AT_MS`] and
/// of record timestamps (0 if the clock is before 1970).
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or_default()
}

/// The value of the first header named `name`, if present and UTF-8.
#[cfg(feature = "kafka")]
pub fn get<'a>(headers: Option<&'a BorrowedHeaders>, name: &str) -> Option<&'a str> {
    let headers = headers?;
    headers
        .iter()
        .find(|header| header.key == name)
        .and_then(|header| header.value)
        .and_then(|value| std::str::from_utf8(value).ok())
}
