//! `tweet-consumer eval`: scores the analysis (language identification with either detector, VADER
//! sentiment) on the labelled sets in `../shared/data` (MANIFEST.md sections 9 and 10) and prints
//! Markdown tables. `scripts/bench/accuracy_reference.py` prints the same tables for langdetect +
//! vaderSentiment; `scripts/accuracy.sh` runs both into `docs/accuracy.md`.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::Context as _;
use tweet_pipeline_common::emoji::is_emoji_part;
use tweet_pipeline_common::post::parse_post;

use crate::offline::train::tweetlid_held_back;
use crate::text::{Analyzer, AnalyzerOptions, DetectorKind, Label, SentimentKind, TrainedModels};

/// TweetLID 2014's single-language labels; `und`, `other` and multi-language rows are skipped.
const TWEETLID_LANGUAGES: [&str; 6] = ["es", "pt", "ca", "en", "gl", "eu"];

/// XLM-T (UMSAB) folders and their ISO 639-1 codes (cardiffnlp/xlm-t README).
const XLMT_LANGUAGES: [(&str, &str); 8] = [
    ("arabic", "ar"),
    ("english", "en"),
    ("french", "fr"),
    ("german", "de"),
    ("hindi", "hi"),
    ("italian", "it"),
    ("portuguese", "pt"),
    ("spanish", "es"),
];

/// Sentiment classes in the TweetEval order (mapping.txt: 0 negative, 1 neutral, 2 positive).
const SENTIMENT_LABELS: [&str; 3] = ["negative", "neutral", "positive"];

/// Languages listed in the Twitter-agreement table (the most frequent).
const TWITTER_TOP_LANGUAGES: usize = 15;

/// Counts of (gold, predicted) pairs over a fixed set of gold classes. A prediction outside the
/// classes (or none) lands in one extra "other" column: it is wrong and no class's precision.
#[derive(Debug, Clone)]
pub struct Confusion {
    labels: Vec<String>,
    /// `counts[gold][predicted]`, `predicted == labels.len()` for other/none.
    counts: Vec<Vec<u64>>,
}

/// Precision, recall and F1 of one class (0 where undefined, as scikit-learn's
/// `zero_division=0`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ClassScores {
    /// tp / predicted as the class.
    pub precision: f64,
    /// tp / gold of the class.
    pub recall: f64,
    /// Harmonic mean of precision and recall.
    pub f1: f64,
    /// Gold rows of the class.
    pub support: u64,
}

fn ratio(num: u64, den: u64) -> f64 {
    if den == 0 {
        0.0
    } else {
        num as f64 / den as f64
    }
}

impl Confusion {
    /// An empty matrix over these gold classes.
    pub fn new<S: AsRef<str>>(labels: &[S]) -> Self {
        let labels: Vec<String> = labels.iter().map(|l| l.as_ref().to_owned()).collect();
        let counts = vec![vec![0; labels.len() + 1]; labels.len()];
        Self { labels, counts }
    }

    /// Counts one pair; a gold label outside the classes is ignored (returns false).
    pub fn add(&mut self, gold: &str, predicted: Option<&str>) -> bool {
        let Some(g) = self.index(gold) else {
            return false;
        };
        let p = predicted
            .and_then(|p| self.index(p))
            .unwrap_or(self.labels.len());
        self.counts[g][p] += 1;
        true
    }

    fn index(&self, label: &str) -> Option<usize> {
        self.labels.iter().position(|l| l == label)
    }

    /// The gold classes, in order.
    pub fn labels(&self) -> &[String] {
        &self.labels
    }

    /// `counts[gold][predicted]`; the last column is other/none.
    pub fn count(&self, gold: usize, predicted: usize) -> u64 {
        self.counts[gold][predicted]
    }

    /// Pairs counted.
    pub fn total(&self) -> u64 {
        self.counts.iter().flatten().sum()
    }

    /// Pairs on the diagonal.
    pub fn correct(&self) -> u64 {
        (0..self.labels.len()).map(|i| self.counts[i][i]).sum()
    }

    /// correct / total.
    pub fn accuracy(&self) -> f64 {
        ratio(self.correct(), self.total())
    }

    /// Scores of class `i`.
    pub fn class(&self, i: usize) -> ClassScores {
        let tp = self.counts[i][i];
        let support: u64 = self.counts[i].iter().sum();
        let predicted: u64 = self.counts.iter().map(|row| row[i]).sum();
        let precision = ratio(tp, predicted);
        let recall = ratio(tp, support);
        let f1 = if precision + recall == 0.0 {
            0.0
        } else {
            2.0 * precision * recall / (precision + recall)
        };
        ClassScores {
            precision,
            recall,
            f1,
            support,
        }
    }

