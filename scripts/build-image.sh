#!/usr/bin/env bash
# Builds the Debian 12 systemd image for the sandbox and molecule targets,
# once: debootstrap -> packages via systemd-nspawn -> podman import.
# A label records a hash of this script; the image is rebuilt only when it is
# missing or this recipe changed. Also keeps a rootfs tarball that the Docker
# targets import as their local base image (no registry is reachable).
set -euo pipefail
# shellcheck source=scripts/env.sh
. "$(dirname "$0")/env.sh"

PACKAGES="python3 python3-apt systemd systemd-sysv dbus ca-certificates sudo procps iproute2 cron"
recipe_hash="$( (cat "$0"; echo "$PACKAGES") | sha256sum | cut -c1-16)"
rootfs_tar="${PAI_CACHE}/debian12-rootfs.tar"

current="$(podman image inspect --format '{{ index .Labels "pai.recipe" }}' "$PAI_IMAGE" 2>/dev/null || true)"
if [ "$current" = "$recipe_hash" ] && [ -s "$rootfs_tar" ]; then
  echo "build-image: ${PAI_IMAGE} is current (recipe ${recipe_hash}), reusing it"
  exit 0
fi

mirror="$(grep -hoE '^(URIs:|deb) +https?://[^ ]+/debian/?' /etc/apt/sources.list /etc/apt/sources.list.d/*.sources /etc/apt/sources.list.d/*.list 2>/dev/null \
  | awk '{print $2}' | head -1 || true)"
mirror="${mirror:-http://deb.debian.org/debian}"

work="$(mktemp -d /var/tmp/pai-image.XXXXXX)"
trap 'rm -rf "$work"' EXIT
root="${work}/rootfs"
echo "build-image: debootstrap bookworm from ${mirror}"
debootstrap --variant=minbase bookworm "$root" "$mirror" >"${work}/debootstrap.log" 2>&1 || {
  tail -20 "${work}/debootstrap.log"; exit 1; }

# nspawn may exit 1 on a harmless cleanup warning: check the result instead.
systemd-nspawn -q --register=no --keep-unit -D "$root" sh -c \
  "export DEBIAN_FRONTEND=noninteractive; apt-get update -qq && apt-get install -y -qq --no-install-recommends ${PACKAGES} >/dev/null && apt-get clean" || true
for bin in /usr/bin/python3 /sbin/init /usr/bin/sudo /usr/sbin/cron; do
  [ -e "${root}${bin}" ] || { echo "build-image: ${bin} missing in the image, package install failed" >&2; exit 1; }
done
: > "${root}/etc/machine-id"
rm -rf "${root}"/var/lib/apt/lists/*
# apt's cache_valid_time must not trust the empty cache.
touch -d @0 "${root}/var/lib/apt/lists"
# Keep the container quiet and fast to boot.
for unit in systemd-timesyncd.service apt-daily.timer apt-daily-upgrade.timer e2scrub_all.timer fstrim.timer; do
  ln -sf /dev/null "${root}/etc/systemd/system/${unit}"
done

mkdir -p "${PAI_CACHE}"
tar -C "$root" -cf "${rootfs_tar}.tmp" . && mv "${rootfs_tar}.tmp" "$rootfs_tar"
podman import --change 'CMD ["/sbin/init"]' --change "LABEL pai.recipe=${recipe_hash}" \
  "$rootfs_tar" "$PAI_IMAGE" >/dev/null
echo "build-image: built ${PAI_IMAGE} (recipe ${recipe_hash}, $(du -h "$rootfs_tar" | cut -f1))"
