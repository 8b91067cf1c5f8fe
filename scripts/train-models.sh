#!/usr/bin/env bash
# Trains consumer/models/{langid,sentiment}.bin with `tweet-consumer train` (deterministic, seed
# 14, shippable-licence data only) and writes consumer/models/SHA256SUMS. About 40 s on 2 cores.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
DATA="${TWEET_PIPELINE_DATA:-$ROOT/../shared/data}/training"
cargo build --release --locked -p tweet-pipeline-consumer --bin tweet-consumer -q
target/release/tweet-consumer train --data "$DATA" --out consumer/models "$@" > consumer/models/TRAINING.md
(cd consumer/models && sha256sum langid.bin sentiment.bin > SHA256SUMS)
cat consumer/models/SHA256SUMS
