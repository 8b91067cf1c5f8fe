//! The post model the consumers work on: the fields analysis and storage need, read from a raw
//! v1.1 status or a v2 filtered-stream message without building the whole document.
//!
//! Text rules (X API v1.1 "Tweet object" and "Extended Tweets" documents; v2 "Tweet object"):
//! - v1.1: a status with `truncated: true` carries its whole text in `extended_tweet.full_text`;
//!   REST payloads fetched with `tweet_mode=extended` carry `full_text`; otherwise `text`.
//! - A retweet's own text is `RT @user: ` plus a cut-off copy, so a retweet is analysed as its
//!   original: the text and `lang` of `retweeted_status` (v1.1) or of the `includes.tweets`
//!   entry named by `referenced_tweets[type=retweeted]` (v2).
//! - v2 posts longer than 280 characters carry the whole text in `note_tweet.text`.
//! - Mastodon statuses (Mastodon docs, "Status" entity) carry HTML in `content`; it is turned
//!   into plain text (tags dropped, `<br>` and paragraph breaks as newlines, entities decoded).
//!   A reblog is analysed as the reblogged status; `language` is the platform tag.
//! - Bluesky Jetstream commits (bluesky-social/jetstream README; lexicon `app.bsky.feed.post`:
//!   `text`, `langs`, `createdAt`): the post's id is its AT URI, the author its DID, the
//!   platform language the first of `langs`. A repost (`app.bsky.feed.repost`) carries only
//!   its subject's AT URI, not its text: it is a retweet of that URI with an empty text.

use std::borrow::Cow;

use chrono::{DateTime, Utc};
use serde::Deserialize;

/// Whether a post is an original (incl. replies and quotes) or a retweet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PostKind {
    /// An original post, reply or quote.
    Tweet,
    /// A retweet, analysed as its original.
    Retweet,
}

impl PostKind {
    /// `tweet` or `retweet`, as stored.
    pub fn as_str(self) -> &'static str {
        match self {
            PostKind::Tweet => "tweet",
            PostKind::Retweet => "retweet",
        }
    }
}

/// The fields of one post that analysis and storage use. Strings borrow from the record's
/// payload where the JSON has no escapes.
#[derive(Debug, Clone, PartialEq)]
pub struct Post<'a> {
    /// The post's id (decimal string).
    pub id: Cow<'a, str>,
    /// Tweet or retweet.
    pub kind: PostKind,
    /// For a retweet: the original post's id.
    pub retweet_of: Option<Cow<'a, str>>,
    /// The full text to analyse (the original's, for a retweet).
    pub text: Cow<'a, str>,
    /// The platform's own language tag (BCP 47, `und` when it could not tell), if sent.
    pub lang: Option<Cow<'a, str>>,
    /// When the post was created, if the payload says and it parses.
    pub created_at: Option<DateTime<Utc>>,
    /// The author's handle (v1.1 `user.screen_name`, v2 `username` from `includes.users`), or
    /// the v2 `author_id` when the user is not included.
    pub author: Option<Cow<'a, str>>,
}

/// Why a record's payload is not a post.
#[derive(Debug, thiserror::Error)]
pub enum PostError {
    /// Not JSON of a status shape at all.
    #[error("not a post: {0}")]
    Json(#[from] serde_json::Error),
    /// A status without `id_str`/`id` (v1.1) or `data.id` (v2).
    #[error("post has no id")]
    NoId,
    /// A status with no text field.
    #[error("post {0} has no text")]
    NoText(String),
}

/// Reads a post from a raw v1.1 status, v2 stream message, Mastodon status or Bluesky Jetstream
/// commit of a post or repost.
///
/// # Errors
/// [`PostError`] when the payload is not JSON, has no id, or has no text.
pub fn parse_post(payload: &[u8]) -> Result<Post<'_>, PostError> {
    let mut message: V1Status<'_> = serde_json::from_slice(payload)?;
    match message.data.take() {
        Some(data) => v2_post(data, message.includes.take()),
        None if message.content.is_some() => mastodon_post(message),
        None => match message.commit.take() {
            Some(commit) => bluesky_post(message.did.take().ok_or(PostError::NoId)?, commit),
            None => v1_post(message),
        },
    }
}

