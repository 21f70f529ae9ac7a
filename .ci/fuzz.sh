#!/usr/bin/env bash
# Run the atheris fuzz harnesses for a fixed time budget each, in parallel,
# starting from the committed seed corpus (fuzz/corpus/); print executions
# and findings; exit non-zero if either found a crash, a hang, an
# out-of-memory or a broken promise.
#
#   .ci/fuzz.sh                      # 60 s per harness
#   FUZZ_SECONDS=600 .ci/fuzz.sh     # longer
#   FUZZ_JOBS=2 .ci/fuzz.sh          # libFuzzer workers per harness (default 1)
#
# Findings are written to $FUZZ_OUT (default: a temporary directory, kept if
# anything was found) as crash-*/timeout-*/oom-* files; replay one with
#   python fuzz/fuzz_archive.py <file>      (or fuzz/fuzz_core.py)
# Uses the `python` on PATH (the CI virtual environment); installs atheris
# from PyPI if it is missing.
set -uo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"
PY=${PYTHON:-python}
command -v "$PY" >/dev/null || PY=python3
SECONDS_EACH=${FUZZ_SECONDS:-60}
JOBS=${FUZZ_JOBS:-1}
OUT=${FUZZ_OUT:-$(mktemp -d)}
mkdir -p "$OUT"

"$PY" -c "import atheris" 2>/dev/null || "$PY" -m pip install -q atheris || exit 1
"$PY" fuzz/make_corpus.py --check || { echo "fuzz/corpus is stale: python fuzz/make_corpus.py"; exit 1; }

run() {  # name
  local name=$1 work="$OUT/$1"
  mkdir -p "$work/corpus" "$work/findings"
  local args=("$work/corpus" "$ROOT/fuzz/corpus" -max_total_time="$SECONDS_EACH" -timeout=25
              -rss_limit_mb=3072 -max_len=131072 -print_final_stats=1
              -artifact_prefix="$work/findings/")
  if [ "$JOBS" -gt 1 ]; then
    args+=(-jobs="$JOBS" -workers="$JOBS")
  fi
  (cd "$work" && "$PY" "$ROOT/fuzz/$name.py" "${args[@]}") >"$work/log" 2>&1
  echo $? >"$work/rc"
}

echo "== fuzzing fuzz_archive and fuzz_core, ${SECONDS_EACH}s each, in parallel (output: $OUT)"
run fuzz_archive &
run fuzz_core &
wait

status=0
for name in fuzz_archive fuzz_core; do
  work="$OUT/$name"
  logs=("$work/log")
  [ "$JOBS" -gt 1 ] && logs+=("$work"/fuzz-*.log)
  runs=$(grep -h "stat::number_of_executed_units" "${logs[@]}" 2>/dev/null |
         awk '{s += $2} END {print s + 0}')
  findings=$(find "$work/findings" -type f | wc -l)
  echo "$name: $runs executions, $findings findings, exit $(cat "$work/rc")"
  grep -h "^$name:" "${logs[@]}" 2>/dev/null | tail -1
  if [ "$findings" -gt 0 ] || [ "$(cat "$work/rc")" != 0 ]; then
    status=1
    grep -h -A30 "Uncaught Python exception\|ERROR: libFuzzer\|ERROR: AddressSanitizer" \
      "${logs[@]}" 2>/dev/null | head -60
    find "$work/findings" -type f | head
  fi
done
if [ "$status" = 0 ] && [ -z "${FUZZ_OUT:-}" ]; then rm -rf "$OUT"; fi
exit "$status"
