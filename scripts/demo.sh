#!/usr/bin/env bash
# `make demo`: the collection's main job end to end on the local sandbox.
# Installs what it needs, brings the sandbox up, runs playbooks/site.yml over
# it, prints a summary, and proves a second run changes nothing.
set -euo pipefail
# shellcheck source=scripts/env.sh
. "$(dirname "$0")/env.sh"
cd "$PAI_ROOT"

bash scripts/bootstrap.sh
bash scripts/build-image.sh
bash scripts/sandbox.sh up

log_dir="${PAI_ROOT}/build/demo"
mkdir -p "$log_dir"
inventory="${PAI_ROOT}/inventories/sandbox"

echo "demo: first run of playbooks/site.yml (log: ${log_dir}/site-1.log)"
ansible-playbook -i "$inventory" playbooks/site.yml > "${log_dir}/site-1.log" 2>&1 || {
  tail -n 60 "${log_dir}/site-1.log"; echo "demo: site.yml FAILED"; exit 1; }
sed -n '/PLAY RECAP/,$p' "${log_dir}/site-1.log"

echo "demo: second run of playbooks/site.yml (log: ${log_dir}/site-2.log)"
ansible-playbook -i "$inventory" playbooks/site.yml > "${log_dir}/site-2.log" 2>&1 || {
  tail -n 60 "${log_dir}/site-2.log"; echo "demo: second site.yml run FAILED"; exit 1; }

roles="$(grep -oE 'proxmox_ai\.hardening\.[a-z_]+' playbooks/site.yml | sort -u | sed 's/proxmox_ai.hardening.//' | tr '\n' ' ')"
changed="$(awk '/PLAY RECAP/{f=1;next} f && /changed=/{sub(/.*changed=/,""); sub(/ .*/,""); s+=$0} END{print s+0}' "${log_dir}/site-2.log")"
echo
echo "demo summary"
echo "  sandbox hosts : $(bash scripts/sandbox.sh status | tr '\n' ';')"
echo "  roles applied : ${roles}"
echo "  logs          : ${log_dir}"
echo "  remove with   : make demo-down"
if [ "$changed" -eq 0 ]; then
  echo "demo: second site.yml run: changed=0 on every host (idempotent)"
else
  echo "demo: second site.yml run changed ${changed} task(s): NOT idempotent"; exit 1
fi
