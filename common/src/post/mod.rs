//! The post model the consumers work on: the fields analysis and storage need, read from a raw
//! X v1.1 status or v2 filtered-stream message ([`x`]), a Mastodon status ([`mastodon`]) or a
//! Bluesky Jetstream commit ([`bluesky`]) without building the whole document.
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
//! - Bluesky Jetstream commits (bluesky-social/jetstream README; lexicon `app.bsky.feed.post`,
//!   read by [`crate::bluesky::PostRecord`]): the post's id is its AT URI, the author its DID,
//!   the platform language the first of `langs`. A repost (`app.bsky.feed.repost`) carries
//!   only its subject's AT URI, not its text: it is a retweet of that URI with an empty text,
//!   which the analysis consumer fills from the subject's row when it has one.
//!
//! Structure (hashtags, mentions, reply, quote, embed) is read where the payload has it
//! cheaply; see the fields of [`Post`] for each platform's source.

mod bluesky;
mod mastodon;
mod x;

use std::borrow::Cow;

use chrono::{DateTime, Utc};
use serde::Deserialize;

pub use self::mastodon::html_to_text;

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
    /// The post's id: a decimal string (X, Mastodon) or an AT URI (Bluesky).
    pub id: Cow<'a, str>,
    /// Tweet or retweet.
    pub kind: PostKind,
    /// For a retweet: the original post's id (a Bluesky repost: the subject's AT URI).
    pub retweet_of: Option<Cow<'a, str>>,
    /// The full text to analyse (the original's, for a retweet; empty for a Bluesky repost,
    /// whose record does not carry its subject's text).
    pub text: Cow<'a, str>,
    /// The platform's own language tag (BCP 47, `und` when it could not tell), if sent.
    pub lang: Option<Cow<'a, str>>,
    /// When the post was created, if the payload says and it parses.
    pub created_at: Option<DateTime<Utc>>,
    /// The author's handle (v1.1 `user.screen_name`, v2 `username` from `includes.users`), or
    /// the v2 `author_id` when the user is not included; a Bluesky author's DID.
    pub author: Option<Cow<'a, str>>,
    /// Hashtags without `#`, in the payload's order, duplicates kept, of the analysed text's
    /// post (a retweet's original): Bluesky tag facets then the record's `tags` (never parsed
    /// from the text); v1.1 `entities.hashtags[].text` (`extended_tweet.entities` when
    /// truncated); v2 `entities.hashtags[].tag`; Mastodon `tags[].name`.
    pub hashtags: Vec<Cow<'a, str>>,
    /// Mentioned accounts: Bluesky mention facets' DIDs. Not read for X or Mastodon.
    pub mentions: Vec<Cow<'a, str>>,
    /// The post this one replies to: Bluesky `reply.parent.uri`; v1.1
    /// `in_reply_to_status_id_str`; v2 `referenced_tweets[type=replied_to].id`; Mastodon
    /// `in_reply_to_id`. `None` for retweets.
    pub reply_to: Option<Cow<'a, str>>,
    /// The post this one quotes: Bluesky `app.bsky.embed.record` (or `recordWithMedia`)
    /// record URI; v1.1 `quoted_status_id_str`; v2 `referenced_tweets[type=quoted].id`.
    /// `None` for retweets.
    pub quote_of: Option<Cow<'a, str>>,
    /// A Bluesky post's embed kind ([`crate::bluesky::Embed::kind`]: `images`, `video`,
    /// `external`, `record`, `recordWithMedia`, `other`). Not read for X or Mastodon.
    pub embed: Option<&'static str>,
}

impl<'a> Post<'a> {
    /// A post with `id`, `kind`, `text` and nothing else, for the parsers to fill.
    fn new(id: Cow<'a, str>, kind: PostKind, text: Cow<'a, str>) -> Self {
        Post {
            id,
            kind,
            retweet_of: None,
            text,
            lang: None,
            created_at: None,
            author: None,
            hashtags: Vec::new(),
            mentions: Vec::new(),
            reply_to: None,
            quote_of: None,
            embed: None,
        }
    }
}

/// Why a record's payload is not a post.
#[derive(Debug, thiserror::Error)]
pub enum PostError {
    /// Not JSON of a status shape at all.
    #[error("not a post: {0}")]
    Json(#[from] serde_json::Error),
    /// A status without `id_str`/`id` (v1.1) or `data.id` (v2), or a Jetstream commit without
    /// `did`.
    #[error("post has no id")]
    NoId,
    /// A status with no text field, or a Jetstream commit without a record (a delete).
    #[error("post {0} has no text")]
    NoText(String),
    /// A Jetstream commit whose record does not fit its lexicon.
    #[error("post {id}: {source}")]
    Record {
        /// The record's AT URI.
        id: String,
        /// What was wrong.
        #[source]
        source: crate::bluesky::RecordError,
    },
}

/// Reads a post from a raw v1.1 status, v2 stream message, Mastodon status or Bluesky Jetstream
/// commit of a post or repost.
///
/// # Errors
/// [`PostError`] when the payload is not JSON, has no id, or has no text.
pub fn parse_post(payload: &[u8]) -> Result<Post<'_>, PostError> {
    let mut message: V1Status<'_> = serde_json::from_slice(payload)?;
    match message.data.take() {
        Some(data) => x::v2_post(data, message.includes.take()),
        None if message.content.is_some() => mastodon::mastodon_post(message),
        None => match message.commit.take() {
            Some(commit) => {
                bluesky::bluesky_post(message.did.take().ok_or(PostError::NoId)?, commit)
            }
            None => x::v1_post(message),
        },
    }
}

/// A v1.1 status; at the top level of a v2 message only `data` and `includes` are set, of a
/// Mastodon status `content` and its fields, of a Jetstream event `did` and `commit`.
/// (One struct rather than `#[serde(flatten)]`, which would buffer the whole document.)
#[derive(Deserialize, Default)]
struct V1Status<'a> {
    #[serde(borrow, default)]
    data: Option<x::V2Tweet<'a>>,
    #[serde(borrow, default)]
    includes: Option<x::V2Includes<'a>>,
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
    extended_tweet: Option<x::V1Extended<'a>>,
    #[serde(borrow, default)]
    entities: Option<x::V1Entities<'a>>,
    #[serde(borrow, default)]
    in_reply_to_status_id_str: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    quoted_status_id_str: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    lang: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    created_at: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    user: Option<x::V1User<'a>>,
    #[serde(borrow, default)]
    retweeted_status: Option<Box<V1Status<'a>>>,
    // Mastodon
    #[serde(borrow, default)]
    content: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    language: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    account: Option<mastodon::MastodonAccount<'a>>,
    #[serde(borrow, default)]
    reblog: Option<Box<V1Status<'a>>>,
    #[serde(borrow, default)]
    tags: Option<Vec<mastodon::MastodonTag<'a>>>,
    #[serde(borrow, default)]
    in_reply_to_id: Option<Cow<'a, str>>,
    // Bluesky Jetstream
    #[serde(borrow, default)]
    did: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    commit: Option<crate::bluesky::Commit<'a>>,
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
}

/// An RFC 3339 time (v2, Mastodon, Bluesky `createdAt`) in UTC, if it parses.
fn parse_rfc3339(s: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
