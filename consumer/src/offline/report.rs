//! `tweet-consumer report`: pictures of the store as SVG files, drawn with plotters' SVG
//! backend (text is left to the viewer's fonts, so nothing here needs a font installed).
//!
//! - `posts_over_time.svg`: posts per minute by their creation time (per second when the
//!   posts span at most 5 minutes, per hour or per day beyond 2 days or 90 days);
//! - `sentiment_over_time.svg`: mean VADER compound score per time bucket, one line per
//!   language (the post's own language tag, else the detected one) among scored posts;
//! - `top_hashtags.svg`: the most used hashtags (each counted once per post).
//!
//! A post's time is its `created_at`, else the time the producer received it.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use chrono::{DateTime, Utc};
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use crate::store::{ReportRow, StoreLocation};
use crate::summary::ReportSummary;

/// What to draw.
#[derive(Debug, Clone)]
pub struct ReportConfig {
    /// Output folder (created if missing).
    pub out: PathBuf,
    /// Hashtags in the hashtag chart.
    pub top_hashtags: usize,
    /// Languages (the most scored) in the sentiment chart.
    pub top_languages: usize,
}

/// Picture size in pixels (SVG user units).
const SIZE: (u32, u32) = (960, 540);

/// A time bucket width.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Bucket {
    Second,
    Minute,
    Hour,
    Day,
}

impl Bucket {
    fn seconds(self) -> i64 {
        match self {
            Self::Second => 1,
            Self::Minute => 60,
            Self::Hour => 3600,
            Self::Day => 86_400,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Self::Second => "second",
            Self::Minute => "minute",
            Self::Hour => "hour",
            Self::Day => "day",
        }
    }

    /// Seconds up to 5 minutes, minutes up to 2 days, hours up to 90 days, days beyond: at
    /// most a few thousand points.
    fn for_span(seconds: i64) -> Self {
        if seconds <= 300 {
            Self::Second
        } else if seconds <= 2 * 86_400 {
            Self::Minute
        } else if seconds <= 90 * 86_400 {
            Self::Hour
        } else {
            Self::Day
        }
    }

    fn label(self, bucket: i64) -> String {
        let start = DateTime::<Utc>::from_timestamp(bucket * self.seconds(), 0).unwrap_or_default();
        match self {
            Self::Second => start.format("%H:%M:%S").to_string(),
            Self::Minute => start.format("%m-%d %H:%M").to_string(),
            Self::Hour => start.format("%m-%d %H:00").to_string(),
            Self::Day => start.format("%Y-%m-%d").to_string(),
        }
    }
}

/// A post's time in Unix seconds.
fn post_seconds(row: &ReportRow) -> Option<i64> {
    row.created_at
        .as_deref()
        .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
        .map(|t| t.timestamp())
        .or_else(|| row.received_at_ms.map(|ms| ms.div_euclid(1000)))
}

/// The hashtags of a text, lowercased, each once: `#` after a non-word character, then word
/// characters (letters, digits, `_`), not all digits (X's rule: `#123` is no hashtag).
pub fn hashtags(text: &str) -> Vec<String> {
    let mut tags: Vec<String> = Vec::new();
    let mut previous: Option<char> = None;
    let mut chars = text.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        let starts = (c == '#' || c == '＃')
            && !previous.is_some_and(|p| p.is_alphanumeric() || p == '_' || p == '&');
        previous = Some(c);
        if !starts {
            continue;
        }
        let begin = i + c.len_utf8();
        let mut end = begin;
        while let Some(&(j, d)) = chars.peek() {
            if d.is_alphanumeric() || d == '_' {
                end = j + d.len_utf8();
                previous = Some(d);
                chars.next();
            } else {
                break;
            }
        }
        let tag = &text[begin..end];
        if !tag.is_empty() && !tag.chars().all(|c| c.is_ascii_digit()) {
            let tag = tag.to_lowercase();
            if !tags.contains(&tag) {
                tags.push(tag);
            }
        }
    }
    tags
}

