#!/usr/bin/env bash
# Trains consumer/models/{langid,sentiment}.bin with `tweet-consumer train` (deterministic, seed
# 14, shippable-licence data only: docs/models.md), writes the training report to
# consumer/models/TRAINING.md and the checksums to consumer/models/SHA256SUMS. About 45 s of
# training on one core. Extra arguments go to `tweet-consumer train` (e.g.
# --include-research-data --out /tmp/research-models).
# Data: $TWEET_PIPELINE_DATA (default ../shared/data beside the clone), its training/ folder.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
DATA="${TWEET_PIPELINE_DATA:-$ROOT/../shared/data}/training"
if [[ ! -f "$DATA/MANIFEST.md" ]]; then
    echo "train-models.sh: no training data at $DATA; set TWEET_PIPELINE_DATA to the shared data folder" >&2
    exit 2
fi
OUT=consumer/models
args=(--out "$OUT")
for ((i = 1; i <= $#; i++)); do
    if [[ "${!i}" == --out ]]; then j=$((i + 1)); OUT="${!j}"; args=(); fi
done
mkdir -p "$OUT"
cargo build --release --locked -p tweet-pipeline-consumer --bin tweet-consumer -q
report="$(target/release/tweet-consumer train --data "$DATA" "${args[@]}" "$@")"
printf '%s\n' "$report" > "$OUT/TRAINING.md"
(cd "$OUT" && sha256sum langid.bin sentiment.bin > SHA256SUMS)
cat "$OUT/SHA256SUMS"
