#!/usr/bin/env bash
# Creates the pipeline's topics, idempotently, on $KAFKA_BOOTSTRAP (default 127.0.0.1:9092),
# with the real kafka-topics from the local Kafka classpath (scripts/kafka-local.sh).
# Existing topics are left as they are (their partition count is reported, never reduced).
#
#   topic       partitions  cleanup  retention           why
#   tweets      $PARTITIONS compact,delete  7 days or 1 GiB/p  raw posts; replayable for a week;
#                                    a tombstone (deleted post) erases the post within 13 hours
#   retweets    $PARTITIONS compact,delete  7 days or 1 GiB/p  raw retweets, same
#   control     $PARTITIONS delete   7 days or 256 MiB/p delete/limit/disconnect/... notices
#   deadletter  $PARTITIONS delete   30 days or 256 MiB/p malformed/unknown lines kept for inspection
#   scheduled   $PARTITIONS compact  (latest per id)     scheduled posts by id; a tombstone cancels
#   scheduled-results $PARTITIONS compact (latest per id) the poster's outcome per post id; same
#                                                         partition count as scheduled (the poster
#                                                         writes a post's outcome to its partition number)
#
# Time and size both bound each data topic (whichever is hit first), as the Kafka seed article
# set up its tweet topic, so a long collection run can't fill the disk. Replication factor is
# $REPLICATION (1 on the single local node; use 3 on a real cluster).
#
# Environment: KAFKA_BOOTSTRAP, PARTITIONS (default 2), REPLICATION (default 1),
# TOPIC_PREFIX (default empty: prepended to every name, e.g. "dev-").
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
export KAFKA_BOOTSTRAP="${KAFKA_BOOTSTRAP:-127.0.0.1:9092}"
PARTITIONS="${PARTITIONS:-2}"
REPLICATION="${REPLICATION:-1}"
PREFIX="${TOPIC_PREFIX:-}"

DAY_MS=86400000
GIB=1073741824
MIB=1048576

[ "$PARTITIONS" -ge 2 ] 2>/dev/null || { echo "topics.sh: PARTITIONS must be a number >= 2 (got '$PARTITIONS')" >&2; exit 2; }

create() {
  local name="$PREFIX$1"; shift
  "$ROOT/scripts/kafka-local.sh" topics --create --if-not-exists --topic "$name" \
    --partitions "$PARTITIONS" --replication-factor "$REPLICATION" "$@" >/dev/null
}

# Delete compliance (X Developer Policy: honour deletes within 24 hours): the analysis group writes
# a tombstone for every deleted post; segments roll hourly and max.compaction.lag.ms forces the
# cleaner to compact a segment within 12 hours, so the content is gone from Kafka within ~13 h.
# Tombstones stay one day (delete.retention.ms) so that every consumer group sees them.
COMPACT="--config cleanup.policy=compact,delete --config segment.ms=$((DAY_MS / 24)) --config max.compaction.lag.ms=$((DAY_MS / 2)) --config delete.retention.ms=$DAY_MS"
# shellcheck disable=SC2086
create tweets     $COMPACT --config retention.ms=$((7 * DAY_MS))  --config retention.bytes=$GIB
# shellcheck disable=SC2086
create retweets   $COMPACT --config retention.ms=$((7 * DAY_MS))  --config retention.bytes=$GIB
create control    --config cleanup.policy=delete --config retention.ms=$((7 * DAY_MS))  --config retention.bytes=$((256 * MIB))
create deadletter --config cleanup.policy=delete --config retention.ms=$((30 * DAY_MS)) --config retention.bytes=$((256 * MIB))
create scheduled  --config cleanup.policy=compact --config min.compaction.lag.ms=0
create scheduled-results --config cleanup.policy=compact --config min.compaction.lag.ms=0

# One describe for all six (kafka-topics takes a regular expression): report what exists.
names="tweets|retweets|control|deadletter|scheduled|scheduled-results"
"$ROOT/scripts/kafka-local.sh" topics --describe --topic "^${PREFIX//./\\.}(${names})\$" \
  | awk '$1 == "Topic:" && /PartitionCount:/ {
      for (i = 1; i <= NF; i++) if ($i == "PartitionCount:") count = $(i + 1)
      printf "topics.sh: %-12s %s partitions\n", $2, count
    }'
