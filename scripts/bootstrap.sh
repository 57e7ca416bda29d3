#!/usr/bin/env bash
# Installs everything the demo and the tests need on a Debian 12 machine:
# apt packages, the development virtualenv (pinned), and the collection link
# that lets ansible find proxmox_ai.hardening from this checkout.
# Safe to run any number of times: every step checks before it acts.
set -euo pipefail
# shellcheck source=scripts/env.sh
. "$(dirname "$0")/env.sh"

APT_PACKAGES=(
  debootstrap systemd-container podman runc uidmap slirp4netns iptables
  shellcheck git rsync make openssl curl ca-certificates
  python3 python3-venv python3-dev gcc libpq-dev
  postgresql-15 postgresql-client-15 nginx-light pebble
)

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

# pip install, without the warnings a machine's pip configuration may print
# for every package (e.g. find-links folders that do not exist).
quiet_pip() {
  local rc
  "${PAI_VENV}/bin/pip" install -q "$@" 2>&1 | grep -v 'is ignored: it is neither a file nor a directory' || true
  rc="${PIPESTATUS[0]}"
  return "$rc"
}

missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  echo "bootstrap: installing apt packages: ${missing[*]}"
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
# The distribution's postgresql package starts a cluster on 5432; the tests
# never use it (they start throwaway clusters), so keep the machine quiet.
if systemctl is-enabled postgresql >/dev/null 2>&1; then
  as_root systemctl disable --now postgresql >/dev/null 2>&1 || true
fi
if systemctl is-enabled nginx >/dev/null 2>&1; then
  as_root systemctl disable --now nginx >/dev/null 2>&1 || true
fi

stamp="${PAI_VENV}/.requirements.sha256"
want="$(cat "${PAI_ROOT}/requirements-dev.txt" "${PAI_ROOT}/constraints-dev.txt" | sha256sum | cut -d' ' -f1)"
if [ ! -x "${PAI_VENV}/bin/python" ] || [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "bootstrap: creating virtualenv ${PAI_VENV}"
  python3 -m venv "${PAI_VENV}"
  quiet_pip --upgrade pip wheel
  quiet_pip -r "${PAI_ROOT}/requirements-dev.txt" -c "${PAI_ROOT}/constraints-dev.txt"
  echo "$want" > "$stamp"
fi

# ansible finds the collection under build/collections/ansible_collections/proxmox_ai/hardening
link="${PAI_COLLECTIONS}/ansible_collections/proxmox_ai/hardening"
mkdir -p "$(dirname "$link")"
if [ "$(readlink "$link" 2>/dev/null)" != "${PAI_ROOT}" ]; then
  rm -f "$link"
  ln -s "${PAI_ROOT}" "$link"
fi
as_root mkdir -p "${PAI_CACHE}"
echo "bootstrap: ok ($(ansible --version | head -1))"
