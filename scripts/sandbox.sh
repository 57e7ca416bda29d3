#!/usr/bin/env bash
# The local sandbox that `make demo` uses: real Debian 12 systemd containers
# (podman) in the groups the roles target. up | down | status
#   pai-db1      database               PostgreSQL
#   pai-proxy1   proxy, docker_hosts    nginx TLS proxy in front of n8n, which runs in the
#                                       Docker stack on the same host (privileged, as TESTBED
#                                       requires for Docker inside a container)
#   pai-mon1     monitoring             collector and API
# plus the Proxmox VE API simulator (tools/pvesim) on the network's gateway.
set -euo pipefail
# shellcheck source=scripts/env.sh
. "$(dirname "$0")/env.sh"

NETWORK=pai-sandbox
HOSTS=(pai-db1 pai-proxy1 pai-mon1)
PVESIM_DIR="${PAI_ROOT}/build/demo/pvesim"

# The demo's Proxmox VE: the API simulator on the sandbox network's gateway,
# so the containers (the collector) and the controller both reach it.
pvesim_up() {
  local gw pid
  gw="$(podman network inspect "$NETWORK" --format '{{range .Subnets}}{{.Gateway}}{{end}}')"
  mkdir -p "$PVESIM_DIR"
  chmod 0700 "$PVESIM_DIR"
  pid="$(cat "${PVESIM_DIR}/pid" 2>/dev/null || true)"
  if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null && [ "$(cat "${PVESIM_DIR}/address" 2>/dev/null)" = "$gw" ]; then
    echo "sandbox: Proxmox API simulator already running on https://${gw}:8006 (pid ${pid})"
    return 0
  fi
  if [ -n "$pid" ]; then kill "$pid" 2>/dev/null || true; fi
  echo "$gw" > "${PVESIM_DIR}/address"
  cd "$PAI_ROOT"
  setsid nohup python -m tools.pvesim --listen "$gw" --port 8006 --nodes 3 --guests-per-node 10 \
    --storages 2 --seed 1 --san "$gw" --state-file "${PVESIM_DIR}/state.json" \
    --ca-cert-out "${PVESIM_DIR}/pve-root-ca.pem" --admin-token-out "${PVESIM_DIR}/admin-token" \
    > "${PVESIM_DIR}/pvesim.log" 2>&1 < /dev/null &
  echo $! > "${PVESIM_DIR}/pid"
  for _ in $(seq 1 50); do
    [ -s "${PVESIM_DIR}/admin-token" ] && curl -fsS --cacert "${PVESIM_DIR}/pve-root-ca.pem" \
      "https://${gw}:8006/api2/json/version" -H "Authorization: PVEAPIToken=$(cat "${PVESIM_DIR}/admin-token")" \
      >/dev/null 2>&1 && { echo "sandbox: Proxmox API simulator on https://${gw}:8006 (pid $(cat "${PVESIM_DIR}/pid"))"; return 0; }
    sleep 0.2
  done
  echo "sandbox: the Proxmox API simulator did not start; see ${PVESIM_DIR}/pvesim.log" >&2
  return 1
}

pvesim_down() {
  local pid
  pid="$(cat "${PVESIM_DIR}/pid" 2>/dev/null || true)"
  if [ -n "$pid" ]; then kill "$pid" 2>/dev/null || true; fi
  rm -f "${PVESIM_DIR}/pid" "${PVESIM_DIR}/state.json"
}

create() {
  local name="$1"; shift
  if podman container exists "$name"; then
    [ "$(podman inspect -f '{{.State.Running}}' "$name")" = "true" ] || podman start "$name" >/dev/null
    return 0
  fi
  podman run -d --name "$name" --hostname "$name" --network "$NETWORK" \
    --label pai.sandbox=1 --systemd=always "$@" "$PAI_IMAGE" /sbin/init >/dev/null
}

up() {
  podman network exists "$NETWORK" || podman network create "$NETWORK" >/dev/null
  for h in pai-db1 pai-mon1; do
    create "$h" --cap-add NET_ADMIN,NET_RAW,SYS_ADMIN
  done
  # The proxy host also runs the Docker stack (n8n behind nginx on 127.0.0.1:5678).
  # No registry: the stack's stand-in image is imported from the image's rootfs tarball.
  podman volume exists pai-proxy1-docker || podman volume create pai-proxy1-docker >/dev/null
  create pai-proxy1 --privileged --cgroupns=private -v pai-proxy1-docker:/var/lib/docker \
    -v "${PAI_CACHE}/debian12-rootfs.tar:/opt/pai/debian12-rootfs.tar:ro"
  for h in "${HOSTS[@]}"; do
    for _ in $(seq 1 30); do
      state="$(podman exec "$h" systemctl is-system-running 2>/dev/null || true)"
      case "$state" in running|degraded) break ;; esac
      sleep 1
    done
    echo "sandbox: ${h} $(podman inspect -f '{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}' "$h") systemd=${state}"
  done
  pvesim_up
}

down() {
  pvesim_down
  for h in "${HOSTS[@]}" pai-docker1; do podman rm -f "$h" >/dev/null 2>&1 || true; done
  podman volume rm -f pai-proxy1-docker pai-docker1-lib >/dev/null 2>&1 || true
  podman network rm -f "$NETWORK" >/dev/null 2>&1 || true
  echo "sandbox: removed"
}

status() {
  podman ps -a --filter label=pai.sandbox=1 --format '{{.Names}} {{.Status}}'
}

case "${1:-}" in
  up) up ;;
  down) down ;;
  status) status ;;
  *) echo "usage: $0 up|down|status" >&2; exit 2 ;;
esac
