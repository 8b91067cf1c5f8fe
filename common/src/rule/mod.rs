//! The one rule language of tweet-pipeline: a subset of the X API v2 filtered-stream rule
//! syntax, shared by the stream emulator (which matches X v2 rules server-side, as X does) and
//! the producer's Bluesky source (which matches the same rules client-side, on each post
//! record of the Jetstream firehose). Tokenizing, parsing, validation and matching against a
//! post's [`PostFields`].
//!
//! The subset ("Build a rule", X API v2 filtered stream integration guide; docs/rules.md has
//! examples for both networks):
//!
//! | syntax | matches |
//! |---|---|
//! | `word` | the keyword in the post text, case-insensitively, not inside a longer ASCII word (`ball` does not match `basketball`; non-ASCII keywords such as Japanese match as substrings) |
//! | `"quoted phrase"` | the phrase, same boundary rule |
//! | `#hashtag`, `@mention`, `$cashtag` | the token in the text, same boundary rule |
//! | `lang:xx` | one of the post's languages is `xx`, or `xx-…` (`lang:en` matches Bluesky's `en-US`); X: `data.lang`, Bluesky: `langs` |
//! | `is:retweet`, `is:reply`, `is:quote` | X: `referenced_tweets` has that type; Bluesky: a repost, a record with `reply`, an embedded record |
//! | `has:links`, `has:media` | X: `entities.urls`, `attachments.media_keys`; Bluesky: a link facet or external embed, an images or video embed |
//! | `from:user` | the author: X's username (from `includes.users`); on Bluesky a DID (a handle is resolved to its DID when the producer starts) |
//! | `a b` | both (AND binds tighter than `OR`, as on X) |
//! | `a OR b` | either (`OR` in capitals; a lower-case `or` is a keyword) |
//! | `-term`, `-(group)` | negation |
//! | `( … )` | grouping: parsed as real groups, not flattened |
//!
//! Validation: a rule must be non-empty, at most [`MAX_RULE_CHARS`] characters, have balanced
//! parentheses and quotes, use only the operators above, and contain at least one term that is
//! not negated (X rejects rules made of negations only). Any other `name:value` operator of X is
//! reported as unsupported, like X reports operators outside one's access level.

/// Longest accepted rule value, in characters: X's limit for rules at the Essential/Basic
/// access levels (X API v2 "POST /2/tweets/search/stream/rules" reference).
pub const MAX_RULE_CHARS: usize = 512;

/// What a rule is matched against: the searchable fields of one post (an X v2 post, prepared
/// once when the emulator loads its corpus; a Bluesky post record, prepared per event by the
/// producer).
#[derive(Debug, Clone, Default)]
pub struct PostFields {
    /// The post's text, lower-cased.
    pub text: String,
    /// The post's languages, lower-cased (X: `data.lang`, at most one; Bluesky: `langs`).
    pub langs: Vec<String>,
    /// The author, lower-cased: X's username from `includes.users`, or a Bluesky DID.
    pub author: Option<String>,
    /// `referenced_tweets` has a `retweeted` entry.
    pub is_retweet: bool,
    /// `referenced_tweets` has a `replied_to` entry.
    pub is_reply: bool,
    /// `referenced_tweets` has a `quoted` entry (Bluesky: the record embeds a record).
    pub is_quote: bool,
    /// The post links out (X: `entities.urls`; Bluesky: a link facet or an external embed).
    pub has_links: bool,
    /// The post carries media (X: `attachments.media_keys`; Bluesky: images or video).
    pub has_media: bool,
}

/// One leaf of a rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Term {
    /// A keyword, phrase, hashtag, mention or cashtag, lower-cased: matched in the text.
    Text(String),
    /// `lang:xx`.
    Lang(String),
    /// `is:retweet`.
    IsRetweet,
    /// `is:reply`.
    IsReply,
    /// `is:quote`.
    IsQuote,
    /// `has:links`.
    HasLinks,
    /// `has:media`.
    HasMedia,
    /// `from:username`, lower-cased, without `@`.
    From(String),
}

/// A parsed rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Expr {
    /// A single term.
    Term(Term),
    /// Negation (`-x`).
    Not(Box<Expr>),
    /// Every item matches (terms separated by spaces).
    And(Vec<Expr>),
    /// Any alternative matches (`OR`).
    Or(Vec<Expr>),
}

