//! Text analysis of one post: cleaning ([`clean`]), language identification and sentiment.
//! Sentiment comes by default from this project's own model trained on labelled tweets
//! ([`trained`], [`model`]; docs/models.md): a post gets its scores when its language is one
//! the model covers (ar, de, en, es, fr, hi, it, pt) and none otherwise. Language: whichlang/
//! whatlang by default ([`language`], see [`DetectorKind`]); `--detector model` takes the
//! trained language model when it is confident and whichlang/whatlang otherwise. `--sentiment vader` keeps VADER ([`sentiment`]: vader-parity, which
//! reproduces Python vaderSentiment 3.3.2), English only. [`Analyzer`] puts them together.
//!
//! Which language a post's sentiment is scored as: the platform's own `lang` tag when it gives
//! one (it has seen more than the text: the author's history, the client), otherwise the
//! detected language.

pub mod clean;
pub mod language;
pub mod model;
pub mod sentiment;
pub mod trained;

pub use self::clean::text_for_detection;
pub use self::language::{parse_languages, DetectorKind, LanguageDetector, LanguageList};
pub use self::sentiment::{
    Label, Sentiment, SentimentScorer, NEGATIVE_THRESHOLD, POSITIVE_THRESHOLD,
};
pub use self::trained::{TrainedModels, LANGID_MIN_PROBABILITY};

/// Which sentiment scorer analysis uses (`tweet-consumer --sentiment`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum SentimentKind {
    /// The trained model (consumer/models/sentiment.bin) for ar, de, en, es, fr, hi
    /// (romanised), it and pt: `compound` is P(positive) − P(negative), `pos`/`neu`/`neg` the
    /// class probabilities, the label the most probable class.
    #[default]
    Model,
    /// VADER (vader-parity), English posts only, as before the models.
    Vader,
}

/// What analysis found in one text (all empty by default: nothing analysed).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Analysis {
    /// The detected language: ISO 639-1 where the language has one (so it compares with the
    /// platform's `lang`), else ISO 639-3; `None` when the detector could not tell.
    pub language: Option<&'static str>,
    /// The language model's probability, or whatlang's confidence, in [0, 1]; `None` when
    /// nothing was detected or whichlang decided (it reports no score).
    pub confidence: Option<f64>,
    /// Sentiment scores, for the languages the scorer covers.
    pub sentiment: Option<Sentiment>,
}

/// How to build an [`Analyzer`].
#[derive(Debug, Clone, Default)]
pub struct AnalyzerOptions {
    /// The language identifier; `None`: [`DetectorKind::default`] (whichlang), or whatlang
    /// with an allow-list.
    pub detector: Option<DetectorKind>,
    /// An allow-list: the model and whatlang choose among these languages only.
    pub languages: Option<Vec<whatlang::Lang>>,
    /// The sentiment scorer.
    pub sentiment: SentimentKind,
    /// Models to use instead of the built-in ones.
    pub models: Option<TrainedModels>,
}

/// Analyses texts. Building one loads the VADER lexicons and the models (a few ms); reuse it.
pub struct Analyzer {
    vader: SentimentScorer,
    /// whichlang/whatlang: the detector with `--detector whichlang|whatlang`, the fallback of
    /// the model otherwise.
    language: LanguageDetector,
    kind: DetectorKind,
    sentiment_kind: SentimentKind,
    models: Option<TrainedModels>,
    /// With an allow-list: which of the language model's labels it keeps.
    allowed: Option<Vec<bool>>,
    /// The language model's labels as stored codes.
    langid_codes: Vec<&'static str>,
}

impl Default for Analyzer {
    fn default() -> Self {
        Self::new()
    }
}

impl Analyzer {
    /// The default analysis: whichlang/whatlang and the built-in sentiment model.
    pub fn new() -> Self {
        match Self::with_options(AnalyzerOptions::default()) {
            Ok(analyzer) => analyzer,
            Err(error) => {
                // Only a broken committed model gets here (a unit test guards against it).
                tracing::error!(%error, "the built-in models do not load; analysing with whichlang and VADER");
                Self::build(DetectorKind::Whichlang, None, SentimentKind::Vader, None)
            }
        }
    }

