#!/usr/bin/env bash
# Recovery after a crash, per group-membership setting: the time from SIGKILLing an analysis
# consumer and starting it again at once to the first new row it stores, while a producer
# replays real recordings at a steady rate into 2-partition topics.
#
# Settings measured (librdkafka CONFIGURATION.md; KIP-345 static membership, KIP-848 protocol):
#   dynamic            classic protocol, no group.instance.id
#   static             classic protocol, group.instance.id (tweet-consumer's default)
#   kip848             group.protocol=consumer, no group.instance.id
#   kip848-static      group.protocol=consumer with group.instance.id
#
# The input is the shared v1.1 recordings (../shared/data/twitter_v1) repeated, each copy with
# its posts' top-level ids shifted, so that every post stored is a new row and the row count
# can tell when storing resumed. Prints one markdown row per setting. Needs the broker
# (scripts/kafka-local.sh start) and release binaries.
# Usage: scripts/bench/recovery.sh OUT_DIR [ROUNDS]
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
OUT="$1"; ROUNDS="${2:-2}"
DATA="$ROOT/../shared/data/twitter_v1"
BIN="$ROOT/target/release"
RUN="r$(date +%s)"
mkdir -p "$OUT"
now() { date +%s.%N; }
[ -d "$DATA" ] || { echo "recovery.sh: needs the shared recordings at $DATA" >&2; exit 1; }

INPUT="$OUT/recovery-input.jsonl"
if [ ! -s "$INPUT" ]; then
  python3 - "$DATA" "$INPUT" <<'PY'
import glob, re, sys
data, out = sys.argv[1], sys.argv[2]
lines = []
for path in sorted(glob.glob(f"{data}/stream_sample/*.jsonl") + glob.glob(f"{data}/stream_filter/*.jsonl")):
    with open(path, "rb") as f:
        lines += [l.rstrip(b"\r\n") for l in f.read().split(b"\n") if l.startswith(b'{"created_at"')]
top = re.compile(rb'^\{"created_at":"[^"]*","id":(\d+),"id_str":"(\d+)"')
with open(out, "wb") as f:
    for copy in range(60):
        for line in lines:
            shift = lambda m: m.group(0).replace(m.group(1), str(int(m.group(1)) + copy).encode()).replace(b'"' + m.group(2) + b'"', b'"' + str(int(m.group(2)) + copy).encode() + b'"')
            f.write(top.sub(shift, line, count=1) + b"\n")
PY
fi

for t in tweets retweets control deadletter; do
  "$ROOT/scripts/kafka-local.sh" topics --create --topic "$RUN-$t" --partitions 2 --replication-factor 1 >/dev/null
done
FLAGS=(--tweets-topic "$RUN-tweets" --retweets-topic "$RUN-retweets" --control-topic "$RUN-control" --deadletter-topic "$RUN-deadletter")

"$BIN/tweet-producer" --replay "$INPUT" --rate 1000 --metrics-addr off "${FLAGS[@]}" \
  >"$OUT/recovery-producer.txt" 2>"$OUT/recovery-producer.log" &
PRODUCER=$!
CONSUMER=""
cleanup() {
  [ -n "$CONSUMER" ] && kill -KILL "$CONSUMER" 2>/dev/null || true
  kill -TERM "$PRODUCER" 2>/dev/null || true
  wait "$PRODUCER" 2>/dev/null || true
}
trap cleanup EXIT

rows() { # db -> row count (0 before the table exists)
  python3 - "$1" <<'PY'
import sqlite3, sys
try:
    print(sqlite3.connect(f"file:{sys.argv[1]}?mode=ro", uri=True).execute("select count(*) from posts").fetchone()[0])
except sqlite3.Error:
    print(0)
PY
}
wait_more_than() { # db, count, timeout s -> seconds waited, "timeout", or "exited" (the consumer)
  local t0 t1 deadline
  t0=$(now); deadline=$(python3 -c "print($t0 + $3)")
  while :; do
    [ "$(rows "$1")" -gt "$2" ] && { t1=$(now); python3 -c "print(f'{$t1 - $t0:.2f}')"; return; }
    kill -0 "$CONSUMER" 2>/dev/null || { echo exited; return; }
    python3 -c "import sys; sys.exit(0 if $(now) < $deadline else 1)" || { echo timeout; return; }
    sleep 0.05
  done
}
start() { # group, db, membership flags... -> sets CONSUMER
  local group="$1" db="$2"; shift 2
  "$BIN/tweet-consumer" --group "$group" --role analysis --metrics-addr off --db "$db" \
    "${FLAGS[@]}" "$@" >>"$OUT/recovery-$group.txt" 2>>"$OUT/recovery-$group.log" &
  CONSUMER=$!
}

measure() { # setting name, membership flags...
  local name="$1"; shift
  local group="$RUN-$name" db="$OUT/$RUN-$name.db" times=()
  start "$group" "$db" "$@"
  [ "$(wait_more_than "$db" 0 60)" = timeout ] && { echo "| $name | never stored a row |"; return; }
  for _ in $(seq "$ROUNDS"); do
    sleep 3
    kill -KILL "$CONSUMER" 2>/dev/null || true; wait "$CONSUMER" 2>/dev/null || true
    local before; before=$(rows "$db")
    start "$group" "$db" "$@"
    times+=("$(wait_more_than "$db" "$before" 120)")
  done
  kill -TERM "$CONSUMER" 2>/dev/null || true; wait "$CONSUMER" 2>/dev/null || true
  CONSUMER=""
  local refused; refused=$(grep -o 'error: .*' "$OUT/recovery-$group.log" | tail -n 1 | cut -c1-90)
  echo "| $name | ${times[*]} ${refused:+(${refused}…)} |"
}

echo "| setting | s from SIGKILL + restart to the first new row, each round |"
echo "|---|---|"
for setting in ${RECOVERY_SETTINGS:-dynamic static kip848 kip848-static}; do
  case "$setting" in
    dynamic) measure dynamic --membership dynamic ;;
    static) measure static --membership static ;;
    kip848) measure kip848 --membership dynamic -X group.protocol=consumer ;;
    kip848-static) measure kip848-static --membership static -X group.protocol=consumer ;;
    *) echo "recovery.sh: unknown setting $setting" >&2; exit 2 ;;
  esac
done
