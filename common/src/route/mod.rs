//! Routing by field inspection: decides, from a stream line's top-level keys alone, which topic
//! a line goes to, what kind of message it is and which key it gets.
//!
//! The line itself is never rewritten: the producer writes the exact bytes it received. Routing
//! only reads the top-level keys (nested objects are skipped without being built), so a 3 KB
//! status costs one validating scan.
//!
//! Shapes recognised (sources: X API v1.1 "Streaming message types" and "Consuming streaming
//! data" documents; X API v2 "Filtered stream" integration guide):
//!
//! | shape (top-level key)                    | kind            | destination | key                        |
//! |------------------------------------------|-----------------|-------------|----------------------------|
//! | status with non-null `retweeted_status`   | `retweet`       | retweets    | `id_str` (or `id`)         |
//! | other status (`id`/`id_str` + text/user)  | `tweet`         | tweets      | `id_str` (or `id`)         |
//! | `delete`                                 | `delete`        | control     | the deleted post's id      |
//! | `scrub_geo`                              | `scrub_geo`     | control     | `up_to_status_id_str`      |
//! | `status_withheld`                        | `status_withheld` | control   | the withheld post's id     |
//! | `compliance` (written by `tweet-consumer compliance`) | `compliance` | control | `compliance.id` |
//! | `limit`, `disconnect`, `warning`, `user_withheld`, `event`, `friends`/`friends_str`, `control`, `for_user` | same name | control | none |
//! | v2 `data` whose `referenced_tweets` has `retweeted` | `retweet` | retweets  | `data.id`                  |
//! | other v2 `data`                          | `tweet`         | tweets      | `data.id`                  |
//! | v2 `errors` without `data`               | `stream_error`  | control     | none                       |
//! | blank line (keep-alive)                  | not a record    | –           | –                          |
//! | invalid JSON or invalid UTF-8            | `malformed`     | deadletter  | none                       |
//! | valid JSON of no known shape             | `unknown`       | deadletter  | none                       |
//! | line over `max_line_bytes` (framing)     | `oversized`     | deadletter  | none (value: the first `max_line_bytes`) |
//! | Bluesky Jetstream event (`time_us` + `kind`) | `post`, `edit`, `repost`, `delete`, `event`, `identity`, `account` | see [`jetstream`] | AT URI, or the DID |

use std::borrow::Cow;
use std::fmt;

use serde::de::IgnoredAny;
use serde::Deserialize;

pub mod jetstream;

/// Which topic a line goes to. The topic names themselves are configuration
/// ([`crate::config::TopicNames`]).
///
/// The explicit discriminants are each destination's slot in a [`PerDestination`]; they are
/// also its position in [`Destination::ALL`] (a test checks both agree).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(usize)]
pub enum Destination {
    /// Original posts, replies and quotes.
    Tweets = 0,
    /// Retweets (v1.1 `retweeted_status`, v2 `referenced_tweets` of type `retweeted`).
    Retweets = 1,
    /// Control messages: deletes, limits, disconnects, warnings, withheld notices, v2 errors.
    Control = 2,
    /// Lines that could not be routed, with the reason in a header.
    DeadLetter = 3,
}

impl Destination {
    /// How many destinations there are.
    pub const COUNT: usize = 4;

    /// Every destination, in display order.
    pub const ALL: [Destination; Destination::COUNT] = [
        Destination::Tweets,
        Destination::Retweets,
        Destination::Control,
        Destination::DeadLetter,
    ];

    /// Stable lowercase name, used as a metric label and in summaries.
    pub fn as_str(self) -> &'static str {
        match self {
            Destination::Tweets => "tweets",
            Destination::Retweets => "retweets",
            Destination::Control => "control",
            Destination::DeadLetter => "deadletter",
        }
    }
}

impl fmt::Display for Destination {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One `T` per [`Destination`], indexed by the destination itself (`counts[Destination::Tweets]`),
/// so no list's order has to match another's.
///
/// Serialises as a map from [`Destination::as_str`] to the value, in [`Destination::ALL`]
/// order: `{"tweets":1,"retweets":0,"control":2,"deadletter":0}`; deserialises from the same
/// map, which must name every destination and nothing else.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct PerDestination<T>([T; Destination::COUNT]);

impl<T> PerDestination<T> {
    /// A value for each destination, computed by `value`.
    pub fn from_fn(mut value: impl FnMut(Destination) -> T) -> Self {
        Self(Destination::ALL.map(&mut value))
    }

    /// Each destination with its value, in [`Destination::ALL`] order.
    pub fn iter(&self) -> impl Iterator<Item = (Destination, &T)> {
        Destination::ALL.into_iter().zip(self.0.iter())
    }

