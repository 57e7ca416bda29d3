"""The proxmox_access role end to end against two simulated clusters, on localhost."""
from __future__ import annotations

import grp
import os
import pwd
import re
import stat

import pytest
import yaml

from .test_pve_token import token_works

pytestmark = [pytest.mark.pvesim, pytest.mark.slow]

AUDIT = ["Datastore.Audit", "Sys.Audit", "VM.Audit"]
ROLE = {"role": "proxmox_ai.hardening.proxmox_access"}


def cluster(sim, name, **extra):
    item = {"name": name, "api_host": sim.host, "api_port": sim.port, "api_token_id": sim.admin_token_id,
            "api_token_secret": sim.admin_token_secret, "ca_path": str(sim.ca_cert)}
    item.update(extra)
    return item


def role_vars(tmp, clusters, **extra):
    values = {
        "proxmox_access_clusters": clusters,
        "proxmox_access_config_path": str(tmp / "etc" / "proxmox-nodes.yml"),
        "proxmox_access_config_owner": pwd.getpwuid(os.getuid()).pw_name,
        "proxmox_access_config_group": grp.getgrgid(os.getgid()).gr_name,
    }
    values.update(extra)
    return values


def recap(output: str) -> dict:
    match = re.search(r"localhost\s+: ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)", output)
    assert match, output[-3000:]
    return dict(zip(("ok", "changed", "unreachable", "failed"), map(int, match.groups())))


def server_state(sim):
    api = sim.api()
    roles = {r["roleid"]: r.get("privs", "") for r in api.access.roles.get()}
    users = [u["userid"] for u in api.access.users.get()]
    tokens = ([t["tokenid"] for t in api.access.users("proxmox-ai@pam").token.get()]
              if "proxmox-ai@pam" in users else [])
    acl = sorted((a["path"], a["type"], a["ugid"], a["roleid"], int(a.get("propagate", 1)))
                 for a in api.access.acl.get() if a["ugid"].startswith("proxmox-ai@pam"))
    return {"role": roles.get("ProxmoxAI-Readonly"), "user": "proxmox-ai@pam" in users, "tokens": tokens, "acl": acl}


def effective(sim, userid):
    perms = sim.api().access.permissions.get(userid=userid)
    return {path: sorted(privs) for path, privs in perms.items()}


@pytest.fixture
def second(pvesim_factory):
    """A second, independent cluster with its own CA and admin token."""
    return pvesim_factory(nodes=2, guests_per_node=2, seed=7)


def test_two_clusters_end_to_end(ansible, sim, second, tmp_path):
    variables = role_vars(tmp_path, [cluster(sim, "pve-a"),
                                     cluster(second, "pve-b", nodes=[{"name": "pve-b1", "host": "10.0.1.11"},
                                                                     {"name": "pve-b2", "host": "10.0.1.12"}])])
    config = tmp_path / "etc" / "proxmox-nodes.yml"
    empty = server_state(sim)

    check = ansible.run(roles=[ROLE], play_vars=variables, connection=False, check=True)
    assert check.rc == 0, check.output[-4000:]
    assert check.changed > 0
    assert server_state(sim) == empty and server_state(second)["user"] is False
    assert not config.exists()

    real = ansible.run(roles=[ROLE], play_vars=variables, connection=False, verbosity=3, json_callback=False)
    assert real.rc == 0, real.output[-4000:]
    assert recap(real.output)["changed"] > 0
    assert stat.S_IMODE(os.stat(config).st_mode) == 0o600
    assert os.stat(config).st_uid == os.getuid()
    nodes = yaml.safe_load(config.read_text())["nodes"]
    assert [n["name"] for n in nodes] == ["pve-a", "pve-b1", "pve-b2"]
    folder = str(config.parent)
    for node in nodes:
        assert node["user"] == "proxmox-ai@pam" and node["token_name"] == "monitoring"
        assert node["verify_ssl"] is True
        assert len(node["token_value"]) == 36
        assert node["ca_cert"] == f"{folder}/{'pve-a' if node['name'] == 'pve-a' else 'pve-b'}-ca.pem"
    assert nodes[0]["host"] == sim.host and nodes[0]["port"] == sim.port
    assert nodes[1]["host"] == "10.0.1.11" and nodes[1]["port"] == second.port
    assert nodes[1]["token_value"] == nodes[2]["token_value"] != nodes[0]["token_value"]
    assert (config.parent / "pve-a-ca.pem").read_bytes() == open(sim.ca_cert, "rb").read()
    assert (config.parent / "pve-b-ca.pem").read_bytes() == open(second.ca_cert, "rb").read()

    # Secrets never in the -vvv output, neither the new token's nor the admin's (which is masked in invocations).
    assert "VALUE_SPECIFIED_IN_NO_LOG_PARAMETER" in real.output and "censored" in real.output
    for secret in (nodes[0]["token_value"], nodes[1]["token_value"], sim.admin_token_secret,
                   second.admin_token_secret):
        assert secret not in real.output

    for server, secret in ((sim, nodes[0]["token_value"]), (second, nodes[1]["token_value"])):
        state = server_state(server)
        assert sorted(state["role"].split(",")) == AUDIT
        assert state["user"] and state["tokens"] == ["monitoring"]
        assert state["acl"] == [("/", "token", "proxmox-ai@pam!monitoring", "ProxmoxAI-Readonly", 1),
                                ("/", "user", "proxmox-ai@pam", "ProxmoxAI-Readonly", 1)]
        assert token_works(server, "proxmox-ai@pam!monitoring", secret)
        token_perms = effective(server, "proxmox-ai@pam!monitoring")
        assert token_perms["/"] == AUDIT
        assert {p for privs in token_perms.values() for p in privs} == set(AUDIT)

    again = ansible.run(roles=[ROLE], play_vars=variables, connection=False)
    assert again.rc == 0, again.output[-4000:]
    assert again.changed == 0
    assert yaml.safe_load(config.read_text())["nodes"] == nodes, "the secret is kept on a second run"
    check_again = ansible.run(roles=[ROLE], play_vars=variables, connection=False, check=True)
    assert check_again.rc == 0 and check_again.changed == 0


