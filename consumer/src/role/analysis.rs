//! The `analysis` consumer-group role: reads the tweets, retweets and control topics, analyses
//! each post (language, sentiment), upserts one row per post id and applies delete notices:
//! the row goes, later inserts of the id are refused, and tombstones for the id go to the raw
//! topics so that compaction erases the post from Kafka too. A record that cannot be parsed
//! goes to the dead-letter topic with its original position and the reason.
//!
//! A Bluesky repost carries only its subject's AT URI. It is analysed as its subject, as an X
//! retweet is analysed as its original: the store copies the subject's text, language and
//! sentiment into the repost's row when it holds the subject (from this batch or an earlier
//! one, or later when the subject arrives), and otherwise keeps the row without text or
//! analysis ([`text_plan`]).

use anyhow::Context as _;
use rdkafka::consumer::BaseConsumer;
use rdkafka::message::{BorrowedMessage, Message};
use tokio_util::sync::CancellationToken;
use tweet_pipeline_common::config::TopicNames;
use tweet_pipeline_common::metrics::ConsumerMetrics;
use tweet_pipeline_common::post::{parse_post, Post, PostKind};
use tweet_pipeline_common::{headers, route_line, Destination, Kind, LineClass, Routed};

use crate::cli::{Cli, Role};
use crate::role;
use crate::runner::outputs::Outputs;
use crate::runner::{self, Handler, RebalanceContext};
use crate::store::{BatchOutcome, PostRow, SourcePosition, Store, TextFrom, Write};
use crate::summary::AnalysisSummary;
use crate::text::{Analysis, Analyzer, AnalyzerOptions};

/// The analysis role's batch handler.
pub struct AnalysisHandler {
    topics: TopicNames,
    /// `None` with `--no-analysis`: posts are parsed and stored without language or sentiment.
    analyzer: Option<Analyzer>,
    store: Store,
    outputs: Outputs,
    metrics: ConsumerMetrics,
    /// Reused per batch: the writes planned for it.
    writes: Vec<Write>,
    /// Reused per batch: (topic role, kind, received_at_ms) of every record, for metrics.
    seen: Vec<(Destination, Kind, Option<i64>)>,
    /// Reused per batch: why records were skipped.
    skips: Vec<&'static str>,
    /// Reused per batch: records to dead-letter (index in the batch, metric reason, detail).
    poison: Vec<(usize, &'static str, String)>,
    /// Totals over the run.
    totals: BatchOutcome,
    skipped: u64,
    deadlettered: u64,
    tombstones: u64,
}

/// Totals of a run of the analysis role.
#[derive(Debug, Default, Clone, Copy)]
pub struct AnalysisTotals {
    /// What the store changed.
    pub outcome: BatchOutcome,
    /// Records neither stored nor dead-lettered (not the pipeline's topics).
    pub skipped: u64,
    /// Records written to the dead-letter topic.
    pub deadlettered: u64,
    /// Tombstones written to the raw topics.
    pub tombstones: u64,
}

impl AnalysisHandler {
    /// A handler writing to `store`; without an `analyzer` (`--no-analysis`) posts are stored
    /// without language and sentiment.
    pub fn new(
        topics: TopicNames,
        store: Store,
        outputs: Outputs,
        metrics: ConsumerMetrics,
        analyzer: Option<Analyzer>,
    ) -> Self {
        Self {
            topics,
            analyzer,
            store,
            outputs,
            metrics,
            writes: Vec::new(),
            seen: Vec::new(),
            skips: Vec::new(),
            poison: Vec::new(),
            totals: BatchOutcome::default(),
            skipped: 0,
            deadlettered: 0,
            tombstones: 0,
        }
    }

    /// What the run changed so far.
    pub fn totals(&self) -> AnalysisTotals {
        AnalysisTotals {
            outcome: self.totals,
            skipped: self.skipped,
            deadlettered: self.deadlettered,
            tombstones: self.tombstones,
        }
    }

    fn poison(
        &mut self,
        index: usize,
        message: &BorrowedMessage<'_>,
        reason: &'static str,
        detail: String,
    ) {
        tracing::warn!(
            topic = message.topic(),
            partition = message.partition(),
            offset = message.offset(),
            reason,
            detail,
            "record dead-lettered"
        );
        self.poison.push((index, reason, detail));
    }

    fn skip(
        &mut self,
        message: &BorrowedMessage<'_>,
        reason: &'static str,
        detail: &dyn std::fmt::Display,
    ) {
        self.skips.push(reason);
        tracing::warn!(
            topic = message.topic(),
            partition = message.partition(),
            offset = message.offset(),
            reason,
            %detail,
            "record skipped"
        );
    }

