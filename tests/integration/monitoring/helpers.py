"""Helpers of the monitoring tests (imported by conftest.py and the tests)."""
from __future__ import annotations

import dataclasses
import os
import shutil
import subprocess
import sys
import time

import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
PKG_SRC = os.path.join(ROOT, "roles", "monitoring", "files", "proxmox_ai_collector")
SANITIZE = os.path.join(ROOT, "plugins", "module_utils", "_sanitize.py")
SECRET_POLICY = os.path.join(ROOT, "plugins", "module_utils", "_secret_policy.py")
MIGRATIONS = os.path.join(ROOT, "roles", "postgresql", "files", "migrations")


def install_collector(dest: str) -> str:
    """The role's layout: <dest>/proxmox_ai_collector/ with _sanitize.py and _secret_policy.py inside."""
    target = os.path.join(dest, "proxmox_ai_collector")
    shutil.copytree(PKG_SRC, target, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy2(SANITIZE, os.path.join(target, "_sanitize.py"))
    shutil.copy2(SECRET_POLICY, os.path.join(target, "_secret_policy.py"))
    return dest


@dataclasses.dataclass
class MonDb:
    server: object
    name: str

    def connect(self):
        conn = self.server.connect(self.name)
        conn.autocommit = True
        return conn

    def query(self, sql: str, params=None) -> list:
        conn = self.connect()
        try:
            with conn.cursor() as cur:
                cur.execute(sql, params)
                return cur.fetchall() if cur.description else []
        finally:
            conn.close()

    def scalar(self, sql: str, params=None):
        return self.query(sql, params)[0][0]

    def settings(self, **extra) -> dict:
        """The ``database`` section of a collector configuration (TLS verified against the test CA)."""
        data = {"host": "localhost", "port": self.server.port, "dbname": self.name, "user": self.server.user,
                "password": self.server.password, "sslmode": "verify-full", "sslrootcert": self.server.ssl_ca,
                "connect_timeout": 2}
        data.update(extra)
        return data


def write_nodes_file(path: str, sim, name: str = "pvesim", **extra) -> str:
    """The node configuration the proxmox_access role writes, pointing at the simulator's admin token."""
    user, token = sim.admin_token_id.split("!", 1)
    entry = {"name": name, "host": sim.host, "port": sim.port, "user": user, "token_name": token,
             "token_value": sim.admin_token_secret, "verify_ssl": True, "ca_cert": sim.ca_cert}
    entry.update(extra)
    with open(path, "w", encoding="utf-8") as handle:
        yaml.safe_dump({"nodes": [entry]}, handle)
    os.chmod(path, 0o600)
    return path


def write_config(folder: str, sim, db: MonDb, **overrides) -> str:
    """A collector.yml for ``sim`` and ``db``; keyword arguments replace top-level sections."""
    nodes = write_nodes_file(os.path.join(folder, "proxmox-nodes.yml"), sim) if sim is not None else \
        os.path.join(folder, "proxmox-nodes.yml")
    data = {"nodes_file": nodes, "poll_interval": 1, "request_timeout": 5, "retries": 1, "backoff_initial": 0.1,
            "backoff_max": 0.5, "database": db.settings() if db is not None else {}, "log_level": "DEBUG"}
    data.update(overrides)
    path = os.path.join(folder, "collector.yml")
    with open(path, "w", encoding="utf-8") as handle:
        yaml.safe_dump(data, handle)
    os.chmod(path, 0o600)
    return path


def wait_for(predicate, timeout: float = 30.0, interval: float = 0.2, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


def run_cli(pkg: str, *args, timeout: float = 60, env=None) -> subprocess.CompletedProcess:
    environ = dict(os.environ, PYTHONPATH=pkg)
    environ.update(env or {})
    return subprocess.run([sys.executable, "-m", "proxmox_ai_collector", *args], capture_output=True, text=True,
                          timeout=timeout, env=environ, check=False)


class RequestCounter:
    """Server-side count of API requests by path, from the simulator's own fault bookkeeping.

    Zero-second ``delay`` faults with a large count match every request; what
    the server decremented is what it served.  Order matters: the first
    matching fault takes the request, the catch-all comes last.
    """

    BIG = 100000

    def __init__(self, sim, paths=("/cluster/status", "/cluster/resources")):
        self.sim = sim
        self.patterns = [f"^{p}$" for p in paths] + ["."]
        for pattern in self.patterns:
            sim.inject(fail={"count": self.BIG, "mode": "delay", "delay": 0, "path": pattern})

    def counts(self) -> dict:
        """{pattern: requests served since creation}; ``"."`` is every other API path."""
        left = {f.get("path"): f["count"] for f in self.sim.control("GET", "faults")["requests"]
                if f.get("mode") == "delay"}
        return {p.strip("^$"): self.BIG - left.get(p, 0) for p in self.patterns}


def ansible_env(**extra) -> dict:
    """scripts/env.sh's environment (this checkout as proxmox_ai.hardening) plus ``extra``."""
    out = subprocess.run(["bash", "-c", f". '{ROOT}/scripts/env.sh' && env -0"], check=True,
                         capture_output=True).stdout
    env = {}
    for item in out.split(b"\0"):
        if b"=" in item:
            key, value = item.decode().split("=", 1)
            env[key] = value
    env.update(ANSIBLE_RETRY_FILES_ENABLED="0", ANSIBLE_NOCOLOR="1", ANSIBLE_DEPRECATION_WARNINGS="0",
               ANSIBLE_LOCALHOST_WARNING="0", ANSIBLE_INVENTORY_UNPARSED_WARNING="0", ANSIBLE_HOST_KEY_CHECKING="0")
    env.update(extra)
    return env


def action_log_env(db: "MonDb", spool: str, **extra) -> dict:
    """Environment that enables the action_log callback against ``db``."""
    env = {
        "ANSIBLE_CALLBACKS_ENABLED": "proxmox_ai.hardening.action_log",
        "PAI_ACTION_LOG_DB_HOST": "localhost", "PAI_ACTION_LOG_DB_PORT": str(db.server.port),
        "PAI_ACTION_LOG_DB_NAME": db.name, "PAI_ACTION_LOG_DB_USER": db.server.user,
        "PAI_ACTION_LOG_DB_PASSWORD": db.server.password, "PAI_ACTION_LOG_DB_SSLMODE": "verify-full",
        "PAI_ACTION_LOG_DB_SSLROOTCERT": db.server.ssl_ca, "PAI_ACTION_LOG_SPOOL": spool,
        "PAI_ACTION_LOG_CONNECT_TIMEOUT": "2",
    }
    env.update(extra)
    return env
