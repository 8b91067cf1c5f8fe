//! The project's own compact text classifier: hashed word 1–2-grams and character n-grams
//! ([`features`]) into a linear softmax, trained here ([`train`]) on labelled tweets and stored
//! as a small versioned binary file with i8 weights ([`TextModel::to_bytes`]).
//!
//! File format, version 1 (all integers little-endian), gzip-compressed as a whole:
//! `b"TPTM"`, `u16` version, `u8` bucket_bits, `u8` word_ngrams, `u8` char_min, `u8` char_max,
//! `u8` flags (bit 0: language_conjoined, bit 1: vader_bins), `u16` label count K, K × (`u8` length, UTF-8 label), `u16`
//! language count L, L × (`u8` length, UTF-8 code), K × `f32` bias, K × `f32` scale, then
//! 2^bucket_bits × K `i8` weights, bucket-major (a bucket's K weights are adjacent). A weight
//! is `i8 × scale[k]`; the logit of class k is `bias[k] + mean over features of weight`.

pub mod features;
pub mod norm;
pub mod train;

use std::io::{Read as _, Write as _};

pub use self::features::FeatureConfig;

/// The file magic.
const MAGIC: &[u8; 4] = b"TPTM";
/// The current file version.
pub const FORMAT_VERSION: u16 = 1;

/// Why a model file could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    /// Not gzip, or truncated.
    #[error("cannot decompress the model file")]
    Decompress(#[source] std::io::Error),
    /// Wrong magic or version, or inconsistent sizes.
    #[error("not a tweet-pipeline model file: {0}")]
    Format(String),
}

/// A trained linear classifier over hashed features.
#[derive(Debug, Clone, PartialEq)]
pub struct TextModel {
    /// The features it was trained on.
    pub config: FeatureConfig,
    /// Class labels (language codes, or `negative`/`neutral`/`positive`).
    pub labels: Vec<String>,
    /// For a language-conjoined model, the languages it was trained on (empty otherwise).
    pub languages: Vec<String>,
    bias: Vec<f32>,
    scale: Vec<f32>,
    /// `2^bucket_bits × labels.len()` quantised weights, bucket-major.
    weights: Vec<i8>,
}

impl TextModel {
    /// Quantises f32 weights (bucket-major, `2^bucket_bits × labels.len()`) to i8 with one
    /// scale per class (its largest magnitude maps to 127).
    pub fn quantise(
        config: FeatureConfig,
        labels: Vec<String>,
        languages: Vec<String>,
        bias: Vec<f32>,
        weights: &[f32],
    ) -> Self {
        let k = labels.len();
        let mut scale = vec![0f32; k];
        for row in weights.chunks_exact(k) {
            for (s, w) in scale.iter_mut().zip(row) {
                *s = s.max(w.abs());
            }
        }
        for s in &mut scale {
            *s = if *s > 0.0 { *s / 127.0 } else { 1.0 };
        }
        let weights = weights
            .chunks_exact(k)
            .flat_map(|row| {
                row.iter()
                    .zip(&scale)
                    .map(|(w, s)| (w / s).round().clamp(-127.0, 127.0) as i8)
            })
            .collect();
        Self {
            config,
            labels,
            languages,
            bias,
            scale,
            weights,
        }
    }

    /// Class probabilities of `text` (same order as [`Self::labels`]), summing to 1.
    /// `language` matters only to a language-conjoined model. `features` is scratch space.
    pub fn probabilities(
        &self,
        text: &str,
        language: Option<&str>,
        features: &mut Vec<u32>,
    ) -> Vec<f32> {
        features::extract(&self.config, text, language, features);
        self.probabilities_of(features)
    }

    /// [`Self::probabilities`] of a text [`crate::text::text_for_detection`] has already
    /// cleaned.
    pub fn probabilities_cleaned(
        &self,
        cleaned: &str,
        language: Option<&str>,
        features: &mut Vec<u32>,
    ) -> Vec<f32> {
        features::extract_cleaned(&self.config, cleaned, language, features);
        self.probabilities_of(features)
    }

    fn probabilities_of(&self, features: &[u32]) -> Vec<f32> {
        let k = self.labels.len();
        let mut sums = vec![0i32; k];
        for &f in features {
            let row = &self.weights[f as usize * k..(f as usize + 1) * k];
            for (s, &w) in sums.iter_mut().zip(row) {
                *s += i32::from(w);
            }
        }
        let n = features.len().max(1) as f32;
        let mut logits: Vec<f32> = (0..k)
            .map(|i| self.bias[i] + sums[i] as f32 * self.scale[i] / n)
            .collect();
        softmax(&mut logits);
        logits
    }

    /// The most probable class of `text` among those `allowed` keeps (all when `None`) and its
    /// probability renormalised over them.
    pub fn predict(
        &self,
        text: &str,
        language: Option<&str>,
        allowed: Option<&[bool]>,
        features: &mut Vec<u32>,
    ) -> (usize, f32) {
        best_allowed(self.probabilities(text, language, features), allowed)
    }

    /// [`Self::predict`] of a text [`crate::text::text_for_detection`] has already cleaned.
    pub fn predict_cleaned(
        &self,
        cleaned: &str,
        allowed: Option<&[bool]>,
        features: &mut Vec<u32>,
    ) -> (usize, f32) {
        best_allowed(self.probabilities_cleaned(cleaned, None, features), allowed)
    }
}

