//! Bluesky posts and reposts from Jetstream commits, read with the typed records of
//! [`crate::bluesky`] (lexicons `app.bsky.feed.post` and `app.bsky.feed.repost`).

use std::borrow::Cow;

use crate::bluesky::{Commit, PostRecord, RepostRecord, REPOST_COLLECTION};

use super::{parse_rfc3339, Post, PostError, PostKind};

/// A post (or, for [`REPOST_COLLECTION`], a repost) from `did`'s `commit`. The id is the
/// record's AT URI, the author the DID, `lang` the first of `langs`; a repost is a retweet of
/// its subject's AT URI with an empty text and no language.
pub(super) fn bluesky_post<'a>(
    did: Cow<'a, str>,
    commit: Commit<'a>,
) -> Result<Post<'a>, PostError> {
    let id = commit.uri(&did);
    let Some(raw) = commit.record else {
        return Err(PostError::NoText(id));
    };
    if commit.collection == REPOST_COLLECTION {
        let record = match RepostRecord::from_raw(raw) {
            Ok(record) => record,
            Err(source) => return Err(PostError::Record { id, source }),
        };
        let mut post = Post::new(Cow::Owned(id), PostKind::Retweet, Cow::Borrowed(""));
        post.retweet_of = Some(record.subject.uri);
        post.created_at = record.created_at.as_deref().and_then(parse_rfc3339);
        post.author = Some(did);
        return Ok(post);
    }
    let record = match PostRecord::from_raw(raw) {
        Ok(record) => record,
        Err(source) => return Err(PostError::Record { id, source }),
    };
    // Copied out before the record is taken apart: tags, DIDs and URIs are short.
    let owned = |s: &str| Cow::Owned(s.to_owned());
    let hashtags = record.hashtags().map(owned).collect();
    let mentions = record.mentions().map(owned).collect();
    let reply_to = record.reply_parent_uri().map(owned);
    let quote_of = record.quoted_uri().map(owned);
    let embed = record.embed.as_ref().map(|embed| embed.kind());
    let PostRecord {
        text,
        langs,
        created_at,
        ..
    } = record;
    let mut post = Post::new(Cow::Owned(id), PostKind::Tweet, text);
    post.lang = langs.into_iter().next();
    post.created_at = created_at.as_deref().and_then(parse_rfc3339);
    post.author = Some(did);
    post.hashtags = hashtags;
    post.mentions = mentions;
    post.reply_to = reply_to;
    post.quote_of = quote_of;
    post.embed = embed;
    Ok(post)
}

#[cfg(test)]
mod tests {
    use super::super::parse_post;
    use super::*;

    #[test]
    fn bluesky_posts_and_reposts_from_jetstream() {
        let post = parse_post(
            br#"{"did":"did:plc:abc","time_us":1,"kind":"commit","commit":{"rev":"r","operation":"create","collection":"app.bsky.feed.post","rkey":"3kx","record":{"$type":"app.bsky.feed.post","text":"hola \u00e1 #Tag","langs":["es","en"],"createdAt":"2026-07-04T14:38:06.240Z","facets":[{"index":{"byteStart":8,"byteEnd":12},"features":[{"$type":"app.bsky.richtext.facet#tag","tag":"Tag"}]},{"index":{"byteStart":0,"byteEnd":4},"features":[{"$type":"app.bsky.richtext.facet#mention","did":"did:plc:m"}]}],"reply":{"root":{"uri":"at://did:plc:r/app.bsky.feed.post/1","cid":"c"},"parent":{"uri":"at://did:plc:p/app.bsky.feed.post/2","cid":"c"}},"embed":{"$type":"app.bsky.embed.record","record":{"uri":"at://did:plc:q/app.bsky.feed.post/3","cid":"c"}}},"cid":"bafy"}}"#,
        )
        .unwrap();
        assert_eq!(post.id, "at://did:plc:abc/app.bsky.feed.post/3kx");
        assert_eq!(
            (post.kind, post.text.as_ref()),
            (PostKind::Tweet, "hola á #Tag")
        );
        assert_eq!(post.lang.as_deref(), Some("es"));
        assert_eq!(post.author.as_deref(), Some("did:plc:abc"));
        assert_eq!(
            post.created_at.map(|t| t.to_rfc3339()),
            Some("2026-07-04T14:38:06.240+00:00".to_owned())
        );
        assert_eq!(
            (post.hashtags.as_slice(), post.mentions.as_slice()),
            (&["Tag".into()][..], &["did:plc:m".into()][..])
        );
        assert_eq!(
            post.reply_to.as_deref(),
            Some("at://did:plc:p/app.bsky.feed.post/2")
        );
        assert_eq!(
            post.quote_of.as_deref(),
            Some("at://did:plc:q/app.bsky.feed.post/3")
        );
        assert_eq!(post.embed, Some("record"));
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
        assert!(repost.hashtags.is_empty() && repost.embed.is_none());
    }

    #[test]
    fn deletes_and_bad_records_are_not_posts() {
        // A delete has no record.
        assert!(matches!(
            parse_post(
                br#"{"did":"did:plc:abc","time_us":1,"kind":"commit","commit":{"operation":"delete","collection":"app.bsky.feed.post","rkey":"3kx"}}"#
            ),
            Err(PostError::NoText(_))
        ));
        let error = parse_post(
            br#"{"did":"did:plc:abc","time_us":1,"kind":"commit","commit":{"operation":"create","collection":"app.bsky.feed.post","rkey":"3kx","record":{"langs":["en"]}}}"#,
        )
        .unwrap_err();
        assert!(matches!(error, PostError::Record { .. }));
        let message = error.to_string();
        assert!(
            message.contains("at://did:plc:abc/app.bsky.feed.post/3kx") && message.contains("text"),
            "{message}"
        );
    }
}