    /// The values, in [`Destination::ALL`] order.
    pub fn values(&self) -> impl Iterator<Item = &T> {
        self.0.iter()
    }

    /// Applies `f` to every value.
    pub fn map<U>(&self, mut f: impl FnMut(&T) -> U) -> PerDestination<U> {
        PerDestination::from_fn(|destination| f(&self[destination]))
    }
}

impl<T> From<[T; Destination::COUNT]> for PerDestination<T> {
    /// Values given in [`Destination::ALL`] order (the order of the discriminants).
    fn from(values: [T; Destination::COUNT]) -> Self {
        Self(values)
    }
}

impl PerDestination<u64> {
    /// The sum over every destination.
    pub fn total(&self) -> u64 {
        self.0.iter().sum()
    }
}

impl<T> std::ops::Index<Destination> for PerDestination<T> {
    type Output = T;

    fn index(&self, destination: Destination) -> &T {
        &self.0[destination as usize]
    }
}

impl<T> std::ops::IndexMut<Destination> for PerDestination<T> {
    fn index_mut(&mut self, destination: Destination) -> &mut T {
        &mut self.0[destination as usize]
    }
}

impl<T: serde::Serialize> serde::Serialize for PerDestination<T> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap as _;
        let mut map = serializer.serialize_map(Some(Destination::COUNT))?;
        for (destination, value) in self.iter() {
            map.serialize_entry(destination.as_str(), value)?;
        }
        map.end()
    }
}

/// The kind of a stream message: a closed set, written to the `kind` record header and used as
/// a metric label.
///
/// Each kind has a fixed one-byte code ([`Kind::code`]) that the producer's on-disk spool
/// stores: a code, once given, never changes or moves to another kind (records spooled by an
/// older build must read back as the same kind); a new kind takes the next free code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u8)]
pub enum Kind {
    /// An original post, reply or quote.
    Tweet = 0,
    /// A retweet.
    Retweet = 1,
    /// A new version of an edited post (Mastodon `status.update`).
    Edit = 2,
    /// v1.1 status deletion notice (`delete.status`).
    Delete = 3,
    /// v1.1 location deletion notice.
    ScrubGeo = 4,
    /// v1.1 limit notice: how many matching posts were not delivered.
    Limit = 5,
    /// v1.1 status withheld in some countries.
    StatusWithheld = 6,
    /// v1.1 user withheld in some countries.
    UserWithheld = 7,
    /// v1.1 disconnect message (the server is about to close the stream).
    Disconnect = 8,
    /// v1.1 stall warning (`FALLING_BEHIND`).
    Warning = 9,
    /// v1.1 user-stream event (favorite, follow, ...).
    Event = 10,
    /// v1.1 user-stream friends list preamble.
    Friends = 11,
    /// v1.1 site-stream control message or `for_user` envelope.
    SiteControl = 12,
    /// v2 in-stream error object (e.g. `operational-disconnect`).
    StreamError = 13,
    /// Not valid JSON (or not valid UTF-8).
    Malformed = 14,
    /// Valid JSON of no known shape.
    Unknown = 15,
    /// A line longer than the framer's maximum (`max_line_bytes`); its first bytes are kept.
    Oversized = 16,
    /// A Bluesky post created (Jetstream commit create of `app.bsky.feed.post`).
    Post = 17,
    /// A Bluesky repost (Jetstream commit of `app.bsky.feed.repost`).
    Repost = 18,
    /// A Bluesky identity event: a DID's handle or DID document changed.
    Identity = 19,
    /// A Bluesky account event: an account became active, deactivated, suspended or taken down.
    Account = 20,
    /// An X API v2 batch compliance event written by `tweet-consumer compliance`
    /// ([`crate::compliance::ComplianceRecord`]).
    Compliance = 21,
}

impl Kind {
    /// Every kind, in declaration order.
    pub const ALL: [Kind; 22] = [
        Kind::Tweet,
        Kind::Retweet,
        Kind::Edit,
        Kind::Delete,
        Kind::ScrubGeo,
        Kind::Limit,
        Kind::StatusWithheld,
        Kind::UserWithheld,
        Kind::Disconnect,
        Kind::Warning,
        Kind::Event,
        Kind::Friends,
        Kind::SiteControl,
        Kind::StreamError,
        Kind::Malformed,
        Kind::Unknown,
        Kind::Oversized,
        Kind::Post,
        Kind::Repost,
        Kind::Identity,
        Kind::Account,
        Kind::Compliance,
    ];

