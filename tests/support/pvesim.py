"""The Proxmox VE API simulator (tools/pvesim) as pytest fixtures.

``pve_sim`` (session scope) starts ``python -m tools.pvesim`` on a free
loopback port with its own CA, state file and admin token, waits until it
answers over HTTPS, and stops it at the end.  ``pve_sim_fresh`` (function
scope) is the same simulator reset to its generated state before the test
(users, roles, ACLs, guests, tasks and faults; CA, admin token and root
password stay).  ``pvesim_factory`` starts extra, isolated simulators with
their own options (``factory(nodes=64, guests_per_node=10)``).

The yielded object has ``host``, ``port``, ``url`` (``https://127.0.0.1:PORT/api2/json``),
``ca_cert`` (path), ``admin_token_id`` (``root@pam!admin``), ``admin_token_secret``,
``root_password``, ``state_file``, and the methods ``api()`` (a proxmoxer
ProxmoxAPI with the admin token, verifying against the CA), ``api_as(...)``,
``inject(**faults)``, ``clear_faults()``, ``reset()``, ``edit_guest(...)``,
``finish_tasks()``, ``wait_task(upid)``, ``restart()`` and ``stop()``.
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

import pytest
import requests

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class PveSim:  # pylint: disable=too-many-instance-attributes
    """A running simulator process and the credentials to talk to it."""

    admin_token_id = "root@pam!admin"
    host = "127.0.0.1"

    def __init__(self, workdir: str, nodes: int = 3, guests_per_node: int = 10, storages: int = 2, seed: int = 1,  # pylint: disable=too-many-arguments
                 task_duration: float = 0.2, guests: int | None = None, extra_args=()):
        self.workdir = workdir
        self.port = free_port()
        self.ca_cert = os.path.join(workdir, "pve-root-ca.pem")
        self.token_file = os.path.join(workdir, "admin-token")
        self.password_file = os.path.join(workdir, "root-password")
        self.state_file = os.path.join(workdir, "state.json")
        self.log_file = os.path.join(workdir, "pvesim.log")
        self.args = [
            "--listen", self.host, "--port", str(self.port), "--nodes", str(nodes),
            "--guests-per-node", str(guests_per_node), "--storages", str(storages), "--seed", str(seed),
            "--state-file", self.state_file, "--ca-cert-out", self.ca_cert, "--admin-token-out", self.token_file,
            "--root-password-out", self.password_file, "--task-duration", str(task_duration),
            *(["--guests", str(guests)] if guests is not None else []), *extra_args,
        ]
        self.proc: subprocess.Popen | None = None
        self.admin_token_secret = ""
        self.root_password = ""
        self.start()

    @property
    def url(self) -> str:
        return f"https://{self.host}:{self.port}/api2/json"

    @property
    def base(self) -> str:
        return f"https://{self.host}:{self.port}"

    # -- process ---------------------------------------------------------------
    def start(self, timeout: float = 60.0) -> None:
        env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
        with open(self.log_file, "ab") as log:
            self.proc = subprocess.Popen(  # pylint: disable=consider-using-with
                [sys.executable, "-m", "tools.pvesim", *self.args], cwd=ROOT, env=env, stdout=log,
                stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"pvesim exited with {self.proc.returncode}: {self.log()}")
            if os.path.exists(self.token_file) and os.path.exists(self.ca_cert) and self._answers():
                break
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"pvesim did not answer within {timeout}s: {self.log()}")
            time.sleep(0.1)
        with open(self.token_file, encoding="utf-8") as handle:
            self.admin_token_secret = handle.read().strip().split("=", 1)[1]
        with open(self.password_file, encoding="utf-8") as handle:
            self.root_password = handle.read().strip()

    def _answers(self) -> bool:
        try:
            requests.get(f"{self.url}/version", verify=self.ca_cert, timeout=2)
        except (requests.ConnectionError, requests.Timeout, OSError):
            return False
        return True

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self.proc = None

    def restart(self) -> None:
        """Stop and start again on the same port with the same state file."""
        self.stop()
        self.start()

    def log(self) -> str:
        try:
            with open(self.log_file, encoding="utf-8", errors="replace") as handle:
                return handle.read()[-4000:]
        except OSError:
            return ""

    # -- clients ---------------------------------------------------------------
    def api(self, **kwargs):
        """proxmoxer.ProxmoxAPI authenticated with the admin token, verifying against the CA."""
        return self.api_as(token_id=self.admin_token_id, token_secret=self.admin_token_secret, **kwargs)

    def api_as(self, token_id: str | None = None, token_secret: str | None = None, user: str | None = None,
               password: str | None = None, **kwargs):
        """proxmoxer.ProxmoxAPI for a token (``user@realm!name`` + secret) or a user/password."""
        from proxmoxer import ProxmoxAPI  # pylint: disable=import-outside-toplevel
        options = {"port": self.port, "verify_ssl": self.ca_cert, "timeout": 15}
        options.update(kwargs)
        if token_id:
            user_part, name = token_id.split("!", 1)
            return ProxmoxAPI(self.host, user=user_part, token_name=name, token_value=token_secret, **options)
        return ProxmoxAPI(self.host, user=user, password=password, **options)

    def session(self) -> requests.Session:
        """A requests session with the admin token header and CA verification."""
        sess = requests.Session()
        sess.trust_env = False  # REQUESTS_CA_BUNDLE would otherwise replace the simulator's CA
        sess.verify = self.ca_cert
        sess.headers["Authorization"] = f"PVEAPIToken={self.admin_token_id}={self.admin_token_secret}"
        return sess

    # -- simulator control -----------------------------------------------------
    def control(self, method: str, path: str, payload: dict | None = None):
        resp = self.session().request(method, f"{self.base}/pvesim/{path}",
                                      data=json.dumps(payload) if payload is not None else None,
                                      headers={"Content-Type": "application/json"}, timeout=30)
        resp.raise_for_status()
        return resp.json()["data"]

    def inject(self, **faults):
        """Add faults: ``node=, online=``; ``quorate=``; ``fail={...}``; ``task={...}``; ``latency=``.

        See tools/pvesim/README.md ("Fault injection").
        """
        return self.control("POST", "faults", faults)

    def clear_faults(self):
        return self.control("DELETE", "faults")

    def reset(self):
        """Back to the generated cluster; CA, admin token and root password stay."""
        return self.control("POST", "reset", {})

    def edit_guest(self, vmid: int, **fields):
        return self.control("POST", "guest", dict(fields, vmid=vmid))

    def finish_tasks(self):
        return self.control("POST", "tasks", {"finish": True})

    def wait_task(self, upid: str, timeout: float = 30.0, api=None) -> dict:
        """Poll /nodes/{node}/tasks/{upid}/status until the task stopped; returns the status."""
        api = api or self.api()
        node = upid.split(":")[1]
        deadline = time.monotonic() + timeout
        while True:
            status = api.nodes(node).tasks(upid).status.get()
            if status["status"] == "stopped":
                return status
            if time.monotonic() > deadline:
                raise TimeoutError(f"task {upid} still running after {timeout}s")
            time.sleep(0.05)


def start_sim(**options) -> PveSim:
    workdir = tempfile.mkdtemp(prefix="pai-pvesim-")
    try:
        return PveSim(workdir, **options)
    except BaseException:
        shutil.rmtree(workdir, ignore_errors=True)
        raise


def stop_sim(sim: PveSim) -> None:
    sim.stop()
    shutil.rmtree(sim.workdir, ignore_errors=True)


@pytest.fixture(scope="session")
def pve_sim():
    sim = start_sim()
    try:
        yield sim
    finally:
        stop_sim(sim)


@pytest.fixture()
def pve_sim_fresh(pve_sim):  # pylint: disable=redefined-outer-name
    """The session simulator, reset to its generated state (and without faults) for this test."""
    pve_sim.reset()
    yield pve_sim
    pve_sim.clear_faults()


@pytest.fixture()
def pvesim_factory():
    """Start extra isolated simulators: ``sim = pvesim_factory(nodes=2, ...)``; stopped after the test."""
    started = []

    def factory(**options) -> PveSim:
        sim = start_sim(**options)
        started.append(sim)
        return sim

    yield factory
    for sim in started:
        stop_sim(sim)
