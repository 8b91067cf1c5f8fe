//! Text cleaning before language detection: the words of a post that say something about its
//! language, without handles, links and retweet prefixes.

/// The words of a post that say something about its language: without the `RT @user:`
/// prefix, links, @mentions and the `#` of hashtags (the tag word stays), with HTML entities
/// (`&amp;`, which v1.1 text carries) decoded. Handles and URLs are language-neutral tokens
/// that pull character-trigram detectors towards English.
pub fn text_for_detection(text: &str) -> String {
    let decoded = html_escape::decode_html_entities(text);
    let mut out = String::with_capacity(decoded.len());
    let mut words = decoded.split_whitespace().peekable();
    while let Some(word) = words.next() {
        let is_mention = |w: &str| w.starts_with('@') && w.len() > 1;
        if word == "RT" && words.peek().is_some_and(|w| is_mention(w)) {
            continue;
        }
        if is_mention(word) || word.starts_with("http://") || word.starts_with("https://") {
            continue;
        }
        let word = word.strip_prefix('#').unwrap_or(word);
        if word.is_empty() {
            continue;
        }
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(word);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detection_ignores_handles_links_and_retweet_prefixes() {
        assert_eq!(
            text_for_detection(
                "RT @nba_fan: Qué partido &amp; qué final #NBAFinals https://t.co/xyz @otro"
            ),
            "Qué partido & qué final NBAFinals"
        );
        assert_eq!(text_for_detection("@a @b https://t.co/x"), "");
        assert_eq!(text_for_detection("# RT me"), "RT me");
    }
}
