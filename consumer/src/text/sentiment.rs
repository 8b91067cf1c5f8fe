//! VADER sentiment of English text (vader-parity, which reproduces Python vaderSentiment
//! 3.3.2's scores) and the standard labels on its compound score.
//!
//! VADER's lexicon and rules are English-only (Hutto & Gilbert, ICWSM-14): the caller decides
//! which texts are English ([`super::Analyzer`]).

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

/// Scores English texts with VADER. Building one loads the VADER lexicons (a few ms); reuse it.
pub struct SentimentScorer {
    vader: SentimentIntensityAnalyzer,
}

impl Default for SentimentScorer {
    fn default() -> Self {
        Self::new()
    }
}

impl SentimentScorer {
    /// Loads the VADER lexicons.
    pub fn new() -> Self {
        Self {
            vader: SentimentIntensityAnalyzer::new(),
        }
    }

    /// VADER's scores of `text` (meaningful for English only) and their label.
    pub fn score(&self, text: &str) -> Sentiment {
        let scores = self.vader.polarity_scores(text);
        Sentiment {
            compound: scores.compound,
            pos: scores.pos,
            neu: scores.neu,
            neg: scores.neg,
            label: Label::from_compound(scores.compound),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thresholds_are_inclusive() {
        assert_eq!(Label::from_compound(0.05), Label::Positive);
        assert_eq!(Label::from_compound(-0.05), Label::Negative);
        assert_eq!(Label::from_compound(0.0499), Label::Neutral);
    }
}
