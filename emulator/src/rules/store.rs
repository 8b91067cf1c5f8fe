//! The rule store behind `GET`/`POST /2/tweets/search/stream/rules`: the current rules with
//! their ids and tags, add (with duplicate detection and dry runs), delete, and matching a
//! post against every rule. Open streams subscribe to its changes.

use std::sync::{PoisonError, RwLock};

use serde::Serialize;
use tokio::sync::watch;

use tweet_pipeline_common::rule::{parse_rule, Expr, PostFields};

/// A rule as the API shows it: `{"id","value","tag"}` (`tag` omitted when none was given).
#[derive(Debug, Clone, Serialize)]
pub struct Rule {
    /// Numeric string, increasing with each created rule.
    pub id: String,
    /// The rule text as submitted.
    pub value: String,
    /// The tag as submitted.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tag: Option<String>,
    #[serde(skip)]
    expr: Expr,
}

/// A rule to add: `{"value": "...", "tag": "..."}`.
#[derive(Debug, Clone, serde::Deserialize)]
pub struct NewRule {
    /// The rule text.
    pub value: String,
    /// Optional free-form tag.
    #[serde(default)]
    pub tag: Option<String>,
}

/// Why a rule was not created.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RuleRejection {
    /// A rule with the same value exists (its id).
    Duplicate {
        /// The id of the existing rule.
        id: String,
    },
    /// The value is not a valid rule.
    Invalid {
        /// What is wrong.
        details: Vec<String>,
    },
}

/// The outcome of an add request.
#[derive(Debug, Default)]
pub struct AddOutcome {
    /// Rules created (or, on a dry run, that would be created).
    pub created: Vec<Rule>,
    /// Rules not created, with the value and the reason.
    pub rejected: Vec<(String, RuleRejection)>,
}

/// A post's matching rules, as the `matching_rules` array entries `{"id","tag"}`.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct MatchingRule {
    /// The rule id.
    pub id: String,
    /// The rule tag, omitted when the rule has none.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tag: Option<String>,
}

#[derive(Debug)]
struct RuleSet {
    rules: Vec<Rule>,
    next_id: u64,
}

/// The current rules, shared by the rules endpoints and every open stream. Streams subscribe
/// to changes so that a rule added while nothing matched takes effect without reconnecting,
/// as on X.
#[derive(Debug)]
pub struct RuleStore {
    inner: RwLock<RuleSet>,
    changed: watch::Sender<u64>,
}

impl RuleStore {
    /// An empty store whose first rule id is `first_id` (ids then increase by one).
    pub fn new(first_id: u64) -> Self {
        Self {
            inner: RwLock::new(RuleSet {
                rules: Vec::new(),
                next_id: first_id,
            }),
            changed: watch::channel(0).0,
        }
    }

