"""roles/incident/files/snapshot-lvm.sh: input validation, the LVM commands it runs, real LVM.

The validation and command tests run the script with stand-in ``lvs``,
``lvcreate``, ``lvconvert`` and ``lvremove`` first on PATH that record their
arguments, so they show exactly what would reach LVM. The real test
(``lvm_scenario.sh``) runs in a privileged throwaway container on a loop
device; it needs the kernel's device-mapper, which some machines lack.
"""
from __future__ import annotations

import os
import shutil
import subprocess

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
SCRIPT = os.path.join(ROOT, "roles", "incident", "files", "snapshot-lvm.sh")
SCENARIO = os.path.join(os.path.dirname(os.path.abspath(__file__)), "lvm_scenario.sh")
IMAGE = os.environ.get("PAI_IMAGE", "localhost/proxmox-ai-debian12:latest")

# The stand-ins: vg0/data exists with the snapshots listed in $FAKE_SNAPS
# ("name:origin:tags" separated by spaces); every call is appended to $FAKE_LOG.
FAKE_LVS = r"""#!/bin/bash
echo "lvs $*" >> "$FAKE_LOG"
if [[ "$*" == *"-o lv_name,origin,lv_tags,lv_time"* ]]; then
    for s in $FAKE_SNAPS; do IFS=: read -r n o t <<< "$s"; printf '  %s\t%s\t%s\t2026-01-01 00:00:00 +0000\n' "$n" "$o" "$t"; done
    exit 0
fi
target="${*: -1}"
[[ "$target" == vg0/data ]] && exit 0
for s in $FAKE_SNAPS; do [[ "vg0/${s%%:*}" == "$target" ]] && exit 0; done
exit 5
"""
FAKE_OTHER = """#!/bin/bash
echo "$(basename "$0") $*" >> "$FAKE_LOG"
"""


@pytest.fixture(name="fake_lvm")
def fixture_fake_lvm(tmp_path):
    bindir = tmp_path / "bin"
    bindir.mkdir()
    (bindir / "lvs").write_text(FAKE_LVS)
    for name in ("lvcreate", "lvconvert", "lvremove"):
        (bindir / name).write_text(FAKE_OTHER)
    for item in bindir.iterdir():
        item.chmod(0o755)
    log = tmp_path / "lvm.log"
    log.write_text("")

    def run(*args, snaps="", conf=None):
        env = {"PATH": f"{bindir}:/usr/bin:/bin", "FAKE_LOG": str(log), "FAKE_SNAPS": snaps,
               "PAI_SNAPSHOT_CONF": str(conf or tmp_path / "absent.conf")}
        proc = subprocess.run(["bash", SCRIPT, *args], env=env, capture_output=True, text=True, timeout=30,
                              check=False)
        calls = [line for line in log.read_text().splitlines() if line]
        log.write_text("")
        return proc, calls
    return run


@pytest.mark.parametrize("args", [
    ["-g", "vg0", "-l", "data", "create", "bad/name"],
    ["-g", "vg0", "-l", "data", "create", "$(touch /tmp/pai-pwned)"],
    ["-g", "vg0", "-l", "data", "create", "-rf"],
    ["-g", "vg0", "-l", "data", "create", "a" * 49],
    ["-g", "vg0", "-l", "data", "create", "a", "b"],
    ["-g", "vg0", "-l", "data", "restore"],
    ["-g", "vg0", "-l", "data", "list", "extra"],
    ["-g", "vg0", "-l", "data", "destroy", "x"],
    ["-g", "vg0", "-l", "data", "-s", "1G;reboot", "create", "x"],
    ["-g", "vg0", "-l", "../etc", "list"],
    ["-g", "vg 0", "-l", "data", "list"],
    ["-l", "data", "list"],
    ["-x", "list"],
    [],
], ids=repr)
def test_invalid_input_never_reaches_lvm(fake_lvm, args):
    proc, calls = fake_lvm(*args)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert calls == []
    assert not os.path.exists("/tmp/pai-pwned")


@pytest.mark.skipif(os.geteuid() != 0, reason="the script refuses to run without root")
def test_create_list_restore_remove_commands(fake_lvm, tmp_path):
    conf = tmp_path / "snapshot-lvm.conf"
    conf.write_text("PAI_LVM_VG=vg0\nPAI_LVM_LV=data\nPAI_LVM_SNAPSHOT_SIZE=2G\nIGNORED=$(touch /tmp/pai-pwned)\n")
    proc, calls = fake_lvm("create", "pre-1", conf=conf)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "created vg0/data-snap-pre-1\n"
    assert calls[-1] == "lvcreate --quiet --snapshot --addtag proxmox-ai-snapshot --name data-snap-pre-1 --size 2G vg0/data"
    assert not os.path.exists("/tmp/pai-pwned")

    proc, calls = fake_lvm("-g", "vg0", "-l", "data", "-s", "20%ORIGIN", "create", "pre-2")
    assert calls[-1].endswith("--extents 20%ORIGIN vg0/data")

    snaps = ("data-snap-pre-1:data:proxmox-ai-snapshot data-snap-foreign:data: "
             "other-snap-x:other:proxmox-ai-snapshot")
    proc, calls = fake_lvm("-g", "vg0", "-l", "data", "list", snaps=snaps)
    assert proc.returncode == 0 and proc.stdout.splitlines() == ["pre-1\tdata-snap-pre-1\t2026-01-01 00:00:00 +0000"]

    proc, calls = fake_lvm("-g", "vg0", "-l", "data", "create", "pre-1", snaps=snaps)
    assert proc.returncode == 1 and "already exists" in proc.stderr
    assert not any(c.startswith("lvcreate") for c in calls)

    proc, calls = fake_lvm("-g", "vg0", "-l", "data", "restore", "pre-1", snaps=snaps)
    assert proc.returncode == 0, proc.stderr
    assert "lvconvert --merge vg0/data-snap-pre-1" in calls

    # Snapshots without the tag, or of another volume, are never merged or removed.
    proc, calls = fake_lvm("-g", "vg0", "-l", "data", "remove", "foreign", snaps=snaps)
    assert proc.returncode == 1 and not any(c.startswith("lvremove") for c in calls)
    proc, calls = fake_lvm("-g", "vg0", "-l", "data", "restore", "missing", snaps=snaps)
    assert proc.returncode == 1 and not any(c.startswith("lvconvert") for c in calls)

    proc, calls = fake_lvm("-g", "vg0", "-l", "data", "remove", "pre-1", snaps=snaps)
    assert proc.returncode == 0 and calls[-1] == "lvremove --quiet --yes vg0/data-snap-pre-1"

    proc, calls = fake_lvm("-g", "vg0", "-l", "nodata", "list")
    assert proc.returncode == 1 and "not found" in proc.stderr


def _device_mapper() -> bool:
    try:
        with open("/proc/misc", encoding="utf-8") as handle:
            return "device-mapper" in handle.read()
    except OSError:
        return False


@pytest.mark.slow
@pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("podman"), reason="needs root and podman")
@pytest.mark.skipif(not _device_mapper(), reason="the kernel has no device-mapper: LVM cannot run on this machine")
def test_real_lvm_in_a_privileged_container():
    proc = subprocess.run(
        ["podman", "run", "--rm", "--privileged", "-v", f"{SCRIPT}:/opt/snapshot-lvm.sh:ro",
         "-v", f"{SCENARIO}:/opt/scenario.sh:ro", IMAGE, "/opt/scenario.sh"],
        capture_output=True, text=True, timeout=600, check=False)
    assert proc.returncode == 0 and "SCENARIO OK" in proc.stdout, proc.stdout + proc.stderr
