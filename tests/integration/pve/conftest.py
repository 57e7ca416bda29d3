"""Helpers for the pve_* module and proxmox_access role tests.

Every test runs the real ``ansible-playbook`` of the pinned virtualenv, with the
environment of ``scripts/env.sh`` (so ``proxmox_ai.hardening`` resolves to this
checkout), against the Proxmox VE API simulator over HTTPS, and reads the
server's state back through the simulator's admin API client.
"""
from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import uuid

import pytest
import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
_ENV_CACHE: dict = {}


def ansible_env() -> dict:
    """The environment scripts/env.sh sets up, without any PROXMOX_* variable of the caller."""
    if not _ENV_CACHE:
        out = subprocess.run(["bash", "-c", f". '{ROOT}/scripts/env.sh' && env -0"], check=True,
                             capture_output=True).stdout
        for item in out.split(b"\0"):
            if b"=" in item:
                key, value = item.decode().split("=", 1)
                _ENV_CACHE[key] = value
    env = {k: v for k, v in _ENV_CACHE.items() if not k.startswith("PROXMOX_")}
    env.update(ANSIBLE_RETRY_FILES_ENABLED="0", ANSIBLE_NOCOLOR="1", ANSIBLE_FORCE_COLOR="0",
               ANSIBLE_DEPRECATION_WARNINGS="0", ANSIBLE_LOCALHOST_WARNING="0", ANSIBLE_INVENTORY_UNPARSED_WARNING="0")
    return env


@dataclasses.dataclass
class Run:
    rc: int
    stdout: str
    stderr: str
    data: dict | None

    @property
    def output(self) -> str:
        return self.stdout + self.stderr

    def results(self, name: str) -> list[dict]:
        """Results of every task called ``name`` on localhost (json callback only)."""
        found = []
        for play in (self.data or {}).get("plays", []):
            for task in play.get("tasks", []):
                if task["task"]["name"] == name:
                    found.append(task["hosts"]["localhost"])
        return found

    def result(self, name: str) -> dict:
        found = self.results(name)
        assert len(found) == 1, f"task {name!r} ran {len(found)} times\n{self.output[-4000:]}"
        return found[0]

    @property
    def changed(self) -> int:
        return self.data["stats"]["localhost"]["changed"]

    @property
    def failed(self) -> int:
        return self.data["stats"]["localhost"]["failures"]


class Ansible:
    """Writes a playbook into a temporary folder and runs ansible-playbook on it."""

    def __init__(self, tmp_path, sim):
        self.tmp = tmp_path
        self.sim = sim
        self.inventory = tmp_path / "inventory.ini"
        self.inventory.write_text(
            "localhost ansible_connection=local "
            f"ansible_python_interpreter={os.path.join(ROOT, '.venv', 'bin', 'python')}\n")
        self.count = 0

    def connection(self, **override) -> dict:
        """Module options of the simulator's admin token."""
        conn = dict(api_host=self.sim.host, api_port=self.sim.port, api_token_id=self.sim.admin_token_id,
                    api_token_secret=self.sim.admin_token_secret, ca_path=str(self.sim.ca_cert))
        conn.update(override)
        return {k: v for k, v in conn.items() if v is not None}

    def run(self, tasks=None, *, roles=None, check=False, diff=False, verbosity=0, env=None, connection=None,
            play_vars=None, extra_args=(), json_callback=True, timeout=300) -> Run:
        self.count += 1
        play = {"name": "test", "hosts": "localhost", "gather_facts": False}
        if connection is not False:
            play["module_defaults"] = {"group/proxmox_ai.hardening.proxmox": connection or self.connection()}
        if play_vars:
            play["vars"] = play_vars
        if roles:
            play["roles"] = roles
        if tasks:
            play["tasks"] = tasks
        path = self.tmp / f"playbook{self.count}.yml"
        path.write_text(yaml.safe_dump([play], sort_keys=False))
        cmd = [os.path.join(ROOT, ".venv", "bin", "ansible-playbook"), "-i", str(self.inventory), str(path)]
        if check:
            cmd.append("--check")
        if diff:
            cmd.append("--diff")
        if verbosity:
            cmd.append("-" + "v" * verbosity)
        cmd.extend(extra_args)
        run_env = ansible_env()
        run_env["ANSIBLE_LOCAL_TEMP"] = str(self.tmp / "ansible-tmp")
        if json_callback:
            run_env["ANSIBLE_STDOUT_CALLBACK"] = "ansible.posix.json"
        run_env.update(env or {})
        proc = subprocess.run(cmd, cwd=str(self.tmp), env=run_env, capture_output=True, text=True, timeout=timeout,
                              check=False)
        data = None
        if json_callback:
            start = proc.stdout.find("{")
            data = json.loads(proc.stdout[start:]) if start >= 0 else None
        return Run(proc.returncode, proc.stdout, proc.stderr, data)


def module_task(module: str, label: str = "t", task: dict | None = None, **args) -> dict:
    """A task ``label`` calling proxmox_ai.hardening.<module> with ``args``; ``task`` adds task keywords."""
    return {"name": label, f"proxmox_ai.hardening.{module}": args, **(task or {})}


@pytest.fixture
def sim(pve_sim_fresh):
    """The session simulator (tests/support/pvesim.py), reset to its generated state for this test."""
    return pve_sim_fresh


@pytest.fixture
def ansible(tmp_path, sim):  # pylint: disable=redefined-outer-name
    return Ansible(tmp_path, sim)


@pytest.fixture
def uid() -> str:
    """A short unique suffix for object names."""
    return uuid.uuid4().hex[:8]
