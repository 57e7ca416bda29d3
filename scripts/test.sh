#!/usr/bin/env bash
# Runs the quality gates stage by stage and prints what each cost.
#   STAGES     which stages (default: all): lint sanity pytest molecule sandbox build
#              (bootstrap always runs first; sandbox = make demo + the audit break test, scripts/sandbox-test.sh)
#   SCENARIOS  which molecule scenarios (default: every molecule/*/molecule.yml)
#   PYTEST_ARGS extra pytest arguments (e.g. "-k retention")
# Closes with a "stages: N passed, N failed" line; exits non-zero on any failure.
set -uo pipefail
# shellcheck source=scripts/env.sh
. "$(dirname "$0")/env.sh"
cd "$PAI_ROOT" || exit 1

ALL_STAGES="lint sanity pytest molecule sandbox build"
STAGES="${STAGES:-$ALL_STAGES}"
if [ -z "${SCENARIOS:-}" ]; then
  SCENARIOS="$(find molecule -mindepth 2 -maxdepth 2 -name molecule.yml -printf '%h\n' | xargs -rn1 basename | sort | tr '\n' ' ')"
fi
LOG_DIR="${PAI_ROOT}/build/test-logs"
mkdir -p "$LOG_DIR"

declare -a summary=()
passed=0
failed=0

run_stage() {
  local name="$1"; shift
  local start end rc
  start=$(date +%s)
  echo "=== stage ${name}: $*"
  "$@"
  rc=$?
  end=$(date +%s)
  if [ "$rc" -eq 0 ]; then
    passed=$((passed + 1)); summary+=("$(printf '%-28s %5ss  ok' "$name" $((end - start)))")
  else
    failed=$((failed + 1)); summary+=("$(printf '%-28s %5ss  FAILED (rc=%s)' "$name" $((end - start)) "$rc")")
  fi
  return 0
}

# ansible-lint and molecule (ansible-compat) install the collection under
# ~/.ansible/collections; a copy left there by another checkout would shadow
# this one, so drop it before they run.
drop_stale_install() {
  rm -rf "${HOME}/.ansible/collections/ansible_collections/proxmox_ai/hardening"
}

stage_lint() {
  drop_stale_install
  ansible-lint --offline --profile production && antsibull-changelog lint
}

stage_pytest() {
  # shellcheck disable=SC2086
  pytest -n 2 ${PYTEST_ARGS:-}
}

stage_molecule() {
  local scenario="$1"
  drop_stale_install
  molecule test -s "$scenario" > "${LOG_DIR}/molecule-${scenario}.log" 2>&1
  local rc=$?
  if [ "$rc" -ne 0 ]; then
    tail -n 80 "${LOG_DIR}/molecule-${scenario}.log"
    echo "molecule ${scenario} failed: full log in ${LOG_DIR}/molecule-${scenario}.log"
  else
    grep -E '^(SCENARIO RECAP|[a-z_]+ +: actions=)' "${LOG_DIR}/molecule-${scenario}.log" | tail -n 1
  fi
  return "$rc"
}

stage_build() {
  bash scripts/build-collection.sh
}

total_start=$(date +%s)
run_stage bootstrap bash scripts/bootstrap.sh
for stage in $STAGES; do
  case "$stage" in
    lint) run_stage lint stage_lint ;;
    sanity) run_stage sanity bash scripts/sanity.sh ;;
    pytest) run_stage pytest stage_pytest ;;
    molecule)
      run_stage image bash scripts/build-image.sh
      for s in $SCENARIOS; do run_stage "molecule:${s}" stage_molecule "$s"; done
      ;;
    sandbox)
      drop_stale_install
      run_stage sandbox bash scripts/sandbox-test.sh ;;
    build) run_stage build stage_build ;;
    bootstrap) ;;
    *) echo "unknown stage '${stage}' (known: ${ALL_STAGES})"; failed=$((failed + 1)) ;;
  esac
done
total_end=$(date +%s)

echo
echo "=== summary (wall time per stage)"
printf '%s\n' "${summary[@]}"
printf '%-28s %5ss\n' total $((total_end - total_start))
echo "stages: ${passed} passed, ${failed} failed"
[ "$failed" -eq 0 ]
