//! A run's summary: what was read and what Kafka acknowledged, printed at the end as a table
//! for people ([`fmt::Display`]) or as one JSON object (`--summary json`, [`serde::Serialize`]; the end-to-end tests read it back into this type).

use std::fmt;

use serde::{Deserialize, Serialize};
use tweet_pipeline_common::config::TopicNames;
use tweet_pipeline_common::PerDestination;

use crate::delivery::DeliveryReport;
use crate::ingest::IngestStats;

/// The summary of a stream or replay run of `tweet-producer`.
///
/// JSON form (`--summary json`): one object on one line, these fields, every count an integer
/// (records or lines, never bytes):
///
/// ```json
/// {"interrupted":false,"lines_read":12,"keepalives":1,
///  "topics":{"tweets":"tweets","retweets":"retweets","control":"control","deadletter":"deadletter"},
///  "acked":{"tweets":7,"retweets":2,"control":1,"deadletter":1},
///  "failed":0,"unacknowledged":0,"retried_via_spool":0,"spooled_left":0,"spooled_at_start":0,
///  "unmatched":0}
/// ```
///
/// `--source bluesky` adds `"cursor"`: the Jetstream `time_us` saved at the end.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProducerSummary {
    /// Whether SIGINT or SIGTERM stopped the run (text: "(stopped by signal)").
    pub interrupted: bool,
    /// Lines (or server-sent events) read, keep-alives included.
    pub lines_read: u64,
    /// Keep-alives: blank lines and SSE heartbeats, counted and not written.
    pub keepalives: u64,
    /// The topic name of each destination (`tweets`, `retweets`, `control`, `deadletter`).
    pub topics: PerDestination<String>,
    /// Records the broker acknowledged, per destination (text: "records -> <topic>").
    pub acked: PerDestination<u64>,
    /// Records refused for good (too large, not authorised, a corrupt spool segment): lost.
    pub failed: u64,
    /// Records still in librdkafka's memory when the producer stopped: lost with the process.
    pub unacknowledged: u64,
    /// Records Kafka gave up on that went to the spool to be sent again (each time).
    pub retried_via_spool: u64,
    /// Records waiting in the spool at the end (sent at the next start with the same spool).
    pub spooled_left: u64,
    /// Records a previous run had left in the spool at the start.
    pub spooled_at_start: u64,
    /// Bluesky: posts and reposts that matched no client-side rule (read, not written).
    #[serde(default)]
    pub unmatched: u64,
    /// Bluesky: the Jetstream cursor saved at the end (`time_us`); absent for other sources.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cursor: Option<i64>,
}

impl ProducerSummary {
    /// The summary of a run that read `stats` and delivered `report` to `topics`.
    pub fn new(
        stats: &IngestStats,
        interrupted: bool,
        report: &DeliveryReport,
        topics: &TopicNames,
    ) -> Self {
        Self {
            interrupted,
            lines_read: stats.lines_read,
            keepalives: stats.keepalives,
            topics: PerDestination::from_fn(|destination| topics.name(destination).to_owned()),
            acked: report.acked,
            failed: report.failed.total(),
            unacknowledged: report.unacknowledged(),
            retried_via_spool: report.returned.total(),
            spooled_left: report.spooled_left,
            spooled_at_start: report.spooled_at_start,
            unmatched: stats.unmatched,
            cursor: None,
        }
    }

    /// Lost records: refused for good, or unacknowledged in memory at exit.
    pub fn not_delivered(&self) -> u64 {
        self.failed + self.unacknowledged
    }
}

impl fmt::Display for ProducerSummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let stopped = if self.interrupted {
            " (stopped by signal)"
        } else {
            ""
        };
        writeln!(f, "tweet-producer summary{stopped}")?;
        let row = |f: &mut fmt::Formatter<'_>, label: &str, value: u64| {
            writeln!(f, "  {label:<24}{value:>10}")
        };
        row(f, "lines read", self.lines_read)?;
        row(f, "keep-alives (skipped)", self.keepalives)?;
        for (destination, acked) in self.acked.iter() {
            row(
                f,
                &format!("records -> {}", self.topics[destination]),
                *acked,
            )?;
        }
        row(f, "failed", self.failed)?;
        row(f, "unacknowledged", self.unacknowledged)?;
        row(f, "retried via the spool", self.retried_via_spool)?;
        row(f, "left in spool", self.spooled_left)?;
        if self.spooled_at_start > 0 {
            row(f, "from an earlier spool", self.spooled_at_start)?;
        }
        if self.unmatched > 0 {
            row(f, "matched no rule (skipped)", self.unmatched)?;
        }
        if let Some(cursor) = self.cursor {
            writeln!(f, "  {:<30}{cursor:>3}", "cursor saved (time_us)")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn summary() -> ProducerSummary {
        let stats = IngestStats {
            lines_read: 12,
            keepalives: 1,
            ..IngestStats::default()
        };
        let report = DeliveryReport {
            enqueued: PerDestination::from([7, 2, 1, 1]),
            acked: PerDestination::from([7, 2, 1, 1]),
            failed: PerDestination::default(),
            returned: PerDestination::default(),
            spooled_left: 0,
            spooled_at_start: 3,
        };
        ProducerSummary::new(&stats, true, &report, &TopicNames::with_prefix("p-"))
    }

    #[test]
    fn text_is_the_aligned_table() {
        let expected = "\
tweet-producer summary (stopped by signal)
  lines read                      12
  keep-alives (skipped)            1
  records -> p-tweets              7
  records -> p-retweets            2
  records -> p-control             1
  records -> p-deadletter          1
  failed                           0
  unacknowledged                   0
  retried via the spool            0
  left in spool                    0
  from an earlier spool            3
";
        assert_eq!(summary().to_string(), expected);
    }

    #[test]
    fn json_has_snake_case_fields_and_integer_counts() {
        let json = serde_json::to_string(&summary()).unwrap();
        assert_eq!(
            json,
            concat!(
                r#"{"interrupted":true,"lines_read":12,"keepalives":1,"#,
                r#""topics":{"tweets":"p-tweets","retweets":"p-retweets","control":"p-control","deadletter":"p-deadletter"},"#,
                r#""acked":{"tweets":7,"retweets":2,"control":1,"deadletter":1},"#,
                r#""failed":0,"unacknowledged":0,"retried_via_spool":0,"spooled_left":0,"spooled_at_start":3,"#,
                r#""unmatched":0}"#
            )
        );
        let mut bluesky = summary();
        bluesky.unmatched = 4;
        bluesky.cursor = Some(1_751_639_888_085_434);
        let json = serde_json::to_string(&bluesky).unwrap();
        assert!(
            json.ends_with(r#""unmatched":4,"cursor":1751639888085434}"#),
            "{json}"
        );
        assert_eq!(
            serde_json::from_str::<ProducerSummary>(&json).unwrap(),
            bluesky
        );
    }
}
