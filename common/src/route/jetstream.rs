//! Routing of Bluesky Jetstream v1 events (`/subscribe`, one JSON object per WebSocket text
//! message; a recording holds one per line).
//!
//! Source: bluesky-social/jetstream `README.md` ("Consuming Jetstream", the example events) and
//! its recorded corpus `internal/corpus/testdata/expected_v1.jsonl`: every event carries `did`,
//! `time_us` (the cursor, microseconds since the Unix epoch) and `kind`, one of `commit`,
//! `identity` or `account`; a commit carries `operation` (`create`, `update`, `delete`),
//! `collection` (an NSID) and `rkey`, plus `record` and `cid` except on deletes.
//!
//! | event                                            | kind       | destination | key |
//! |--------------------------------------------------|------------|-------------|-----|
//! | commit create of `app.bsky.feed.post`            | `post`     | tweets      | AT URI `at://{did}/{collection}/{rkey}` |
//! | commit update of `app.bsky.feed.post`            | `edit`     | tweets      | AT URI |
//! | commit create or update of `app.bsky.feed.repost` | `repost`  | retweets    | AT URI |
//! | commit delete of a post or a repost              | `delete`   | control     | AT URI of the deleted record |
//! | any commit of another collection (likes, follows, blocks, profiles, ...) | `event` | control | AT URI |
//! | `identity`                                       | `identity` | control     | the DID |
//! | `account`                                        | `account`  | control     | the DID |
//! | an event without `did`, a commit without `collection`/`rkey`/`operation`, an unknown `kind` or `operation` | `unknown` | deadletter | none |

use std::borrow::Cow;

use serde::Deserialize;

use super::{Kind, Routed};

pub use crate::bluesky::{POST_COLLECTION, REPOST_COLLECTION};

/// The commit fields routing reads; `record` and `cid` are skipped without being built.
#[derive(Debug, Deserialize)]
pub(super) struct Commit<'a> {
    #[serde(borrow, default)]
    operation: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    collection: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    rkey: Option<Cow<'a, str>>,
}

/// The top-level fields of a Jetstream event that routing reads.
pub(super) struct Event<'a> {
    /// The repository's DID (`did:plc:…` or `did:web:…`).
    pub did: Option<Cow<'a, str>>,
    /// `commit`, `identity` or `account`.
    pub kind: Cow<'a, str>,
    /// Present on `commit` events.
    pub commit: Option<Commit<'a>>,
}

pub use crate::bluesky::at_uri;

impl<'a> Event<'a> {
    /// The routing decision for this event (see the module table).
    pub(super) fn route(self) -> Routed<'a> {
        let unknown =
            |reason: &str| Routed::dead_letter(Kind::Unknown, format!("jetstream: {reason}"));
        let Some(did) = self.did else {
            return unknown("event without did");
        };
        match self.kind.as_ref() {
            "identity" => return Routed::new(Kind::Identity, Some(did)),
            "account" => return Routed::new(Kind::Account, Some(did)),
            "commit" => {}
            _ => return unknown("unknown event kind (not commit, identity or account)"),
        }
        let Some(commit) = self.commit else {
            return unknown("commit event without commit");
        };
        let (Some(operation), Some(collection), Some(rkey)) =
            (commit.operation, commit.collection, commit.rkey)
        else {
            return unknown("commit without operation, collection or rkey");
        };
        let kind = match (operation.as_ref(), collection.as_ref()) {
            ("create", POST_COLLECTION) => Kind::Post,
            ("update", POST_COLLECTION) => Kind::Edit,
            ("create" | "update", REPOST_COLLECTION) => Kind::Repost,
            ("delete", POST_COLLECTION | REPOST_COLLECTION) => Kind::Delete,
            ("create" | "update" | "delete", _) => Kind::Event,
            _ => return unknown("unknown commit operation (not create, update or delete)"),
        };
        Routed::new(kind, Some(Cow::Owned(at_uri(&did, &collection, &rkey))))
    }
}

