//! `tweet-producer rules --dry-run`: what a v2 rule sync with the current flags would change,
//! without changing anything, with each rule's length against X's limit and the rule count
//! against X's (X API v2 filtered stream, pay-per-use limits: 1,024 characters per rule,
//! 1,000 rules per app).

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::source::x_v2::Rule;

/// Longest rule value on pay-per-use, characters.
pub const MAX_RULE_CHARS: usize = 1024;
/// Most rules per app on pay-per-use.
pub const MAX_RULES: usize = 1000;

/// One rule in the dry run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlannedRule {
    /// The rule id (rules to delete; none for rules to add).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// The rule value.
    pub value: String,
    /// Its tag.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tag: Option<String>,
    /// Its length in characters (Unicode scalar values).
    pub chars: usize,
    /// Whether it is longer than [`MAX_RULE_CHARS`] (X would refuse it).
    pub too_long: bool,
}

impl PlannedRule {
    fn new(rule: &Rule) -> Self {
        let chars = rule.value.chars().count();
        Self {
            id: rule.id.clone(),
            value: rule.value.clone(),
            tag: rule.tag.clone(),
            chars,
            too_long: chars > MAX_RULE_CHARS,
        }
    }
}

/// The dry run's report (`--summary json` prints it as one JSON object):
/// `{"add":[...],"delete":[...],"kept":N,"foreign":N,"rules_after":N,"max_rules":1000,
/// "max_rule_chars":1024,"over_limits":false}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RulesDryRun {
    /// Rules the sync would add.
    pub add: Vec<PlannedRule>,
    /// Owned rules the sync would delete.
    pub delete: Vec<PlannedRule>,
    /// Owned rules already in place.
    pub kept: usize,
    /// Rules of other owners (left alone, but counted against the limit).
    pub foreign: usize,
    /// Rules on the app after the sync.
    pub rules_after: usize,
    /// [`MAX_RULES`].
    pub max_rules: usize,
    /// [`MAX_RULE_CHARS`].
    pub max_rule_chars: usize,
    /// Whether a rule is too long or the count is over [`MAX_RULES`].
    pub over_limits: bool,
}

/// The report for `existing` rules of the app, the rules the sync would `add`, the ids it
/// would `delete` and the `foreign` count.
pub fn report(existing: &[Rule], add: &[Rule], delete: &[String], foreign: usize) -> RulesDryRun {
    let deleted: Vec<PlannedRule> = existing
        .iter()
        .filter(|r| r.id.as_ref().is_some_and(|id| delete.contains(id)))
        .map(PlannedRule::new)
        .collect();
    let add: Vec<PlannedRule> = add.iter().map(PlannedRule::new).collect();
    let rules_after = existing.len() - deleted.len() + add.len();
    let over_limits = rules_after > MAX_RULES || add.iter().any(|r| r.too_long);
    RulesDryRun {
        kept: existing.len() - deleted.len() - foreign,
        add,
        delete: deleted,
        foreign,
        rules_after,
        max_rules: MAX_RULES,
        max_rule_chars: MAX_RULE_CHARS,
        over_limits,
    }
}

impl fmt::Display for RulesDryRun {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "rule sync, dry run (nothing changed)")?;
        let line = |f: &mut fmt::Formatter<'_>, sign: &str, rule: &PlannedRule| {
            let flag = if rule.too_long { "  TOO LONG" } else { "" };
            writeln!(
                f,
                "  {sign} {:>5}/{MAX_RULE_CHARS} chars  {}  [{}]{flag}",
                rule.chars,
                rule.value,
                rule.tag.as_deref().unwrap_or("")
            )
        };
        for rule in &self.add {
            line(f, "+", rule)?;
        }
        for rule in &self.delete {
            line(f, "-", rule)?;
        }
        writeln!(
            f,
            "  rules after the sync: {}/{MAX_RULES} ({} kept, {} of other owners){}",
            self.rules_after,
            self.kept,
            self.foreign,
            if self.rules_after > MAX_RULES {
                "  OVER THE LIMIT"
            } else {
                ""
            }
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(id: Option<&str>, value: &str, tag: &str) -> Rule {
        Rule {
            id: id.map(str::to_owned),
            value: value.to_owned(),
            tag: Some(tag.to_owned()),
        }
    }

    #[test]
    fn lengths_and_counts_are_checked_against_x_limits() {
        let existing = vec![
            rule(Some("1"), "old", "tweet-pipeline:old"),
            rule(Some("2"), "cats", "tweet-pipeline:cats"),
            rule(Some("3"), "theirs", "other:x"),
        ];
        let long = "é".repeat(MAX_RULE_CHARS + 1);
        let add = vec![
            rule(None, "dogs", "tweet-pipeline:dogs"),
            rule(None, &long, "tweet-pipeline:long"),
        ];
        let report = report(&existing, &add, &["1".to_owned()], 1);
        assert_eq!(report.delete.len(), 1);
        assert_eq!(report.delete[0].value, "old");
        assert_eq!((report.kept, report.foreign, report.rules_after), (1, 1, 4));
        assert_eq!(
            report.add[1].chars,
            MAX_RULE_CHARS + 1,
            "characters, not bytes"
        );
        assert!(report.add[1].too_long && !report.add[0].too_long);
        assert!(report.over_limits);
        let text = report.to_string();
        assert!(text.contains("+     4/1024 chars  dogs"), "{text}");
        assert!(text.contains("rules after the sync: 4/1000"), "{text}");
    }

    #[test]
    fn the_rule_count_limit_is_1000() {
        let existing: Vec<Rule> = (0..1000)
            .map(|i| rule(Some(&i.to_string()), "x", "other:x"))
            .collect();
        let add = vec![rule(None, "one more", "tweet-pipeline:m")];
        let report = report(&existing, &add, &[], 1000);
        assert_eq!(report.rules_after, 1001);
        assert!(report.over_limits);
    }
}
