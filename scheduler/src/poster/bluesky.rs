//! The Bluesky (atproto XRPC) calls of the poster, as one account with an app password:
//!
//! - `POST /xrpc/com.atproto.server.createSession` `{"identifier","password"}` →
//!   `{"did","handle","accessJwt","refreshJwt",...}`; the session is re-created when a call
//!   answers 400/401 `ExpiredToken` or `InvalidToken` (lexicon `com.atproto.repo.createRecord`
//!   errors; the access token lives about two hours).
//! - `POST /xrpc/com.atproto.repo.createRecord` `{"repo": <did>, "collection":
//!   "app.bsky.feed.post", "rkey": <TID>, "record": {"$type","text","createdAt"}}` → 200
//!   `{"uri","cid","commit":{"cid","rev"},"validationStatus":"valid"}` (the shapes of the
//!   recorded requests and responses in `shared/data/bluesky/api-posts/`).
//! - `GET /xrpc/com.atproto.repo.getRecord?repo&collection&rkey` → `{"uri","cid","value"}`,
//!   or 400 `RecordNotFound`.
//!
//! **Exactly once by record key.** Every post is created with the record key [`record_key`],
//! a TID derived from the scheduled post alone, so a retry (after a crash, a timeout, a lost
//! answer) names the same record. The reference PDS (bluesky-social/atproto, `packages/pds`)
//! answers a `createRecord` whose rkey already exists with **HTTP 500
//! `{"error":"InternalServerError","message":"Internal Server Error"}`**: the repo write fails
//! inside the MST, and nothing maps it to an XRPC error (bluesky-social/atproto#4725,
//! bluesky-social/indigo#873; bluesky-social/atproto PR #4728, open, proposes a dedicated
//! error). So a 500 is not trusted as "not posted": the client reads the record at that key
//! (`getRecord`) and answers [`PostReply::AlreadyPosted`] with its URI when it holds this post's
//! text, and a retryable server error only when there is no record. A 409 or an error name
//! ending in `AlreadyExists` (what the proposed error and other PDSes answer) is treated the
//! same way.

use std::time::Duration;

use anyhow::Context as _;
use chrono::{DateTime, SecondsFormat, Utc};
use tokio::sync::Mutex;
use tweet_pipeline_common::secret::Secret;
use unicode_segmentation::UnicodeSegmentation as _;

use super::decide::PostReply;
use crate::model::ScheduledPost;

/// The default PDS (Bluesky's entryway).
pub const DEFAULT_PDS_URL: &str = "https://bsky.social";
/// The collection of posts.
pub const POST_COLLECTION: &str = "app.bsky.feed.post";
/// The most graphemes of a post's text (lexicon `app.bsky.feed.post`, `text`:
/// `maxGraphemes: 300`, `maxLength: 3000` bytes).
pub const MAX_GRAPHEMES: usize = 300;
/// The most UTF-8 bytes of a post's text (same lexicon, `maxLength`).
const MAX_TEXT_BYTES: usize = 3000;
/// The base32-sortable alphabet of TIDs (atproto spec "Timestamp Identifiers (TIDs)").
const TID_ALPHABET: &[u8; 32] = b"234567abcdefghijklmnopqrstuvwxyz";

/// The account the poster posts as: a handle or DID and an app password.
#[derive(Debug, Clone)]
pub struct BlueskyCredentials {
    /// Handle (`alice.bsky.social`) or DID (`did:plc:...`).
    pub identifier: String,
    /// An app password (Settings → App passwords); never printed.
    pub app_password: Secret,
}

/// A session: the account's DID and the access token.
#[derive(Debug, Clone)]
struct Session {
    did: String,
    access_jwt: Secret,
}

/// A client of one PDS as one account.
pub struct BlueskyClient {
    base_url: String,
    credentials: BlueskyCredentials,
    http: reqwest::Client,
    session: Mutex<Option<Session>>,
}

