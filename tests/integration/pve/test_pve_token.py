"""pve_token against the simulator: secret handling, rotation, parts or full id, bad input."""
from __future__ import annotations

import os
import stat
import time

import pytest
from proxmoxer import ProxmoxAPI
from proxmoxer.core import ResourceException

from .conftest import module_task

pytestmark = pytest.mark.pvesim


def token_works(sim, token_id, secret) -> bool:
    """Authenticate with the token through a real client; False on 401."""
    user, name = token_id.split("!")
    api = ProxmoxAPI(sim.host, port=sim.port, user=user, token_name=name, token_value=secret,
                     verify_ssl=str(sim.ca_cert))
    try:
        api.version.get()
    except ResourceException as exc:
        if exc.status_code == 401:
            return False
        raise
    return True


def server_token(sim, userid, name):
    for token in sim.api().access.users(userid).token.get():
        if token["tokenid"] == name:
            return token
    return None


@pytest.fixture
def user(sim, uid):
    userid = f"u{uid}@pve"
    sim.api().access.users.post(userid=userid)
    return userid


def test_create_returns_secret_once_and_is_idempotent(ansible, sim, user):
    token_id = f"{user}!mon"
    task = module_task("pve_token", token_id=token_id, comment="collector")

    check = ansible.run([task], check=True, diff=True)
    res = check.result("t")
    assert check.rc == 0 and res["changed"] is True, check.output
    assert "secret" not in res
    assert res["diff"]["before"] == {} and res["diff"]["after"]["token_id"] == token_id
    assert server_token(sim, user, "mon") is None

    task["no_log"] = True
    task["register"] = "tok"
    real = ansible.run([task, {"name": "keep", "ansible.builtin.copy": {
        "content": "{{ tok.secret }}", "dest": str(ansible.tmp / "secret.txt"), "mode": "0600"}, "no_log": True}])
    assert real.rc == 0, real.output
    secret = (ansible.tmp / "secret.txt").read_text()
    assert len(secret) == 36
    assert secret not in real.output
    assert token_works(sim, token_id, secret)
    token = server_token(sim, user, "mon")
    assert int(token.get("privsep", 1)) == 1
    assert token["comment"].startswith("collector [ansible:created=")

    again = ansible.run([module_task("pve_token", token_id=token_id, comment="collector")])
    res = again.result("t")
    assert again.changed == 0 and "secret" not in res
    assert res["api_calls"] == [f"GET /access/users/{user}/token"]
    assert res["token"]["comment"] == "collector" and res["token"]["created"]
    assert token_works(sim, token_id, secret), "an unchanged token keeps its secret"


def test_parts_form_and_updates(ansible, sim, user):
    first = ansible.run([module_task("pve_token", userid=user, token_name="mon", privsep=True,
                                     task={"no_log": True})])
    assert first.rc == 0, first.output
    same = ansible.run([module_task("pve_token", token_id=f"{user}!mon")])
    assert same.changed == 0

    update = ansible.run([module_task("pve_token", userid=user, token_name="mon", privsep=False, expire=4102444800,
                                      comment="new comment")], diff=True)
    res = update.result("t")
    assert res["changed"] is True and res["regenerated"] is False
    assert res["diff"]["before"]["privsep"] is True and res["diff"]["after"]["privsep"] is False
    assert res["diff"]["after"]["comment"] == "new comment"
    assert res["api_calls"] == [f"GET /access/users/{user}/token", f"PUT /access/users/{user}/token/mon"]
    token = server_token(sim, user, "mon")
    assert int(token["privsep"]) == 0 and int(token["expire"]) == 4102444800
    assert token["comment"].startswith("new comment [ansible:created=")
    assert "secret" not in res