/// The language a post is charted under: its own tag (without region, `und` ignored), else
/// the detected one, else `?`.
fn language_of(row: &ReportRow) -> String {
    row.lang
        .as_deref()
        .filter(|l| !l.is_empty() && *l != "und")
        .map(|l| l.split(['-', '_']).next().unwrap_or(l).to_lowercase())
        .or_else(|| row.detected_lang.clone())
        .unwrap_or_else(|| "?".to_owned())
}

/// The summarised series the pictures draw.
#[derive(Debug, Default)]
pub struct ReportData {
    bucket: Option<Bucket>,
    /// Posts per bucket, every bucket from the first to the last.
    posts: Vec<(i64, u64)>,
    /// Language → (bucket → (sum of compound, count)).
    sentiment: BTreeMap<String, BTreeMap<i64, (f64, u64)>>,
    /// (hashtag, posts), most used first.
    hashtags: Vec<(String, u64)>,
}

/// Summarises the rows.
pub fn summarise(rows: &[ReportRow], config: &ReportConfig) -> ReportData {
    let times: Vec<Option<i64>> = rows.iter().map(post_seconds).collect();
    let (first, last) = times
        .iter()
        .flatten()
        .fold((i64::MAX, i64::MIN), |(lo, hi), &t| (lo.min(t), hi.max(t)));
    let mut data = ReportData::default();
    let mut tag_counts: HashMap<String, u64> = HashMap::new();
    for row in rows {
        for tag in hashtags(&row.text) {
            *tag_counts.entry(tag).or_default() += 1;
        }
    }
    let mut tags: Vec<(String, u64)> = tag_counts.into_iter().collect();
    tags.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    tags.truncate(config.top_hashtags);
    data.hashtags = tags;
    if first > last {
        return data;
    }
    let bucket = Bucket::for_span(last - first);
    data.bucket = Some(bucket);
    let width = bucket.seconds();
    let mut posts: BTreeMap<i64, u64> = (first.div_euclid(width)..=last.div_euclid(width))
        .map(|b| (b, 0))
        .collect();
    for (row, time) in rows.iter().zip(&times) {
        let Some(time) = time else { continue };
        let b = time.div_euclid(width);
        *posts.entry(b).or_default() += 1;
        if let Some(compound) = row.sentiment_compound {
            let cell = data
                .sentiment
                .entry(language_of(row))
                .or_default()
                .entry(b)
                .or_default();
            cell.0 += compound;
            cell.1 += 1;
        }
    }
    // Scored posts per language: the sum of the language's cells.
    let mut languages: Vec<(String, u64)> = data
        .sentiment
        .iter()
        .map(|(language, cells)| (language.clone(), cells.values().map(|c| c.1).sum()))
        .collect();
    languages.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    let keep: HashSet<String> = languages
        .into_iter()
        .take(config.top_languages)
        .map(|(l, _)| l)
        .collect();
    data.sentiment.retain(|language, _| keep.contains(language));
    data.posts = posts.into_iter().collect();
    data
}

/// Reads every post of the store at `db` and renders the pictures ([`render`]).
///
/// # Errors
/// When the store does not exist, cannot be opened or read, or a picture cannot be written.
pub fn run(db: &StoreLocation, config: &ReportConfig) -> anyhow::Result<ReportSummary> {
    let mut store = super::open_existing(db)?;
    let rows = store
        .report_rows()
        .with_context(|| format!("cannot read the store {db}"))?;
    let files = render(&rows, config)?;
    Ok(ReportSummary {
        db: db.to_string(),
        posts: rows.len() as u64,
        files,
    })
}

/// Renders the three pictures into `config.out`; returns their paths.
///
/// # Errors
/// When the folder cannot be created or a file cannot be written.
pub fn render(rows: &[ReportRow], config: &ReportConfig) -> anyhow::Result<Vec<PathBuf>> {
    std::fs::create_dir_all(&config.out)
        .with_context(|| format!("cannot create {}", config.out.display()))?;
    let data = summarise(rows, config);
    let paths = [
        config.out.join("posts_over_time.svg"),
        config.out.join("sentiment_over_time.svg"),
        config.out.join("top_hashtags.svg"),
    ];
    draw_posts(&data, &paths[0], rows.len())
        .with_context(|| format!("cannot draw {}", paths[0].display()))?;
    draw_sentiment(&data, &paths[1])
        .with_context(|| format!("cannot draw {}", paths[1].display()))?;
    draw_hashtags(&data, &paths[2])
        .with_context(|| format!("cannot draw {}", paths[2].display()))?;
    Ok(paths.to_vec())
}