    /// The kind's stable one-byte code (its spool encoding); see [`Kind::from_code`].
    pub fn code(self) -> u8 {
        self as u8
    }

    /// The kind whose [`Kind::code`] is `code`; `None` for a code no kind has (written by a
    /// newer build, or corruption).
    pub fn from_code(code: u8) -> Option<Kind> {
        Kind::ALL.into_iter().find(|kind| kind.code() == code)
    }

    /// Stable snake_case name: the `kind` header value and metric label.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Tweet => "tweet",
            Kind::Retweet => "retweet",
            Kind::Edit => "edit",
            Kind::Delete => "delete",
            Kind::ScrubGeo => "scrub_geo",
            Kind::Limit => "limit",
            Kind::StatusWithheld => "status_withheld",
            Kind::UserWithheld => "user_withheld",
            Kind::Disconnect => "disconnect",
            Kind::Warning => "warning",
            Kind::Event => "event",
            Kind::Friends => "friends",
            Kind::SiteControl => "control",
            Kind::StreamError => "stream_error",
            Kind::Malformed => "malformed",
            Kind::Unknown => "unknown",
            Kind::Oversized => "oversized",
            Kind::Post => "post",
            Kind::Repost => "repost",
            Kind::Identity => "identity",
            Kind::Account => "account",
            Kind::Compliance => "compliance",
        }
    }

    /// Parses a `kind` header value written by [`Kind::as_str`].
    pub fn parse(s: &str) -> Option<Kind> {
        Some(match s {
            "tweet" => Kind::Tweet,
            "retweet" => Kind::Retweet,
            "edit" => Kind::Edit,
            "delete" => Kind::Delete,
            "scrub_geo" => Kind::ScrubGeo,
            "limit" => Kind::Limit,
            "status_withheld" => Kind::StatusWithheld,
            "user_withheld" => Kind::UserWithheld,
            "disconnect" => Kind::Disconnect,
            "warning" => Kind::Warning,
            "event" => Kind::Event,
            "friends" => Kind::Friends,
            "control" => Kind::SiteControl,
            "stream_error" => Kind::StreamError,
            "malformed" => Kind::Malformed,
            "unknown" => Kind::Unknown,
            "oversized" => Kind::Oversized,
            "post" => Kind::Post,
            "repost" => Kind::Repost,
            "identity" => Kind::Identity,
            "account" => Kind::Account,
            "compliance" => Kind::Compliance,
            _ => return None,
        })
    }

    /// The topic this kind of message is written to.
    pub fn destination(self) -> Destination {
        match self {
            Kind::Tweet | Kind::Edit | Kind::Post => Destination::Tweets,
            Kind::Retweet | Kind::Repost => Destination::Retweets,
            Kind::Malformed | Kind::Unknown | Kind::Oversized => Destination::DeadLetter,
            _ => Destination::Control,
        }
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The routing decision for one non-blank line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Routed<'a> {
    /// What the line is.
    pub kind: Kind,
    /// Record key: the post id (for a delete notice, the deleted post's id); `None` for
    /// messages that concern no single post.
    pub key: Option<Cow<'a, str>>,
    /// Why a dead-lettered line could not be routed (`None` for every other kind). Written to
    /// the `error` header; it describes the position and problem, never the content.
    pub reason: Option<String>,
    /// The tags of the rules that selected the post (X v2 `matching_rules`, or the rules the
    /// producer matched client-side on a Bluesky post); empty otherwise.
    pub rule_tags: Vec<Cow<'a, str>>,
    /// The line's position in its stream, for resuming after a restart: a Jetstream event's
    /// `time_us` (microseconds since the Unix epoch); `None` for every other source.
    pub cursor: Option<i64>,
}

impl<'a> Routed<'a> {
    /// A routing decision without a reason or rule tags.
    pub fn new(kind: Kind, key: Option<Cow<'a, str>>) -> Self {
        Self {
            kind,
            key,
            reason: None,
            rule_tags: Vec::new(),
            cursor: None,
        }
    }

    /// A dead-letter decision with its reason.
    pub fn dead_letter(kind: Kind, reason: String) -> Self {
        Self {
            kind,
            key: None,
            reason: Some(reason),
            rule_tags: Vec::new(),
            cursor: None,
        }
    }
}

impl Routed<'_> {
    /// The topic the line goes to.
    pub fn destination(&self) -> Destination {
        self.kind.destination()
    }
}

/// What a line of a stream is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LineClass<'a> {
    /// A blank line (only spaces, tabs, CR, LF): the stream's keep-alive. Counted, not written.
    KeepAlive,
    /// Anything else: written to Kafka as it is.
    Record(Routed<'a>),
}

