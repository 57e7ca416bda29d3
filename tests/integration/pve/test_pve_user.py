"""pve_user against the simulator: create/update/delete, order-independent groups, tokens left alone."""
from __future__ import annotations

import pytest

from .conftest import module_task

pytestmark = pytest.mark.pvesim


def server_user(sim, userid):
    for user in sim.api().access.users.get(full=1):
        if user["userid"] == userid:
            return user
    return None


def test_create_check_update_idempotent(ansible, sim, uid):
    userid = f"u{uid}@pve"
    for group in (f"g1{uid}", f"g2{uid}"):
        sim.api().access.groups.post(groupid=group)
    task = module_task("pve_user", userid=userid, comment="collector", email="ops@example.org",
                       groups=[f"g2{uid}", f"g1{uid}"], enable=True)

    check = ansible.run([task], check=True, diff=True)
    res = check.result("t")
    assert check.rc == 0 and res["changed"] is True, check.output
    assert res["diff"]["before"] == {}
    assert res["diff"]["after"]["groups"] == sorted([f"g1{uid}", f"g2{uid}"])
    assert res["api_calls"] == [f"GET /access/users/{userid}"]
    assert server_user(sim, userid) is None

    real = ansible.run([task])
    assert real.result("t")["api_calls"] == [f"GET /access/users/{userid}", "POST /access/users"]
    user = server_user(sim, userid)
    assert user["comment"] == "collector" and user["email"] == "ops@example.org"
    assert sorted(user["groups"].split(",")) == [f"g1{uid}", f"g2{uid}"]

    # Same groups in another order: no change, one read.
    reordered = module_task("pve_user", userid=userid, comment="collector", email="ops@example.org",
                            groups=[f"g1{uid}", f"g2{uid}"], enable=True)
    again = ansible.run([reordered])
    assert again.changed == 0
    assert again.result("t")["api_calls"] == [f"GET /access/users/{userid}"]

    update = ansible.run([module_task("pve_user", userid=userid, comment="changed", groups=[f"g1{uid}"])], diff=True)
    res = update.result("t")
    assert res["changed_fields"] == ["comment", "groups"]
    assert res["diff"]["before"]["comment"] == "collector" and res["diff"]["after"]["comment"] == "changed"
    assert res["api_calls"] == [f"GET /access/users/{userid}", f"PUT /access/users/{userid}"]
    user = server_user(sim, userid)
    assert user["comment"] == "changed" and user["groups"] == f"g1{uid}"
    assert user["email"] == "ops@example.org", "options not given are left alone"

    disable = ansible.run([module_task("pve_user", userid=userid, enable=False, groups=[])])
    assert disable.result("t")["changed_fields"] == ["enable", "groups"]
    user = server_user(sim, userid)
    assert int(user.get("enable", 1)) == 0 and not user.get("groups")


def test_update_never_touches_tokens(ansible, sim, uid):
    userid = f"u{uid}@pve"
    sim.api().access.users.post(userid=userid, comment="old")
    sim.api().access.users(userid).token("keepme").post(privsep=1)
    sim.api().access.acl.put(path="/", roles="PVEAuditor", tokens=f"{userid}!keepme")

    run = ansible.run([module_task("pve_user", userid=userid, comment="new", enable=True)])
    assert run.result("t")["changed"] is True
    tokens = [t["tokenid"] for t in sim.api().access.users(userid).token.get()]
    assert tokens == ["keepme"]
    acl = [a for a in sim.api().access.acl.get() if a["ugid"] == f"{userid}!keepme"]
    assert len(acl) == 1


def test_delete(ansible, sim, uid):
    userid = f"u{uid}@pve"
    sim.api().access.users.post(userid=userid)
    task = module_task("pve_user", userid=userid, state="absent")
    check = ansible.run([task], check=True)
    assert check.result("t")["changed"] is True and server_user(sim, userid) is not None
    real = ansible.run([task])
    assert real.result("t")["api_calls"] == [f"GET /access/users/{userid}", f"DELETE /access/users/{userid}"]
    assert server_user(sim, userid) is None
    assert ansible.run([task]).changed == 0


def test_missing_group_is_reported_without_creating_the_user(ansible, sim, uid):
    userid = f"u{uid}@pve"
    run = ansible.run([module_task("pve_user", userid=userid, groups=[f"nosuch{uid}"])])
    assert run.rc != 0
    assert f"nosuch{uid}" in run.result("t")["msg"]
    assert server_user(sim, userid) is None


def test_malformed_userid(ansible):
    run = ansible.run([module_task("pve_user", userid="no-realm")])
    assert run.rc != 0
    res = run.result("t")
    assert "malformed user id 'no-realm'" in res["msg"] and res["api_calls"] == []
