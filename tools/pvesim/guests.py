"""Guest power state and snapshots: what a finished task does to a guest."""
from __future__ import annotations

import copy
import hashlib
import json
import time

# task types per guest type
TASK_TYPES = {
    "qemu": {"start": "qmstart", "stop": "qmstop", "shutdown": "qmshutdown", "reboot": "qmreboot",
             "snapshot": "qmsnapshot", "delsnapshot": "qmdelsnapshot", "rollback": "qmrollback"},
    "lxc": {"start": "vzstart", "stop": "vzstop", "shutdown": "vzshutdown", "reboot": "vzreboot",
            "snapshot": "vzsnapshot", "delsnapshot": "vzdelsnapshot", "rollback": "vzrollback"},
}


class TaskError(Exception):
    """A task that ends with an error exit status."""


def kind_label(guest: dict) -> str:
    return "VM" if guest["type"] == "qemu" else "CT"


def config_path(node: str, kind: str, vmid) -> str:
    folder = "qemu-server" if kind == "qemu" else "lxc"
    return f"nodes/{node}/{folder}/{vmid}.conf"


def _power(guest: dict, action: str, now: int) -> None:
    if action == "start":
        if guest["status"] == "running":
            raise TaskError(f"{kind_label(guest)} {guest['vmid']} already running")
        guest["status"], guest["started"] = "running", now
    elif action in ("stop", "shutdown"):
        guest["status"], guest["started"] = "stopped", 0
    elif action == "reboot":
        if guest["status"] != "running":
            raise TaskError(f"{kind_label(guest)} {guest['vmid']} not running")
        guest["started"] = now


def _snapshot(guest: dict, effect: dict, now: int) -> None:
    name = effect["snapname"]
    if name in guest["snapshots"]:
        raise TaskError(f"snapshot name '{name}' already used")
    snap = {"name": name, "description": effect.get("description", ""), "snaptime": now,
            "parent": guest.get("parent", ""), "config": copy.deepcopy(guest["config"]), "status": guest["status"]}
    if guest["type"] == "qemu":
        snap["vmstate"] = int(bool(effect.get("vmstate")) and guest["status"] == "running")
    guest["snapshots"][name] = snap
    guest["parent"] = name


def _delsnapshot(guest: dict, effect: dict) -> None:
    name = effect["snapname"]
    snap = guest["snapshots"].get(name)
    if snap is None:
        raise TaskError(f"snapshot '{name}' does not exist")
    for other in guest["snapshots"].values():
        if other.get("parent") == name:
            other["parent"] = snap.get("parent", "")
    if guest.get("parent") == name:
        guest["parent"] = snap.get("parent", "")
    del guest["snapshots"][name]


def _rollback(guest: dict, effect: dict, now: int) -> None:
    name = effect["snapname"]
    snap = guest["snapshots"].get(name)
    if snap is None:
        raise TaskError(f"snapshot '{name}' does not exist")
    guest["config"] = copy.deepcopy(snap["config"])
    guest["parent"] = name
    # A rollback stops the guest; a qemu snapshot with RAM state resumes it, 'start' starts it.
    if snap.get("vmstate") or effect.get("start"):
        guest["status"], guest["started"] = "running", now
    else:
        guest["status"], guest["started"] = "stopped", 0


def apply_effect(state, effect: dict) -> None:
    guest = state.guest(effect["vmid"])
    if guest is None:
        raise TaskError(f"Configuration file '{config_path(effect['node'], effect['kind'], effect['vmid'])}' "
                        "does not exist")
    action = effect["action"]
    now = int(time.time())
    if action in ("start", "stop", "shutdown", "reboot"):
        _power(guest, action, now)
    elif action == "snapshot":
        _snapshot(guest, effect, now)
    elif action == "delsnapshot":
        _delsnapshot(guest, effect)
    elif action == "rollback":
        _rollback(guest, effect, now)
    else:
        raise TaskError(f"unknown action {action}")


def config_digest(guest: dict) -> str:
    return hashlib.sha1(json.dumps(guest["config"], sort_keys=True).encode()).hexdigest()


def snapshot_list(guest: dict) -> list:
    """GET .../snapshot: every snapshot plus the 'current' entry."""
    result = []
    for snap in sorted(guest["snapshots"].values(), key=lambda s: (s["snaptime"], s["name"])):
        entry = {"name": snap["name"], "description": snap.get("description", ""), "snaptime": snap["snaptime"]}
        if snap.get("parent"):
            entry["parent"] = snap["parent"]
        if guest["type"] == "qemu":
            entry["vmstate"] = snap.get("vmstate", 0)
        result.append(entry)
    current = {"name": "current", "description": "You are here!", "digest": config_digest(guest)}
    if guest.get("parent"):
        current["parent"] = guest["parent"]
    if guest["type"] == "qemu":
        current["running"] = 1 if guest["status"] == "running" else 0
    result.append(current)
    return result


def config_view(guest: dict) -> dict:
    """GET .../config: a realistic subset of the real keys."""
    cfg = guest["config"]
    vmid = guest["vmid"]
    gib = cfg["disk"] // (1024 ** 3)
    if guest["type"] == "qemu":
        result = {
            "name": cfg["name"], "cores": cfg["cores"], "sockets": 1, "memory": str(cfg["memory"]),
            "ostype": "l26", "scsihw": "virtio-scsi-single", "boot": "order=scsi0;net0",
            "scsi0": f"local-lvm:vm-{vmid}-disk-0,iothread=1,size={gib}G",
            "net0": f"virtio=BC:24:11:{vmid % 256:02X}:{(vmid // 256) % 256:02X}:01,bridge=vmbr0",
            "onboot": cfg["onboot"], "vmgenid": f"00000000-0000-4000-8000-{vmid:012d}",
            "smbios1": f"uuid=00000000-0000-4000-8000-{vmid:012d}", "digest": config_digest(guest),
        }
    else:
        result = {
            "hostname": cfg["name"], "cores": cfg["cores"], "memory": cfg["memory"], "swap": cfg.get("swap", 512),
            "ostype": "debian", "arch": "amd64", "unprivileged": 1,
            "rootfs": f"local-lvm:vm-{vmid}-disk-0,size={gib}G",
            "net0": "name=eth0,bridge=vmbr0,ip=dhcp,type=veth", "onboot": cfg["onboot"],
            "digest": config_digest(guest),
        }
    if cfg.get("tags"):
        result["tags"] = cfg["tags"]
    if cfg.get("description"):
        result["description"] = cfg["description"]
    if guest.get("template"):
        result["template"] = 1
    if guest.get("lock"):
        result["lock"] = guest["lock"]
    if guest.get("parent"):
        result["parent"] = guest["parent"]
    return result