    /// An analyzer detecting with `kind` (default: see [`AnalyzerOptions::detector`]); `languages` limits detection
    /// to an allow-list (a collection that knows its languages avoids confusions between
    /// neighbours, e.g. es/pt/gl). Sentiment: the model.
    ///
    /// # Errors
    /// See [`Self::with_options`].
    pub fn with_detector(
        kind: Option<DetectorKind>,
        languages: Option<Vec<whatlang::Lang>>,
    ) -> Result<Self, String> {
        Self::with_options(AnalyzerOptions {
            detector: kind,
            languages,
            ..AnalyzerOptions::default()
        })
    }

    /// An analyzer as `options` say.
    ///
    /// # Errors
    /// An allow-list with [`DetectorKind::Whichlang`], which has a fixed set of languages, or
    /// built-in models that do not load.
    pub fn with_options(options: AnalyzerOptions) -> Result<Self, String> {
        let kind = match (options.detector, &options.languages) {
            (Some(DetectorKind::Whichlang), Some(_)) => {
                return Err(
                    "--languages works with --detector whatlang or model only (whichlang's 16 languages are fixed)"
                        .to_owned(),
                )
            }
            (Some(kind), _) => kind,
            (None, Some(_)) => DetectorKind::Whatlang,
            (None, None) => DetectorKind::default(),
        };
        let needs_models = kind == DetectorKind::Model || options.sentiment == SentimentKind::Model;
        let models = match (options.models, needs_models) {
            (Some(models), _) => Some(models),
            (None, true) => Some(TrainedModels::embedded().map_err(|e| e.to_string())?),
            (None, false) => None,
        };
        Ok(Self::build(
            kind,
            options.languages,
            options.sentiment,
            models,
        ))
    }

    fn build(
        kind: DetectorKind,
        languages: Option<Vec<whatlang::Lang>>,
        sentiment_kind: SentimentKind,
        models: Option<TrainedModels>,
    ) -> Self {
        let langid_codes: Vec<&'static str> = models
            .as_ref()
            .map(|m| m.langid.labels.iter().map(|l| static_code(l)).collect())
            .unwrap_or_default();
        let allowed = languages.as_ref().map(|list| {
            let codes: Vec<&str> = list.iter().map(|&l| language::iso_639_1_or_3(l)).collect();
            langid_codes
                .iter()
                .map(|c| codes.contains(c))
                .collect::<Vec<bool>>()
        });
        // The fallback: whatlang with an allow-list (whichlang's languages are fixed), else
        // the kind asked for, whichlang for the model.
        let fallback = match (kind, &languages) {
            (DetectorKind::Whatlang, _) | (DetectorKind::Model, Some(_)) => DetectorKind::Whatlang,
            _ => DetectorKind::Whichlang,
        };
        Self {
            vader: SentimentScorer::new(),
            language: LanguageDetector::new(fallback, languages),
            kind,
            sentiment_kind,
            models,
            allowed,
            langid_codes,
        }
    }

    /// The language identifier in use.
    pub fn detector_kind(&self) -> DetectorKind {
        self.kind
    }

    /// The sentiment scorer in use.
    pub fn sentiment_kind(&self) -> SentimentKind {
        self.sentiment_kind
    }

    /// The language of a post whose text [`text_for_detection`] cleaned to `cleaned`, and the
    /// model's probability or whatlang's confidence.
    fn detect(&self, cleaned: &str) -> (Option<&'static str>, Option<f64>) {
        let model = self
            .models
            .as_ref()
            .filter(|_| self.kind == DetectorKind::Model)
            .filter(|_| cleaned.chars().any(char::is_alphabetic));
        let allowed = self.allowed.as_deref().filter(|a| a.iter().any(|&x| x));
        if let Some(models) = model.filter(|_| self.allowed.is_none() || allowed.is_some()) {
            let (best, p) = models
                .langid
                .predict_cleaned(cleaned, allowed, &mut Vec::new());
            if p >= LANGID_MIN_PROBABILITY {
                return (Some(self.langid_codes[best]), Some(f64::from(p)));
            }
        }
        self.language.detect(cleaned)
    }

