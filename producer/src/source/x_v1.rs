//! X API v1.1 `POST statuses/filter.json`, signed with OAuth 1.0a (user context).
//!
//! Sources: X API v1.1 "POST statuses/filter" reference (`track`: comma-separated phrases,
//! `stall_warnings`), "Connecting to a streaming endpoint" (keep-alive every 30 s; reconnect
//! after 90 s of silence; 420 when rate limited), and RFC 5849 (OAuth 1.0 signatures, done by
//! the oauth1-request crate). The endpoint is gone from X: since 2023 X answers 403 to v1.1
//! `statuses/filter` for every app ("Please use V2 filtered stream"; [`V1_GONE`]). It lives on
//! in archives (`--replay`), compatible servers and the local emulator.

use std::time::Duration;

use tweet_pipeline_common::secret::OAuthKeys;

use crate::source::live::{Framing, StreamApi};

/// What the first log line of every v1.1 connection and the v1.1 `--help` say.
pub const V1_GONE: &str = "X answers 403 to v1.1 statuses/filter for every app since 2023 (\"Please use V2 filtered stream\"); --api v1 works only with a compatible server or the emulator (--x-api-url), and --replay reads v1.1 archives";

/// Three missed 30-second keep-alives ("Connecting to a streaming endpoint": "if no data is
/// received for 90 seconds, reconnect").
pub const DEFAULT_STALL_TIMEOUT: Duration = Duration::from_secs(90);

/// The v1.1 configuration.
#[derive(Debug, Clone)]
pub struct XV1 {
    /// Stream root, e.g. `https://stream.twitter.com` (or the local emulator).
    pub base_url: String,
    /// OAuth credentials.
    pub keys: OAuthKeys,
    /// Track phrases (OR between phrases, AND between words of a phrase).
    pub track: Vec<String>,
    /// Stall timeout.
    pub stall_timeout: Duration,
}

/// The form parameters of the request (they are part of the OAuth signature base string).
#[derive(oauth1_request::Request)]
struct FilterRequest<'a> {
    stall_warnings: bool,
    track: &'a str,
}

impl StreamApi for XV1 {
    fn label(&self) -> &'static str {
        "x_v1"
    }

    fn source(&self) -> String {
        "x:v1.1".to_owned()
    }

    fn framing(&self) -> Framing {
        Framing::Lines
    }

    fn stall_timeout(&self) -> Duration {
        self.stall_timeout
    }

    fn request(&self, client: &reqwest::Client) -> anyhow::Result<reqwest::RequestBuilder> {
        let url = format!(
            "{}/1.1/statuses/filter.json",
            self.base_url.trim_end_matches('/')
        );
        let track = self.track.join(",");
        let request = FilterRequest {
            stall_warnings: true,
            track: &track,
        };
        let token = oauth1_request::Token::from_parts(
            self.keys.consumer_key.expose(),
            self.keys.consumer_secret.expose(),
            self.keys.access_token.expose(),
            self.keys.access_token_secret.expose(),
        );
        // A fresh nonce and timestamp for every connection attempt.
        let authorization = oauth1_request::post(&url, &request, &token, oauth1_request::HMAC_SHA1);
        Ok(client
            .post(url)
            .header(reqwest::header::AUTHORIZATION, authorization)
            .header(
                reqwest::header::CONTENT_TYPE,
                "application/x-www-form-urlencoded",
            )
            .body(oauth1_request::to_form(&request)))
    }

    fn unauthorized_hint(&self) -> &'static str {
        "X answers 403 to v1.1 streaming for every app (use --api v2); against a compatible server, check X_CONSUMER_KEY, X_CONSUMER_SECRET, X_ACCESS_TOKEN and X_ACCESS_TOKEN_SECRET (OAuth 1.0a user context)"
    }

    fn connect_warning(&self) -> Option<&'static str> {
        Some(V1_GONE)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tweet_pipeline_common::secret::Secret;

    #[test]
    fn every_connection_says_x_refuses_v1_streaming() {
        let secret = || Secret::new("k");
        let api = XV1 {
            base_url: "http://127.0.0.1:1".to_owned(),
            keys: OAuthKeys {
                consumer_key: secret(),
                consumer_secret: secret(),
                access_token: secret(),
                access_token_secret: secret(),
            },
            track: vec!["a".to_owned()],
            stall_timeout: DEFAULT_STALL_TIMEOUT,
        };
        let warning = api.connect_warning().unwrap_or_default();
        assert!(
            warning.contains("403") && warning.contains("v1.1"),
            "{warning}"
        );
        assert!(api.unauthorized_hint().contains("403"));
    }
}
