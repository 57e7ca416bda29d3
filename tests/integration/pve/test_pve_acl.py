"""pve_acl against the simulator: several entries per task, propagate both ways, paths, exclusive."""
from __future__ import annotations

import pytest

from .conftest import module_task

pytestmark = pytest.mark.pvesim


def server_acl(sim, *ugids):
    """{(path, type, ugid, roleid): propagate} of the server for the given subjects."""
    return {(a["path"], a["type"], a["ugid"], a["roleid"]): int(a.get("propagate", 1))
            for a in sim.api().access.acl.get() if a["ugid"] in ugids}


@pytest.fixture
def subjects(sim, uid):
    user, group = f"u{uid}@pve", f"g{uid}"
    sim.api().access.users.post(userid=user)
    sim.api().access.users(user).token("mon").post(privsep=1)
    sim.api().access.groups.post(groupid=group)
    return user, f"{user}!mon", group


def test_entries_check_real_idempotent(ansible, sim, subjects):
    user, token, group = subjects
    entries = [
        {"path": "/", "roles": ["PVEAuditor"], "users": [user], "tokens": [token]},
        {"path": "/vms/100", "role": "PVEVMUser", "group": group, "propagate": False},
    ]
    task = module_task("pve_acl", entries=entries)

    check = ansible.run([task], check=True, diff=True)
    res = check.result("t")
    assert check.rc == 0 and res["changed"] is True, check.output
    assert res["api_calls"] == ["GET /access/acl"]
    assert res["diff"]["before"] == {"acl": []}
    assert len(res["diff"]["after"]["acl"]) == 3 and len(res["added"]) == 3
    assert server_acl(sim, user, token, group) == {}

    real = ansible.run([task])
    res = real.result("t")
    # One read, one grouped write per (path, propagate): user and token share a PUT.
    assert res["api_calls"] == ["GET /access/acl", "PUT /access/acl", "PUT /access/acl"]
    assert server_acl(sim, user, token, group) == {
        ("/", "user", user, "PVEAuditor"): 1,
        ("/", "token", token, "PVEAuditor"): 1,
        ("/vms/100", "group", group, "PVEVMUser"): 0,
    }

    again = ansible.run([task])
    assert again.changed == 0 and again.result("t")["api_calls"] == ["GET /access/acl"]


def test_propagate_is_compared_both_ways(ansible, sim, subjects):
    user = subjects[0]
    sim.api().access.acl.put(path="/storage/local", roles="PVEDatastoreUser", users=user, propagate=1)

    def entry(propagate):
        return module_task("pve_acl", entries=[{"path": "/storage/local", "roles": ["PVEDatastoreUser"],
                                                "users": [user], "propagate": propagate}])

    off = ansible.run([entry(False)], diff=True)
    res = off.result("t")
    assert res["changed"] is True
    assert res["diff"]["before"]["acl"][0]["propagate"] is True and res["diff"]["after"]["acl"][0]["propagate"] is False
    assert server_acl(sim, user) == {("/storage/local", "user", user, "PVEDatastoreUser"): 0}
    assert ansible.run([entry(False)]).changed == 0

    on = ansible.run([entry(True)])
    assert on.result("t")["changed"] is True
    assert server_acl(sim, user) == {("/storage/local", "user", user, "PVEDatastoreUser"): 1}
    assert ansible.run([entry(True)]).changed == 0


def test_path_normalisation(ansible, sim, subjects):
    user = subjects[0]
    sim.api().access.acl.put(path="/vms/100", roles="PVEVMUser", users=user)
    for path in ("vms/100", "/vms/100/", "//vms//100"):
        run = ansible.run([module_task("pve_acl", entries=[{"path": path, "roles": ["PVEVMUser"], "users": [user]}])])
        assert run.rc == 0 and run.changed == 0, (path, run.output)


@pytest.mark.parametrize("path", ["/vms/abc", "/nosuchtree", "/vms/12", "/storage/local/extra"])
def test_invalid_path_fails_before_any_write(ansible, sim, subjects, path):
    user = subjects[0]
    entries = [{"path": "/", "roles": ["PVEAuditor"], "users": [user]},
               {"path": path, "roles": ["PVEAuditor"], "users": [user]}]
    run = ansible.run([module_task("pve_acl", entries=entries)])
    res = run.result("t")
    assert run.rc != 0
    assert res["msg"].startswith("entries[1]: invalid ACL path")
    assert res["api_calls"] == []
    assert server_acl(sim, user) == {}, "no partial change"


def test_exclusive_removes_other_entries_of_the_listed_subjects_only(ansible, sim, subjects):
    user, token, group = subjects
    api = sim.api()
    api.access.acl.put(path="/", roles="PVEAdmin", tokens=token)
    api.access.acl.put(path="/vms/100", roles="PVEVMAdmin", tokens=token)
    api.access.acl.put(path="/", roles="PVEAuditor", groups=group)
    task = module_task("pve_acl", exclusive=True,
                       entries=[{"path": "/", "roles": ["PVEAuditor"], "tokens": [token]}])

    check = ansible.run([task], check=True, diff=True)
    res = check.result("t")
    assert sorted((r["path"], r["roleid"]) for r in res["removed"]) == [("/", "PVEAdmin"), ("/vms/100", "PVEVMAdmin")]
    assert res["diff"]["after"]["acl"] == [{"path": "/", "roleid": "PVEAuditor", "type": "token", "ugid": token,
                                            "propagate": True}]
    assert len(server_acl(sim, token)) == 2

    real = ansible.run([task])
    assert real.rc == 0, real.output
    assert server_acl(sim, token) == {("/", "token", token, "PVEAuditor"): 1}
    assert server_acl(sim, group) == {("/", "group", group, "PVEAuditor"): 1}, "other subjects are untouched"
    assert ansible.run([task]).changed == 0


def test_absent(ansible, sim, subjects):
    user, token, _group = subjects
    sim.api().access.acl.put(path="/", roles="PVEAuditor", users=user, tokens=token, propagate=0)
    task = module_task("pve_acl", state="absent",
                       entries=[{"path": "/", "roles": ["PVEAuditor"], "users": [user], "tokens": [token]}])
    check = ansible.run([task], check=True)
    assert check.result("t")["changed"] is True and len(server_acl(sim, user, token)) == 2
    real = ansible.run([task])
    assert real.result("t")["api_calls"] == ["GET /access/acl", "PUT /access/acl"]
    assert server_acl(sim, user, token) == {}
    assert ansible.run([task]).changed == 0


def test_unknown_role_is_reported(ansible, sim, subjects):
    user = subjects[0]
    run = ansible.run([module_task("pve_acl", entries=[{"path": "/", "roles": ["NoSuchRole"], "users": [user]}])])
    assert run.rc != 0
    assert "NoSuchRole" in run.result("t")["msg"]
    assert server_acl(sim, user) == {}