    fn macro_of(&self, f: impl Fn(ClassScores) -> f64) -> f64 {
        let n = self.labels.len();
        (0..n).map(|i| f(self.class(i))).sum::<f64>() / n.max(1) as f64
    }

    /// Unweighted mean of the classes' precision.
    pub fn macro_precision(&self) -> f64 {
        self.macro_of(|c| c.precision)
    }

    /// Unweighted mean of the classes' recall (SemEval-2017 Task 4A's primary metric).
    pub fn macro_recall(&self) -> f64 {
        self.macro_of(|c| c.recall)
    }

    /// Unweighted mean of the classes' F1.
    pub fn macro_f1(&self) -> f64 {
        self.macro_of(|c| c.f1)
    }
}

/// Codes compared as equal across Twitter, whatlang (via isolang) and langdetect: Twitter's
/// legacy `in`/`iw`, and the individual languages that have no ISO 639-1 code of their own.
pub fn normalise_lang(code: &str) -> &str {
    match code {
        "in" => "id",
        "iw" => "he",
        "cmn" | "zh-cn" | "zh-tw" => "zh",
        "pes" => "fa",
        "nb" => "no",
        other => other,
    }
}

/// The sentiment140 test set (CSV without a header: polarity 0/2/4, id, date, query, user,
/// text; fields may be double-quoted, `""` a quote inside one) as (sentiment label 0..=2,
/// text). Records without six fields are skipped; `source` names the input in errors.
///
/// # Errors
/// A record that is not CSV, or a polarity other than 0, 2 or 4.
pub fn read_sentiment140(
    input: impl std::io::Read,
    source: &str,
) -> anyhow::Result<Vec<(usize, String)>> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(input);
    let mut rows = Vec::new();
    for record in reader.records() {
        let record = record.with_context(|| format!("cannot read {source} as CSV"))?;
        if record.len() != 6 {
            continue;
        }
        let label = match &record[0] {
            "0" => 0,
            "2" => 1,
            "4" => 2,
            other => anyhow::bail!("{source}: unknown polarity {other:?}"),
        };
        rows.push((label, record[5].to_owned()));
    }
    Ok(rows)
}

/// Lines of a text file (`\n`, `\r\n`), the same split as the Python reference's.
fn read_lines(path: &Path) -> anyhow::Result<Vec<String>> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read {} (see MANIFEST.md)", path.display()))?;
    Ok(text.lines().map(str::to_owned).collect())
}

