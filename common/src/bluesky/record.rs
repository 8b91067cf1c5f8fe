//! Typed `app.bsky.feed.post` and `app.bsky.feed.repost` records, with the rich-text facets
//! and embeds a post carries, read with serde and borrowing from the payload where the JSON
//! has no escapes.
//!
//! Sources (bluesky-social/atproto `lexicons/app/bsky/`, copies in
//! `shared/data/bluesky/docs/lexicons/`):
//! - `app.bsky.feed.post`: `text` and `createdAt` required; `langs` (BCP 47, at most 3),
//!   `facets`, `reply` (`root` and `parent`, each a `com.atproto.repo.strongRef`), `embed` (an
//!   open union), `tags` (extra hashtags, without `#`, at most 8).
//! - `app.bsky.richtext.facet`: `index` (a UTF-8 byte slice of `text`, `byteStart` inclusive,
//!   `byteEnd` exclusive) and `features`, an open union of `#mention` (`did`), `#link` (`uri`)
//!   and `#tag` (`tag`, without the leading `#`).
//! - `app.bsky.embed.images` (`images[].alt`), `app.bsky.embed.video` (`alt`),
//!   `app.bsky.embed.external` (`external.uri`, `title`, `description`),
//!   `app.bsky.embed.record` (`record`, a strongRef to the quoted record),
//!   `app.bsky.embed.recordWithMedia` (`record`, an `app.bsky.embed.record`, and `media`, one
//!   of images, video or external).
//! - `app.bsky.feed.repost`: `subject` (a strongRef to the reposted post), `createdAt`, and
//!   optionally `via` (the repost it was reposted through).
//!
//! Unknown fields are ignored; union members of an unknown `$type` (a later lexicon, another
//! application's embed) read as `Other` rather than failing the record.

use std::borrow::Cow;

use serde::Deserialize;
use serde_json::value::RawValue;

/// Why a record could not be read.
#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    /// Not JSON, or JSON that does not fit the collection's lexicon (a required field such as
    /// `text`, `createdAt` or `subject` missing, or a field of the wrong type).
    #[error("invalid {collection} record (does not match the lexicon): {source}")]
    Invalid {
        /// The collection NSID the record was read as.
        collection: &'static str,
        /// What serde found.
        #[source]
        source: serde_json::Error,
    },
}

/// A `com.atproto.repo.strongRef`: a record's AT URI and CID.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct StrongRef<'a> {
    /// The record's AT URI, `at://{did}/{collection}/{rkey}`.
    #[serde(borrow)]
    pub uri: Cow<'a, str>,
    /// The record version's CID.
    #[serde(borrow, default)]
    pub cid: Option<Cow<'a, str>>,
}

/// `app.bsky.feed.post#replyRef`: the thread a reply belongs to.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct ReplyRefs<'a> {
    /// The thread's first post.
    #[serde(borrow)]
    pub root: StrongRef<'a>,
    /// The post replied to.
    #[serde(borrow)]
    pub parent: StrongRef<'a>,
}

/// `app.bsky.richtext.facet#byteSlice`: UTF-8 byte offsets into the post's `text`, start
/// inclusive, end exclusive.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
pub struct ByteSlice {
    /// First byte.
    #[serde(rename = "byteStart", default)]
    pub byte_start: u64,
    /// One past the last byte.
    #[serde(rename = "byteEnd", default)]
    pub byte_end: u64,
}

/// `app.bsky.richtext.facet`: a span of the text with what it means.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Facet<'a> {
    /// The span (all zero when missing).
    #[serde(default)]
    pub index: ByteSlice,
    /// What the span is: usually exactly one feature.
    #[serde(borrow, default)]
    pub features: Vec<Feature<'a>>,
}

/// One member of a facet's `features` union (`app.bsky.richtext.facet`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(tag = "$type")]
pub enum Feature<'a> {
    /// `#mention`: an account, by DID.
    #[serde(rename = "app.bsky.richtext.facet#mention")]
    Mention {
        /// The mentioned account's DID.
        #[serde(borrow)]
        did: Cow<'a, str>,
    },
    /// `#link`: a URL.
    #[serde(rename = "app.bsky.richtext.facet#link")]
    Link {
        /// The full URL (the text may show it shortened).
        #[serde(borrow)]
        uri: Cow<'a, str>,
    },
    /// `#tag`: a hashtag.
    #[serde(rename = "app.bsky.richtext.facet#tag")]
    Tag {
        /// The tag without its leading `#` (the lexicon's rule; a "double hash tag" `##x` is
        /// `#x`).
        #[serde(borrow)]
        tag: Cow<'a, str>,
    },
    /// A feature of another `$type`.
    #[serde(other)]
    Other,
}

