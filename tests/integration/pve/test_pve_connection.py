"""Connection options of every pve_* module: environment fallback, TLS trust, auth and transport errors."""
from __future__ import annotations

import socket
import subprocess

import pytest

from .conftest import module_task

pytestmark = pytest.mark.pvesim


def role_exists(sim, roleid) -> bool:
    return any(r["roleid"] == roleid for r in sim.api().access.roles.get())


def create_role(uid, **conn):
    return module_task("pve_role", name=f"Conn-{uid}", privileges=["VM.Audit"], **conn)


@pytest.fixture(scope="module")
def other_ca(tmp_path_factory):
    """A CA that did not sign the simulator's certificate."""
    folder = tmp_path_factory.mktemp("otherca")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=other-ca",
                    "-keyout", str(folder / "ca.key"), "-out", str(folder / "ca.pem")], check=True, capture_output=True)
    return str(folder / "ca.pem")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_environment_fallback_token(ansible, sim, uid):
    env = {"PROXMOX_HOST": sim.host, "PROXMOX_PORT": str(sim.port), "PROXMOX_TOKEN_ID": sim.admin_token_id,
           "PROXMOX_TOKEN_SECRET": sim.admin_token_secret, "PROXMOX_CA_PATH": str(sim.ca_cert)}
    run = ansible.run([create_role(uid)], connection=False, env=env)
    assert run.rc == 0, run.output
    assert role_exists(sim, f"Conn-{uid}")
    # Without the environment the same task has no endpoint.
    bare = ansible.run([create_role(uid)], connection=False)
    assert bare.rc != 0 and "api_host" in bare.result("t")["msg"]


def test_environment_fallback_password_and_token_preferred(ansible, sim, uid):
    env = {"PROXMOX_HOST": sim.host, "PROXMOX_PORT": str(sim.port), "PROXMOX_USER": "root@pam",
           "PROXMOX_PASSWORD": sim.root_password, "PROXMOX_CA_PATH": str(sim.ca_cert)}
    run = ansible.run([create_role(uid)], connection=False, env=env)
    assert run.rc == 0, run.output
    assert role_exists(sim, f"Conn-{uid}")
    # A token and a wrong password: the token is used.
    both = ansible.run([create_role(uid, api_password="wrong-password")])
    assert both.rc == 0 and both.changed == 0, both.output
    # A bare token name together with api_user.
    user, name = sim.admin_token_id.split("!")
    bare = ansible.run([create_role(uid)], connection=ansible.connection(api_token_id=name, api_user=user))
    assert bare.rc == 0 and bare.changed == 0, bare.output


def test_wrong_password(ansible, sim, uid):
    conn = ansible.connection(api_token_id=None, api_token_secret=None, api_user="root@pam",
                              api_password="wrong-password")
    run = ansible.run([create_role(uid)], connection=conn)
    assert run.rc != 0
    assert "password authentication of user root@pam" in run.result("t")["msg"]
    assert "wrong-password" not in run.output
    assert not role_exists(sim, f"Conn-{uid}")


def test_ca_path_reaches_the_client(ansible, sim, uid, other_ca):
    wrong = ansible.run([create_role(uid)], connection=ansible.connection(ca_path=other_ca))
    res = wrong.result("t")
    assert wrong.rc != 0
    assert "TLS certificate verification failed" in res["msg"] and other_ca in res["msg"]
    assert not role_exists(sim, f"Conn-{uid}")

    system = ansible.run([create_role(uid)], connection=ansible.connection(ca_path=None))
    assert system.rc != 0 and "TLS certificate verification failed" in system.result("t")["msg"]
    assert "system trust store" in system.result("t")["msg"]

    right = ansible.run([create_role(uid)])
    assert right.rc == 0 and role_exists(sim, f"Conn-{uid}")

    insecure = ansible.run([create_role(uid)], connection=ansible.connection(ca_path=None, validate_certs=False))
    assert insecure.rc == 0 and insecure.changed == 0

    missing = ansible.run([create_role(uid)], connection=ansible.connection(ca_path="/nonexistent/ca.pem"))
    assert missing.rc != 0 and "ca_path '/nonexistent/ca.pem' does not exist" in missing.result("t")["msg"]


def test_wrong_token_secret_is_401(ansible, sim, uid):
    conn = ansible.connection(api_token_secret="00000000-0000-0000-0000-000000000000")
    run = ansible.run([create_role(uid)], connection=conn)
    res = run.result("t")
    assert run.rc != 0 and res["status"] == 401
    assert "authentication to the Proxmox VE API" in res["msg"] and "(401" in res["msg"]
    assert f"API token {sim.admin_token_id}" in res["msg"]
    assert not role_exists(sim, f"Conn-{uid}")


def test_read_only_token_gets_403_with_the_missing_privilege(ansible, sim, uid):
    user = f"ro{uid}@pve"
    api = sim.api()
    api.access.users.post(userid=user)
    api.access.acl.put(path="/", roles="PVEAuditor", users=user)
    secret = api.access.users(user).token("ro").post(privsep=0)["value"]
    conn = ansible.connection(api_token_id=f"{user}!ro", api_token_secret=secret)
    run = ansible.run([create_role(uid)], connection=conn)
    res = run.result("t")
    assert run.rc != 0 and res["status"] == 403
    assert "lacks the privilege Sys.Modify on /access" in res["msg"], res["msg"]
    assert res["api_calls"] == ["GET /access/roles", "POST /access/roles"]
    assert not role_exists(sim, f"Conn-{uid}")
    assert secret not in run.output


def test_unreachable_host(ansible, uid):
    run = ansible.run([create_role(uid)], connection=ansible.connection(api_port=free_port(), timeout=5))
    res = run.result("t")
    assert run.rc != 0
    assert "cannot reach the Proxmox VE API at https://127.0.0.1:" in res["msg"]
    assert "Connection refused" in res["msg"]


def test_no_credentials(ansible, uid):
    run = ansible.run([create_role(uid)], connection=ansible.connection(api_token_id=None, api_token_secret=None))
    assert run.rc != 0 and "no credentials" in run.result("t")["msg"]


def test_missing_proxmoxer(ansible, uid):
    run = ansible.run([create_role(uid)], extra_args=["-e", "ansible_python_interpreter=/usr/bin/python3"])
    assert run.rc != 0
    assert "Failed to import the required Python library (proxmoxer)" in run.result("t")["msg"]


def test_secrets_never_in_verbose_output(ansible, sim, uid):
    user = f"v{uid}@pve"
    sim.api().access.users.post(userid=user)
    tasks = [
        module_task("pve_token", label="token", token_id=f"{user}!mon", task={"no_log": True, "register": "tok"}),
        {"name": "save", "no_log": True,
         "ansible.builtin.copy": {"content": "{{ tok.secret }}", "dest": str(ansible.tmp / "s"), "mode": "0600"}},
        create_role(uid),
    ]
    run = ansible.run(tasks, verbosity=3, diff=True, json_callback=False)
    assert run.rc == 0, run.output[-3000:]
    secret = (ansible.tmp / "s").read_text()
    assert len(secret) == 36
    assert secret not in run.output
    assert sim.admin_token_secret not in run.output
    assert "VALUE_SPECIFIED_IN_NO_LOG_PARAMETER" in run.output, "the admin secret is masked in the invocation"
