//! X API v2 filtered stream: rule sync and the stream request.
//!
//! Sources: X API v2 "Filtered stream" integration guide and API reference for
//! `GET /2/tweets/search/stream`, `GET /2/tweets/search/stream/rules` and
//! `POST /2/tweets/search/stream/rules` (app-only bearer token; `dry_run=true` validates without
//! changing anything; duplicate rule values are refused with `DuplicateRule`).
//!
//! Rule sync is by difference and by ownership: the producer owns exactly the rules whose tag
//! starts with its prefix (default `tweet-pipeline:`). It never deletes any other rule, so
//! several applications (or several producers with different prefixes) can share one app's
//! rule set. It validates the rules to add with `dry_run=true` first, then deletes its stale
//! rules and adds the missing ones; run twice with the same flags, the second run changes
//! nothing.

use std::time::Duration;

use anyhow::{bail, Context as _};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tweet_pipeline_common::secret::Secret;

use crate::source::live::{without_url, Framing, StreamApi};

/// Default `tweet.fields`: what routing and analysis read (text, language, time, author,
/// references) plus `note_tweet` for posts over 280 characters.
pub const DEFAULT_TWEET_FIELDS: &str =
    "created_at,lang,author_id,referenced_tweets,entities,conversation_id,note_tweet";
/// Default `expansions`: the author and the referenced posts (a retweet's original is
/// analysed instead of the retweet), with their authors.
pub const DEFAULT_EXPANSIONS: &str =
    "author_id,referenced_tweets.id,referenced_tweets.id.author_id";
/// Default `user.fields`.
pub const DEFAULT_USER_FIELDS: &str = "username,name";
/// The v2 stream sends a keep-alive every 20 s ("Handling disconnections"); tweepy found the
/// keep-alive often a little late and waits 21 s. 30 s leaves room for one late keep-alive.
pub const DEFAULT_STALL_TIMEOUT: Duration = Duration::from_secs(30);

/// One filtered-stream rule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rule {
    /// Server-assigned id (absent in an add request).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// The rule expression, e.g. `basketball lang:en -is:retweet`.
    pub value: String,
    /// Free-form tag, echoed in `matching_rules`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tag: Option<String>,
}

/// The v2 configuration.
#[derive(Debug, Clone)]
pub struct XV2 {
    /// API root, e.g. `https://api.x.com` (or the local emulator).
    pub base_url: String,
    /// App-only bearer token.
    pub bearer: Secret,
    /// The rules this producer wants (tags already prefixed).
    pub rules: Vec<Rule>,
    /// Tag prefix of the rules this producer owns.
    pub tag_prefix: String,
    /// `tweet.fields` query parameter.
    pub tweet_fields: String,
    /// `expansions` query parameter.
    pub expansions: String,
    /// `user.fields` query parameter.
    pub user_fields: String,
    /// Stall timeout.
    pub stall_timeout: Duration,
}

/// What a rule sync changed.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct SyncOutcome {
    /// Rules added.
    pub added: usize,
    /// Owned rules deleted (stale).
    pub deleted: usize,
    /// Rules of other owners left alone.
    pub foreign: usize,
}

#[derive(Debug, Deserialize)]
struct RulesResponse {
    #[serde(default)]
    data: Vec<Rule>,
    #[serde(default)]
    meta: Value,
    #[serde(default)]
    errors: Vec<Value>,
}

impl XV2 {
    fn rules_url(&self) -> String {
        format!(
            "{}/2/tweets/search/stream/rules",
            self.base_url.trim_end_matches('/')
        )
    }

    async fn get_rules(&self, client: &reqwest::Client) -> anyhow::Result<Vec<Rule>> {
        let response = client
            .get(self.rules_url())
            .bearer_auth(self.bearer.expose())
            .send()
            .await
            .map_err(|e| {
                anyhow::anyhow!(
                    "cannot reach the X API at {}: {}",
                    self.base_url,
                    without_url(&e)
                )
            })?;
        let rules: RulesResponse = check(response, "listing the stream rules").await?;
        Ok(rules.data)
    }

