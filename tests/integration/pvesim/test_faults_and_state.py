"""Fault injection, reset, and the state file that survives restarts."""
from __future__ import annotations

import json
import os
import stat

import pytest
import requests

from .helpers import raises

pytestmark = pytest.mark.pvesim


def test_node_offline(sim):
    sim.inject(node="pve2", online=False)
    api = sim.api()
    status = {e["name"]: e for e in api.cluster.status.get() if e["type"] == "node"}
    assert status["pve2"]["online"] == 0 and status["pve1"]["online"] == 1
    resources = api.cluster.resources.get()
    assert {e["id"]: e["status"] for e in resources if e["type"] == "node"}["node/pve2"] == "offline"
    assert {e["status"] for e in resources if e.get("node") == "pve2" and e["type"] in ("qemu", "lxc")} == {"unknown"}
    exc = raises(api.nodes("pve2").status.get)
    assert (exc.status_code, exc.content) == (595, "No route to host")
    sim.inject(node="pve2", online=True)
    assert api.nodes("pve2").status.get()["uptime"] > 0


def test_quorum_loss_blocks_writes(sim, uid):
    sim.inject(quorate=False)
    api = sim.api()
    assert api.cluster.status.get()[0]["quorate"] == 0
    exc = raises(api.access.roles.post, roleid=f"Q{uid}")
    assert (exc.status_code, exc.content) == (500, "cluster not ready - no quorum?")
    assert api.access.roles.get(), "reads still work"
    sim.clear_faults()
    api.access.roles.post(roleid=f"Q{uid}")


def test_next_requests_fail(sim):
    sim.inject(fail={"count": 2, "status": 500, "message": "got timeout", "path": "^/cluster/resources"})
    api = sim.api()
    assert api.version.get(), "other paths are not affected"
    for _request in range(2):
        exc = raises(api.cluster.resources.get)
        assert (exc.status_code, exc.content) == (500, "got timeout")
    assert api.cluster.resources.get()


def test_timeout_and_dropped_connections(sim):
    sim.inject(fail={"count": 1, "mode": "timeout", "delay": 3, "path": "^/version$"})
    with pytest.raises(requests.exceptions.ReadTimeout):
        sim.session().get(f"{sim.url}/version", timeout=1)
    sim.inject(fail={"count": 1, "mode": "drop", "path": "^/version$"})
    with pytest.raises(requests.exceptions.ConnectionError):
        sim.session().get(f"{sim.url}/version", timeout=5)
    assert sim.session().get(f"{sim.url}/version", timeout=5).status_code == 200


def test_failing_snapshot_task(sim):
    sim.inject(task={"type": "qmsnapshot", "id": 100, "exitstatus": "zfs error: out of space"})
    guest = sim.api().nodes("pve1").qemu(100)
    status = sim.wait_task(guest.snapshot.post(snapname="willfail"))
    assert status["exitstatus"] == "zfs error: out of space"
    assert [s["name"] for s in guest.snapshot.get()] == ["current"]
    assert "lock" not in guest.config.get(), "a failed task releases the lock"
    assert sim.wait_task(guest.snapshot.post(snapname="works"))["exitstatus"] == "OK"


def test_control_endpoint_is_root_only(sim, make_principal):
    admin = make_principal(user_acl=[("/", "Administrator", 1)], token_acl=[("/", "Administrator", 1)])
    resp = requests.post(f"{sim.base}/pvesim/reset", verify=sim.ca_cert, timeout=5,
                         headers={"Authorization": f"PVEAPIToken={admin.token_id}={admin.secret}"})
    assert resp.status_code == 403
    assert requests.post(f"{sim.base}/pvesim/reset", verify=sim.ca_cert, timeout=5).status_code == 401


def test_reset_restores_the_generated_cluster(sim, uid):
    api = sim.api()
    api.access.roles.post(roleid=f"Tmp{uid}")
    before = {e["id"]: e["status"] for e in api.cluster.resources.get(type="vm")}
    sim.reset()
    assert f"Tmp{uid}" not in {r["roleid"] for r in api.access.roles.get()}
    assert {e["id"]: e["status"] for e in api.cluster.resources.get(type="vm")} == before
    assert sim.api().version.get(), "admin token survives the reset"


def test_state_survives_restart(pvesim_factory):
    sim = pvesim_factory(nodes=2, guests_per_node=3)
    api = sim.api()
    api.access.roles.post(roleid="Persisted", privs="VM.Audit")
    api.access.users.post(userid="keep@pve", password="keep-me-please")
    token = api.access.users("keep@pve").token("mon").post()
    api.access.acl.put(path="/vms", roles="Persisted", tokens=token["full-tokenid"], users="keep@pve")
    sim.wait_task(api.nodes("pve1").qemu(100).snapshot.post(snapname="kept") if api.nodes("pve1").qemu.get()
                  else api.nodes("pve1").lxc(100).snapshot.post(snapname="kept"))
    with open(sim.ca_cert, encoding="ascii") as handle:
        ca_before = handle.read()
    assert stat.S_IMODE(os.stat(sim.token_file).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(sim.state_file).st_mode) == 0o600
    with open(sim.state_file, encoding="utf-8") as handle:
        assert json.load(handle)["access"]["roles"]["Persisted"] == ["VM.Audit"]
    secret = sim.admin_token_secret
    sim.restart()
    assert sim.admin_token_secret == secret
    with open(sim.ca_cert, encoding="ascii") as handle:
        assert handle.read() == ca_before
    api = sim.api()
    assert api.access.roles("Persisted").get() == {"VM.Audit": 1}
    mon = sim.api_as(token_id=token["full-tokenid"], token_secret=token["value"])
    assert {e["type"] for e in mon.cluster.resources.get()} <= {"qemu", "lxc"}
    assert len(mon.cluster.resources.get()) == 6
    assert sim.api_as(user="keep@pve", password="keep-me-please").version.get()
    kind = "qemu" if api.nodes("pve1").qemu.get() else "lxc"
    names = [s["name"] for s in getattr(api.nodes("pve1"), kind)(100).snapshot.get()]
    assert names == ["kept", "current"]
