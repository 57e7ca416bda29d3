"""Simulator-only control endpoints under ``/pvesim/`` (root@pam only, never part of the PVE API).

``GET  /pvesim/status``   summary (nodes, guests, quorum, faults)
``POST /pvesim/reset``    back to the generated cluster (CA, admin token and root password stay)
``GET  /pvesim/faults``   the active faults
``POST /pvesim/faults``   add faults, any combination of:
    ``{"node": "pve2", "online": false}``   node offline (or back online)
    ``{"quorate": false}``                    cluster loses (or regains) quorum
    ``{"fail": {"count": 2, "status": 500, "message": "...", "method": "GET", "path": "^/cluster",
               "mode": "error" | "timeout" | "drop" | "delay", "delay": 10}}``
                                              the next N matching API requests fail
    ``{"task": {"type": "qmsnapshot", "id": "100", "count": 1, "exitstatus": "snapshot failed"}}``
                                              the next N matching tasks end with that error
    ``{"latency": 0.2}``                      extra seconds before every API answer
``DELETE /pvesim/faults`` clear all faults, every node online, quorum back
``POST /pvesim/guest``    ``{"vmid": 100, "status": "running", "lock": "", "config": {"name": "x"}}`` edit a guest
``POST /pvesim/tasks``    ``{"finish": true}`` complete every running task now
"""
from __future__ import annotations

import time

from .routes import ApiError
from .state import empty_faults

MODES = ("error", "timeout", "drop", "delay")


def _bad(message: str):
    raise ApiError(400, message + "\n")


def handle(sim, method: str, path: str, payload: dict):  # pylint: disable=too-many-return-statements
    state = sim.state
    with state.lock:
        if (method, path) == ("GET", "/pvesim/status"):
            return status(state)
        if (method, path) == ("POST", "/pvesim/reset"):
            state.reset()
            return status(state)
        if (method, path) == ("GET", "/pvesim/faults"):
            return faults(state)
        if (method, path) == ("POST", "/pvesim/faults"):
            add_faults(state, payload)
            return faults(state)
        if (method, path) == ("DELETE", "/pvesim/faults"):
            state.data["faults"] = empty_faults()
            for node in state.nodes:
                node["online"] = 1
            state.data["cluster"]["quorate"] = 1
            state.touch()
            return faults(state)
        if (method, path) == ("POST", "/pvesim/guest"):
            return edit_guest(state, payload)
        if (method, path) == ("POST", "/pvesim/tasks"):
            if payload.get("finish"):
                for task in state.data["tasks"]:
                    if task["status"] == "running":
                        task["end_at"] = 0
                state.finish_due_tasks()
            return {"running": sum(1 for t in state.data["tasks"] if t["status"] == "running")}
    raise ApiError(501, f"Method '{method} {path}' not implemented")


def status(state) -> dict:
    data = state.data
    return {"nodes": {n["node"]: bool(n["online"]) for n in state.nodes},
            "guests": len(data["cluster"]["guests"]), "storages": [s["storage"] for s in data["cluster"]["storages"]],
            "quorate": bool(data["cluster"]["quorate"]), "faults": faults(state), "generation": state.generation,
            "time": int(time.time())}


def faults(state) -> dict:
    data = state.data
    result = dict(data["faults"])
    result["offline_nodes"] = [n["node"] for n in state.nodes if not n["online"]]
    result["quorate"] = bool(data["cluster"]["quorate"])
    return result


def add_faults(state, payload: dict) -> None:  # pylint: disable=too-many-branches
    if not isinstance(payload, dict) or not payload:
        _bad("expected a JSON object with node/online, quorate, fail, task or latency")
    known = {"node", "online", "quorate", "fail", "task", "latency"}
    unknown = set(payload) - known
    if unknown:
        _bad(f"unknown fault keys: {', '.join(sorted(unknown))}")
    if "node" in payload:
        node = state.node(payload["node"])
        if node is None:
            _bad(f"no such node '{payload['node']}'")
        node["online"] = 1 if payload.get("online", False) else 0
    if "quorate" in payload:
        state.data["cluster"]["quorate"] = 1 if payload["quorate"] else 0
    if "fail" in payload:
        fault = dict(payload["fail"])
        fault.setdefault("count", 1)
        fault.setdefault("mode", "error")
        if fault["mode"] not in MODES:
            _bad(f"fail.mode must be one of {', '.join(MODES)}")
        state.data["faults"]["requests"].append(fault)
    if "task" in payload:
        fault = dict(payload["task"])
        fault.setdefault("count", 1)
        if "id" in fault:
            fault["id"] = str(fault["id"])
        state.data["faults"]["tasks"].append(fault)
    if "latency" in payload:
        state.data["faults"]["latency"] = float(payload["latency"])
    state.touch()


def edit_guest(state, payload: dict) -> dict:
    guest = state.guest(payload.get("vmid"))
    if guest is None:
        _bad(f"no such guest '{payload.get('vmid')}'")
    for key in ("status", "lock", "hastate", "template", "node"):
        if key in payload:
            guest[key] = payload[key]
    if payload.get("status") == "running" and not guest.get("started"):
        guest["started"] = int(time.time())
    if payload.get("status") == "stopped":
        guest["started"] = 0
    guest["config"].update(payload.get("config") or {})
    state.touch()
    return guest