    async fn post_rules(
        &self,
        client: &reqwest::Client,
        body: &Value,
        dry_run: bool,
    ) -> anyhow::Result<RulesResponse> {
        let mut request = client
            .post(self.rules_url())
            .bearer_auth(self.bearer.expose())
            .json(body);
        if dry_run {
            request = request.query(&[("dry_run", "true")]);
        }
        let response = request.send().await.map_err(|e| {
            anyhow::anyhow!(
                "cannot reach the X API at {}: {}",
                self.base_url,
                without_url(&e)
            )
        })?;
        check(response, "changing the stream rules").await
    }

    /// What [`XV2::sync_rules`] would change, changing nothing (`tweet-producer rules
    /// --dry-run`).
    ///
    /// # Errors
    /// When the rules cannot be read from the X API.
    pub async fn dry_run(
        &self,
        client: &reqwest::Client,
    ) -> anyhow::Result<crate::source::x_v2_dry_run::RulesDryRun> {
        let existing = self.get_rules(client).await?;
        let plan = plan_sync(&existing, &self.rules, &self.tag_prefix);
        Ok(crate::source::x_v2_dry_run::report(
            &existing,
            &plan.add,
            &plan.delete,
            plan.foreign,
        ))
    }

    /// Makes the owned rules equal to `self.rules`, leaving every other rule alone.
    ///
    /// # Errors
    /// When the API is unreachable, refuses the token, or finds a rule invalid (the message
    /// quotes the API's reason).
    pub async fn sync_rules(&self, client: &reqwest::Client) -> anyhow::Result<SyncOutcome> {
        let existing = self.get_rules(client).await?;
        let plan = plan_sync(&existing, &self.rules, &self.tag_prefix);
        if !plan.add.is_empty() {
            let body = serde_json::json!({ "add": plan.add });
            let validation = self.post_rules(client, &body, true).await?;
            let invalid: Vec<&Value> = validation
                .errors
                .iter()
                .filter(|e| e.get("title").and_then(Value::as_str) != Some("DuplicateRule"))
                .collect();
            if !invalid.is_empty() {
                bail!(
                    "the X API rejected the rules (dry run, nothing changed): {}",
                    serde_json::to_string(&invalid).unwrap_or_default()
                );
            }
        }
        if !plan.delete.is_empty() {
            let body = serde_json::json!({ "delete": { "ids": plan.delete } });
            self.post_rules(client, &body, false).await?;
        }
        if !plan.add.is_empty() {
            let body = serde_json::json!({ "add": plan.add });
            let added = self.post_rules(client, &body, false).await?;
            for error in &added.errors {
                tracing::warn!(error = %error, "rule not created (a rule with the same value exists under another tag: it keeps matching)");
            }
            tracing::debug!(meta = %added.meta, "rules added");
        }
        let outcome = SyncOutcome {
            added: plan.add.len(),
            deleted: plan.delete.len(),
            foreign: plan.foreign,
        };
        tracing::info!(
            added = outcome.added,
            deleted = outcome.deleted,
            foreign_rules_kept = outcome.foreign,
            "stream rules in sync"
        );
        Ok(outcome)
    }
}

/// Rules to add and rule ids to delete.
#[derive(Debug, Default, PartialEq, Eq)]
struct SyncPlan {
    add: Vec<Rule>,
    delete: Vec<String>,
    foreign: usize,
}

fn plan_sync(existing: &[Rule], wanted: &[Rule], prefix: &str) -> SyncPlan {
    let owned = |rule: &Rule| {
        rule.tag
            .as_deref()
            .is_some_and(|tag| tag.starts_with(prefix))
    };
    let same = |a: &Rule, b: &Rule| a.value == b.value && a.tag == b.tag;
    let mut plan = SyncPlan {
        foreign: existing.iter().filter(|r| !owned(r)).count(),
        ..SyncPlan::default()
    };
    for rule in existing.iter().filter(|r| owned(r)) {
        if !wanted.iter().any(|w| same(w, rule)) {
            plan.delete.extend(rule.id.clone());
        }
    }
    for rule in wanted {
        if !existing.iter().any(|e| owned(e) && same(e, rule))
            && !plan.add.iter().any(|a| same(a, rule))
        {
            plan.add.push(Rule {
                id: None,
                value: rule.value.clone(),
                tag: rule.tag.clone(),
            });
        }
    }
    plan
}

