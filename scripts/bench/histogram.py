#!/usr/bin/env python3
"""Reads a Prometheus text scrape on stdin and prints p50, p99 and p999 (in ms) of
tweet_pipeline_consumer_processing_latency_seconds over all topics, interpolating linearly
inside the bucket (buckets are 25 % apart, so the estimate is within 25 %)."""
import re
import sys

buckets = {}
for line in sys.stdin:
    m = re.match(r'tweet_pipeline_consumer_processing_latency_seconds_bucket\{.*le="([^"]+)".*\} (\S+)', line)
    if m:
        le = float("inf") if m.group(1) == "+Inf" else float(m.group(1))
        buckets[le] = buckets.get(le, 0.0) + float(m.group(2))
bounds = sorted(buckets)
total = buckets.get(float("inf"), 0.0)
if not total:
    print("n/a n/a n/a 0")
    sys.exit(0)


def quantile(q):
    rank = q * total
    lower, below = 0.0, 0.0
    for le in bounds:
        count = buckets[le]
        if count >= rank:
            if le == float("inf"):
                return lower
            inside = count - below
            return lower + (le - lower) * ((rank - below) / inside if inside else 1.0)
        lower, below = le, count
    return bounds[-1]


print(" ".join(f"{quantile(q) * 1000:.1f}" for q in (0.5, 0.99, 0.999)), int(total))