/// A v1.1 status; at the top level of a v2 message only `data` and `includes` are set.
/// (One struct rather than `#[serde(flatten)]`, which would buffer the whole document.)
#[derive(Deserialize, Default)]
struct V1Status<'a> {
    #[serde(borrow, default)]
    data: Option<V2Tweet<'a>>,
    #[serde(borrow, default)]
    includes: Option<V2Includes<'a>>,
    #[serde(borrow, default)]
    id_str: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    id: Option<AnyId<'a>>,
    #[serde(borrow, default)]
    text: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    full_text: Option<Cow<'a, str>>,
    #[serde(default)]
    truncated: Option<bool>,
    #[serde(borrow, default)]
    extended_tweet: Option<V1Extended<'a>>,
    #[serde(borrow, default)]
    lang: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    created_at: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    user: Option<V1User<'a>>,
    #[serde(borrow, default)]
    retweeted_status: Option<Box<V1Status<'a>>>,
    // Mastodon
    #[serde(borrow, default)]
    content: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    language: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    account: Option<MastodonAccount<'a>>,
    #[serde(borrow, default)]
    reblog: Option<Box<V1Status<'a>>>,
    // Bluesky Jetstream
    #[serde(borrow, default)]
    did: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    commit: Option<JetstreamCommit<'a>>,
}

#[derive(Deserialize)]
struct JetstreamCommit<'a> {
    #[serde(borrow)]
    collection: Cow<'a, str>,
    #[serde(borrow)]
    rkey: Cow<'a, str>,
    #[serde(borrow, default)]
    record: Option<BlueskyRecord<'a>>,
}

/// The fields of an `app.bsky.feed.post` or `app.bsky.feed.repost` record that are read.
#[derive(Deserialize)]
struct BlueskyRecord<'a> {
    #[serde(borrow, default)]
    text: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    langs: Vec<Cow<'a, str>>,
    #[serde(borrow, default, rename = "createdAt")]
    created_at: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    subject: Option<BlueskySubject<'a>>,
}

#[derive(Deserialize)]
struct BlueskySubject<'a> {
    #[serde(borrow)]
    uri: Cow<'a, str>,
}

fn bluesky_post<'a>(did: Cow<'a, str>, commit: JetstreamCommit<'a>) -> Result<Post<'a>, PostError> {
    let id = crate::route::jetstream::at_uri(&did, &commit.collection, &commit.rkey);
    let record = commit.record.ok_or_else(|| PostError::NoText(id.clone()))?;
    let created_at = record
        .created_at
        .as_deref()
        .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
        .map(|t| t.with_timezone(&Utc));
    let (kind, retweet_of, text) =
        if commit.collection == crate::route::jetstream::REPOST_COLLECTION {
            let subject = record.subject.map(|s| s.uri);
            (PostKind::Retweet, subject, Cow::Borrowed(""))
        } else {
            let text = record.text.ok_or_else(|| PostError::NoText(id.clone()))?;
            (PostKind::Tweet, None, text)
        };
    Ok(Post {
        id: Cow::Owned(id),
        kind,
        retweet_of,
        text,
        lang: record.langs.into_iter().next(),
        created_at,
        author: Some(did),
    })
}

#[derive(Deserialize)]
struct MastodonAccount<'a> {
    #[serde(borrow, default)]
    acct: Option<Cow<'a, str>>,
}

