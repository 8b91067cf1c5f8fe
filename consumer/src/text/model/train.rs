//! The trainer of [`super::TextModel`]: plain SGD on the softmax cross-entropy, examples in a
//! seeded shuffle each epoch, learning rate decaying linearly to 0 (as fastText's supervised
//! mode), one thread. The same examples, configuration and seed give byte-identical models.

use super::features::{extract, FeatureConfig};
use super::{softmax, TextModel};

/// How to train.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TrainConfig {
    /// The features.
    pub features: FeatureConfig,
    /// Passes over the examples.
    pub epochs: u32,
    /// Starting learning rate (per mean-of-features input).
    pub learning_rate: f32,
    /// Seed of the shuffle.
    pub seed: u64,
    /// Weigh each class by total / (classes × its count), so that a rare class counts as much
    /// as a frequent one (the data's macro metrics).
    pub balance_classes: bool,
}

/// One labelled text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Example {
    /// The raw post text.
    pub text: String,
    /// Its language, for a language-conjoined model.
    pub language: Option<String>,
    /// Index into the label list.
    pub label: usize,
}

/// SplitMix64: a tiny generator whose sequence is fixed by its seed forever (a crate's
/// generator may change between versions, and with it the models).
pub struct SplitMix64(u64);

impl SplitMix64 {
    /// A generator starting at `seed`.
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }
    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    /// A Fisher–Yates shuffle of `v`.
    pub fn shuffle<T>(&mut self, v: &mut [T]) {
        for i in (1..v.len()).rev() {
            let j = (self.next_u64() % (i as u64 + 1)) as usize;
            v.swap(i, j);
        }
    }
}

/// Trains a model over `labels` on `examples` (each label an index into `labels`);
/// `languages` is stored in the model (the languages a conjoined model covers).
pub fn train(
    config: &TrainConfig,
    labels: Vec<String>,
    languages: Vec<String>,
    examples: &[Example],
) -> TextModel {
    let (bias, weights) = train_f32(config, labels.len(), examples);
    TextModel::quantise(config.features, labels, languages, bias, &weights)
}

/// The trainer's f32 result over `k` classes: (bias, bucket-major weights), before
/// [`TextModel::quantise`].
pub fn train_f32(config: &TrainConfig, k: usize, examples: &[Example]) -> (Vec<f32>, Vec<f32>) {
    let buckets = 1usize << config.features.bucket_bits;
    let mut weights = vec![0f32; buckets * k];
    let mut bias = vec![0f32; k];
    let mut counts = vec![0usize; k];
    for e in examples {
        counts[e.label] += 1;
    }
    let class_weight: Vec<f32> = counts
        .iter()
        .map(|&c| match (config.balance_classes, c) {
            (true, c) if c > 0 => examples.len() as f32 / (k * c) as f32,
            _ => 1.0,
        })
        .collect();
    let mut order: Vec<usize> = (0..examples.len()).collect();
    let mut rng = SplitMix64::new(config.seed);
    let total_steps = (examples.len() as u64 * u64::from(config.epochs)).max(1) as f32;
    let mut step = 0u64;
    let mut features = Vec::new();
    let mut logits = vec![0f32; k];
    for _ in 0..config.epochs {
        rng.shuffle(&mut order);
        for &i in &order {
            let e = &examples[i];
            let lr = config.learning_rate * (1.0 - step as f32 / total_steps);
            step += 1;
            extract(
                &config.features,
                &e.text,
                e.language.as_deref(),
                &mut features,
            );
            if features.is_empty() {
                continue;
            }
            let n = features.len() as f32;
            logits.copy_from_slice(&bias);
            for &f in &features {
                let row = &weights[f as usize * k..(f as usize + 1) * k];
                for (l, w) in logits.iter_mut().zip(row) {
                    *l += w / n;
                }
            }
            softmax(&mut logits);
            // logits now holds p; gradient of the loss on logit j is (p_j - y_j).
            let cw = class_weight[e.label];
            for (j, p) in logits.iter_mut().enumerate() {
                let y = if j == e.label { 1.0 } else { 0.0 };
                *p = (*p - y) * cw * lr;
                bias[j] -= *p * 0.1;
            }
            for &f in &features {
                let row = &mut weights[f as usize * k..(f as usize + 1) * k];
                for (w, g) in row.iter_mut().zip(&logits) {
                    *w -= g / n;
                }
            }
        }
    }
    (bias, weights)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(seed: u64) -> TrainConfig {
        TrainConfig {
            features: FeatureConfig {
                bucket_bits: 12,
                word_ngrams: 2,
                char_min: 2,
                char_max: 4,
                language_conjoined: false,
                vader_bins: true,
            },
            epochs: 10,
            learning_rate: 2.0,
            seed,
            balance_classes: true,
        }
    }

    /// Two classes with disjoint vocabularies, a few sentences each.
    fn examples() -> Vec<Example> {
        let happy = [
            "what a lovely sunny day",
            "love this great song",
            "so happy and glad today",
            "lovely great happy news",
        ];
        let sad = [
            "terrible awful rainy night",
            "hate this broken phone",
            "so sad and angry today",
            "awful terrible sad news",
        ];
        happy
            .iter()
            .map(|t| (t, 0))
            .chain(sad.iter().map(|t| (t, 1)))
            .map(|(t, label)| Example {
                text: (*t).to_owned(),
                language: None,
                label,
            })
            .collect()
    }

    fn labels() -> Vec<String> {
        vec!["happy".to_owned(), "sad".to_owned()]
    }

    #[test]
    fn training_separates_a_synthetic_set() {
        let model = train(&config(7), labels(), vec![], &examples());
        let mut scratch = Vec::new();
        assert_eq!(
            model
                .predict("a lovely happy song", None, None, &mut scratch)
                .0,
            0
        );
        assert_eq!(
            model
                .predict("an awful sad night", None, None, &mut scratch)
                .0,
            1
        );
        for e in examples() {
            assert_eq!(
                model.predict(&e.text, None, None, &mut scratch).0,
                e.label,
                "{}",
                e.text
            );
        }
        // Restricting the classes picks the best allowed one with all the probability.
        let (best, p) = model.predict(
            "a lovely happy song",
            None,
            Some(&[false, true]),
            &mut scratch,
        );
        assert_eq!((best, p), (1, 1.0));
    }

    #[test]
    fn a_saved_model_loads_with_identical_predictions() {
        let model = train(&config(7), labels(), vec!["en".to_owned()], &examples());
        let loaded = TextModel::from_bytes(&model.to_bytes()).unwrap();
        assert_eq!(loaded, model);
        let mut scratch = Vec::new();
        for text in ["lovely", "awful phone", "nothing known here", ""] {
            assert_eq!(
                loaded.probabilities(text, None, &mut scratch),
                model.probabilities(text, None, &mut scratch)
            );
        }
        assert!(TextModel::from_bytes(b"not gzip").is_err());
        let mut truncated = model.to_bytes();
        truncated.truncate(truncated.len() / 2);
        assert!(TextModel::from_bytes(&truncated).is_err());
    }

    #[test]
    fn the_same_seed_gives_byte_identical_models() {
        let a = train(&config(7), labels(), vec![], &examples()).to_bytes();
        let b = train(&config(7), labels(), vec![], &examples()).to_bytes();
        assert_eq!(a, b);
        let c = train(&config(8), labels(), vec![], &examples()).to_bytes();
        assert_ne!(a, c, "a different seed shuffles differently");
    }
}