/// One image of an `app.bsky.embed.images` embed (the blob itself is not read).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Image<'a> {
    /// Alt text (may be empty).
    #[serde(borrow, default)]
    pub alt: Cow<'a, str>,
}

/// The card of an `app.bsky.embed.external` embed (the thumbnail blob is not read).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct External<'a> {
    /// The linked URL.
    #[serde(borrow)]
    pub uri: Cow<'a, str>,
    /// The card's title.
    #[serde(borrow, default)]
    pub title: Cow<'a, str>,
    /// The card's description.
    #[serde(borrow, default)]
    pub description: Cow<'a, str>,
}

/// The `record` of an `app.bsky.embed.recordWithMedia`: an `app.bsky.embed.record`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct QuotedRecord<'a> {
    /// The quoted record.
    #[serde(borrow)]
    pub record: StrongRef<'a>,
}

/// A post's `embed` union (`app.bsky.embed.*`), by `$type`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(tag = "$type")]
pub enum Embed<'a> {
    /// `app.bsky.embed.images`: up to 4 images.
    #[serde(rename = "app.bsky.embed.images", alias = "app.bsky.embed.images#main")]
    Images {
        /// The images, in order.
        #[serde(borrow, default)]
        images: Vec<Image<'a>>,
    },
    /// `app.bsky.embed.video`: one video.
    #[serde(rename = "app.bsky.embed.video", alias = "app.bsky.embed.video#main")]
    Video {
        /// Alt text, if given.
        #[serde(borrow, default)]
        alt: Option<Cow<'a, str>>,
    },
    /// `app.bsky.embed.external`: a link card.
    #[serde(
        rename = "app.bsky.embed.external",
        alias = "app.bsky.embed.external#main"
    )]
    External {
        /// The card.
        #[serde(borrow)]
        external: External<'a>,
    },
    /// `app.bsky.embed.record`: a quote of another record (usually a post).
    #[serde(rename = "app.bsky.embed.record", alias = "app.bsky.embed.record#main")]
    Record {
        /// The quoted record.
        #[serde(borrow)]
        record: StrongRef<'a>,
    },
    /// `app.bsky.embed.recordWithMedia`: a quote plus images, a video or a link card.
    #[serde(
        rename = "app.bsky.embed.recordWithMedia",
        alias = "app.bsky.embed.recordWithMedia#main"
    )]
    RecordWithMedia {
        /// The quote.
        #[serde(borrow)]
        record: QuotedRecord<'a>,
        /// The media: [`Embed::Images`], [`Embed::Video`] or [`Embed::External`].
        #[serde(borrow)]
        media: Box<Embed<'a>>,
    },
    /// An embed of another `$type`.
    #[serde(other)]
    Other,
}

impl Embed<'_> {
    /// `images`, `video`, `external`, `record`, `recordWithMedia` or `other`: the lexicon
    /// name's last part, as stored in the `embed` column.
    pub fn kind(&self) -> &'static str {
        match self {
            Embed::Images { .. } => "images",
            Embed::Video { .. } => "video",
            Embed::External { .. } => "external",
            Embed::Record { .. } => "record",
            Embed::RecordWithMedia { .. } => "recordWithMedia",
            Embed::Other => "other",
        }
    }

    /// The external card's URL: of this embed, or of a recordWithMedia's media.
    fn external_uri(&self) -> Option<&str> {
        match self {
            Embed::External { external } => Some(&external.uri),
            Embed::RecordWithMedia { media, .. } => media.external_uri(),
            _ => None,
        }
    }
}

/// An `app.bsky.feed.post` record.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct PostRecord<'a> {
    /// The post's text (may be empty, e.g. for an image-only post).
    #[serde(borrow)]
    pub text: Cow<'a, str>,
    /// The author's language tags (BCP 47), most relevant first; often one, may be empty.
    #[serde(borrow, default)]
    pub langs: Vec<Cow<'a, str>>,
    /// Rich-text annotations of `text`: mentions, links, hashtags.
    #[serde(borrow, default)]
    pub facets: Vec<Facet<'a>>,
    /// Set on a reply.
    #[serde(borrow, default)]
    pub reply: Option<ReplyRefs<'a>>,
    /// Images, a video, a link card or a quoted record.
    #[serde(borrow, default)]
    pub embed: Option<Embed<'a>>,
    /// Extra hashtags not in the text (without `#`).
    #[serde(borrow, default)]
    pub tags: Vec<Cow<'a, str>>,
    /// When the client says the post was made (RFC 3339; required by the lexicon, but kept
    /// optional here so that a post without it is still analysed).
    #[serde(borrow, default, rename = "createdAt")]
    pub created_at: Option<Cow<'a, str>>,
}

