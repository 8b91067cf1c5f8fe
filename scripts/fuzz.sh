#!/usr/bin/env bash
# Runs every cargo-fuzz target in fuzz/ for a bounded time; fails on the first crash, whose
# input libFuzzer leaves in fuzz/artifacts/<target>/ (copy it to fuzz/regressions/<target>/
# once fixed: `cargo test` replays that folder on stable).
#
#   scripts/fuzz.sh [SECONDS] [TARGET...]   SECONDS per target (default 60), all targets by default
#
# Needs cargo-fuzz (installed with `cargo install cargo-fuzz --locked` when missing) and a
# nightly toolchain for AddressSanitizer (`rustup toolchain install nightly`). Without nightly it
# falls back to stable with RUSTC_BOOTSTRAP=1 and no sanitizer (`-s none`); panics are still
# caught, memory errors in unsafe code are not. FUZZ_TOOLCHAIN=stable|nightly forces a choice.
# The first build compiles the fuzz package's dependencies (~5 min of CPU, 12 min on a busy
# 2-core machine); later runs rebuild only the workspace crates.
#
# Seeds: the committed hand-written seeds, plus whatever fuzz/seed.sh cut from ../shared/data
# (run it first for a better start; this script runs it when the data is there).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT/fuzz"
export PATH="$HOME/.cargo/bin:$PATH"

seconds="${1:-60}"
shift || true
case "$seconds" in
  '' | *[!0-9]*) echo "fuzz.sh: SECONDS must be a whole number, got '$seconds'" >&2; exit 2 ;;
esac
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  targets=(route_line mastodon_event line_framer parse_post)
fi

if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "== installing cargo-fuzz"
  cargo install cargo-fuzz --locked
fi

toolchain="${FUZZ_TOOLCHAIN:-}"
if [ -z "$toolchain" ]; then
  if rustup run nightly rustc --version >/dev/null 2>&1; then toolchain=nightly; else toolchain=stable; fi
fi
case "$toolchain" in
  nightly) fuzz=(cargo +nightly fuzz); sanitizer=(-s address) ;;
  stable)
    echo "fuzz.sh: stable toolchain (RUSTC_BOOTSTRAP=1), no sanitizer"
    export RUSTC_BOOTSTRAP=1
    fuzz=(cargo +stable fuzz); sanitizer=(-s none) ;;
  *) echo "fuzz.sh: FUZZ_TOOLCHAIN must be stable or nightly, got '$toolchain'" >&2; exit 2 ;;
esac

data="${TWEET_PIPELINE_DATA:-$ROOT/../shared/data}"
if [ -d "$data/twitter_v1" ]; then
  ./seed.sh "$data" >/dev/null
fi

echo "== build ($toolchain, sanitizer ${sanitizer[1]})"
"${fuzz[@]}" build "${sanitizer[@]}"
mkdir -p artifacts
for target in "${targets[@]}"; do
  echo "== fuzz $target for ${seconds} s"
  mkdir -p "corpus/$target"
  # -max_len bounds a generated input (the seeds may be longer); the framer target feeds each
  # input byte by byte, so it gets the shorter bound.
  max_len=16384
  [ "$target" = line_framer ] && max_len=4096
  started=$SECONDS
  if ! "${fuzz[@]}" run "${sanitizer[@]}" "$target" -- \
    -max_total_time="$seconds" -max_len="$max_len" -print_final_stats=1 \
    >"artifacts/$target.log" 2>&1; then
    grep -v '^"' "artifacts/$target.log" | tail -n 40
    echo "fuzz.sh: $target failed; the input is in fuzz/artifacts/$target/" >&2
    exit 1
  fi
  runs="$(grep -o 'stat::number_of_executed_units: *[0-9]*' "artifacts/$target.log" | grep -o '[0-9]*$' || echo '?')"
  echo "fuzz.sh: $target: $runs runs in $((SECONDS - started)) s, no crash"
  rm -f "artifacts/$target.log"
done
