#!/usr/bin/env bash
# Benchmarks against the local Kafka broker, each number beside a reference measured in the same
# run (not part of CI's pass/fail). Prints one table and writes it to .local/bench/latest.md
# (copied into docs/benchmarks.md by hand, with the analysis).
#
#   a. producer ingest: tweet-producer --replay at full speed vs kcat -P on the same file
#   b. analysis consumer on one core: with analysis (whichlang + the sentiment model, the default),
#      the old analysis (--sentiment vader), the trained language model too (--detector model),
#      without analysis (parse + store), with the whatlang detector, and the seed's Python stack
#      (confluent-kafka + langdetect + vaderSentiment + sqlite3)
#   c. end-to-end latency p50/p99/p999 (producer receive -> row committed) at 5,000 posts/s
#   c'. the same with one core kept busy by another process (a shell loop on core 1)
#   d. peak RSS of the producer and the consumer during (c)
#   e. recovery: SIGKILL + immediate restart of an analysis consumer to its first new row, per
#      group-membership setting (scripts/bench/recovery.sh; about 5 minutes, most of it waiting
#      out 45 s sessions; BENCH_RECOVERY=0 skips it)
#   f. scale-out: the analysis group with two members against one over 4 partitions, each
#      storing into PostgreSQL (scripts/bench/scaleout.sh; BENCH_SCALEOUT=0 skips it)
#
# BENCH_LINES (default 200000) lines of real recordings (../shared/data/twitter_v1 stream files,
# looped); BENCH_LATENCY_S (default 60); BENCH_PYTHON_POSTS (default 5000).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
export PATH="$HOME/.cargo/bin:$PATH"
export KAFKA_BOOTSTRAP="${KAFKA_BOOTSTRAP:-127.0.0.1:9092}"
LINES="${BENCH_LINES:-200000}"
LATENCY_S="${BENCH_LATENCY_S:-60}"
PY_POSTS="${BENCH_PYTHON_POSTS:-5000}"
DATA="$ROOT/../shared/data/twitter_v1"
OUT="$ROOT/.local/bench"
BIN="$ROOT/target/release"
RUN="b$(date +%s)"
mkdir -p "$OUT" "$ROOT/docs"
[ -d "$DATA" ] || { echo "bench.sh: needs the shared recordings at $DATA" >&2; exit 1; }

say() { printf '\n\033[1m== %s\033[0m\n' "$*" >&2; }
now() { date +%s.%N; }
secs() { python3 -c "print(f'{$2 - $1:.3f}')"; }

say "build, broker"
scripts/ensure-deps.sh
cargo build --release --locked --bins -q
scripts/kafka-local.sh start

say "input: $LINES lines of real v1.1 stream recordings, looped"
INPUT="$OUT/input-$LINES.jsonl"
if [ ! -s "$INPUT" ]; then
  python3 - "$DATA" "$LINES" "$INPUT" <<'PY'
import glob, sys
data, want, out = sys.argv[1], int(sys.argv[2]), sys.argv[3]
lines = []
for path in sorted(glob.glob(f"{data}/stream_sample/*.jsonl") + glob.glob(f"{data}/stream_filter/*.jsonl")):
    with open(path, "rb") as f:
        lines += [l.rstrip(b"\r\n") for l in f.read().split(b"\n") if l.strip()]
with open(out, "wb") as f:
    for i in range(want):
        f.write(lines[i % len(lines)] + b"\n")
PY
fi
BYTES=$(stat -c %s "$INPUT")
topics() { # prefix -> creates the four pipeline topics (2 partitions each)
  for t in tweets retweets control deadletter; do
    scripts/kafka-local.sh topics --create --topic "$1$t" --partitions 2 --replication-factor 1 >/dev/null
  done
}
flags() { echo --tweets-topic "$1tweets" --retweets-topic "$1retweets" --control-topic "$1control" --deadletter-topic "$1deadletter"; }

say "a. producer ingest vs kcat -P"
scripts/kafka-local.sh topics --create --topic "$RUN-kcat" --partitions 2 --replication-factor 1 >/dev/null
# Two rounds, alternating, best of each: the first writes to fresh topics also pay for leader
# election, idempotent-producer id allocation and segment creation.
PROD_S=999999; KCAT_S=999999
for round in 1 2; do
  for t in tweets retweets control deadletter; do
    scripts/kafka-local.sh topics --create --if-not-exists --topic "$RUN-a$round-$t" --partitions 2 --replication-factor 1 >/dev/null
  done
  t0=$(now)
  "$BIN/tweet-producer" --replay "$INPUT" --metrics-addr off $(flags "$RUN-a$round-") >"$OUT/producer-a$round.txt"
  t1=$(now)
  PROD_S=$(python3 -c "print(min($PROD_S, $t1 - $t0))")
  # The same delivery settings as tweet-producer (idempotent, acks=all, lz4, linger 5 ms).
  t0=$(now)
  kcat -P -b "$KAFKA_BOOTSTRAP" -t "$RUN-kcat" -l -X enable.idempotence=true -X acks=all \
    -X compression.type=lz4 -X linger.ms=5 -X queue.buffering.max.kbytes=32768 "$INPUT"
  t1=$(now)
  KCAT_S=$(python3 -c "print(min($KCAT_S, $t1 - $t0))")
