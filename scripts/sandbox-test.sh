#!/usr/bin/env bash
# The sandbox end-to-end test (stage `sandbox` of scripts/test.sh):
#   1. `make demo` on a fresh sandbox: site.yml in check mode, for real, a
#      second time with changed=0, then the audit, which must pass;
#   2. tests/sandbox/break.yml breaks four things on purpose (an open port,
#      TLSv1 on the proxy, a default password in a Docker secret, stopped backups);
#   3. the audit again (report audit-broken), and tests/sandbox/assert_broken.yml
#      asserts that exactly those four items fail, with the right reasons;
#   4. the incident playbooks on the sandbox (isolate, report) and the simulator
#      (restore a guest to its snapshot), checked by tests/sandbox/incident.yml.
# The sandbox is removed at the end unless SANDBOX_KEEP=1 (it is kept on failure
# outside CI for debugging).
set -euo pipefail
# shellcheck source=scripts/env.sh
. "$(dirname "$0")/env.sh"
cd "$PAI_ROOT"

inventory="${PAI_ROOT}/inventories/sandbox"
log_dir="${PAI_ROOT}/build/demo"

cleanup() {
  local rc=$?
  if [ "${SANDBOX_KEEP:-0}" = 1 ] || { [ "$rc" -ne 0 ] && [ -z "${CI:-}" ]; }; then
    echo "sandbox-test: sandbox kept (make demo-down removes it)"
  else
    bash scripts/sandbox.sh down
  fi
  exit "$rc"
}
trap cleanup EXIT

# A fresh sandbox, so that the check-mode run meets a fresh system.
bash scripts/sandbox.sh down >/dev/null
bash scripts/demo.sh

play() {  # play <log name> ansible-playbook args...
  local name="$1"; shift
  echo "sandbox-test: $* (log: ${log_dir}/${name}.log)"
  if ! ansible-playbook -i "$inventory" "$@" > "${log_dir}/${name}.log" 2>&1; then
    tail -n 60 "${log_dir}/${name}.log"; echo "sandbox-test: ${name} FAILED"; exit 1
  fi
}

play break tests/sandbox/break.yml
play audit-broken playbooks/audit.yml -e audit_report_basename=audit-broken
play assert-broken tests/sandbox/assert_broken.yml
# The incident playbooks against the sandbox, the database settings from the
# libpq environment as the AWX "Proxmox AI database" credential injects them.
export PGHOST PGPASSWORD
PGHOST="$(podman inspect -f '{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}' pai-db1)"
PGPASSWORD="$(head -n1 "${PAI_ROOT}/build/demo/secrets/postgres_app" | cut -d' ' -f1).k7Q"  # suffix: group_vars/sandbox/secrets.yml
export PGPORT=5432 PGDATABASE=proxmox_ai PGUSER=proxmox_user PGSSLMODE=verify-full
export PGSSLROOTCERT="${PAI_ROOT}/build/demo/pg-ca.pem"
play incident-isolate playbooks/incident_isolate.yml -e incident_target=monitoring \
  -e incident_service_kind=systemd -e incident_service=proxmox-ai-api.service
play incident-report playbooks/incident_report.yml -e incident_alert_id=sandbox-test \
  -e incident_entity_type=system -e incident_entity=pai-mon1 \
  -e '{"incident_symptoms": "sandbox test: collector API isolated"}'
play incident tests/sandbox/incident.yml
echo "sandbox-test: audit break test and incident playbooks passed"