/// Why a text cannot be posted to Bluesky (`None`: it can): more than [`MAX_GRAPHEMES`]
/// graphemes (extended grapheme clusters, UAX #29, as the lexicon counts) or 3000 bytes.
pub fn check_text(text: &str) -> Option<String> {
    let graphemes = text.graphemes(true).count();
    if graphemes > MAX_GRAPHEMES {
        return Some(format!(
            "too long for Bluesky: {graphemes} graphemes > {MAX_GRAPHEMES} (lexicon app.bsky.feed.post maxGraphemes)"
        ));
    }
    if text.len() > MAX_TEXT_BYTES {
        return Some(format!(
            "too long for Bluesky: {} bytes > {MAX_TEXT_BYTES} (lexicon app.bsky.feed.post maxLength)",
            text.len()
        ));
    }
    None
}

/// The record key of `post`'s Bluesky record: a TID (atproto spec "Record Key", type `tid`,
/// which `app.bsky.feed.post` declares), derived from the post alone so that every attempt
/// names the same record.
///
/// A TID is a 64-bit integer, top bit 0, then 53 bits of microseconds since the Unix epoch,
/// then a 10-bit clock id, written as 13 base32-sortable characters (so the first is one of
/// `234567abcdefghij`). Here the microseconds are the due time's milliseconds times 1000 plus
/// a number below 1000 from the 64-bit FNV-1a hash of the post's id, and the clock id is 10
/// more bits of that hash: two posts due in the same millisecond share a key with odds of
/// about one in a million, and the key still sorts by due time.
pub fn record_key(post: &ScheduledPost) -> String {
    tid(post.due_at, &post.id)
}

fn tid(due_at: DateTime<Utc>, id: &str) -> String {
    const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    let hash = id.bytes().fold(OFFSET, |hash, byte| {
        (hash ^ u64::from(byte)).wrapping_mul(PRIME)
    });
    let millis = u64::try_from(due_at.timestamp_millis()).unwrap_or(0);
    let micros = (millis.saturating_mul(1000) + hash % 1000) & ((1 << 53) - 1);
    let clock_id = (hash >> 20) & 0x3FF;
    let value = (micros << 10) | clock_id;
    (0..13)
        .rev()
        .map(|i| char::from(TID_ALPHABET[((value >> (i * 5)) & 0x1F) as usize]))
        .collect()
}

/// Whether `key` is a syntactically valid TID (atproto spec "Timestamp Identifiers (TIDs)":
/// 13 characters of `234567abcdefghijklmnopqrstuvwxyz`, the first in `234567abcdefghij`).
pub fn is_tid(key: &str) -> bool {
    let bytes = key.as_bytes();
    bytes.len() == 13
        && bytes.iter().all(|b| TID_ALPHABET.contains(b))
        && TID_ALPHABET[..16].contains(&bytes[0])
}

/// What one XRPC call answered: status, JSON body (`Null` when none), `ratelimit-reset`.
struct Answer {
    status: u16,
    json: serde_json::Value,
    reset: Option<DateTime<Utc>>,
}

impl Answer {
    fn error(&self) -> &str {
        self.json["error"].as_str().unwrap_or_default()
    }

    fn message(&self) -> String {
        self.json["message"]
            .as_str()
            .or(self.json["error"].as_str())
            .unwrap_or("no detail")
            .to_owned()
    }

    fn expired(&self) -> bool {
        matches!(self.status, 400 | 401) && matches!(self.error(), "ExpiredToken" | "InvalidToken")
    }
}

impl BlueskyClient {
    /// A client of the PDS at `base_url` (e.g. `https://bsky.social`) whose requests time out
    /// after `timeout`.
    ///
    /// # Errors
    /// When the HTTP client cannot be built (TLS setup).
    pub fn new(
        base_url: &str,
        credentials: BlueskyCredentials,
        timeout: Duration,
    ) -> anyhow::Result<Self> {
        let http = super::http_client(timeout)?;
        Ok(Self {
            base_url: base_url.trim_end_matches('/').to_owned(),
            credentials,
            http,
            session: Mutex::new(None),
        })
    }

