//! The Bluesky (AT Protocol) data model the pipeline reads: AT URIs, the Jetstream v1 commit
//! envelope, and the typed `app.bsky.feed.post` and `app.bsky.feed.repost` records
//! ([`record`]).
//!
//! Sources: the AT Protocol specification ("AT URI Scheme"); bluesky-social/jetstream
//! `README.md` ("Consuming Jetstream", the example events); the lexicons of
//! bluesky-social/atproto `lexicons/app/bsky/` (copies in `shared/data/bluesky/docs/lexicons/`).
//!
//! Routing of Jetstream events (which topic, which key) is [`crate::route::jetstream`]; this
//! module is what a consumer, or a producer's client-side rule, reads out of a commit's record.

pub mod record;

use std::borrow::Cow;

use serde::Deserialize;
use serde_json::value::RawValue;

pub use self::record::{
    ByteSlice, Embed, External, Facet, Feature, Image, PostRecord, QuotedRecord, RecordError,
    ReplyRefs, RepostRecord, StrongRef,
};

/// The NSID of a Bluesky post record (lexicon `app.bsky.feed.post`).
pub const POST_COLLECTION: &str = "app.bsky.feed.post";

/// The NSID of a Bluesky repost record (lexicon `app.bsky.feed.repost`).
pub const REPOST_COLLECTION: &str = "app.bsky.feed.repost";

/// The AT URI of a record: `at://{did}/{collection}/{rkey}` (AT Protocol specification, "AT URI
/// Scheme"), e.g. `at://did:plc:abc/app.bsky.feed.post/3kx`.
pub fn at_uri(did: &str, collection: &str, rkey: &str) -> String {
    format!("at://{did}/{collection}/{rkey}")
}

/// The `commit` object of a Jetstream v1 `commit` event (bluesky-social/jetstream README): the
/// operation on one record of the repository. `record` is kept as raw JSON, borrowed from the
/// event, and read by collection with [`PostRecord::from_raw`] or [`RepostRecord::from_raw`],
/// so an event of another collection (likes, follows, ...) costs no record model.
#[derive(Debug, Clone, Deserialize)]
pub struct Commit<'a> {
    /// `create`, `update` or `delete`.
    #[serde(borrow, default)]
    pub operation: Option<Cow<'a, str>>,
    /// The record's collection NSID, e.g. [`POST_COLLECTION`].
    #[serde(borrow)]
    pub collection: Cow<'a, str>,
    /// The record key within the collection.
    #[serde(borrow)]
    pub rkey: Cow<'a, str>,
    /// The record itself; absent on deletes.
    #[serde(borrow, default)]
    pub record: Option<&'a RawValue>,
    /// The record's CID; absent on deletes.
    #[serde(borrow, default)]
    pub cid: Option<Cow<'a, str>>,
}

impl Commit<'_> {
    /// The AT URI of the committed record, given the repository's DID.
    pub fn uri(&self, did: &str) -> String {
        at_uri(did, &self.collection, &self.rkey)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn at_uris_join_did_collection_and_rkey() {
        assert_eq!(
            at_uri("did:plc:abc", POST_COLLECTION, "3kx"),
            "at://did:plc:abc/app.bsky.feed.post/3kx"
        );
    }

    #[test]
    fn a_commit_keeps_its_record_raw_and_borrowed() {
        let event = br#"{"rev":"r","operation":"create","collection":"app.bsky.feed.post","rkey":"3kx","record":{"$type":"app.bsky.feed.post","text":"hi","createdAt":"2026-07-04T14:38:06.240Z"},"cid":"bafy"}"#;
        let commit: Commit<'_> = serde_json::from_slice(event).unwrap();
        assert_eq!(
            commit.uri("did:plc:abc"),
            "at://did:plc:abc/app.bsky.feed.post/3kx"
        );
        assert!(matches!(commit.collection, Cow::Borrowed(_)));
        let post = PostRecord::from_raw(commit.record.unwrap()).unwrap();
        assert_eq!(post.text, "hi");
        let delete: Commit<'_> = serde_json::from_slice(
            br#"{"operation":"delete","collection":"app.bsky.feed.post","rkey":"3kx"}"#,
        )
        .unwrap();
        assert!(delete.record.is_none() && delete.cid.is_none());
    }
}
