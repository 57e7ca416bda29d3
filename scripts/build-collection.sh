#!/usr/bin/env bash
# Builds the collection tarball into build/dist/ from the tracked files.
set -euo pipefail
# shellcheck source=scripts/env.sh
. "$(dirname "$0")/env.sh"
mkdir -p "${PAI_ROOT}/build/dist"
ansible-galaxy collection build --force --output-path "${PAI_ROOT}/build/dist" "${PAI_ROOT}"
version="$(python -c 'import yaml,sys; print(yaml.safe_load(open(sys.argv[1]))["version"])' "${PAI_ROOT}/galaxy.yml")"
tarball="${PAI_ROOT}/build/dist/proxmox_ai-hardening-${version}.tar.gz"
# The tarball must hold the collection and nothing of the development tree.
if tar -tzf "$tarball" | grep -qE '(^|/)(\.venv|build|tests/output|\.git)/'; then
  echo "build-collection: development files leaked into ${tarball}" >&2
  exit 1
fi
echo "build-collection: ${tarball} ($(du -h "$tarball" | cut -f1), $(tar -tzf "$tarball" | wc -l) entries)"
