#!/usr/bin/env bash
# Runs every benchmark in bench/ (each prints its own figures).
# BENCH selects some: BENCH="bench_pvesim" make bench
set -euo pipefail
# shellcheck source=scripts/env.sh
. "$(dirname "$0")/env.sh"
cd "$PAI_ROOT"
for f in bench/bench_*.py; do
  name="$(basename "$f" .py)"
  if [ -n "${BENCH:-}" ] && [[ " ${BENCH} " != *" ${name} "* ]]; then continue; fi
  echo "=== ${name}"
  python -m "bench.${name}"
done
