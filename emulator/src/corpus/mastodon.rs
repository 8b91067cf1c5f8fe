//! The Mastodon side of the corpus: a recorded Status line with the fields the stream filters
//! match (tags, content text, whether the account is local).

use bytes::Bytes;
use serde_json::Value;
use tweet_pipeline_common::post::html_to_text;

use super::Toot;

pub(super) fn toot(line: &str, status: &Value) -> Option<Toot> {
    let id = status["id"].as_str()?.to_owned();
    let tags = status["tags"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|tag| tag["name"].as_str().map(str::to_lowercase))
        .collect();
    let acct = status["account"]["acct"].as_str().unwrap_or_default();
    Some(Toot {
        json: Bytes::from(line.to_owned()),
        id,
        tags,
        // Mastodon's `content` is HTML (`#<span>tag</span>`); matching wants the text, as the
        // pipeline reads it.
        content: html_to_text(status["content"].as_str().unwrap_or_default()).to_lowercase(),
        local: !acct.contains('@'),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn html_is_stripped_for_hashtag_matching() {
        assert_eq!(
            html_to_text(r#"<p>go <a href="x" class="hashtag">#<span>LAC</span></a></p>"#),
            "go #LAC"
        );
    }
}
