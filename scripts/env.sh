# shellcheck shell=bash
# Sourced by every script and make target: one place for paths and settings.
PAI_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PAI_VENV="${PAI_VENV:-${PAI_ROOT}/.venv}"
# Shared cache survives fresh clones on the same machine (image, rootfs tarball, sanity venvs).
PAI_CACHE="${PAI_CACHE:-/var/cache/proxmox-ai-hardening}"
PAI_IMAGE="${PAI_IMAGE:-localhost/proxmox-ai-debian12:latest}"
PAI_COLLECTIONS="${PAI_ROOT}/build/collections"
export PAI_ROOT PAI_VENV PAI_CACHE PAI_IMAGE PAI_COLLECTIONS
export PATH="${PAI_VENV}/bin:${PATH}"
export ANSIBLE_COLLECTIONS_PATH="${PAI_COLLECTIONS}"
export CONTAINERS_CONF="${PAI_ROOT}/scripts/podman/containers.conf"
export ANSIBLE_FORCE_COLOR="${ANSIBLE_FORCE_COLOR:-0}"
export PY_COLORS="${PY_COLORS:-0}"
export ANSIBLE_NOCOLOR="${ANSIBLE_NOCOLOR:-1}"
export PIP_DISABLE_PIP_VERSION_CHECK=1
