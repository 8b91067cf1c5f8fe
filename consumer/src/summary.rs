//! A run's summary: what a consumer group role read and did, or what an offline subcommand
//! found, printed at the end as a table for people ([`fmt::Display`]) or as one JSON object
//! (`--summary json`, [`serde::Serialize`]). The end-to-end tests read the JSON form into these
//! same types; the text labels are a contract too, for operators' scripts.

use std::fmt;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::role::analysis::AnalysisTotals;
use crate::role::archive::ArchiveTotals;
use crate::runner::RunStats;
use crate::store::LanguageSentiment;

/// One `  label      value` row of a role's summary: the label left-aligned in 28 columns,
/// the count right-aligned in 10.
pub(crate) fn row(
    f: &mut fmt::Formatter<'_>,
    label: &str,
    value: impl fmt::Display,
) -> fmt::Result {
    writeln!(f, "  {label:<28}{value:>10}")
}

/// The summary of a run of the `analysis` role.
///
/// JSON form (`--summary json`): one object on one line, every count an integer (records or
/// rows):
///
/// ```json
/// {"group":"analysis","records_consumed":10,"rows_written":7,"deletes_applied":1,
///  "posts_kept_out":1,"records_dead_lettered":1,"tombstones_written":2,"records_skipped":0}
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AnalysisSummary {
    /// The consumer group id.
    pub group: String,
    /// Records handled (and whose offsets were stored).
    pub records_consumed: u64,
    /// Rows inserted or updated.
    pub rows_written: u64,
    /// Delete notices applied.
    pub deletes_applied: u64,
    /// Upserts refused because the post was deleted (text: "posts kept out (deleted)").
    pub posts_kept_out: u64,
    /// Records written to the dead-letter topic.
    pub records_dead_lettered: u64,
    /// Tombstones written to the raw topics.
    pub tombstones_written: u64,
    /// Records neither stored nor dead-lettered (not the pipeline's topics).
    pub records_skipped: u64,
}

impl AnalysisSummary {
    /// The summary of group `group`'s run: `stats` from the loop, `totals` from the handler.
    pub fn new(group: &str, stats: &RunStats, totals: &AnalysisTotals) -> Self {
        Self {
            group: group.to_owned(),
            records_consumed: stats.records,
            rows_written: totals.outcome.rows_written,
            deletes_applied: totals.outcome.deletes_applied,
            posts_kept_out: totals.outcome.rows_suppressed,
            records_dead_lettered: totals.deadlettered,
            tombstones_written: totals.tombstones,
            records_skipped: totals.skipped,
        }
    }
}

impl fmt::Display for AnalysisSummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "tweet-consumer summary (group {})", self.group)?;
        row(f, "records consumed", self.records_consumed)?;
        row(f, "rows written", self.rows_written)?;
        row(f, "deletes applied", self.deletes_applied)?;
        row(f, "posts kept out (deleted)", self.posts_kept_out)?;
        row(f, "records dead-lettered", self.records_dead_lettered)?;
        row(f, "tombstones written", self.tombstones_written)?;
        row(f, "records skipped", self.records_skipped)
    }
}

/// The summary of a run of the `archive` role.
///
/// JSON form (`--summary json`): one object on one line, every count an integer:
///
/// ```json
/// {"group":"archive","records_consumed":10,"records_archived":10,"files_finished":2,
///  "records_skipped":0,"partitions_failed":0}
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ArchiveSummary {
    /// The consumer group id.
    pub group: String,
    /// Records handled (and whose offsets were stored).
    pub records_consumed: u64,
    /// Records written to files (durable or not yet).
    pub records_archived: u64,
    /// Files finished (fsynced and renamed).
    pub files_finished: u64,
    /// Records without a value or with a value holding a newline (not a JSON line).
    pub records_skipped: u64,
    /// Partitions whose archive file failed (the run then exits 1; run again to archive them).
    pub partitions_failed: u64,
}

