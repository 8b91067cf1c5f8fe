#!/usr/bin/env python3
"""The Python reference for `tweet-consumer eval`: the same labelled sets, filtering rules and
Markdown tables, scored with langdetect (language, DetectorFactory.seed = 0) and vaderSentiment
(sentiment). Run by scripts/accuracy.sh; needs `pip install langdetect vaderSentiment`.

langdetect takes ~5-9 ms per text, so --lang-every K scores language on every K-th row of each
language set (rows 0, K, 2K, ... after filtering); sentiment always uses all rows.
--compound-out FILE writes the SemEval test compound scores, one per line, for
`tweet-consumer eval --vader-parity FILE`.
"""
import argparse
import csv
import glob
import json
import os
import time

from langdetect import DetectorFactory, LangDetectException, detect
from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

DetectorFactory.seed = 0  # langdetect is random without a seed

TWEETLID_LANGUAGES = ["es", "pt", "ca", "en", "gl", "eu"]
XLMT_LANGUAGES = [("arabic", "ar"), ("english", "en"), ("french", "fr"), ("german", "de"),
                  ("hindi", "hi"), ("italian", "it"), ("portuguese", "pt"), ("spanish", "es")]
SENTIMENT_LABELS = ["negative", "neutral", "positive"]
TWITTER_TOP_LANGUAGES = 15
NORMALISE = {"in": "id", "iw": "he", "cmn": "zh", "zh-cn": "zh", "zh-tw": "zh", "pes": "fa", "nb": "no"}


def normalise(code):
    return NORMALISE.get(code, code)


class Confusion:
    """counts[gold][predicted]; a prediction outside the classes (or None) goes to the last column."""

    def __init__(self, labels):
        self.labels = list(labels)
        self.counts = [[0] * (len(self.labels) + 1) for _ in self.labels]

    def add(self, gold, predicted):
        if gold not in self.labels:
            return
        p = self.labels.index(predicted) if predicted in self.labels else len(self.labels)
        self.counts[self.labels.index(gold)][p] += 1

    def total(self):
        return sum(map(sum, self.counts))

    def accuracy(self):
        t = self.total()
        return sum(self.counts[i][i] for i in range(len(self.labels))) / t if t else 0.0

    def cls(self, i):
        tp = self.counts[i][i]
        support = sum(self.counts[i])
        predicted = sum(row[i] for row in self.counts)
        p = tp / predicted if predicted else 0.0
        r = tp / support if support else 0.0
        f1 = 2 * p * r / (p + r) if p + r else 0.0
        return p, r, f1, support

    def macro(self, k):
        n = len(self.labels)
        return sum(self.cls(i)[k] for i in range(n)) / max(n, 1)


def read_lines(path):
    """Lines split like Rust's str::lines (\\n, optional \\r), not str.splitlines."""
    with open(path, encoding="utf-8") as f:
        text = f.read()
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return [l[:-1] if l.endswith("\r") else l for l in lines]


def status_text_and_lang(s):
    """tweet_pipeline_common::post::parse_post for a v1.1 status: a retweet as its original."""
    def full_text(st):
        ext = (st.get("extended_tweet") or {}).get("full_text")
        if st.get("truncated") and ext is not None:
            return ext
        return st.get("full_text") if st.get("full_text") is not None else st.get("text")

    if not isinstance(s, dict) or (s.get("id_str") is None and s.get("id") is None):
        return None, None
    original = s.get("retweeted_status")
    if isinstance(original, dict):
        text = full_text(original)
        if text is None:
            text = full_text(s)
        lang = original.get("lang") if original.get("lang") is not None else s.get("lang")
    else:
        text, lang = full_text(s), s.get("lang")
    return text, lang


def load(data):
    tweetlid = []
    for line in read_lines(f"{data}/langid/tweetlid2014/train.tsv"):
        parts = line.split("\t", 3)
        if len(parts) == 4 and parts[2] in TWEETLID_LANGUAGES:
            tweetlid.append((parts[2], parts[3]))
    xlmt = []
    for folder, code in XLMT_LANGUAGES:
        for split in ["train", "val"]:
            d = f"{data}/sentiment/xlm-t_umsab/{folder}"
            texts = read_lines(f"{d}/{split}_text.txt")
            labels = read_lines(f"{d}/{split}_labels.txt")
            assert len(texts) == len(labels), f"{folder}/{split}"
            xlmt += [(code, t, int(l)) for t, l in zip(texts, labels)]
    twitter = []
    for sub in ["stream_sample", "stream_filter"]:
        for path in sorted(glob.glob(f"{data}/twitter_v1/{sub}/*.jsonl")):
            with open(path, "rb") as f:
                for line in f.read().split(b"\n"):
                    try:
                        s = json.loads(line)
                    except ValueError:
                        continue
                    text, lang = status_text_and_lang(s)
                    if text is not None and lang not in (None, "und"):
                        twitter.append((normalise(lang), text))
    d = f"{data}/sentiment/tweeteval_sentiment"
    semeval = [(int(l), t) for l, t in zip(read_lines(f"{d}/test_labels.txt"), read_lines(f"{d}/test_text.txt"))]
    s140 = []
    with open(f"{data}/sentiment/sentiment140/testdata.manual.2009.06.14.csv", encoding="utf-8", newline="") as f:
        for row in csv.reader(f):
            if len(row) == 6:
                s140.append(({"0": 0, "2": 1, "4": 2}[row[0]], row[5]))
    return tweetlid, xlmt, twitter, semeval, s140


def class_rows(out, what, m, top=None):
    out.append(f"| {what} | precision | recall | F1 | support |\n|---|---:|---:|---:|---:|")
    for i, label in enumerate(m.labels[:top]):
        p, r, f1, n = m.cls(i)
        out.append(f"| {label} | {p:.4f} | {r:.4f} | {f1:.4f} | {n} |")
    out.append(f"| macro avg | {m.macro(0):.4f} | {m.macro(1):.4f} | {m.macro(2):.4f} | {m.total()} |\n")


