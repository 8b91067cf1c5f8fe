//! `tweet-consumer train`: trains the language-identification and sentiment models
//! ([`crate::text::model`]) on the labelled tweets in `../shared/data/training` (its
//! MANIFEST.md) and writes `langid.bin` and `sentiment.bin`.
//!
//! Only training splits are read, and every record whose tweet id is in
//! `EXCLUDE_semeval2017_test_ids.txt` or whose `sha1(norm(text))` is in
//! `EXCLUDE_test_text_norm_sha1.tsv` is dropped, as is every text of this project's own
//! held-out sets (XLM-T val, the held-back fifth of TweetLID train, Sentiment140 test). By
//! default only data whose licence allows shipping a derived model is used ([`SOURCES`]);
//! `--include-research-data` adds the rest.

use std::collections::{BTreeMap, HashSet};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::Context as _;

use crate::text::model::norm::norm_sha1;
use crate::text::model::train::{train, Example, SplitMix64, TrainConfig};
use crate::text::model::FeatureConfig;
use crate::text::trained::sentiment_input;
use crate::text::SentimentScorer;

/// A training source: the `dataset` column of the derived files (or `lingua`), its licence and
/// whether that licence allows shipping a model trained on it.
pub struct Source {
    /// The `dataset` value in `derived/*.tsv`.
    pub dataset: &'static str,
    /// The licence MANIFEST.md gives.
    pub licence: &'static str,
    /// CC BY, Apache-2.0 or MIT: a derived model may ship. Otherwise research only.
    pub shippable: bool,
}

/// Every source the trainer can read (MANIFEST.md, per-folder "Licence" lines).
pub const SOURCES: [Source; 10] = [
    Source {
        dataset: "semeval2013-2016_en",
        licence: "CC BY 3.0",
        shippable: true,
    },
    Source {
        dataset: "semeval2017_ar",
        licence: "CC BY 3.0 (SemEval README)",
        shippable: true,
    },
    Source {
        dataset: "umsab_xlmt",
        licence: "Apache-2.0 (cardiffnlp/xlm-t)",
        shippable: true,
    },
    Source {
        dataset: "lingua",
        licence: "Apache-2.0 (pemistahl/lingua-py test data)",
        shippable: true,
    },
    Source {
        dataset: "tweetlid2014_train",
        licence: "none stated (research corpus)",
        shippable: false,
    },
    Source {
        dataset: "mozetic2016",
        licence: "none stated",
        shippable: false,
    },
    Source {
        dataset: "tass2020_task1",
        licence: "none stated (TASS research use)",
        shippable: false,
    },
    Source {
        dataset: "crowdflower_airline_en",
        licence: "CC BY-NC-SA 4.0 (non-commercial)",
        shippable: false,
    },
    Source {
        dataset: "sanders2011_en",
        licence: "none stated (free for research)",
        shippable: false,
    },
    Source {
        dataset: "astd_ar",
        licence: "GPL-2.0",
        shippable: false,
    },
];

/// The languages the sentiment model covers (XLM-T's eight; `hi` is romanised Hindi).
pub const SENTIMENT_LANGUAGES: [&str; 8] = ["ar", "de", "en", "es", "fr", "hi", "it", "pt"];

/// Sentiment labels, in the order of the model's classes.
pub const SENTIMENT_LABELS: [&str; 3] = ["negative", "neutral", "positive"];

/// Whether the TweetLID train row with this tweet id is held back for evaluation (one in
/// five, by a fixed hash of the id, so that train and eval agree without a list).
pub fn tweetlid_held_back(id: &str) -> bool {
    let mut h = 0xcbf2_9ce4_8422_2325u64;
    for &b in id.as_bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h.is_multiple_of(5)
}

/// The feature configuration of the language model.
pub fn langid_features() -> FeatureConfig {
    FeatureConfig {
        bucket_bits: 15,
        word_ngrams: 1,
        char_min: 1,
        char_max: 4,
        language_conjoined: false,
        vader_bins: false,
    }
}

/// The feature configuration of the sentiment model.
pub fn sentiment_features() -> FeatureConfig {
    FeatureConfig {
        bucket_bits: 18,
        word_ngrams: 2,
        char_min: 3,
        char_max: 5,
        language_conjoined: true,
        vader_bins: true,
    }
}

/// Most examples of one language in the language model's training set (a seeded sample
/// above it), so that English and Spanish tweets do not drown the 1,000-sentence languages.
const LANGID_CAP_PER_LANGUAGE: usize = 6_000;