/// Classifies one line (without its line terminator).
///
/// Never fails: every line is either a keep-alive or a record for some topic, malformed and
/// unknown lines included (they go to the dead-letter topic with a reason).
pub fn route_line(line: &[u8]) -> LineClass<'_> {
    if line
        .iter()
        .all(|b| matches!(b, b' ' | b'\t' | b'\r' | b'\n'))
    {
        return LineClass::KeepAlive;
    }
    // serde_json skips the strings of ignored fields without checking their UTF-8, so the
    // whole line is checked first: downstream JSON readers need valid UTF-8.
    let text = match std::str::from_utf8(line) {
        Ok(text) => text,
        Err(error) => {
            return LineClass::Record(Routed::dead_letter(
                Kind::Malformed,
                format!(
                    "invalid utf-8: {} valid bytes, then an invalid sequence",
                    error.valid_up_to()
                ),
            ))
        }
    };
    LineClass::Record(match serde_json::from_str::<Probe<'_>>(text) {
        Ok(probe) => probe.route(),
        // A type error stops serde before the end of the input; only a whole valid document
        // is of an unknown shape, anything else is malformed.
        Err(error) if error.is_data() => match serde_json::from_str::<IgnoredAny>(text) {
            Ok(_) => Routed::dead_letter(Kind::Unknown, format!("unknown shape: {error}")),
            Err(syntax) => {
                Routed::dead_letter(Kind::Malformed, format!("malformed json: {syntax}"))
            }
        },
        Err(error) => Routed::dead_letter(Kind::Malformed, format!("malformed json: {error}")),
    })
}

/// Classifies one Mastodon streaming event (Server-Sent Events: the `event:` name and the
/// `data:` payload). Source: Mastodon documentation, "Streaming API methods" (event types).
///
/// | event            | kind                  | destination       | key            |
/// |------------------|-----------------------|-------------------|----------------|
/// | `update`         | `tweet` / `retweet` (when `reblog` is set) | tweets / retweets | status `id` |
/// | `status.update`  | `edit`                | tweets            | status `id`    |
/// | `delete`         | `delete`              | control           | the payload (a status id) |
/// | other events     | `event`               | control           | none           |
///
/// A payload that is not a status where one is expected is dead-lettered with the reason.
pub fn route_mastodon_event<'a>(event: &str, data: &'a [u8]) -> Routed<'a> {
    #[derive(Deserialize)]
    struct Status<'a> {
        #[serde(borrow)]
        id: Cow<'a, str>,
        #[serde(default)]
        reblog: Option<NonNull>,
    }
    let status = || match std::str::from_utf8(data) {
        Err(error) => Err(format!(
            "invalid utf-8: {} valid bytes",
            error.valid_up_to()
        )),
        Ok(text) => serde_json::from_str::<Status<'_>>(text)
            .map_err(|error| format!("malformed mastodon status: {error}")),
    };
    match event {
        "update" | "status.update" => match status() {
            Ok(status) => {
                let kind = match (event, status.reblog.is_some()) {
                    ("status.update", _) => Kind::Edit,
                    (_, true) => Kind::Retweet,
                    (_, false) => Kind::Tweet,
                };
                Routed::new(kind, Some(status.id))
            }
            Err(reason) => Routed::dead_letter(Kind::Malformed, reason),
        },
        "delete" => match std::str::from_utf8(data).map(str::trim) {
            Ok(id) if !id.is_empty() => Routed::new(Kind::Delete, Some(Cow::Borrowed(id))),
            _ => Routed::dead_letter(
                Kind::Malformed,
                "delete event without a status id".to_owned(),
            ),
        },
        _ => Routed::new(Kind::Event, None),
    }
}

/// A post id as the APIs send it: v1.1 gives both a number `id` and a string `id_str` (use the
/// string: ids exceed 2^53); v2 gives only the string `id`.
#[derive(Deserialize, Default)]
struct IdRef<'a> {
    #[serde(borrow, default)]
    id_str: Option<Cow<'a, str>>,
    #[serde(default)]
    id: Option<IdValue<'a>>,
}

/// `id` is a number in v1.1 and a string in v2.
#[derive(Deserialize)]
#[serde(untagged)]
enum IdValue<'a> {
    Number(u64),
    #[serde(borrow)]
    String(Cow<'a, str>),
}

impl<'a> IdRef<'a> {
    fn into_key(self) -> Option<Cow<'a, str>> {
        match (self.id_str, self.id) {
            (Some(id), _) => Some(id),
            (None, Some(IdValue::String(id))) => Some(id),
            (None, Some(IdValue::Number(id))) => Some(Cow::Owned(id.to_string())),
            (None, None) => None,
        }
    }
}

