//! X posts: v1.1 statuses and v2 filtered-stream messages (X API v1.1 "Tweet object",
//! "Extended Tweets" and "Entities" documents; v2 "Tweet object" and "Fields").

use std::borrow::Cow;

use chrono::{DateTime, Utc};
use serde::Deserialize;

use super::{parse_rfc3339, Post, PostError, PostKind, V1Status};

#[derive(Deserialize)]
pub(super) struct V1Extended<'a> {
    #[serde(borrow, default)]
    full_text: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    entities: Option<V1Entities<'a>>,
}

/// v1.1 `entities` (and v2 `entities`): only the hashtags are read.
#[derive(Deserialize)]
pub(super) struct V1Entities<'a> {
    #[serde(borrow, default)]
    hashtags: Option<Vec<Hashtag<'a>>>,
}

/// A hashtag entity: `text` in v1.1, `tag` in v2, without `#`.
#[derive(Deserialize)]
struct Hashtag<'a> {
    #[serde(borrow, alias = "tag", default)]
    text: Cow<'a, str>,
}

impl<'a> V1Entities<'a> {
    fn hashtags(self) -> Vec<Cow<'a, str>> {
        self.hashtags
            .into_iter()
            .flatten()
            .map(|hashtag| hashtag.text)
            .filter(|text| !text.is_empty())
            .collect()
    }
}

#[derive(Deserialize)]
pub(super) struct V1User<'a> {
    #[serde(borrow, default)]
    screen_name: Option<Cow<'a, str>>,
}

impl<'a> V1Status<'a> {
    /// The whole text and its hashtags: of `extended_tweet` when truncated, else the status's.
    fn full_text(&mut self) -> (Option<Cow<'a, str>>, Vec<Cow<'a, str>>) {
        let extended = self.extended_tweet.take();
        let entities = self.entities.take();
        match (self.truncated.unwrap_or(false), extended) {
            (
                true,
                Some(V1Extended {
                    full_text: Some(full),
                    entities: extended_entities,
                }),
            ) => (
                Some(full),
                extended_entities
                    .or(entities)
                    .map(V1Entities::hashtags)
                    .unwrap_or_default(),
            ),
            _ => (
                self.full_text.take().or_else(|| self.text.take()),
                entities.map(V1Entities::hashtags).unwrap_or_default(),
            ),
        }
    }
}

pub(super) fn v1_post(mut status: V1Status<'_>) -> Result<Post<'_>, PostError> {
    let id = status.id().ok_or(PostError::NoId)?;
    let author = status.user.take().and_then(|u| u.screen_name);
    let created_at = status.created_at.as_deref().and_then(parse_v1_time);
    let (kind, retweet_of, (text, hashtags), lang, reply_to, quote_of) =
        match status.retweeted_status.take() {
            Some(mut original) => {
                let original_id = original.id();
                let (text, hashtags) = match original.full_text() {
                    (Some(text), hashtags) => (Some(text), hashtags),
                    (None, _) => status.full_text(),
                };
                (
                    PostKind::Retweet,
                    original_id,
                    (text, hashtags),
                    original.lang.take().or(status.lang.take()),
                    None,
                    None,
                )
            }
            None => (
                PostKind::Tweet,
                None,
                status.full_text(),
                status.lang.take(),
                status.in_reply_to_status_id_str.take(),
                status.quoted_status_id_str.take(),
            ),
        };
    let text = text.ok_or_else(|| PostError::NoText(id.to_string()))?;
    let mut post = Post::new(id, kind, text);
    post.retweet_of = retweet_of;
    post.lang = lang;
    post.created_at = created_at;
    post.author = author;
    post.hashtags = hashtags;
    post.reply_to = reply_to;
    post.quote_of = quote_of;
    Ok(post)
}

#[derive(Deserialize)]
pub(super) struct V2Tweet<'a> {
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
    #[serde(borrow, default)]
    entities: Option<V1Entities<'a>>,
}

#[derive(Deserialize)]
struct V2NoteTweet<'a> {
    #[serde(borrow, default)]
    text: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    entities: Option<V1Entities<'a>>,
}

#[derive(Deserialize)]
struct V2Reference<'a> {
    #[serde(borrow, rename = "type")]
    kind: Cow<'a, str>,
    #[serde(borrow)]
    id: Cow<'a, str>,
}

#[derive(Deserialize, Default)]
pub(super) struct V2Includes<'a> {
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
    /// The whole text and its hashtags: of `note_tweet` when it has a text, else the post's.
    fn full_text(&mut self) -> (Option<Cow<'a, str>>, Vec<Cow<'a, str>>) {
        let entities = self.entities.take();
        match self.note_tweet.take() {
            Some(V2NoteTweet {
                text: Some(text),
                entities: note_entities,
            }) => (
                Some(text),
                note_entities
                    .or(entities)
                    .map(V1Entities::hashtags)
                    .unwrap_or_default(),
            ),
            _ => (
                self.text.take(),
                entities.map(V1Entities::hashtags).unwrap_or_default(),
            ),
        }
    }

    fn reference(&self, kind: &str) -> Option<Cow<'a, str>> {
        self.referenced_tweets
            .iter()
            .find(|r| r.kind == kind)
            .map(|r| r.id.clone())
    }
}

