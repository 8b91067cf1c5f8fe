//! X API v2 filtered-stream rules: the rule store behind `GET`/`POST /2/tweets/search/stream/rules`
//! ([`store`]). The rule language itself (parsing, validation, matching) is
//! [`tweet_pipeline_common::rule`], shared with the producer's Bluesky source.

pub mod store;

pub use store::{NewRule, RuleRejection, RuleStore};
pub use tweet_pipeline_common::rule::{contains_token, PostFields};
