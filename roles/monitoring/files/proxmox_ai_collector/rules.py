# -*- coding: utf-8 -*-
# Copyright: (c) 2025, Proxmox AI hardening maintainers
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""From one poll (``/cluster/status`` + ``/cluster/resources``) to sample rows and firing alerts.

Alert de-duplication uses ``dedup_key = pve:<cluster>:<alert_type>:<entity>``:
the database keeps at most one unresolved alert per key (a partial unique
index), repeated observations bump ``occurrences``.  An open alert is resolved
when its entity was observed in a known state and the condition is gone, or
when the entity disappeared from the cluster; entities in an unknown state
(the guests of an offline node) keep their alerts.
"""

from __future__ import annotations

import json

NODE_COLUMNS = ("created_at", "node", "status", "cpu", "cpu_count", "load1", "mem_used", "mem_total", "swap_used",
                "swap_total", "rootfs_used", "rootfs_total", "net_in", "net_out", "uptime", "details")
GUEST_COLUMNS = ("created_at", "node", "vmid", "guest_type", "name", "status", "cpu", "cpus", "mem_used", "mem_total",
                 "disk_used", "disk_total", "disk_read", "disk_write", "net_in", "net_out", "uptime", "details")
STORAGE_COLUMNS = ("created_at", "node", "storage", "storage_type", "active", "shared", "used", "total", "avail",
                   "details")

ALERT_TYPES = ("node_offline", "quorum_lost", "guest_stopped", "storage_full", "memory_high", "poll_failed")


def dedup_key(cluster: str, alert_type: str, entity: str) -> str:
    return f"pve:{cluster}:{alert_type}:{entity}"


def split_key(key: str):
    """(cluster, alert_type, entity) of a collector dedup key, or None for other keys."""
    parts = key.split(":", 3)
    if len(parts) != 4 or parts[0] != "pve":
        return None
    return parts[1], parts[2], parts[3]


class Alert:  # pylint: disable=too-few-public-methods,too-many-arguments
    """One firing condition."""

    __slots__ = ("key", "severity", "alert_type", "entity_type", "entity", "message", "details")

    def __init__(self, cluster, alert_type, entity_type, entity, severity, message, details=None):
        self.key = dedup_key(cluster, alert_type, entity)
        self.severity = severity
        self.alert_type = alert_type
        self.entity_type = entity_type
        self.entity = entity
        self.message = message
        self.details = dict(details or {}, cluster=cluster)

    def as_dict(self) -> dict:
        return {k: getattr(self, k) for k in self.__slots__}


def _num(value):
    if value is None or value == "":
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _int(value):
    number = _num(value)
    return None if number is None else int(number)


def _pct(used, total):
    used, total = _num(used), _num(total)
    if used is None or not total:
        return None
    return 100.0 * used / total


def _details(**fields) -> str:
    return json.dumps({k: v for k, v in fields.items() if v not in (None, "", 0)}, separators=(",", ":"),
                      sort_keys=True)


class Observation:  # pylint: disable=too-many-instance-attributes
    """What one poll of a cluster saw: rows to write and the state the alert rules look at."""

    def __init__(self, cluster: str, ts: str, status: list, resources: list):
        self.cluster = cluster
        self.ts = ts
        self.quorate = None
        self.cluster_name = ""
        self.node_names = set()
        self.node_online = {}
        self.node_rows = []
        self.guest_rows = []
        self.storage_rows = []
        self.nodes = {}
        self.guests = {}
        self.storages = []
        self._parse_status(status or [])
        self._parse_resources(resources or [])

    def _parse_status(self, status: list) -> None:
        for entry in status:
            if not isinstance(entry, dict):
                continue
            if entry.get("type") == "cluster":
                self.cluster_name = str(entry.get("name") or "")
                self.quorate = bool(int(entry.get("quorate", 1) or 0))
            elif entry.get("type") == "node" and entry.get("name"):
                self.node_names.add(str(entry["name"]))
                self.node_online[str(entry["name"])] = bool(int(entry.get("online", 0) or 0))

    def _parse_resources(self, resources: list) -> None:
        ts, cluster = self.ts, self.cluster
        for entry in resources:
            if not isinstance(entry, dict):
                continue
            kind = entry.get("type")
            if kind == "node":
                name = str(entry.get("node") or "")
                online = entry.get("status") == "online" and self.node_online.get(name, True)
                status = "online" if online else "offline"
                self.nodes[name] = dict(entry, status=status)
                self.node_names.add(name)
                self.node_rows.append((
                    ts, name, status, _num(entry.get("cpu")), _int(entry.get("maxcpu")), None, _int(entry.get("mem")),
                    _int(entry.get("maxmem")), None, None, _int(entry.get("disk")), _int(entry.get("maxdisk")), None,
                    None, _int(entry.get("uptime")), _details(cluster=cluster, level=entry.get("level"))))
            elif kind in ("qemu", "lxc"):
                vmid = _int(entry.get("vmid"))
                if vmid is None:
                    continue
                self.guests[vmid] = entry
                self.guest_rows.append((
                    ts, str(entry.get("node") or ""), vmid, kind, entry.get("name"), entry.get("status"),
                    _num(entry.get("cpu")), _num(entry.get("maxcpu")), _int(entry.get("mem")),
                    _int(entry.get("maxmem")), _int(entry.get("disk")), _int(entry.get("maxdisk")),
                    _int(entry.get("diskread")), _int(entry.get("diskwrite")), _int(entry.get("netin")),
                    _int(entry.get("netout")), _int(entry.get("uptime")),
                    _details(cluster=cluster, tags=entry.get("tags"), lock=entry.get("lock"),
                             hastate=entry.get("hastate"), template=entry.get("template"))))
            elif kind == "storage":
                self.storages.append(entry)
                total, used = _int(entry.get("maxdisk")), _int(entry.get("disk"))
                avail = total - used if total is not None and used is not None else None
                self.storage_rows.append((
                    ts, str(entry.get("node") or ""), str(entry.get("storage") or ""), entry.get("plugintype"),
                    entry.get("status") == "available", bool(int(entry.get("shared", 0) or 0)), used, total, avail,
                    _details(cluster=cluster, content=entry.get("content"))))
        # a node that /cluster/status lists but /cluster/resources does not (no Sys.Audit) is still watched
        for name, online in self.node_online.items():
            if name not in self.nodes:
                self.nodes[name] = {"node": name, "status": "online" if online else "offline"}

    @property
    def rows(self) -> int:
        return len(self.node_rows) + len(self.guest_rows) + len(self.storage_rows)


class Rules:  # pylint: disable=too-few-public-methods
    """The alert rules with their thresholds; keeps the previous guest states of every cluster."""

    def __init__(self, thresholds: dict, alerts: dict):
        self.t = {k: float(v) for k, v in thresholds.items()}
        self.guest_stopped = bool(alerts.get("guest_stopped", True))
        self.ignore_tags = {str(t) for t in alerts.get("ignore_tags") or []}
        self.previous = {}  # cluster -> {vmid: status}

    def _level(self, pct, warning, critical):
        if pct is None:
            return None
        if pct >= self.t[critical]:
            return "critical"
        if pct >= self.t[warning]:
            return "warning"
        return None

    def _ignored(self, guest: dict) -> bool:
        tags = {t for t in str(guest.get("tags") or "").replace(",", ";").split(";") if t}
        return bool(tags & self.ignore_tags)

    def evaluate(self, obs: Observation, open_keys) -> tuple:  # pylint: disable=too-many-branches,too-many-locals
        """(firing alerts by key, entities observed in a known state, entities present in the cluster)."""
        cluster = obs.cluster
        firing = {}
        observed, present = set(), set()

        def fire(alert: Alert):
            firing[alert.key] = alert

        if obs.quorate is not None:
            observed.add(cluster)
            present.add(cluster)
            if not obs.quorate:
                fire(Alert(cluster, "quorum_lost", "cluster", cluster, "critical",
                           f"cluster {obs.cluster_name or cluster} has lost quorum"))
        offline = set()
        for name, entry in obs.nodes.items():
            observed.add(name)
            present.add(name)
            if entry.get("status") != "online":
                offline.add(name)
                fire(Alert(cluster, "node_offline", "node", name, "critical", f"node {name} is offline"))
                continue
            level = self._level(_pct(entry.get("mem"), entry.get("maxmem")), "node_memory_warning",
                                "node_memory_critical")
            if level:
                pct = _pct(entry.get("mem"), entry.get("maxmem"))
                fire(Alert(cluster, "memory_high", "node", name, level, f"node {name} memory at {pct:.1f}%",
                           {"percent": round(pct, 1)}))
        previous = self.previous.setdefault(cluster, {})
        current = {}
        for vmid, guest in obs.guests.items():
            kind = guest.get("type")
            entity = f"{kind}/{vmid}"
            present.add(entity)
            status = guest.get("status")
            if status not in ("running", "stopped", "paused", "suspended") or guest.get("node") in offline:
                continue  # unknown state (node offline): keep what is open
            observed.add(entity)
            current[vmid] = status
            label = f"{'VM' if kind == 'qemu' else 'CT'} {vmid} ({guest.get('name') or '?'}) on {guest.get('node')}"
            if status == "stopped" and self.guest_stopped and not int(guest.get("template", 0) or 0) \
                    and not self._ignored(guest):
                key = dedup_key(cluster, "guest_stopped", entity)
                reason = None
                if previous.get(vmid) == "running":
                    reason = "was running at the previous poll"
                elif guest.get("hastate") == "started":
                    reason = "HA state is started"
                elif key in open_keys:
                    reason = "still stopped"
                if reason:
                    fire(Alert(cluster, "guest_stopped", kind, entity, "critical",
                               f"{label} stopped unexpectedly ({reason})",
                               {"node": guest.get("node"), "vmid": vmid, "name": guest.get("name")}))
            if status == "running":
                pct = _pct(guest.get("mem"), guest.get("maxmem"))
                level = self._level(pct, "guest_memory_warning", "guest_memory_critical")
                if level:
                    fire(Alert(cluster, "memory_high", kind, entity, level, f"{label} memory at {pct:.1f}%",
                               {"node": guest.get("node"), "vmid": vmid, "percent": round(pct, 1)}))
        self.previous[cluster] = current
        seen_shared = set()
        for store in obs.storages:
            shared = bool(int(store.get("shared", 0) or 0))
            sid = str(store.get("storage") or "")
            entity = f"shared/{sid}" if shared else f"{store.get('node')}/{sid}"
            present.add(entity)
            if store.get("status") != "available" or entity in seen_shared:
                continue
            seen_shared.add(entity)
            observed.add(entity)
            pct = _pct(store.get("disk"), store.get("maxdisk"))
            level = self._level(pct, "storage_warning", "storage_critical")
            if level:
                fire(Alert(cluster, "storage_full", "storage", entity, level, f"storage {entity} at {pct:.1f}%",
                           {"percent": round(pct, 1), "node": store.get("node"), "storage": sid}))
        return firing, observed, present


def resolvable(cluster: str, open_keys, firing: dict, observed: set, present: set) -> list:
    """Open keys of ``cluster`` whose condition is gone (entity seen fine, or entity gone)."""
    result = []
    for key in open_keys:
        parts = split_key(key)
        if parts is None or parts[0] != cluster or key in firing:
            continue
        alert_type, entity = parts[1], parts[2]
        if alert_type == "poll_failed" or entity in observed or entity not in present:
            result.append(key)
    return sorted(result)


def poll_failed_alert(cluster: str, error: str) -> Alert:
    return Alert(cluster, "poll_failed", "cluster", cluster, "critical",
                 f"polling cluster {cluster} failed: {error}"[:2000], {"error": error[:2000]})
