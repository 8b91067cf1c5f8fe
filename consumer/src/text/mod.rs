//! Text analysis of one post: cleaning ([`clean`]), language identification ([`language`]:
//! whatlang, or whichlang where it knows the script, see [`DetectorKind`]) and, for English
//! text, VADER sentiment ([`sentiment`]: vader-parity, which reproduces Python vaderSentiment
//! 3.3.2's scores). [`Analyzer`] puts the three together.
//!
//! VADER's lexicon and rules are English-only (Hutto & Gilbert, ICWSM-14), so other languages
//! get no score rather than a wrong one. Which posts are English: the platform's own `lang`
//! tag when it gives one (it has seen more than the text: the author's history, the client),
//! otherwise whatlang's detection.

pub mod clean;
pub mod language;
pub mod sentiment;

pub use self::clean::text_for_detection;
pub use self::language::{parse_languages, DetectorKind, LanguageDetector, LanguageList};
pub use self::sentiment::{
    Label, Sentiment, SentimentScorer, NEGATIVE_THRESHOLD, POSITIVE_THRESHOLD,
};

/// What analysis found in one text (all empty by default: nothing analysed).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Analysis {
    /// The detected language: ISO 639-1 where the language has one (so it compares with the
    /// platform's `lang`), else ISO 639-3; `None` when the detector could not tell.
    pub language: Option<&'static str>,
    /// whatlang's confidence in [0, 1]; `None` when nothing was detected or whichlang decided
    /// (it reports no score).
    pub confidence: Option<f64>,
    /// VADER scores, for English text only.
    pub sentiment: Option<Sentiment>,
}

/// Analyses texts. Building one loads the VADER lexicons (a few ms); reuse it.
pub struct Analyzer {
    sentiment: SentimentScorer,
    language: LanguageDetector,
}

impl Default for Analyzer {
    fn default() -> Self {
        Self::new()
    }
}

impl Analyzer {
    /// Loads the VADER lexicons; detection with the default [`DetectorKind`] (whichlang).
    pub fn new() -> Self {
        Self::build(DetectorKind::default(), None)
    }

    /// An analyzer detecting with `kind`; `languages`, whatlang only, limits detection to an
    /// allow-list (a collection that knows its languages avoids confusions between neighbours,
    /// e.g. es/pt/gl). Without a `kind`: whatlang when there is an allow-list, else the
    /// default (whichlang).
    ///
    /// # Errors
    /// An allow-list with [`DetectorKind::Whichlang`], which has a fixed set of languages.
    pub fn with_detector(
        kind: Option<DetectorKind>,
        languages: Option<Vec<whatlang::Lang>>,
    ) -> Result<Self, String> {
        let kind = match (kind, &languages) {
            (Some(DetectorKind::Whichlang), Some(_)) => {
                return Err(
                    "--languages works with --detector whatlang only (whichlang's 16 languages are fixed)"
                        .to_owned(),
                )
            }
            (Some(kind), _) => kind,
            (None, Some(_)) => DetectorKind::Whatlang,
            (None, None) => DetectorKind::default(),
        };
        Ok(Self::build(kind, languages))
    }

    fn build(kind: DetectorKind, languages: Option<Vec<whatlang::Lang>>) -> Self {
        Self {
            sentiment: SentimentScorer::new(),
            language: LanguageDetector::new(kind, languages),
        }
    }

    /// The language identifier in use.
    pub fn detector_kind(&self) -> DetectorKind {
        self.language.kind()
    }

    /// Detects the language of `text` and scores it if it is English. `platform_lang` is the
    /// post's own `lang` tag, if any (`und` counts as none).
    pub fn analyze(&self, text: &str, platform_lang: Option<&str>) -> Analysis {
        let (language, confidence) = self.language.detect(&text_for_detection(text));
        let english = match platform_lang {
            Some(lang) if lang != "und" => lang == "en" || lang.starts_with("en-"),
            _ => language == Some("en"),
        };
        let sentiment = english.then(|| self.sentiment.score(text));
        Analysis {
            language,
            confidence,
            sentiment,
        }
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
    fn whichlang_detector_covers_indonesian_tagalog_and_other_scripts() {
        let analyzer = Analyzer::new();
        assert_eq!(analyzer.detector_kind(), DetectorKind::Whichlang);
        let detect = |text: &str| analyzer.analyze(text, None);
        // One of whichlang's 16: its answer, whatlang's confidence from the arbitration.
        let a = detect("The referee made a terrible call and the fans are still angry about it");
        assert_eq!(a.language, Some("en"));
        assert!(a.confidence.is_some(), "{a:?}");
        // Not one of the 16, Latin script: whatlang's arbitration finds it.
        let a = detect("Saya tidak tahu kenapa mereka belum datang ke rumah kami sampai sekarang");
        assert_eq!(a.language, Some("id"));
        let a = detect("Hindi ko alam kung bakit hindi pa sila dumating sa bahay namin ngayon");
        assert_eq!(a.language, Some("tl"));
        // A script whichlang has no language for goes to whatlang.
        let a = detect("วันนี้อากาศดีมากและทุกคนมีความสุข");
        assert_eq!(a.language, Some("th"));
        // CJK: whichlang alone, no confidence.
        let a = detect("今日はとても良い天気ですね、みんなで公園に行きましょう");
        assert_eq!((a.language, a.confidence), (Some("ja"), None));
        // English is still scored.
        assert!(
            detect("What a wonderful and happy day this has been for all of us")
                .sentiment
                .is_some()
        );
    }

    #[test]
    fn allow_lists_choose_whatlang_and_refuse_whichlang() {
        let languages = Some(vec![whatlang::Lang::Spa, whatlang::Lang::Eng]);
        let analyzer = Analyzer::with_detector(None, languages.clone()).unwrap();
        assert_eq!(analyzer.detector_kind(), DetectorKind::Whatlang);
        let error = Analyzer::with_detector(Some(DetectorKind::Whichlang), languages)
            .err()
            .expect("an allow-list with whichlang is refused");
        assert!(error.contains("--detector whatlang"), "{error}");
        let analyzer = Analyzer::with_detector(Some(DetectorKind::Whatlang), None).unwrap();
        let a = analyzer.analyze(
            "The referee made a terrible call and the fans are angry",
            None,
        );
        assert_eq!(a.language, Some("en"));
        assert!(a.confidence.is_some());
    }
}