done
cp "$OUT/producer-a1.txt" "$OUT/producer-a.txt"

say "b. analysis consumer on one core (taskset -c 0)"
consume() { # group, extra flags... -> prints seconds
  local group="$1"; shift
  local t0 t1
  t0=$(now)
  taskset -c 0 "$BIN/tweet-consumer" --group "$group" --role analysis --exit-at-end --metrics-addr off \
    --db "$OUT/$group.db" $(flags "$RUN-a1-") "$@" >"$OUT/$group.txt"
  t1=$(now)
  secs "$t0" "$t1"
}
POSTS=$(( $(grep -E 'records -> .*(tweets|retweets) ' "$OUT/producer-a.txt" | awk '{s+=$NF} END {print s}') ))
RECORDS=$(awk '/records ->/ && !/deadletter/ {s+=$NF} END {print s}' "$OUT/producer-a.txt")
WITH_S=$(consume "$RUN-with")
WITHOUT_S=$(consume "$RUN-without" --no-analysis)
WHATLANG_S=$(consume "$RUN-whatlang" --detector whatlang)
VADER_S=$(consume "$RUN-vader" --sentiment vader)
MODEL_S=$(consume "$RUN-model" --detector model)

say "b. the seed's Python stack ($PY_POSTS posts, one core)"
VENV="$ROOT/.local/bench/venv"
if [ ! -x "$VENV/bin/python" ]; then
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q confluent-kafka langdetect vaderSentiment
fi
PY_JSON=$(taskset -c 0 "$VENV/bin/python" scripts/bench/python_stack.py --bootstrap "$KAFKA_BOOTSTRAP" \
  --topics "$RUN-a1-tweets,$RUN-a1-retweets" --group "$RUN-python" --max-posts "$PY_POSTS" --db "$OUT/$RUN-python.db")
PY_RATE=$(python3 -c "import json; print(json.loads('''$PY_JSON''')['posts_per_s'])")