impl Expr {
    /// Whether the post matches.
    pub fn matches(&self, post: &PostFields) -> bool {
        match self {
            Expr::Term(term) => match term {
                Term::Text(needle) => contains_token(&post.text, needle),
                Term::Lang(lang) => post.langs.iter().any(|have| lang_matches(have, lang)),
                Term::IsRetweet => post.is_retweet,
                Term::IsReply => post.is_reply,
                Term::IsQuote => post.is_quote,
                Term::HasLinks => post.has_links,
                Term::HasMedia => post.has_media,
                Term::From(user) => post.author.as_deref() == Some(user.as_str()),
            },
            Expr::Not(inner) => !inner.matches(post),
            Expr::And(items) => items.iter().all(|item| item.matches(post)),
            Expr::Or(alternatives) => alternatives.iter().any(|alt| alt.matches(post)),
        }
    }

    /// Whether the expression can match without relying on negations alone.
    fn has_positive_term(&self) -> bool {
        match self {
            Expr::Term(_) => true,
            Expr::Not(_) => false,
            Expr::And(items) => items.iter().any(Expr::has_positive_term),
            Expr::Or(alternatives) => alternatives.iter().all(Expr::has_positive_term),
        }
    }
}

/// Whether a post language (lower-case BCP 47 tag) satisfies `lang:wanted`: the same tag, or
/// a tag whose primary subtag is `wanted` (`en-us` for `lang:en`).
fn lang_matches(have: &str, wanted: &str) -> bool {
    have == wanted
        || have
            .strip_prefix(wanted)
            .is_some_and(|rest| rest.starts_with('-'))
}

/// Whether `needle` (lower-case) occurs in `haystack` (lower-case) with no ASCII letter, digit
/// or `_` directly before or after it: X matches keywords against tokenized text. Shared with
/// the v1.1 `track` matcher.
pub fn contains_token(haystack: &str, needle: &str) -> bool {
    if needle.is_empty() {
        return false;
    }
    let is_word = |c: Option<char>| c.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_');
    let mut from = 0;
    while let Some(found) = haystack[from..].find(needle) {
        let start = from + found;
        let end = start + needle.len();
        let before = haystack[..start].chars().next_back();
        let after = haystack[end..].chars().next();
        let first = needle.chars().next();
        let last = needle.chars().next_back();
        // Only an ASCII word character at the needle's edge needs a boundary; `#tag` may follow
        // a letter's neighbour, and Japanese keywords have no spaces around them.
        let left_ok = !is_word(first) || !is_word(before);
        let right_ok = !is_word(last) || !is_word(after);
        if left_ok && right_ok {
            return true;
        }
        from = start + needle.chars().next().map_or(1, char::len_utf8);
    }
    false
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    Open,
    Close,
    Or,
    Negate,
    Word(String),
    Phrase(String),
}

fn tokenize(value: &str) -> Result<Vec<Token>, String> {
    let mut tokens = Vec::new();
    let mut chars = value.chars().peekable();
    while let Some(&c) = chars.peek() {
        match c {
            c if c.is_whitespace() => {
                chars.next();
            }
            '(' => {
                chars.next();
                tokens.push(Token::Open);
            }
            ')' => {
                chars.next();
                tokens.push(Token::Close);
            }
            '-' => {
                chars.next();
                match chars.peek() {
                    Some(next) if !next.is_whitespace() && *next != ')' => {
                        tokens.push(Token::Negate)
                    }
                    _ => return Err("a '-' must be directly followed by a term or group".into()),
                }
            }
            '"' => {
                chars.next();
                let mut phrase = String::new();
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') => match chars.next() {
                            Some(escaped) => phrase.push(escaped),
                            None => return Err("unbalanced quotes".into()),
                        },
                        Some(other) => phrase.push(other),
                        None => return Err("unbalanced quotes".into()),
                    }
                }
                if phrase.trim().is_empty() {
                    return Err("empty quoted phrase".into());
                }
                tokens.push(Token::Phrase(phrase));
            }
            _ => {
                let mut word = String::new();
                while let Some(&c) = chars.peek() {
                    if c.is_whitespace() || c == '(' || c == ')' || c == '"' {
                        break;
                    }
                    word.push(c);
                    chars.next();
                }
                tokens.push(if word == "OR" {
                    Token::Or
                } else {
                    Token::Word(word)
                });
            }
        }
    }
    Ok(tokens)
}

