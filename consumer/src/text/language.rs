//! Language identification: whatlang, or whichlang where it knows the script (see
//! [`DetectorKind`]); codes as the platforms tag posts (ISO 639-1 where there is one).

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
    /// This project's language model trained on tweets (consumer/models/langid.bin, 75
    /// languages; docs/models.md), taken when its probability is at least
    /// [`super::LANGID_MIN_PROBABILITY`]; below that whichlang decides as below (whatlang with
    /// `--languages`, which the model also honours). Opt-in: it beats whichlang on TweetLID
    /// and XLM-T but agrees less often with Twitter's own `lang` (docs/models.md).
    Model,
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

/// Identifies the language of cleaned texts ([`super::clean::text_for_detection`]).
pub struct LanguageDetector {
    /// whatlang: the whole detector with [`DetectorKind::Whatlang`], the fallback for scripts
    /// whichlang has no language for otherwise.
    whatlang: whatlang::Detector,
    /// Set with [`DetectorKind::Whichlang`].
    whichlang: Option<Whichlang>,
}

impl LanguageDetector {
    /// A detector of `kind`; `languages` (an allow-list) limits whatlang to those languages.
    pub fn new(kind: DetectorKind, languages: Option<Vec<whatlang::Lang>>) -> Self {
        Self {
            whatlang: match languages {
                Some(languages) => whatlang::Detector::with_allowlist(languages),
                None => whatlang::Detector::new(),
            },
            whichlang: (kind == DetectorKind::Whichlang).then(Whichlang::new),
        }
    }

    /// The language identifier in use (whichlang or whatlang).
    pub fn kind(&self) -> DetectorKind {
        match self.whichlang {
            Some(_) => DetectorKind::Whichlang,
            None => DetectorKind::Whatlang,
        }
    }

    /// The language of `text` (already cleaned for detection) and whatlang's confidence.
    pub fn detect(&self, text: &str) -> (Option<&'static str>, Option<f64>) {
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

/// whatlang names languages by ISO 639-3; the platforms tag posts with ISO 639-1 (BCP 47).
/// whatlang's Mandarin (`cmn`) and Iranian Persian (`pes`) are individual members of the
/// macrolanguages the platforms tag `zh` and `fa`; ISO 639-1 has no code for the members.
pub(crate) fn iso_639_1_or_3(lang: whatlang::Lang) -> &'static str {
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
    use crate::text::Analyzer;

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
    fn codes_compare_with_the_platforms_tags() {
        assert_eq!(iso_639_1_or_3(whatlang::Lang::Cmn), "zh");
        assert_eq!(iso_639_1_or_3(whatlang::Lang::Pes), "fa");
        assert_eq!(iso_639_1_or_3(whatlang::Lang::Spa), "es");
    }
}
