//! Text analysis of one post: language identification (whatlang) and, for English text, VADER
//! sentiment (vader-parity, which reproduces Python vaderSentiment 3.3.2's scores).
//!
//! VADER's lexicon and rules are English-only (Hutto & Gilbert, ICWSM-14), so other languages
//! get no score rather than a wrong one. Which posts are English: the platform's own `lang`
//! tag when it gives one (it has seen more than the text: the author's history, the client),
//! otherwise whatlang's detection.

use vader_parity::SentimentIntensityAnalyzer;

/// The standard VADER thresholds on the compound score (vaderSentiment README, "About the
/// Scoring"): ≥ 0.05 positive, ≤ -0.05 negative, neutral between.
pub const POSITIVE_THRESHOLD: f64 = 0.05;
/// See [`POSITIVE_THRESHOLD`].
pub const NEGATIVE_THRESHOLD: f64 = -0.05;

/// A sentiment label by the standard thresholds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Label {
    /// compound ≥ 0.05
    Positive,
    /// -0.05 < compound < 0.05
    Neutral,
    /// compound ≤ -0.05
    Negative,
}

impl Label {
    /// From a compound score in [-1, 1].
    pub fn from_compound(compound: f64) -> Self {
        if compound >= POSITIVE_THRESHOLD {
            Label::Positive
        } else if compound <= NEGATIVE_THRESHOLD {
            Label::Negative
        } else {
            Label::Neutral
        }
    }

    /// `positive`, `neutral` or `negative`, as stored.
    pub fn as_str(self) -> &'static str {
        match self {
            Label::Positive => "positive",
            Label::Neutral => "neutral",
            Label::Negative => "negative",
        }
    }
}

/// VADER scores of an English text.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sentiment {
    /// Normalised weighted composite in [-1, 1].
    pub compound: f64,
    /// Proportion of positive tokens in [0, 1].
    pub pos: f64,
    /// Proportion of neutral tokens in [0, 1].
    pub neu: f64,
    /// Proportion of negative tokens in [0, 1].
    pub neg: f64,
    /// Label by the standard thresholds.
    pub label: Label,
}

/// What analysis found in one text (all empty by default: nothing analysed).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Analysis {
    /// The detected language: ISO 639-1 where the language has one (so it compares with the
    /// platform's `lang`), else ISO 639-3; `None` when whatlang could not tell.
    pub language: Option<&'static str>,
    /// whatlang's confidence in [0, 1].
    pub confidence: f64,
    /// VADER scores, for English text only.
    pub sentiment: Option<Sentiment>,
}

/// Analyses texts. Building one loads the VADER lexicons (a few ms); reuse it.
pub struct Analyzer {
    vader: SentimentIntensityAnalyzer,
    detector: whatlang::Detector,
}

impl Default for Analyzer {
    fn default() -> Self {
        Self::new()
    }
}

impl Analyzer {
    /// Loads the VADER lexicons; detection considers every language whatlang knows.
    pub fn new() -> Self {
        Self::with_languages(None)
    }

    /// Like [`Analyzer::new`], detection limited to `languages` when given (a collection that
    /// knows its languages avoids confusions between neighbours, e.g. es/pt/gl).
    pub fn with_languages(languages: Option<Vec<whatlang::Lang>>) -> Self {
        Self {
            vader: SentimentIntensityAnalyzer::new(),
            detector: match languages {
                Some(languages) => whatlang::Detector::with_allowlist(languages),
                None => whatlang::Detector::new(),
            },
        }
    }

    /// Detects the language of `text` and scores it if it is English. `platform_lang` is the
    /// post's own `lang` tag, if any (`und` counts as none).
    pub fn analyze(&self, text: &str, platform_lang: Option<&str>) -> Analysis {
        let detected = self.detector.detect(&text_for_detection(text));
        let language = detected.as_ref().map(|info| iso_639_1_or_3(info.lang()));
        let confidence = detected
            .as_ref()
            .map(|info| info.confidence())
            .unwrap_or(0.0);
        let english = match platform_lang {
            Some(lang) if lang != "und" => lang == "en" || lang.starts_with("en-"),
            _ => language == Some("en"),
        };
        let sentiment = english.then(|| {
            let scores = self.vader.polarity_scores(text);
            Sentiment {
                compound: scores.compound,
                pos: scores.pos,
                neu: scores.neu,
                neg: scores.neg,
                label: Label::from_compound(scores.compound),
            }
        });
        Analysis {
            language,
            confidence,
            sentiment,
        }
    }
}

