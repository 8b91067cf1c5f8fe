#!/usr/bin/env bash
# The main job, end to end, on real recorded tweets: starts the local Kafka broker, creates the
# topics, replays the bundled sample stream through tweet-producer, analyses it with the
# analysis consumer group, and prints records per topic and a language x sentiment table.
# The broker keeps running afterwards so you can inspect the topics (stop it with
# scripts/kafka-local.sh stop).
#
#   scripts/demo.sh [RECORDING]     default: data/sample/stream.jsonl
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
export PATH="$HOME/.cargo/bin:$PATH"
export KAFKA_BOOTSTRAP="${KAFKA_BOOTSTRAP:-127.0.0.1:9092}"
RECORDING="${1:-data/sample/stream.jsonl}"
DB="$ROOT/.local/demo/tweets.db"
BIN="$ROOT/target/release"
mkdir -p "$(dirname "$DB")"

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

step "installing what is missing, building (release)"
scripts/ensure-deps.sh
cargo build --release --locked --bins -q

step "starting the local Kafka broker (KRaft, 127.0.0.1:9092)"
scripts/kafka-local.sh start

step "creating the topics (./topics.sh)"
./topics.sh

step "tweet-producer --replay $RECORDING"
"$BIN/tweet-producer" --replay "$RECORDING" --metrics-addr off

step "tweet-consumer --group analysis (reads to the end of every partition, then exits)"
"$BIN/tweet-consumer" --group analysis --db "$DB" --exit-at-end --metrics-addr off

step "posts by language and sentiment (from $DB)"
"$BIN/tweet-consumer" stats --db "$DB"

step "a look at the control topic with the real kafka-console-consumer"
scripts/kafka-local.sh console-consumer --topic control --from-beginning --max-messages 3 \
  --formatter-property print.key=true --formatter-property print.headers=true --formatter-property key.separator=' | ' 2>/dev/null | cut -c1-220

cat <<MSG

Inspect any topic the way Kafka users do:
  scripts/kafka-local.sh console-consumer --topic tweets --from-beginning --formatter-property print.key=true --formatter-property print.headers=true
  kcat -b $KAFKA_BOOTSTRAP -C -t retweets -e -f '%k %h %s\n'
The broker is still running: scripts/kafka-local.sh stop (or status, logs).
MSG