fn mastodon_post(mut status: V1Status<'_>) -> Result<Post<'_>, PostError> {
    let id = status.id().ok_or(PostError::NoId)?;
    let author = status.account.take().and_then(|a| a.acct);
    let created_at = status
        .created_at
        .as_deref()
        .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
        .map(|t| t.with_timezone(&Utc));
    let (kind, retweet_of, html, lang) = match status.reblog.take() {
        Some(mut original) => (
            PostKind::Retweet,
            original.id(),
            original.content.take().or(status.content.take()),
            original.language.take().or(status.language.take()),
        ),
        None => (
            PostKind::Tweet,
            None,
            status.content.take(),
            status.language.take(),
        ),
    };
    let html = html.ok_or_else(|| PostError::NoText(id.to_string()))?;
    Ok(Post {
        id,
        kind,
        retweet_of,
        text: Cow::Owned(html_to_text(&html)),
        lang,
        created_at,
        author,
    })
}

/// Plain text of Mastodon's sanitised status HTML: `<br>` and paragraph ends become newlines,
/// other tags go, entities are decoded.
pub fn html_to_text(html: &str) -> String {
    let mut text = String::with_capacity(html.len());
    let mut rest = html;
    while let Some(open) = rest.find('<') {
        text.push_str(&rest[..open]);
        let Some(close) = rest[open..].find('>') else {
            // A stray '<' without a tag end is text.
            text.push_str(&rest[open..]);
            rest = "";
            break;
        };
        let tag = rest[open + 1..open + close].trim().to_ascii_lowercase();
        if tag.starts_with("br") || (tag == "/p" && !rest[open + close + 1..].is_empty()) {
            text.push('\n');
        }
        rest = &rest[open + close + 1..];
    }
    text.push_str(rest);
    html_escape::decode_html_entities(&text).into_owned()
}

#[derive(Deserialize)]
struct V1Extended<'a> {
    #[serde(borrow, default)]
    full_text: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
struct V1User<'a> {
    #[serde(borrow, default)]
    screen_name: Option<Cow<'a, str>>,
}

/// `id` is a number in v1.1 and a string in Mastodon.
#[derive(Deserialize)]
#[serde(untagged)]
enum AnyId<'a> {
    Number(serde_json::Number),
    #[serde(borrow)]
    Text(Cow<'a, str>),
}

impl<'a> V1Status<'a> {
    fn id(&mut self) -> Option<Cow<'a, str>> {
        self.id_str.take().or_else(|| {
            self.id.take().map(|id| match id {
                AnyId::Number(n) => Cow::Owned(n.to_string()),
                AnyId::Text(text) => text,
            })
        })
    }

    fn full_text(&mut self) -> Option<Cow<'a, str>> {
        let extended = self.extended_tweet.take().and_then(|e| e.full_text);
        match (self.truncated.unwrap_or(false), extended) {
            (true, Some(full)) => Some(full),
            _ => self.full_text.take().or_else(|| self.text.take()),
        }
    }
}

fn v1_post(mut status: V1Status<'_>) -> Result<Post<'_>, PostError> {
    let id = status.id().ok_or(PostError::NoId)?;
    let author = status.user.take().and_then(|u| u.screen_name);
    let created_at = status.created_at.as_deref().and_then(parse_v1_time);
    let (kind, retweet_of, text, lang) = match status.retweeted_status.take() {
        Some(mut original) => {
            let original_id = original.id();
            let text = original.full_text().or_else(|| status.full_text());
            (
                PostKind::Retweet,
                original_id,
                text,
                original.lang.take().or(status.lang.take()),
            )
        }
        None => (
            PostKind::Tweet,
            None,
            status.full_text(),
            status.lang.take(),
        ),
    };
    let text = text.ok_or_else(|| PostError::NoText(id.to_string()))?;
    Ok(Post {
        id,
        kind,
        retweet_of,
        text,
        lang,
        created_at,
        author,
    })
}

#[derive(Deserialize)]
struct V2Tweet<'a> {
    #[serde(borrow, default)]
    id: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    text: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    note_tweet: Option<V2NoteTweet<'a>>,
    #[serde(borrow, default)]
    lang: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    created_at: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    author_id: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    referenced_tweets: Vec<V2Reference<'a>>,
}

#[derive(Deserialize)]
struct V2NoteTweet<'a> {
    #[serde(borrow, default)]
    text: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
struct V2Reference<'a> {
    #[serde(borrow, rename = "type")]
    kind: Cow<'a, str>,
    #[serde(borrow)]
    id: Cow<'a, str>,
}

#[derive(Deserialize, Default)]
struct V2Includes<'a> {
    #[serde(borrow, default)]
    tweets: Vec<V2Tweet<'a>>,
    #[serde(borrow, default)]
    users: Vec<V2User<'a>>,
}