#[derive(Deserialize)]
struct DeleteNotice<'a> {
    #[serde(borrow, default)]
    status: Option<IdRef<'a>>,
}

#[derive(Deserialize)]
struct ScrubGeo<'a> {
    #[serde(borrow, default)]
    up_to_status_id_str: Option<Cow<'a, str>>,
    #[serde(default)]
    up_to_status_id: Option<u64>,
}

#[derive(Deserialize)]
struct ReferencedTweet<'a> {
    #[serde(borrow, rename = "type")]
    kind: Cow<'a, str>,
}

#[derive(Deserialize)]
struct V2Data<'a> {
    #[serde(borrow)]
    id: Cow<'a, str>,
    #[serde(borrow, default)]
    referenced_tweets: Option<Vec<ReferencedTweet<'a>>>,
}

/// The top-level keys routing looks at; every other key is skipped by `serde`
/// without being built.
#[derive(Deserialize)]
struct Probe<'a> {
    // statuses (v1.1)
    #[serde(borrow, default)]
    id_str: Option<Cow<'a, str>>,
    #[serde(default)]
    id: Option<IdValue<'a>>,
    #[serde(default)]
    text: Option<IgnoredAny>,
    #[serde(default)]
    full_text: Option<IgnoredAny>,
    #[serde(default)]
    user: Option<IgnoredAny>,
    /// `Option<IgnoredAny>` would also be `Some` for an explicit `null`; a status with
    /// `"retweeted_status": null` is not a retweet.
    #[serde(default)]
    retweeted_status: Option<NonNull>,
    // control messages (v1.1)
    #[serde(borrow, default)]
    delete: Option<DeleteNotice<'a>>,
    #[serde(borrow, default)]
    scrub_geo: Option<ScrubGeo<'a>>,
    #[serde(borrow, default)]
    status_withheld: Option<IdRef<'a>>,
    #[serde(default)]
    limit: Option<IgnoredAny>,
    #[serde(default)]
    disconnect: Option<IgnoredAny>,
    #[serde(default)]
    warning: Option<IgnoredAny>,
    #[serde(default)]
    user_withheld: Option<IgnoredAny>,
    #[serde(default)]
    event: Option<IgnoredAny>,
    #[serde(default)]
    friends: Option<IgnoredAny>,
    #[serde(default)]
    friends_str: Option<IgnoredAny>,
    #[serde(default)]
    control: Option<IgnoredAny>,
    #[serde(default)]
    for_user: Option<IgnoredAny>,
    // X API v2 batch compliance events (written by `tweet-consumer compliance`)
    #[serde(borrow, default)]
    compliance: Option<ComplianceRef<'a>>,
    // v2 filtered stream
    #[serde(borrow, default)]
    data: Option<V2Data<'a>>,
    #[serde(default)]
    errors: Option<IgnoredAny>,
    #[serde(borrow, default)]
    matching_rules: Option<Vec<MatchingRule<'a>>>,
    // Bluesky Jetstream v1
    #[serde(default)]
    time_us: Option<i64>,
    #[serde(borrow, default)]
    kind: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    did: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    commit: Option<jetstream::Commit<'a>>,
}

/// `compliance.id` of a compliance control record ([`crate::compliance::ComplianceRecord`]).
#[derive(Deserialize)]
struct ComplianceRef<'a> {
    #[serde(borrow, default)]
    id: Option<Cow<'a, str>>,
}

/// v2 `matching_rules` entry: `{"id": "...", "tag": "..."}` (the tag may be null).
#[derive(Deserialize)]
struct MatchingRule<'a> {
    #[serde(borrow, default)]
    tag: Option<Cow<'a, str>>,
}

/// Deserializes from any value but `null` (which, through `Option`, becomes `None`).
struct NonNull;

impl<'de> Deserialize<'de> for NonNull {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        IgnoredAny::deserialize(deserializer).map(|_| NonNull)
    }
}

