"""The simulator's whole state, its persistence and its asynchronous tasks."""
from __future__ import annotations

import json
import os
import secrets
import tempfile
import threading
import time
import uuid

from . import access, cluster, tls

STATE_VERSION = 1
MAX_TASKS = 2000


class Options:  # pylint: disable=too-few-public-methods,too-many-instance-attributes
    """Command line options that shape the state."""

    def __init__(self, **kwargs):
        self.nodes = kwargs.get("nodes", 3)
        self.guests_per_node = kwargs.get("guests_per_node", 10)
        self.guests = kwargs.get("guests")
        self.storages = kwargs.get("storages", 2)
        self.seed = kwargs.get("seed", 1)
        self.state_file = kwargs.get("state_file")
        self.sans = list(kwargs.get("sans") or [])
        self.task_duration = float(kwargs.get("task_duration", 0.5))
        self.root_password = kwargs.get("root_password")
        self.cluster_name = kwargs.get("cluster_name", "pvesim")
        self.list_nodes_without_audit = bool(kwargs.get("list_nodes_without_audit", False))


def empty_faults() -> dict:
    return {"requests": [], "tasks": [], "latency": 0.0}


def _initial_data(opts: Options, keep: dict | None = None) -> dict:
    """A fresh cluster; ``keep`` carries over CA, secrets and bootstrap credentials."""
    keep = keep or {}
    inventory = cluster.generate(opts.seed, opts.nodes, opts.guests_per_node, opts.storages,
                                 int(keep.get("epoch") or time.time()), opts.guests)
    bootstrap = keep.get("bootstrap") or {
        "admin_token": str(uuid.uuid4()),
        "root_password": opts.root_password or secrets.token_urlsafe(18),
    }
    if opts.root_password:
        bootstrap["root_password"] = opts.root_password
    acc = access.empty_access()
    acc["users"][access.ROOT] = {
        "enable": 1, "expire": 0, "email": "root@pvesim.invalid",
        "password": access.hash_password(bootstrap["root_password"]),
        "tokens": {"admin": {"privsep": 0, "expire": 0, "comment": "pvesim bootstrap token",
                             "hash": access.hash_secret(bootstrap["admin_token"])}},
    }
    return {
        "version": STATE_VERSION,
        "epoch": int(keep.get("epoch") or time.time()),
        "meta": {"seed": opts.seed, "nodes": opts.nodes, "guests_per_node": opts.guests_per_node, "guests": opts.guests,
                 "storages": opts.storages, "cluster_name": opts.cluster_name},
        "secrets": keep.get("secrets") or {"ticket": secrets.token_hex(32), "csrf": secrets.token_hex(32)},
        "ca": keep.get("ca"),
        "server": keep.get("server"),
        "bootstrap": bootstrap,
        "access": acc,
        "cluster": {"nodes": inventory["nodes"], "guests": inventory["guests"], "storages": inventory["storages"],
                    "quorate": 1, "config_version": opts.nodes + 2},
        "tasks": [],
        "task_seq": 0,
        "faults": empty_faults(),
    }