impl ArchiveSummary {
    /// The summary of group `group`'s run: `stats` from the loop, `totals` and the number of
    /// `failed` partitions from the handler.
    pub fn new(group: &str, stats: &RunStats, totals: &ArchiveTotals, failed: usize) -> Self {
        Self {
            group: group.to_owned(),
            records_consumed: stats.records,
            records_archived: totals.records_written,
            files_finished: totals.files_finished,
            records_skipped: totals.records_skipped,
            partitions_failed: failed as u64,
        }
    }
}

impl fmt::Display for ArchiveSummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "tweet-consumer summary (group {})", self.group)?;
        row(f, "records consumed", self.records_consumed)?;
        row(f, "records archived", self.records_archived)?;
        row(f, "files finished", self.files_finished)?;
        row(f, "records skipped", self.records_skipped)?;
        row(f, "partitions failed", self.partitions_failed)
    }
}

/// One language's row of [`StatsSummary`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatsRow {
    /// Detected language code, `?` when undetected.
    pub language: String,
    /// Posts labelled positive.
    pub positive: u64,
    /// Posts labelled neutral.
    pub neutral: u64,
    /// Posts labelled negative.
    pub negative: u64,
    /// Posts without a sentiment (not English).
    pub unscored: u64,
    /// All posts of the language.
    pub total: u64,
}

impl From<&LanguageSentiment> for StatsRow {
    fn from(row: &LanguageSentiment) -> Self {
        Self {
            language: row.language.clone(),
            positive: row.positive,
            neutral: row.neutral,
            negative: row.negative,
            unscored: row.unscored,
            total: row.total(),
        }
    }
}

/// The languages beyond `--top` in [`StatsSummary`], summed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatsRest {
    /// How many languages.
    pub languages: u64,
    /// Their posts.
    pub posts: u64,
}

/// `tweet-consumer stats`: posts per detected language and sentiment label.
///
/// JSON form (`--summary json`): one object on one line, the store as `Display` shows it (a
/// PostgreSQL URL without its password), `rest` null when every language is listed:
///
/// ```json
/// {"db":"tweets.db","total":3,"languages":[{"language":"en","positive":1,"neutral":0,
///  "negative":0,"unscored":0,"total":1}],"rest":{"languages":1,"posts":2}}
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatsSummary {
    /// The store read.
    pub db: String,
    /// Posts in the store.
    pub total: u64,
    /// The most frequent languages, at most `--top`, most frequent first.
    pub languages: Vec<StatsRow>,
    /// The other languages, if any.
    pub rest: Option<StatsRest>,
}

impl StatsSummary {
    /// The table of `db` (`table` most frequent language first), its first `top` languages
    /// listed.
    pub fn new(db: &str, table: &[LanguageSentiment], top: usize) -> Self {
        let rest = (table.len() > top).then(|| StatsRest {
            languages: (table.len() - top) as u64,
            posts: table.iter().skip(top).map(LanguageSentiment::total).sum(),
        });
        Self {
            db: db.to_owned(),
            total: table.iter().map(LanguageSentiment::total).sum(),
            languages: table.iter().take(top).map(StatsRow::from).collect(),
            rest,
        }
    }
}

impl fmt::Display for StatsSummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "{} posts in {} (detected language; sentiment by VADER, English only)",
            self.total, self.db
        )?;
        writeln!(
            f,
            "{:<10}{:>9}{:>9}{:>9}{:>10}{:>9}",
            "language", "positive", "neutral", "negative", "unscored", "total"
        )?;
        for row in &self.languages {
            writeln!(
                f,
                "{:<10}{:>9}{:>9}{:>9}{:>10}{:>9}",
                row.language, row.positive, row.neutral, row.negative, row.unscored, row.total
            )?;
        }
        if let Some(rest) = &self.rest {
            writeln!(
                f,
                "{:<10}{:>46}",
                format!("{} more", rest.languages),
                rest.posts
            )?;
        }
        Ok(())
    }
}