impl<'a> Probe<'a> {
    fn route(self) -> Routed<'a> {
        let routed = Routed::new;
        if let (Some(time_us), Some(kind)) = (self.time_us, self.kind) {
            let mut routed = jetstream::Event {
                did: self.did,
                kind,
                commit: self.commit,
            }
            .route();
            routed.cursor = Some(time_us);
            return routed;
        }
        if let Some(delete) = self.delete {
            return routed(Kind::Delete, delete.status.and_then(IdRef::into_key));
        }
        if let Some(scrub) = self.scrub_geo {
            let key = scrub
                .up_to_status_id_str
                .or_else(|| scrub.up_to_status_id.map(|id| Cow::Owned(id.to_string())));
            return routed(Kind::ScrubGeo, key);
        }
        if let Some(withheld) = self.status_withheld {
            return routed(Kind::StatusWithheld, withheld.into_key());
        }
        if let Some(compliance) = self.compliance {
            return routed(Kind::Compliance, compliance.id);
        }
        let control = [
            (self.limit.is_some(), Kind::Limit),
            (self.disconnect.is_some(), Kind::Disconnect),
            (self.warning.is_some(), Kind::Warning),
            (self.user_withheld.is_some(), Kind::UserWithheld),
            (
                self.friends.is_some() || self.friends_str.is_some(),
                Kind::Friends,
            ),
            (
                self.control.is_some() || self.for_user.is_some(),
                Kind::SiteControl,
            ),
        ];
        if let Some(&(_, kind)) = control.iter().find(|(present, _)| *present) {
            return routed(kind, None);
        }
        let has_id = self.id_str.is_some() || self.id.is_some();
        let has_body = self.text.is_some() || self.full_text.is_some() || self.user.is_some();
        if has_id && has_body {
            let kind = if self.retweeted_status.is_some() {
                Kind::Retweet
            } else {
                Kind::Tweet
            };
            let key = IdRef {
                id_str: self.id_str,
                id: self.id,
            }
            .into_key();
            return routed(kind, key);
        }
        // A user-stream event also has no id; checked after statuses because a status never
        // carries `event`, but an event's `target_object` may be a status nested below.
        if self.event.is_some() {
            return routed(Kind::Event, None);
        }
        if let Some(data) = self.data {
            let retweet = data
                .referenced_tweets
                .iter()
                .flatten()
                .any(|r| r.kind == "retweeted");
            let kind = if retweet { Kind::Retweet } else { Kind::Tweet };
            let mut routed = routed(kind, Some(data.id));
            routed.rule_tags = self
                .matching_rules
                .into_iter()
                .flatten()
                .filter_map(|rule| rule.tag)
                .collect();
            return routed;
        }
        if self.errors.is_some() {
            return routed(Kind::StreamError, None);
        }
        Routed::dead_letter(
            Kind::Unknown,
            "unknown shape: no known top-level field".to_owned(),
        )
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for PerDestination<T> {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        use serde::de::Error as _;
        let mut map = std::collections::BTreeMap::<String, T>::deserialize(deserializer)?;
        if let Some(missing) = Destination::ALL
            .iter()
            .find(|d| !map.contains_key(d.as_str()))
        {
            return Err(D::Error::missing_field(missing.as_str()));
        }
        let values = Self::from_fn(|d| map.remove(d.as_str()).expect("checked above"));
        match map.keys().next() {
            Some(unknown) => Err(D::Error::unknown_field(
                unknown,
                &["tweets", "retweets", "control", "deadletter"],
            )),
            None => Ok(values),
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// The routing of `line`, which must not be a keep-alive.
    pub(crate) fn record(line: &str) -> Routed<'_> {
        match route_line(line.as_bytes()) {
            LineClass::Record(routed) => routed,
            LineClass::KeepAlive => panic!("{line:?} routed as keep-alive"),
        }
    }

    #[test]
    fn blank_lines_are_keep_alives() {
        for line in ["", "\r", " ", "\r\n", " \t "] {
            assert_eq!(
                route_line(line.as_bytes()),
                LineClass::KeepAlive,
                "{line:?}"
            );
        }
    }

    #[test]
    fn statuses_and_retweets() {
        let tweet = record(r#"{"id":5,"id_str":"5","text":"hi","user":{"id":1}}"#);
        assert_eq!((tweet.kind, tweet.key.as_deref()), (Kind::Tweet, Some("5")));
        let rt = record(r#"{"id_str":"7","text":"RT","retweeted_status":{"id_str":"5"}}"#);
        assert_eq!((rt.kind, rt.key.as_deref()), (Kind::Retweet, Some("7")));
        assert_eq!(rt.destination(), Destination::Retweets);
        let null_rt = record(r#"{"id_str":"8","text":"x","retweeted_status":null}"#);
        assert_eq!(null_rt.kind, Kind::Tweet);
        // No id_str: the numeric id, printed exactly even above 2^53.
        let numeric = record(r#"{"id":505874924095815700,"text":"x"}"#);
        assert_eq!(numeric.key.as_deref(), Some("505874924095815700"));
    }

    #[test]
    fn control_messages_keyed_by_post_where_there_is_one() {
        let delete = record(
            r#"{"delete":{"status":{"id":1,"id_str":"1234","user_id":3,"user_id_str":"3"},"timestamp_ms":"1"}}"#,
        );
        assert_eq!(
            (delete.kind, delete.key.as_deref()),
            (Kind::Delete, Some("1234"))
        );
        let scrub = record(
            r#"{"scrub_geo":{"user_id":1,"user_id_str":"1","up_to_status_id":99,"up_to_status_id_str":"99"}}"#,
        );
        assert_eq!(
            (scrub.kind, scrub.key.as_deref()),
            (Kind::ScrubGeo, Some("99"))
        );
        let limit = record(r#"{"limit":{"track":121564}} "#);
        assert_eq!((limit.kind, limit.key.clone()), (Kind::Limit, None));
        assert_eq!(limit.destination(), Destination::Control);
        let withheld = record(
            r#"{"status_withheld":{"id":1234567890,"user_id":1,"withheld_in_countries":["DE"]}}"#,
        );
        assert_eq!(withheld.key.as_deref(), Some("1234567890"));
        assert_eq!(
            record(r#"{"disconnect":{"code":7,"stream_name":"x","reason":"admin logout"}}"#).kind,
            Kind::Disconnect
        );
        assert_eq!(
            record(r#"{"warning":{"code":"FALLING_BEHIND","percent_full":60}}"#).kind,
            Kind::Warning
        );
        assert_eq!(
            record(r#"{"user_withheld":{"id":1,"withheld_in_countries":["DE"]}}"#).kind,
            Kind::UserWithheld
        );
        assert_eq!(record(r#"{"friends":[1,2]}"#).kind, Kind::Friends);
        assert_eq!(record(r#"{"event":"favorite","source":{},"target":{},"target_object":{"id":1,"text":"x"}}"#).kind, Kind::Event);
    }

    #[test]
    fn v2_posts_and_errors() {
        let post =
            record(r#"{"data":{"id":"1377","text":"x"},"matching_rules":[{"id":1,"tag":null}]}"#);
        assert_eq!(
            (post.kind, post.key.as_deref()),
            (Kind::Tweet, Some("1377"))
        );
        let rt = record(
            r#"{"data":{"id":"9","text":"RT","referenced_tweets":[{"type":"retweeted","id":"1"}]}}"#,
        );
        assert_eq!(rt.kind, Kind::Retweet);
        let quote = record(
            r#"{"data":{"id":"9","text":"q","referenced_tweets":[{"type":"quoted","id":"1"}]}}"#,
        );
        assert_eq!(quote.kind, Kind::Tweet);
        let error = record(
            r#"{"errors":[{"title":"operational-disconnect","disconnect_type":"OperationalDisconnect"}]}"#,
        );
        assert_eq!(
            (error.kind, error.destination()),
            (Kind::StreamError, Destination::Control)
        );
    }

    #[test]
    fn bad_input_goes_to_deadletter_with_a_reason() {
        let truncated = record(r#"{"id_str":"1","text":"cut off mid-obj"#);
        assert_eq!(truncated.kind, Kind::Malformed);
        assert!(truncated
            .reason
            .as_deref()
            .unwrap_or_default()
            .starts_with("malformed json: EOF"));
        match route_line(b"{\"id\":1,\"text\":\"\xff\xfe\"}") {
            LineClass::Record(r) => assert_eq!(r.kind, Kind::Malformed),
            other => panic!("invalid utf-8 routed as {other:?}"),
        }
        let fragment = record(r#"  "id": 505874924095815700,"#);
        assert_eq!(
            fragment.kind,
            Kind::Malformed,
            "a pretty-printed fragment is not JSON"
        );
        // Every skipped value is validated too, and nothing may follow the document.
        for broken in [
            r#"{"id_str":"1","text":"t","user":{"a":[1,,2]}}"#,
            r#"{"id_str":"1","text":"t","junk":tru}"#,
            r#"{"id_str":"1","text":"t","junk":"a\qb"}"#,
            r#"{"id_str":"1","text":"t","n":01}"#,
            r#"{"id_str":"1","text":"t"} x"#,
        ] {
            let routed = record(broken);
            assert_eq!(routed.kind, Kind::Malformed, "{broken}");
            let reason = routed.reason.unwrap_or_default();
            assert!(
                reason.starts_with("malformed json: ") && !reason.contains('\n'),
                "{reason}"
            );
        }
        for unknown in [r#"[1,2]"#, r#"42"#, r#"{"hello":"world"}"#, r#"{"id":"x"}"#] {
            let routed = record(unknown);
            assert_eq!(routed.kind, Kind::Unknown, "{unknown}");
            assert_eq!(routed.destination(), Destination::DeadLetter);
            assert!(routed.reason.is_some());
        }
    }

    #[test]
    fn v2_rule_tags_are_kept() {
        let post = record(
            r#"{"data":{"id":"1","text":"x"},"matching_rules":[{"id":"5","tag":"tweet-pipeline:nba"},{"id":6,"tag":null}]}"#,
        );
        assert_eq!(post.rule_tags, vec!["tweet-pipeline:nba"]);
    }

    #[test]
    fn mastodon_events() {
        let update = route_mastodon_event(
            "update",
            br#"{"id":"109","content":"<p>hi</p>","reblog":null}"#,
        );
        assert_eq!(
            (update.kind, update.key.as_deref()),
            (Kind::Tweet, Some("109"))
        );
        let reblog = route_mastodon_event("update", br#"{"id":"110","reblog":{"id":"109"}}"#);
        assert_eq!(reblog.kind, Kind::Retweet);
        let edit = route_mastodon_event(
            "status.update",
            br#"{"id":"109","edited_at":"2022-11-21T00:00:00Z"}"#,
        );
        assert_eq!(
            (edit.kind, edit.destination()),
            (Kind::Edit, Destination::Tweets)
        );
        let delete = route_mastodon_event("delete", b"109");
        assert_eq!(
            (delete.kind, delete.key.as_deref()),
            (Kind::Delete, Some("109"))
        );
        assert_eq!(
            route_mastodon_event("notification", b"{}").kind,
            Kind::Event
        );
        let broken = route_mastodon_event("update", br#"tps://mastodon.social/@x","#);
        assert_eq!(broken.kind, Kind::Malformed);
        assert!(broken.reason.is_some());
    }

    /// The spool stores these codes on disk: changing one mislabels records spooled by an
    /// older build. Add new kinds with new codes; never edit this table.
    #[test]
    fn kind_codes_are_pinned() {
        let pinned = [
            (Kind::Tweet, 0),
            (Kind::Retweet, 1),
            (Kind::Edit, 2),
            (Kind::Delete, 3),
            (Kind::ScrubGeo, 4),
            (Kind::Limit, 5),
            (Kind::StatusWithheld, 6),
            (Kind::UserWithheld, 7),
            (Kind::Disconnect, 8),
            (Kind::Warning, 9),
            (Kind::Event, 10),
            (Kind::Friends, 11),
            (Kind::SiteControl, 12),
            (Kind::StreamError, 13),
            (Kind::Malformed, 14),
            (Kind::Unknown, 15),
            (Kind::Oversized, 16),
            (Kind::Post, 17),
            (Kind::Repost, 18),
            (Kind::Identity, 19),
            (Kind::Account, 20),
            (Kind::Compliance, 21),
        ];
        assert_eq!(pinned.len(), Kind::ALL.len(), "every kind is pinned");
        for (kind, code) in pinned {
            assert_eq!(kind.code(), code, "{kind:?}");
            assert_eq!(Kind::from_code(code), Some(kind));
        }
        assert_eq!(Kind::from_code(22), None);
        assert_eq!(Kind::from_code(u8::MAX), None);
    }

    #[test]
    fn per_destination_is_indexed_by_the_destination() {
        for (position, destination) in Destination::ALL.into_iter().enumerate() {
            assert_eq!(destination as usize, position, "{destination:?}");
        }
        let mut counts = PerDestination::<u64>::default();
        counts[Destination::Control] += 2;
        counts[Destination::Tweets] += 1;
        assert_eq!(counts[Destination::Control], 2);
        assert_eq!(counts.total(), 3);
        assert_eq!(
            serde_json::to_string(&counts).unwrap(),
            r#"{"tweets":1,"retweets":0,"control":2,"deadletter":0}"#
        );
        let back: PerDestination<u64> =
            serde_json::from_str(r#"{"deadletter":0,"control":2,"retweets":0,"tweets":1}"#)
                .unwrap();
        assert_eq!(back, counts);
        assert!(serde_json::from_str::<PerDestination<u64>>(r#"{"tweets":1}"#).is_err());
        assert!(serde_json::from_str::<PerDestination<u64>>(
            r#"{"tweets":1,"retweets":0,"control":2,"deadletter":0,"other":1}"#
        )
        .is_err());
        let names = PerDestination::from_fn(Destination::as_str);
        assert!(names
            .iter()
            .all(|(destination, name)| destination.as_str() == *name));
    }

    #[test]
    fn kind_names_round_trip() {
        for kind in Kind::ALL {
            assert_eq!(Kind::parse(kind.as_str()), Some(kind));
        }
        assert_eq!(Kind::parse("nonsense"), None);
    }
}
