"""One owner for the PostgreSQL application password.

The secrets role refuses, before writing anything, to rotate POSTGRES_PASSWORD
into a database whose postgresql role would set the inventory's password back
on its next run (postgresql_app_password_update: always). The role runs for
real (ansible-playbook, connection local, .env delivery into a temporary folder).
"""
from __future__ import annotations

import grp
import os
import pwd
import subprocess

import pytest
import yaml

pytestmark = [pytest.mark.slow]

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))


def _run(tmp_path, host_vars: dict):
    env = {k: v for k, v in os.environ.items() if not k.startswith("PROXMOX_")}
    env.update(ANSIBLE_COLLECTIONS_PATH=os.path.join(ROOT, "build", "collections"), ANSIBLE_NOCOLOR="1",
               ANSIBLE_LOCALHOST_WARNING="0", ANSIBLE_INVENTORY_UNPARSED_WARNING="0",
               ANSIBLE_RETRY_FILES_ENABLED="0")
    role_vars = {
        "secrets_delivery": "env",
        "secrets_env_file": str(tmp_path / "stack" / ".env"),
        "secrets_env_owner": pwd.getpwuid(os.getuid()).pw_name,
        "secrets_env_group": grp.getgrgid(os.getgid()).gr_name,
        "secrets_compose_file": str(tmp_path / "stack" / "docker-compose.yml"),
        "secrets_metadata_file": str(tmp_path / "state" / "metadata.json"),
        "secrets_postgresql_update": True,
        "secrets_values": {"PROXMOX_TOKEN_VALUE": "tok-" + "a1B2" * 8},
    }
    play = [{"name": "secrets", "hosts": "localhost", "gather_facts": False,
             "roles": [{"role": "proxmox_ai.hardening.secrets", "vars": role_vars}]}]
    (tmp_path / "play.yml").write_text(yaml.safe_dump(play, sort_keys=False))
    inventory = {"all": {"hosts": {"localhost": dict(
        ansible_connection="local", ansible_python_interpreter=os.path.join(ROOT, ".venv", "bin", "python"),
        **host_vars)}}}
    (tmp_path / "inventory.yml").write_text(yaml.safe_dump(inventory))
    return subprocess.run([os.path.join(ROOT, ".venv", "bin", "ansible-playbook"), "-i",
                           str(tmp_path / "inventory.yml"), str(tmp_path / "play.yml")], cwd=str(tmp_path),
                          env=env, capture_output=True, text=True, timeout=600, check=False)


def test_rotation_into_a_database_whose_role_sets_the_password_back_is_refused(tmp_path):
    proc = _run(tmp_path, {"postgresql_app_password_update": "always"})
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0, out[-3000:]
    assert "postgresql_app_password_update: on_create" in out and "POSTGRES_PASSWORD would get a new value" in out
    # refused before anything was written
    assert not (tmp_path / "stack" / ".env").exists()
    assert not (tmp_path / "state" / "metadata.json").exists()
