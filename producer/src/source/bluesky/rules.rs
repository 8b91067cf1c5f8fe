//! Client-side rules of the Bluesky source: the firehose sends every post, so the producer
//! itself matches each post record against the rules ([`tweet_pipeline_common::rule`], the
//! same subset of the X v2 rule syntax the X filtered stream uses) and writes only what
//! matched, with the matching rules' tags.
//!
//! What is matched (docs/rules.md):
//! - a post create or update: its record (text, `langs`, facets, reply, embed) and its author's
//!   DID;
//! - a repost, as X matches a retweet: the subject's text, languages and features, with the
//!   reposter as the author and `is:retweet` true, when the subject is one this producer wrote
//!   recently (the last [`RECENT_MATCHES`] matching posts are remembered); otherwise only the
//!   reposter and `is:retweet` (a repost carries no text, and an unseen subject matched no
//!   rule, or it was posted before the producer started);
//! - everything else (deletes, identity and account events, other collections) is never
//!   filtered: deletes must reach the store whatever matched, and the rest has no post to match.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use serde::Deserialize;
use tweet_pipeline_common::bluesky::{Commit, PostRecord, RepostRecord};
use tweet_pipeline_common::rule::{parse_rule, Expr, PostFields, Term};
use tweet_pipeline_common::Kind;

/// How many matched posts are remembered for matching their reposts: a few hundred bytes each
/// (the lower-cased text and the URI), so at most about 10 MB.
pub const RECENT_MATCHES: usize = 20_000;

/// One client-side rule: its expression and its tag (the `matching_rules` header value).
#[derive(Debug, Clone)]
pub struct ClientRule {
    /// The parsed expression.
    pub expr: Expr,
    /// The tag written for it.
    pub tag: String,
}

impl ClientRule {
    /// Parses `value` with the shared grammar, tagged `tag`.
    ///
    /// # Errors
    /// The grammar's problems, joined, naming the rule.
    pub fn parse(value: &str, tag: String) -> anyhow::Result<Self> {
        let expr = parse_rule(value).map_err(|problems| {
            anyhow::anyhow!("invalid rule {value:?}: {}", problems.join("; "))
        })?;
        Ok(Self { expr, tag })
    }

    /// The `from:` values that are not DIDs (handles, to be resolved to DIDs).
    pub fn handles(&self) -> Vec<String> {
        let mut found = Vec::new();
        visit_from(&self.expr, &mut |author| {
            if !author.starts_with("did:") {
                found.push(author.to_owned());
            }
        });
        found
    }

    /// Replaces each `from:handle` by `from:did` as `resolved` maps them (lower-case).
    pub fn resolve_handles(&mut self, resolved: &HashMap<String, String>) {
        rewrite_from(&mut self.expr, resolved);
    }
}

fn visit_from(expr: &Expr, f: &mut impl FnMut(&str)) {
    match expr {
        Expr::Term(Term::From(author)) => f(author),
        Expr::Term(_) => {}
        Expr::Not(inner) => visit_from(inner, f),
        Expr::And(items) | Expr::Or(items) => items.iter().for_each(|item| visit_from(item, f)),
    }
}

fn rewrite_from(expr: &mut Expr, resolved: &HashMap<String, String>) {
    match expr {
        Expr::Term(Term::From(author)) => {
            if let Some(did) = resolved.get(author.as_str()) {
                *author = did.to_lowercase();
            }
        }
        Expr::Term(_) => {}
        Expr::Not(inner) => rewrite_from(inner, resolved),
        Expr::And(items) | Expr::Or(items) => items
            .iter_mut()
            .for_each(|item| rewrite_from(item, resolved)),
    }
}

/// What to do with one event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Write it, with these rule tags (empty: no rules, or an event rules do not apply to).
    Write(Vec<String>),
    /// A post or repost that matched no rule: counted, not written.
    Unmatched,
    /// The event's record does not fit its lexicon: dead-letter it with this reason.
    Invalid(String),
}

/// The fields of an event the rules read; the record stays raw until its collection is known.
#[derive(Deserialize)]
struct EventRecord<'a> {
    #[serde(borrow)]
    did: std::borrow::Cow<'a, str>,
    #[serde(borrow)]
    commit: Commit<'a>,
}

/// The rules and the memory of recently matched posts.
#[derive(Debug, Default)]
pub struct RuleFilter {
    rules: Vec<ClientRule>,
    /// AT URI of a matched post → its rule fields.
    recent: HashMap<String, Arc<PostFields>>,
    /// The same URIs, oldest first, for eviction.
    order: VecDeque<String>,
}

impl RuleFilter {
    /// A filter over `rules` (none: everything is written).
    pub fn new(rules: Vec<ClientRule>) -> Self {
        Self {
            rules,
            ..Self::default()
        }
    }

    /// The `from:` handles of every rule (to resolve to DIDs before streaming).
    pub fn handles(&self) -> Vec<String> {
        let mut handles: Vec<String> = self.rules.iter().flat_map(ClientRule::handles).collect();
        handles.sort();
        handles.dedup();
        handles
    }