struct Sets {
    tweetlid: Vec<(String, String)>,
    /// The held-back fifth of TweetLID train ([`tweetlid_held_back`]), never trained on.
    tweetlid_held: Vec<(String, String)>,
    /// (language code, text, sentiment label 0..=2)
    xlmt: Vec<(&'static str, String, usize)>,
    /// XLM-T val only, never trained on.
    xlmt_val: Vec<(&'static str, String, usize)>,
    twitter: Vec<(String, String)>,
    semeval: Vec<(usize, String)>,
    sentiment140: Vec<(usize, String)>,
}

fn load(data: &Path) -> anyhow::Result<Sets> {
    let mut tweetlid = Vec::new();
    let mut tweetlid_held = Vec::new();
    for line in read_lines(&data.join("langid/tweetlid2014/train.tsv"))? {
        let mut parts = line.splitn(4, '\t');
        let (Some(id), Some(_), Some(gold), Some(text)) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            continue;
        };
        if TWEETLID_LANGUAGES.contains(&gold) {
            if tweetlid_held_back(id) {
                tweetlid_held.push((gold.to_owned(), text.to_owned()));
            }
            tweetlid.push((gold.to_owned(), text.to_owned()));
        }
    }
    let mut xlmt_val = Vec::new();

    let mut xlmt = Vec::new();
    for (folder, code) in XLMT_LANGUAGES {
        for split in ["train", "val"] {
            let dir = data.join("sentiment/xlm-t_umsab").join(folder);
            let texts = read_lines(&dir.join(format!("{split}_text.txt")))?;
            let labels = read_lines(&dir.join(format!("{split}_labels.txt")))?;
            anyhow::ensure!(
                texts.len() == labels.len(),
                "{folder}/{split}: {} texts but {} labels",
                texts.len(),
                labels.len()
            );
            for (text, label) in texts.into_iter().zip(labels) {
                let row = (code, text, sentiment_label(&label)?);
                if split == "val" {
                    xlmt_val.push(row.clone());
                }
                xlmt.push(row);
            }
        }
    }

    let mut twitter = Vec::new();
    for sub in ["stream_sample", "stream_filter"] {
        let dir = data.join("twitter_v1").join(sub);
        let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
            .with_context(|| format!("cannot list {}", dir.display()))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "jsonl"))
            .collect();
        files.sort();
        for file in files {
            let bytes =
                std::fs::read(&file).with_context(|| format!("cannot read {}", file.display()))?;
            for line in bytes.split(|&b| b == b'\n') {
                let Ok(post) = parse_post(line) else { continue };
                match post.lang.as_deref() {
                    None | Some("und") => {}
                    Some(lang) => {
                        twitter.push((normalise_lang(lang).to_owned(), post.text.into_owned()))
                    }
                }
            }
        }
    }

    let dir = data.join("sentiment/tweeteval_sentiment");
    let texts = read_lines(&dir.join("test_text.txt"))?;
    let labels = read_lines(&dir.join("test_labels.txt"))?;
    anyhow::ensure!(
        texts.len() == labels.len(),
        "tweeteval test: texts and labels differ in length"
    );
    let semeval = labels
        .iter()
        .map(|l| sentiment_label(l))
        .zip(texts)
        .map(|(l, t)| l.map(|l| (l, t)))
        .collect::<anyhow::Result<_>>()?;

    let path = data.join("sentiment/sentiment140/testdata.manual.2009.06.14.csv");
    let file = std::fs::File::open(&path)
        .with_context(|| format!("cannot read {} (see MANIFEST.md)", path.display()))?;
    let sentiment140 =
        read_sentiment140(std::io::BufReader::new(file), &path.display().to_string())?;

    Ok(Sets {
        tweetlid,
        tweetlid_held,
        xlmt,
        xlmt_val,
        twitter,
        semeval,
        sentiment140,
    })
}

fn sentiment_label(line: &str) -> anyhow::Result<usize> {
    match line.trim() {
        "0" => Ok(0),
        "1" => Ok(1),
        "2" => Ok(2),
        other => anyhow::bail!("unknown sentiment label {other:?} (expected 0, 1 or 2)"),
    }
}

fn label_index(label: Label) -> usize {
    match label {
        Label::Negative => 0,
        Label::Neutral => 1,
        Label::Positive => 2,
    }
}