def test_secret_dest_file_rotation_and_acl_kept(ansible, sim, user):
    token_id = f"{user}!mon"
    dest = ansible.tmp / "pve.secret"
    task = module_task("pve_token", token_id=token_id, secret_dest=str(dest))
    created = ansible.run([task], verbosity=3, json_callback=False)
    assert created.rc == 0, created.output
    assert stat.S_IMODE(os.stat(dest).st_mode) == 0o600
    first = dest.read_text().strip()
    assert first not in created.output, "the secret must never be printed"
    assert token_works(sim, token_id, first)
    sim.api().access.acl.put(path="/", roles="PVEAuditor", tokens=token_id)

    assert ansible.run([task]).changed == 0

    rotate = ansible.run([module_task("pve_token", token_id=token_id, secret_dest=str(dest), regenerate=True)],
                         diff=True)
    res = rotate.result("t")
    assert res["changed"] is True and res["regenerated"] is True and res["rotation_reason"] == "requested"
    assert res["diff"]["after"]["secret"] == "regenerated (requested)"
    assert "secret" not in res and res["secret_dest"] == str(dest)
    second = dest.read_text().strip()
    assert second != first and second not in rotate.output
    assert not token_works(sim, token_id, first) and token_works(sim, token_id, second)
    assert any(a["ugid"] == token_id for a in sim.api().access.acl.get()), "rotation keeps the token's ACLs"

    dest.unlink()
    refill = ansible.run([task])
    assert refill.result("t")["rotation_reason"] == "secret_dest_missing"
    assert token_works(sim, token_id, dest.read_text().strip())


def test_max_age(ansible, sim, user):
    # A token made outside the module has no recorded creation time.
    sim.api().access.users(user).token("mon").post(comment="by hand")
    task = module_task("pve_token", token_id=f"{user}!mon", comment="by hand", max_age="30d",
                       task={"no_log": True, "register": "tok"})
    probe = {"name": "probe", "ansible.builtin.debug": {"msg": "{{ tok.rotation_reason or 'none' }} {{ tok.secret is defined }}"}}
    unknown = ansible.run([task, probe])
    assert unknown.result("probe")["msg"] == "unknown_age True"
    stamped = server_token(sim, user, "mon")["comment"]
    assert stamped.startswith("by hand [ansible:created=")

    young = ansible.run([task, probe])
    assert young.result("probe")["msg"] == "none False" and young.changed == 0

    old = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - 31 * 86400))
    sim.api().access.users(user).token("mon").put(comment=f"by hand [ansible:created={old}]")
    check = ansible.run([task, probe], check=True)
    assert check.result("probe")["msg"] == "max_age False" and check.changed == 1
    aged = ansible.run([task, probe])
    assert aged.result("probe")["msg"] == "max_age True"
    assert old not in server_token(sim, user, "mon")["comment"]


def test_delete(ansible, sim, user):
    sim.api().access.users(user).token("mon").post()
    task = module_task("pve_token", token_id=f"{user}!mon", state="absent")
    assert ansible.run([task], check=True).result("t")["changed"] is True
    assert server_token(sim, user, "mon") is not None
    real = ansible.run([task])
    assert real.result("t")["api_calls"] == [f"GET /access/users/{user}/token", f"DELETE /access/users/{user}/token/mon"]
    assert server_token(sim, user, "mon") is None
    assert ansible.run([task]).changed == 0


@pytest.mark.parametrize("args, message", [
    ({"token_id": "proxmox-ai@pam"}, "malformed API token id 'proxmox-ai@pam'"),
    ({"token_id": "proxmox-ai@pam!1bad"}, "malformed token name in 'proxmox-ai@pam!1bad'"),
    ({"token_id": "no-realm!mon"}, "malformed user part of token id 'no-realm!mon'"),
    ({"token_id": "a@pam!b!c"}, "malformed API token id 'a@pam!b!c'"),
    ({"userid": "x@pve", "token_name": "has space"}, "malformed token name 'has space'"),
    ({"token_id": "x@pve!mon", "max_age": "soon"}, "max_age 'soon' is not a duration"),
])
def test_malformed_input_fails_before_any_call(ansible, args, message):
    run = ansible.run([module_task("pve_token", **args)])
    res = run.result("t")
    assert run.rc != 0 and message in res["msg"]
    assert res["api_calls"] == []


def test_missing_user(ansible, uid):
    run = ansible.run([module_task("pve_token", token_id=f"nobody{uid}@pve!mon")])
    assert run.rc != 0
    assert f"user 'nobody{uid}@pve' does not exist" in run.result("t")["msg"]