struct Parser {
    tokens: Vec<Token>,
    position: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.position)
    }

    fn next(&mut self) -> Option<Token> {
        let token = self.tokens.get(self.position).cloned();
        self.position += 1;
        token
    }

    fn or(&mut self) -> Result<Expr, String> {
        let mut alternatives = vec![self.and()?];
        while self.peek() == Some(&Token::Or) {
            self.next();
            alternatives.push(self.and()?);
        }
        Ok(if alternatives.len() == 1 {
            alternatives.remove(0)
        } else {
            Expr::Or(alternatives)
        })
    }

    fn and(&mut self) -> Result<Expr, String> {
        let mut items = Vec::new();
        while let Some(token) = self.peek() {
            if matches!(token, Token::Or | Token::Close) {
                break;
            }
            items.push(self.unary()?);
        }
        match items.len() {
            0 => Err("'OR' and ')' must follow a term, and groups must not be empty".into()),
            1 => Ok(items.remove(0)),
            _ => Ok(Expr::And(items)),
        }
    }

    fn unary(&mut self) -> Result<Expr, String> {
        if self.peek() == Some(&Token::Negate) {
            self.next();
            return Ok(Expr::Not(Box::new(self.primary()?)));
        }
        self.primary()
    }

    fn primary(&mut self) -> Result<Expr, String> {
        match self.next() {
            Some(Token::Open) => {
                let inner = self.or()?;
                match self.next() {
                    Some(Token::Close) => Ok(inner),
                    _ => Err("unbalanced parentheses".into()),
                }
            }
            Some(Token::Word(word)) => term(&word).map(Expr::Term),
            Some(Token::Phrase(phrase)) => Ok(Expr::Term(Term::Text(phrase.to_lowercase()))),
            Some(Token::Close) => Err("unbalanced parentheses".into()),
            Some(Token::Or) | Some(Token::Negate) | None => {
                Err("expected a term after 'OR' or '-'".into())
            }
        }
    }
}

fn term(word: &str) -> Result<Term, String> {
    if let Some((operator, argument)) = word.split_once(':') {
        let is_operator = !operator.is_empty()
            && operator
                .chars()
                .all(|c| c.is_ascii_alphabetic() || c == '_');
        if is_operator {
            if argument.is_empty() {
                return Err(format!("operator '{operator}:' needs a value"));
            }
            return match (operator, argument) {
                ("lang", lang) => Ok(Term::Lang(lang.to_lowercase())),
                ("is", "retweet") => Ok(Term::IsRetweet),
                ("is", "reply") => Ok(Term::IsReply),
                ("is", "quote") => Ok(Term::IsQuote),
                ("has", "links") => Ok(Term::HasLinks),
                ("has", "media") => Ok(Term::HasMedia),
                ("from", user) => Ok(Term::From(user.trim_start_matches('@').to_lowercase())),
                _ => Err(format!(
                    "Reference to invalid operator '{operator}:{argument}'; the supported subset is \
                     keywords, \"phrases\", #hashtags, @mentions, lang:, is:retweet, is:reply, \
                     is:quote, has:links, has:media, from:, OR, - and parentheses"
                )),
            };
        }
    }
    Ok(Term::Text(word.to_lowercase()))
}

