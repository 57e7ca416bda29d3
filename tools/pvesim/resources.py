"""/cluster/resources with precomputed JSON fragments.

Every entry is kept as ready JSON bytes.  A background thread rebuilds them
when the 10 s refresh interval of a real cluster rolls over; a change of the
state (a guest stopped, a lock taken) re-serializes only the entries whose
data changed.  A caller who may see everything gets the joined answer (gzip
included) as cached bytes; everybody else gets the fragments of the entries
they may audit joined together, which stays fast for 10,000 guests.
"""
from __future__ import annotations

import gzip
import json
import threading
import time

from .cluster import MIB, REFRESH, Metrics

SDN_ZONE = "localnetwork"


def _frag(entry: dict) -> bytes:
    return json.dumps(entry, separators=(",", ":")).encode()


class RawBody(bytes):
    """A complete JSON answer body (``{"data": ...}``) produced without json.dumps."""

    gzipped: bytes | None = None


class Snapshot:
    """One build: fragments per kind plus the joined answers per type filter."""

    def __init__(self, key, vms, nodes, storages, sdn):  # pylint: disable=too-many-arguments
        self.key = key
        self.vms = vms            # [(vmid, fragment)]
        self.nodes = nodes        # [(node, fragment with stats, fragment without stats)]
        self.storages = storages  # [(storeid, fragment)]
        self.sdn = sdn            # [fragment]
        self.full: dict = {}
        self.full_gzip: dict = {}
        self.lock = threading.Lock()

    def full_body(self, rtype) -> bytes:
        with self.lock:
            if rtype not in self.full:
                parts = []
                if rtype in (None, "vm"):
                    parts.extend(frag for _vmid, frag in self.vms)
                if rtype in (None, "node"):
                    parts.extend(full for _node, full, _bare in self.nodes)
                if rtype in (None, "storage"):
                    parts.extend(frag for _store, frag in self.storages)
                if rtype in (None, "sdn"):
                    parts.extend(self.sdn)
                self.full[rtype] = b'{"data":[' + b",".join(parts) + b"]}"
            return self.full[rtype]

    def full_gzipped(self, rtype, level: int = 1) -> bytes:
        body = self.full_body(rtype)
        with self.lock:
            if rtype not in self.full_gzip:
                self.full_gzip[rtype] = gzip.compress(body, compresslevel=level, mtime=0)
            return self.full_gzip[rtype]