# --rate counts lines; scale it so that the posts among them arrive at 5,000/s.
RATE=$(python3 -c "print(round(5000 * $LINES / $POSTS))")
latency_run() { # name -> prints "p50 p99 p999 samples sent producer_rss consumer_rss"
  local name="$1" consumer producer prod_rss cons_rss p50 p99 p999 samples
  topics "$RUN-$name-"
  "$BIN/tweet-consumer" --group "$RUN-$name" --role analysis --metrics-addr 127.0.0.1:9182 \
    --db "$OUT/$RUN-$name.db" $(flags "$RUN-$name-") >"$OUT/consumer-$name.txt" 2>"$OUT/consumer-$name.log" &
  consumer=$!
  sleep 2
  "$BIN/tweet-producer" --replay "$INPUT" --loop --rate "$RATE" --metrics-addr 127.0.0.1:9181 \
    $(flags "$RUN-$name-") >"$OUT/producer-$name.txt" 2>"$OUT/producer-$name.log" &
  producer=$!
  sleep "$LATENCY_S"
  prod_rss=$(awk '/VmHWM/ {print $2}' "/proc/$producer/status")
  kill -TERM "$producer"; wait "$producer" || true
  sleep 3
  cons_rss=$(awk '/VmHWM/ {print $2}' "/proc/$consumer/status")
  read -r p50 p99 p999 samples < <(curl -s http://127.0.0.1:9182/metrics | python3 scripts/bench/histogram.py)
  kill -TERM "$consumer"; wait "$consumer" || true
  echo "$p50 $p99 $p999 $samples $(awk '/lines read/ {print $NF}' "$OUT/producer-$name.txt") $prod_rss $cons_rss"
}

say "c+d. latency and memory at 5,000 posts/s for ${LATENCY_S}s"
read -r P50 P99 P999 SAMPLES SENT PROD_RSS CONS_RSS < <(latency_run c)

say "c'. the same with one core kept busy by another process (a shell loop pinned to core 1)"
taskset -c 1 sh -c 'while :; do :; done' &
BUSY=$!
read -r BP50 BP99 BP999 BSAMPLES BSENT _ _ < <(latency_run cbusy)
kill "$BUSY"; wait "$BUSY" 2>/dev/null || true

RECOVERY=""
if [ "${BENCH_RECOVERY:-1}" != 0 ]; then
  say "e. recovery after SIGKILL + restart, per membership setting"
  RECOVERY=$(scripts/bench/recovery.sh "$OUT/recovery" 2)
fi

SCALEOUT=""
if [ "${BENCH_SCALEOUT:-1}" != 0 ]; then
  say "f. scale-out: two analysis members against one, PostgreSQL, 4 partitions"
  SCALEOUT=$(scripts/bench/scaleout.sh "$OUT/scaleout" "$INPUT")
fi

report() {
  python3 - "$@" <<'PY'
import sys
(lines, mb, prod_s, kcat_s, posts, records, with_s, without_s, whatlang_s, vader_s, model_s, py_rate,
 p50, p99, p999, samples, rate, latency_s, sent, prod_rss, cons_rss, bp50, bp99, bp999, bsamples,
 bsent) = sys.argv[1:]
lines, mb, posts, records = int(lines), float(mb), int(posts), int(records)
prod_s, kcat_s, with_s, without_s, whatlang_s, vader_s, model_s, py_rate = map(
    float, (prod_s, kcat_s, with_s, without_s, whatlang_s, vader_s, model_s, py_rate))
prod_lps, kcat_lps = lines / prod_s, lines / kcat_s
with_pps, without_pps = posts / with_s, posts / without_s
rows = [
    ("producer ingest, lines/s", f"{prod_lps:,.0f} ({mb / prod_s:,.1f} MB/s)", f"kcat -P: {kcat_lps:,.0f} ({mb / kcat_s:,.1f} MB/s)", f"{prod_lps / kcat_lps:.0%} of kcat", ">= 90 % of kcat"),
    ("analysis consumer, posts/s, 1 core", f"{with_pps:,.0f}", f"old analysis (--sentiment vader): {posts / vader_s:,.0f}; with --detector model: {posts / model_s:,.0f}; without analysis: {without_pps:,.0f}; with --detector whatlang: {posts / whatlang_s:,.0f}; Python stack: {py_rate:,.0f}", f"{with_pps / py_rate:,.0f}x Python", ">= 25,000 and >= 100x Python"),
    ("end-to-end latency p50 / p99 / p999", f"{p50} / {p99} / {p999} ms", f"{samples} records at {rate} lines/s for {latency_s} s ({sent} lines)", "", "p99 <= 100 ms"),
    ("end-to-end latency, one core busy", f"{bp50} / {bp99} / {bp999} ms", f"{bsamples} records ({bsent} lines), beside the quiet run above", "", "p99 <= 250 ms"),
    ("peak RSS producer / consumer", f"{int(prod_rss) / 1024:.0f} MB / {int(cons_rss) / 1024:.0f} MB", "VmHWM during the latency run", "", "<= 50 MB / <= 100 MB"),
]
print("| measure | tweet-pipeline | reference, same run | ratio | target |")
print("|---|---|---|---|---|")
for row in rows:
    print("| " + " | ".join(row) + " |")
print()
print(f"Input: {lines:,} lines ({mb:,.0f} MB), {posts:,} posts and {records - posts:,} control records consumed.")
PY
}
MB=$(python3 -c "print($BYTES / 1e6)")
TABLE=$(report "$LINES" "$MB" "$PROD_S" "$KCAT_S" "$POSTS" "$RECORDS" "$WITH_S" "$WITHOUT_S" "$WHATLANG_S" "$VADER_S" "$MODEL_S" "$PY_RATE" \
  "$P50" "$P99" "$P999" "$SAMPLES" "$RATE" "$LATENCY_S" "$SENT" "$PROD_RSS" "$CONS_RSS" \
  "$BP50" "$BP99" "$BP999" "$BSAMPLES" "$BSENT")
MACHINE="$(nproc) cores ($(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo)), $(free -g | awk '/Mem:/ {print $2}') GiB RAM, $(uname -sr), Kafka 4.3.1 (single KRaft node, same machine)"

echo
echo "$TABLE"
echo
[ -n "$RECOVERY" ] && { echo "$RECOVERY"; echo; }
[ -n "$SCALEOUT" ] && { echo "$SCALEOUT"; echo; }
echo "Machine: $MACHINE"
{
  echo "<!-- written by scripts/bench.sh on $(date -u +%Y-%m-%dT%H:%MZ); edit the analysis below, not the table -->"
  echo "## Latest run"
  echo
  echo "Machine: $MACHINE."
  echo
  echo "$TABLE"
  [ -n "$RECOVERY" ] && { echo; echo "Recovery (e):"; echo; echo "$RECOVERY"; }
  [ -n "$SCALEOUT" ] && { echo; echo "Scale-out (f):"; echo; echo "$SCALEOUT"; }
} > "$OUT/latest.md"
echo "(table also in .local/bench/latest.md)" >&2
