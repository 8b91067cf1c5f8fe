//! The trained models of the analysis (docs/models.md): language identification and
//! sentiment, built into the binary from `consumer/models/` (so a fresh clone needs no data to
//! run them) or read from a folder that `tweet-consumer train --out` wrote.

use std::path::Path;

use super::model::{ModelError, TextModel};

/// `consumer/models/langid.bin`, written by `scripts/train-models.sh`.
const LANGID_BIN: &[u8] = include_bytes!("../../models/langid.bin");
/// `consumer/models/sentiment.bin`, written by `scripts/train-models.sh`.
const SENTIMENT_BIN: &[u8] = include_bytes!("../../models/sentiment.bin");

/// The smallest probability at which the language model's answer is taken; below it the
/// whichlang/whatlang detector decides (short or mixed texts, languages it does not know).
pub const LANGID_MIN_PROBABILITY: f32 = 0.5;

/// Why the trained models could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum TrainedError {
    /// A model file could not be read from disk.
    #[error("cannot read the model file {path}")]
    Read {
        /// The file.
        path: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A model file is not a valid model.
    #[error("the model file {path} is not valid; re-run tweet-consumer train")]
    Invalid {
        /// The file (or `built-in`).
        path: String,
        /// What is wrong.
        #[source]
        source: ModelError,
    },
    /// The sentiment model does not have the three sentiment labels.
    #[error("the sentiment model's labels are {0:?}, expected negative, neutral, positive")]
    Labels(Vec<String>),
}

/// The language and sentiment models.
#[derive(Debug, Clone)]
pub struct TrainedModels {
    /// Language identification: one class per language code.
    pub langid: TextModel,
    /// Sentiment: negative, neutral, positive; conjoined with the language, for
    /// [`TextModel::languages`].
    pub sentiment: TextModel,
}

impl TrainedModels {
    /// The models built into this binary.
    ///
    /// # Errors
    /// [`TrainedError::Invalid`] when a committed file is broken (a unit test guards this).
    pub fn embedded() -> Result<Self, TrainedError> {
        Self::from_bytes(LANGID_BIN, SENTIMENT_BIN, "built-in")
    }

    /// The models in `dir` (`langid.bin`, `sentiment.bin`).
    ///
    /// # Errors
    /// A file that cannot be read or is not a model.
    pub fn load(dir: &Path) -> Result<Self, TrainedError> {
        let read = |name: &str| {
            let path = dir.join(name);
            std::fs::read(&path).map_err(|source| TrainedError::Read {
                path: path.display().to_string(),
                source,
            })
        };
        Self::from_bytes(
            &read("langid.bin")?,
            &read("sentiment.bin")?,
            &dir.display().to_string(),
        )
    }

    fn from_bytes(langid: &[u8], sentiment: &[u8], origin: &str) -> Result<Self, TrainedError> {
        let parse = |bytes: &[u8], name: &str| {
            TextModel::from_bytes(bytes).map_err(|source| TrainedError::Invalid {
                path: format!("{origin}/{name}"),
                source,
            })
        };
        let models = Self {
            langid: parse(langid, "langid.bin")?,
            sentiment: parse(sentiment, "sentiment.bin")?,
        };
        if models.sentiment.labels != ["negative", "neutral", "positive"] {
            return Err(TrainedError::Labels(models.sentiment.labels));
        }
        Ok(models)
    }
}

/// What the sentiment model reads for a post in `language`: `base` (the post's text, or that
/// text already cleaned by [`super::text_for_detection`]), with
/// [`super::model::FeatureConfig::vader_bins`] and an English post followed by VADER's scores of
/// the raw `text` as words ([`super::model::features::vader_words`]). Training and analysis
/// both go through here, so the two cannot drift; the words survive cleaning, so cleaning
/// before or after appending them gives the same tokens.
pub fn sentiment_input<'a>(
    config: &super::model::FeatureConfig,
    vader: &super::SentimentScorer,
    text: &str,
    base: &'a str,
    language: &str,
) -> std::borrow::Cow<'a, str> {
    if config.vader_bins && language == "en" {
        let words = super::model::features::vader_words(&vader.score(text));
        std::borrow::Cow::Owned(format!("{base}{words}"))
    } else {
        std::borrow::Cow::Borrowed(base)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_built_in_models_load() {
        let models = TrainedModels::embedded().expect("consumer/models holds valid models");
        assert!(models.langid.labels.iter().any(|l| l == "ca"));
        assert_eq!(models.sentiment.languages.len(), 8);
    }
}