/// How many times each non-English sentiment example is shown per epoch: English has about
/// 49,000 rows, each other language about 1,800, and the shared (not language-conjoined)
/// weights would otherwise be English's (XLM-T val macro-F1 +0.02 to +0.05 in the tuning).
const NON_ENGLISH_REPEATS: usize = 3;

/// Learning rate of the sentiment model. High because the input is the mean of about a hundred
/// hashed features, so each weight's step is the rate over the feature count squared
/// (rates of 1–4 underfit: SemEval-2017 macro recall 0.48–0.55 against 0.61 at 100).
const LEARNING_RATE: f32 = 100.0;

/// Learning rate of the language model: at 100 its TweetLID and XLM-T figures are about the
/// same as at 30 but its agreement with Twitter's `lang` falls from 0.83 to 0.76.
const LANGID_LEARNING_RATE: f32 = 30.0;

/// What `train` was asked to do.
pub struct TrainArgs<'a> {
    /// The training folder (MANIFEST.md's).
    pub data: &'a Path,
    /// lingua's `sentences/` folder.
    pub lingua: &'a Path,
    /// The shared data's Sentiment140 test CSV, excluded when present.
    pub sentiment140: &'a Path,
    /// Where the models go.
    pub out: &'a Path,
    /// Also train on the sources that are not [`Source::shippable`].
    pub include_research_data: bool,
    /// Seed of the shuffles.
    pub seed: u64,
}

fn shippable(dataset: &str) -> Option<bool> {
    SOURCES
        .iter()
        .find(|s| s.dataset == dataset)
        .map(|s| s.shippable)
}

/// A row of a derived TSV: its columns by header name.
struct Tsv {
    header: Vec<String>,
    rows: Vec<Vec<String>>,
}

impl Tsv {
    fn read(path: &Path) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read {} (see MANIFEST.md)", path.display()))?;
        let mut lines = text.lines();
        let header: Vec<String> = lines
            .next()
            .unwrap_or_default()
            .split('\t')
            .map(str::to_owned)
            .collect();
        let rows = lines
            .map(|l| l.split('\t').map(str::to_owned).collect::<Vec<_>>())
            .filter(|r| r.len() == header.len())
            .collect();
        Ok(Self { header, rows })
    }
    fn col(&self, name: &str) -> anyhow::Result<usize> {
        self.header
            .iter()
            .position(|h| h == name)
            .with_context(|| format!("no column {name} in a derived file"))
    }
}

/// The exclusions: test ids and hashes from the EXCLUDE lists, plus this project's held-out
/// texts.
struct Exclusions {
    ids: HashSet<String>,
    hashes: HashSet<String>,
}

impl Exclusions {
    fn drops(&self, id: &str, text: &str) -> bool {
        self.ids.contains(id) || norm_sha1(text).is_some_and(|h| self.hashes.contains(&h))
    }
}

fn lines(path: &Path) -> anyhow::Result<Vec<String>> {
    Ok(std::fs::read_to_string(path)
        .with_context(|| format!("cannot read {}", path.display()))?
        .lines()
        .map(str::to_owned)
        .collect())
}

fn exclusions(args: &TrainArgs, report: &mut String) -> anyhow::Result<Exclusions> {
    let ids: HashSet<String> = lines(&args.data.join("EXCLUDE_semeval2017_test_ids.txt"))?
        .into_iter()
        .map(|l| l.trim().to_owned())
        .filter(|l| !l.is_empty())
        .collect();
    let mut hashes = HashSet::new();
    let mut semeval_hashes = HashSet::new();
    for line in lines(&args.data.join("EXCLUDE_test_text_norm_sha1.tsv"))?
        .iter()
        .skip(1)
    {
        if let Some((set, hash)) = line.split_once('\t') {
            if set == "semeval2017_en_test" {
                semeval_hashes.insert(hash.to_owned());
            }
            hashes.insert(hash.to_owned());
        }
    }
    // Our own norm() must reproduce the list's hashes: the TweetEval copy of the SemEval-2017
    // test (mentions already `@user`, which norm() maps the same way) next to the training folder.
    let tweeteval = args
        .data
        .join("../sentiment/tweeteval_sentiment/test_text.txt");
    if let Ok(texts) = lines(&tweeteval) {
        let hits = texts
            .iter()
            .filter(|t| norm_sha1(t).is_some_and(|h| semeval_hashes.contains(&h)))
            .count();
        let _ = writeln!(
            report,
            "norm() check: {hits} of {} TweetEval test texts hash into EXCLUDE's semeval2017_en_test ({} hashes)",
            texts.len(),
            semeval_hashes.len()
        );
    }
    let mut own = 0usize;
    // XLM-T val (every language) and the held-back TweetLID rows are this project's eval sets.
    let umsab = args.data.join("sentiment/xlmt_umsab");
    for entry in
        std::fs::read_dir(&umsab).with_context(|| format!("cannot list {}", umsab.display()))?
    {
        let val = entry?.path().join("val_text.txt");
        if let Ok(texts) = lines(&val) {
            for t in texts {
                own += usize::from(norm_sha1(&t).is_some_and(|h| hashes.insert(h)));
            }
        }
    }
    let tweetlid = Tsv::read(&args.data.join("derived/langid_tweets.tsv"))?;
    let (ds, id, text) = (
        tweetlid.col("dataset")?,
        tweetlid.col("id")?,
        tweetlid.col("text")?,
    );
    for row in tweetlid
        .rows
        .iter()
        .filter(|r| r[ds] == "tweetlid2014_train" && tweetlid_held_back(&r[id]))
    {
        own += usize::from(norm_sha1(&row[text]).is_some_and(|h| hashes.insert(h)));
    }
    if let Ok(file) = std::fs::File::open(args.sentiment140) {
        for (_, t) in super::eval::read_sentiment140(std::io::BufReader::new(file), "sentiment140")?
        {
            own += usize::from(norm_sha1(&t).is_some_and(|h| hashes.insert(h)));
        }
    }
    let _ = writeln!(
        report,
        "excluded: {} test ids, {} test hashes (incl. {own} of this project's held-out texts)",
        ids.len(),
        hashes.len()
    );
    Ok(Exclusions { ids, hashes })
}

