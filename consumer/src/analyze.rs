//! Text analysis of one post: language identification (whatlang, or whichlang where it knows
//! the script, see [`DetectorKind`]) and, for English text, VADER sentiment (vader-parity,
//! which reproduces Python vaderSentiment 3.3.2's scores).
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
    /// platform's `lang`), else ISO 639-3; `None` when the detector could not tell.
    pub language: Option<&'static str>,
    /// whatlang's confidence in [0, 1]; `None` when nothing was detected or whichlang decided
    /// (it reports no score).
    pub confidence: Option<f64>,
    /// VADER scores, for English text only.
    pub sentiment: Option<Sentiment>,
}

/// Which language identifier analysis uses (`tweet-consumer --detector`).
///
/// Measured on this project's machine with `tweet-consumer eval` and `scripts/bench.sh`
/// (docs/accuracy.md, docs/benchmarks.md): whatlang costs about 40 µs per tweet whatever its
/// length (it compares the text's trigrams with the profile of every language of the script,
/// about 40 for Latin), whichlang about 1.5 µs. On tweets the whichlang detector also agrees
/// more often with the gold labels and with X's own `lang` tag; whatlang keeps the long tail
/// of languages.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum DetectorKind {
    /// whatlang 0.18: 69 languages (trigram profiles and alphabets), with a confidence; the
    /// only one that takes a `--languages` allow-list.
    Whatlang,
    /// whichlang 0.1 (Quickwit): 16 languages (ar, de, en, es, fr, hi, it, ja, ko, nl, pt,
    /// ru, sv, tr, vi, zh), a logistic regression over hashed character n-grams. On Latin
    /// text whatlang then chooses between whichlang's answer, Indonesian and Tagalog (see
    /// [`LATIN_NOT_IN_WHICHLANG`]; it gives the confidence). Text in a script whichlang has no
    /// language for (Thai, Greek, Hebrew, Georgian, ...) goes to whatlang, which names those by
    /// script. Other languages whichlang lacks (Catalan, Polish, Ukrainian, Persian, ...) get
    /// the nearest of its 16.
    #[default]
    Whichlang,
}

/// Analyses texts. Building one loads the VADER lexicons (a few ms); reuse it.
pub struct Analyzer {
    vader: SentimentIntensityAnalyzer,
    /// whatlang: the whole detector with [`DetectorKind::Whatlang`], the fallback for scripts
    /// whichlang has no language for otherwise.
    whatlang: whatlang::Detector,
    /// Set with [`DetectorKind::Whichlang`].
    whichlang: Option<Whichlang>,
}

/// What the whichlang detector needs, worked out once from the two libraries' own tables
/// (whichlang's `three_letter_code`, whatlang's `Lang::from_code` and `Script::langs`).
struct Whichlang {
    /// Scripts in which whichlang has a language.
    scripts: Vec<whatlang::Script>,
    /// One entry per whichlang language.
    answers: Vec<WhichlangAnswer>,
}

struct WhichlangAnswer {
    lang: whichlang::Lang,
    /// The code stored for it (as [`iso_639_1_or_3`] gives it).
    code: &'static str,
    /// For a Latin-script language: whatlang limited to it and [`LATIN_NOT_IN_WHICHLANG`].
    arbiter: Option<whatlang::Detector>,
}

impl Whichlang {
    fn new() -> Self {
        let answers: Vec<WhichlangAnswer> = whichlang::LANGUAGES
            .iter()
            .map(|&lang| {
                let three = lang.three_letter_code();
                let own = whatlang::Lang::from_code(three);
                let arbiter = own
                    .filter(|own| whatlang::Script::Latin.langs().contains(own))
                    .map(|own| {
                        let mut allow = vec![own];
                        allow.extend(LATIN_NOT_IN_WHICHLANG);
                        whatlang::Detector::with_allowlist(allow)
                    });
                WhichlangAnswer {
                    lang,
                    code: own.map_or(three, iso_639_1_or_3),
                    arbiter,
                }
            })
            .collect();
        let scripts = whatlang::Script::all()
            .iter()
            .copied()
            .filter(|script| {
                whichlang::LANGUAGES.iter().any(|lang| {
                    whatlang::Lang::from_code(lang.three_letter_code())
                        .is_some_and(|own| script.langs().contains(&own))
                })
            })
            .collect();
        Self { scripts, answers }
    }

    /// whichlang's answer for `text` in `script` (with whatlang's arbitration on Latin text),
    /// or `None` when whichlang has no language in that script.
    fn detect(&self, text: &str, script: whatlang::Script) -> Option<(&'static str, Option<f64>)> {
        if !self.scripts.contains(&script) {
            return None;
        }
        let guess = whichlang::detect_language(text);
        let answer = self.answers.iter().find(|a| a.lang == guess)?;
        let arbitrated = match (&answer.arbiter, script) {
            (Some(arbiter), whatlang::Script::Latin) => arbiter.detect(text),
            _ => None,
        };
        Some(match arbitrated {
            Some(info) => (iso_639_1_or_3(info.lang()), Some(info.confidence())),
            None => (answer.code, None),
        })
    }
}

/// Latin-script languages frequent on X that whichlang does not know (by Twitter's `lang` in
/// the v1.1 recordings: Indonesian and Tagalog are the 5th and 7th most common tags). On Latin
/// text whatlang chooses between these and whichlang's answer, comparing 1 + N trigram
/// profiles instead of about 40.
const LATIN_NOT_IN_WHICHLANG: [whatlang::Lang; 2] = [whatlang::Lang::Ind, whatlang::Lang::Tgl];

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
            vader: SentimentIntensityAnalyzer::new(),
            whatlang: match languages {
                Some(languages) => whatlang::Detector::with_allowlist(languages),
                None => whatlang::Detector::new(),
            },
            whichlang: (kind == DetectorKind::Whichlang).then(Whichlang::new),
        }
    }

    /// The language identifier in use.
    pub fn detector_kind(&self) -> DetectorKind {
        match self.whichlang {
            Some(_) => DetectorKind::Whichlang,
            None => DetectorKind::Whatlang,
        }
    }

    /// The language of `text` (already cleaned for detection) and whatlang's confidence.
    fn detect(&self, text: &str) -> (Option<&'static str>, Option<f64>) {
        let whichlang = self.whichlang.as_ref().and_then(|which| {
            whatlang::detect_script(text).and_then(|script| which.detect(text, script))
        });
        if let Some((code, confidence)) = whichlang {
            return (Some(code), confidence);
        }
        match self.whatlang.detect(text) {
            Some(info) => (Some(iso_639_1_or_3(info.lang())), Some(info.confidence())),
            None => (None, None),
        }
    }

    /// Detects the language of `text` and scores it if it is English. `platform_lang` is the
    /// post's own `lang` tag, if any (`und` counts as none).
    pub fn analyze(&self, text: &str, platform_lang: Option<&str>) -> Analysis {
        let (language, confidence) = self.detect(&text_for_detection(text));
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
            Analyzer::with_detector(None, Some(vec![whatlang::Lang::Spa, whatlang::Lang::Eng]))
                .unwrap();
        let a = analyzer.analyze(
            "O time jogou muito bem ontem à noite e os torcedores estavam felizes",
            None,
        );
        assert!(matches!(a.language, Some("es" | "en")), "{a:?}");
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
