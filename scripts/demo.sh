#!/usr/bin/env bash
# The main job, end to end, on real recorded tweets: starts the local Kafka broker, creates the
# topics, starts the local stream emulator (an X API v2 filtered stream serving real
# recordings), runs `tweet-producer --track ...` against it over HTTP for a while, analyses
# what arrived with the analysis consumer group, and prints records per topic and a
# language x sentiment table. The broker keeps running afterwards so you can inspect the
# topics (stop it with scripts/kafka-local.sh stop).
#
#   scripts/demo.sh                   live path: emulator -> tweet-producer --track -> Kafka
#   scripts/demo.sh --source bluesky  live path over WebSocket: the emulator's Jetstream serving
#                                     the real Bluesky recording in ../shared/data/bluesky ->
#                                     tweet-producer --source bluesky -> Kafka
#   scripts/demo.sh --replay FILE     replay a recording instead (default data/sample/stream.jsonl)
#
# The web view (tweet-consumer --group web) starts before the producer and keeps running
# afterwards, like the broker: open the address the demo prints at the end. DEMO_WEB_ADDR
# (default 127.0.0.1:8080) moves it; DEMO_WEB_ADDR=off leaves it out.
#
# DEMO_SECONDS (default 20) sets how long the producer streams.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
export PATH="$HOME/.cargo/bin:$PATH"
export KAFKA_BOOTSTRAP="${KAFKA_BOOTSTRAP:-127.0.0.1:9092}"
MODE=live
RECORDING=data/sample/stream.jsonl
if [ "${1:-}" = "--replay" ]; then MODE=replay; RECORDING="${2:-$RECORDING}"; fi
if [ "${1:-}" = "--source" ]; then
  case "${2:-}" in
    bluesky) MODE=bluesky ;;
    x) MODE=live ;;
    *) echo "usage: scripts/demo.sh [--source x|bluesky | --replay FILE]" >&2; exit 2 ;;
  esac
fi
SHARED_DATA="${TWEET_PIPELINE_DATA:-$ROOT/../shared/data}"
if [ "$MODE" = bluesky ] && [ ! -f "$SHARED_DATA/bluesky/jetstream-v1/bluesky-social_jetstream__corpus_expected_v1.jsonl" ]; then
  echo "scripts/demo.sh --source bluesky serves the Jetstream recording in ../shared/data/bluesky: put shared/ beside the checkout or set TWEET_PIPELINE_DATA" >&2
  exit 1
fi
DEMO_SECONDS="${DEMO_SECONDS:-20}"
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

DEMO_WEB_ADDR="${DEMO_WEB_ADDR:-127.0.0.1:8080}"
WEB_PID_FILE="$ROOT/.local/demo/web.pid"
WEB_URL=""
# The web view a previous demo left running (this script started it; its PID is on file).
if [ -f "$WEB_PID_FILE" ]; then
  old_pid="$(cat "$WEB_PID_FILE")"
  if grep -q tweet-consumer "/proc/$old_pid/cmdline" 2>/dev/null; then kill "$old_pid" 2>/dev/null || true; sleep 1; fi
  rm -f "$WEB_PID_FILE"
fi
if [ "$DEMO_WEB_ADDR" != off ]; then
  step "tweet-consumer --group web on $DEMO_WEB_ADDR (reads the topics from their end, commits nothing)"
  "$BIN/tweet-consumer" --group web --http-addr "$DEMO_WEB_ADDR" --db "$DB" --metrics-addr off \
    >"$ROOT/.local/demo/web.out" 2>"$ROOT/.local/demo/web.log" &
  echo $! >"$WEB_PID_FILE"
  for _ in $(seq 1 50); do grep -q '^web view on ' "$ROOT/.local/demo/web.out" 2>/dev/null && break; sleep 0.2; done
  WEB_URL="$(sed -n 's/^web view on //p' "$ROOT/.local/demo/web.out" | head -n 1)"
  if [ -n "$WEB_URL" ]; then
    echo "web view at $WEB_URL: open it now to watch the posts arrive"
  else
    echo "the web view did not start (see $ROOT/.local/demo/web.log); the demo goes on without it" >&2
    rm -f "$WEB_PID_FILE"
  fi
fi

if [ "$MODE" = replay ]; then
  step "tweet-producer --replay $RECORDING"
  "$BIN/tweet-producer" --replay "$RECORDING" --metrics-addr off
