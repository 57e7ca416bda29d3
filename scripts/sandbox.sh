#!/usr/bin/env bash
# The local sandbox that `make demo` uses: real Debian 12 systemd containers
# (podman) in the groups the roles target. up | down | status
#   pai-db1      database       PostgreSQL
#   pai-proxy1   proxy          nginx TLS proxy
#   pai-mon1     monitoring     collector and API
#   pai-docker1  docker_hosts   Docker Engine (privileged, as TESTBED requires)
set -euo pipefail
# shellcheck source=scripts/env.sh
. "$(dirname "$0")/env.sh"

NETWORK=pai-sandbox
HOSTS=(pai-db1 pai-proxy1 pai-mon1 pai-docker1)

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
  for h in pai-db1 pai-proxy1 pai-mon1; do
    create "$h" --cap-add NET_ADMIN,NET_RAW,SYS_ADMIN
  done
  podman volume exists pai-docker1-lib || podman volume create pai-docker1-lib >/dev/null
  create pai-docker1 --privileged --cgroupns=private -v pai-docker1-lib:/var/lib/docker \
    -v "${PAI_CACHE}/debian12-rootfs.tar:/opt/pai/debian12-rootfs.tar:ro"
  for h in "${HOSTS[@]}"; do
    for _ in $(seq 1 30); do
      state="$(podman exec "$h" systemctl is-system-running 2>/dev/null || true)"
      case "$state" in running|degraded) break ;; esac
      sleep 1
    done
    echo "sandbox: ${h} $(podman inspect -f '{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}' "$h") systemd=${state}"
  done
}

down() {
  for h in "${HOSTS[@]}"; do podman rm -f "$h" >/dev/null 2>&1 || true; done
  podman volume rm -f pai-docker1-lib >/dev/null 2>&1 || true
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