    /// The PDS root.
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// `createSession`; the error names the identifier and status, never the password.
    async fn create_session(&self) -> anyhow::Result<Session> {
        let url = format!("{}/xrpc/com.atproto.server.createSession", self.base_url);
        let response = self
            .http
            .post(&url)
            .json(&serde_json::json!({
                "identifier": self.credentials.identifier,
                "password": self.credentials.app_password.expose(),
            }))
            .send()
            .await
            .context("createSession could not be sent")?;
        let status = response.status();
        let json: serde_json::Value = response.json().await.unwrap_or_default();
        if !status.is_success() {
            anyhow::bail!(
                "createSession for {} answered HTTP {status} {} (check BLUESKY_IDENTIFIER and BLUESKY_APP_PASSWORD)",
                self.credentials.identifier,
                json["error"].as_str().unwrap_or_default()
            );
        }
        match (json["did"].as_str(), json["accessJwt"].as_str()) {
            (Some(did), Some(jwt)) => Ok(Session {
                did: did.to_owned(),
                access_jwt: Secret::new(jwt),
            }),
            _ => anyhow::bail!("createSession answered without did or accessJwt"),
        }
    }

    async fn session(&self, renew: bool) -> anyhow::Result<Session> {
        let mut guard = self.session.lock().await;
        if renew {
            *guard = None;
        }
        if let Some(session) = guard.as_ref() {
            return Ok(session.clone());
        }
        let session = self.create_session().await?;
        *guard = Some(session.clone());
        Ok(session)
    }