/// Parses a `--languages` list: comma-separated ISO 639-1 (`en`) or 639-3 (`eng`) codes of
/// languages whatlang knows.
///
/// # Errors
/// Names the first code that is unknown or not supported by whatlang.
pub fn parse_languages(list: &str) -> Result<LanguageList, String> {
    list.split(',')
        .map(str::trim)
        .filter(|code| !code.is_empty())
        .map(|code| {
            let three = match code.len() {
                2 => isolang::Language::from_639_1(code).map(|l| l.to_639_3()),
                _ => Some(code),
            };
            let three = match code {
                "zh" => Some("cmn"),
                "fa" => Some("pes"),
                _ => three,
            };
            three
                .and_then(whatlang::Lang::from_code)
                .ok_or_else(|| format!("'{code}' is not a language code whatlang detects (use ISO 639-1 or 639-3, e.g. en,es,pt)"))
        })
        .collect::<Result<_, _>>()
        .map(LanguageList)
}

/// A parsed `--languages` allow-list (a newtype, so that clap takes it as one value).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LanguageList(pub Vec<whatlang::Lang>);

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

/// whatlang names languages by ISO 639-3; the platforms tag posts with ISO 639-1 (BCP 47).
/// whatlang's Mandarin (`cmn`) and Iranian Persian (`pes`) are individual members of the
/// macrolanguages the platforms tag `zh` and `fa`; ISO 639-1 has no code for the members.
fn iso_639_1_or_3(lang: whatlang::Lang) -> &'static str {
    let code = lang.code();
    match code {
        "cmn" => "zh",
        "pes" => "fa",
        _ => isolang::Language::from_639_3(code)
            .and_then(|l| l.to_639_1())
            .unwrap_or(code),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn english_text_gets_vader_scores() {
        let analyzer = Analyzer::new();
        let a = analyzer.analyze("I love this team, what a great game tonight!", None);
        assert_eq!(a.language, Some("en"));
        let s = a.sentiment.expect("english text is scored");
        assert_eq!(s.label, Label::Positive);
        assert!(s.compound > 0.5, "{s:?}");
        let a = analyzer.analyze(
            "This is the worst, most awful referee I have ever seen",
            Some("en"),
        );
        assert_eq!(a.sentiment.map(|s| s.label), Some(Label::Negative));
    }

    #[test]
    fn other_languages_get_no_score() {
        let analyzer = Analyzer::new();
        let a = analyzer.analyze(
            "El equipo jugó muy bien anoche y los aficionados estaban felices en el estadio",
            None,
        );
        assert_eq!(a.language, Some("es"));
        assert_eq!(a.sentiment, None);
        // The platform's tag wins over detection.
        let a = analyzer.analyze("I love it", Some("ja"));
        assert_eq!(a.sentiment, None);
        // `und` means the platform could not tell: detection decides.
        let a = analyzer.analyze(
            "What a wonderful and happy day this has been for all of us",
            Some("und"),
        );
        assert_eq!(a.language, Some("en"));
        assert!(a.sentiment.is_some());
    }

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

    #[test]
    fn allow_lists_parse_and_restrict_detection() {
        let languages = parse_languages("es, pt,eng").unwrap().0;
        assert_eq!(
            languages,
            vec![
                whatlang::Lang::Spa,
                whatlang::Lang::Por,
                whatlang::Lang::Eng
            ]
        );
        assert!(parse_languages("es,xx").unwrap_err().contains("'xx'"));
        let analyzer =
            Analyzer::with_languages(Some(vec![whatlang::Lang::Spa, whatlang::Lang::Eng]));
        let a = analyzer.analyze(
            "O time jogou muito bem ontem à noite e os torcedores estavam felizes",
            None,
        );
        assert!(matches!(a.language, Some("es" | "en")), "{a:?}");
    }

    #[test]
    fn codes_compare_with_the_platforms_tags() {
        assert_eq!(iso_639_1_or_3(whatlang::Lang::Cmn), "zh");
        assert_eq!(iso_639_1_or_3(whatlang::Lang::Pes), "fa");
        assert_eq!(iso_639_1_or_3(whatlang::Lang::Spa), "es");
    }

    #[test]
    fn thresholds_are_inclusive() {
        assert_eq!(Label::from_compound(0.05), Label::Positive);
        assert_eq!(Label::from_compound(-0.05), Label::Negative);
        assert_eq!(Label::from_compound(0.0499), Label::Neutral);
    }
}
