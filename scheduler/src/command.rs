//! The `schedule` subcommand of `tweet-producer`: its clap arguments and [`run`]. It queues posts on the compacted `scheduled` topic (one post, or a
//! batch of drafts placed into slots), cancel them with a tombstone, and list them with the
//! poster's outcomes read back from the `scheduled-results` topic.
//!
//! Each post's key is its stable id ([`post_id`]: a hash of the text and the due time), so
//! running the same command twice writes the same keys and the compacted topic keeps one
//! record per post; the poster, which keys its outcomes by the same id, never posts it twice.

use std::collections::{BTreeMap, HashMap};
use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context as _};
use chrono::{DateTime, Duration, Utc};
use chrono_tz::Tz;
use clap::{Args, Subcommand};
use tweet_pipeline_common::config::{KafkaArgs, ScheduleTopics};

use crate::model::{parse_result_key, Destination, PostResult, ScheduledPost};
use crate::plan::{self, parse_duration, parse_time, parse_tz, Draft, Problem, Slots};
use crate::queue;

/// `tweet-producer schedule ...`.
#[derive(Debug, Args)]
pub struct ScheduleArgs {
    #[command(subcommand)]
    command: ScheduleCommand,
}

#[derive(Debug, Subcommand)]
enum ScheduleCommand {
    /// Schedule one post at a time (--at) or after a delay (--in).
    Post {
        /// The post's text.
        #[arg(long)]
        text: String,
        /// When: RFC 3339 (2026-03-08T01:30:00-05:00), or a local time (2026-03-08 01:30) in
        /// --tz. A local time that a daylight saving change skips or repeats is refused.
        #[arg(long, conflicts_with = "delay", required_unless_present = "delay")]
        at: Option<String>,
        /// After this long from now (8h, 1h30m, 90s). Not idempotent: each run is a new time.
        #[arg(long = "in", value_name = "DURATION", value_parser = parse_duration)]
        delay: Option<Duration>,
        #[command(flatten)]
        options: EnqueueOptions,
    },
    /// Schedule a batch of drafts: *.txt files (one draft per line, blank lines skipped) and
    /// *.csv files (text,at), or folders of them; drafts without a time take the next slot.
    Drafts {
        /// Draft files or folders.
        #[arg(required = true, value_name = "PATH")]
        paths: Vec<PathBuf>,
        /// Time between two slots (8h, 30m, 250ms). Slots are exact elapsed intervals.
        #[arg(long, value_parser = parse_duration)]
        every: Option<Duration>,
        /// The first slot: RFC 3339, or a local time in --tz; default: the next whole minute.
        #[arg(long)]
        start: Option<String>,
        #[command(flatten)]
        options: EnqueueOptions,
    },
    /// Cancel scheduled posts: writes a tombstone (null value) for each id.
    Cancel {
        /// Ids as printed when scheduling (sp-...).
        #[arg(required = true, value_name = "ID")]
        ids: Vec<String>,
        #[command(flatten)]
        kafka: KafkaArgs,
        #[command(flatten)]
        topics: ScheduleTopics,
    },
    /// List scheduled posts with their state (pending, posted, duplicate, failed, missed),
    /// read from the scheduled and results topics.
    List {
        /// Show times in this IANA zone.
        #[arg(long, env = "SCHEDULE_TZ", default_value = "UTC", value_parser = parse_tz)]
        tz: Tz,
        #[command(flatten)]
        kafka: KafkaArgs,
        #[command(flatten)]
        topics: ScheduleTopics,
    },
}

/// Options shared by `post` and `drafts`.
#[derive(Debug, Args)]
struct EnqueueOptions {
    /// Time zone of local times and of the printed plan (IANA name).
    #[arg(long, env = "SCHEDULE_TZ", default_value = "UTC", value_parser = parse_tz)]
    tz: Tz,
    /// Print the plan and enqueue nothing.
    #[arg(long)]
    dry_run: bool,
    /// Enqueue the valid drafts even when some are invalid (they are still reported).
    #[arg(long)]
    skip_invalid: bool,
    /// How far in the past a due time may be and still be accepted (it is then posted at once).
    #[arg(long, default_value_t = 60)]
    past_tolerance_secs: i64,
    /// Where to post: x, bluesky, mastodon, comma-separated; each gets the post once.
    #[arg(
        long = "to",
        value_delimiter = ',',
        default_value = "x",
        value_name = "NETWORKS"
    )]
    to: Vec<Destination>,
    #[command(flatten)]
    kafka: KafkaArgs,
    #[command(flatten)]
    topics: ScheduleTopics,
}

