"""Snapshots of qemu and lxc guests as asynchronous tasks, and rollback restoring the recorded state."""
from __future__ import annotations

import pytest

from .helpers import raises

pytestmark = pytest.mark.pvesim


def _pick(sim, kind, status):
    for entry in sim.api().cluster.resources.get(type="vm"):
        if entry["type"] == kind and entry["status"] == status and not entry["template"]:
            return entry["node"], entry["vmid"]
    raise AssertionError(f"no {status} {kind} guest")


@pytest.mark.parametrize("kind", ["qemu", "lxc"])
def test_snapshot_create_list_rollback_delete(sim, kind):
    node, vmid = _pick(sim, kind, "running")
    guest = getattr(sim.api().nodes(node), kind)(vmid)
    before = guest.config.get()
    upid = guest.snapshot.post(snapname="before_change", description="baseline")
    assert upid.startswith(f"UPID:{node}:") and f":{'qm' if kind == 'qemu' else 'vz'}snapshot:{vmid}:" in upid
    assert guest.config.get().get("lock") == "snapshot", "the guest is locked while the task runs"
    assert sim.wait_task(upid)["exitstatus"] == "OK"
    snaps = guest.snapshot.get()
    assert [s["name"] for s in snaps] == ["before_change", "current"]
    assert snaps[0]["description"] == "baseline" and snaps[0]["snaptime"] > 0
    assert snaps[1]["parent"] == "before_change" and snaps[1]["description"] == "You are here!"
    if kind == "qemu":
        assert snaps[1]["running"] == 1 and snaps[0]["vmstate"] == 0
    # change the guest, then roll back: config and power state come back
    sim.edit_guest(vmid, config={"name": "tampered", "tags": "changed"}, status="running")
    assert guest.config.get().get("tags") == "changed"
    upid = guest.snapshot("before_change").rollback.post(start=1)
    assert sim.wait_task(upid)["exitstatus"] == "OK"
    after = guest.config.get()
    name_key = "name" if kind == "qemu" else "hostname"
    assert after[name_key] == before[name_key] and after.get("tags") == before.get("tags")
    assert guest.status.current.get()["status"] == "running"
    assert sim.wait_task(guest.snapshot("before_change").delete())["exitstatus"] == "OK"
    assert [s["name"] for s in guest.snapshot.get()] == ["current"]


def test_rollback_without_start_stops_the_guest_and_restores_a_stopped_state(sim):
    node, vmid = _pick(sim, "qemu", "stopped")
    guest = sim.api().nodes(node).qemu(vmid)
    assert sim.wait_task(guest.snapshot.post(snapname="off"))["exitstatus"] == "OK"
    assert sim.wait_task(guest.status.start.post())["exitstatus"] == "OK"
    assert guest.status.current.get()["status"] == "running"
    assert sim.wait_task(guest.snapshot("off").rollback.post())["exitstatus"] == "OK"
    assert guest.status.current.get()["status"] == "stopped"


def test_vmstate_snapshot_resumes_running(sim):
    node, vmid = _pick(sim, "qemu", "running")
    guest = sim.api().nodes(node).qemu(vmid)
    assert sim.wait_task(guest.snapshot.post(snapname="ram", vmstate=1))["exitstatus"] == "OK"
    assert sim.wait_task(guest.status.stop.post())["exitstatus"] == "OK"
    assert sim.wait_task(guest.snapshot("ram").rollback.post())["exitstatus"] == "OK"
    assert guest.status.current.get()["status"] == "running"


def test_snapshot_errors(sim):
    node, vmid = _pick(sim, "qemu", "running")
    guest = sim.api().nodes(node).qemu(vmid)
    exc = raises(guest.snapshot.post, snapname="current")
    assert (exc.status_code, exc.content) == (500, "unable to use snapshot name 'current' (reserved name)")
    exc = raises(guest.snapshot.post, snapname="1bad")
    assert exc.errors == {"snapname": "invalid format - invalid configuration ID '1bad'\n"}
    assert sim.wait_task(guest.snapshot.post(snapname="dup"))["exitstatus"] == "OK"
    assert sim.wait_task(guest.snapshot.post(snapname="dup"))["exitstatus"] == "snapshot name 'dup' already used"
    assert sim.wait_task(guest.snapshot("nope").delete())["exitstatus"] == "snapshot 'nope' does not exist"
    assert sim.wait_task(guest.snapshot("nope").rollback.post())["exitstatus"] == "snapshot 'nope' does not exist"
    first = guest.snapshot.post(snapname="one")
    second = guest.snapshot.post(snapname="two")
    assert sim.wait_task(second)["exitstatus"] == "VM is locked (snapshot)"
    assert sim.wait_task(first)["exitstatus"] == "OK"


def test_snapshot_needs_vm_snapshot_privilege(sim, make_principal):
    who = make_principal(user_acl=[("/vms", "PVEVMUser", 1)], token_acl=[("/vms", "PVEVMUser", 1)])
    node, vmid = _pick(sim, "qemu", "running")
    guest = who.token_api().nodes(node).qemu(vmid)
    assert guest.snapshot.get()[-1]["name"] == "current"
    exc = raises(guest.snapshot.post, snapname="x1")
    assert (exc.status_code, exc.content) == (403, f"Permission check failed (/vms/{vmid}, VM.Snapshot)")
    exc = raises(guest.snapshot("x1").rollback.post)
    assert exc.content == f"Permission check failed (/vms/{vmid}, VM.Snapshot|VM.Snapshot.Rollback)"
