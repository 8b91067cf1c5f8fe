//! The training data's `norm()` (../shared/data/training/MANIFEST.md, "Overlap with held-out
//! TEST sets"), re-implemented so that training can drop every text whose
//! `sha1(norm(text))` is in `EXCLUDE_test_text_norm_sha1.tsv`.

use sha1::{Digest as _, Sha1};

/// MANIFEST's `clean()`: literal `\uXXXX` escapes decoded (surrogate pairs too), CR/LF/TAB
/// as spaces, whitespace collapsed, one wrapping `"…"` pair stripped (and `""` un-doubled),
/// HTML entities decoded.
pub fn clean(text: &str) -> String {
    let decoded = decode_u_escapes(text);
    let spaced: String = decoded
        .chars()
        .map(|c| {
            if matches!(c, '\r' | '\n' | '\t') {
                ' '
            } else {
                c
            }
        })
        .collect();
    let mut s = collapse(&spaced);
    if s.len() >= 2 && s.starts_with('"') && s.ends_with('"') {
        s = s[1..s.len() - 1].replace("\"\"", "\"");
    }
    html_escape::decode_html_entities(&s).into_owned()
}

/// MANIFEST's `norm()`: [`clean`], lowercase, `https?://\S+` and bare `http` / `http/url`
/// tokens deleted, `@\w+` as `@user`, whitespace collapsed.
pub fn norm(text: &str) -> String {
    let lower = clean(text).to_lowercase();
    let chars: Vec<char> = lower.chars().collect();
    let mut out = String::with_capacity(lower.len());
    let mut i = 0;
    let starts = |i: usize, p: &str| {
        let p: Vec<char> = p.chars().collect();
        chars.len() >= i + p.len() && chars[i..i + p.len()] == p[..]
    };
    while i < chars.len() {
        if starts(i, "http://") || starts(i, "https://") {
            while i < chars.len() && !chars[i].is_whitespace() {
                i += 1;
            }
            continue;
        }
        if chars[i] == '@' && chars.get(i + 1).is_some_and(|&c| is_word(c)) {
            out.push_str("@user");
            i += 1;
            while i < chars.len() && is_word(chars[i]) {
                i += 1;
            }
            continue;
        }
        out.push(chars[i]);
        i += 1;
    }
    out.split_whitespace()
        .filter(|t| *t != "http" && *t != "http/url")
        .collect::<Vec<_>>()
        .join(" ")
}

/// Python's `\w` in a str pattern: alphanumeric or underscore.
fn is_word(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// `sha1(norm(text))` in lowercase hex, as the EXCLUDE list has it; `None` when `norm` is
/// empty (an empty result never matches).
pub fn norm_sha1(text: &str) -> Option<String> {
    let n = norm(text);
    if n.is_empty() {
        return None;
    }
    let digest = Sha1::digest(n.as_bytes());
    Some(digest.iter().map(|b| format!("{b:02x}")).collect())
}

fn collapse(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Decodes literal `\uXXXX` escapes (as 2013train holds: `\u002c`, `\u2019`), pairing
/// surrogates; an unpaired or malformed escape stays as written.
fn decode_u_escapes(s: &str) -> String {
    if !s.contains("\\u") {
        return s.to_owned();
    }
    let b = s.as_bytes();
    let hex = |at: usize| -> Option<u32> {
        if at + 6 <= b.len() && b[at] == b'\\' && b[at + 1] == b'u' {
            std::str::from_utf8(&b[at + 2..at + 6])
                .ok()
                .and_then(|h| u32::from_str_radix(h, 16).ok())
        } else {
            None
        }
    };
    let mut out = String::with_capacity(s.len());
    let mut i = 0;
    while i < b.len() {
        if let Some(u) = hex(i) {
            if (0xD800..0xDC00).contains(&u) {
                if let Some(lo) = hex(i + 6).filter(|lo| (0xDC00..0xE000).contains(lo)) {
                    let c = 0x10000 + ((u - 0xD800) << 10) + (lo - 0xDC00);
                    if let Some(c) = char::from_u32(c) {
                        out.push(c);
                        i += 12;
                        continue;
                    }
                }
            } else if let Some(c) = char::from_u32(u) {
                out.push(c);
                i += 6;
                continue;
            }
        }
        // Copy one whole UTF-8 character.
        let len = s[i..].chars().next().map_or(1, char::len_utf8);
        out.push_str(&s[i..i + len]);
        i += len;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn norm_follows_the_manifest() {
        assert_eq!(
            norm("\"RT @Some_One: I\\u2019m \"\"HAPPY\"\" &amp; http://t.co/x ok\\ud83d\\ude00\""),
            "rt @user: i\u{2019}m \"happy\" & ok\u{1F600}"
        );
        assert_eq!(norm("see http and http/url @a"), "see and @user");
        assert_eq!(norm("  \t "), "");
        assert_eq!(norm_sha1(" "), None);
    }

    #[test]
    fn sha1_is_of_the_normalised_text() {
        // sha1("hello @user") computed with Python's hashlib.
        assert_eq!(
            norm_sha1("Hello   @World").as_deref(),
            Some("f2c53ca43250fbaf5f80c9346d32411982ea615f")
        );
    }
}