    fn plan(&mut self, index: usize, message: &BorrowedMessage<'_>) {
        let Some(payload) = message.payload() else {
            // A tombstone for a deleted post (this group writes them): nothing to analyse.
            self.skips.push("tombstone");
            return;
        };
        let Some(destination) = self.topics.destination(message.topic()) else {
            self.skip(
                message,
                "foreign_topic",
                &"not one of the pipeline's topics",
            );
            return;
        };
        let received_at_ms = headers::get(message.headers(), headers::RECEIVED_AT_MS)
            .and_then(|v| v.parse().ok())
            .or_else(|| message.timestamp().to_millis());
        // Records written by tweet-producer say their kind; others (kafka-console-producer,
        // other tools) are routed here the same way the producer would have.
        let kind = headers::get(message.headers(), headers::KIND)
            .and_then(Kind::parse)
            .unwrap_or_else(|| route(payload).map_or(Kind::Unknown, |r| r.kind));
        self.seen.push((destination, kind, received_at_ms));
        let source = SourcePosition {
            topic: message.topic().to_owned(),
            partition: message.partition(),
            offset: message.offset(),
        };
        match (destination, kind) {
            (Destination::Tweets | Destination::Retweets, _) => match parse_post(payload) {
                Ok(post) => {
                    let (text_from, reposts_follow) = text_plan(&post);
                    let analysis = match (&self.analyzer, text_from) {
                        (Some(analyzer), TextFrom::Record) => {
                            analyzer.analyze(&post.text, post.lang.as_deref())
                        }
                        // Nothing to analyse: the store copies the subject's analysis.
                        (_, TextFrom::Missing | TextFrom::Subject) | (None, _) => {
                            Analysis::default()
                        }
                    };
                    if text_from == TextFrom::Record {
                        self.metrics
                            .posts_analysed
                            .with_label_values(&[
                                analysis.language.unwrap_or("unknown"),
                                analysis
                                    .sentiment
                                    .map(|s| s.label.as_str())
                                    .unwrap_or("none"),
                            ])
                            .inc();
                    }
                    self.writes.push(Write::Upsert(Box::new(PostRow {
                        id: post.id.into_owned(),
                        kind: post.kind.as_str(),
                        retweet_of: post.retweet_of.map(|id| id.into_owned()),
                        created_at: post.created_at.map(|t| t.to_rfc3339()),
                        author: post.author.map(|a| a.into_owned()),
                        text: post.text.into_owned(),
                        lang: post.lang.map(|l| l.into_owned()),
                        detected_lang: analysis.language,
                        detected_confidence: analysis.confidence,
                        sentiment: analysis
                            .sentiment
                            .map(|s| (s.compound, s.pos, s.neu, s.neg, s.label.as_str())),
                        received_at_ms,
                        source,
                        hashtags: json_list(&post.hashtags),
                        mentions: json_list(&post.mentions),
                        reply_to: post.reply_to.map(|id| id.into_owned()),
                        quote_of: post.quote_of.map(|id| id.into_owned()),
                        embed: post.embed,
                        text_from,
                        reposts_follow,
                    })));
                }
                Err(error) => self.poison(
                    index,
                    message,
                    "unparseable",
                    format!("the consumer cannot parse this post: {error}"),
                ),
            },
            (Destination::Control, Kind::Delete) => {
                let key = message
                    .key()
                    .and_then(|k| std::str::from_utf8(k).ok())
                    .map(str::to_owned)
                    .or_else(|| route(payload).and_then(|r| r.key).map(|k| k.into_owned()));
                match key {
                    Some(id) => {
                        let reposts_follow = is_bluesky(&id);
                        self.writes.push(Write::Delete {
                            id,
                            source,
                            reposts_follow,
                        })
                    }
                    None => self.poison(
                        index,
                        message,
                        "no_id",
                        "delete notice without a post id".to_owned(),
                    ),
                }
            }
            (Destination::Control, Kind::Compliance) => {
                self.plan_compliance(index, message, source)
            }
            // Limits, disconnects, warnings, ...: counted, nothing to store.
            (Destination::Control, _) => {}
            (Destination::DeadLetter, _) => {}
        }
    }
}

impl AnalysisHandler {
    /// An X API v2 compliance record (`tweet-consumer compliance`): a post that must go is
    /// deleted exactly as by a v1.1 delete notice (row removed, id kept out, tombstone);
    /// `withheld` is recorded in the row's `withheld` column; `scrub_geo` has nothing to clear
    /// (the store keeps no geo columns); another action is skipped with a warning.
    fn plan_compliance(
        &mut self,
        index: usize,
        message: &BorrowedMessage<'_>,
        source: SourcePosition,
    ) {
        use tweet_pipeline_common::compliance::{ComplianceAction, ComplianceRecord};
        let payload = message.payload().unwrap_or_default();
        let record = match serde_json::from_slice::<ComplianceRecord>(payload) {
            Ok(record) => record,
            Err(error) => {
                return self.poison(
                    index,
                    message,
                    "unparseable",
                    format!("the consumer cannot parse this compliance record: {error}"),
                );
            }
        };
        let event = record.compliance.event;
        match ComplianceAction::parse(&event.action) {
            ComplianceAction::Remove => self.writes.push(Write::Delete {
                id: event.id,
                source,
                reposts_follow: false,
            }),
            ComplianceAction::Withheld => {
                let line = serde_json::to_string(&event).unwrap_or_default();
                self.writes.push(Write::Withheld {
                    id: event.id,
                    event: line,
                });
            }
            ComplianceAction::ScrubGeo => self.skips.push("scrub_geo_no_geo_columns"),
            ComplianceAction::Other => {
                self.skip(message, "compliance_action_unknown", &event.action)
            }
        }
    }
}

/// Whether `id` is a Bluesky post's (an AT URI, `at://…`; AT Protocol "AT URI Scheme").
fn is_bluesky(id: &str) -> bool {
    id.starts_with("at://")
}

/// Where a post's text comes from, and whether its reposts' rows follow it.
///
/// A Bluesky repost has no text of its own ([`TextFrom::Missing`]: not analysed; the store
/// fills it from the subject's row when it holds one) and a Bluesky post's reposts follow it.
/// Everything else carries the text it is analysed by ([`TextFrom::Record`]), an X retweet or a
/// Mastodon reblog its original's.
fn text_plan(post: &Post<'_>) -> (TextFrom, bool) {
    match (is_bluesky(&post.id), post.kind) {
        (true, PostKind::Retweet) => (TextFrom::Missing, false),
        (true, PostKind::Tweet) => (TextFrom::Record, true),
        (false, _) => (TextFrom::Record, false),
    }
}

/// A JSON array of `items` (`["a","b"]`), `None` when empty.
fn json_list(items: &[std::borrow::Cow<'_, str>]) -> Option<String> {
    if items.is_empty() {
        return None;
    }
    serde_json::to_string(items).ok()
}

fn route(payload: &[u8]) -> Option<Routed<'_>> {
    match route_line(payload) {
        LineClass::Record(routed) => Some(routed),
        LineClass::KeepAlive => None,
    }
}

impl Handler for AnalysisHandler {
    fn handle(&mut self, batch: &[BorrowedMessage<'_>]) -> anyhow::Result<()> {
        self.writes.clear();
        self.seen.clear();
        self.skips.clear();
        self.poison.clear();
        for (index, message) in batch.iter().enumerate() {
            self.plan(index, message);
        }
        // Dead letters and tombstones are written once the store's writes succeeded and are
        // durable in Kafka before the store commits (and so before the batch's offsets can be
        // stored). If Kafka fails, the store rolls back and the whole batch is retried, its
        // dead letters and tombstones written again (harmless).
        // A tombstone goes to the topic of each post the store erased: a stored row a delete
        // removed, or a post refused because its delete came first. A delete for a post this
        // group never stored erases nothing (most deletes on a sampled stream).
        let (outputs, poison) = (&mut self.outputs, &self.poison);
        let mut tombstones = 0;
        let committed_at = headers::now_ms();
        let outcome = self
            .store
            .apply(&self.writes, committed_at, |erased| {
                for (index, _, detail) in poison {
                    outputs.dead_letter(&batch[*index], detail);
                }
                for post in erased {
                    outputs.tombstone(&post.topic, &post.id);
                }
                tombstones = erased.len() as u64;
                outputs.flush().map_err(|error| format!("{error:#}").into())
            })
            .context(
                "writing the batch to the store and its dead letters and tombstones to Kafka",
            )?;
        // Counted only once the batch is committed: a failed batch is offered again.
        self.tombstones += tombstones;
        self.metrics.tombstones_written.inc_by(tombstones);
        self.deadlettered += self.poison.len() as u64;
        for (_, reason, _) in &self.poison {
            self.metrics
                .records_deadlettered
                .with_label_values(&[reason])
                .inc();
        }
        self.skipped += self.skips.len() as u64;
        for reason in &self.skips {
            self.metrics
                .records_skipped
                .with_label_values(&[reason])
                .inc();
        }
        self.totals.rows_written += outcome.rows_written;
        self.totals.rows_suppressed += outcome.rows_suppressed;
        self.totals.deletes_applied += outcome.deletes_applied;
        self.metrics.rows_written.inc_by(outcome.rows_written);
        self.metrics.deletes_applied.inc_by(outcome.deletes_applied);
        self.metrics
            .batch_records
            .with_label_values(&["analysis"])
            .observe(batch.len() as f64);
        for (destination, kind, received_at_ms) in &self.seen {
            self.metrics
                .records
                .with_label_values(&[destination.as_str(), kind.as_str()])
                .inc();
            if let Some(received) = received_at_ms {
                let seconds = (committed_at - received).max(0) as f64 / 1000.0;
                self.metrics
                    .processing_latency
                    .with_label_values(&[destination.as_str()])
                    .observe(seconds);
            }
        }
        Ok(())
    }
}
/// Runs the analysis role of `cli`'s group on `consumer` until shutdown (or the end, with
/// `--exit-at-end`): opens the store and the dead-letter producer on the consumer's thread
/// and returns the run's summary.
///
/// # Errors
/// An invalid `--languages`/`--detector` pair, a store that cannot be opened, a producer that
/// cannot be made, or a failed loop.
pub async fn run(
    cli: &Cli,
    consumer: BaseConsumer<RebalanceContext>,
    metrics: ConsumerMetrics,
    shutdown: &CancellationToken,
) -> anyhow::Result<AnalysisSummary> {
    let topics = role::topics(Role::Analysis, &cli.topics);
    tracing::info!(group = %cli.group, role = ?Role::Analysis, topics = ?topics, db = %cli.db, "consuming");
    let (db, names) = (cli.db.clone(), cli.topics.clone());
    let analyzer = match cli.no_analysis {
        true => None,
        false => Some(
            Analyzer::with_options(AnalyzerOptions {
                detector: cli.detector,
                languages: cli.languages.clone().map(|l| l.0),
                sentiment: cli.sentiment,
                models: None,
            })
            .map_err(anyhow::Error::msg)?,
        ),
    };
    let (kafka, group) = (cli.kafka.clone(), cli.group.clone());
    let make = move || {
        let store = Store::open(&db).with_context(|| format!("cannot open the store {db}"))?;
        let outputs = Outputs::new(&kafka, names.deadletter.clone(), &group)?;
        Ok(AnalysisHandler::new(
            names, store, outputs, metrics, analyzer,
        ))
    };
    let config = role::runner_config(cli);
    let (stats, totals) =
        runner::run_handler(consumer, &topics, make, |h| h.totals(), config, shutdown).await?;
    Ok(AnalysisSummary::new(&cli.group, &stats, &totals))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bluesky_reposts_are_filled_by_the_store_and_posts_are_followed() {
        let repost = parse_post(br#"{"did":"did:plc:a","time_us":1,"kind":"commit","commit":{"operation":"create","collection":"app.bsky.feed.repost","rkey":"r","record":{"subject":{"uri":"at://did:plc:b/app.bsky.feed.post/p","cid":"c"},"createdAt":"2026-07-04T14:38:06Z"}}}"#).unwrap();
        assert_eq!(text_plan(&repost), (TextFrom::Missing, false));
        let post = parse_post(br#"{"did":"did:plc:b","time_us":1,"kind":"commit","commit":{"operation":"create","collection":"app.bsky.feed.post","rkey":"p","record":{"text":"hi","createdAt":"2026-07-04T14:38:06Z"}}}"#).unwrap();
        assert_eq!(text_plan(&post), (TextFrom::Record, true));
        let retweet = parse_post(
            br#"{"id_str":"9","text":"RT @a: x","retweeted_status":{"id_str":"5","text":"x"}}"#,
        )
        .unwrap();
        assert_eq!(text_plan(&retweet), (TextFrom::Record, false));
        assert!(is_bluesky("at://did:plc:b/app.bsky.feed.post/p") && !is_bluesky("123"));
    }

    #[test]
    fn lists_are_json_arrays_or_null() {
        assert_eq!(json_list(&[]), None);
        assert_eq!(
            json_list(&["a".into(), "b \"c\"".into()]).as_deref(),
            Some(r#"["a","b \"c\""]"#)
        );
    }
}
