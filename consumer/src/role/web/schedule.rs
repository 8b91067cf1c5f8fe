//! The schedule panel: posts by state, read back from the `scheduled` and `scheduled-results`
//! topics with the scheduler's own reader, and the create and cancel actions, written with
//! the scheduler's own planner and writer (the code of `tweet-producer schedule post` and
//! `cancel`); a retry of a failed or missed post is a create of its text, due now.

use std::collections::HashMap;

use anyhow::Context as _;
use chrono::{DateTime, Duration, Utc};
use rdkafka::producer::FutureProducer;
use serde::{Deserialize, Serialize};
use tweet_pipeline_common::config::{KafkaArgs, ScheduleTopics};
use tweet_pipeline_scheduler::model::{parse_result_key, Destination, PostResult, ScheduledPost};
use tweet_pipeline_scheduler::plan::{self, parse_time, Draft};
use tweet_pipeline_scheduler::queue::{self, RawRecord};

/// How far in the past a due time may be and still be accepted: the default of
/// `tweet-producer schedule post --past-tolerance-secs`.
const PAST_TOLERANCE_SECS: i64 = 60;

/// One post at one destination, as the page lists it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ScheduleRow {
    /// The scheduled post's id (`sp-...`).
    pub id: String,
    /// The network.
    pub destination: Destination,
    /// `pending`, `posted`, `duplicate`, `failed`, `missed` or `cancelled`, as
    /// `tweet-producer schedule list` names them.
    pub state: &'static str,
    /// When it is due, RFC 3339 UTC (the page shows it in the browser's zone).
    pub due_at: DateTime<Utc>,
    /// When the last outcome was recorded, if any.
    pub at: Option<DateTime<Utc>>,
    /// The last outcome (`attempt`, `retry`, ... ), the network's post id or the reason.
    pub detail: String,
    /// The post's text (empty once cancelled: the tombstone removed it).
    pub text: String,
}

/// The rows of the schedule from the records of the scheduled topic and of the results topic
/// (each in topic order; later records of a key replace earlier ones), sorted by due time:
/// a final outcome names the state; a tombstoned post is `cancelled`; otherwise `pending`.
pub fn rows(scheduled: &[RawRecord], results: &[RawRecord]) -> Vec<ScheduleRow> {
    let mut posts: HashMap<&str, Option<ScheduledPost>> = HashMap::new();
    for (_, key, value) in scheduled {
        let post = value
            .as_deref()
            .and_then(|v| serde_json::from_slice::<ScheduledPost>(v).ok());
        posts.insert(key, post);
    }
    let mut latest: HashMap<(String, Destination), PostResult> = HashMap::new();
    for (_, key, value) in results {
        let Some((id, destination)) = parse_result_key(key) else {
            continue;
        };
        match value
            .as_deref()
            .and_then(|v| serde_json::from_slice::<PostResult>(v).ok())
        {
            Some(result) => latest.insert((id.to_owned(), destination), result),
            None => latest.remove(&(id.to_owned(), destination)),
        };
    }
    let mut out = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for (id, post) in &posts {
        for destination in post
            .as_ref()
            .map(|p| p.destinations.clone())
            .unwrap_or_default()
        {
            seen.insert((id.to_string(), destination));
            let result = latest.get(&(id.to_string(), destination));
            out.push(row(id, destination, post.as_ref(), result));
        }
    }
    for ((id, destination), result) in &latest {
        if !seen.contains(&(id.clone(), *destination)) {
            let post = posts.get(id.as_str()).and_then(Option::as_ref);
            out.push(row(id, *destination, post, Some(result)));
        }
    }
    out.sort_by(|a, b| (a.due_at, &a.id, a.destination).cmp(&(b.due_at, &b.id, b.destination)));
    out
}

fn row(
    id: &str,
    destination: Destination,
    post: Option<&ScheduledPost>,
    result: Option<&PostResult>,
) -> ScheduleRow {
    let (state, detail) = match (post, result) {
        (_, Some(result)) if result.outcome.is_final() => (
            result.outcome.as_str(),
            result
                .post_id
                .clone()
                .or(result.reason.clone())
                .unwrap_or_default(),
        ),
        (None, _) => ("cancelled", String::new()),
        (Some(_), Some(result)) => (
            "pending",
            format!("{} #{}", result.outcome.as_str(), result.attempt),
        ),
        (Some(_), None) => ("pending", String::new()),
    };
    ScheduleRow {
        id: id.to_owned(),
        destination,
        state,
        due_at: post
            .map(|p| p.due_at)
            .or(result.map(|r| r.due_at))
            .unwrap_or_default(),
        at: result.map(|r| r.at),
        detail,
        text: post.map(|p| p.text.clone()).unwrap_or_default(),
    }
}