/// Runs every evaluation over `data` and returns the Markdown report.
pub fn run(
    data: &Path,
    vader_parity: Option<&Path>,
    detector: Option<DetectorKind>,
    languages: Option<Vec<whatlang::Lang>>,
    models: Option<&Path>,
) -> anyhow::Result<String> {
    let models = match models {
        Some(dir) => TrainedModels::load(dir)?,
        None => TrainedModels::embedded()?,
    };
    if !data.is_dir() {
        anyhow::bail!(
            "no data directory at {}; pass --data with the shared data (the folder of MANIFEST.md)",
            data.display()
        );
    }
    let started = Instant::now();
    let sets = load(data)?;
    let analyzer = Analyzer::with_options(AnalyzerOptions {
        detector,
        languages,
        sentiment: SentimentKind::Vader,
        models: Some(models.clone()),
    })
    .map_err(anyhow::Error::msg)?;
    let detect = |text: &str| analyzer.analyze(text, None).language.map(normalise_lang);
    let vader = |text: &str| {
        let analysis = analyzer.analyze(text, Some("en"));
        analysis
            .sentiment
            .map(|s| (s.compound, label_index(s.label)))
    };

    let mut out = String::new();
    let o = &mut out;
    let detector_name = match analyzer.detector_kind() {
        DetectorKind::Model => "the trained model (whichlang below its threshold)",
        DetectorKind::Whatlang => "whatlang",
        DetectorKind::Whichlang => "whichlang (with whatlang for id/tl and other scripts)",
    };
    let _ = writeln!(
        o,
        "# tweet-consumer eval: {detector_name} (language) + vader-parity (VADER sentiment)\n"
    );
    let _ = writeln!(o, "All rows of every set in sections 1 and 2 (VADER sentiment); the trained models saw TweetLID's and XLM-T's train rows, so their held-out figures are in section 0.\n");
    write_models_section(o, &sets, &models)?;

    // 1a. TweetLID
    let mut tweetlid = Confusion::new(&TWEETLID_LANGUAGES);
    for (gold, text) in &sets.tweetlid {
        tweetlid.add(gold, detect(text));
    }
    let _ = writeln!(
        o,
        "## 1a. Language identification: TweetLID 2014 train (single-language rows)\n"
    );
    write_class_table(o, "language", &tweetlid);

    // 1b. XLM-T
    let codes: Vec<&str> = XLMT_LANGUAGES.iter().map(|(_, c)| *c).collect();
    let mut xlmt_lang = Confusion::new(&codes);
    for (code, text, _) in &sets.xlmt {
        xlmt_lang.add(code, detect(text));
    }
    let _ = writeln!(
        o,
        "## 1b. Language identification: XLM-T UMSAB train+val (Hindi is romanised)\n"
    );
    write_class_table(o, "language", &xlmt_lang);

    // 1c. Twitter's lang
    let mut gold_counts: Vec<(String, u64)> = Vec::new();
    for (lang, _) in &sets.twitter {
        match gold_counts.iter_mut().find(|(l, _)| l == lang) {
            Some((_, n)) => *n += 1,
            None => gold_counts.push((lang.clone(), 1)),
        }
    }
    gold_counts.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    let twitter_labels: Vec<&str> = gold_counts.iter().map(|(l, _)| l.as_str()).collect();
    let mut twitter = Confusion::new(&twitter_labels);
    for (lang, text) in &sets.twitter {
        twitter.add(lang, detect(text));
    }
    let _ = writeln!(
        o,
        "## 1c. Agreement with Twitter's `lang` (v1.1 stream recordings, statuses, `und` skipped)\n"
    );
    let _ = writeln!(
        o,
        "statuses: {}, agreement: {:.4}, languages: {} (top {} below)\n",
        twitter.total(),
        twitter.accuracy(),
        twitter.labels().len(),
        TWITTER_TOP_LANGUAGES
    );
    write_class_rows(o, "Twitter lang", &twitter, TWITTER_TOP_LANGUAGES);

    // 2a/2b. English sentiment
    let mut parity_scores = Vec::new();
    let mut semeval = Confusion::new(&SENTIMENT_LABELS);
    for (gold, text) in &sets.semeval {
        let scored = vader(text);
        parity_scores.push(scored.map(|(c, _)| c));
        semeval.add(
            SENTIMENT_LABELS[*gold],
            scored.map(|(_, l)| SENTIMENT_LABELS[l]),
        );
    }
    let _ = writeln!(
        o,
        "## 2a. Sentiment: SemEval-2017 Task 4A test (TweetEval)\n"
    );
    write_sentiment(o, &semeval);
    let mut s140 = Confusion::new(&SENTIMENT_LABELS);
    for (gold, text) in &sets.sentiment140 {
        s140.add(
            SENTIMENT_LABELS[*gold],
            vader(text).map(|(_, l)| SENTIMENT_LABELS[l]),
        );
    }
    let _ = writeln!(o, "## 2b. Sentiment: Sentiment140 manual test set\n");
    write_sentiment(o, &s140);

    // 2d. Emoji and emoticons: the same scorer on the texts that carry them, as they are and
    // with them removed (what a scorer that ignores them sees).
    let _ = writeln!(
        o,
        "## 2d. Sentiment: emoji and emoticons (texts that carry them, with and without them)\n"
    );
    let _ = writeln!(
        o,
        "VADER 3.3.2 (and vader-parity) replaces each emoji by its CLDR description before scoring \
         and its lexicon scores emoticons such as `:)` and `<3`.\n"
    );
    let _ = writeln!(
        o,
        "| set | texts with emoji or emoticons | macro F1 as scored | macro F1 with them removed | macro recall as scored | macro recall removed |\n|---|---:|---:|---:|---:|---:|"
    );
    for (name, set) in [
        ("SemEval-2017 test", &sets.semeval),
        ("Sentiment140 test", &sets.sentiment140),
    ] {
        let (mut kept, mut removed) = (
            Confusion::new(&SENTIMENT_LABELS),
            Confusion::new(&SENTIMENT_LABELS),
        );
        for (gold, text) in set.iter().filter(|(_, t)| has_emoji_or_emoticon(t)) {
            let gold = SENTIMENT_LABELS[*gold];
            kept.add(gold, vader(text).map(|(_, l)| SENTIMENT_LABELS[l]));
            removed.add(
                gold,
                vader(&without_emoji_or_emoticons(text)).map(|(_, l)| SENTIMENT_LABELS[l]),
            );
        }
        let _ = writeln!(
            o,
            "| {name} | {} of {} | {:.4} | {:.4} | {:.4} | {:.4} |",
            kept.total(),
            set.len(),
            kept.macro_f1(),
            removed.macro_f1(),
            kept.macro_recall(),
            removed.macro_recall()
        );
    }
    let _ = writeln!(o);

    // 2c. XLM-T per language
    let _ = writeln!(
        o,
        "## 2c. Sentiment: XLM-T UMSAB train+val per language (VADER is English-only)\n"
    );
    let _ = writeln!(
        o,
        "| language | texts | accuracy | macro recall | macro F1 |\n|---|---:|---:|---:|---:|"
    );
    for code in &codes {
        let mut m = Confusion::new(&SENTIMENT_LABELS);
        for (_, text, gold) in sets.xlmt.iter().filter(|(c, _, _)| c == code) {
            m.add(
                SENTIMENT_LABELS[*gold],
                vader(text).map(|(_, l)| SENTIMENT_LABELS[l]),
            );
        }
        let _ = writeln!(
            o,
            "| {code} | {} | {:.4} | {:.4} | {:.4} |",
            m.total(),
            m.accuracy(),
            m.macro_recall(),
            m.macro_f1()
        );
    }
    let _ = writeln!(o);

    if let Some(path) = vader_parity {
        write_parity(o, path, &parity_scores)?;
    }

    let _ = writeln!(o, "## Headline\n");
    let _ = writeln!(o, "| metric | value |\n|---|---:|");
    for (name, value) in [
        ("TweetLID accuracy", tweetlid.accuracy()),
        ("XLM-T language accuracy", xlmt_lang.accuracy()),
        ("agreement with Twitter lang", twitter.accuracy()),
        ("SemEval macro recall", semeval.macro_recall()),
        ("SemEval macro F1", semeval.macro_f1()),
        ("Sentiment140 macro F1", s140.macro_f1()),
    ] {
        let _ = writeln!(o, "| {name} | {value:.4} |");
    }
    let _ = writeln!(o, "\nrun time: {:.1} s", started.elapsed().as_secs_f64());
    Ok(out)
}

