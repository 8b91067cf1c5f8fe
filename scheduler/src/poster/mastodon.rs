//! The Mastodon call of the poster: `POST /api/v1/statuses` with a JSON body `{"status":
//! text}`, `Authorization: Bearer <MASTODON_TOKEN>` (the name the producer's Mastodon source
//! reads its token from) and an `Idempotency-Key` (Mastodon API docs, "statuses", Post a new
//! status) → 200 with a Status entity (`{"id","uri","url","content",...}`); 422 for a refused
//! status (`{"error": "Validation failed: Text character limit of 500 exceeded"}`), 429 with
//! `X-RateLimit-Reset` (an ISO 8601 time) when rate limited.
//!
//! **Exactly once by idempotency key.** The key is [`idempotency_key`], derived from the
//! scheduled post's id and the destination, so every attempt of a post sends the same key and
//! Mastodon answers a repeat with the status created the first time instead of a second one.
//! Mastodon keeps a key for one hour ("Idempotency keys are stored for up to 1 hour", same
//! docs): an ambiguous attempt is sent again only within
//! [`super::decide::MASTODON_RESEND_WINDOW_SECS`] of it, and recorded as `failed` (check the
//! account) after that, rather than risk a second status ([`super::decide::decide`]).

use std::time::Duration;

use chrono::{DateTime, Utc};
use tweet_pipeline_common::secret::Secret;

use super::decide::PostReply;
use crate::model::{Destination, ScheduledPost};

/// A client of one Mastodon instance as one account.
pub struct MastodonClient {
    base_url: String,
    token: Secret,
    http: reqwest::Client,
}

/// The `Idempotency-Key` of `post` at Mastodon: `tweet-pipeline-<id>-mastodon` (any string is
/// allowed; the destination is part of it so that a key never means two things).
pub fn idempotency_key(post: &ScheduledPost) -> String {
    format!("tweet-pipeline-{}-{}", post.id, Destination::Mastodon)
}

impl MastodonClient {
    /// A client of the instance at `base_url` (e.g. `https://mastodon.social`) whose requests
    /// time out after `timeout`.
    ///
    /// # Errors
    /// When the HTTP client cannot be built (TLS setup).
    pub fn new(base_url: &str, token: Secret, timeout: Duration) -> anyhow::Result<Self> {
        let http = super::http_client(timeout)?;
        Ok(Self {
            base_url: base_url.trim_end_matches('/').to_owned(),
            token,
            http,
        })
    }

    /// The instance root.
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// `POST /api/v1/statuses` with [`idempotency_key`].
    pub async fn create_post(&self, post: &ScheduledPost) -> PostReply {
        let url = format!("{}/api/v1/statuses", self.base_url);
        let sent = self
            .http
            .post(&url)
            .bearer_auth(self.token.expose())
            .header("Idempotency-Key", idempotency_key(post))
            .json(&serde_json::json!({ "status": post.text }))
            .send()
            .await;
        let response = match sent {
            Ok(response) => response,
            Err(error) if error.is_connect() => return PostReply::NotSent(error.to_string()),
            Err(error) => return PostReply::Ambiguous(error.to_string()),
        };
        let status = response.status().as_u16();
        let reset = response
            .headers()
            .get("x-ratelimit-reset")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| DateTime::parse_from_rfc3339(v.trim()).ok())
            .map(|t| t.with_timezone(&Utc));
        let body = match response.text().await {
            Ok(body) => body,
            Err(error) if (200..300).contains(&status) => {
                return PostReply::Ambiguous(error.to_string())
            }
            Err(_) => String::new(),
        };
        let json: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
        match status {
            200..=299 => match json["id"].as_str() {
                Some(id) => PostReply::Created(id.to_owned()),
                None => PostReply::Ambiguous(format!("HTTP {status} without id")),
            },
            429 => PostReply::RateLimited(reset),
            500..=599 => PostReply::ServerError(status),
            _ => PostReply::Refused(
                status,
                json["error"].as_str().unwrap_or("no detail").to_owned(),
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_key_is_a_function_of_the_post_id() {
        let now = Utc::now();
        let post = ScheduledPost {
            id: "sp-0123456789abcdef".into(),
            text: "a".into(),
            due_at: now,
            created_at: now,
            source: "cli".into(),
            destinations: vec![Destination::Mastodon],
        };
        let mut again = post.clone();
        again.created_at = now + chrono::Duration::seconds(5);
        assert_eq!(idempotency_key(&post), idempotency_key(&again));
        assert_eq!(
            idempotency_key(&post),
            "tweet-pipeline-sp-0123456789abcdef-mastodon"
        );
    }
}
