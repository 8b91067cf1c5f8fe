#!/usr/bin/env bash
# Runs every test: unit tests, routing over the shared recordings, and the end-to-end tests
# against a real local Kafka broker, which this script starts (and stops again, if it started it).
#
#   scripts/test.sh            everything
#   scripts/test.sh -- ARGS    ARGS passed to cargo test (e.g. a test name filter)
#
# TWEET_PIPELINE_FUZZ_SECONDS=N also runs every fuzz target for N seconds (scripts/fuzz.sh; off by
# default: its first build takes minutes). `cargo test` always replays the fuzz corpus on stable.
#
# Needs ../shared/data beside the checkout (or TWEET_PIPELINE_DATA naming the folder) for the
# recording-based tests. The binaries are built before `cargo test`: the end-to-end tests
# (e2e/) run them from the same target folder and profile.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
export PATH="$HOME/.cargo/bin:$PATH"
export KAFKA_BOOTSTRAP="${KAFKA_BOOTSTRAP:-127.0.0.1:9092}"
[ "${1:-}" = "--" ] && shift

started=$SECONDS
scripts/ensure-deps.sh

echo "== format and lints (cargo fmt --check; clippy, warnings are errors)"
cargo fmt --all --check
cargo build --release --locked --bins
# docs/configuration.md holds every --help verbatim: it fails here when flags and docs disagree.
scripts/config-docs.sh --check target/release
cargo clippy --release --locked --workspace --all-targets -- -D warnings

echo "== what the README claims builds: common without Kafka, and the fuzz crate"
cargo check --release --locked -p tweet-pipeline-common --no-default-features
# The fuzz targets are libFuzzer binaries (nightly, cargo fuzz); on stable they type-check.
cargo check --release --locked --manifest-path fuzz/Cargo.toml --target-dir target/fuzz-check --bins --lib

echo "== local Kafka broker"
broker_started_here=0
if ! scripts/kafka-local.sh status >/dev/null 2>&1; then
  scripts/kafka-local.sh start
  broker_started_here=1
fi
cleanup() {
  if [ "$broker_started_here" = 1 ]; then scripts/kafka-local.sh stop || true; fi
}
trap cleanup EXIT

echo "== topics.sh (idempotent: twice, under a throw-away prefix)"
prefix="ci-$$-"
TOPIC_PREFIX="$prefix" ./topics.sh
out="$(TOPIC_PREFIX="$prefix" ./topics.sh)"
for topic in tweets retweets control deadletter scheduled scheduled-results; do
  grep -q "^topics.sh: ${prefix}${topic} *2 partitions$" <<<"$out" || { echo "topics.sh did not report ${prefix}${topic} with 2 partitions:"; echo "$out"; exit 1; }
done
scripts/kafka-local.sh topics --delete --topic "${prefix}.*" >/dev/null 2>&1 || true

echo "== cargo test"
cargo test --release --locked --workspace "$@"

if [ -n "${TWEET_PIPELINE_FUZZ_SECONDS:-}" ]; then
  echo "== fuzz (${TWEET_PIPELINE_FUZZ_SECONDS} s per target)"
  scripts/fuzz.sh "$TWEET_PIPELINE_FUZZ_SECONDS"
fi

echo "== all tests passed in $((SECONDS - started)) s"
