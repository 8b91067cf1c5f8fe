#!/usr/bin/env bash
# Writes every binary's `--help` (and every subcommand's, found in the "Commands:" list of the
# help itself) into docs/configuration.md, between marker comments, so the flag reference cannot
# drift from the flags:
#
#   <!-- BEGIN tweet-producer schedule post --help -->
#   ```text
#   ...the help, verbatim except for trailing spaces...
#   ```
#   <!-- END tweet-producer schedule post --help -->
#
# Only the text between a BEGIN and its END is rewritten; the prose around the blocks is left as
# it is. A command that has no block yet gets one appended at the end of the file (move it where
# it belongs); a block whose command no longer exists is an error (remove it by hand).
#
#   scripts/config-docs.sh [BIN_DIR]           rewrite the blocks (BIN_DIR default: target/release)
#   scripts/config-docs.sh --check [BIN_DIR]   change nothing; exit 1 with a unified diff when the
#                                              file differs from what it would write (for CI)
#
# The binaries run with an empty environment: clap prints the current value of a flag's
# environment variable in `--help` (`[env: KAFKA_BOOTSTRAP=broker:9092]`), and a terminal's width
# or COLUMNS could change the wrapping. Trailing whitespace is stripped from each line, so an
# editor that trims it does not make --check fail. Binaries: CONFIG_DOCS_BINARIES (space
# separated), default below.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DOC="$ROOT/docs/configuration.md"
BINARIES="${CONFIG_DOCS_BINARIES:-tweet-producer tweet-consumer stream-emulator}"

usage() { sed -n '16,18p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; }

check=0
bin_dir=""
while [ $# -gt 0 ]; do
  case "$1" in
    --check) check=1 ;;
    -h|--help) usage; exit 0 ;;
    -*) echo "config-docs.sh: unknown option $1" >&2; usage >&2; exit 2 ;;
    *)
      [ -z "$bin_dir" ] || { echo "config-docs.sh: one BIN_DIR only" >&2; exit 2; }
      bin_dir="$1" ;;
  esac
  shift
done
bin_dir="${bin_dir:-$ROOT/target/release}"

for bin in $BINARIES; do
  if [ ! -x "$bin_dir/$bin" ]; then
    echo "config-docs.sh: no executable $bin_dir/$bin; build the binaries first (cargo build --release --locked --bins) or pass their folder" >&2
    exit 2
  fi
done

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
: >"$work/index" # one line per command: <file>\t<command words>
n=0

# help BIN [SUBCOMMAND...]: the help text, from an empty environment, trailing spaces removed.
help() {
  local bin="$1"; shift
  env -i "$bin_dir/$bin" "$@" --help | sed 's/[[:space:]]*$//'
}

# subcommands: the names listed under "Commands:", without clap's own `help`.
subcommands() {
  awk '
    /^Commands:$/ { inside = 1; next }
    inside && /^$/ { exit }
    inside && /^  [^ ]/ { if ($1 != "help") print $1 }
  '
}

# collect BIN [SUBCOMMAND...]: this command's help, then its subcommands', depth first.
collect() {
  local text
  if ! text="$(help "$@")"; then
    echo "config-docs.sh: \`$* --help\` failed" >&2
    exit 2
  fi
  n=$((n + 1))
  printf '%s\n' "$text" >"$work/$n"
  printf '%s\t%s\n' "$work/$n" "$*" >>"$work/index"
  local sub
  for sub in $(printf '%s\n' "$text" | subcommands); do
    collect "$@" "$sub"
  done
}

for bin in $BINARIES; do
  collect "$bin"
done

if [ -f "$DOC" ]; then cp "$DOC" "$work/current"; else printf '# Configuration\n' >"$work/current"; fi

# Rewrite every block from the collected help; append the commands that have none.
awk -v index_file="$work/index" -v errors="$work/errors" '
  BEGIN {
    FS = "\t"
    while ((getline line < index_file) > 0) {
      split(line, part, "\t")
      count++
      order[count] = part[2]
      file[part[2]] = part[1]
    }
    FS = " "
  }
  function emit(name,    line) {
    print "```text"
    while ((getline line < file[name]) > 0) print line
    close(file[name])
    print "```"
    done[name] = 1
  }
  skipping {
    if ($0 == "<!-- END " name " --help -->") { print; skipping = 0 }
    next
  }
  /^<!-- BEGIN .* --help -->$/ {
    name = $0
    sub(/^<!-- BEGIN /, "", name)
    sub(/ --help -->$/, "", name)
    print
    if (!(name in file)) {
      print "docs/configuration.md:" NR ": a block for `" name " --help`, which no binary has; remove it" > errors
      failed = 1
    } else if (name in done) {
      print "docs/configuration.md:" NR ": a second block for `" name " --help`" > errors
      failed = 1
    } else {
      emit(name)
    }
    skipping = 1
    began = NR
    next
  }
  /^<!-- END .* --help -->$/ {
    print "docs/configuration.md:" NR ": an END marker without its BEGIN" > errors
    failed = 1
  }
  { print }
  END {
    if (skipping) {
      print "docs/configuration.md:" began ": `" name " --help` has no END marker" > errors
      failed = 1
    }
    for (i = 1; i <= count; i++) {
      name = order[i]
      if (name in done) continue
      print ""
      print "### `" name "`"
      print ""
      print "<!-- BEGIN " name " --help -->"
      emit(name)
      print "<!-- END " name " --help -->"
    }
    exit failed
  }
' "$work/current" >"$work/new" || {
  cat "$work/errors" >&2
  exit 2
}

if [ "$check" = 1 ]; then
  if diff -u --label docs/configuration.md --label "docs/configuration.md (from --help)" \
      "$work/current" "$work/new"; then
    echo "config-docs.sh: docs/configuration.md agrees with --help ($n commands)"
    exit 0
  fi
  echo "config-docs.sh: docs/configuration.md differs from the binaries' --help; run scripts/config-docs.sh and commit the result" >&2
  exit 1
fi

if cmp -s "$work/current" "$work/new"; then
  echo "config-docs.sh: docs/configuration.md already up to date ($n commands)"
else
  cp "$work/new" "$DOC"
  echo "config-docs.sh: wrote $n help texts into docs/configuration.md"
fi
