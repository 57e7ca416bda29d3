#!/usr/bin/env bash
# `make demo`: the collection's main job end to end on the local sandbox.
# Installs what it needs, brings the sandbox up (three Debian 12 systemd
# containers and the Proxmox VE API simulator), runs playbooks/site.yml over it
# in check mode first (on a fresh sandbox), then for real, runs the security
# audit (playbooks/audit.yml) and prints where its report is, and ends with the
# line that shows a second site.yml run changes nothing.
# Environment: DEMO_CHECK=0 skips the check-mode run.
set -euo pipefail
# shellcheck source=scripts/env.sh
. "$(dirname "$0")/env.sh"
cd "$PAI_ROOT"

bash scripts/bootstrap.sh
bash scripts/build-image.sh
fresh=1
if [ -n "$(bash scripts/sandbox.sh status)" ]; then fresh=0; fi
bash scripts/sandbox.sh up

log_dir="${PAI_ROOT}/build/demo"
mkdir -p "$log_dir"

# The collector's wheels, downloaded on the controller once per requirements
# file (inventories/sandbox/group_vars/monitoring: monitoring_wheelhouse).
wheelhouse="${log_dir}/wheelhouse"
requirements="${PAI_ROOT}/roles/monitoring/files/requirements.txt"
marker="${wheelhouse}/.requirements-$(sha1sum "$requirements" | cut -c1-12)"
if [ ! -e "$marker" ]; then
  echo "demo: downloading the collector's wheels into ${wheelhouse}"
  rm -rf "$wheelhouse"
  python -m pip download --quiet --only-binary=:all: --dest "$wheelhouse" --requirement "$requirements" \
    > "${log_dir}/wheelhouse.log" 2>&1 || { tail -n 20 "${log_dir}/wheelhouse.log"; exit 1; }
  touch "$marker"
fi
inventory="${PAI_ROOT}/inventories/sandbox"

# The audit trail: every task of these runs goes to action_logs on the sandbox's
# PostgreSQL through the collection's action_log callback (as the application
# role, TLS verified). Before the database exists (first run on a fresh sandbox)
# the rows wait in the spool file and arrive with the next run.
action_log_env() {
  local pw_file="${PAI_ROOT}/build/demo/secrets/postgres_app"
  export ANSIBLE_CALLBACKS_ENABLED="proxmox_ai.hardening.action_log"
  export PAI_ACTION_LOG_DB_HOST
  PAI_ACTION_LOG_DB_HOST="$(podman inspect -f '{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}' pai-db1)"
  export PAI_ACTION_LOG_DB_NAME=proxmox_ai PAI_ACTION_LOG_DB_USER=proxmox_user PAI_ACTION_LOG_DB_SSLMODE=verify-full
  export PAI_ACTION_LOG_DB_SSLROOTCERT="${PAI_ROOT}/build/demo/pg-ca.pem"
  export PAI_ACTION_LOG_SPOOL="${PAI_ROOT}/build/demo/action_log.spool" PAI_ACTION_LOG_CONNECT_TIMEOUT=3
  export PAI_ACTION_LOG_DB_PASSWORD=""
  if [ -s "$pw_file" ]; then PAI_ACTION_LOG_DB_PASSWORD="$(head -n1 "$pw_file" | cut -d' ' -f1).k7Q"; fi
}

run() {  # run <log name> <what> ansible-playbook args...
  local name="$1" what="$2" start
  shift 2
  action_log_env
  start=$(date +%s)
  echo "demo: ${what} (log: ${log_dir}/${name}.log)"
  if ! ansible-playbook -i "$inventory" "$@" > "${log_dir}/${name}.log" 2>&1; then
    tail -n 60 "${log_dir}/${name}.log"; echo "demo: ${what} FAILED"; exit 1
  fi
  echo "demo: ${what}: $(( $(date +%s) - start )) s"
}

recap_changed() {
  awk '/PLAY RECAP/{f=1;next} f && /changed=/{sub(/.*changed=/,""); sub(/ .*/,""); s+=$0} END{print s+0}' "$1"
}

if [ "$fresh" -eq 1 ] && [ "${DEMO_CHECK:-1}" = 1 ]; then
  run site-check "check-mode run of playbooks/site.yml on the fresh sandbox" playbooks/site.yml --check
fi
run site-1 "first run of playbooks/site.yml" playbooks/site.yml
sed -n '/PLAY RECAP/,$p' "${log_dir}/site-1.log"
run site-2 "second run of playbooks/site.yml" playbooks/site.yml
changed="$(recap_changed "${log_dir}/site-2.log")"

run audit "security audit (playbooks/audit.yml)" playbooks/audit.yml
report="${PAI_ROOT}/build/audit/audit-report"
audit_line="$(python3 - "${report}.json" <<'PY'
import json, sys
report = json.load(open(sys.argv[1], encoding="utf-8"))
s = report["summary"]
print(f"{s['result']}: {s['pass']} pass, {s['fail']} fail, {s['not checked']} not checked"
      + (f" (failed: {', '.join(s['failed'])})" if s["failed"] else ""))
for item in report["checklist"]:
    print(f"    {item['status']:<12} {item['id']:<18} {item['reason']}"[:160], file=sys.stderr)
PY
)"

roles="$(grep -oE 'proxmox_ai\.hardening\.[a-z_]+' playbooks/site.yml | sort -u | sed 's/proxmox_ai.hardening.//' | tr '\n' ' ')"
echo
echo "demo summary"
echo "  sandbox hosts : $(bash scripts/sandbox.sh status | tr '\n' ';')"
echo "  roles applied : ${roles}"
echo "  logs          : ${log_dir}"
echo "  audit report  : ${report}.md (and .json): ${audit_line}"
echo "  remove with   : make demo-down"
status=0
case "$audit_line" in pass:*) ;; *) echo "demo: the audit found failed items"; status=1 ;; esac
if [ "$changed" -eq 0 ]; then
  echo "demo: second site.yml run: changed=0 on every host (idempotent)"
else
  echo "demo: second site.yml run changed ${changed} task(s): NOT idempotent"; status=1
fi
exit "$status"