impl<'a> PostRecord<'a> {
    /// Reads a post record from its JSON (a Jetstream commit's `record`).
    ///
    /// # Errors
    /// [`RecordError::Invalid`] when it is not JSON or does not fit the lexicon (e.g. no
    /// `text`).
    pub fn from_raw(raw: &'a RawValue) -> Result<Self, RecordError> {
        Self::from_json(raw.get())
    }

    /// Reads a post record from JSON text.
    ///
    /// # Errors
    /// As [`PostRecord::from_raw`].
    pub fn from_json(json: &'a str) -> Result<Self, RecordError> {
        serde_json::from_str(json).map_err(|source| RecordError::Invalid {
            collection: super::POST_COLLECTION,
            source,
        })
    }
}

impl PostRecord<'_> {
    fn features(&self) -> impl Iterator<Item = &Feature<'_>> + '_ {
        self.facets.iter().flat_map(|facet| facet.features.iter())
    }

    /// The hashtags: each tag facet's `tag` (without `#`, in facet order), then the record's
    /// `tags`. Not read from the text: a `#word` without a facet is not a tag (the client
    /// decided). Duplicates are kept.
    pub fn hashtags(&self) -> impl Iterator<Item = &str> + '_ {
        self.features()
            .filter_map(|feature| match feature {
                Feature::Tag { tag } => Some(tag.as_ref()),
                _ => None,
            })
            .chain(self.tags.iter().map(|tag| tag.as_ref()))
    }

    /// The links: each link facet's `uri`, then the external card's URL (of the embed, or of a
    /// recordWithMedia's media). The card's URL usually repeats a facet's.
    pub fn links(&self) -> impl Iterator<Item = &str> + '_ {
        self.features()
            .filter_map(|feature| match feature {
                Feature::Link { uri } => Some(uri.as_ref()),
                _ => None,
            })
            .chain(self.embed.as_ref().and_then(Embed::external_uri))
    }

    /// The mentioned accounts: each mention facet's `did`.
    pub fn mentions(&self) -> impl Iterator<Item = &str> + '_ {
        self.features().filter_map(|feature| match feature {
            Feature::Mention { did } => Some(did.as_ref()),
            _ => None,
        })
    }

    /// Whether the post links out: a link facet or an external card.
    pub fn has_links(&self) -> bool {
        self.links().next().is_some()
    }

    /// Whether the post carries media: an images or video embed, or a recordWithMedia (whose
    /// media is images, a video or a link card).
    pub fn has_media(&self) -> bool {
        matches!(
            self.embed,
            Some(Embed::Images { .. } | Embed::Video { .. } | Embed::RecordWithMedia { .. })
        )
    }

    /// Whether the post is a reply.
    pub fn is_reply(&self) -> bool {
        self.reply.is_some()
    }

    /// The quoted record's AT URI: of an `app.bsky.embed.record`, or of a recordWithMedia's
    /// record.
    pub fn quoted_uri(&self) -> Option<&str> {
        match &self.embed {
            Some(Embed::Record { record }) => Some(&record.uri),
            Some(Embed::RecordWithMedia { record, .. }) => Some(&record.record.uri),
            _ => None,
        }
    }

    /// The AT URI of the post replied to.
    pub fn reply_parent_uri(&self) -> Option<&str> {
        self.reply.as_ref().map(|reply| reply.parent.uri.as_ref())
    }
}

/// An `app.bsky.feed.repost` record.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct RepostRecord<'a> {
    /// The reposted post.
    #[serde(borrow)]
    pub subject: StrongRef<'a>,
    /// The repost this one was made through, if the client says.
    #[serde(borrow, default)]
    pub via: Option<StrongRef<'a>>,
    /// When the repost was made (RFC 3339).
    #[serde(borrow, default, rename = "createdAt")]
    pub created_at: Option<Cow<'a, str>>,
}