/// Parses and validates a rule value.
///
/// # Errors
/// A list of human-readable problems (the `details` of an X `invalid-rules` error) when the
/// value is empty, longer than [`MAX_RULE_CHARS`] characters, unbalanced, uses an unsupported
/// operator or consists of negations only.
pub fn parse_rule(value: &str) -> Result<Expr, Vec<String>> {
    if value.trim().is_empty() {
        return Err(vec!["Rules must not be empty".into()]);
    }
    let chars = value.chars().count();
    if chars > MAX_RULE_CHARS {
        return Err(vec![format!(
            "Rule length is {chars}, which exceeds the maximum allowed rule length of {MAX_RULE_CHARS}"
        )]);
    }
    let tokens = tokenize(value).map_err(|problem| vec![problem])?;
    let mut parser = Parser {
        tokens,
        position: 0,
    };
    let expr = parser.or().map_err(|problem| vec![problem])?;
    if parser.position < parser.tokens.len() {
        return Err(vec!["unbalanced parentheses".into()]);
    }
    if !expr.has_positive_term() {
        return Err(vec![
            "Rules must contain a non-negation term (at least one positive term)".into(),
        ]);
    }
    Ok(expr)
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

    fn matches(rule: &str, text: &str) -> bool {
        parse_rule(rule).unwrap().matches(&post(text))
    }

    #[test]
    fn keywords_are_case_insensitive_tokens() {
        assert!(matches("basketball", "Basketball tonight!"));
        assert!(matches("basketball", "#Basketball"));
        assert!(!matches("ball", "basketball"));
        assert!(!matches("lakers", "lakersnation"));
        assert!(matches("東京", "今日は東京へ"));
    }

    #[test]
    fn or_and_and_precedence() {
        assert!(matches("basketball OR lakers", "go Lakers"));
        assert!(!matches("basketball lakers", "go Lakers"));
        assert!(matches("basketball lakers", "lakers play basketball"));
        // AND binds tighter: a OR (b c)
        assert!(matches("a OR b c", "a"));
        assert!(!matches("(a OR b) c", "a"));
        assert!(matches("(a OR b) c", "b c"));
        // a lower-case "or" is a keyword
        assert!(!matches("a or b", "a"));
    }

    #[test]
    fn phrases_hashtags_mentions_and_negation() {
        assert!(matches("\"hello world\"", "well, Hello World!"));
        assert!(!matches("\"hello world\"", "hello big world"));
        assert!(matches("#nba", "watching #NBA now"));
        assert!(!matches("#nba", "watching #NBAfinals now"));
        assert!(matches("@nba", "hi @NBA"));
        assert!(matches("game -boring", "a great game"));
        assert!(!matches("game -boring", "a boring game"));
        assert!(!matches("game -(boring OR dull)", "a dull game"));
    }

    #[test]
    fn operators() {
        let mut fields = post("RT @x: hello");
        fields.is_retweet = true;
        assert!(parse_rule("hello is:retweet").unwrap().matches(&fields));
        assert!(!parse_rule("hello -is:retweet").unwrap().matches(&fields));
        assert!(parse_rule("hello lang:en").unwrap().matches(&fields));
        assert!(!parse_rule("hello lang:ja").unwrap().matches(&fields));
        assert!(parse_rule("from:NBA").unwrap().matches(&fields));
        assert!(parse_rule("from:@nba hello").unwrap().matches(&fields));
        assert!(!parse_rule("has:links").unwrap().matches(&fields));
        fields.has_links = true;
        assert!(parse_rule("has:links -has:media").unwrap().matches(&fields));
        fields.has_media = true;
        assert!(!parse_rule("has:links -has:media").unwrap().matches(&fields));
        fields.langs = vec!["en-us".into(), "ja".into()];
        assert!(parse_rule("lang:en").unwrap().matches(&fields));
        assert!(parse_rule("lang:ja").unwrap().matches(&fields));
        assert!(!parse_rule("lang:e").unwrap().matches(&fields));
        assert!(!parse_rule("lang:us").unwrap().matches(&fields));
        // a colon inside a keyword is not an operator
        assert!(matches("12:30", "at 12:30 sharp"));
    }

    #[test]
    fn invalid_rules_are_reported() {
        assert!(parse_rule("").is_err());
        assert!(parse_rule("   ").is_err());
        assert!(parse_rule("(a OR b").is_err());
        assert!(parse_rule("a OR b)").is_err());
        assert!(parse_rule("\"open quote").is_err());
        assert!(parse_rule("a OR").is_err());
        assert!(parse_rule("OR a").is_err());
        assert!(parse_rule("()").is_err());
        assert!(parse_rule("-a").is_err());
        assert!(parse_rule("-a -b").is_err());
        assert!(parse_rule("has:geo cats").is_err());
        assert!(parse_rule("has:media").is_ok());
        assert!(parse_rule(&"a".repeat(MAX_RULE_CHARS)).is_ok());
        assert!(parse_rule(&"a".repeat(MAX_RULE_CHARS + 1)).is_err());
        assert!(parse_rule("cats -dogs").is_ok());
    }
}
