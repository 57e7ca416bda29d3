#!/usr/bin/env bash
# snapshot-lvm.sh: LVM snapshots of the Proxmox AI data volume (installed by
# the proxmox_ai.hardening.incident role).
#
#   snapshot-lvm.sh [-g VG] [-l LV] [-s SIZE] create  <name>
#   snapshot-lvm.sh [-g VG] [-l LV]           list
#   snapshot-lvm.sh [-g VG] [-l LV]           restore <name>
#   snapshot-lvm.sh [-g VG] [-l LV]           remove  <name>
#
# VG, LV and SIZE default to PAI_LVM_VG, PAI_LVM_LV and PAI_LVM_SNAPSHOT_SIZE
# (from /etc/proxmox-ai/snapshot-lvm.conf when it exists). Snapshots are named
# <LV>-snap-<name> and tagged proxmox-ai-snapshot; list, restore and remove
# only touch snapshots of LV that carry that tag.
#
# restore merges the snapshot into its origin (lvconvert --merge). When the
# origin is mounted the merge is deferred to its next activation: the script
# says so and exits 0; deactivate/reactivate the LV (or reboot) to finish.
# The snapshot is consumed by the merge.
#
# Exit codes: 0 ok, 1 operation failed, 2 usage or invalid input.
set -euo pipefail

readonly TAG="proxmox-ai-snapshot"
readonly CONF="${PAI_SNAPSHOT_CONF:-/etc/proxmox-ai/snapshot-lvm.conf}"
readonly NAME_RE='^[A-Za-z0-9][A-Za-z0-9_.+-]{0,47}$'
readonly LVM_NAME_RE='^[A-Za-z0-9+_.][A-Za-z0-9+_.-]{0,63}$'
readonly SIZE_RE='^[0-9]+(\.[0-9]+)?[bBsSkKmMgGtT]?$|^[0-9]{1,3}%(ORIGIN|VG|FREE)$'

usage() {
    sed -n '5,8s/^# \{0,1\}//p' "$0" >&2
    exit 2
}

die() {
    echo "snapshot-lvm.sh: $*" >&2
    exit "${2:-1}"
}

invalid() {
    echo "snapshot-lvm.sh: $*" >&2
    exit 2
}

if [[ -r "${CONF}" ]]; then
    # Only KEY=VALUE lines with the three known keys are read; the file is never sourced.
    while IFS='=' read -r key value; do
        value="${value%\"}"; value="${value#\"}"
        case "${key}" in
            PAI_LVM_VG) : "${PAI_LVM_VG:=${value}}" ;;
            PAI_LVM_LV) : "${PAI_LVM_LV:=${value}}" ;;
            PAI_LVM_SNAPSHOT_SIZE) : "${PAI_LVM_SNAPSHOT_SIZE:=${value}}" ;;
            *) ;;
        esac
    done < <(grep -E '^(PAI_LVM_VG|PAI_LVM_LV|PAI_LVM_SNAPSHOT_SIZE)=' "${CONF}" || true)
fi

vg="${PAI_LVM_VG:-}"
lv="${PAI_LVM_LV:-}"
size="${PAI_LVM_SNAPSHOT_SIZE:-10%ORIGIN}"

while getopts ':g:l:s:h' opt; do
    case "${opt}" in
        g) vg="${OPTARG}" ;;
        l) lv="${OPTARG}" ;;
        s) size="${OPTARG}" ;;
        h) usage ;;
        *) invalid "unknown option -${OPTARG}" ;;
    esac
done
shift $((OPTIND - 1))

[[ $# -ge 1 ]] || usage
action="$1"
shift

[[ -n "${vg}" && -n "${lv}" ]] || invalid "volume group and logical volume are required (-g/-l or PAI_LVM_VG/PAI_LVM_LV)"
[[ "${vg}" =~ ${LVM_NAME_RE} && "${vg}" != "." && "${vg}" != ".." ]] || invalid "invalid volume group name '${vg}'"
[[ "${lv}" =~ ${LVM_NAME_RE} && "${lv}" != "." && "${lv}" != ".." ]] || invalid "invalid logical volume name '${lv}'"
[[ "${size}" =~ ${SIZE_RE} ]] || invalid "invalid snapshot size '${size}'"

case "${action}" in
    create | restore | remove)
        [[ $# -eq 1 ]] || invalid "${action} takes exactly one snapshot name"
        name="$1"
        [[ "${name}" =~ ${NAME_RE} ]] || invalid "invalid snapshot name '${name}' (letters, digits, . _ + -, at most 48, not starting with a symbol)"
        snap="${lv}-snap-${name}"
        ;;
    list)
        [[ $# -eq 0 ]] || invalid "list takes no argument"
        ;;
    *)
        invalid "unknown action '${action}' (create, list, restore, remove)"
        ;;
esac

[[ "$(id -u)" -eq 0 ]] || die "must run as root"
command -v lvs >/dev/null 2>&1 || die "lvm2 is not installed"

lvs --noheadings "${vg}/${lv}" >/dev/null 2>&1 || die "logical volume ${vg}/${lv} not found"

# Our snapshots of vg/lv: name<TAB>origin<TAB>tags<TAB>time
our_snapshots() {
    lvs --noheadings --separator $'\t' -o lv_name,origin,lv_tags,lv_time "${vg}" 2>/dev/null |
        sed 's/^[[:space:]]*//' |
        awk -F '\t' -v origin="${lv}" -v tag="${TAG}" '$2 == origin && ("," $3 ",") ~ ("," tag ",")'
}

is_ours() {
    our_snapshots | awk -F '\t' -v n="$1" '$1 == n {found = 1} END {exit !found}'
}

case "${action}" in
    create)
        if lvs --noheadings "${vg}/${snap}" >/dev/null 2>&1; then
            die "snapshot ${vg}/${snap} already exists"
        fi
        size_opt="--size"
        [[ "${size}" == *%* ]] && size_opt="--extents"
        lvcreate --quiet --snapshot --addtag "${TAG}" --name "${snap}" "${size_opt}" "${size}" "${vg}/${lv}" >/dev/null \
            || die "lvcreate failed for ${vg}/${snap}"
        echo "created ${vg}/${snap}"
        ;;
    list)
        our_snapshots | awk -F '\t' -v p="${lv}-snap-" '{n = $1; sub("^" p, "", n); print n "\t" $1 "\t" $4}'
        ;;
    restore)
        is_ours "${snap}" || die "no snapshot ${vg}/${snap} of ${vg}/${lv}"
        out="$(lvconvert --merge "${vg}/${snap}" 2>&1)" || die "lvconvert --merge failed: ${out}"
        if lvs --noheadings "${vg}/${snap}" >/dev/null 2>&1; then
            echo "merge of ${vg}/${snap} into ${vg}/${lv} deferred until ${vg}/${lv} is next activated"
        else
            echo "restored ${vg}/${lv} from ${snap}"
        fi
        ;;
    remove)
        is_ours "${snap}" || die "no snapshot ${vg}/${snap} of ${vg}/${lv}"
        lvremove --quiet --yes "${vg}/${snap}" >/dev/null || die "lvremove failed for ${vg}/${snap}"
        echo "removed ${vg}/${snap}"
        ;;
esac
