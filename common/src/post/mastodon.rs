//! Mastodon statuses (Mastodon docs, "Status" entity): HTML `content` as plain text, a reblog
//! analysed as the reblogged status, `tags[].name` as hashtags, `in_reply_to_id` as the reply.

use std::borrow::Cow;

use serde::Deserialize;

use super::{parse_rfc3339, Post, PostError, PostKind, V1Status};

#[derive(Deserialize)]
pub(super) struct MastodonAccount<'a> {
    #[serde(borrow, default)]
    acct: Option<Cow<'a, str>>,
}

/// A `Status.tags[]` entry ("Tag" entity): `name` without `#`.
#[derive(Deserialize)]
pub(super) struct MastodonTag<'a> {
    #[serde(borrow)]
    name: Cow<'a, str>,
}

pub(super) fn mastodon_post(mut status: V1Status<'_>) -> Result<Post<'_>, PostError> {
    let id = status.id().ok_or(PostError::NoId)?;
    let author = status.account.take().and_then(|a| a.acct);
    let created_at = status.created_at.as_deref().and_then(parse_rfc3339);
    let (kind, retweet_of, html, lang, tags, reply_to) = match status.reblog.take() {
        Some(mut original) => (
            PostKind::Retweet,
            original.id(),
            original.content.take().or(status.content.take()),
            original.language.take().or(status.language.take()),
            original.tags.take(),
            None,
        ),
        None => (
            PostKind::Tweet,
            None,
            status.content.take(),
            status.language.take(),
            status.tags.take(),
            status.in_reply_to_id.take(),
        ),
    };
    let html = html.ok_or_else(|| PostError::NoText(id.to_string()))?;
    let mut post = Post::new(id, kind, Cow::Owned(html_to_text(&html)));
    post.retweet_of = retweet_of;
    post.lang = lang;
    post.created_at = created_at;
    post.author = author;
    post.hashtags = tags.into_iter().flatten().map(|tag| tag.name).collect();
    post.reply_to = reply_to;
    Ok(post)
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

#[cfg(test)]
mod tests {
    use super::super::parse_post;
    use super::*;

    #[test]
    fn mastodon_statuses_lose_their_html() {
        let raw = br#"{"id":"109","created_at":"2022-11-21T13:10:48.151Z","language":"en","content":"<p>Great game &amp; <a href=\"https://x.y/tags/nba\" class=\"mention hashtag\">#<span>nba</span></a></p><p>second<br />line</p>","account":{"acct":"someone@example.social"},"reblog":null,"in_reply_to_id":"100","tags":[{"name":"nba","url":"https://x.y/tags/nba"}]}"#;
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
        assert_eq!(
            (post.hashtags, post.reply_to.as_deref()),
            (vec![Cow::Borrowed("nba")], Some("100"))
        );
        let reblog = br#"{"id":"110","content":"","language":null,"account":{"acct":"b"},"reblog":{"id":"109","content":"<p>orig</p>","language":"de","account":{"acct":"a"},"tags":[{"name":"x"}]},"tags":[]}"#;
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
        assert_eq!(post.hashtags, ["x"]);
    }
}