    async fn read(response: reqwest::Response) -> Result<Answer, reqwest::Error> {
        let status = response.status().as_u16();
        let reset = response
            .headers()
            .get("ratelimit-reset")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<i64>().ok())
            .and_then(|epoch| DateTime::from_timestamp(epoch, 0));
        let body = response.text().await?;
        Ok(Answer {
            status,
            json: serde_json::from_str(&body).unwrap_or_default(),
            reset,
        })
    }

    async fn create_record(
        &self,
        session: &Session,
        post: &ScheduledPost,
        rkey: &str,
    ) -> Result<Answer, reqwest::Error> {
        let url = format!("{}/xrpc/com.atproto.repo.createRecord", self.base_url);
        let body = serde_json::json!({
            "repo": session.did,
            "collection": POST_COLLECTION,
            "rkey": rkey,
            "record": {
                "$type": POST_COLLECTION,
                "text": post.text,
                "createdAt": Utc::now().to_rfc3339_opts(SecondsFormat::Millis, true),
            },
        });
        let response = self
            .http
            .post(&url)
            .bearer_auth(session.access_jwt.expose())
            .json(&body)
            .send()
            .await?;
        Self::read(response).await
    }

    async fn get_record(&self, session: &Session, rkey: &str) -> Result<Answer, reqwest::Error> {
        let url = format!("{}/xrpc/com.atproto.repo.getRecord", self.base_url);
        let response = self
            .http
            .get(&url)
            .bearer_auth(session.access_jwt.expose())
            .query(&[
                ("repo", session.did.as_str()),
                ("collection", POST_COLLECTION),
                ("rkey", rkey),
            ])
            .send()
            .await?;
        Self::read(response).await
    }

    /// Creates `post` as the record [`record_key`] of the account's `app.bsky.feed.post`.
    pub async fn create_post(&self, post: &ScheduledPost) -> PostReply {
        let rkey = record_key(post);
        let mut renewed = false;
        loop {
            let session = match self.session(renewed).await {
                Ok(session) => session,
                // No createRecord was sent: certainly not posted.
                Err(error) => return PostReply::NotSent(format!("{error:#}")),
            };
            let answer = match self.create_record(&session, post, &rkey).await {
                Ok(answer) => answer,
                Err(error) if error.is_connect() => return PostReply::NotSent(error.to_string()),
                Err(error) => return PostReply::Ambiguous(error.to_string()),
            };
            if answer.expired() && !renewed {
                renewed = true;
                continue;
            }
            return match answer.status {
                200..=299 => match answer.json["uri"].as_str() {
                    Some(uri) => PostReply::Created(uri.to_owned()),
                    None => PostReply::Ambiguous(format!("HTTP {} without uri", answer.status)),
                },
                429 => PostReply::RateLimited(answer.reset),
                // A taken record key: the reference PDS's 500, or a dedicated error.
                409 | 500 => self.existing(&session, post, &rkey, answer.status).await,
                _ if answer.error().ends_with("AlreadyExists") => {
                    self.existing(&session, post, &rkey, answer.status).await
                }
                501..=599 => PostReply::ServerError(answer.status),
                status => PostReply::Refused(
                    status,
                    format!("{} {}", answer.error(), answer.message())
                        .trim()
                        .to_owned(),
                ),
            };
        }
    }

    /// After a createRecord answer that may mean "the record key is taken": the record at
    /// `rkey`, if it holds `post`'s text, is this post, created by an earlier attempt.
    async fn existing(
        &self,
        session: &Session,
        post: &ScheduledPost,
        rkey: &str,
        status: u16,
    ) -> PostReply {
        let answer = match self.get_record(session, rkey).await {
            Ok(answer) => answer,
            // Unknown either way: keep the attempt, and send again later (same key).
            Err(error) => return PostReply::Ambiguous(format!("getRecord failed: {error}")),
        };
        match answer.status {
            200 if answer.json["value"]["text"].as_str() == Some(post.text.as_str()) => {
                match answer.json["uri"].as_str() {
                    Some(uri) => PostReply::AlreadyPosted(uri.to_owned()),
                    None => PostReply::Ambiguous("getRecord answered without uri".to_owned()),
                }
            }
            200 => PostReply::Refused(
                status,
                format!("the record key {rkey} holds another post's text"),
            ),
            400 if answer.error() == "RecordNotFound" => PostReply::ServerError(status),
            _ => PostReply::Ambiguous(format!(
                "createRecord answered HTTP {status} and getRecord HTTP {}",
                answer.status
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn post(id: &str, due: &str) -> ScheduledPost {
        let due_at = DateTime::parse_from_rfc3339(due)
            .unwrap()
            .with_timezone(&Utc);
        ScheduledPost {
            id: id.into(),
            text: "t".into(),
            due_at,
            created_at: due_at,
            source: "cli".into(),
            destinations: vec![],
        }
    }

    #[test]
    fn record_keys_are_valid_deterministic_tids() {
        let a = post("sp-0123456789abcdef", "2026-03-08T06:30:00Z");
        let key = record_key(&a);
        assert!(is_tid(&key), "{key}");
        assert_eq!(key, record_key(&a.clone()));
        // Another post due at the same instant: another key; a later post sorts after.
        let b = post("sp-fedcba9876543210", "2026-03-08T06:30:00Z");
        assert_ne!(record_key(&b), key);
        let later = post("sp-0123456789abcdef", "2026-03-08T06:30:01Z");
        assert!(record_key(&later) > key);
        // The timestamp part decodes to the due time (to the millisecond).
        let value = key.bytes().fold(0u64, |v, c| {
            (v << 5) | TID_ALPHABET.iter().position(|a| *a == c).unwrap() as u64
        });
        assert_eq!((value >> 10) / 1000, 1_772_951_400_000);
        // Pinned, so that a change of derivation (which would re-post after an upgrade) is seen.
        assert_eq!(key, "3mgjppahf632p");
        for (due, id) in [("1970-01-01T00:00:00Z", "a"), ("2200-01-01T00:00:00Z", "b")] {
            assert!(is_tid(&record_key(&post(id, due))));
        }
    }

    #[test]
    fn tid_syntax() {
        assert!(is_tid("3jzfcijpj2z2a"));
        assert!(is_tid("2222222222222"));
        assert!(!is_tid("3jzfcijpj2z2"));
        assert!(!is_tid("kjzfcijpj2z2a"), "first character beyond j");
        assert!(!is_tid("3jzfcijpj2z21"), "1 is not in the alphabet");
        assert!(!is_tid("3JZFCIJPJ2Z2A"));
    }

    #[test]
    fn texts_are_counted_in_graphemes() {
        assert_eq!(check_text(&"a".repeat(300)), None);
        assert!(check_text(&"a".repeat(301)).is_some());
        // A family emoji is one grapheme of several code points.
        let family = "👨‍👩‍👧";
        assert_eq!(check_text(&family.repeat(150)), None);
        assert!(check_text(&family.repeat(301))
            .unwrap()
            .contains("graphemes"));
    }

    #[test]
    fn the_password_is_never_printed() {
        let credentials = BlueskyCredentials {
            identifier: "alice.test".into(),
            app_password: Secret::new("abcd-efgh-ijkl-mnop"),
        };
        assert!(!format!("{credentials:?}").contains("abcd"));
    }
}