    /// Detects the language of `text` and scores its sentiment when the scorer covers its
    /// language. `platform_lang` is the post's own `lang` tag, if any (`und` counts as none).
    pub fn analyze(&self, text: &str, platform_lang: Option<&str>) -> Analysis {
        // Cleaned once: the detectors and the models read the same cleaned text.
        let cleaned = text_for_detection(text);
        let (language, confidence) = self.detect(&cleaned);
        let platform = platform_lang
            .filter(|l| *l != "und")
            .map(|l| l.split('-').next().unwrap_or(l).to_ascii_lowercase());
        let scored_as = platform.as_deref().or(language);
        let sentiment = match (self.sentiment_kind, &self.models) {
            (SentimentKind::Model, Some(models)) => scored_as
                .filter(|l| models.sentiment.languages.iter().any(|c| c == l))
                .map(|l| model_sentiment(&models.sentiment, &self.vader, text, &cleaned, l)),
            _ => (scored_as == Some("en")).then(|| self.vader.score(text)),
        };
        Analysis {
            language,
            confidence,
            sentiment,
        }
    }
}

/// The sentiment model's scores of `text` (cleaned: `cleaned`) in `language` as a
/// [`Sentiment`].
fn model_sentiment(
    model: &model::TextModel,
    vader: &SentimentScorer,
    text: &str,
    cleaned: &str,
    language: &str,
) -> Sentiment {
    let input = trained::sentiment_input(&model.config, vader, text, cleaned, language);
    let p = model.probabilities_cleaned(&input, Some(language), &mut Vec::new());
    let (neg, neu, pos) = (f64::from(p[0]), f64::from(p[1]), f64::from(p[2]));
    let label = if pos >= neu && pos >= neg {
        Label::Positive
    } else if neg >= neu {
        Label::Negative
    } else {
        Label::Neutral
    };
    Sentiment {
        compound: pos - neg,
        pos,
        neu,
        neg,
        label,
    }
}

/// A language code with a `'static` lifetime: isolang's own string for an ISO 639-1 code,
/// else the code leaked once (model labels are loaded once per analyzer).
fn static_code(code: &str) -> &'static str {
    isolang::Language::from_639_1(code)
        .and_then(|l| l.to_639_1())
        .unwrap_or_else(|| Box::leak(code.to_owned().into_boxed_str()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vader() -> Analyzer {
        Analyzer::with_options(AnalyzerOptions {
            detector: Some(DetectorKind::Whichlang),
            sentiment: SentimentKind::Vader,
            ..AnalyzerOptions::default()
        })
        .unwrap()
    }

    #[test]
    fn english_text_gets_vader_scores() {
        let analyzer = vader();
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
    fn other_languages_get_no_vader_score() {
        let analyzer = vader();
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
        let analyzer = vader();
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
    fn allow_lists_restrict_the_model_and_refuse_whichlang() {
        let languages = Some(vec![whatlang::Lang::Spa, whatlang::Lang::Eng]);
        let analyzer =
            Analyzer::with_detector(Some(DetectorKind::Model), languages.clone()).unwrap();
        assert_eq!(analyzer.detector_kind(), DetectorKind::Model);
        let default = Analyzer::with_detector(None, languages.clone()).unwrap();
        assert_eq!(default.detector_kind(), DetectorKind::Whatlang);
        // Portuguese is not allowed: the model picks the nearest allowed language.
        let a = analyzer.analyze(
            "O time jogou muito bem ontem à noite e os torcedores estavam felizes",
            None,
        );
        assert!(matches!(a.language, Some("es" | "en")), "{a:?}");
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

    #[test]
    fn the_model_scores_only_the_languages_it_covers() {
        let analyzer = Analyzer::with_options(AnalyzerOptions {
            detector: Some(DetectorKind::Model),
            sentiment: SentimentKind::Model,
            ..AnalyzerOptions::default()
        })
        .unwrap();
        assert_eq!(analyzer.detector_kind(), DetectorKind::Model);
        let a = analyzer.analyze(
            "Qué asco de día, todo me sale mal y estoy harto",
            Some("es"),
        );
        let s = a.sentiment.expect("Spanish is scored");
        assert!((s.pos + s.neu + s.neg - 1.0).abs() < 1e-5, "{s:?}");
        assert!((s.compound - (s.pos - s.neg)).abs() < 1e-12);
        assert!(analyzer
            .analyze("Bon dia a tothom", Some("ca"))
            .sentiment
            .is_none());
        // The platform's tag decides which language the sentiment is scored as.
        assert!(analyzer
            .analyze("I love it", Some("ja"))
            .sentiment
            .is_none());
        assert!(analyzer
            .analyze("Je t'aime", Some("fr"))
            .sentiment
            .is_some());
    }
}