/// `tweet-consumer report`: the pictures drawn.
///
/// JSON form (`--summary json`): `{"db":"tweets.db","posts":3,"files":["report/a.svg"]}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReportSummary {
    /// The store read (a PostgreSQL URL without its password).
    pub db: String,
    /// Posts read from it.
    pub posts: u64,
    /// The SVG files written.
    pub files: Vec<PathBuf>,
}

impl fmt::Display for ReportSummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "{} posts from {}", self.posts, self.db)?;
        for path in &self.files {
            writeln!(f, "  {}", path.display())?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::BatchOutcome;

    fn analysis() -> AnalysisSummary {
        let stats = RunStats {
            records: 10,
            batches: 2,
            retries: 0,
        };
        let totals = AnalysisTotals {
            outcome: BatchOutcome {
                rows_written: 7,
                rows_suppressed: 1,
                deletes_applied: 1,
            },
            skipped: 0,
            deadlettered: 1,
            tombstones: 2,
        };
        AnalysisSummary::new("analysis", &stats, &totals)
    }

    #[test]
    fn analysis_text_is_the_aligned_table() {
        let expected = "\
tweet-consumer summary (group analysis)
  records consumed                    10
  rows written                         7
  deletes applied                      1
  posts kept out (deleted)             1
  records dead-lettered                1
  tombstones written                   2
  records skipped                      0
";
        assert_eq!(analysis().to_string(), expected);
    }

    #[test]
    fn analysis_json_has_snake_case_fields_and_integer_counts() {
        assert_eq!(
            serde_json::to_string(&analysis()).unwrap(),
            concat!(
                r#"{"group":"analysis","records_consumed":10,"rows_written":7,"deletes_applied":1,"#,
                r#""posts_kept_out":1,"records_dead_lettered":1,"tombstones_written":2,"records_skipped":0}"#
            )
        );
    }

    #[test]
    fn archive_text_and_json() {
        let stats = RunStats {
            records: 10,
            ..RunStats::default()
        };
        let totals = ArchiveTotals {
            records_written: 10,
            files_finished: 2,
            records_skipped: 0,
        };
        let summary = ArchiveSummary::new("archive", &stats, &totals, 1);
        let expected = "\
tweet-consumer summary (group archive)
  records consumed                    10
  records archived                    10
  files finished                       2
  records skipped                      0
  partitions failed                    1
";
        assert_eq!(summary.to_string(), expected);
        assert_eq!(
            serde_json::to_string(&summary).unwrap(),
            concat!(
                r#"{"group":"archive","records_consumed":10,"records_archived":10,"#,
                r#""files_finished":2,"records_skipped":0,"partitions_failed":1}"#
            )
        );
    }

    fn language(code: &str, positive: u64, unscored: u64) -> LanguageSentiment {
        LanguageSentiment {
            language: code.to_owned(),
            positive,
            neutral: 0,
            negative: 0,
            unscored,
        }
    }

    #[test]
    fn stats_lists_the_top_languages_and_sums_the_rest() {
        let table = [
            language("en", 3, 0),
            language("es", 0, 2),
            language("?", 0, 1),
        ];
        let summary = StatsSummary::new("tweets.db", &table, 1);
        let expected = "\
6 posts in tweets.db (detected language; sentiment by VADER, English only)
language   positive  neutral negative  unscored    total
en                3        0        0         0        3
2 more                                                 3
";
        assert_eq!(summary.to_string(), expected);
        let json = serde_json::to_string(&summary).unwrap();
        assert!(
            json.ends_with(r#""rest":{"languages":2,"posts":3}}"#),
            "{json}"
        );
        assert_eq!(StatsSummary::new("tweets.db", &table, 3).rest, None);
    }

    #[test]
    fn report_lists_the_files() {
        let summary = ReportSummary {
            db: "tweets.db".to_owned(),
            posts: 3,
            files: vec![PathBuf::from("report/a.svg")],
        };
        assert_eq!(
            summary.to_string(),
            "3 posts from tweets.db\n  report/a.svg\n"
        );
        assert_eq!(
            serde_json::to_string(&summary).unwrap(),
            r#"{"db":"tweets.db","posts":3,"files":["report/a.svg"]}"#
        );
    }
}
