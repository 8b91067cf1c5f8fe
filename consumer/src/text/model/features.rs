//! Features of the trained classifiers: hashed word 1–2-grams and character n-grams of a
//! normalised text (no `RT @user:` prefix, @mentions or links, `#` dropped, lowercased), each
//! feature a bucket index in `[0, 2^bucket_bits)`.

use super::super::clean::text_for_detection;

/// Which features a model uses (stored in its file header).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FeatureConfig {
    /// log2 of the bucket count (the hashed feature space), 10..=24.
    pub bucket_bits: u8,
    /// Word n-grams up to this length (1 = unigrams, 2 = uni- and bigrams).
    pub word_ngrams: u8,
    /// Shortest character n-gram (inside `<word>`), 0 = none.
    pub char_min: u8,
    /// Longest character n-gram.
    pub char_max: u8,
    /// Also emit every feature conjoined with the post's language (a pooled multilingual
    /// model whose weights can differ per language).
    pub language_conjoined: bool,
    /// English texts also carry VADER's scores as words ([`vader_words`]), which the caller
    /// appends before [`extract`] (the model itself does not run VADER).
    pub vader_bins: bool,
}

/// VADER's compound (9 bins over [-1, 1]) and pos/neg shares (5 bins over [0, 1]) as three
/// words that no tweet contains, appended to an English text for a model with
/// [`FeatureConfig::vader_bins`]: the lexicon then informs the linear model (SemEval-2017
/// macro recall +0.025 in the tuning of issue 14).
pub fn vader_words(sentiment: &crate::text::Sentiment) -> String {
    let compound = ((sentiment.compound.clamp(-1.0, 1.0) + 1.0) * 4.0).round() as i64;
    let pos = (sentiment.pos.clamp(0.0, 1.0) * 4.0).round() as i64;
    let neg = (sentiment.neg.clamp(0.0, 1.0) * 4.0).round() as i64;
    format!(" zqvc{compound} zqvp{pos} zqvn{neg}")
}

