"""Generated cluster inventory: nodes, guests (qemu/lxc) and storages.

Everything derives from ``--seed`` so two runs with the same options describe
the same cluster.  Live figures (cpu, mem, net counters...) change every
``REFRESH`` seconds like the 10 s status refresh of a real cluster.
"""
from __future__ import annotations

import hashlib
import random

GIB = 1024 ** 3
MIB = 1024 ** 2
REFRESH = 10

_ROLES = ("web", "db", "app", "cache", "ci", "mail", "dns", "proxy", "k8s", "backup", "mon", "git")
_TAGS = ("prod", "staging", "dev", "web", "db", "critical", "k8s", "legacy")

# (storage id, plugin type, content, shared, size in GiB)
_STORAGES = (
    ("local", "dir", "backup,iso,vztmpl", 0, 100),
    ("local-lvm", "lvmthin", "images,rootdir", 0, 800),
    ("ceph-pool", "rbd", "images,rootdir", 1, 20000),
    ("nfs-backup", "nfs", "backup,iso,vztmpl", 1, 40000),
    ("local-zfs", "zfspool", "images,rootdir", 0, 1800),
    ("cephfs", "cephfs", "backup,iso,vztmpl,snippets", 1, 10000),
)


def node_name(index: int) -> str:
    return f"pve{index + 1}"


def _nodes(rnd: random.Random, count: int, now: int) -> list:
    result = []
    for index in range(count):
        result.append({
            "node": node_name(index), "nodeid": index + 1, "ip": f"10.10.{index // 250}.{index % 250 + 1}",
            "maxcpu": rnd.choice((16, 32, 48, 64, 96)), "maxmem": rnd.choice((128, 256, 384, 512)) * GIB,
            "maxdisk": rnd.choice((100, 200, 480)) * GIB, "level": "", "online": 1,
            "boot": now - rnd.randint(7 * 86400, 120 * 86400),
            "cpu_model": rnd.choice(("AMD EPYC 7543 32-Core Processor", "Intel(R) Xeon(R) Gold 6338 CPU @ 2.00GHz",
                                     "AMD EPYC 9354 32-Core Processor")),
        })
    return result


def _storages(count: int) -> list:
    result = []
    for index in range(min(count, 64)):
        if index < len(_STORAGES):
            sid, plugin, content, shared, size = _STORAGES[index]
        else:
            sid, plugin, content, shared, size = f"data{index - len(_STORAGES) + 1}", "zfspool", "images,rootdir", 0, 2000
        result.append({"storage": sid, "type": plugin, "content": content, "shared": shared, "maxdisk": size * GIB})
    return result


def _guest(rnd: random.Random, vmid: int, node: str, now: int) -> dict:
    kind = "qemu" if rnd.random() < 0.7 else "lxc"
    template = 1 if rnd.random() < 0.02 else 0
    running = 0 if template else (1 if rnd.random() < 0.75 else 0)
    guest = {
        "vmid": vmid, "type": kind, "node": node, "status": "running" if running else "stopped",
        "template": template, "lock": "", "hastate": "started" if (running and rnd.random() < 0.1) else "",
        "started": now - rnd.randint(600, 30 * 86400) if running else 0,
        "config": {
            "name": f"{rnd.choice(_ROLES)}-{vmid}", "cores": rnd.choice((1, 2, 2, 4, 4, 8, 16)),
            "memory": rnd.choice((512, 1024, 2048, 4096, 8192, 16384)),
            "tags": ";".join(sorted(rnd.sample(_TAGS, rnd.choice((0, 0, 1, 2))))),
            "onboot": rnd.choice((0, 1)), "description": "", "disk": rnd.choice((8, 16, 32, 64, 128)) * GIB,
        },
        "snapshots": {}, "parent": "",
    }
    if kind == "lxc":
        guest["config"]["swap"] = 512
    return guest


def generate(seed: int, nodes: int, guests_per_node: int, storages: int, now: int,  # pylint: disable=too-many-arguments
             guests_total: int | None = None) -> dict:
    """The static inventory (what a real cluster keeps in its configuration files).

    Boot times are relative to ``now`` (the first start), everything else depends on the seed only.
    """
    rnd = random.Random(seed)
    result = {"nodes": _nodes(rnd, nodes, now), "storages": _storages(storages), "guests": {}}
    vmid = 100
    for index in range(nodes):
        count = guests_per_node
        if guests_total is not None:
            count = guests_total // nodes + (1 if index < guests_total % nodes else 0)
        for _guest_index in range(count):
            result["guests"][str(vmid)] = _guest(rnd, vmid, node_name(index), now)
            vmid += 1
    return result


class Metrics:
    """Live figures for one refresh interval: the same entity gives the same figures everywhere."""

    def __init__(self, seed: int, now: float):
        self.bucket = int(now // REFRESH)
        self.now = int(self.bucket * REFRESH)
        self.prefix = f"{seed}:{self.bucket}:".encode()

    def _units(self, key: str) -> list:
        digest = hashlib.blake2b(self.prefix + key.encode(), digest_size=24).digest()
        return [int.from_bytes(digest[i:i + 4], "big") / 2 ** 32 for i in range(0, 24, 4)]

    def node(self, node: dict) -> dict:
        u = self._units("node/" + node["node"])
        return {
            "cpu": round(0.02 + 0.58 * u[0], 6), "mem": int(node["maxmem"] * (0.2 + 0.6 * u[1])),
            "disk": int(node["maxdisk"] * (0.1 + 0.4 * u[2])), "uptime": max(0, self.now - node["boot"]),
        }

    def guest(self, guest: dict) -> dict:
        cfg = guest["config"]
        if guest["status"] != "running":
            return {"cpu": 0, "mem": 0, "memhost": 0, "disk": 0 if guest["type"] == "qemu" else int(cfg["disk"] * 0.2),
                    "netin": 0, "netout": 0, "diskread": 0, "diskwrite": 0, "uptime": 0}
        u = self._units(str(guest["vmid"]))
        uptime = max(1, self.now - guest["started"])
        rate = uptime * 1000
        mem = int(cfg["memory"] * MIB * (0.1 + 0.8 * u[0]))
        return {
            "cpu": round(0.5 * u[1], 6), "mem": mem, "memhost": mem + int(50 * MIB * u[2]),
            "disk": 0 if guest["type"] == "qemu" else int(cfg["disk"] * (0.1 + 0.6 * u[3])),
            "netin": int(rate * (1 + 49 * u[4])), "netout": int(rate * (1 + 49 * u[5])),
            "diskread": int(rate * (10 + 190 * u[3])), "diskwrite": int(rate * (10 + 190 * u[2])),
            "uptime": uptime,
        }

    def storage(self, storage: dict, node: str = "") -> dict:
        u = self._units(f"storage/{node}/{storage['storage']}")
        return {"disk": int(storage["maxdisk"] * (0.05 + 0.8 * u[0]))}
