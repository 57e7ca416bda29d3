"""pve_permissions_info against the simulator: effective privileges of users and tokens."""
from __future__ import annotations

import pytest

from .conftest import module_task

pytestmark = pytest.mark.pvesim


def test_token_privileges_are_the_intersection(ansible, sim, uid):
    user = f"u{uid}@pve"
    api = sim.api()
    api.access.roles.post(roleid=f"Audit-{uid}", privs="VM.Audit,Sys.Audit,Datastore.Audit")
    api.access.users.post(userid=user)
    api.access.users(user).token("mon").post(privsep=1)
    api.access.acl.put(path="/", roles=f"Audit-{uid}", users=user)
    api.access.acl.put(path="/", roles="PVEVMAdmin", tokens=f"{user}!mon")

    tasks = [
        module_task("pve_permissions_info", label="user", userid=user, path="/"),
        module_task("pve_permissions_info", label="token", userid=f"{user}!mon", path="/"),
        module_task("pve_permissions_info", label="tree", userid=f"{user}!mon"),
    ]
    vmadmin = {p for r in api.access.roles.get() if r["roleid"] == "PVEVMAdmin" for p in r["privs"].split(",")}
    expected = sorted(vmadmin & {"VM.Audit", "Sys.Audit", "Datastore.Audit"})
    assert expected, "PVEVMAdmin shares at least VM.Audit with the audit role"
    run = ansible.run(tasks, check=True)
    assert run.rc == 0, run.output
    assert run.result("user")["privileges"] == ["Datastore.Audit", "Sys.Audit", "VM.Audit"]
    assert run.result("user")["api_calls"] == ["GET /access/permissions"]
    # privsep token: its own ACL (PVEVMAdmin) limited by the user's (audit only).
    assert run.result("token")["privileges"] == expected
    tree = run.result("tree")
    assert tree["privileges"] is None
    assert sorted(tree["permissions"]["/"]) == expected
    assert run.changed == 0


def test_unknown_identity_and_bad_path(ansible, uid):
    run = ansible.run([module_task("pve_permissions_info", label="bad", userid="x@pve", path="/bogus")])
    assert run.rc != 0 and "invalid ACL path '/bogus'" in run.result("bad")["msg"]
    run = ansible.run([module_task("pve_permissions_info", label="bad", userid="broken!!")])
    assert run.rc != 0 and "malformed" in run.result("bad")["msg"]