/// FNV-1a 64 over `bytes`, starting from `seed` (stable across platforms and releases, so a
/// model file means the same everywhere).
fn fnv1a(seed: u64, bytes: &[u8]) -> u64 {
    let mut h = 0xcbf2_9ce4_8422_2325u64 ^ seed;
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// A final avalanche (SplitMix64's), so that the low bits used as a bucket are well mixed.
fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

const SEED_WORD: u64 = 1;
const SEED_BIGRAM: u64 = 2;
const SEED_CHAR: u64 = 3;
const SEED_LANGUAGE: u64 = 4;

/// The words of `text` as the models see them: [`text_for_detection`] (no retweet prefix,
/// mentions, links or `#`), lowercased, cut into runs of letters/digits (with inner `'`) and
/// single other symbols (punctuation, emoji), which carry sentiment.
pub fn tokens(text: &str) -> Vec<String> {
    tokens_of_cleaned(&text_for_detection(text))
}

/// [`tokens`] of a text [`text_for_detection`] has already cleaned.
pub fn tokens_of_cleaned(cleaned: &str) -> Vec<String> {
    let cleaned = cleaned.to_lowercase();
    let mut out = Vec::new();
    let mut word = String::new();
    for c in cleaned.chars() {
        if c.is_alphanumeric() || (c == '\'' && !word.is_empty()) || is_combining(c) {
            word.push(c);
            continue;
        }
        if !word.is_empty() {
            out.push(std::mem::take(&mut word));
        }
        if !c.is_whitespace() {
            out.push(c.to_string());
        }
    }
    if !word.is_empty() {
        out.push(word);
    }
    out
}

/// Marks and joiners that belong to the preceding letter (Devanagari, Arabic vowel signs).
fn is_combining(c: char) -> bool {
    matches!(c as u32, 0x0300..=0x036F | 0x0610..=0x061A | 0x064B..=0x065F | 0x0900..=0x0903
        | 0x093A..=0x094F | 0x0951..=0x0957 | 0x0962..=0x0963 | 0x200C..=0x200D)
}

/// Appends the bucket of every feature of `text` to `out` (cleared first). `language`, for a
/// language-conjoined model, is the post's language code.
pub fn extract(config: &FeatureConfig, text: &str, language: Option<&str>, out: &mut Vec<u32>) {
    extract_cleaned(config, &text_for_detection(text), language, out);
}

/// [`extract`] of a text [`text_for_detection`] has already cleaned (analysis cleans each post
/// once, for the language detector and the models).
pub fn extract_cleaned(
    config: &FeatureConfig,
    cleaned: &str,
    language: Option<&str>,
    out: &mut Vec<u32>,
) {
    out.clear();
    let mask = (1u64 << config.bucket_bits) - 1;
    let words = tokens_of_cleaned(cleaned);
    let mut hashes: Vec<u64> = Vec::with_capacity(words.len() * 8);
    let mut previous: Option<u64> = None;
    let mut chars: Vec<u8> = Vec::with_capacity(64);
    let mut starts: Vec<usize> = Vec::with_capacity(64);
    for word in &words {
        let h = fnv1a(SEED_WORD, word.as_bytes());
        hashes.push(h);
        if config.word_ngrams >= 2 {
            if let Some(p) = previous {
                hashes.push(fnv1a(
                    SEED_BIGRAM,
                    &[p.to_le_bytes(), h.to_le_bytes()].concat(),
                ));
            }
        }
        previous = Some(h);
        let alphabetic = word.chars().next().is_some_and(char::is_alphabetic);
        if config.char_min == 0 || !alphabetic {
            continue;
        }
        chars.clear();
        starts.clear();
        chars.push(b'<');
        starts.push(0);
        for (i, c) in word.char_indices() {
            starts.push(1 + i);
            let _ = c;
        }
        chars.extend_from_slice(word.as_bytes());
        starts.push(chars.len());
        chars.push(b'>');
        starts.push(chars.len());
        // starts[k] is the byte offset of the k-th character of "<word>" (and the end).
        let n_chars = starts.len() - 1;
        for n in usize::from(config.char_min)..=usize::from(config.char_max) {
            if n > n_chars {
                break;
            }
            for k in 0..=(n_chars - n) {
                if n == 1 && (k == 0 || k == n_chars - 1) {
                    continue; // a lone boundary marker says nothing
                }
                hashes.push(fnv1a(SEED_CHAR, &chars[starts[k]..starts[k + n]]));
            }
        }
    }
    let conjoined = language
        .filter(|_| config.language_conjoined)
        .map(|l| fnv1a(SEED_LANGUAGE, l.as_bytes()));
    for &h in &hashes {
        out.push((mix(h) & mask) as u32);
        if let Some(l) = conjoined {
            out.push((mix(h ^ l.rotate_left(17)) & mask) as u32);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_drop_handles_and_links_and_split_symbols() {
        assert_eq!(
            tokens("RT @fan: Qué GOOL!! #Final https://t.co/x don't :)"),
            ["qué", "gool", "!", "!", "final", "don't", ":", ")"]
        );
    }

    #[test]
    fn features_are_deterministic_and_in_range() {
        let config = FeatureConfig {
            bucket_bits: 12,
            word_ngrams: 2,
            char_min: 1,
            char_max: 4,
            language_conjoined: true,
            vader_bins: false,
        };
        let (mut a, mut b) = (Vec::new(), Vec::new());
        extract(&config, "Bon dia a tothom", Some("ca"), &mut a);
        extract(&config, "Bon dia a tothom", Some("ca"), &mut b);
        assert_eq!(a, b);
        assert!(a.iter().all(|&f| f < 4096));
        // 4 words + 3 bigrams + char n-grams, each twice (plain and conjoined).
        assert!(a.len() > 2 * 7, "{}", a.len());
        extract(&config, "Bon dia a tothom", None, &mut b);
        assert_eq!(b.len() * 2, a.len());
    }
}
