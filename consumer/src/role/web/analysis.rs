//! The analysis panel: what the analysis group stored, summarised for the page (posts per
//! language and sentiment label, top hashtags, posts and mean sentiment per minute of the last
//! half hour).

use std::collections::HashMap;
use std::sync::Mutex;

use serde::Serialize;

use crate::offline::report::hashtags;
use crate::store::{Annotation, LanguageSentiment, ReportRow, Store, StoreLocation};
use crate::summary::StatsRow;

/// Languages listed in the panel (the most frequent).
const TOP_LANGUAGES: usize = 12;
/// Hashtags listed in the panel.
const TOP_HASHTAGS: usize = 15;
/// Minutes of the posts-per-minute series, ending at the current minute.
const MINUTES: i64 = 30;

/// The panel's data, `GET /api/analysis`.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct AnalysisPanel {
    /// The store as `Display` shows it (a PostgreSQL URL without its password).
    pub db: String,
    /// Whether the store exists yet (the analysis group creates it).
    pub available: bool,
    /// Posts in the store.
    pub total: u64,
    /// The most frequent detected languages with their sentiment labels.
    pub languages: Vec<StatsRow>,
    /// (hashtag, posts using it), most used first; each counted once per post.
    pub hashtags: Vec<(String, u64)>,
    /// (minute start, Unix seconds; posts the producer received in it), the last
    /// [`MINUTES`] minutes, oldest first, empty minutes included.
    pub per_minute: Vec<(i64, u64)>,
    /// (minute start, Unix seconds; mean VADER compound score in [-1, 1] of the scored posts
    /// received in it, `null` when none was scored), the same minutes as `per_minute`.
    pub sentiment_per_minute: Vec<(i64, Option<f64>)>,
}

/// Summarises the store's table and rows at `now_ms`.
pub fn summarise(
    db: String,
    table: &[LanguageSentiment],
    rows: &[ReportRow],
    now_ms: i64,
) -> AnalysisPanel {
    let mut tags: HashMap<String, u64> = HashMap::new();
    for row in rows {
        for tag in hashtags(&row.text) {
            *tags.entry(tag).or_default() += 1;
        }
    }
    let mut tags: Vec<(String, u64)> = tags.into_iter().collect();
    tags.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    tags.truncate(TOP_HASHTAGS);
    let now_minute = now_ms.div_euclid(60_000);
    let first = now_minute - (MINUTES - 1);
    let mut minutes = vec![0u64; MINUTES as usize];
    let mut scores = vec![(0.0f64, 0u64); MINUTES as usize];
    for row in rows {
        let Some(minute) = row.received_at_ms.map(|ms| ms.div_euclid(60_000)) else {
            continue;
        };
        if (first..=now_minute).contains(&minute) {
            let i = (minute - first) as usize;
            minutes[i] += 1;
            if let Some(score) = row.sentiment_compound {
                scores[i].0 += score;
                scores[i].1 += 1;
            }
        }
    }
    AnalysisPanel {
        db,
        available: true,
        total: table.iter().map(LanguageSentiment::total).sum(),
        languages: table
            .iter()
            .take(TOP_LANGUAGES)
            .map(StatsRow::from)
            .collect(),
        hashtags: tags,
        per_minute: minutes
            .into_iter()
            .enumerate()
            .map(|(i, n)| ((first + i as i64) * 60, n))
            .collect(),
        sentiment_per_minute: scores
            .into_iter()
            .enumerate()
            .map(|(i, (sum, n))| ((first + i as i64) * 60, (n > 0).then(|| sum / n as f64)))
            .collect(),
    }
}

/// Reads the store at `db` and summarises it; a SQLite file that does not exist yet gives an
/// empty, unavailable panel. Blocks (and the PostgreSQL client must not run on the reactor).
///
/// # Errors
/// When the store cannot be opened or read.
pub fn read(db: &StoreLocation, now_ms: i64) -> anyhow::Result<AnalysisPanel> {
    if let StoreLocation::Sqlite(path) = db {
        if !path.exists() {
            return Ok(AnalysisPanel {
                db: db.to_string(),
                ..AnalysisPanel::default()
            });
        }
    }
    let mut store = Store::open(db)?;
    let table = store.language_sentiment_table()?;
    let rows = store.report_rows()?;
    Ok(summarise(db.to_string(), &table, &rows, now_ms))
}

/// The stored analysis (detected language, sentiment) of those of `ids` the analysis group
/// has stored, in one bounded query ([`Store::annotations`]) on a connection kept in `open`
/// between calls (dropped after an error, so the next call reconnects). A SQLite file that
/// does not exist yet gives nothing (and is not created). Blocks.
///
/// # Errors
/// When the store cannot be opened or read.
pub fn annotations(
    open: &Mutex<Option<Store>>,
    db: &StoreLocation,
    ids: &[String],
) -> anyhow::Result<Vec<Annotation>> {
    if let StoreLocation::Sqlite(path) = db {
        if !path.exists() {
            return Ok(Vec::new());
        }
    }
    let mut guard = open
        .lock()
        .map_err(|_| anyhow::anyhow!("the store connection's lock is poisoned"))?;
    if guard.is_none() {
        *guard = Some(Store::open(db)?);
    }
    let Some(store) = guard.as_mut() else {
        return Ok(Vec::new());
    };
    match store.annotations(ids) {
        Ok(found) => Ok(found),
        Err(error) => {
            *guard = None;
            Err(error.into())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashtags_and_minutes_are_counted() {
        let row = |text: &str, ms: Option<i64>| ReportRow {
            created_at: None,
            received_at_ms: ms,
            lang: None,
            detected_lang: None,
            sentiment_compound: text.contains("rust").then_some(0.5),
            text: text.into(),
        };
        let now = 100 * 60_000 + 5;
        let rows = [
            row("#Rust and #rust", Some(now)),
            row("#rust #kafka", Some(now - 60_000)),
            row("old #kafka", Some(now - 31 * 60_000)),
        ];
        let table = [LanguageSentiment {
            language: "en".into(),
            positive: 1,
            neutral: 1,
            negative: 0,
            unscored: 1,
        }];
        let panel = summarise("t.db".into(), &table, &rows, now);
        assert_eq!(panel.total, 3);
        assert_eq!(
            panel.hashtags,
            vec![("kafka".into(), 2), ("rust".into(), 2)]
        );
        assert_eq!(panel.per_minute.len(), 30);
        assert_eq!(panel.per_minute.last(), Some(&(100 * 60, 1)));
        assert_eq!(panel.per_minute[28], (99 * 60, 1));
        assert_eq!(panel.per_minute.iter().map(|m| m.1).sum::<u64>(), 2);
        assert_eq!(panel.sentiment_per_minute.len(), 30);
        assert_eq!(panel.sentiment_per_minute[29], (100 * 60, Some(0.5)));
        assert_eq!(panel.sentiment_per_minute[27], (98 * 60, None));
    }
}
