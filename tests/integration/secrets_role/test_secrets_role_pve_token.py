"""The secrets role's Proxmox VE token consumer, against the API simulator.

The role runs for real (ansible-playbook, connection local, .env delivery into
a temporary folder): it gets the token secret from Proxmox VE with
proxmox_ai.hardening.pve_token, delivers it, keeps it on the next run, and on
rotation regenerates it so that the old secret stops working and the new one
authenticates. No secret appears in the -v output.
"""
from __future__ import annotations

import grp
import json
import os
import pwd
import subprocess

import pytest
import yaml

pytestmark = [pytest.mark.pvesim, pytest.mark.slow]

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
TOKEN_ID = "proxmox-ai@pam!secrets-test"


def _env():
    env = {k: v for k, v in os.environ.items() if not k.startswith("PROXMOX_")}
    env.update(ANSIBLE_COLLECTIONS_PATH=os.path.join(ROOT, "build", "collections"), ANSIBLE_NOCOLOR="1",
               ANSIBLE_LOCALHOST_WARNING="0", ANSIBLE_INVENTORY_UNPARSED_WARNING="0",
               ANSIBLE_STDOUT_CALLBACK="ansible.posix.json", ANSIBLE_RETRY_FILES_ENABLED="0")
    return env


def _parse_env(path):
    values = {}
    with open(path, encoding="utf-8") as handle:
        for line in handle:
            if "=" in line and not line.startswith("#"):
                key, value = line.rstrip("\n").split("=", 1)
                values[key] = value
    return values


class RoleRun:
    def __init__(self, tmp_path, sim):
        self.tmp = tmp_path
        self.sim = sim
        self.env_file = tmp_path / "stack" / ".env"
        self.meta = tmp_path / "state" / "metadata.json"
        self.count = 0

    def __call__(self, **extra):
        self.count += 1
        user = pwd.getpwuid(os.getuid()).pw_name
        group = grp.getgrgid(os.getgid()).gr_name
        role_vars = {
            "secrets_delivery": "env",
            "secrets_env_file": str(self.env_file),
            "secrets_env_owner": user,
            "secrets_env_group": group,
            "secrets_compose_file": str(self.tmp / "stack" / "docker-compose.yml"),
            "secrets_metadata_file": str(self.meta),
            "secrets_pve_token_rotate": True,
            "secrets_pve_token_id": TOKEN_ID,
            "secrets_pve_token_api": {"api_host": self.sim.host, "api_port": self.sim.port,
                                      "api_token_id": self.sim.admin_token_id,
                                      "api_token_secret": self.sim.admin_token_secret,
                                      "ca_path": str(self.sim.ca_cert)},
        }
        role_vars.update(extra)
        play = [{"name": "secrets", "hosts": "localhost", "gather_facts": False,
                 "roles": [{"role": "proxmox_ai.hardening.secrets", "vars": role_vars}]}]
        path = self.tmp / f"play{self.count}.yml"
        path.write_text(yaml.safe_dump(play, sort_keys=False))
        inventory = self.tmp / "inventory.ini"
        inventory.write_text("localhost ansible_connection=local ansible_python_interpreter=%s\n"
                             % os.path.join(ROOT, ".venv", "bin", "python"))
        proc = subprocess.run([os.path.join(ROOT, ".venv", "bin", "ansible-playbook"), "-v", "-i", str(inventory),
                               str(path)], cwd=str(self.tmp), env=_env(), capture_output=True, text=True,
                              timeout=900, check=False)
        assert proc.returncode == 0, proc.stdout[-6000:] + proc.stderr[-3000:]
        data = json.loads(proc.stdout[proc.stdout.index("{"):])
        return data, proc.stdout + proc.stderr


def _authenticates(sim, secret):
    from proxmoxer import AuthenticationError  # pylint: disable=import-outside-toplevel

    try:
        sim.api_as(token_id=TOKEN_ID, token_secret=secret).version.get()
    except AuthenticationError:
        return False
    except Exception as exc:  # pylint: disable=broad-except  # 403 still proves the secret was accepted
        return "401" not in str(exc)
    return True


def test_token_secret_is_fetched_kept_and_rotated(tmp_path, pve_sim_fresh):
    sim = pve_sim_fresh
    api = sim.api()
    api.access.users.post(userid="proxmox-ai@pam", comment="secrets role test")
    first_secret = api.access.users("proxmox-ai@pam").token("secrets-test").post(privsep=1)["value"]
    run = RoleRun(tmp_path, sim)

    # First run: the token secret is unknown on the host, so the role regenerates it and delivers it.
    _data, output = run()
    values = _parse_env(run.env_file)
    token = values["PROXMOX_TOKEN_VALUE"]
    assert token != first_secret
    assert _authenticates(sim, token)
    assert not _authenticates(sim, first_secret)
    assert oct(os.stat(run.env_file).st_mode & 0o777) == "0o600"
    meta = json.loads(run.meta.read_text())
    assert "PROXMOX_TOKEN_VALUE" in meta["secrets"] and token not in run.meta.read_text()
    assert not [v for v in values.values() if v in output]

    # Second run: nothing changes, the token keeps working.
    data, output = run()
    assert data["stats"]["localhost"]["changed"] == 0
    assert _parse_env(run.env_file) == values
    assert _authenticates(sim, token)

    # Rotation of the token only: the old secret stops working, the new one authenticates, the rest is kept.
    _data, output = run(secrets_rotate_only=["PROXMOX_TOKEN_VALUE"])
    rotated = _parse_env(run.env_file)
    assert rotated["PROXMOX_TOKEN_VALUE"] != token
    assert {k: v for k, v in rotated.items() if k != "PROXMOX_TOKEN_VALUE"} == \
        {k: v for k, v in values.items() if k != "PROXMOX_TOKEN_VALUE"}
    assert _authenticates(sim, rotated["PROXMOX_TOKEN_VALUE"])
    assert not _authenticates(sim, token)
    assert not [v for v in list(rotated.values()) + [token] if v in output]
