"""pve_role against the simulator: check mode, real run, idempotence, diff, call counts, bad input."""
from __future__ import annotations

import pytest

from .conftest import module_task

pytestmark = pytest.mark.pvesim

AUDIT = ["Datastore.Audit", "Sys.Audit", "VM.Audit"]


def server_privs(sim, roleid):
    """Privileges of a role as the server has them, or None when the role does not exist."""
    for role in sim.api().access.roles.get():
        if role["roleid"] == roleid:
            return sorted(p for p in (role.get("privs") or "").split(",") if p)
    return None


def test_create_check_mode_real_run_and_idempotence(ansible, sim, uid):
    name = f"Test-{uid}"
    task = module_task("pve_role", name=name, privileges=["VM.Audit", "Sys.Audit,Datastore.Audit"])

    check = ansible.run([task], check=True, diff=True)
    res = check.result("t")
    assert check.rc == 0, check.output
    assert res["changed"] is True
    assert res["api_calls"] == ["GET /access/roles"]
    assert res["diff"] == {"before": {}, "after": {"roleid": name, "privileges": AUDIT}}
    assert server_privs(sim, name) is None, "check mode must not create the role"

    real = ansible.run([task])
    res = real.result("t")
    assert res["changed"] is True
    assert res["api_calls"] == ["GET /access/roles", "POST /access/roles"]
    assert server_privs(sim, name) == AUDIT

    again = ansible.run([task], diff=True)
    res = again.result("t")
    assert again.changed == 0
    assert res["api_calls"] == ["GET /access/roles"]
    assert res["role"] == {"roleid": name, "privileges": AUDIT}


def test_exact_set_append_and_empty(ansible, sim, uid):
    name = f"Test-{uid}"
    sim.api().access.roles.post(roleid=name, privs="VM.Audit,VM.PowerMgmt")

    exact = ansible.run([module_task("pve_role", name=name, privileges=["VM.Audit", "Sys.Audit"])], diff=True)
    res = exact.result("t")
    assert res["changed"] is True
    assert res["added"] == ["Sys.Audit"] and res["removed"] == ["VM.PowerMgmt"]
    assert res["diff"]["before"]["privileges"] == ["VM.Audit", "VM.PowerMgmt"]
    assert res["diff"]["after"]["privileges"] == ["Sys.Audit", "VM.Audit"]
    assert res["api_calls"] == ["GET /access/roles", f"PUT /access/roles/{name}"]
    assert server_privs(sim, name) == ["Sys.Audit", "VM.Audit"]

    append = ansible.run([module_task("pve_role", name=name, privileges=["Datastore.Audit", "VM.Audit"], append=True)])
    res = append.result("t")
    assert res["changed"] is True and res["added"] == ["Datastore.Audit"] and res["removed"] == []
    assert server_privs(sim, name) == AUDIT
    again = ansible.run([module_task("pve_role", name=name, privileges=["VM.Audit"], append=True)])
    assert again.changed == 0

    empty_check = ansible.run([module_task("pve_role", name=name, privileges=[])], check=True)
    assert empty_check.result("t")["changed"] is True
    assert server_privs(sim, name) == AUDIT
    empty = ansible.run([module_task("pve_role", name=name, privileges=[])])
    assert empty.result("t")["removed"] == AUDIT
    assert server_privs(sim, name) == []
    assert ansible.run([module_task("pve_role", name=name, privileges=[])]).changed == 0
    # Without privileges the set is left alone.
    assert ansible.run([module_task("pve_role", name=name)]).changed == 0


def test_delete(ansible, sim, uid):
    name = f"Test-{uid}"
    sim.api().access.roles.post(roleid=name, privs="VM.Audit")
    task = module_task("pve_role", name=name, state="absent")
    check = ansible.run([task], check=True, diff=True)
    assert check.result("t")["changed"] is True
    assert check.result("t")["diff"] == {"before": {"roleid": name, "privileges": ["VM.Audit"]}, "after": {}}
    assert server_privs(sim, name) == ["VM.Audit"]
    real = ansible.run([task])
    assert real.result("t")["api_calls"] == ["GET /access/roles", f"DELETE /access/roles/{name}"]
    assert server_privs(sim, name) is None
    assert ansible.run([task]).changed == 0


@pytest.mark.parametrize("check", [False, True])
def test_unknown_privilege_fails_before_any_write(ansible, sim, uid, check):
    name = f"Test-{uid}"
    sim.api().access.roles.post(roleid=name, privs="VM.Audit")
    run = ansible.run([module_task("pve_role", name=name, privileges=["VM.Audit", "VM.Audti", "Sys.Audit"])], check=check)
    res = run.result("t")
    assert run.rc != 0 and res["failed"]
    assert "unknown privilege(s) VM.Audti" in res["msg"]
    assert "nothing was changed" in res["msg"]
    assert res["api_calls"] == ["GET /access/roles"]
    assert server_privs(sim, name) == ["VM.Audit"]


@pytest.mark.parametrize("name", ["PVEAuditor", "PVEMyOwnRole", "pveLowerCase", "Administrator", "NoAccess"])
def test_builtin_and_pve_prefixed_roles_are_refused(ansible, sim, name):
    before = server_privs(sim, name)
    run = ansible.run([module_task("pve_role", name=name, privileges=["VM.Audit"])])
    res = run.result("t")
    assert run.rc != 0
    assert f"role '{name}' is a built-in Proxmox VE role" in res["msg"]
    assert res["api_calls"] == [], "refused before any API call"
    assert server_privs(sim, name) == before
    gone = ansible.run([module_task("pve_role", name=name, state="absent")])
    assert gone.rc != 0 and server_privs(sim, name) == before


def test_invalid_role_id(ansible):
    run = ansible.run([module_task("pve_role", name="bad name!", privileges=[])])
    assert run.rc != 0
    assert "invalid role id 'bad name!'" in run.result("t")["msg"]