#[derive(Deserialize)]
struct V2User<'a> {
    #[serde(borrow)]
    id: Cow<'a, str>,
    #[serde(borrow, default)]
    username: Option<Cow<'a, str>>,
}

impl<'a> V2Tweet<'a> {
    fn full_text(&mut self) -> Option<Cow<'a, str>> {
        self.note_tweet
            .take()
            .and_then(|note| note.text)
            .or_else(|| self.text.take())
    }
}

fn v2_post<'a>(
    mut data: V2Tweet<'a>,
    includes: Option<V2Includes<'a>>,
) -> Result<Post<'a>, PostError> {
    let id = data.id.take().ok_or(PostError::NoId)?;
    let mut includes = includes.unwrap_or_default();
    let author = data.author_id.take().map(|author_id| {
        includes
            .users
            .iter_mut()
            .find(|user| user.id == author_id)
            .and_then(|user| user.username.take())
            .unwrap_or(author_id)
    });
    let created_at = data
        .created_at
        .as_deref()
        .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
        .map(|t| t.with_timezone(&Utc));
    let retweet_of = data
        .referenced_tweets
        .iter()
        .find(|r| r.kind == "retweeted")
        .map(|r| r.id.clone());
    let (kind, text, lang) = match &retweet_of {
        Some(original_id) => {
            let original = includes
                .tweets
                .iter_mut()
                .find(|t| t.id.as_ref() == Some(original_id));
            let (text, lang) = match original {
                Some(original) => (original.full_text(), original.lang.take()),
                None => (None, None),
            };
            (
                PostKind::Retweet,
                text.or_else(|| data.full_text()),
                lang.or(data.lang.take()),
            )
        }
        None => (PostKind::Tweet, data.full_text(), data.lang.take()),
    };
    let text = text.ok_or_else(|| PostError::NoText(id.to_string()))?;
    Ok(Post {
        id,
        kind,
        retweet_of,
        text,
        lang,
        created_at,
        author,
    })
}