/// Plotters' drawing errors carry the backend's error type; this flattens them for anyhow.
fn drawing<T, E: std::fmt::Display>(result: Result<T, E>) -> anyhow::Result<T> {
    result.map_err(|e| anyhow::anyhow!("{e}"))
}

fn draw_posts(data: &ReportData, path: &Path, total: usize) -> anyhow::Result<()> {
    let root = SVGBackend::new(path, SIZE).into_drawing_area();
    drawing(root.fill(&WHITE))?;
    let bucket = data.bucket.unwrap_or(Bucket::Minute);
    let title = format!("Posts per {} ({total} posts)", bucket.name());
    let x0 = data.posts.first().map_or(0, |p| p.0);
    let x1 = data.posts.last().map_or(1, |p| p.0).max(x0 + 1);
    let y1 = data.posts.iter().map(|p| p.1).max().unwrap_or(1).max(1);
    let mut chart = drawing(
        ChartBuilder::on(&root)
            .caption(&title, ("sans-serif", 24))
            .margin(16)
            .x_label_area_size(40)
            .y_label_area_size(56)
            .build_cartesian_2d(x0..x1, 0u64..y1 + y1 / 10 + 1),
    )?;
    drawing(
        chart
            .configure_mesh()
            .x_labels(8)
            .x_label_formatter(&|b| bucket.label(*b))
            .x_desc("time (UTC)")
            .y_desc(format!("posts per {}", bucket.name()))
            .draw(),
    )?;
    drawing(
        chart
            .draw_series(
                AreaSeries::new(data.posts.iter().copied(), 0, BLUE.mix(0.25))
                    .border_style(BLUE.stroke_width(2)),
            )
            .map(|series| {
                series.label("posts");
            }),
    )?;
    drawing(root.present())
}

fn draw_sentiment(data: &ReportData, path: &Path) -> anyhow::Result<()> {
    let root = SVGBackend::new(path, SIZE).into_drawing_area();
    drawing(root.fill(&WHITE))?;
    let bucket = data.bucket.unwrap_or(Bucket::Minute);
    let buckets = data
        .sentiment
        .values()
        .flat_map(|cells| cells.keys().copied());
    let (x0, x1) = buckets.fold((i64::MAX, i64::MIN), |(lo, hi), b| (lo.min(b), hi.max(b)));
    let (x0, x1) = if x0 > x1 {
        (0, 1)
    } else {
        (x0, x1.max(x0 + 1))
    };
    let title = format!("Mean VADER compound per {} by language", bucket.name());
    let mut chart = drawing(
        ChartBuilder::on(&root)
            .caption(&title, ("sans-serif", 24))
            .margin(16)
            .x_label_area_size(40)
            .y_label_area_size(56)
            .build_cartesian_2d(x0..x1, -1.0f64..1.0f64),
    )?;
    drawing(
        chart
            .configure_mesh()
            .x_labels(8)
            .x_label_formatter(&|b| bucket.label(*b))
            .x_desc("time (UTC)")
            .y_desc("mean compound (-1 negative … +1 positive)")
            .draw(),
    )?;
    drawing(chart.draw_series(LineSeries::new([(x0, 0.0), (x1, 0.0)], BLACK.mix(0.4))))?;
    for (i, (language, cells)) in data.sentiment.iter().enumerate() {
        let color = Palette99::pick(i).to_rgba();
        let points: Vec<(i64, f64)> = cells
            .iter()
            .map(|(b, (sum, n))| (*b, sum / *n as f64))
            .collect();
        let posts: u64 = cells.values().map(|c| c.1).sum();
        drawing(
            chart
                .draw_series(LineSeries::new(
                    points.iter().copied(),
                    color.stroke_width(2),
                ))
                .map(|series| {
                    series
                        .label(format!("{language} ({posts} scored posts)"))
                        .legend(move |(x, y)| {
                            PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2))
                        });
                }),
        )?;
        drawing(chart.draw_series(points.iter().map(|&p| Circle::new(p, 2, color.filled()))))?;
    }
    if !data.sentiment.is_empty() {
        drawing(
            chart
                .configure_series_labels()
                .background_style(WHITE.mix(0.8))
                .border_style(BLACK)
                .position(SeriesLabelPosition::UpperRight)
                .draw(),
        )?;
    }
    drawing(root.present())
}

