#!/usr/bin/env python3
"""The reference stack of the Kafka seed article, for scripts/bench.sh: a Python consumer
(confluent-kafka) that detects each post's language with langdetect, scores English posts with
vaderSentiment and stores rows in SQLite, the same work as `tweet-consumer --group analysis`.

Prints one JSON line: {"posts": N, "seconds": S, "posts_per_s": R}.
"""
import argparse
import json
import sqlite3
import time

from confluent_kafka import Consumer
from langdetect import DetectorFactory, LangDetectException, detect
from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

DetectorFactory.seed = 0  # langdetect is random without a seed


def text_and_lang(status):
    """Full text and platform language, as tweet-consumer takes them (a retweet as its original)."""
    original = status.get("retweeted_status") or status
    if original.get("truncated") and "extended_tweet" in original:
        text = original["extended_tweet"].get("full_text", "")
    else:
        text = original.get("full_text") or original.get("text") or ""
    return text, original.get("lang") or status.get("lang")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--bootstrap", default="127.0.0.1:9092")
    parser.add_argument("--topics", required=True, help="comma-separated")
    parser.add_argument("--group", required=True)
    parser.add_argument("--max-posts", type=int, default=5000)
    parser.add_argument("--db", required=True)
    args = parser.parse_args()

    db = sqlite3.connect(args.db)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=FULL")
    db.execute(
        "CREATE TABLE IF NOT EXISTS posts (id TEXT PRIMARY KEY, text TEXT, lang TEXT, detected_lang TEXT,"
        " compound REAL, pos REAL, neu REAL, neg REAL)"
    )
    vader = SentimentIntensityAnalyzer()
    consumer = Consumer({
        "bootstrap.servers": args.bootstrap,
        "group.id": args.group,
        "auto.offset.reset": "earliest",
        "enable.auto.commit": False,
    })
    consumer.subscribe(args.topics.split(","))
    posts = 0
    rows = []
    started = None
    idle_since = time.monotonic()
    while posts < args.max_posts and time.monotonic() - idle_since < 15:
        message = consumer.poll(0.5)
        if message is None or message.error():
            continue
        idle_since = time.monotonic()
        if started is None:
            started = time.monotonic()
        try:
            status = json.loads(message.value())
        except ValueError:
            continue
        if "id_str" not in status:
            continue
        text, lang = text_and_lang(status)
        try:
            detected = detect(text)
        except LangDetectException:
            detected = None
        english = lang == "en" if lang and lang != "und" else detected == "en"
        scores = vader.polarity_scores(text) if english else {}
        rows.append((status["id_str"], text, lang, detected, scores.get("compound"), scores.get("pos"),
                     scores.get("neu"), scores.get("neg")))
        posts += 1
        if len(rows) >= 1000:
            db.executemany("INSERT OR REPLACE INTO posts VALUES (?,?,?,?,?,?,?,?)", rows)
            db.commit()
            consumer.commit(asynchronous=True)
            rows.clear()
    if rows:
        db.executemany("INSERT OR REPLACE INTO posts VALUES (?,?,?,?,?,?,?,?)", rows)
        db.commit()
    seconds = time.monotonic() - (started or time.monotonic())
    consumer.close()
    print(json.dumps({"posts": posts, "seconds": round(seconds, 3),
                      "posts_per_s": round(posts / seconds, 1) if seconds else 0.0}))


if __name__ == "__main__":
    main()