    /// Rewrites every rule's `from:handle` to `from:did` (see [`ClientRule::resolve_handles`]).
    pub fn resolve_handles(&mut self, resolved: &HashMap<String, String>) {
        for rule in &mut self.rules {
            rule.resolve_handles(resolved);
        }
    }

    /// Whether there are no rules (nothing is filtered).
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// The verdict on one routed event (`kind`, `key` its AT URI) whose bytes are `line`.
    pub fn decide(&mut self, kind: Kind, key: Option<&str>, line: &[u8]) -> Verdict {
        if self.rules.is_empty() || !matches!(kind, Kind::Post | Kind::Edit | Kind::Repost) {
            return Verdict::Write(Vec::new());
        }
        let event: EventRecord<'_> = match serde_json::from_slice(line) {
            Ok(event) => event,
            Err(error) => return Verdict::Invalid(format!("jetstream commit: {error}")),
        };
        let Some(record) = event.commit.record else {
            return Verdict::Invalid(format!("jetstream {} without a record", kind.as_str()));
        };
        let tags = if kind == Kind::Repost {
            let repost = match RepostRecord::from_raw(record) {
                Ok(repost) => repost,
                Err(error) => return Verdict::Invalid(error.to_string()),
            };
            let mut fields = match self.recent.get(repost.subject.uri.as_ref()) {
                Some(subject) => PostFields::clone(subject),
                None => PostFields::default(),
            };
            fields.author = Some(event.did.to_lowercase());
            fields.is_retweet = true;
            self.matching(&fields)
        } else {
            let post = match PostRecord::from_raw(record) {
                Ok(post) => post,
                Err(error) => return Verdict::Invalid(error.to_string()),
            };
            let fields = fields_of(&event.did, &post);
            let tags = self.matching(&fields);
            if let (false, Some(uri)) = (tags.is_empty(), key) {
                self.remember(uri, fields);
            }
            tags
        };
        if tags.is_empty() {
            Verdict::Unmatched
        } else {
            Verdict::Write(tags)
        }
    }

    fn matching(&self, fields: &PostFields) -> Vec<String> {
        self.rules
            .iter()
            .filter(|rule| rule.expr.matches(fields))
            .map(|rule| rule.tag.clone())
            .collect()
    }

    fn remember(&mut self, uri: &str, fields: PostFields) {
        if self.recent.contains_key(uri) {
            return;
        }
        if self.order.len() >= RECENT_MATCHES {
            if let Some(oldest) = self.order.pop_front() {
                self.recent.remove(&oldest);
            }
        }
        self.order.push_back(uri.to_owned());
        self.recent.insert(uri.to_owned(), Arc::new(fields));
    }
}