/// Deserializes a 2xx JSON answer, or turns an error answer into a message.
async fn check<T: serde::de::DeserializeOwned>(
    response: reqwest::Response,
    what: &str,
) -> anyhow::Result<T> {
    let status = response.status();
    let body = response
        .text()
        .await
        .context("reading the X API's answer")?;
    match status.as_u16() {
        200..=299 => serde_json::from_str(&body).with_context(|| format!("{what}: unexpected answer from the X API")),
        401 | 403 => bail!("{what}: the X API refused the bearer token ({status}); check X_BEARER_TOKEN (an app-only bearer token of an app in a Project)"),
        _ => bail!("{what}: the X API answered {status}: {}", body.chars().take(500).collect::<String>()),
    }
}

/// Turns `--track` terms and `--rule`/`--tag` pairs into rules with prefixed tags.
pub fn desired_rules(
    track: &[String],
    rules: &[String],
    tags: &[String],
    prefix: &str,
) -> Vec<Rule> {
    let tracked = track.iter().map(|term| Rule {
        id: None,
        value: term.clone(),
        tag: Some(format!("{prefix}track:{term}")),
    });
    let explicit = rules.iter().enumerate().map(|(i, value)| Rule {
        id: None,
        value: value.clone(),
        tag: Some(match tags.get(i) {
            Some(tag) => format!("{prefix}{tag}"),
            None => format!("{prefix}rule-{}", i + 1),
        }),
    });
    tracked.chain(explicit).collect()
}

impl StreamApi for XV2 {
    fn label(&self) -> &'static str {
        "x_v2"
    }

    fn source(&self) -> String {
        "x:v2".to_owned()
    }

    fn framing(&self) -> Framing {
        Framing::Lines
    }

    fn stall_timeout(&self) -> Duration {
        self.stall_timeout
    }

    fn request(&self, client: &reqwest::Client) -> anyhow::Result<reqwest::RequestBuilder> {
        let url = format!(
            "{}/2/tweets/search/stream",
            self.base_url.trim_end_matches('/')
        );
        Ok(client.get(url).bearer_auth(self.bearer.expose()).query(&[
            ("tweet.fields", self.tweet_fields.as_str()),
            ("expansions", self.expansions.as_str()),
            ("user.fields", self.user_fields.as_str()),
        ]))
    }

    fn unauthorized_hint(&self) -> &'static str {
        "check X_BEARER_TOKEN (an app-only bearer token of an app attached to a Project)"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(id: &str, value: &str, tag: Option<&str>) -> Rule {
        Rule {
            id: Some(id.to_owned()),
            value: value.to_owned(),
            tag: tag.map(str::to_owned),
        }
    }

    #[test]
    fn desired_rules_carry_the_prefix() {
        let rules = desired_rules(
            &["basketball".into()],
            &["lakers lang:en".into(), "nba".into()],
            &["la".into()],
            "tp:",
        );
        let tags: Vec<_> = rules.iter().map(|r| r.tag.clone().unwrap()).collect();
        assert_eq!(tags, vec!["tp:track:basketball", "tp:la", "tp:rule-2"]);
    }

    #[test]
    fn sync_touches_only_owned_rules_and_is_idempotent() {
        let wanted = desired_rules(&["basketball".into(), "lakers".into()], &[], &[], "tp:");
        let existing = vec![
            rule("1", "cats", Some("someone-else")),
            rule("2", "dogs", None),
            rule("3", "basketball", Some("tp:track:basketball")),
            rule("4", "football", Some("tp:track:football")),
        ];
        let plan = plan_sync(&existing, &wanted, "tp:");
        assert_eq!(plan.delete, vec!["4".to_owned()]);
        assert_eq!(plan.add.len(), 1);
        assert_eq!(plan.add[0].value, "lakers");
        assert_eq!(plan.foreign, 2);
        // After applying the plan, a second sync changes nothing.
        let after = vec![
            rule("1", "cats", Some("someone-else")),
            rule("2", "dogs", None),
            rule("3", "basketball", Some("tp:track:basketball")),
            rule("5", "lakers", Some("tp:track:lakers")),
        ];
        assert_eq!(
            plan_sync(&after, &wanted, "tp:"),
            SyncPlan {
                foreign: 2,
                ..SyncPlan::default()
            }
        );
    }
}