def test_rotation_and_lost_secret(ansible, sim, tmp_path):
    variables = role_vars(tmp_path, [cluster(sim, "pve-a")])
    config = tmp_path / "etc" / "proxmox-nodes.yml"
    assert ansible.run(roles=[ROLE], play_vars=variables, connection=False).rc == 0
    first = yaml.safe_load(config.read_text())["nodes"][0]["token_value"]

    rotate = ansible.run(roles=[ROLE], play_vars=dict(variables, proxmox_access_regenerate_token=True),
                         connection=False)
    assert rotate.rc == 0, rotate.output[-4000:]
    second = yaml.safe_load(config.read_text())["nodes"][0]["token_value"]
    assert second != first
    assert not token_works(sim, "proxmox-ai@pam!monitoring", first)
    assert token_works(sim, "proxmox-ai@pam!monitoring", second)

    data = yaml.safe_load(config.read_text())
    del data["nodes"][0]["token_value"]
    config.write_text(yaml.safe_dump(data))
    refill = ansible.run(roles=[ROLE], play_vars=variables, connection=False)
    assert refill.rc == 0, refill.output[-4000:]
    third = yaml.safe_load(config.read_text())["nodes"][0]["token_value"]
    assert third not in (first, second, None)
    assert token_works(sim, "proxmox-ai@pam!monitoring", third)
    assert ansible.run(roles=[ROLE], play_vars=variables, connection=False).changed == 0

    # A secret in the file that the server no longer accepts: kept (the API cannot tell), then refused clearly.
    data = yaml.safe_load(config.read_text())
    data["nodes"][0]["token_value"] = "00000000-0000-0000-0000-000000000000"
    config.write_text(yaml.safe_dump(data))
    stale = ansible.run(roles=[ROLE], play_vars=variables, connection=False)
    assert stale.rc != 0
    failed = [r for r in stale.data["plays"][0]["tasks"] if r["hosts"]["localhost"].get("failed")]
    assert "rerun with proxmox_access_regenerate_token=true" in failed[-1]["hosts"]["localhost"]["msg"]
    assert token_works(sim, "proxmox-ai@pam!monitoring", third), "nothing was rotated behind the operator's back"

    # Without a configuration file the role verifies as the admin and never rotates on its own.
    no_file = ansible.run(roles=[ROLE], play_vars=dict(variables, proxmox_access_write_config=False),
                          connection=False)
    assert no_file.rc == 0 and no_file.changed == 0, no_file.output[-4000:]
    assert token_works(sim, "proxmox-ai@pam!monitoring", third)


def test_verification_fails_on_extra_privilege(ansible, sim, tmp_path):
    variables = role_vars(tmp_path, [cluster(sim, "pve-a")])
    assert ansible.run(roles=[ROLE], play_vars=variables, connection=False).rc == 0
    sim.api().access.acl.put(path="/vms/100", roles="PVEVMAdmin", users="proxmox-ai@pam",
                             tokens="proxmox-ai@pam!monitoring")

    keep = ansible.run(roles=[ROLE], play_vars=dict(variables, proxmox_access_acl_exclusive=False), connection=False)
    assert keep.rc != 0
    failed = [r for r in keep.data["plays"][0]["tasks"] if r["hosts"]["localhost"].get("failed")]
    msg = failed[-1]["hosts"]["localhost"]["msg"]
    assert "should have exactly Datastore.Audit, Sys.Audit, VM.Audit on / and nothing else" in msg
    assert "VM.PowerMgmt" in msg

    # exclusive (the default) removes the extra grants and the verification passes again.
    fix = ansible.run(roles=[ROLE], play_vars=variables, connection=False)
    assert fix.rc == 0, fix.output[-4000:]
    token_perms = effective(sim, "proxmox-ai@pam!monitoring")
    assert token_perms["/"] == AUDIT
    assert {p for privs in token_perms.values() for p in privs} == set(AUDIT)
    assert server_state(sim)["acl"] == [("/", "token", "proxmox-ai@pam!monitoring", "ProxmoxAI-Readonly", 1),
                                        ("/", "user", "proxmox-ai@pam", "ProxmoxAI-Readonly", 1)]


def test_admin_errors_are_reported(ansible, sim, tmp_path):
    bad = cluster(sim, "pve-a", api_token_secret="00000000-0000-0000-0000-000000000000")
    run = ansible.run(roles=[ROLE], play_vars=role_vars(tmp_path, [bad]), connection=False)
    assert run.rc != 0
    failed = [r for r in run.data["plays"][0]["tasks"] if r["hosts"]["localhost"].get("failed")]
    assert "(401" in failed[0]["hosts"]["localhost"]["msg"]
    assert server_state(sim)["role"] is None
    assert not (tmp_path / "etc" / "proxmox-nodes.yml").exists()