fn draw_hashtags(data: &ReportData, path: &Path) -> anyhow::Result<()> {
    let root = SVGBackend::new(path, SIZE).into_drawing_area();
    drawing(root.fill(&WHITE))?;
    let n = data.hashtags.len().max(1);
    let max = data.hashtags.first().map_or(1, |t| t.1).max(1) as f64;
    let mut chart = drawing(
        ChartBuilder::on(&root)
            .caption(
                format!("Top {} hashtags (posts using each)", data.hashtags.len()),
                ("sans-serif", 24),
            )
            .margin(16)
            .x_label_area_size(40)
            .y_label_area_size(16)
            .build_cartesian_2d(0f64..max * 1.35, -0.6f64..n as f64 - 0.4),
    )?;
    drawing(
        chart
            .configure_mesh()
            .disable_y_mesh()
            .y_labels(0)
            .x_label_formatter(&|x| {
                if x.fract() == 0.0 {
                    format!("{x:.0}")
                } else {
                    String::new()
                }
            })
            .x_desc("posts")
            .draw(),
    )?;
    // Most used on top: row 0 is drawn highest.
    let row = |i: usize| (n - 1 - i) as f64;
    drawing(
        chart.draw_series(data.hashtags.iter().enumerate().map(|(i, (_, count))| {
            Rectangle::new(
                [(0.0, row(i) - 0.35), (*count as f64, row(i) + 0.35)],
                BLUE.mix(0.6).filled(),
            )
        })),
    )?;
    drawing(
        chart.draw_series(data.hashtags.iter().enumerate().map(|(i, (tag, count))| {
            Text::new(
                format!(" #{tag} ({count})"),
                (*count as f64, row(i)),
                TextStyle::from(("sans-serif", 14).into_font())
                    .pos(Pos::new(HPos::Left, VPos::Center)),
            )
        })),
    )?;
    drawing(root.present())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(created_at: &str, lang: &str, compound: Option<f64>, text: &str) -> ReportRow {
        ReportRow {
            created_at: Some(created_at.to_owned()),
            received_at_ms: None,
            lang: Some(lang.to_owned()),
            detected_lang: None,
            sentiment_compound: compound,
            text: text.to_owned(),
        }
    }

    #[test]
    fn hashtags_follow_the_platform_rules() {
        assert_eq!(
            hashtags("Go #Rust and #rust, #2024 but #año_nuevo! a#b &#39; #"),
            vec!["rust", "año_nuevo"]
        );
    }

    #[test]
    fn summary_counts_every_minute_and_averages_sentiment() {
        let rows = vec![
            row("2014-07-04T10:00:05Z", "en", Some(0.5), "#a #b"),
            row("2014-07-04T10:00:50Z", "en", Some(-0.1), "#a"),
            row("2014-07-04T10:02:00Z", "es", None, "hola #A"),
            row("2014-07-04T10:06:59Z", "es", None, "adiós"),
        ];
        let config = ReportConfig {
            out: PathBuf::new(),
            top_hashtags: 10,
            top_languages: 5,
        };
        let data = summarise(&rows, &config);
        assert_eq!(data.bucket, Some(Bucket::Minute));
        let counts: Vec<u64> = data.posts.iter().map(|p| p.1).collect();
        assert_eq!(counts, vec![2, 0, 1, 0, 0, 0, 1]);
        assert_eq!(
            data.hashtags,
            vec![("a".to_owned(), 3), ("b".to_owned(), 1)]
        );
        let en = &data.sentiment["en"];
        assert_eq!(en.len(), 1);
        let (sum, n) = en.values().next().unwrap();
        assert_eq!(*n, 2);
        assert!((sum - 0.4).abs() < 1e-9);
        assert!(!data.sentiment.contains_key("es"));
    }
}