/// Reads both topics to their end and lists the rows. Blocks: call it off the reactor.
///
/// # Errors
/// Kafka unreachable, a missing topic, a read that times out.
pub fn list(kafka: &KafkaArgs, topics: &ScheduleTopics) -> anyhow::Result<Vec<ScheduleRow>> {
    let scheduled = queue::read_topic(kafka, &topics.scheduled)?;
    let results = queue::read_topic(kafka, &topics.results)?;
    Ok(rows(&scheduled, &results))
}

/// A create action from the page.
#[derive(Debug, Clone, Deserialize)]
pub struct CreateRequest {
    /// The post's text.
    pub text: String,
    /// When: RFC 3339 (the page sends the browser's local time converted to UTC).
    pub at: String,
    /// The networks (default: x).
    #[serde(default)]
    pub to: Vec<Destination>,
}

/// Plans the post exactly as `tweet-producer schedule post --at` does (trimmed text, weighted
/// length, past tolerance, stable id, sorted unique destinations; source `web`).
///
/// # Errors
/// The time does not parse, or the draft is invalid (the planner's reason).
pub fn plan_post(request: &CreateRequest, now: DateTime<Utc>) -> Result<ScheduledPost, String> {
    let at = parse_time(request.at.trim(), chrono_tz::UTC)?;
    let draft = Draft {
        text: request.text.trim().to_owned(),
        at: Some(at),
        source: "web".to_owned(),
    };
    let (mut posts, problems) = plan::plan(
        vec![draft],
        None,
        now,
        Duration::seconds(PAST_TOLERANCE_SECS),
    );
    if let Some(problem) = problems.first() {
        return Err(problem.reason.clone());
    }
    let mut post = posts.pop().ok_or("nothing planned")?;
    let mut to = if request.to.is_empty() {
        vec![Destination::X]
    } else {
        request.to.clone()
    };
    to.sort();
    to.dedup();
    post.destinations = to;
    Ok(post)
}

/// The states a post may be retried from: nothing more will be done for it otherwise.
pub const RETRYABLE: [&str; 2] = ["failed", "missed"];

/// The create action that retries `row` (a failed or missed post at one network): the same
/// text, due `now`, to that network only. It goes through [`plan_post`] and [`enqueue`] like
/// any create, so it is a new scheduled post with its own stable id (the text and the new
/// due time), and the old one keeps its outcome.
///
/// # Errors
/// The row is not failed or missed, or has no text left.
pub fn retry_request(row: &ScheduleRow, now: DateTime<Utc>) -> Result<CreateRequest, String> {
    if !RETRYABLE.contains(&row.state) {
        return Err(format!(
            "{} is {} at {}: only failed or missed posts can be retried",
            row.id,
            row.state,
            row.destination.as_str()
        ));
    }
    if row.text.trim().is_empty() {
        return Err(format!("{} has no text left to post", row.id));
    }
    Ok(CreateRequest {
        text: row.text.clone(),
        at: now.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        to: vec![row.destination],
    })
}

/// Writes `post` to the scheduled topic with the scheduler's writer.
///
/// # Errors
/// When Kafka does not acknowledge it.
pub async fn enqueue(
    producer: &FutureProducer,
    topics: &ScheduleTopics,
    post: &ScheduledPost,
) -> anyhow::Result<()> {
    let failed = queue::enqueue(producer, &topics.scheduled, std::slice::from_ref(post)).await?;
    if failed > 0 {
        anyhow::bail!("Kafka did not acknowledge the scheduled post; try again (the id is stable, nothing doubles)");
    }
    Ok(())
}

