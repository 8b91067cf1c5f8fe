//! X API v2 filtered-stream rules: the rule language ([`grammar`]: parsing, validation,
//! matching) and the rule store behind `GET`/`POST /2/tweets/search/stream/rules`
//! ([`store`]).

pub mod grammar;
pub mod store;

pub use grammar::{contains_token, PostFields};
pub use store::{NewRule, RuleRejection, RuleStore};
