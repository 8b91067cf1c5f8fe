//! Column filters: which cards a column shows. The page applies the same rules in its script
//! (`web.js`, `matches`) to the columns a user adds; the server applies them to
//! `GET /events?lang=..&source=..&contains=..&has_link=true&has_media=true&rule=..` for
//! clients that want one filtered stream. A column's sentiment filter is the page's only: the
//! sentiment comes from the store after the card (`/api/annotations`), so the page adds a
//! card to such a column once its label is known.

use serde::Deserialize;

use super::feed::Card;

/// A column's filter; every field that is set must match (an empty filter matches all).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct ColumnFilter {
    /// The platform language tag, compared case-insensitively on its primary subtag
    /// (`en` matches `en-GB`).
    #[serde(default)]
    pub lang: Option<String>,
    /// `x`, `mastodon`, `bluesky` or `replay` ([`super::feed::source_label`]).
    #[serde(default)]
    pub source: Option<String>,
    /// Text the post must contain, case-insensitively.
    #[serde(default)]
    pub contains: Option<String>,
    /// Whether the post must have (true) or lack (false) a link.
    #[serde(default)]
    pub has_link: Option<bool>,
    /// Whether the post must have (true) or lack (false) images or video.
    #[serde(default)]
    pub has_media: Option<bool>,
    /// A rule tag the post must have matched.
    #[serde(default)]
    pub rule: Option<String>,
}

fn set(value: &Option<String>) -> Option<&str> {
    value.as_deref().map(str::trim).filter(|v| !v.is_empty())
}

impl ColumnFilter {
    /// Whether `card` belongs in the column.
    pub fn matches(&self, card: &Card) -> bool {
        let primary = |tag: &str| tag.split(['-', '_']).next().unwrap_or(tag).to_lowercase();
        let lang_ok = set(&self.lang).is_none_or(|want| {
            card.lang
                .as_deref()
                .is_some_and(|have| primary(have) == primary(want))
        });
        let source_ok = set(&self.source).is_none_or(|want| card.source.eq_ignore_ascii_case(want));
        let contains_ok = set(&self.contains)
            .is_none_or(|want| card.text.to_lowercase().contains(&want.to_lowercase()));
        let link_ok = self
            .has_link
            .is_none_or(|want| want != card.links.is_empty());
        let media_ok = self.has_media.is_none_or(|want| want == card.has_media);
        let rule_ok = set(&self.rule).is_none_or(|want| card.rules.iter().any(|r| r == want));
        lang_ok && source_ok && contains_ok && link_ok && media_ok && rule_ok
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn card() -> Card {
        Card {
            id: "1".into(),
            kind: "tweet",
            author: None,
            created_at: None,
            received_at_ms: None,
            kafka_at_ms: None,
            text: "Hello <b>World</b>".into(),
            hashtags: vec![],
            links: vec!["https://e.org".into()],
            lang: Some("en-GB".into()),
            source: "replay",
            source_detail: None,
            rules: vec!["cats".into()],
            has_media: false,
        }
    }

    #[test]
    fn every_set_field_must_match() {
        let c = card();
        assert!(ColumnFilter::default().matches(&c));
        let f = |lang: Option<&str>,
                 source: Option<&str>,
                 contains: Option<&str>,
                 has_link,
                 rule: Option<&str>| ColumnFilter {
            lang: lang.map(Into::into),
            source: source.map(Into::into),
            contains: contains.map(Into::into),
            has_link,
            has_media: None,
            rule: rule.map(Into::into),
        };
        assert!(f(
            Some("en"),
            Some("Replay"),
            Some("world</B>"),
            Some(true),
            Some("cats")
        )
        .matches(&c));
        assert!(
            f(Some(" "), None, Some(""), None, None).matches(&c),
            "blank fields are unset"
        );
        assert!(!f(Some("es"), None, None, None, None).matches(&c));
        assert!(!f(None, Some("x"), None, None, None).matches(&c));
        assert!(!f(None, None, Some("bye"), None, None).matches(&c));
        assert!(!f(None, None, None, Some(false), None).matches(&c));
        assert!(!f(None, None, None, None, Some("dogs")).matches(&c));
        let no_lang = Card {
            lang: None,
            ..card()
        };
        assert!(!f(Some("en"), None, None, None, None).matches(&no_lang));
        let media = |want| ColumnFilter {
            has_media: Some(want),
            ..ColumnFilter::default()
        };
        assert!(media(false).matches(&c) && !media(true).matches(&c));
        let with_media = Card {
            has_media: true,
            ..card()
        };
        assert!(media(true).matches(&with_media) && !media(false).matches(&with_media));
    }
}
