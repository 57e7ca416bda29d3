#!/usr/bin/env bash
# Runs inside a privileged throwaway container (test_snapshot_lvm.py): real LVM
# on a loop device, then create / list / restore / remove with
# snapshot-lvm.sh, and the input validation. Prints "SCENARIO OK" at the end.
set -euo pipefail
script=/opt/snapshot-lvm.sh
vg="paitest$$"
export DEBIAN_FRONTEND=noninteractive
apt-get -qq update >/dev/null
apt-get -qq install -y --no-install-recommends lvm2 >/dev/null
# No udev in the container: let libdevmapper create the device nodes itself.
sed -i 's/^\([[:space:]]*\)# *udev_sync = 1/\1udev_sync = 0/; s/^\([[:space:]]*\)# *udev_rules = 1/\1udev_rules = 0/' /etc/lvm/lvm.conf
lvm_opts="activation { udev_sync = 0 udev_rules = 0 } devices { obtain_device_list_from_udev = 0 }"
export LVM_SUPPRESS_FD_WARNINGS=1
truncate -s 96M /tmp/pv.img
loop="$(losetup --find --show /tmp/pv.img)"
cleanup() {
    vgchange --config "${lvm_opts}" -an "${vg}" >/dev/null 2>&1 || true
    vgremove --config "${lvm_opts}" -ff -y "${vg}" >/dev/null 2>&1 || true
    losetup -d "${loop}" || true
}
trap cleanup EXIT
pvcreate --config "${lvm_opts}" -q "${loop}" >/dev/null
vgcreate --config "${lvm_opts}" -q "${vg}" "${loop}" >/dev/null
lvcreate --config "${lvm_opts}" -q -L 32M -n data "${vg}" >/dev/null
dev="/dev/mapper/${vg}-data"
[[ -b "${dev}" ]] || { echo "no device node ${dev}"; exit 1; }
printf 'BEFORE-INCIDENT' | dd of="${dev}" bs=512 conv=notrunc,fsync status=none

expect_rc() {  # expect_rc RC command...
    local want="$1" got=0
    shift
    "$@" >/tmp/out 2>&1 || got=$?
    if [[ "${got}" != "${want}" ]]; then
        echo "expected rc ${want}, got ${got}: $*"; cat /tmp/out; exit 1
    fi
}

export PAI_LVM_VG="${vg}" PAI_LVM_LV=data
# Input validation: nothing reaches LVM.
expect_rc 2 "${script}" create 'bad/name'
expect_rc 2 "${script}" create "\$(touch /tmp/pwned)"
expect_rc 2 "${script}" create '-rf'
expect_rc 2 "${script}" create a b
expect_rc 2 "${script}" destroy x
expect_rc 2 "${script}" -s '1G;reboot' create ok1
expect_rc 2 "${script}" -l '../x' list
[[ ! -e /tmp/pwned ]]
expect_rc 1 "${script}" -l missing list

expect_rc 0 "${script}" -s 8M create before-1
grep -q "created ${vg}/data-snap-before-1" /tmp/out
expect_rc 1 "${script}" -s 8M create before-1          # already exists
expect_rc 0 "${script}" list
grep -q '^before-1	data-snap-before-1	' /tmp/out

# A snapshot that is not ours (no tag) is neither listed nor touched.
lvcreate --config "${lvm_opts}" -q -s -L 8M -n data-snap-foreign "${vg}/data" >/dev/null
expect_rc 0 "${script}" list
if grep -q foreign /tmp/out; then echo "foreign snapshot listed"; exit 1; fi
expect_rc 1 "${script}" remove foreign
lvs "${vg}/data-snap-foreign" >/dev/null
lvremove --config "${lvm_opts}" -q -y "${vg}/data-snap-foreign" >/dev/null

# The incident: the data changes; restore brings it back.
printf 'AFTER-INCIDENT!' | dd of="${dev}" bs=512 conv=notrunc,fsync status=none
[[ "$(head -c 15 "${dev}")" == "AFTER-INCIDENT!" ]]
expect_rc 0 "${script}" restore before-1
grep -q "restored ${vg}/data from data-snap-before-1" /tmp/out
[[ "$(head -c 15 "${dev}")" == "BEFORE-INCIDENT" ]] || { echo "data not restored"; exit 1; }
expect_rc 1 "${script}" restore before-1                # consumed by the merge

expect_rc 0 "${script}" -s 8M create before-2
expect_rc 0 "${script}" remove before-2
if lvs "${vg}/data-snap-before-2" >/dev/null 2>&1; then echo "not removed"; exit 1; fi
expect_rc 0 "${script}" list
[[ ! -s /tmp/out ]]
echo "SCENARIO OK"
