#!/usr/bin/env bash
# Run the test suite against a C core built with AddressSanitizer and
# UndefinedBehaviorSanitizer (build_ffi.py, BFA_SANITIZE=1).
#
#   .ci/sanitize.sh                 # the whole suite
#   .ci/sanitize.sh tests/test_hostile_sweep.py -k plain    # any pytest arguments
#
# The sanitized build happens in a scratch copy of the working tree, so the
# tree's own (normal) build is never replaced and nothing needs rebuilding
# afterwards; the copy is deleted at exit. Python itself is not instrumented:
# libasan is preloaded (it must come first in the process), leak detection is
# off (CPython keeps memory until exit by design), and any ASan report or UBSan
# finding aborts the process, which fails the test that ran it (or, in a
# subprocess, the test that started it: subprocesses inherit the environment).
# Uses the `python` on PATH (run it inside the CI virtual environment).
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
PY=${PYTHON:-python}
command -v "$PY" >/dev/null || PY=python3
START=$(date +%s)

WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
# tracked and untracked-but-not-ignored files: what the tree holds now
(cd "$ROOT" && git ls-files -z --cached --others --exclude-standard) |
  (cd "$ROOT" && xargs -0 cp --parents -t "$WORK" 2>/dev/null || true)
rm -f "$WORK"/bfast_archive/_bfa_core*.so

echo "== building the C core with -fsanitize=address,undefined in $WORK"
(cd "$WORK" && BFA_SANITIZE=1 "$PY" build_ffi.py >"$WORK/build.log" 2>&1) || {
  tail -40 "$WORK/build.log"; exit 1; }
SO=$(ls "$WORK"/bfast_archive/_bfa_core*.so)
# (grep without -q reads all of ldd's output: under pipefail, grep -q exiting
# early could fail the pipe with SIGPIPE)
ldd "$SO" | grep libasan >/dev/null || { echo "the core is not linked against libasan"; exit 1; }

LIBASAN=$(gcc -print-file-name=libasan.so)
# libstdc++ too: ASan finds C++'s __cxa_throw only if it is loaded at start, and
# the test extras (pyarrow, duckdb) throw C++ exceptions
LIBSTDCXX=$(gcc -print-file-name=libstdc++.so)
export LD_PRELOAD="$LIBASAN:$LIBSTDCXX${LD_PRELOAD:+:$LD_PRELOAD}"
export ASAN_OPTIONS="detect_leaks=0:abort_on_error=1:halt_on_error=1:print_summary=1:${ASAN_OPTIONS:-}"
export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1:${UBSAN_OPTIONS:-}"
export PYTHONDONTWRITEBYTECODE=1

cd "$WORK"
# the copy must be the package imported (cwd comes first with python -m)
"$PY" - <<'EOF'
import os, bfast_archive._bfa_core as core
assert core.__file__.startswith(os.getcwd()), core.__file__
print("== sanitized core:", core.__file__)
EOF

# the sanitizer is live: a read past a malloc'd buffer must be reported
if "$PY" -c "
from bfast_archive._bfa_core import ffi, lib
buf = bytes(4096)                                  # malloc'd (pymalloc takes <= 512 B only)
lib.bfa_xxh64(ffi.from_buffer('uint8_t[]', buf), 4096 + 64, 0)
" 2>"$WORK/selfcheck.log"; then
  echo "ASan did not report an out-of-bounds read: the build is not sanitized"; exit 1
fi
grep -q "heap-buffer-overflow" "$WORK/selfcheck.log" || { cat "$WORK/selfcheck.log"; exit 1; }
echo "== self-check: ASan reports a heap-buffer-overflow in the core"

echo "== pytest under ASan + UBSan"
set +e
BFA_EXPECT_CORE_IN="$WORK/bfast_archive/" "$PY" -m pytest -q -p no:cacheprovider "${@:-tests}"
rc=$?
set -e
echo "== sanitize run: exit $rc, $(( $(date +%s) - START )) s"
exit "$rc"