/// Parses v1.1's `created_at`, e.g. `Sun May 05 18:04:07 +0000 2013`.
fn parse_v1_time(s: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_str(s, "%a %b %d %H:%M:%S %z %Y")
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v1_tweet_uses_extended_text_when_truncated() {
        let raw = br#"{"id":1,"id_str":"1","text":"short \u2026","truncated":true,"extended_tweet":{"full_text":"the whole long text"},"lang":"en","created_at":"Sun May 05 18:04:07 +0000 2013","user":{"screen_name":"someone"}}"#;
        let post = parse_post(raw).unwrap();
        assert_eq!(post.id, "1");
        assert_eq!(post.kind, PostKind::Tweet);
        assert_eq!(post.text, "the whole long text");
        assert_eq!(post.lang.as_deref(), Some("en"));
        assert_eq!(post.author.as_deref(), Some("someone"));
        assert_eq!(
            post.created_at.unwrap().to_rfc3339(),
            "2013-05-05T18:04:07+00:00"
        );
    }

    #[test]
    fn v1_retweet_is_analysed_as_its_original() {
        let raw = br#"{"id_str":"9","text":"RT @a: hola que tal","retweeted_status":{"id_str":"5","text":"hola que tal amigos","lang":"es"}}"#;
        let post = parse_post(raw).unwrap();
        assert_eq!(post.kind, PostKind::Retweet);
        assert_eq!(post.retweet_of.as_deref(), Some("5"));
        assert_eq!(post.text, "hola que tal amigos");
        assert_eq!(post.lang.as_deref(), Some("es"));
    }

    #[test]
    fn v2_post_and_retweet() {
        let raw = br#"{"data":{"id":"10","text":"hello","lang":"en","author_id":"7","created_at":"2021-04-01T12:00:00.000Z"},"includes":{"users":[{"id":"7","username":"bob"}]}}"#;
        let post = parse_post(raw).unwrap();
        assert_eq!(
            (post.id.as_ref(), post.text.as_ref(), post.author.as_deref()),
            ("10", "hello", Some("bob"))
        );
        assert!(post.created_at.is_some());
        let raw = br#"{"data":{"id":"11","text":"RT @x: cut","referenced_tweets":[{"type":"retweeted","id":"3"}]},"includes":{"tweets":[{"id":"3","text":"short","note_tweet":{"text":"the full original"},"lang":"en"}]}}"#;
        let post = parse_post(raw).unwrap();
        assert_eq!(post.kind, PostKind::Retweet);
        assert_eq!(post.text, "the full original");
        assert_eq!(post.retweet_of.as_deref(), Some("3"));
    }

    #[test]
    fn mastodon_statuses_lose_their_html() {
        let raw = br#"{"id":"109","created_at":"2022-11-21T13:10:48.151Z","language":"en","content":"<p>Great game &amp; <a href=\"https://x.y/tags/nba\" class=\"mention hashtag\">#<span>nba</span></a></p><p>second<br />line</p>","account":{"acct":"someone@example.social"},"reblog":null}"#;
        let post = parse_post(raw).unwrap();
        assert_eq!(post.text, "Great game & #nba\nsecond\nline");
        assert_eq!(
            (
                post.id.as_ref(),
                post.lang.as_deref(),
                post.author.as_deref()
            ),
            ("109", Some("en"), Some("someone@example.social"))
        );
        assert_eq!(post.kind, PostKind::Tweet);
        let reblog = br#"{"id":"110","content":"","language":null,"account":{"acct":"b"},"reblog":{"id":"109","content":"<p>orig</p>","language":"de","account":{"acct":"a"}}}"#;
        let post = parse_post(reblog).unwrap();
        assert_eq!(
            (
                post.kind,
                post.retweet_of.as_deref(),
                post.text.as_ref(),
                post.lang.as_deref()
            ),
            (PostKind::Retweet, Some("109"), "orig", Some("de"))
        );
    }

    #[test]
    fn non_posts_are_errors() {
        assert!(matches!(
            parse_post(br#"{"text":"no id"}"#),
            Err(PostError::NoId)
        ));
        assert!(matches!(
            parse_post(br#"{"id_str":"1"}"#),
            Err(PostError::NoText(_))
        ));
        assert!(matches!(parse_post(b"{not json"), Err(PostError::Json(_))));
    }

    #[test]
    fn bluesky_posts_and_reposts_from_jetstream() {
        let post = parse_post(
            br#"{"did":"did:plc:abc","time_us":1,"kind":"commit","commit":{"rev":"r","operation":"create","collection":"app.bsky.feed.post","rkey":"3kx","record":{"$type":"app.bsky.feed.post","text":"hola \u00e1","langs":["es","en"],"createdAt":"2026-07-04T14:38:06.240Z"},"cid":"bafy"}}"#,
        )
        .unwrap();
        assert_eq!(post.id, "at://did:plc:abc/app.bsky.feed.post/3kx");
        assert_eq!((post.kind, post.text.as_ref()), (PostKind::Tweet, "hola á"));
        assert_eq!(post.lang.as_deref(), Some("es"));
        assert_eq!(post.author.as_deref(), Some("did:plc:abc"));
        assert_eq!(
            post.created_at.map(|t| t.to_rfc3339()),
            Some("2026-07-04T14:38:06.240+00:00".to_owned())
        );
        let repost = parse_post(
            br#"{"did":"did:plc:abc","time_us":1,"kind":"commit","commit":{"operation":"create","collection":"app.bsky.feed.repost","rkey":"3ky","record":{"$type":"app.bsky.feed.repost","createdAt":"2026-07-04T14:38:06Z","subject":{"cid":"c","uri":"at://did:plc:xyz/app.bsky.feed.post/3kz"}}}}"#,
        )
        .unwrap();
        assert_eq!(repost.kind, PostKind::Retweet);
        assert_eq!(
            repost.retweet_of.as_deref(),
            Some("at://did:plc:xyz/app.bsky.feed.post/3kz")
        );
        assert_eq!((repost.text.as_ref(), repost.lang), ("", None));
        // A delete has no record: not a post.
        assert!(parse_post(
            br#"{"did":"did:plc:abc","time_us":1,"kind":"commit","commit":{"operation":"delete","collection":"app.bsky.feed.post","rkey":"3kx"}}"#
        )
        .is_err());
    }
}