fn write_class_table(o: &mut String, what: &str, m: &Confusion) {
    let _ = writeln!(o, "texts: {}, accuracy: {:.4}\n", m.total(), m.accuracy());
    write_class_rows(o, what, m, usize::MAX);
}

fn write_class_rows(o: &mut String, what: &str, m: &Confusion, top: usize) {
    let _ = writeln!(
        o,
        "| {what} | precision | recall | F1 | support |\n|---|---:|---:|---:|---:|"
    );
    for (i, label) in m.labels().iter().enumerate().take(top) {
        let c = m.class(i);
        let _ = writeln!(
            o,
            "| {label} | {:.4} | {:.4} | {:.4} | {} |",
            c.precision, c.recall, c.f1, c.support
        );
    }
    let _ = writeln!(
        o,
        "| macro avg | {:.4} | {:.4} | {:.4} | {} |\n",
        m.macro_precision(),
        m.macro_recall(),
        m.macro_f1(),
        m.total()
    );
}

/// Emoticons VADER's lexicon scores that tweets use most (vaderSentiment vader_lexicon.txt).
const EMOTICONS: [&str; 22] = [
    ":)", ":-)", ":(", ":-(", ":D", ":-D", ";)", ";-)", ":P", ":p", ":-P", "<3", "</3", ":'(",
    ":/", ":-/", "xD", "XD", ":o", ":O", "=)", "=(",
];

fn has_emoji_or_emoticon(text: &str) -> bool {
    text.chars().any(is_emoji_part) || text.split_whitespace().any(|w| EMOTICONS.contains(&w))
}