else
  mkdir -p "$ROOT/.local/demo"
  start_emulator() {
    "$BIN/stream-emulator" "$@" >"$ROOT/.local/demo/emulator.out" 2>"$ROOT/.local/demo/emulator.log" &
    emulator_pid=$!
    trap 'kill "$emulator_pid" 2>/dev/null || true' EXIT
    for _ in $(seq 1 50); do grep -q '^listening on ' "$ROOT/.local/demo/emulator.out" 2>/dev/null && break; sleep 0.2; done
    EMULATOR_URL="$(sed -n 's/^listening on //p' "$ROOT/.local/demo/emulator.out" | head -n 1)"
    [ -n "$EMULATOR_URL" ] || { echo "the emulator did not start; see $ROOT/.local/demo/emulator.log" >&2; exit 1; }
    echo "emulator at $EMULATOR_URL"
  }
  if [ "$MODE" = bluesky ]; then
    step "starting the stream emulator (Bluesky Jetstream /subscribe over WebSocket on 127.0.0.1, the real recording)"
    start_emulator --listen 127.0.0.1:0 --data "$SHARED_DATA" --jetstream-rate 20
    JETSTREAM_URL="ws://${EMULATOR_URL#http://}/subscribe"
    # A fresh cursor: the demo starts at the beginning of the recording every time.
    rm -f "$ROOT/.local/demo/jetstream.cursor"
    step "tweet-producer --source bluesky --jetstream $JETSTREAM_URL (for ${DEMO_SECONDS}s, then SIGTERM)"
    # No credential: Jetstream is public. Posts and reposts, plus identity and account events.
    timeout --preserve-status -s TERM "$DEMO_SECONDS" \
      "$BIN/tweet-producer" --source bluesky --jetstream "$JETSTREAM_URL" \
      --cursor-file "$ROOT/.local/demo/jetstream.cursor" --metrics-addr off
    echo "cursor saved: $(cat "$ROOT/.local/demo/jetstream.cursor")"
  else
    step "starting the stream emulator (X API v2 filtered stream on 127.0.0.1, real recordings)"
    emulator_args=(--listen 127.0.0.1:0 --rate 50 --v1-file "$ROOT/data/sample/stream.jsonl")
    # The shared recordings add the real v2 payloads when they sit beside the checkout.
    [ -d "$SHARED_DATA" ] && emulator_args+=(--data "$SHARED_DATA")
    start_emulator "${emulator_args[@]}"

    step "tweet-producer --track the --track love --track que (for ${DEMO_SECONDS}s, then SIGTERM)"
    # The emulator's own demo token; a real run takes X_BEARER_TOKEN from the environment.
    # --preserve-status: the producer's own exit status (0 only if Kafka acknowledged every record).
    X_BEARER_TOKEN=emulator-bearer-token timeout --preserve-status -s TERM "$DEMO_SECONDS" \
      "$BIN/tweet-producer" --base-url "$EMULATOR_URL" --track the --track love --track que --metrics-addr off
  fi
  kill "$emulator_pid" 2>/dev/null || true
fi

step "tweet-consumer --group analysis (reads to the end of every partition, then exits)"
"$BIN/tweet-consumer" --group analysis --db "$DB" --exit-at-end --metrics-addr off

step "posts by language and sentiment (from $DB)"
"$BIN/tweet-consumer" stats --db "$DB"

step "a look at the tweets topic with the real kafka-console-consumer (headers | key | value, cut)"
scripts/kafka-local.sh console-consumer --topic tweets --from-beginning --max-messages 3 --timeout-ms 15000 \
  --formatter-property print.key=true --formatter-property print.headers=true --formatter-property key.separator=' | ' 2>/dev/null | cut -c1-220 || true

cat <<MSG

Inspect any topic the way Kafka users do:
  scripts/kafka-local.sh console-consumer --topic tweets --from-beginning --formatter-property print.key=true --formatter-property print.headers=true
  kcat -b $KAFKA_BOOTSTRAP -C -t retweets -e -f '%k %h %s\n'
The broker is still running: scripts/kafka-local.sh stop (or status, logs).
MSG
if [ -n "$WEB_URL" ]; then
  cat <<MSG

The web view is still running, with the demo's latest posts and the analysis panel:
  $WEB_URL
Stop it with: kill $(cat "$WEB_PID_FILE")
MSG
fi
