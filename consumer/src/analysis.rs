//! The `analysis` consumer-group role: reads the tweets, retweets and control topics, analyses
//! each post (language, sentiment), upserts one row per post id and applies delete notices.

use anyhow::Context as _;
use rdkafka::message::{BorrowedMessage, Message};
use tweet_pipeline_common::config::TopicNames;
use tweet_pipeline_common::metrics::ConsumerMetrics;
use tweet_pipeline_common::post::parse_post;
use tweet_pipeline_common::{headers, route_line, Destination, Kind, LineClass, Routed};

use crate::analyze::{Analysis, Analyzer};
use crate::runner::Handler;
use crate::store::{BatchOutcome, PostRow, SourcePosition, Store, Write};

/// The analysis role's batch handler.
pub struct AnalysisHandler {
    topics: TopicNames,
    /// `None` with `--no-analysis`: posts are parsed and stored without language or sentiment.
    analyzer: Option<Analyzer>,
    store: Store,
    metrics: ConsumerMetrics,
    /// Reused per batch: the writes planned for it.
    writes: Vec<Write>,
    /// Reused per batch: (topic role, kind, received_at_ms) of every record, for metrics.
    seen: Vec<(Destination, Kind, Option<i64>)>,
    /// Reused per batch: why records were skipped.
    skips: Vec<&'static str>,
    /// Totals over the run.
    totals: BatchOutcome,
    skipped: u64,
}

impl AnalysisHandler {
    /// A handler writing to `store`; `analyze: false` skips language and sentiment;
    /// `languages` limits detection to an allow-list.
    pub fn new(
        topics: TopicNames,
        store: Store,
        metrics: ConsumerMetrics,
        analyze: bool,
        languages: Option<Vec<whatlang::Lang>>,
    ) -> Self {
        Self {
            topics,
            analyzer: analyze.then(|| Analyzer::with_languages(languages)),
            store,
            metrics,
            writes: Vec::new(),
            seen: Vec::new(),
            skips: Vec::new(),
            totals: BatchOutcome::default(),
            skipped: 0,
        }
    }

    /// What the run changed in the store so far, and how many records were skipped.
    pub fn totals(&self) -> (BatchOutcome, u64) {
        (self.totals, self.skipped)
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

    fn plan(&mut self, message: &BorrowedMessage<'_>) {
        let Some(destination) = self.topics.destination(message.topic()) else {
            self.skip(
                message,
                "foreign_topic",
                &"not one of the pipeline's topics",
            );
            return;
        };
        let payload = message.payload().unwrap_or_default();
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
                    let analysis = match &self.analyzer {
                        Some(analyzer) => analyzer.analyze(&post.text, post.lang.as_deref()),
                        None => Analysis::default(),
                    };
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
                    })));
                }
                Err(error) => self.skip(message, "unparseable", &error),
            },
            (Destination::Control, Kind::Delete) => {
                let key = message
                    .key()
                    .and_then(|k| std::str::from_utf8(k).ok())
                    .map(str::to_owned)
                    .or_else(|| route(payload).and_then(|r| r.key).map(|k| k.into_owned()));
                match key {
                    Some(id) => self.writes.push(Write::Delete { id, source }),
                    None => self.skip(message, "no_id", &"delete notice without a post id"),
                }
            }
            // Limits, disconnects, warnings, ...: counted, nothing to store.
            (Destination::Control, _) => {}
            (Destination::DeadLetter, _) => {}
        }
    }
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
        for message in batch {
            self.plan(message);
        }
        let committed_at = headers::now_ms();
        let outcome = match self.store.apply(&self.writes, committed_at) {
            Ok(outcome) => outcome,
            Err(error) => return Err(error).context("writing the batch to the store"),
        };
        // Counted only once the batch is committed: a failed batch is offered again.
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