    /// A receiver that is notified whenever the rules change.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.changed.subscribe()
    }

    /// The rules, all or those whose id is in `ids`, in creation order.
    pub fn list(&self, ids: Option<&[String]>) -> Vec<Rule> {
        let set = self.inner.read().unwrap_or_else(PoisonError::into_inner);
        set.rules
            .iter()
            .filter(|rule| ids.is_none_or(|ids| ids.contains(&rule.id)))
            .cloned()
            .collect()
    }

    /// Validates and (unless `dry_run`) adds rules. A value equal to an existing rule's value,
    /// or to one created earlier in the same request, is a duplicate.
    pub fn add(&self, new_rules: Vec<NewRule>, dry_run: bool) -> AddOutcome {
        let mut set = self.inner.write().unwrap_or_else(PoisonError::into_inner);
        let mut outcome = AddOutcome::default();
        let mut next_id = set.next_id;
        for new in new_rules {
            let existing = set
                .rules
                .iter()
                .chain(outcome.created.iter())
                .find(|rule| rule.value == new.value);
            if let Some(existing) = existing {
                let id = existing.id.clone();
                outcome
                    .rejected
                    .push((new.value, RuleRejection::Duplicate { id }));
                continue;
            }
            match parse_rule(&new.value) {
                Ok(expr) => {
                    outcome.created.push(Rule {
                        id: next_id.to_string(),
                        value: new.value,
                        tag: new.tag,
                        expr,
                    });
                    next_id += 1;
                }
                Err(details) => outcome
                    .rejected
                    .push((new.value, RuleRejection::Invalid { details })),
            }
        }
        if !dry_run && !outcome.created.is_empty() {
            set.next_id = next_id;
            set.rules.extend(outcome.created.iter().cloned());
            drop(set);
            self.changed.send_modify(|generation| *generation += 1);
        }
        outcome
    }

    /// Deletes the rules with these ids (all rules when `ids` is `None`); returns
    /// `(deleted, not_deleted)`. A dry run only counts.
    pub fn delete(&self, ids: Option<&[String]>, dry_run: bool) -> (usize, usize) {
        let mut set = self.inner.write().unwrap_or_else(PoisonError::into_inner);
        let (deleted, not_deleted) = match ids {
            None => (set.rules.len(), 0),
            Some(ids) => {
                let found = ids
                    .iter()
                    .filter(|id| set.rules.iter().any(|rule| &rule.id == *id))
                    .count();
                (found, ids.len() - found)
            }
        };
        if !dry_run && deleted > 0 {
            set.rules
                .retain(|rule| ids.is_some_and(|ids| !ids.contains(&rule.id)));
            drop(set);
            self.changed.send_modify(|generation| *generation += 1);
        }
        (deleted, not_deleted)
    }

    /// The rules this post matches (empty when none).
    pub fn matching(&self, post: &PostFields) -> Vec<MatchingRule> {
        let set = self.inner.read().unwrap_or_else(PoisonError::into_inner);
        set.rules
            .iter()
            .filter(|rule| rule.expr.matches(post))
            .map(|rule| MatchingRule {
                id: rule.id.clone(),
                tag: rule.tag.clone(),
            })
            .collect()
    }

    /// Whether there are no rules.
    pub fn is_empty(&self) -> bool {
        self.inner
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .rules
            .is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn post(text: &str) -> PostFields {
        PostFields {
            text: text.to_lowercase(),
            langs: vec!["en".into()],
            author: Some("nba".into()),
            ..PostFields::default()
        }
    }

    #[test]
    fn store_adds_with_increasing_ids_and_detects_duplicates() {
        let store = RuleStore::new(100);
        let outcome = store.add(
            vec![
                NewRule {
                    value: "cats".into(),
                    tag: Some("t".into()),
                },
                NewRule {
                    value: "cats".into(),
                    tag: None,
                },
                NewRule {
                    value: "(dogs".into(),
                    tag: None,
                },
                NewRule {
                    value: "dogs".into(),
                    tag: None,
                },
            ],
            false,
        );
        let ids: Vec<_> = outcome.created.iter().map(|r| r.id.as_str()).collect();
        assert_eq!(ids, ["100", "101"]);
        assert_eq!(outcome.rejected.len(), 2);
        assert_eq!(
            outcome.rejected[0].1,
            RuleRejection::Duplicate { id: "100".into() }
        );
        assert!(matches!(
            outcome.rejected[1].1,
            RuleRejection::Invalid { .. }
        ));
        // dry run: validated, nothing stored
        let dry = store.add(
            vec![NewRule {
                value: "birds".into(),
                tag: None,
            }],
            true,
        );
        assert_eq!(dry.created.len(), 1);
        assert_eq!(store.list(None).len(), 2);
        let matched = store.matching(&post("Cats and dogs"));
        assert_eq!(
            matched,
            vec![
                MatchingRule {
                    id: "100".into(),
                    tag: Some("t".into())
                },
                MatchingRule {
                    id: "101".into(),
                    tag: None
                }
            ]
        );
        assert_eq!(
            store.delete(Some(&["100".into(), "999".into()]), true),
            (1, 1)
        );
        assert_eq!(store.list(None).len(), 2);
        assert_eq!(
            store.delete(Some(&["100".into(), "999".into()]), false),
            (1, 1)
        );
        assert_eq!(store.list(None).len(), 1);
        assert_eq!(store.delete(None, false), (1, 0));
        assert!(store.is_empty());
    }

    #[test]
    fn store_changes_notify_subscribers() {
        let store = RuleStore::new(1);
        let mut changes = store.subscribe();
        assert!(!changes.has_changed().unwrap());
        store.add(
            vec![NewRule {
                value: "x".into(),
                tag: None,
            }],
            false,
        );
        assert!(changes.has_changed().unwrap());
        changes.mark_unchanged();
        store.add(
            vec![NewRule {
                value: "y".into(),
                tag: None,
            }],
            true,
        );
        assert!(!changes.has_changed().unwrap());
    }
}