impl<'a> RepostRecord<'a> {
    /// Reads a repost record from its JSON (a Jetstream commit's `record`).
    ///
    /// # Errors
    /// [`RecordError::Invalid`] when it is not JSON or has no `subject.uri`.
    pub fn from_raw(raw: &'a RawValue) -> Result<Self, RecordError> {
        serde_json::from_str(raw.get()).map_err(|source| RecordError::Invalid {
            collection: super::REPOST_COLLECTION,
            source,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Records from shared/data/bluesky/jetstream-v1/…corpus_expected_v1.jsonl (texts cut).
    const LINK_AND_CARD: &str = r#"{"$type":"app.bsky.feed.post","createdAt":"2026-07-04T14:38:02+00:00","embed":{"$type":"app.bsky.embed.external","external":{"description":"d","thumb":{"$type":"blob","ref":{"$link":"bafkrei"},"mimeType":"image/jpeg","size":42101},"title":"t","uri":"https://www.ufofeed.com/266486/x/"}},"facets":[{"features":[{"$type":"app.bsky.richtext.facet#link","uri":"https://www.ufofeed.com/266486/x/"}],"index":{"byteEnd":119,"byteStart":45}}],"langs":["en-US","en"],"text":"Has anyone properly debunked"}"#;
    const IMAGES_LINK_TAGS: &str = r#"{"$type":"app.bsky.feed.post","createdAt":"2026-07-04T14:38:06.071Z","embed":{"$type":"app.bsky.embed.images","images":[{"alt":"","aspectRatio":{"height":889,"width":889},"image":{"$type":"blob","ref":{"$link":"bafkrei"},"mimeType":"image/jpeg","size":187484}}]},"facets":[{"features":[{"$type":"app.bsky.richtext.facet#link","uri":"https://www.tumblr.com/x"}],"index":{"byteEnd":105,"byteStart":75}},{"features":[{"$type":"app.bsky.richtext.facet#tag","tag":"talesatwonderworld"}],"index":{"byteEnd":126,"byteStart":107}},{"features":[{"$type":"app.bsky.richtext.facet#tag","tag":"balanwonderworldoc"}],"index":{"byteEnd":146,"byteStart":127}}],"langs":["es","en"],"text":"\"Behind them, Timmi"}"#;
    const REPLY: &str = r#"{"$type":"app.bsky.feed.post","createdAt":"2026-07-04T14:38:06.692Z","langs":["tr"],"reply":{"parent":{"cid":"bafyreighm","uri":"at://did:plc:u4lmvw4wwzaql3z5kcf3r7h4/app.bsky.feed.post/3mptbyou7ls2i"},"root":{"cid":"bafyreicvp","uri":"at://did:plc:u4lmvw4wwzaql3z5kcf3r7h4/app.bsky.feed.post/3mptbyospqk2i"}},"text":"even know the country"}"#;
    // From shared/data/bluesky/api-posts (idunno.Bluesky quote request; MarshalX recordWithMedia).
    const QUOTE: &str = r#"{"$type":"app.bsky.feed.post","text":"quoting","createdAt":"2024-05-01T10:00:00Z","embed":{"$type":"app.bsky.embed.record","record":{"uri":"at://did:plc:q/app.bsky.feed.post/3q","cid":"bafyq"}},"facets":[{"index":{"byteStart":0,"byteEnd":4},"features":[{"$type":"app.bsky.richtext.facet#mention","did":"did:plc:m"}]}],"lol":"kek"}"#;
    const QUOTE_WITH_MEDIA: &str = r#"{"text":"","createdAt":"2024-05-01T10:00:00Z","embed":{"$type":"app.bsky.embed.recordWithMedia","record":{"$type":"app.bsky.embed.record","record":{"uri":"at://did:plc:q/app.bsky.feed.post/3r","cid":"c"}},"media":{"$type":"app.bsky.embed.external","external":{"uri":"https://e.example/","title":"","description":""}}},"tags":["extra"]}"#;

    #[test]
    fn links_and_an_external_card() {
        let post = PostRecord::from_json(LINK_AND_CARD).unwrap();
        assert_eq!(post.langs, ["en-US", "en"]);
        let link = "https://www.ufofeed.com/266486/x/";
        assert_eq!(post.links().collect::<Vec<_>>(), [link, link]);
        assert!(post.has_links() && !post.has_media() && !post.is_reply());
        assert_eq!(post.embed.as_ref().map(Embed::kind), Some("external"));
        assert_eq!(post.hashtags().count(), 0);
        assert_eq!(
            post.facets[0].index,
            ByteSlice {
                byte_start: 45,
                byte_end: 119
            }
        );
        // Borrowed from the payload: the text has no escapes.
        assert!(matches!(post.text, Cow::Borrowed(_)));
    }

    #[test]
    fn hashtags_come_from_tag_facets_and_images_are_media() {
        let post = PostRecord::from_json(IMAGES_LINK_TAGS).unwrap();
        assert_eq!(
            post.hashtags().collect::<Vec<_>>(),
            ["talesatwonderworld", "balanwonderworldoc"]
        );
        assert_eq!(post.links().count(), 1);
        assert!(post.has_media() && post.has_links());
        assert_eq!(post.text, "\"Behind them, Timmi");
        assert!(matches!(post.text, Cow::Owned(_)), "escaped text is owned");
        assert_eq!(post.quoted_uri(), None);
    }

    #[test]
    fn replies_name_their_parent() {
        let post = PostRecord::from_json(REPLY).unwrap();
        assert!(post.is_reply());
        assert_eq!(
            post.reply_parent_uri(),
            Some("at://did:plc:u4lmvw4wwzaql3z5kcf3r7h4/app.bsky.feed.post/3mptbyou7ls2i")
        );
        assert_eq!(
            post.reply.unwrap().root.uri,
            "at://did:plc:u4lmvw4wwzaql3z5kcf3r7h4/app.bsky.feed.post/3mptbyospqk2i"
        );
    }

    #[test]
    fn quotes_with_and_without_media() {
        let quote = PostRecord::from_json(QUOTE).unwrap();
        assert_eq!(
            quote.quoted_uri(),
            Some("at://did:plc:q/app.bsky.feed.post/3q")
        );
        assert_eq!(quote.mentions().collect::<Vec<_>>(), ["did:plc:m"]);
        assert!(!quote.has_media() && !quote.has_links());
        assert_eq!(quote.created_at.as_deref(), Some("2024-05-01T10:00:00Z"));
        let with_media = PostRecord::from_json(QUOTE_WITH_MEDIA).unwrap();
        assert_eq!(
            with_media.quoted_uri(),
            Some("at://did:plc:q/app.bsky.feed.post/3r")
        );
        assert!(with_media.has_media() && with_media.has_links());
        assert_eq!(
            with_media.links().collect::<Vec<_>>(),
            ["https://e.example/"]
        );
        assert_eq!(with_media.hashtags().collect::<Vec<_>>(), ["extra"]);
        assert_eq!(
            with_media.embed.as_ref().map(Embed::kind),
            Some("recordWithMedia")
        );
    }

    #[test]
    fn unknown_union_members_are_other_and_bad_records_are_errors() {
        let post = PostRecord::from_json(
            r#"{"text":"x","embed":{"$type":"app.example.embed","a":1},"facets":[{"index":{"byteStart":0,"byteEnd":1},"features":[{"$type":"app.example.facet#x"}]}]}"#,
        )
        .unwrap();
        assert_eq!(post.embed, Some(Embed::Other));
        assert_eq!(post.facets[0].features, [Feature::Other]);
        let error = PostRecord::from_json(r#"{"langs":["en"]}"#).unwrap_err();
        let message = error.to_string();
        assert!(
            message.contains("app.bsky.feed.post") && message.contains("`text`"),
            "{message}"
        );
        assert!(PostRecord::from_json(r#"{"text":5}"#).is_err());
    }

    #[test]
    fn reposts_name_their_subject() {
        let raw: Box<RawValue> = serde_json::from_str(
            r#"{"$type":"app.bsky.feed.repost","createdAt":"2026-07-04T14:38:06Z","subject":{"cid":"bafyreig7","uri":"at://did:plc:lthsfxxeghkgg44eummxtvbe/app.bsky.feed.post/3mpt6c57uy22u"},"via":{"cid":"c","uri":"at://did:plc:v/app.bsky.feed.repost/3v"}}"#,
        )
        .unwrap();
        let repost = RepostRecord::from_raw(&raw).unwrap();
        assert_eq!(
            repost.subject.uri,
            "at://did:plc:lthsfxxeghkgg44eummxtvbe/app.bsky.feed.post/3mpt6c57uy22u"
        );
        assert!(repost.via.is_some());
        let raw: Box<RawValue> = serde_json::from_str(r#"{"createdAt":"x"}"#).unwrap();
        let error = RepostRecord::from_raw(&raw).unwrap_err().to_string();
        assert!(
            error.contains("app.bsky.feed.repost") && error.contains("subject"),
            "{error}"
        );
    }
}