/// The rule fields of a post record by `did`.
pub fn fields_of(did: &str, post: &PostRecord<'_>) -> PostFields {
    PostFields {
        text: post.text.to_lowercase(),
        langs: post.langs.iter().map(|lang| lang.to_lowercase()).collect(),
        author: Some(did.to_lowercase()),
        is_retweet: false,
        is_reply: post.is_reply(),
        is_quote: post.quoted_uri().is_some(),
        has_links: post.has_links(),
        has_media: post.has_media(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn post_event(rkey: &str, record: &str) -> String {
        format!(
            r#"{{"did":"did:plc:author","time_us":1751639888085434,"kind":"commit","commit":{{"rev":"r","operation":"create","collection":"app.bsky.feed.post","rkey":"{rkey}","record":{record},"cid":"bafy"}}}}"#
        )
    }

    fn repost_event(subject: &str) -> String {
        format!(
            r#"{{"did":"did:plc:reposter","time_us":1751639888085435,"kind":"commit","commit":{{"rev":"r","operation":"create","collection":"app.bsky.feed.repost","rkey":"3rp","record":{{"$type":"app.bsky.feed.repost","subject":{{"uri":"{subject}","cid":"bafy"}},"createdAt":"2026-07-04T14:38:06Z"}},"cid":"bafy"}}}}"#
        )
    }

    fn filter(rules: &[(&str, &str)]) -> RuleFilter {
        RuleFilter::new(
            rules
                .iter()
                .map(|(value, tag)| ClientRule::parse(value, (*tag).to_owned()).unwrap())
                .collect(),
        )
    }

    const BASKETBALL: &str = r#"{"$type":"app.bsky.feed.post","text":"Basketball tonight! #NBA","langs":["en-US"],"facets":[{"features":[{"$type":"app.bsky.richtext.facet#tag","tag":"NBA"}],"index":{"byteStart":20,"byteEnd":24}}],"createdAt":"2026-07-04T14:38:06Z"}"#;
    const LINK_JA: &str = r#"{"$type":"app.bsky.feed.post","text":"今日のバスケ","langs":["ja"],"embed":{"$type":"app.bsky.embed.external","external":{"uri":"https://example.com/a","title":"t","description":"d"}},"createdAt":"2026-07-04T14:38:06Z"}"#;

    fn decide(filter: &mut RuleFilter, kind: Kind, key: &str, line: &str) -> Verdict {
        filter.decide(kind, Some(key), line.as_bytes())
    }

    #[test]
    fn matches_carry_every_matching_tag() {
        let mut rules = filter(&[
            ("basketball", "ball"),
            ("#nba lang:en", "nba-en"),
            ("lang:ja", "ja"),
        ]);
        let line = post_event("3a", BASKETBALL);
        assert_eq!(
            decide(&mut rules, Kind::Post, "at://a/p/3a", &line),
            Verdict::Write(vec!["ball".into(), "nba-en".into()])
        );
        let line = post_event("3b", LINK_JA);
        assert_eq!(
            decide(&mut rules, Kind::Post, "at://a/p/3b", &line),
            Verdict::Write(vec!["ja".into()])
        );
    }

    #[test]
    fn no_match_negation_and_operators() {
        let mut rules = filter(&[
            ("basketball -#nba", "clean"),
            ("has:links -lang:ja", "links"),
        ]);
        assert_eq!(
            decide(
                &mut rules,
                Kind::Post,
                "at://a/p/1",
                &post_event("1", BASKETBALL)
            ),
            Verdict::Unmatched
        );
        assert_eq!(
            decide(
                &mut rules,
                Kind::Edit,
                "at://a/p/2",
                &post_event("2", LINK_JA)
            ),
            Verdict::Unmatched
        );
        let mut rules = filter(&[("has:links", "links"), ("from:did:plc:author", "author")]);
        assert_eq!(
            decide(
                &mut rules,
                Kind::Post,
                "at://a/p/2",
                &post_event("2", LINK_JA)
            ),
            Verdict::Write(vec!["links".into(), "author".into()])
        );
    }

    #[test]
    fn reposts_are_matched_as_their_seen_subject() {
        let mut rules = filter(&[
            ("basketball", "ball"),
            ("basketball -is:retweet", "originals"),
            ("from:did:plc:reposter is:retweet", "fan"),
        ]);
        let uri = "at://did:plc:author/app.bsky.feed.post/3a";
        assert_eq!(
            decide(&mut rules, Kind::Post, uri, &post_event("3a", BASKETBALL)),
            Verdict::Write(vec!["ball".into(), "originals".into()])
        );
        assert_eq!(
            decide(&mut rules, Kind::Repost, "at://r/x/1", &repost_event(uri)),
            Verdict::Write(vec!["ball".into(), "fan".into()])
        );
        // An unseen subject: the repost itself is matched (author and is:retweet only).
        assert_eq!(
            decide(
                &mut rules,
                Kind::Repost,
                "at://r/x/2",
                &repost_event("at://x/y/unseen")
            ),
            Verdict::Write(vec!["fan".into()])
        );
        let mut rules = filter(&[("basketball", "ball")]);
        assert_eq!(
            decide(
                &mut rules,
                Kind::Repost,
                "at://r/x/2",
                &repost_event("at://x/y/unseen")
            ),
            Verdict::Unmatched
        );
    }

    #[test]
    fn other_events_and_no_rules_are_written_and_bad_records_dead_lettered() {
        let mut none = RuleFilter::new(Vec::new());
        assert_eq!(
            none.decide(Kind::Post, Some("at://a/p/1"), b"not even json"),
            Verdict::Write(Vec::new())
        );
        let mut rules = filter(&[("basketball", "ball")]);
        assert_eq!(
            rules.decide(Kind::Delete, None, b"{}"),
            Verdict::Write(Vec::new())
        );
        assert_eq!(
            rules.decide(Kind::Identity, None, b"{}"),
            Verdict::Write(Vec::new())
        );
        let no_text = post_event("1", r#"{"$type":"app.bsky.feed.post","createdAt":"x"}"#);
        assert!(matches!(
            decide(&mut rules, Kind::Post, "at://a/p/1", &no_text),
            Verdict::Invalid(_)
        ));
    }

    #[test]
    fn handles_are_found_and_rewritten_to_dids() {
        let mut rule =
            ClientRule::parse("from:alice.bsky.social OR from:did:plc:x", "t".into()).unwrap();
        assert_eq!(rule.handles(), vec!["alice.bsky.social".to_owned()]);
        let resolved =
            HashMap::from([("alice.bsky.social".to_owned(), "did:plc:Alice".to_owned())]);
        rule.resolve_handles(&resolved);
        assert!(rule.handles().is_empty());
        let fields = PostFields {
            author: Some("did:plc:alice".into()),
            ..PostFields::default()
        };
        assert!(rule.expr.matches(&fields));
    }

    #[test]
    fn remembered_matches_are_bounded() {
        let mut rules = filter(&[("basketball", "ball")]);
        for n in 0..RECENT_MATCHES + 10 {
            rules.remember(&format!("at://a/p/{n}"), PostFields::default());
        }
        assert_eq!(rules.recent.len(), RECENT_MATCHES);
        assert!(!rules.recent.contains_key("at://a/p/0"));
        assert!(rules
            .recent
            .contains_key(&format!("at://a/p/{}", RECENT_MATCHES + 9)));
    }
}
