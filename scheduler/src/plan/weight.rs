//! The weighted length of a post's text, by X's counting rules: twitter-text's configuration v3
//! (twitter-text `config/v3.json`: `maxWeightedTweetLength` 280, `scale` 100, `defaultWeight`
//! 200, `transformedURLLength` 23, `emojiParsingEnabled` true, and the ranges below with
//! weight 100), applied as twitter-text's `parseTweet` does: the text is NFC-normalised, every
//! URL counts 23, every emoji sequence counts 2, and every other code point counts 1 when it
//! lies in one of the light ranges (Latin, Greek, Cyrillic, ..., general punctuation) and 2
//! otherwise (CJK, most symbols).
//!
//! No maintained Rust implementation of twitter-text exists (the `twitter-text` crate was last
//! released in 2019), so this is a small implementation of those rules with two documented
//! simplifications: a URL is a whitespace-delimited token starting with `http://` or
//! `https://` (twitter-text also links bare domains such as `example.com`, which are counted
//! here by their characters: longer than 23 only when the domain is), and emoji sequences are
//! recognised by code point ranges (an emoji followed by variation selectors, skin tones,
//! keycaps, tags or ZWJ-joined emoji; regional-indicator pairs) instead of the Unicode emoji
//! regular expression.

use tweet_pipeline_common::emoji::{is_emoji, is_emoji_modifier, ZERO_WIDTH_JOINER};
use unicode_normalization::UnicodeNormalization as _;

/// The most weighted characters in a post (`maxWeightedTweetLength`).
pub const MAX_WEIGHTED_LENGTH: usize = 280;
/// What a URL counts, whatever its length (`transformedURLLength`: t.co links are 23).
pub const URL_WEIGHT: usize = 23;

/// Code point ranges that weigh 1 (`ranges` of config v3, inclusive; everything else weighs 2).
const LIGHT_RANGES: [(u32, u32); 4] = [(0, 4351), (8192, 8205), (8208, 8223), (8242, 8247)];

/// The weighted length of `text` (see the module docs).
pub fn weighted_length(text: &str) -> usize {
    let text: String = text.nfc().collect();
    let mut total = 0;
    let mut rest = text.as_str();
    while !rest.is_empty() {
        let word_end = rest.find(char::is_whitespace).unwrap_or(rest.len());
        let (word, after) = rest.split_at(word_end);
        if let Some(url_len) = url_prefix(word) {
            total += URL_WEIGHT + chars_weight(&word[url_len..]);
        } else {
            total += chars_weight(word);
        }
        let space_end = after
            .find(|c: char| !c.is_whitespace())
            .unwrap_or(after.len());
        total += chars_weight(&after[..space_end]);
        rest = &after[space_end..];
    }
    total
}

/// The byte length of the URL at the start of `word` (without trailing punctuation), if any.
fn url_prefix(word: &str) -> Option<usize> {
    let lower = word.get(..8).unwrap_or(word).to_ascii_lowercase();
    let scheme = if lower.starts_with("https://") {
        8
    } else if lower.starts_with("http://") {
        7
    } else {
        return None;
    };
    let trimmed = word.trim_end_matches(['.', ',', ';', ':', '!', '?', ')', '"', '\'']);
    (trimmed.len() > scheme).then_some(trimmed.len())
}

fn chars_weight(text: &str) -> usize {
    let chars: Vec<char> = text.chars().collect();
    let mut total = 0;
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i] as u32;
        if is_regional_indicator(c)
            && chars
                .get(i + 1)
                .is_some_and(|n| is_regional_indicator(*n as u32))
        {
            total += 2;
            i += 2;
        } else if is_emoji(chars[i]) {
            total += 2;
            i += 1;
            // The rest of the sequence is part of the same emoji.
            while let Some(&next) = chars.get(i) {
                if is_emoji_modifier(next) {
                    i += 1;
                } else if next == ZERO_WIDTH_JOINER
                    && chars.get(i + 1).is_some_and(|n| is_emoji(*n))
                {
                    i += 2;
                } else {
                    break;
                }
            }
        } else {
            total += if LIGHT_RANGES.iter().any(|(lo, hi)| (*lo..=*hi).contains(&c)) {
                1
            } else {
                2
            };
            i += 1;
        }
    }
    total
}

fn is_regional_indicator(c: u32) -> bool {
    (0x1F1E6..=0x1F1FF).contains(&c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latin_counts_one_cjk_two() {
        assert_eq!(weighted_length("hello world"), 11);
        assert_eq!(weighted_length("café"), 4);
        // Decomposed e + combining acute is NFC-normalised to one code point first.
        assert_eq!(weighted_length("cafe\u{301}"), 4);
        assert_eq!(weighted_length("日本語"), 6);
        assert_eq!(weighted_length(&"あ".repeat(140)), 280);
        assert_eq!(weighted_length(&"a".repeat(281)), 281);
    }

    #[test]
    fn urls_count_23() {
        let long = format!("https://example.com/{}", "x".repeat(200));
        assert_eq!(weighted_length(&long), 23);
        assert_eq!(weighted_length("see http://a.io/b."), 4 + 23 + 1);
        assert_eq!(weighted_length("https://"), 8);
    }

    #[test]
    fn emoji_sequences_count_two() {
        assert_eq!(weighted_length("😀"), 2);
        // Family: man ZWJ woman ZWJ girl.
        assert_eq!(weighted_length("👨\u{200D}👩\u{200D}👧"), 2);
        // Thumbs up with a skin tone.
        assert_eq!(weighted_length("👍🏽"), 2);
        // A flag (two regional indicators).
        assert_eq!(weighted_length("🇫🇷"), 2);
        assert_eq!(weighted_length("ok 👍"), 5);
    }
}