/// `text` without emoji and without whitespace-separated emoticons.
fn without_emoji_or_emoticons(text: &str) -> String {
    text.split_whitespace()
        .filter(|w| !EMOTICONS.contains(w))
        .map(|w| w.chars().filter(|&c| !is_emoji_part(c)).collect::<String>())
        .filter(|w| !w.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

fn write_sentiment(o: &mut String, m: &Confusion) {
    let _ = writeln!(
        o,
        "texts: {}, macro recall: {:.4}, macro F1: {:.4}, accuracy: {:.4}\n",
        m.total(),
        m.macro_recall(),
        m.macro_f1(),
        m.accuracy()
    );
    write_class_rows(o, "class", m, usize::MAX);
    let _ = writeln!(
        o,
        "| gold \\ predicted | negative | neutral | positive |\n|---|---:|---:|---:|"
    );
    for (g, label) in m.labels().iter().enumerate() {
        let _ = writeln!(
            o,
            "| {label} | {} | {} | {} |",
            m.count(g, 0),
            m.count(g, 1),
            m.count(g, 2)
        );
    }
    let _ = writeln!(o);
}

/// Compares our SemEval compound scores with the reference's (one number per line, same order).
fn write_parity(o: &mut String, path: &Path, ours: &[Option<f64>]) -> anyhow::Result<()> {
    let theirs = read_lines(path)?;
    anyhow::ensure!(
        theirs.len() == ours.len(),
        "{}: {} scores but {} SemEval texts; write it with accuracy_reference.py --compound-out",
        path.display(),
        theirs.len(),
        ours.len()
    );
    let (mut same, mut max_diff) = (0usize, 0.0f64);
    for (line, ours) in theirs.iter().zip(ours) {
        let theirs: f64 = line
            .trim()
            .parse()
            .with_context(|| format!("{}: not a number: {line:?}", path.display()))?;
        let ours = ours.unwrap_or(f64::NAN);
        if format!("{ours:.4}") == format!("{theirs:.4}") {
            same += 1;
        }
        max_diff = max_diff.max((ours - theirs).abs());
    }
    let _ = writeln!(
        o,
        "## VADER parity with Python vaderSentiment (SemEval test texts)\n\n\
         identical compound to 4 decimals: {same} / {} ({:.4}), largest difference: {max_diff:.4}\n",
        ours.len(),
        ratio(same as u64, ours.len() as u64)
    );
    Ok(())
}

/// Section 0: the trained models beside whichlang/whatlang and VADER, on held-out data only
/// (TweetLID's held-back fifth, XLM-T val, SemEval-2017 test, Sentiment140 test, the
/// recordings), with each analysis's cost per post in this run.
fn write_models_section(o: &mut String, sets: &Sets, models: &TrainedModels) -> anyhow::Result<()> {
    let build = |detector, sentiment| {
        Analyzer::with_options(AnalyzerOptions {
            detector: Some(detector),
            languages: None,
            sentiment,
            models: Some(models.clone()),
        })
        .map_err(anyhow::Error::msg)
    };
    let analyzers = [
        ("model", build(DetectorKind::Model, SentimentKind::Model)?),
        (
            "whichlang + VADER",
            build(DetectorKind::Whichlang, SentimentKind::Vader)?,
        ),
        (
            "whatlang + VADER",
            build(DetectorKind::Whatlang, SentimentKind::Vader)?,
        ),
    ];
    let _ = writeln!(
        o,
        "## 0. Trained models (consumer/models) beside whichlang/whatlang and VADER, held-out data only\n"
    );
    let _ = writeln!(
        o,
        "TweetLID: the held-back fifth of train ({} single-language rows, by a hash of the id; never trained on). XLM-T: val ({} rows). Twitter: {} statuses of the v1.1 recordings.\n",
        sets.tweetlid_held.len(),
        sets.xlmt_val.len(),
        sets.twitter.len()
    );
    let _ = writeln!(
        o,
        "| language measure | model | whichlang | whatlang |\n|---|---:|---:|---:|"
    );
    let codes: Vec<&str> = XLMT_LANGUAGES.iter().map(|(_, c)| *c).collect();
    let mut rows: Vec<(String, Vec<f64>)> = Vec::new();
    let mut lid = Vec::new();
    for (_, a) in &analyzers {
        let detect = |text: &str| a.analyze(text, None).language.map(normalise_lang);
        let mut tl = Confusion::new(&TWEETLID_LANGUAGES);
        for (gold, text) in &sets.tweetlid_held {
            tl.add(gold, detect(text));
        }
        let mut xl = Confusion::new(&codes);
        for (code, text, _) in &sets.xlmt_val {
            xl.add(code, detect(text));
        }
        let mut agree = (0u64, 0u64);
        for (lang, text) in &sets.twitter {
            agree.1 += 1;
            agree.0 += u64::from(detect(text) == Some(lang.as_str()));
        }
        lid.push((tl, xl, ratio(agree.0, agree.1)));
    }
    let recall = |m: &Confusion, label: &str| {
        m.labels()
            .iter()
            .position(|l| l == label)
            .map_or(0.0, |i| m.class(i).recall)
    };
    rows.push((
        "TweetLID held-back accuracy".into(),
        lid.iter().map(|l| l.0.accuracy()).collect(),
    ));
    for code in ["ca", "eu", "gl"] {
        rows.push((
            format!("TweetLID recall {code}"),
            lid.iter().map(|l| recall(&l.0, code)).collect(),
        ));
    }
    rows.push((
        "XLM-T val language accuracy".into(),
        lid.iter().map(|l| l.1.accuracy()).collect(),
    ));
    rows.push((
        "XLM-T val recall hi (romanised)".into(),
        lid.iter().map(|l| recall(&l.1, "hi")).collect(),
    ));
    rows.push((
        "agreement with Twitter lang".into(),
        lid.iter().map(|l| l.2).collect(),
    ));
    for (name, values) in &rows {
        let _ = writeln!(
            o,
            "| {name} | {:.4} | {:.4} | {:.4} |",
            values[0], values[1], values[2]
        );
    }
    let _ = writeln!(o);

    // Sentiment: the model scored as the gold language, VADER as English.
    let score = |a: &Analyzer, text: &str, lang: &str| {
        a.analyze(text, Some(lang))
            .sentiment
            .map(|s| SENTIMENT_LABELS[label_index(s.label)])
    };
    let (model, vader) = (&analyzers[0].1, &analyzers[1].1);
    let _ = writeln!(o, "| sentiment measure | model | VADER |\n|---|---:|---:|");
    for (name, set) in [
        ("SemEval-2017 test", &sets.semeval),
        ("Sentiment140 test", &sets.sentiment140),
    ] {
        let mut m = Confusion::new(&SENTIMENT_LABELS);
        let mut v = Confusion::new(&SENTIMENT_LABELS);
        for (gold, text) in set.iter() {
            m.add(SENTIMENT_LABELS[*gold], score(model, text, "en"));
            v.add(SENTIMENT_LABELS[*gold], score(vader, text, "en"));
        }
        let _ = writeln!(
            o,
            "| {name} macro recall | {:.4} | {:.4} |",
            m.macro_recall(),
            v.macro_recall()
        );
        let _ = writeln!(
            o,
            "| {name} macro F1 | {:.4} | {:.4} |",
            m.macro_f1(),
            v.macro_f1()
        );
    }
    for code in &codes {
        let mut m = Confusion::new(&SENTIMENT_LABELS);
        let mut v = Confusion::new(&SENTIMENT_LABELS);
        for (_, text, gold) in sets.xlmt_val.iter().filter(|(c, _, _)| c == code) {
            m.add(SENTIMENT_LABELS[*gold], score(model, text, code));
            v.add(SENTIMENT_LABELS[*gold], score(vader, text, code));
        }
        let vader_cell = if *code == "en" {
            format!("{:.4}", v.macro_f1())
        } else {
            "no score".to_owned()
        };
        let _ = writeln!(
            o,
            "| XLM-T val macro F1, {code} | {:.4} | {vader_cell} |",
            m.macro_f1()
        );
    }
    // The pipeline's way: the sentiment of the detected language (no platform tag).
    let mut m = Confusion::new(&SENTIMENT_LABELS);
    for (_, text, gold) in &sets.xlmt_val {
        m.add(
            SENTIMENT_LABELS[*gold],
            model
                .analyze(text, None)
                .sentiment
                .map(|s| SENTIMENT_LABELS[label_index(s.label)]),
        );
    }
    let _ = writeln!(
        o,
        "| XLM-T val macro F1, all 8, language detected (no tag) | {:.4} | |\n",
        m.macro_f1()
    );

    // Cost per post: the whole analysis (detection and sentiment) of each recorded status, one
    // thread, best of three passes.
    let _ = writeln!(
        o,
        "| analysis of the recordings' statuses (one thread, best of 3) | µs/post |\n|---|---:|"
    );
    let default = build(DetectorKind::Whichlang, SentimentKind::Model)?;
    let timed = [
        ("whichlang + sentiment model (the default)", &default),
        ("model (--detector model)", &analyzers[0].1),
        (
            "whichlang + VADER (--sentiment vader, the old default)",
            &analyzers[1].1,
        ),
        ("whatlang + VADER", &analyzers[2].1),
    ];
    for (name, a) in timed {
        let mut best = f64::MAX;
        for _ in 0..3 {
            let t0 = Instant::now();
            let mut scored = 0usize;
            for (_, text) in &sets.twitter {
                scored += usize::from(a.analyze(text, None).sentiment.is_some());
            }
            std::hint::black_box(scored);
            best = best.min(t0.elapsed().as_secs_f64() * 1e6 / sets.twitter.len().max(1) as f64);
        }
        let _ = writeln!(o, "| {name} | {best:.2} |");
    }
    let _ = writeln!(o);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emoji_and_emoticons_are_found_and_removed() {
        assert!(has_emoji_or_emoticon("great game \u{1F60D}"));
        assert!(has_emoji_or_emoticon("great game :)"));
        assert!(!has_emoji_or_emoticon("great game (really):"));
        assert_eq!(
            without_emoji_or_emoticons("so sad :( \u{1F622}\u{FE0F} today\u{2764}"),
            "so sad today"
        );
    }

    /// gold a: 3 a, 1 b; gold b: 2 b, 1 a, 1 none; gold c: 1 c, 1 a.
    fn example() -> Confusion {
        let mut m = Confusion::new(&["a", "b", "c"]);
        for (gold, predicted, n) in [
            ("a", Some("a"), 3),
            ("a", Some("b"), 1),
            ("b", Some("b"), 2),
            ("b", Some("a"), 1),
            ("b", None, 1),
            ("c", Some("c"), 1),
            ("c", Some("a"), 1),
        ] {
            for _ in 0..n {
                assert!(m.add(gold, predicted));
            }
        }
        assert!(
            !m.add("z", Some("a")),
            "gold outside the classes is ignored"
        );
        m
    }

    fn close(a: f64, b: f64) {
        assert!((a - b).abs() < 1e-12, "{a} != {b}");
    }

    #[test]
    fn confusion_scores_match_hand_computed_values() {
        let m = example();
        assert_eq!(m.total(), 10);
        assert_eq!(m.correct(), 6);
        close(m.accuracy(), 0.6);
        // a: tp 3, predicted 5, support 4
        let a = m.class(0);
        close(a.precision, 0.6);
        close(a.recall, 0.75);
        close(a.f1, 2.0 * 0.6 * 0.75 / 1.35);
        assert_eq!(a.support, 4);
        // b: tp 2, predicted 3, support 4 (the unpredicted row counts against recall only)
        let b = m.class(1);
        close(b.precision, 2.0 / 3.0);
        close(b.recall, 0.5);
        close(b.f1, 4.0 / 7.0);
        // c: tp 1, predicted 1, support 2
        let c = m.class(2);
        close(c.precision, 1.0);
        close(c.recall, 0.5);
        close(c.f1, 2.0 / 3.0);
        close(m.macro_precision(), (0.6 + 2.0 / 3.0 + 1.0) / 3.0);
        close(m.macro_recall(), (0.75 + 0.5 + 0.5) / 3.0);
        close(
            m.macro_f1(),
            (2.0 * 0.6 * 0.75 / 1.35 + 4.0 / 7.0 + 2.0 / 3.0) / 3.0,
        );
        assert_eq!(m.count(1, 3), 1, "none lands in the other column");
    }

    #[test]
    fn a_class_never_predicted_scores_zero_not_nan() {
        let mut m = Confusion::new(&["x", "y"]);
        m.add("x", Some("x"));
        m.add("y", Some("x"));
        let y = m.class(1);
        assert_eq!((y.precision, y.recall, y.f1), (0.0, 0.0, 0.0));
        close(m.macro_f1(), (2.0 / 3.0) / 2.0);
    }

    #[test]
    fn csv_fields_keep_quoted_commas_and_quotes() {
        let csv = concat!(
            r#""4","3","Mon May 11","kindle2","u","a, b ""c"" d""#,
            "\n",
            "0,1,d,q,u,plain\n",
            "\n",
            "short,row\n"
        );
        assert_eq!(
            read_sentiment140(csv.as_bytes(), "test").unwrap(),
            [(2, r#"a, b "c" d"#.to_owned()), (0, "plain".to_owned())]
        );
        let error = read_sentiment140("1,1,d,q,u,t\n".as_bytes(), "test").unwrap_err();
        assert!(error.to_string().contains("unknown polarity"), "{error}");
    }

    #[test]
    fn legacy_and_individual_codes_normalise() {
        assert_eq!(normalise_lang("in"), "id");
        assert_eq!(normalise_lang("iw"), "he");
        assert_eq!(normalise_lang("cmn"), "zh");
        assert_eq!(normalise_lang("zh-cn"), "zh");
        assert_eq!(normalise_lang("en"), "en");
    }
}