#[cfg(test)]
mod tests {
    use crate::route::tests::record;
    use crate::route::{Destination, Kind};

    fn commit(operation: &str, collection: &str) -> String {
        let record = if operation == "delete" {
            String::new()
        } else {
            format!(r#","record":{{"$type":"{collection}","text":"hi"}},"cid":"bafy""#)
        };
        format!(
            r#"{{"did":"did:plc:abc","time_us":1725911162329308,"kind":"commit","commit":{{"rev":"3l","operation":"{operation}","collection":"{collection}","rkey":"3kx"{record}}}}}"#
        )
    }

    #[test]
    fn posts_reposts_and_deletes_keyed_by_at_uri() {
        let cases = [
            (
                "create",
                "app.bsky.feed.post",
                Kind::Post,
                Destination::Tweets,
            ),
            (
                "update",
                "app.bsky.feed.post",
                Kind::Edit,
                Destination::Tweets,
            ),
            (
                "create",
                "app.bsky.feed.repost",
                Kind::Repost,
                Destination::Retweets,
            ),
            (
                "delete",
                "app.bsky.feed.post",
                Kind::Delete,
                Destination::Control,
            ),
            (
                "delete",
                "app.bsky.feed.repost",
                Kind::Delete,
                Destination::Control,
            ),
            (
                "create",
                "app.bsky.feed.like",
                Kind::Event,
                Destination::Control,
            ),
            (
                "delete",
                "app.bsky.graph.follow",
                Kind::Event,
                Destination::Control,
            ),
            (
                "update",
                "app.bsky.actor.profile",
                Kind::Event,
                Destination::Control,
            ),
        ];
        for (operation, collection, kind, destination) in cases {
            let line = commit(operation, collection);
            let routed = record(&line);
            assert_eq!(
                (routed.kind, routed.destination()),
                (kind, destination),
                "{line}"
            );
            assert_eq!(
                routed.key.as_deref(),
                Some(format!("at://did:plc:abc/{collection}/3kx").as_str())
            );
            assert_eq!(routed.reason, None);
        }
    }

    #[test]
    fn identity_and_account_keyed_by_did() {
        let identity = record(
            r#"{"did":"did:plc:abc","time_us":1,"kind":"identity","identity":{"did":"did:plc:abc","seq":1,"time":"2024-09-09T19:46:02.102Z"}}"#,
        );
        assert_eq!(
            (identity.kind, identity.key.as_deref()),
            (Kind::Identity, Some("did:plc:abc"))
        );
        let account = record(
            r#"{"did":"did:plc:abc","time_us":1,"kind":"account","account":{"active":false,"status":"takendown","seq":2}}"#,
        );
        assert_eq!(
            (account.kind, account.destination()),
            (Kind::Account, Destination::Control)
        );
    }

    #[test]
    fn incomplete_events_are_dead_lettered_with_the_reason() {
        for (line, reason) in [
            (
                r#"{"time_us":1,"kind":"commit","commit":{}}"#,
                "without did",
            ),
            (
                r#"{"did":"did:plc:abc","time_us":1,"kind":"label"}"#,
                "unknown event kind",
            ),
            (
                r#"{"did":"did:plc:abc","time_us":1,"kind":"commit"}"#,
                "without commit",
            ),
            (
                r#"{"did":"did:plc:abc","time_us":1,"kind":"commit","commit":{"operation":"create","collection":"app.bsky.feed.post"}}"#,
                "without operation, collection or rkey",
            ),
            (
                r#"{"did":"did:plc:abc","time_us":1,"kind":"commit","commit":{"operation":"merge","collection":"app.bsky.feed.post","rkey":"r"}}"#,
                "unknown commit operation",
            ),
        ] {
            let routed = record(line);
            assert_eq!(routed.destination(), Destination::DeadLetter, "{line}");
            let got = routed.reason.unwrap_or_default();
            assert!(got.contains(reason), "{line}: {got}");
        }
    }
}