def class_table(out, what, m):
    out.append(f"texts: {m.total()}, accuracy: {m.accuracy():.4f}\n")
    class_rows(out, what, m)


def sentiment_table(out, m):
    out.append(f"texts: {m.total()}, macro recall: {m.macro(1):.4f}, macro F1: {m.macro(2):.4f}, "
               f"accuracy: {m.accuracy():.4f}\n")
    class_rows(out, "class", m)
    out.append("| gold \\ predicted | negative | neutral | positive |\n|---|---:|---:|---:|")
    for g, label in enumerate(m.labels):
        out.append(f"| {label} | {m.counts[g][0]} | {m.counts[g][1]} | {m.counts[g][2]} |")
    out.append("")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", default=os.environ.get("TWEET_PIPELINE_DATA", os.environ.get("TWEET_DATA", "../shared/data")))
    parser.add_argument("--lang-every", type=int, default=1, help="score language on every K-th row")
    parser.add_argument("--compound-out", help="write SemEval compound scores here, one per line")
    args = parser.parse_args()
    if not os.path.isdir(args.data):
        raise SystemExit(f"error: no data directory at {args.data}; pass --data")
    started = time.monotonic()
    k = args.lang_every
    tweetlid, xlmt, twitter, semeval, s140 = load(args.data)
    vader = SentimentIntensityAnalyzer()

    def lang_of(text):
        try:
            return normalise(detect(text))
        except LangDetectException:
            return None

    def label_of(text):
        c = vader.polarity_scores(text)["compound"]
        return c, (2 if c >= 0.05 else 0 if c <= -0.05 else 1)

    out = ["# accuracy_reference.py: langdetect (language) + vaderSentiment (VADER sentiment)\n"]
    out.append("All rows of every set.\n" if k == 1 else
               f"Language sets: every {k}th row (rows 0, {k}, {2 * k}, ... of each set after filtering), "
               "as langdetect is slow; sentiment: all rows.\n")

    m = Confusion(TWEETLID_LANGUAGES)
    for gold, text in tweetlid[::k]:
        m.add(gold, lang_of(text))
    tweetlid_m = m
    out.append("## 1a. Language identification: TweetLID 2014 train (single-language rows)\n")
    class_table(out, "language", m)

    codes = [c for _, c in XLMT_LANGUAGES]
    m = Confusion(codes)
    for code, text, _ in xlmt[::k]:
        m.add(code, lang_of(text))
    xlmt_m = m
    out.append("## 1b. Language identification: XLM-T UMSAB train+val (Hindi is romanised)\n")
    class_table(out, "language", m)

    rows = twitter[::k]
    counts = {}
    for lang, _ in rows:
        counts[lang] = counts.get(lang, 0) + 1
    labels = sorted(counts, key=lambda l: (-counts[l], l))
    m = Confusion(labels)
    for lang, text in rows:
        m.add(lang, lang_of(text))
    twitter_m = m
    out.append("## 1c. Agreement with Twitter's `lang` (v1.1 stream recordings, statuses, `und` skipped)\n")
    out.append(f"statuses: {m.total()}, agreement: {m.accuracy():.4f}, languages: {len(labels)} "
               f"(top {TWITTER_TOP_LANGUAGES} below)\n")
    class_rows(out, "Twitter lang", m, TWITTER_TOP_LANGUAGES)

    m = Confusion(SENTIMENT_LABELS)
    compounds = []
    for gold, text in semeval:
        c, l = label_of(text)
        compounds.append(c)
        m.add(SENTIMENT_LABELS[gold], SENTIMENT_LABELS[l])
    semeval_m = m
    out.append("## 2a. Sentiment: SemEval-2017 Task 4A test (TweetEval)\n")
    sentiment_table(out, m)
    m = Confusion(SENTIMENT_LABELS)
    for gold, text in s140:
        m.add(SENTIMENT_LABELS[gold], SENTIMENT_LABELS[label_of(text)[1]])
    s140_m = m
    out.append("## 2b. Sentiment: Sentiment140 manual test set\n")
    sentiment_table(out, m)

    out.append("## 2c. Sentiment: XLM-T UMSAB train+val per language (VADER is English-only)\n")
    out.append("| language | texts | accuracy | macro recall | macro F1 |\n|---|---:|---:|---:|---:|")
    for code in codes:
        m = Confusion(SENTIMENT_LABELS)
        for c, text, gold in xlmt:
            if c == code:
                m.add(SENTIMENT_LABELS[gold], SENTIMENT_LABELS[label_of(text)[1]])
        out.append(f"| {code} | {m.total()} | {m.accuracy():.4f} | {m.macro(1):.4f} | {m.macro(2):.4f} |")
    out.append("")

    if args.compound_out:
        with open(args.compound_out, "w") as f:
            f.writelines(f"{c!r}\n" for c in compounds)

    out.append("## Headline\n\n| metric | value |\n|---|---:|")
    for name, value in [("TweetLID accuracy", tweetlid_m.accuracy()),
                        ("XLM-T language accuracy", xlmt_m.accuracy()),
                        ("agreement with Twitter lang", twitter_m.accuracy()),
                        ("SemEval macro recall", semeval_m.macro(1)),
                        ("SemEval macro F1", semeval_m.macro(2)),
                        ("Sentiment140 macro F1", s140_m.macro(2))]:
        out.append(f"| {name} | {value:.4f} |")
    out.append(f"\nrun time: {time.monotonic() - started:.1f} s")
    print("\n".join(out))


if __name__ == "__main__":
    main()