class State:  # pylint: disable=too-many-instance-attributes
    """Holds the data under one lock; every change persists the JSON state file."""

    def __init__(self, opts: Options):
        self.opts = opts
        self.lock = threading.RLock()
        self.generation = 0
        self._stop = threading.Event()
        self._wake = threading.Condition(self.lock)
        data = None
        if opts.state_file and os.path.exists(opts.state_file):
            with open(opts.state_file, encoding="utf-8") as handle:
                data = json.load(handle)
            if data.get("version") != STATE_VERSION:
                raise SystemExit(f"pvesim: state file {opts.state_file} has an unknown version")
        if data is None:
            data = _initial_data(opts)
        self.data = data
        self._ensure_tls()
        self.save()
        self._worker = threading.Thread(target=self._task_loop, name="pvesim-tasks", daemon=True)
        self._worker.start()

    # -- persistence -----------------------------------------------------------
    def _ensure_tls(self) -> None:
        if not self.data.get("ca"):
            self.data["ca"] = tls.make_ca(self.data["meta"]["cluster_name"])
            self.data["server"] = None
        if not tls.server_cert_matches(self.data.get("server"), self.opts.sans):
            self.data["server"] = tls.make_server_cert(self.data["ca"], self.local_node(), self.opts.sans)

    def local_node(self) -> str:
        return self.data["cluster"]["nodes"][0]["node"]

    def touch(self) -> None:
        """Record a change (invalidates caches) and persist it."""
        self.generation += 1
        self.save()

    def save(self) -> None:
        path = self.opts.state_file
        if not path:
            return
        with self.lock:
            folder = os.path.dirname(os.path.abspath(path))
            os.makedirs(folder, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=".pvesim-state-", dir=folder)
            try:
                with os.fdopen(fd, "w", encoding="utf-8") as handle:
                    json.dump(self.data, handle, separators=(",", ":"))
                os.chmod(tmp, 0o600)
                os.replace(tmp, path)
            except BaseException:
                if os.path.exists(tmp):
                    os.unlink(tmp)
                raise

    def reset(self) -> None:
        """Back to the generated cluster; CA, secrets, admin token and root password stay."""
        with self.lock:
            keep = {k: self.data.get(k) for k in ("ca", "server", "secrets", "bootstrap", "epoch")}
            self.data = _initial_data(self.opts, keep)
            self.touch()

    def stop(self) -> None:
        self._stop.set()
        with self.lock:
            self._wake.notify_all()

    # -- lookups -----------------------------------------------------------------
    @property
    def access(self) -> dict:
        return self.data["access"]

    @property
    def nodes(self) -> list:
        return self.data["cluster"]["nodes"]

    def node(self, name: str) -> dict | None:
        for node in self.nodes:
            if node["node"] == name:
                return node
        return None

    def guest(self, vmid) -> dict | None:
        return self.data["cluster"]["guests"].get(str(vmid))

    # -- tasks -------------------------------------------------------------------
    def start_task(self, node: str, kind: str, ident: str, user: str, effect: dict | None,  # pylint: disable=too-many-arguments
                   error: str | None = None, unlock: dict | None = None) -> str:
        """Register a task that runs for ``task_duration`` seconds, then applies ``effect``."""
        with self.lock:
            now = time.time()
            self.data["task_seq"] += 1
            pid = 100000 + self.data["task_seq"]
            pstart = int(now * 100) % 0xFFFFFFFF
            start = int(now)
            upid = f"UPID:{node}:{pid:08X}:{pstart:08X}:{start:08X}:{kind}:{ident}:{user}:"
            fault = self._take_task_fault(kind, ident)
            if fault is not None and error is None:
                error = fault
            task = {
                "upid": upid, "node": node, "pid": pid, "pstart": pstart, "starttime": start, "type": kind,
                "id": ident, "user": user, "status": "running", "end_at": now + self.opts.task_duration,
                "effect": effect if error is None else None, "error": error, "unlock": unlock,
                "log": [f"starting task {kind} for {ident}"],
            }
            tasks = self.data["tasks"]
            tasks.append(task)
            if len(tasks) > MAX_TASKS:
                running = [t for t in tasks if t["status"] == "running"]
                done = [t for t in tasks if t["status"] != "running"]
                self.data["tasks"] = done[-MAX_TASKS // 2:] + running
            self.touch()
            self._wake.notify_all()
            return upid

    def _take_task_fault(self, kind: str, ident: str):
        for fault in self.data["faults"]["tasks"]:
            if fault.get("type") not in (None, "", kind):
                continue
            if fault.get("id") not in (None, "", str(ident)):
                continue
            fault["count"] = int(fault.get("count", 1)) - 1
            if fault["count"] <= 0:
                self.data["faults"]["tasks"].remove(fault)
            return fault.get("exitstatus") or "simulated task failure"
        return None

    def find_task(self, upid: str) -> dict | None:
        for task in reversed(self.data["tasks"]):
            if task["upid"] == upid:
                return task
        return None

    def finish_due_tasks(self) -> None:
        with self.lock:
            now = time.time()
            changed = False
            for task in self.data["tasks"]:
                if task["status"] == "running" and task["end_at"] <= now:
                    self._finish(task, now)
                    changed = True
            if changed:
                self.touch()

    def _finish(self, task: dict, now: float) -> None:
        from . import guests  # pylint: disable=import-outside-toplevel
        error = task.get("error")
        if error is None and task.get("effect"):
            try:
                guests.apply_effect(self, task["effect"])
            except guests.TaskError as exc:
                error = str(exc)
        task["status"] = "stopped"
        task["endtime"] = int(now)
        task["exitstatus"] = "OK" if error is None else error
        task["log"].append(f"TASK ERROR: {error}" if error else "TASK OK")
        unlock = task.get("unlock")
        if unlock:
            guest = self.guest(unlock["vmid"])
            if guest is not None and guest.get("lock") == unlock["lock"]:
                guest["lock"] = ""

    def _task_loop(self) -> None:
        while not self._stop.is_set():
            with self.lock:
                pending = [t["end_at"] for t in self.data["tasks"] if t["status"] == "running"]
                timeout = max(0.01, min(pending) - time.time()) if pending else 1.0
                self._wake.wait(timeout=min(timeout, 1.0))
            self.finish_due_tasks()