/// Trains both models into `args.out` and returns a Markdown report of what went in.
///
/// # Errors
/// Missing or unreadable training files, or an output folder that cannot be written.
pub fn run(args: &TrainArgs) -> anyhow::Result<String> {
    let started = Instant::now();
    let mut report = String::new();
    let _ = writeln!(
        report,
        "# tweet-consumer train (seed {}, research data: {})\n",
        args.seed, args.include_research_data
    );
    let allowed =
        |dataset: &str| shippable(dataset).is_some_and(|s| s || args.include_research_data);
    let exclude = exclusions(args, &mut report)?;
    let mut used: BTreeMap<(String, &str), usize> = BTreeMap::new();
    let mut dropped = 0usize;

    // Sentiment: derived/sentiment_3class.tsv, training splits only.
    let s3 = Tsv::read(&args.data.join("derived/sentiment_3class.tsv"))?;
    let (lang, label, ds, split, id, text) = (
        s3.col("lang")?,
        s3.col("label")?,
        s3.col("dataset")?,
        s3.col("split")?,
        s3.col("id")?,
        s3.col("text")?,
    );
    let mut sentiment = Vec::new();
    let vader = SentimentScorer::new();
    let mut langid: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for row in &s3.rows {
        let code = if row[lang] == "hi-Latn" {
            "hi"
        } else {
            row[lang].as_str()
        };
        // XLM-T val is an eval set here (its hashes are excluded too).
        let training_split = !row[split].ends_with("/val");
        if !allowed(&row[ds]) || !training_split {
            continue;
        }
        if exclude.drops(&row[id], &row[text]) {
            dropped += 1;
            continue;
        }
        let Some(y) = SENTIMENT_LABELS.iter().position(|l| *l == row[label]) else {
            continue;
        };
        if SENTIMENT_LANGUAGES.contains(&code) {
            let input =
                sentiment_input(&sentiment_features(), &vader, &row[text], &row[text], code);
            let repeats = if code == "en" { 1 } else { NON_ENGLISH_REPEATS };
            for _ in 0..repeats {
                sentiment.push(Example {
                    text: input.clone().into_owned(),
                    language: Some(code.to_owned()),
                    label: y,
                });
            }
            *used
                .entry((format!("sentiment {code}"), source_name(&row[ds])))
                .or_default() += 1;
        }
        if matches!(
            row[ds].as_str(),
            "umsab_xlmt" | "semeval2013-2016_en" | "semeval2017_ar" | "tass2020_task1"
        ) {
            langid
                .entry(code.to_owned())
                .or_default()
                .push(row[text].clone());
            *used
                .entry((format!("langid {code}"), source_name(&row[ds])))
                .or_default() += 1;
        }
    }

    // Language: TweetLID (not held back) and Mozetič from derived/langid_tweets.tsv.
    let lt = Tsv::read(&args.data.join("derived/langid_tweets.tsv"))?;
    let (lang, kind, ds, id, text) = (
        lt.col("lang")?,
        lt.col("label_kind")?,
        lt.col("dataset")?,
        lt.col("id")?,
        lt.col("text")?,
    );
    for row in &lt.rows {
        let tweetlid = row[ds] == "tweetlid2014_train";
        let usable = (tweetlid
            && row[kind] == "annotated"
            && ["es", "pt", "ca", "en", "gl", "eu"].contains(&row[lang].as_str())
            && !tweetlid_held_back(&row[id]))
            || row[ds] == "mozetic2016";
        if !usable || !allowed(&row[ds]) {
            continue;
        }
        if exclude.drops(&row[id], &row[text]) {
            dropped += 1;
            continue;
        }
        langid
            .entry(row[lang].clone())
            .or_default()
            .push(row[text].clone());
        *used
            .entry((format!("langid {}", row[lang]), source_name(&row[ds])))
            .or_default() += 1;
    }
    // lingua's sentences (75 languages; Norwegian Bokmål as the platforms' `no`).
    if allowed("lingua") {
        let mut files: Vec<PathBuf> = std::fs::read_dir(args.lingua)
            .with_context(|| {
                format!(
                    "cannot list lingua's sentences at {} (pass --lingua)",
                    args.lingua.display()
                )
            })?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "txt"))
            .collect();
        files.sort();
        for file in files {
            let stem = file
                .file_stem()
                .and_then(|s| s.to_str())
                .unwrap_or_default();
            let code = if stem == "nb" {
                "no".to_owned()
            } else {
                stem.to_owned()
            };
            for t in lines(&file)?.into_iter().filter(|t| !t.trim().is_empty()) {
                langid.entry(code.clone()).or_default().push(t);
                *used
                    .entry((format!("langid {code}"), "lingua"))
                    .or_default() += 1;
            }
        }
    }

    let mut rng = SplitMix64::new(args.seed);
    let labels: Vec<String> = langid.keys().cloned().collect();
    let mut lid_examples = Vec::new();
    for (y, (_, texts)) in langid.iter_mut().enumerate() {
        rng.shuffle(texts);
        for t in texts.iter().take(LANGID_CAP_PER_LANGUAGE) {
            lid_examples.push(Example {
                text: t.clone(),
                language: None,
                label: y,
            });
        }
    }
    let t0 = Instant::now();
    let lid = train(
        &TrainConfig {
            features: langid_features(),
            epochs: 5,
            learning_rate: LANGID_LEARNING_RATE,
            seed: args.seed,
            balance_classes: false,
        },
        labels.clone(),
        vec![],
        &lid_examples,
    );
    let lid_secs = t0.elapsed().as_secs_f64();
    let t0 = Instant::now();
    let senti = train(
        &TrainConfig {
            features: sentiment_features(),
            epochs: 10,
            learning_rate: LEARNING_RATE,
            seed: args.seed,
            balance_classes: true,
        },
        SENTIMENT_LABELS.iter().map(|s| (*s).to_owned()).collect(),
        SENTIMENT_LANGUAGES
            .iter()
            .map(|s| (*s).to_owned())
            .collect(),
        &sentiment,
    );
    let senti_secs = t0.elapsed().as_secs_f64();

    std::fs::create_dir_all(args.out)
        .with_context(|| format!("cannot create {}", args.out.display()))?;
    for (name, model) in [("langid.bin", &lid), ("sentiment.bin", &senti)] {
        let path = args.out.join(name);
        std::fs::write(&path, model.to_bytes())
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    let _ = writeln!(report, "dropped as test overlap or held out: {dropped}\n");
    let _ = writeln!(
        report,
        "| model | classes | examples | training time |\n|---|---:|---:|---:|\n| langid.bin | {} | {} | {lid_secs:.1} s |\n| sentiment.bin | 3 × {} languages | {} | {senti_secs:.1} s |\n",
        labels.len(),
        lid_examples.len(),
        SENTIMENT_LANGUAGES.len(),
        sentiment.len()
    );
    let _ = writeln!(
        report,
        "| model input | source | licence | rows |\n|---|---|---|---:|"
    );
    for ((what, source), n) in &used {
        let licence = SOURCES
            .iter()
            .find(|s| s.dataset == *source)
            .map_or("", |s| s.licence);
        let _ = writeln!(report, "| {what} | {source} | {licence} | {n} |");
    }
    let _ = writeln!(report, "\nlangid rows above {LANGID_CAP_PER_LANGUAGE} per language are sampled down. Total time: {:.1} s", started.elapsed().as_secs_f64());
    Ok(report)
}

fn source_name(dataset: &str) -> &'static str {
    SOURCES
        .iter()
        .find(|s| s.dataset == dataset)
        .map_or("other", |s| s.dataset)
}