pub(super) fn v2_post<'a>(
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
    let created_at = data.created_at.as_deref().and_then(parse_rfc3339);
    let retweet_of = data.reference("retweeted");
    let (kind, (text, hashtags), lang, reply_to, quote_of) = match &retweet_of {
        Some(original_id) => {
            let original = includes
                .tweets
                .iter_mut()
                .find(|t| t.id.as_ref() == Some(original_id));
            let (text, lang) = match original {
                Some(original) => (original.full_text(), original.lang.take()),
                None => ((None, Vec::new()), None),
            };
            let text = match text {
                (Some(text), hashtags) => (Some(text), hashtags),
                (None, _) => data.full_text(),
            };
            (
                PostKind::Retweet,
                text,
                lang.or(data.lang.take()),
                None,
                None,
            )
        }
        None => (
            PostKind::Tweet,
            data.full_text(),
            data.lang.take(),
            data.reference("replied_to"),
            data.reference("quoted"),
        ),
    };
    let text = text.ok_or_else(|| PostError::NoText(id.to_string()))?;
    let mut post = Post::new(id, kind, text);
    post.retweet_of = retweet_of;
    post.lang = lang;
    post.created_at = created_at;
    post.author = author;
    post.hashtags = hashtags;
    post.reply_to = reply_to;
    post.quote_of = quote_of;
    Ok(post)
}

/// Parses v1.1's `created_at`, e.g. `Sun May 05 18:04:07 +0000 2013`.
fn parse_v1_time(s: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_str(s, "%a %b %d %H:%M:%S %z %Y")
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

#[cfg(test)]
mod tests {
    use super::super::parse_post;
    use super::*;

    #[test]
    fn v1_tweet_uses_extended_text_when_truncated() {
        let raw = br#"{"id":1,"id_str":"1","text":"short \u2026","truncated":true,"entities":{"hashtags":[{"text":"cut","indices":[0,4]}]},"extended_tweet":{"full_text":"the whole long text #whole","entities":{"hashtags":[{"text":"whole","indices":[20,26]}],"urls":[]}},"lang":"en","created_at":"Sun May 05 18:04:07 +0000 2013","user":{"screen_name":"someone"},"in_reply_to_status_id_str":"7","quoted_status_id_str":null}"#;
        let post = parse_post(raw).unwrap();
        assert_eq!(post.id, "1");
        assert_eq!(post.kind, PostKind::Tweet);
        assert_eq!(post.text, "the whole long text #whole");
        assert_eq!(post.hashtags, ["whole"]);
        assert_eq!((post.reply_to.as_deref(), post.quote_of), (Some("7"), None));
        assert_eq!(post.lang.as_deref(), Some("en"));
        assert_eq!(post.author.as_deref(), Some("someone"));
        assert_eq!(
            post.created_at.unwrap().to_rfc3339(),
            "2013-05-05T18:04:07+00:00"
        );
    }

    #[test]
    fn v1_retweet_is_analysed_as_its_original() {
        let raw = br#"{"id_str":"9","text":"RT @a: hola que tal","entities":{"hashtags":[]},"retweeted_status":{"id_str":"5","text":"hola que tal amigos #hola","lang":"es","entities":{"hashtags":[{"text":"hola"}]},"quoted_status_id_str":"4"}}"#;
        let post = parse_post(raw).unwrap();
        assert_eq!(post.kind, PostKind::Retweet);
        assert_eq!(post.retweet_of.as_deref(), Some("5"));
        assert_eq!(post.text, "hola que tal amigos #hola");
        assert_eq!(post.lang.as_deref(), Some("es"));
        assert_eq!(
            (post.hashtags, post.quote_of),
            (vec![Cow::Borrowed("hola")], None)
        );
    }

    #[test]
    fn v2_post_and_retweet() {
        let raw = br#"{"data":{"id":"10","text":"hello #hi","lang":"en","author_id":"7","created_at":"2021-04-01T12:00:00.000Z","entities":{"hashtags":[{"start":6,"end":9,"tag":"hi"}]},"referenced_tweets":[{"type":"quoted","id":"8"},{"type":"replied_to","id":"6"}]},"includes":{"users":[{"id":"7","username":"bob"}]}}"#;
        let post = parse_post(raw).unwrap();
        assert_eq!(
            (post.id.as_ref(), post.text.as_ref(), post.author.as_deref()),
            ("10", "hello #hi", Some("bob"))
        );
        assert!(post.created_at.is_some());
        assert_eq!(post.hashtags, ["hi"]);
        assert_eq!(
            (post.reply_to.as_deref(), post.quote_of.as_deref()),
            (Some("6"), Some("8"))
        );
        let raw = br#"{"data":{"id":"11","text":"RT @x: cut","referenced_tweets":[{"type":"retweeted","id":"3"}]},"includes":{"tweets":[{"id":"3","text":"short","note_tweet":{"text":"the full original","entities":{"hashtags":[{"tag":"full"}]}},"lang":"en"}]}}"#;
        let post = parse_post(raw).unwrap();
        assert_eq!(post.kind, PostKind::Retweet);
        assert_eq!(post.text, "the full original");
        assert_eq!(post.retweet_of.as_deref(), Some("3"));
        assert_eq!(
            (post.hashtags, post.reply_to),
            (vec![Cow::Borrowed("full")], None)
        );
    }
}
