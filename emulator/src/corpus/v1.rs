//! The v1.1 side of the corpus: which lines are statuses, the text `track` matches, and the
//! helpers that read a v1.1 status's ids, texts and times (shared with the v2 derivation).

use serde_json::Value;

pub(super) fn is_v1_status(value: &Value) -> bool {
    value.get("user").is_some_and(Value::is_object)
        && (value.get("text").is_some() || value.get("full_text").is_some())
}

/// The full text of a v1.1 status: `extended_tweet.full_text` when truncated, else
/// `full_text` or `text` (X API v1.1 "Extended Tweets").
pub(super) fn v1_full_text(status: &Value) -> &str {
    status["extended_tweet"]["full_text"]
        .as_str()
        .or_else(|| status["full_text"].as_str())
        .or_else(|| status["text"].as_str())
        .unwrap_or_default()
}

pub(super) fn v1_track_text(status: &Value) -> String {
    let mut text = v1_full_text(status).to_lowercase();
    for nested in ["retweeted_status", "quoted_status"] {
        if status[nested].is_object() {
            text.push('\n');
            text.push_str(&v1_full_text(&status[nested]).to_lowercase());
        }
    }
    text
}

pub(super) fn id_str(value: &Value) -> Option<String> {
    value["id_str"]
        .as_str()
        .map(str::to_owned)
        .or_else(|| value["id"].as_u64().map(|id| id.to_string()))
}

/// `Sun May 05 18:04:07 +0000 2013` -> `2013-05-05T18:04:07.000Z`.
pub(super) fn v1_time_to_rfc3339(created_at: &str) -> Option<String> {
    let time = chrono::DateTime::parse_from_str(created_at, "%a %b %d %H:%M:%S %z %Y").ok()?;
    Some(
        time.with_timezone(&chrono::Utc)
            .format("%Y-%m-%dT%H:%M:%S%.3fZ")
            .to_string(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v1_times_become_rfc3339() {
        assert_eq!(
            v1_time_to_rfc3339("Sun May 05 18:04:07 +0000 2013").as_deref(),
            Some("2013-05-05T18:04:07.000Z")
        );
        assert_eq!(v1_time_to_rfc3339("yesterday"), None);
    }
}
