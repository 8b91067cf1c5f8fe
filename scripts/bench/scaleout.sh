#!/usr/bin/env bash
# Scale-out row of scripts/bench.sh: the analysis group with one member against two members,
# over topics of 4 partitions, each storing into PostgreSQL (Debian's server, started here in
# a temporary folder on 127.0.0.1 and stopped at the end). Each case gets fresh topics; its
# members start first and the script waits until every member holds partitions (the lag gauge
# of docs/metrics.md), then replays INPUT at full speed and times until the members have
# consumed every record (their records counters), as seen on their /metrics every 0.2 s.
#
#   scripts/bench/scaleout.sh OUT_DIR INPUT    prints a markdown table on stdout
#
# Needs the broker (scripts/kafka-local.sh start), target/release binaries and PostgreSQL's
# server binaries (scripts/ensure-deps.sh installs them; PG_BIN overrides the folder).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
OUT="${1:?usage: scaleout.sh OUT_DIR INPUT}"
INPUT="$(realpath "${2:?usage: scaleout.sh OUT_DIR INPUT}")"
mkdir -p "$OUT"
OUT="$(cd "$OUT" && pwd)"
BIN="$ROOT/target/release"
KAFKA="$ROOT/scripts/kafka-local.sh"
RUN="s$(date +%s)"
mkdir -p "$OUT"
say() { printf '== %s\n' "$*" >&2; }

PG_BIN="${PG_BIN:-$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)}"
[ -x "$PG_BIN/initdb" ] || { echo "scaleout.sh: PostgreSQL's server binaries not found; run scripts/ensure-deps.sh or set PG_BIN" >&2; exit 1; }
PG_DIR="$(mktemp -d /tmp/tweet-pipeline-pg.XXXXXX)"
PG_PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
[ "$(id -u)" = 0 ] && chown -R postgres "$PG_DIR"
as_pg "$PG_BIN/initdb" -D "$PG_DIR/data" -U tweet --auth=trust -E UTF8 --no-sync >"$OUT/initdb.log"
as_pg "$PG_BIN/postgres" -D "$PG_DIR/data" -k "$PG_DIR" -h 127.0.0.1 -p "$PG_PORT" >"$OUT/postgres.log" 2>&1 &
PG_PID=$!
members=()
cleanup() {
  for pid in "${members[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  # SIGINT to the postmaster (runuser does not pass signals on): PostgreSQL's fast shutdown.
  local postmaster
  postmaster="$(head -n 1 "$PG_DIR/data/postmaster.pid" 2>/dev/null || echo "$PG_PID")"
  kill -INT "$postmaster" 2>/dev/null || true
  wait "$PG_PID" 2>/dev/null || true
  rm -rf "$PG_DIR"
}
trap cleanup EXIT
for _ in $(seq 1 100); do
  as_pg "$PG_BIN/pg_isready" -q -h 127.0.0.1 -p "$PG_PORT" && break
  sleep 0.2
done
for db in one two; do
  "$PG_BIN/psql" -q -h 127.0.0.1 -p "$PG_PORT" -U tweet -d postgres -c "CREATE DATABASE $db"
done

metric_sum() { # url name -> the sum of that metric's samples (0 when absent)
  curl -s "$1" | awk -v n="$2" 'index($0, n) == 1 && ($1 == n || substr($1, length(n) + 1, 1) == "{") {s += $NF} END {printf "%d\n", s}'
}
holds_partitions() { # url -> success when the member reports the lag of at least one partition
  curl -s "$1" | grep -q '^tweet_pipeline_consumer_lag_records{'
}

# One case: N members of a fresh group on fresh 4-partition topics -> prints "seconds records".
run_case() {
  local n="$1" db="$2" prefix="$RUN-$1m-" i port t0 t1 records=0 expected urls=()
  for t in tweets retweets control deadletter; do
    "$KAFKA" topics --create --topic "$prefix$t" --partitions 4 --replication-factor 1 >/dev/null
  done
  local flags=(--tweets-topic "${prefix}tweets" --retweets-topic "${prefix}retweets"
    --control-topic "${prefix}control" --deadletter-topic "${prefix}deadletter")
  members=()
  for i in $(seq 1 "$n"); do
    port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    "$BIN/tweet-consumer" --group "$RUN-$n" --role analysis --instance-id "member-$i" \
      --db "postgres://tweet@127.0.0.1:$PG_PORT/$db" --metrics-addr "127.0.0.1:$port" "${flags[@]}" \
      >"$OUT/member-$n-$i.txt" 2>"$OUT/member-$n-$i.log" &
    members+=($!)
    urls+=("http://127.0.0.1:$port/metrics")
  done
  say "$n member(s): waiting until each holds partitions"
  for _ in $(seq 1 300); do
    local ready=0
    for url in "${urls[@]}"; do holds_partitions "$url" && ready=$((ready + 1)); done
    [ "$ready" = "$n" ] && break
    sleep 0.2
  done
  [ "$ready" = "$n" ] || { echo "scaleout.sh: the members did not all get partitions; see $OUT/member-$n-*.log" >&2; exit 1; }
  t0=$(date +%s.%N)
  "$BIN/tweet-producer" --replay "$INPUT" --metrics-addr off "${flags[@]}" >"$OUT/producer-$n.txt" 2>"$OUT/producer-$n.log"
  expected=$(awk '/records ->/ && !/deadletter/ {s+=$NF} END {print s}' "$OUT/producer-$n.txt")
  while [ "$records" -lt "$expected" ]; do
    sleep 0.2
    records=0
    for url in "${urls[@]}"; do records=$((records + $(metric_sum "$url" tweet_pipeline_consumer_records_total))); done
  done
  t1=$(date +%s.%N)
  for pid in "${members[@]}"; do kill -TERM "$pid"; wait "$pid" || true; done
  members=()
  python3 -c "print(f'{$t1 - $t0:.2f} $records')"
}

say "one member"
read -r ONE_S RECORDS < <(run_case 1 one)
say "two members"
read -r TWO_S _ < <(run_case 2 two)
python3 - "$ONE_S" "$TWO_S" "$RECORDS" <<'PY'
import sys
one, two, records = float(sys.argv[1]), float(sys.argv[2]), int(sys.argv[3])
print("| analysis group, PostgreSQL, 4 partitions | s to consume | records/s | ratio |")
print("|---|---:|---:|---:|")
print(f"| one member | {one:.2f} | {records / one:,.0f} | 1.00 |")
print(f"| two members | {two:.2f} | {records / two:,.0f} | {one / two:.2f} |")
print()
print(f"{records:,} records each (replay at full speed, timed from its start to the last record consumed).")
PY