/// The most probable class among those `allowed` keeps, its probability renormalised.
fn best_allowed(mut p: Vec<f32>, allowed: Option<&[bool]>) -> (usize, f32) {
    if let Some(allowed) = allowed {
        for (p, &ok) in p.iter_mut().zip(allowed) {
            if !ok {
                *p = 0.0;
            }
        }
        let total: f32 = p.iter().sum();
        if total > 0.0 {
            p.iter_mut().for_each(|x| *x /= total);
        }
    }
    p.iter()
        .copied()
        .enumerate()
        .fold((0, f32::MIN), |a, b| if b.1 > a.1 { b } else { a })
}

impl TextModel {
    /// The file bytes (gzip of the version-1 layout above).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut raw = Vec::with_capacity(self.weights.len() + 1024);
        raw.extend_from_slice(MAGIC);
        raw.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
        let c = &self.config;
        raw.extend_from_slice(&[
            c.bucket_bits,
            c.word_ngrams,
            c.char_min,
            c.char_max,
            u8::from(c.language_conjoined) | (u8::from(c.vader_bins) << 1),
        ]);
        for list in [&self.labels, &self.languages] {
            raw.extend_from_slice(&(list.len() as u16).to_le_bytes());
            for s in list {
                raw.push(s.len() as u8);
                raw.extend_from_slice(s.as_bytes());
            }
        }
        for v in self.bias.iter().chain(&self.scale) {
            raw.extend_from_slice(&v.to_le_bytes());
        }
        raw.extend(self.weights.iter().map(|&w| w as u8));
        // mtime 0 and a fixed level: the same model gives byte-identical files.
        let mut gz = flate2::GzBuilder::new()
            .mtime(0)
            .write(Vec::new(), flate2::Compression::best());
        // Writing into a Vec cannot fail.
        let _ = gz.write_all(&raw);
        gz.finish().unwrap_or_default()
    }

    /// Reads a model file.
    ///
    /// # Errors
    /// [`ModelError`] when it is not gzip, not this format or version, or truncated.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, ModelError> {
        let mut raw = Vec::new();
        flate2::read::GzDecoder::new(bytes)
            .read_to_end(&mut raw)
            .map_err(ModelError::Decompress)?;
        let mut r = Reader { raw: &raw, at: 0 };
        if r.take(4)? != MAGIC {
            return Err(ModelError::Format("bad magic".into()));
        }
        let version = u16::from_le_bytes([r.byte()?, r.byte()?]);
        if version != FORMAT_VERSION {
            return Err(ModelError::Format(format!(
                "version {version}, this build reads {FORMAT_VERSION}"
            )));
        }
        let config = FeatureConfig {
            bucket_bits: r.byte()?,
            word_ngrams: r.byte()?,
            char_min: r.byte()?,
            char_max: r.byte()?,
            language_conjoined: false,
            vader_bins: false,
        };
        let flags = r.byte()?;
        if flags > 3 {
            return Err(ModelError::Format(format!(
                "unknown feature flags {flags:#04x}"
            )));
        }
        let config = FeatureConfig {
            language_conjoined: flags & 1 != 0,
            vader_bins: flags & 2 != 0,
            ..config
        };
        if !(8..=24).contains(&config.bucket_bits) || config.char_min > config.char_max {
            return Err(ModelError::Format("bad feature configuration".into()));
        }
        let labels = r.strings()?;
        let languages = r.strings()?;
        let k = labels.len();
        if k < 2 {
            return Err(ModelError::Format("fewer than two labels".into()));
        }
        let bias = r.floats(k)?;
        let scale = r.floats(k)?;
        let n = (1usize << config.bucket_bits) * k;
        let weights = r.take(n)?.iter().map(|&b| b as i8).collect();
        if r.at != raw.len() {
            return Err(ModelError::Format("trailing bytes".into()));
        }
        Ok(Self {
            config,
            labels,
            languages,
            bias,
            scale,
            weights,
        })
    }
}

struct Reader<'a> {
    raw: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], ModelError> {
        let end = self.at.checked_add(n).filter(|&e| e <= self.raw.len());
        let end = end.ok_or_else(|| ModelError::Format("truncated".into()))?;
        let out = &self.raw[self.at..end];
        self.at = end;
        Ok(out)
    }
    fn byte(&mut self) -> Result<u8, ModelError> {
        Ok(self.take(1)?[0])
    }
    fn strings(&mut self) -> Result<Vec<String>, ModelError> {
        let n = u16::from_le_bytes([self.byte()?, self.byte()?]);
        (0..n)
            .map(|_| {
                let len = usize::from(self.byte()?);
                String::from_utf8(self.take(len)?.to_vec())
                    .map_err(|_| ModelError::Format("label is not UTF-8".into()))
            })
            .collect()
    }
    fn floats(&mut self, n: usize) -> Result<Vec<f32>, ModelError> {
        (0..n)
            .map(|_| {
                let b = self.take(4)?;
                Ok(f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            })
            .collect()
    }
}

/// In-place softmax (numerically stable).
pub(crate) fn softmax(v: &mut [f32]) {
    let max = v.iter().copied().fold(f32::MIN, f32::max);
    let mut total = 0.0;
    for x in v.iter_mut() {
        *x = (*x - max).exp();
        total += *x;
    }
    for x in v.iter_mut() {
        *x /= total;
    }
}
