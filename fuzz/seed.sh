#!/usr/bin/env bash
# Fills fuzz/corpus/<target>/ with seeds cut from the shared recordings: a few hundred lines of
# v1.1 stream recordings and control messages, v2 stream payloads and errors, Mastodon events
# (the file with a broken line included) and the truncated raw HTTP capture.
#
#   fuzz/seed.sh [DATA_DIR]     DATA_DIR defaults to $TWEET_PIPELINE_DATA or ../shared/data
#
# The seeds are users' content: they stay local (fuzz/.gitignore keeps them out of git). Only the
# hand-written `seed-*` files in fuzz/corpus/ are committed. Each seed is named by the SHA-1 of
# its content, as libFuzzer names corpus entries, so running this twice adds nothing.
set -euo pipefail

FUZZ="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
DATA="${1:-${TWEET_PIPELINE_DATA:-$FUZZ/../../shared/data}}"
if [ ! -d "$DATA/twitter_v1" ]; then
  echo "seed.sh: shared recordings not found at $DATA (pass the data/ folder as the first argument)" >&2
  exit 1
fi

# put TARGET: stdin becomes one corpus file of TARGET.
put() {
  local dir="$FUZZ/corpus/$1" tmp
  mkdir -p "$dir"
  tmp="$(mktemp "$dir/.tmp.XXXXXX")"
  cat >"$tmp"
  mv "$tmp" "$dir/$(sha1sum "$tmp" | cut -c1-40)"
}

# lines TARGET COUNT FILE [PREFIX]: the first COUNT lines of FILE (terminator removed), each a
# seed of TARGET, with PREFIX (printf format) in front.
lines() {
  local target="$1" count="$2" file="$3" prefix="${4:-}" line
  [ -f "$file" ] || { echo "seed.sh: missing $file" >&2; exit 1; }
  while IFS= read -r line || [ -n "$line" ]; do
    { printf "$prefix"; printf '%s' "${line%$'\r'}"; } | put "$target"
  done < <(head -n "$count" "$file")
}

v1="$DATA/twitter_v1"
v2="$DATA/x_api_v2"
masto="$DATA/mastodon"
http="$v1/raw_http/statuses_filter_2015-12-02T165907Z_truncated.body.decoded.txt"

# route_line: one line each.
lines route_line 40 "$v1/stream_sample/sample_2013-05-05_MyCSHome.jsonl"
lines route_line 40 "$v1/stream_sample/sample_2016-11-18_acidpizza.jsonl"
lines route_line 30 "$v1/stream_filter/filter_locations_2018-01-23_pablobarbera.jsonl"
lines route_line 200 "$v1/control_messages/extracted_from_recordings.jsonl"
lines route_line 200 "$v1/control_messages/doc_style_examples.jsonl"
lines route_line 200 "$v1/control_messages/from_github_issues.jsonl"
lines route_line 20 "$v2/twarc-csv_test-data/streaming_output_with_error.jsonl"
lines route_line 20 "$v2/twarc-csv_test-data/two_tweets.jsonl"
lines route_line 50 "$v2/stream_errors_from_github_issues.jsonl"
lines route_line 10 "$masto/rtoot_stream_public_malformed_2022-11-24.jsonl"
head -c 4096 "$http" | put route_line
put route_line <"$http"

# mastodon_event: `<event>\n<data>`.
lines mastodon_event 50 "$masto/rtoot_stream_public_malformed_2022-11-24.jsonl" 'update\n'
lines mastodon_event 20 "$masto/rtoot_stream_public_mastodon.social_2022-11-21.jsonl" 'update\n'
lines mastodon_event 10 "$masto/rtoot_cassette_statuses.jsonl" 'status.update\n'
grep -m 20 '^data: ' "$masto/DERIVED_sse_framing_of_rtoot_stream_mastodon.social.txt" \
  | while IFS= read -r line; do printf 'update\n%s' "${line#data: }" | put mastodon_event; done
for id in 109381959558229264 ' 109381959558229264 ' ''; do printf 'delete\n%s' "$id" | put mastodon_event; done

# line_framer: selector byte (0x80: 512 KiB lines; 0x10: 17-byte lines), chunking seed, stream.
for file in "$v1/stream_filter/filter_locations_2015-11-01_insight.jsonl" \
  "$v1/stream_sample/sample_2013-05-07_brebory.jsonl" \
  "$http" "$masto/DERIVED_sse_framing_of_rtoot_stream_mastodon.social.txt"; do
  { printf '\x80\x07'; head -c 16384 "$file"; } | put line_framer
  { printf '\x10\x2a'; head -c 2048 "$file"; } | put line_framer
done

# parse_post: one payload each.
lines parse_post 40 "$v1/stream_sample/sample_2015-03-20_han-han.jsonl"
lines parse_post 20 "$v1/stream_filter/filter_japanese_2017-08-03_pablobarbera.jsonl"
lines parse_post 20 "$v2/twarc-csv_test-data/edited.jsonl"
lines parse_post 20 "$v2/twarc-csv_test-data/two_tweets.jsonl"
lines parse_post 40 "$masto/rtoot_cassette_statuses.jsonl"

for target in route_line mastodon_event line_framer parse_post; do
  echo "seed.sh: fuzz/corpus/$target: $(find "$FUZZ/corpus/$target" -type f | wc -l) files"
done
