//! The pipeline's one emoji test, shared by X's weighted length (scheduler) and the accuracy
//! evaluation's emoji-free text (consumer `eval`).
//!
//! A coarse test by Unicode block, not the full `Extended_Pictographic` property table of
//! Unicode Technical Standard #51: every emoji in those blocks is caught, and so are a few
//! symbols that are not emoji (a draft's weighted length then errs on the long side).

/// U+200D ZERO WIDTH JOINER: joins emoji into one sequence (👩‍💻).
pub const ZERO_WIDTH_JOINER: char = '\u{200D}';

/// Whether `c` is an emoji base: the pictographic blocks U+1F000–U+1FAFF (mahjong and domino
/// tiles, enclosed alphanumerics, symbols and pictographs, emoticons, transport, supplemental
/// symbols), U+2600–U+27BF (miscellaneous symbols, dingbats) and U+2B00–U+2BFF (arrows, stars).
pub fn is_emoji(c: char) -> bool {
    matches!(c as u32, 0x1F000..=0x1FAFF | 0x2600..=0x27BF | 0x2B00..=0x2BFF)
}

/// Whether `c` modifies the emoji before it rather than standing alone: variation selectors
/// U+FE0E/U+FE0F, the combining keycap U+20E3, skin tones U+1F3FB–U+1F3FF and tag characters
/// U+E0020–U+E007F (subdivision flags). Source: Unicode Technical Standard #51, "Unicode Emoji",
/// section 1.4 (definitions of emoji modifier, presentation selector and tag sequence).
pub fn is_emoji_modifier(c: char) -> bool {
    matches!(c as u32, 0xFE0E | 0xFE0F | 0x20E3 | 0x1F3FB..=0x1F3FF | 0xE0020..=0xE007F)
}

/// Whether `c` is any part of an emoji sequence: a base, a modifier or the joiner.
pub fn is_emoji_part(c: char) -> bool {
    is_emoji(c) || is_emoji_modifier(c) || c == ZERO_WIDTH_JOINER
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bases_modifiers_and_joiners() {
        for c in ['😀', '🀄', '🫠', '☀', '✅', '⭐'] {
            assert!(is_emoji(c), "{c:?}");
        }
        for c in ['a', 'é', '中', '#', '\u{FE0F}', '\u{200D}'] {
            assert!(!is_emoji(c), "{c:?}");
        }
        for c in ['\u{FE0F}', '\u{FE0E}', '\u{20E3}', '\u{1F3FD}', '\u{E0067}'] {
            assert!(is_emoji_modifier(c), "{c:?}");
        }
        assert!(!is_emoji_modifier('a'));
        assert!(is_emoji_part(ZERO_WIDTH_JOINER));
        assert!(!is_emoji_part('x'));
    }
}