/// Cancels `id` with the scheduler's tombstone writer.
///
/// # Errors
/// Not a scheduled post id, or Kafka does not acknowledge the tombstone.
pub async fn cancel(
    producer: &FutureProducer,
    topics: &ScheduleTopics,
    id: &str,
) -> anyhow::Result<()> {
    queue::cancel(producer, &topics.scheduled, id)
        .await
        .context("cancelling")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn states_follow_the_last_records() {
        let post = |id: &str, due: &str| ScheduledPost {
            id: id.into(),
            text: format!("text {id}"),
            due_at: t(due),
            created_at: t(due),
            source: "web".into(),
            destinations: vec![Destination::X, Destination::Bluesky],
        };
        let json = |p: &ScheduledPost| Some(serde_json::to_vec(p).unwrap());
        let a = post("sp-a", "2026-01-01T10:00:00Z");
        let b = post("sp-b", "2026-01-01T09:00:00Z");
        let scheduled = vec![
            (0, "sp-a".to_owned(), json(&a)),
            (0, "sp-b".to_owned(), json(&b)),
            (0, "sp-b".to_owned(), None),
        ];
        let result = |outcome: &str| {
            Some(
                format!(r#"{{"id":"sp-a","outcome":"{outcome}","at":"2026-01-01T10:00:01Z","due_at":"2026-01-01T10:00:00Z","attempt":1,"post_id":"42"}}"#)
                    .into_bytes(),
            )
        };
        let results = vec![
            (0, "sp-a/x".to_owned(), result("attempt")),
            (0, "sp-a/x".to_owned(), result("posted")),
            (0, "sp-a/bluesky".to_owned(), result("retry")),
        ];
        let rows = rows(&scheduled, &results);
        let states: Vec<(&str, Destination, &str)> = rows
            .iter()
            .map(|r| (r.id.as_str(), r.destination, r.state))
            .collect();
        // sp-b was cancelled: its tombstone left no destinations, so no rows.
        assert_eq!(
            states,
            vec![
                ("sp-a", Destination::X, "posted"),
                ("sp-a", Destination::Bluesky, "pending"),
            ]
        );
        assert_eq!(rows[0].detail, "42");
        assert_eq!(rows[1].detail, "retry #1");
        // A cancelled post with an outcome shows as cancelled.
        let scheduled = vec![(0, "sp-a".to_owned(), None)];
        let results = vec![(0, "sp-a/x".to_owned(), result("attempt"))];
        let rows = super::rows(&scheduled, &results);
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].state, "cancelled");
    }

    #[test]
    fn only_failed_or_missed_rows_are_retried_now_at_their_network() {
        let now = t("2026-01-01T10:00:00Z");
        let row = |state: &'static str| ScheduleRow {
            id: "sp-a".into(),
            destination: Destination::Bluesky,
            state,
            due_at: t("2026-01-01T08:00:00Z"),
            at: None,
            detail: String::new(),
            text: "again".into(),
        };
        for state in ["failed", "missed"] {
            let request = retry_request(&row(state), now).unwrap();
            assert_eq!(request.to, vec![Destination::Bluesky]);
            let post = plan_post(&request, now).unwrap();
            assert_eq!(post.text, "again");
            assert_eq!(post.due_at, now);
            assert_eq!(
                post.id,
                tweet_pipeline_scheduler::model::post_id("again", now),
                "a new post, not the old id"
            );
            assert_eq!(post.destinations, vec![Destination::Bluesky]);
        }
        for state in ["pending", "posted", "duplicate", "cancelled"] {
            assert!(retry_request(&row(state), now).is_err(), "{state}");
        }
        let empty = ScheduleRow {
            text: " ".into(),
            ..row("failed")
        };
        assert!(retry_request(&empty, now).is_err());
    }

    #[test]
    fn a_page_post_is_planned_like_the_cli() {
        let now = t("2026-01-01T10:00:00Z");
        let request = CreateRequest {
            text: "  hello  ".into(),
            at: "2026-01-01T12:00:00Z".into(),
            to: vec![Destination::Mastodon, Destination::X, Destination::X],
        };
        let post = plan_post(&request, now).unwrap();
        assert_eq!(post.text, "hello");
        assert_eq!(
            post.id,
            tweet_pipeline_scheduler::model::post_id("hello", t("2026-01-01T12:00:00Z"))
        );
        assert_eq!(
            post.destinations,
            vec![Destination::X, Destination::Mastodon]
        );
        assert_eq!(post.source, "web");
        let past = CreateRequest {
            at: "2025-12-31T00:00:00Z".into(),
            ..request.clone()
        };
        assert!(plan_post(&past, now).is_err());
        let empty = CreateRequest {
            text: " ".into(),
            ..request.clone()
        };
        assert!(plan_post(&empty, now).is_err());
        let bad = CreateRequest {
            at: "tomorrow".into(),
            ..request
        };
        assert!(plan_post(&bad, now).is_err());
    }
}