class ResourceCache:
    """Builds and caches :class:`Snapshot` objects for one :class:`~tools.pvesim.state.State`."""

    def __init__(self, state, background: bool = True):
        self.state = state
        self._snapshot: Snapshot | None = None
        self._build_lock = threading.Lock()
        self._guest_frags: dict = {}   # vmid -> (signature, fragment)
        if background:
            self._rebuild(time.time()).full_gzipped(None, level=6)  # warm before the first request
            threading.Thread(target=self._refresher, name="pvesim-resources", daemon=True).start()

    # -- building ----------------------------------------------------------------
    def _copy(self):
        """The data one build needs, copied under the state lock (cheap, shallow)."""
        with self.state.lock:
            data = self.state.data
            guests = [dict(g, config=dict(g["config"])) for g in data["cluster"]["guests"].values()]
            nodes = [dict(n) for n in data["cluster"]["nodes"]]
            storages = [dict(s) for s in data["cluster"]["storages"]]
            return (self.state.generation, data["meta"]["seed"]), guests, nodes, storages

    def _guest_fragment(self, guest: dict, online: bool, metrics: Metrics) -> bytes:
        cfg = guest["config"]
        running = guest["status"] == "running"
        signature = (metrics.bucket if running else -1, online, guest["status"], guest.get("started"),
                     guest["node"], guest.get("lock"), guest.get("hastate"), guest.get("template"), cfg["name"],
                     cfg["cores"], cfg["memory"], cfg["disk"], cfg.get("tags"), guest["type"])
        cached = self._guest_frags.get(guest["vmid"])
        if cached is not None and cached[0] == signature:
            return cached[1]
        vmid = guest["vmid"]
        entry = {"id": f"{guest['type']}/{vmid}", "vmid": vmid, "node": guest["node"], "type": guest["type"]}
        if online:
            live = metrics.guest(guest)
            entry.update({
                "status": guest["status"], "name": cfg["name"], "uptime": live["uptime"],
                "template": int(guest.get("template") or 0), "maxcpu": cfg["cores"], "cpu": live["cpu"],
                "maxmem": cfg["memory"] * MIB, "mem": live["mem"], "maxdisk": cfg["disk"], "disk": live["disk"],
                "netin": live["netin"], "netout": live["netout"], "diskread": live["diskread"],
                "diskwrite": live["diskwrite"],
            })
            if guest["type"] == "qemu":
                entry["memhost"] = live["memhost"]
        else:
            entry["status"] = "unknown"
        if cfg.get("tags"):
            entry["tags"] = cfg["tags"]
        if guest.get("lock"):
            entry["lock"] = guest["lock"]
        if guest.get("hastate"):
            entry["hastate"] = guest["hastate"]
        fragment = _frag(entry)
        self._guest_frags[vmid] = (signature, fragment)
        return fragment

    def _build(self, now: float) -> Snapshot:  # pylint: disable=too-many-locals
        (generation, seed), guests, nodes, storages = self._copy()
        metrics = Metrics(seed, now)
        online = {n["node"]: bool(n["online"]) for n in nodes}
        guests.sort(key=lambda g: str(g["vmid"]))
        vms = [(str(g["vmid"]), self._guest_fragment(g, online[g["node"]], metrics)) for g in guests]
        node_frags = []
        for node in nodes:
            base = {"id": f"node/{node['node']}", "node": node["node"], "type": "node",
                    "status": "online" if node["online"] else "offline", "level": node["level"], "cgroup-mode": 2}
            full = dict(base, maxcpu=node["maxcpu"], maxmem=node["maxmem"], maxdisk=node["maxdisk"])
            if node["online"]:
                full.update(metrics.node(node))
            node_frags.append((node["node"], _frag(full), _frag(base)))
        store_frags = []
        for store in sorted(storages, key=lambda s: s["storage"]):
            for node in nodes:
                entry = {"id": f"storage/{node['node']}/{store['storage']}", "storage": store["storage"],
                         "node": node["node"], "type": "storage", "plugintype": store["type"],
                         "status": "available" if node["online"] else "unknown", "shared": store["shared"],
                         "content": store["content"]}
                if node["online"]:
                    used = metrics.storage(store, "" if store["shared"] else node["node"])["disk"]
                    entry.update({"maxdisk": store["maxdisk"], "disk": used})
                store_frags.append((store["storage"], _frag(entry)))
        sdn = [_frag({"id": f"sdn/{n['node']}/{SDN_ZONE}", "sdn": SDN_ZONE, "node": n["node"], "type": "sdn",
                      "status": "ok" if n["online"] else "unknown"}) for n in nodes]
        return Snapshot((generation, metrics.bucket), vms, node_frags, store_frags, sdn)

    def _rebuild(self, now: float) -> Snapshot:
        with self._build_lock:
            current = self._snapshot
            wanted = (self.state.generation, int(now // REFRESH))
            if current is not None and current.key == wanted:
                return current
            snap = self._build(now)
            self._snapshot = snap
            return snap

    def _refresher(self) -> None:
        """Rebuild ahead of requests whenever the refresh interval rolls over."""
        while True:
            time.sleep(REFRESH - (time.time() % REFRESH) + 0.01)
            try:
                self._rebuild(time.time()).full_gzipped(None, level=6)
            except Exception:  # pylint: disable=broad-except
                pass  # the request path rebuilds on demand

    def snapshot(self) -> Snapshot:
        """The current build; a state change rebuilds now, a new interval is picked up by the refresher."""
        snap = self._snapshot
        if snap is None or snap.key[0] != self.state.generation:
            snap = self._rebuild(time.time())
        return snap

    # -- answering -------------------------------------------------------------------
    def response(self, ctx, rtype):
        """The answer body for this caller (a RawBody the server sends as is)."""
        snap = self.snapshot()
        subject = ctx.authid
        perms = ctx.perms
        acl = ctx.state.access["acl"]
        root = subject == "root@pam"

        def visible(prefix: str, priv: str, ids):
            """Which ids under /prefix the caller may audit; None means all of them."""
            if root:
                return None
            generic = priv in perms.privs(subject, ("", prefix, None))
            specific = {p.split("/")[2] for p in acl if p.startswith(f"/{prefix}/") and p.count("/") == 2}
            if generic and not specific:
                return None
            allowed = {i for i in ids if i not in specific} if generic else set()
            allowed.update(i for i in specific if priv in perms.privs(subject, f"/{prefix}/{i}"))
            return allowed

        wants = {kind: rtype in (None, kind) for kind in ("vm", "node", "storage", "sdn")}
        vm_ok = visible("vms", "VM.Audit", [vmid for vmid, _fragment in snap.vms]) if wants["vm"] else set()
        node_ok = visible("nodes", "Sys.Audit", [name for name, _full, _bare in snap.nodes]) if wants["node"] else set()
        store_ok = visible("storage", "Datastore.Audit", {store for store, _fragment in snap.storages}) if wants["storage"] else set()
        sdn_ok = wants["sdn"] and (root or "SDN.Audit" in perms.privs(subject, f"/sdn/zones/{SDN_ZONE}"))
        if vm_ok is None and node_ok is None and store_ok is None and (sdn_ok or not wants["sdn"]):
            body = RawBody(snap.full_body(rtype))
            body.gzipped = snap.full_gzipped(rtype)
            return body
        parts = []
        if wants["vm"]:
            parts.extend(f for v, f in snap.vms if vm_ok is None or v in vm_ok)
        if wants["node"]:
            for name, full, bare in snap.nodes:
                if node_ok is None or name in node_ok:
                    parts.append(full)
                elif ctx.state.opts.list_nodes_without_audit:
                    parts.append(bare)
        if wants["storage"]:
            parts.extend(f for s, f in snap.storages if store_ok is None or s in store_ok)
        if sdn_ok:
            parts.extend(snap.sdn)
        return RawBody(b'{"data":[' + b",".join(parts) + b"]}")
