//! The X API v2 calls of the poster, signed with OAuth 1.0a user context (RFC 5849 HMAC-SHA1,
//! by the oauth1-request crate, as the producer's v1.1 source does):
//!
//! - `POST /2/tweets` `{"text": ...}` → `201 {"data":{"id","text"}}` (X API v2 "Manage
//!   Posts"); 403 `"You are not allowed to create a Tweet with duplicate content."` for a
//!   duplicate; 429 with `x-rate-limit-reset` (Unix epoch seconds) when rate limited.
//! - `GET /2/users/me` → `{"data":{"id",...}}` (the authenticating user).
//! - `GET /2/users/:id/tweets?max_results=100&start_time=...` → newest first, paged by
//!   `meta.next_token` / `pagination_token` (X API v2 "User Posts timeline").

use std::time::Duration;

use anyhow::Context as _;
use chrono::{DateTime, SecondsFormat, Utc};
use oauth1_request::{ParameterList, Token, HMAC_SHA1};
use tokio::sync::OnceCell;
use tweet_pipeline_common::secret::OAuthKeys;

pub use super::decide::PostReply;

/// How many timeline pages (of 100) reconciliation reads at most.
const MAX_TIMELINE_PAGES: usize = 5;

/// A client of the X API v2 as one user.
pub struct XClient {
    base_url: String,
    keys: OAuthKeys,
    http: reqwest::Client,
    user_id: OnceCell<String>,
}

impl XClient {
    /// A client of `base_url` (e.g. `https://api.x.com`) whose requests time out after
    /// `timeout`.
    ///
    /// # Errors
    /// When the HTTP client cannot be built (TLS setup).
    pub fn new(base_url: &str, keys: OAuthKeys, timeout: Duration) -> anyhow::Result<Self> {
        let http = super::http_client(timeout)?;
        Ok(Self {
            base_url: base_url.trim_end_matches('/').to_owned(),
            keys,
            http,
            user_id: OnceCell::new(),
        })
    }

    fn token(&self) -> Token<&str, &str> {
        Token::from_parts(
            self.keys.consumer_key.expose(),
            self.keys.consumer_secret.expose(),
            self.keys.access_token.expose(),
            self.keys.access_token_secret.expose(),
        )
    }

    /// `POST /2/tweets`.
    pub async fn create_post(&self, text: &str) -> PostReply {
        let url = format!("{}/2/tweets", self.base_url);
        // A JSON body is not part of the OAuth 1.0a signature (only form bodies are).
        let authorization = oauth1_request::post(&url, &(), &self.token(), HMAC_SHA1);
        let sent = self
            .http
            .post(&url)
            .header(reqwest::header::AUTHORIZATION, authorization)
            .json(&serde_json::json!({ "text": text }))
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
            .get("x-rate-limit-reset")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<i64>().ok())
            .and_then(|epoch| DateTime::from_timestamp(epoch, 0));
        let body = match response.text().await {
            Ok(body) => body,
            // The status is known; only a 2xx could have posted.
            Err(error) if (200..300).contains(&status) => {
                return PostReply::Ambiguous(error.to_string())
            }
            Err(_) => String::new(),
        };
        let json: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
        match status {
            200..=299 => match json["data"]["id"].as_str() {
                Some(id) => PostReply::Created(id.to_owned()),
                None => PostReply::Ambiguous(format!("HTTP {status} without data.id")),
            },
            403 if json["detail"]
                .as_str()
                .is_some_and(|d| d.contains("duplicate content")) =>
            {
                PostReply::Duplicate
            }
            429 => PostReply::RateLimited(reset),
            500..=599 => PostReply::ServerError(status),
            _ => {
                let detail = json["detail"]
                    .as_str()
                    .or(json["title"].as_str())
                    .unwrap_or("no detail")
                    .to_owned();
                PostReply::Refused(status, detail)
            }
        }
    }

    async fn get_json(
        &self,
        path: &str,
        query: &[(&str, String)],
    ) -> anyhow::Result<serde_json::Value> {
        let url = format!("{}{path}", self.base_url);
        let params = ParameterList::new(
            query
                .iter()
                .map(|(k, v)| (*k, v.as_str()))
                .collect::<Vec<_>>(),
        );
        let authorization = oauth1_request::get(&url, &params, &self.token(), HMAC_SHA1);
        let response = self
            .http
            .get(&url)
            .query(query)
            .header(reqwest::header::AUTHORIZATION, authorization)
            .send()
            .await
            .with_context(|| format!("GET {path} failed"))?;
        let status = response.status();
        if !status.is_success() {
            anyhow::bail!("GET {path} answered HTTP {status}");
        }
        response
            .json()
            .await
            .with_context(|| format!("GET {path}: the answer is not JSON"))
    }

    async fn user_id(&self) -> anyhow::Result<&str> {
        self.user_id
            .get_or_try_init(|| async {
                let me = self.get_json("/2/users/me", &[]).await?;
                me["data"]["id"]
                    .as_str()
                    .map(str::to_owned)
                    .context("GET /2/users/me: no data.id")
            })
            .await
            .map(String::as_str)
    }

    /// The texts of the account's posts created since `since` (newest first, at most
    /// [`MAX_TIMELINE_PAGES`] pages of 100).
    ///
    /// # Errors
    /// When a call fails or answers something other than 2xx JSON.
    pub async fn recent_posts(
        &self,
        since: DateTime<Utc>,
    ) -> anyhow::Result<Vec<(String, String)>> {
        let user = self.user_id().await?.to_owned();
        let path = format!("/2/users/{user}/tweets");
        let mut posts = Vec::new();
        let mut token: Option<String> = None;
        for _ in 0..MAX_TIMELINE_PAGES {
            let mut query = vec![
                ("max_results", "100".to_owned()),
                (
                    "start_time",
                    since.to_rfc3339_opts(SecondsFormat::Secs, true),
                ),
            ];
            if let Some(token) = &token {
                query.push(("pagination_token", token.clone()));
            }
            let page = self.get_json(&path, &query).await?;
            for post in page["data"].as_array().into_iter().flatten() {
                if let (Some(id), Some(text)) = (post["id"].as_str(), post["text"].as_str()) {
                    posts.push((id.to_owned(), text.to_owned()));
                }
            }
            match page["meta"]["next_token"].as_str() {
                Some(next) => token = Some(next.to_owned()),
                None => break,
            }
        }
        Ok(posts)
    }
}

/// A post's text as compared during reconciliation: X returns `&`, `<`, `>` HTML-escaped and
/// links shortened to t.co, so entities are decoded, URLs masked and whitespace collapsed.
pub fn comparable(text: &str) -> String {
    text.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
        .split_whitespace()
        .map(|word| {
            let lower = word.to_ascii_lowercase();
            if lower.starts_with("http://") || lower.starts_with("https://") {
                "<url>"
            } else {
                word
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn texts_compare_as_x_returns_them() {
        assert_eq!(
            comparable("Tom & Jerry  https://example.com/a"),
            comparable("Tom &amp; Jerry https://t.co/xyz")
        );
        assert_ne!(comparable("a b"), comparable("a c"));
    }
}
