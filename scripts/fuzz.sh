#!/usr/bin/env bash
# Runs Wisp's fuzz targets (fuzz/, see fuzz/README.md) with cargo-fuzz / libFuzzer.
#
#   scripts/fuzz.sh <target|all> <seconds>
#
# Installs cargo-fuzz (pinned) if missing, builds the targets on stable Rust (RUSTC_BOOTSTRAP=1:
# cargo-fuzz passes -Z flags; no sanitizer: the fuzzed code is safe Rust, so ASan would only
# slow it down), then runs each target for <seconds>. Corpora grow in
# $HOME/.cache/wisp/fuzz-corpus/<target> (seeded from fuzz/seeds/<target>/); every input in
# fuzz/regressions/<target>/ is replayed first. Crash inputs go to
# $HOME/.cache/wisp/fuzz-artifacts/<target>/, full logs to $HOME/.cache/wisp/fuzz-logs/.
# Prints one line per target (executions, crashes) and exits non-zero if any target crashed.
set -euo pipefail
cd "$(dirname "$0")/.."

CARGO_FUZZ_VERSION=0.13.2
TARGETS=(lane_payload offledger_request module json_codec type_parse rpc_params state_proof)

usage() {
  echo "usage: $0 <all|$(
    IFS='|'
    echo "${TARGETS[*]}"
  )> <seconds>" >&2
  exit 2
}
[ $# -eq 2 ] || usage
[[ "$2" =~ ^[1-9][0-9]*$ ]] || usage
seconds=$2
if [ "$1" = all ]; then
  selected=("${TARGETS[@]}")
else
  [[ " ${TARGETS[*]} " == *" $1 "* ]] || usage
  selected=("$1")
fi

cache="$HOME/.cache/wisp"
# A target dir of its own: the workspace's ($cache/target) is built without coverage flags.
export CARGO_TARGET_DIR="$cache/fuzz-target"
export RUSTC_BOOTSTRAP=1
export CARGO_TERM_COLOR=never

if [ "$(cargo fuzz --version 2>/dev/null || true)" != "cargo-fuzz $CARGO_FUZZ_VERSION" ]; then
  echo "fuzz: installing cargo-fuzz $CARGO_FUZZ_VERSION" >&2
  nice cargo install cargo-fuzz --version "=$CARGO_FUZZ_VERSION" --locked --quiet
fi

# fuzz/Cargo.lock is checked in: refuse to build if it is stale rather than re-resolving.
cargo metadata --manifest-path fuzz/Cargo.toml --locked --format-version 1 >/dev/null

# Release build with debug assertions and overflow checks (cargo-fuzz's default), no sanitizer.
fuzz_flags=(--sanitizer none --debug-assertions)
build_start=$SECONDS
if [ "$1" = all ]; then
  nice cargo fuzz build "${fuzz_flags[@]}"
else
  nice cargo fuzz build "${fuzz_flags[@]}" "$1"
fi
echo "fuzz: built ${selected[*]} in $((SECONDS - build_start)) s" >&2

# Inputs libFuzzer saved as findings (it also writes slow-unit-* files, which are not failures).
count_findings() {
  find "$1" -type f \( -name 'crash-*' -o -name 'timeout-*' -o -name 'oom-*' -o -name 'leak-*' \) | wc -l
}

host=$(rustc -vV | sed -n 's/^host: //p')
bin_dir="$CARGO_TARGET_DIR/$host/release"
failed=0
summary=()
for t in "${selected[@]}"; do
  corpus="$cache/fuzz-corpus/$t"
  artifacts="$cache/fuzz-artifacts/$t"
  log="$cache/fuzz-logs/$t.log"
  mkdir -p "$corpus" "$artifacts" "$(dirname "$log")"
  # The first directory receives new inputs; seeds and regressions are only read.
  dirs=("$corpus")
  for d in "fuzz/seeds/$t" "fuzz/regressions/$t"; do
    [ -d "$d" ] && dirs+=("$d")
  done
  before=$(count_findings "$artifacts")
  status=0
  start=$SECONDS
  "$bin_dir/$t" "${dirs[@]}" \
    -max_total_time="$seconds" -rss_limit_mb=2048 -timeout=10 -print_final_stats=1 \
    -artifact_prefix="$artifacts/" >"$log" 2>&1 || status=$?
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
  if [ -z "$execs" ]; then
    # No final stats (e.g. a stack overflow kills the process): the last progress line.
    execs=$(grep -o '^#[0-9]*' "$log" | tail -n 1 | tr -d '#')
  fi
  execs=${execs:-0}
  elapsed=$((SECONDS - start))
  crashes=$(($(count_findings "$artifacts") - before))
  if [ "$status" -ne 0 ] && [ "$crashes" -eq 0 ]; then
    crashes=1
  fi
  line="fuzz $t: $execs executions in ${elapsed} s ($((execs / (elapsed > 0 ? elapsed : 1)))/s), crashes: $crashes"
  if [ "$crashes" -gt 0 ]; then
    failed=1
    newest=$(ls -t "$artifacts" | grep -E '^(crash|timeout|oom|leak)-' | head -n 1 || true)
    line+=" (exit $status; input: ${newest:+$artifacts/$newest}; log: $log)"
    # The panic message (without the backtrace) and libFuzzer's verdict.
    echo "---- $t (full log: $log) ----" >&2
    awk '/panicked at/ {p = 1} /^stack backtrace:/ {p = 0} p' "$log" | head -n 20 >&2
    grep -E 'overflowed its stack|fatal runtime error|ERROR: libFuzzer|^SUMMARY|Test unit written|^Base64' "$log" >&2 || true
    echo "----" >&2
  fi
  summary+=("$line")
done

printf '%s\n' "${summary[@]}"
exit "$failed"