/// Runs a `schedule` subcommand.
///
/// # Errors
/// Invalid times or files, Kafka unreachable, a missing topic, an unacknowledged record.
pub async fn run(args: ScheduleArgs) -> anyhow::Result<ExitCode> {
    let now = Utc::now();
    match args.command {
        ScheduleCommand::Post {
            text,
            at,
            delay,
            options,
        } => {
            let at = match (at, delay) {
                (Some(at), _) => parse_time(&at, options.tz).map_err(anyhow::Error::msg)?,
                (None, Some(delay)) => now + delay,
                (None, None) => bail!("give --at or --in"),
            };
            let draft = Draft {
                text: text.trim().to_owned(),
                at: Some(at),
                source: "cli".to_owned(),
            };
            enqueue(vec![draft], Vec::new(), None, now, options).await
        }
        ScheduleCommand::Drafts {
            paths,
            every,
            start,
            options,
        } => {
            let (drafts, problems) = plan::read_drafts(&paths, options.tz)?;
            let slots = match every {
                Some(every) => {
                    let start = match start {
                        Some(start) => {
                            parse_time(&start, options.tz).map_err(anyhow::Error::msg)?
                        }
                        None => next_minute(now),
                    };
                    Some(Slots { start, every })
                }
                None if start.is_some() => bail!("--start needs --every"),
                None => None,
            };
            enqueue(drafts, problems, slots, now, options).await
        }
        ScheduleCommand::Cancel { ids, kafka, topics } => {
            cancel(&ids, &kafka, &topics).await?;
            Ok(ExitCode::SUCCESS)
        }
        ScheduleCommand::List { tz, kafka, topics } => {
            let kafka_args = kafka.clone();
            tokio::task::spawn_blocking(move || list(tz, &kafka_args, &topics))
                .await
                .context("the list task panicked")??;
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn next_minute(now: DateTime<Utc>) -> DateTime<Utc> {
    let seconds = now.timestamp();
    DateTime::from_timestamp(seconds - seconds.rem_euclid(60) + 60, 0).unwrap_or(now)
}

/// Plans `drafts` (beside the `problems` found reading them), prints the plan and, unless
/// it is a dry run or a draft is invalid, writes the posts to the scheduled topic.
async fn enqueue(
    drafts: Vec<Draft>,
    mut problems: Vec<Problem>,
    slots: Option<Slots>,
    now: DateTime<Utc>,
    options: EnqueueOptions,
) -> anyhow::Result<ExitCode> {
    let tolerance = Duration::seconds(options.past_tolerance_secs.max(0));
    let (mut posts, invalid) = plan::plan(drafts, slots, now, tolerance);
    let mut to = options.to.clone();
    to.sort();
    to.dedup();
    for post in &mut posts {
        post.destinations.clone_from(&to);
    }
    posts.sort_by(|a, b| (a.due_at, &a.id).cmp(&(b.due_at, &b.id)));
    problems.extend(invalid);
    {
        let mut err = std::io::stderr().lock();
        for problem in &problems {
            let _ = writeln!(err, "{problem}");
        }
    }
    print_plan(&posts, options.tz)?;
    if !problems.is_empty() && !options.skip_invalid {
        eprintln!(
            "{} invalid draft(s): nothing enqueued (fix them, or pass --skip-invalid to enqueue the {} valid ones)",
            problems.len(),
            posts.len()
        );
        return Ok(ExitCode::from(2));
    }
    if options.dry_run {
        println!("dry run: {} post(s) planned, nothing enqueued", posts.len());
        return Ok(ExitCode::SUCCESS);
    }
    let producer = queue::schedule_producer(&options.kafka, &options.topics)?;
    let failed = queue::enqueue(&producer, &options.topics.scheduled, &posts).await?;
    if failed > 0 {
        bail!(
            "{failed} of {} scheduled post(s) were not acknowledged by Kafka; run the same command again (ids are stable, nothing doubles)",
            posts.len()
        );
    }
    println!(
        "enqueued {} post(s) to {}{}",
        posts.len(),
        options.topics.scheduled,
        if problems.is_empty() {
            String::new()
        } else {
            format!(" ({} invalid skipped)", problems.len())
        }
    );
    Ok(ExitCode::SUCCESS)
}

fn print_plan(posts: &[ScheduledPost], tz: Tz) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "{:<19}  {:<25}  {:<24}  text",
        "id",
        format!("due ({tz})"),
        "source"
    )?;
    for post in posts {
        writeln!(
            out,
            "{:<19}  {:<25}  {:<24}  {}",
            post.id,
            post.due_at
                .with_timezone(&tz)
                .format("%Y-%m-%d %H:%M:%S %Z"),
            post.source,
            excerpt(&post.text, 50)
        )?;
    }
    Ok(())
}

fn excerpt(text: &str, max_chars: usize) -> String {
    let one_line = text.replace(['\n', '\r'], " ");
    if one_line.chars().count() > max_chars {
        let cut: String = one_line.chars().take(max_chars - 1).collect();
        format!("{cut}…")
    } else {
        one_line
    }
}

async fn cancel(
    ids: &[String],
    kafka_args: &KafkaArgs,
    topics: &ScheduleTopics,
) -> anyhow::Result<()> {
    let producer = queue::schedule_producer(kafka_args, topics)?;
    for id in ids {
        queue::cancel(&producer, &topics.scheduled, id).await?;
        println!("cancelled {id}");
    }
    Ok(())
}

/// A row of `schedule list`: one post at one destination.
#[derive(Default)]
struct Row {
    post: Option<ScheduledPost>,
    result: Option<PostResult>,
}

fn list(tz: Tz, kafka_args: &KafkaArgs, topics: &ScheduleTopics) -> anyhow::Result<()> {
    let mut posts: HashMap<String, Option<ScheduledPost>> = HashMap::new();
    for (_, key, value) in queue::read_topic(kafka_args, &topics.scheduled)? {
        let post = value.and_then(|v| serde_json::from_slice::<ScheduledPost>(&v).ok());
        posts.insert(key, post);
    }
    let mut rows: HashMap<(String, Destination), Row> = HashMap::new();
    for (id, post) in posts {
        let destinations = post
            .as_ref()
            .map(|p| p.destinations.clone())
            .unwrap_or_default();
        for destination in destinations {
            rows.entry((id.clone(), destination)).or_default().post = post.clone();
        }
    }
    for (_, key, value) in queue::read_topic(kafka_args, &topics.results)? {
        let Some((id, destination)) = parse_result_key(&key) else {
            continue;
        };
        let result = value.and_then(|v| serde_json::from_slice::<PostResult>(&v).ok());
        rows.entry((id.to_owned(), destination)).or_default().result = result;
    }
    let mut sorted: Vec<(DateTime<Utc>, String, Row)> = rows
        .into_iter()
        .filter_map(|((id, destination), row)| {
            let id = format!("{id} {destination}");
            let due = row
                .post
                .as_ref()
                .map(|p| p.due_at)
                .or(row.result.as_ref().map(|r| r.due_at))?;
            Some((due, id, row))
        })
        .collect();
    sorted.sort_by(|a, b| (a.0, &a.1).cmp(&(b.0, &b.1)));
    let mut counts: BTreeMap<&'static str, usize> = BTreeMap::new();
    let mut out = std::io::stdout().lock();
    let time = |t: DateTime<Utc>| {
        t.with_timezone(&tz)
            .format("%Y-%m-%d %H:%M:%S %Z")
            .to_string()
    };
    writeln!(
        out,
        "{:<10}  {:<25}  {:<25}  {:<28}  {:<24}  text",
        "state",
        format!("due ({tz})"),
        "at",
        "id destination",
        "detail"
    )?;
    for (due, id, row) in &sorted {
        let (state, at, detail) = match (&row.post, &row.result) {
            (_, Some(result)) if result.outcome.is_final() => (
                result.outcome.as_str(),
                time(result.at),
                result
                    .post_id
                    .clone()
                    .or(result.reason.clone())
                    .unwrap_or_default(),
            ),
            (None, _) => ("cancelled", String::new(), String::new()),
            (Some(_), Some(result)) => (
                "pending",
                time(result.at),
                format!(
                    "{} #{}{}",
                    result.outcome.as_str(),
                    result.attempt,
                    result
                        .reason
                        .as_ref()
                        .map(|r| format!(": {r}"))
                        .unwrap_or_default()
                ),
            ),
            (Some(_), None) => ("pending", String::new(), String::new()),
        };
        *counts.entry(state).or_default() += 1;
        let text = row
            .post
            .as_ref()
            .map(|p| excerpt(&p.text, 40))
            .unwrap_or_default();
        writeln!(
            out,
            "{state:<10}  {:<25}  {at:<25}  {id:<28}  {:<24}  {text}",
            time(*due),
            excerpt(&detail, 24)
        )?;
    }
    let summary: Vec<String> = counts.iter().map(|(s, n)| format!("{n} {s}")).collect();
    writeln!(out, "{} post(s): {}", sorted.len(), summary.join(", "))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::post_id;

    #[test]
    fn next_minute_rounds_up() {
        let t = DateTime::parse_from_rfc3339("2026-03-01T10:00:30Z")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(next_minute(t).to_rfc3339(), "2026-03-01T10:01:00+00:00");
        assert_eq!(post_id("a", t), post_id("a", t));
    }

    #[test]
    fn excerpts_are_one_line() {
        assert_eq!(excerpt("a\nb", 10), "a b");
        assert_eq!(excerpt("abcdef", 4), "abc…");
    }
}
