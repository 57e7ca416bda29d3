"""/version, /cluster, /nodes: cluster data, guests, snapshots and tasks."""
from __future__ import annotations

import re
import time

from . import RELEASE, REPOID, VERSION
from . import guests as G
from . import params as P
from .access_api import quorate
from .cluster import GIB, MIB, Metrics
from .routes import ApiError, fail, param_error, route

ALL = {"user": "all"}
NODE, VMID, SNAP = P.NODE, P.VMID, P.SNAPNAME
VM_AUDIT = {"check": ["perm", "/vms/{vmid}", ["VM.Audit"]]}
VM_POWER = {"check": ["perm", "/vms/{vmid}", ["VM.PowerMgmt"]]}
VM_SNAP = {"check": ["perm", "/vms/{vmid}", ["VM.Snapshot"]]}
VM_ROLLBACK = {"check": ["perm", "/vms/{vmid}", ["VM.Snapshot", "VM.Snapshot.Rollback"], "any", 1]}
TIMEOUT = P.opt(P.INT, minimum=0)


def metrics(ctx) -> Metrics:
    return Metrics(ctx.state.data["meta"]["seed"], time.time())


@route("GET", "/version", perm=ALL)
def version(_ctx, _params):
    return {"version": VERSION, "release": RELEASE, "repoid": REPOID}


@route("GET", "/", perm=ALL)
def root_index(_ctx, _params):
    return [{"subdir": s} for s in ("version", "cluster", "nodes", "storage", "access", "pools")]


@route("GET", "/cluster", perm=ALL)
def cluster_index(_ctx, _params):
    return [{"name": n} for n in ("log", "options", "resources", "replication", "tasks", "backup", "ha", "acme",
                                  "ceph", "jobs", "metrics", "notifications", "sdn", "mapping", "config",
                                  "firewall", "status", "nextid")]


@route("GET", "/cluster/status", perm={"check": ["perm", "/", ["Sys.Audit"]]}, protected=1)
def cluster_status(ctx, _params):
    data = ctx.state.data
    nodes = ctx.state.nodes
    result = [{"type": "cluster", "id": "cluster", "name": data["meta"]["cluster_name"], "nodes": len(nodes),
               "quorate": int(data["cluster"]["quorate"]), "version": data["cluster"]["config_version"]}]
    local = ctx.state.local_node()
    for node in nodes:
        result.append({"type": "node", "id": f"node/{node['node']}", "name": node["node"], "nodeid": node["nodeid"],
                       "ip": node["ip"], "level": node["level"], "local": 1 if node["node"] == local else 0,
                       "online": int(node["online"])})
    return result


@route("GET", "/cluster/resources", params={"type": P.opt(P.STRING, enum=["vm", "storage", "node", "sdn"])}, perm=ALL)
def cluster_resources(ctx, params):
    return ctx.sim.resources.response(ctx, params.get("type"))


@route("GET", "/cluster/tasks", perm=ALL)
def cluster_tasks(ctx, _params):
    return [_task_entry(t, list_entry=True) for t in reversed(ctx.state.data["tasks"][-500:]) if _task_visible(ctx, t)]


@route("GET", "/cluster/backup-info/not-backed-up", perm={"check": ["perm", "/", ["Sys.Audit"]]})
def not_backed_up(ctx, _params):
    """No backup job exists in the simulator: every guest is reported."""
    guests = ctx.state.data["cluster"]["guests"].values()
    return [{"type": g["type"], "vmid": g["vmid"], "name": g["config"]["name"]}
            for g in sorted(guests, key=lambda g: g["vmid"])]


# -- nodes -------------------------------------------------------------------
def require_node(ctx, name: str) -> dict:
    """proxyto: an unknown node fails the lookup, an offline one cannot be reached (595)."""
    node = ctx.state.node(name)
    if node is None:
        fail(f"hostname lookup '{name}' failed - failed to get address info for: {name}: Name or service not known")
    if not node["online"]:
        raise ApiError(595, "No route to host\n", body=False)
    return node


@route("GET", "/nodes", perm=ALL)
def nodes_index(ctx, _params):
    live = metrics(ctx)
    result = []
    for node in ctx.state.nodes:
        entry = {"id": f"node/{node['node']}", "node": node["node"], "type": "node",
                 "status": "online" if node["online"] else "offline", "level": node["level"],
                 "ssl_fingerprint": ctx.sim.fingerprint}
        if ctx.check(f"/nodes/{node['node']}", ["Sys.Audit"], noerr=True):
            entry.update({"maxcpu": node["maxcpu"], "maxmem": node["maxmem"], "maxdisk": node["maxdisk"]})
            if node["online"]:
                entry.update(live.node(node))
        result.append(entry)
    return result


@route("GET", "/nodes/{node}", params={"node": NODE}, perm=ALL)
def node_index(_ctx, _params):
    return [{"name": n} for n in ("apt", "capabilities", "ceph", "certificates", "config", "disks", "dns", "firewall",
                                  "hardware", "hosts", "journal", "lxc", "netstat", "network", "qemu", "replication",
                                  "report", "rrd", "rrddata", "scan", "sdn", "services", "status", "storage",
                                  "subscription", "syslog", "tasks", "time", "version", "vzdump")]


@route("GET", "/nodes/{node}/status", params={"node": NODE}, perm={"check": ["perm", "/nodes/{node}", ["Sys.Audit"]]},
       proxyto="node")
def node_status(ctx, params):
    node = ctx.state.node(params["node"])
    live = metrics(ctx).node(node)
    total, used = node["maxmem"], live["mem"]
    kernel = "#1 SMP PREEMPT_DYNAMIC PMX 6.17.2-1 (2025-11-07T10:41Z)"
    return {
        "uptime": live["uptime"], "cpu": live["cpu"], "wait": 0.0012, "idle": 0,
        "loadavg": [f"{live['cpu'] * node['maxcpu'] * f:.2f}" for f in (1.0, 0.9, 0.8)],
        "kversion": f"Linux 6.17.2-1-pve {kernel}",
        "current-kernel": {"sysname": "Linux", "release": "6.17.2-1-pve", "machine": "x86_64", "version": kernel},
        "boot-info": {"mode": "efi", "secureboot": 0},
        "cpuinfo": {"model": node["cpu_model"], "sockets": 2 if node["maxcpu"] > 32 else 1, "cpus": node["maxcpu"],
                    "cores": node["maxcpu"] // 2, "mhz": "2800.000", "hvm": "1", "user_hz": 100, "flags": "fpu vme"},
        "memory": {"total": total, "used": used, "free": total - used, "available": total - used},
        "swap": {"total": 8 * GIB, "used": 0, "free": 8 * GIB},
        "rootfs": {"total": node["maxdisk"], "used": live["disk"], "free": node["maxdisk"] - live["disk"],
                   "avail": node["maxdisk"] - live["disk"]},
        "ksm": {"shared": 0}, "pveversion": f"pve-manager/{VERSION}/{REPOID}",
    }


@route("GET", "/nodes/{node}/storage",
       params={"node": NODE, "content": P.opt(P.STRING, format="pve-storage-content-list"),
               "enabled": P.opt(P.BOOL, default=0), "format": P.opt(P.BOOL, default=0),
               "storage": P.opt(P.STRING, format="pve-storage-id"), "target": P.opt(P.STRING, format="pve-node")},
       perm=ALL, proxyto="node", protected=1)
def node_storage(ctx, params):
    live = metrics(ctx)
    result = []
    for store in ctx.state.data["cluster"]["storages"]:
        sid = store["storage"]
        if params.get("storage") and params["storage"] != sid:
            continue
        if params.get("content") and not set(P.split_list(params["content"])) & set(store["content"].split(",")):
            continue
        if not ctx.check_any(f"/storage/{sid}", ["Datastore.Audit", "Datastore.AllocateSpace"], noerr=True):
            continue
        used = live.storage(store, "" if store["shared"] else params["node"])["disk"]
        total = store["maxdisk"]
        result.append({"storage": sid, "type": store["type"], "content": store["content"], "shared": store["shared"],
                       "active": 1, "enabled": 1, "total": total, "used": used, "avail": total - used,
                       "used_fraction": round(used / total, 6)})
    return result


@route("GET", "/nodes/{node}/subscription", params={"node": NODE}, perm=ALL, proxyto="node")
def node_subscription(ctx, params):
    node = ctx.state.node(params["node"])
    result = {"status": "notfound", "message": "There is no subscription key",
              "url": "https://www.proxmox.com/en/proxmox-virtual-environment/pricing"}
    if ctx.check(f"/nodes/{params['node']}", ["Sys.Audit"], noerr=True):
        result["serverid"] = f"{node['nodeid']:032X}"
    return result


@route("GET", "/nodes/{node}/replication", params={"node": NODE, "guest": P.opt(VMID)}, perm=ALL, proxyto="node")
def node_replication(_ctx, _params):
    return []


# -- guests ------------------------------------------------------------------
def _guest(ctx, node: str, kind: str, vmid) -> dict:
    guest = ctx.state.guest(vmid)
    if guest is None or guest["type"] != kind or guest["node"] != node:
        fail(f"Configuration file '{G.config_path(node, kind, vmid)}' does not exist")
    return guest


def guest_status(guest: dict, live: Metrics) -> dict:
    figures = live.guest(guest)
    cfg = guest["config"]
    entry = {"vmid": guest["vmid"], "name": cfg["name"], "status": guest["status"], "cpus": cfg["cores"],
             "maxmem": cfg["memory"] * MIB, "maxdisk": cfg["disk"]}
    entry.update({k: figures[k] for k in ("uptime", "cpu", "mem", "disk", "netin", "netout", "diskread", "diskwrite")})
    if guest["type"] == "qemu":
        entry["memhost"] = figures["memhost"]
        entry["qmpstatus"] = guest["status"]
        if guest["status"] == "running":
            entry.update({"pid": 10000 + guest["vmid"] % 50000, "running-machine": "pc-i440fx-10.1+pve1",
                          "running-qemu": "10.1.2"})
    else:
        entry["type"] = "lxc"
        entry["maxswap"] = cfg.get("swap", 512) * MIB
        if guest["status"] == "running":
            entry["pid"] = 20000 + guest["vmid"] % 50000
    if cfg.get("tags"):
        entry["tags"] = cfg["tags"]
    if guest.get("template"):
        entry["template"] = 1
    if guest.get("lock"):
        entry["lock"] = guest["lock"]
    return entry


def _locking_task(ctx, guest, node, action, lock, extra):  # pylint: disable=too-many-arguments
    """Snapshot tasks lock the guest while they run; a locked guest makes them fail."""
    error, unlock = None, None
    if guest.get("lock"):
        error = f"{G.kind_label(guest)} is locked ({guest['lock']})"
    else:
        guest["lock"] = lock
        unlock = {"vmid": guest["vmid"], "lock": lock}
    effect = dict(extra, action=action, vmid=guest["vmid"], node=node, kind=guest["type"])
    return ctx.state.start_task(node, G.TASK_TYPES[guest["type"]][action], str(guest["vmid"]), ctx.authid, effect,
                                error, unlock=unlock)


def _power_task(ctx, kind, action, params):
    guest = _guest(ctx, params["node"], kind, params["vmid"])
    quorate(ctx)
    if kind == "lxc":
        if action == "start" and guest["status"] == "running":
            fail(f"CT {guest['vmid']} already running")
        if action in ("stop", "shutdown", "reboot") and guest["status"] != "running":
            fail(f"CT {guest['vmid']} not running")
    error = None
    if guest.get("lock") and action != "stop":
        error = f"{G.kind_label(guest)} is locked ({guest['lock']})"
    elif action == "start" and guest.get("template"):
        error = f"you can't start a {'vm' if kind == 'qemu' else 'CT'} if it's a template"
    effect = {"action": action, "vmid": guest["vmid"], "node": params["node"], "kind": kind}
    return ctx.state.start_task(params["node"], G.TASK_TYPES[kind][action], str(guest["vmid"]), ctx.authid, effect,
                                error)


def _power_params(kind: str, ident: dict) -> dict:
    if kind == "qemu":
        start = dict(ident, skiplock=P.opt(P.BOOL), timeout=TIMEOUT, machine=P.opt(P.STRING),
                     migratedfrom=P.opt(P.STRING, format="pve-node"), migration_network=P.opt(P.STRING),
                     migration_type=P.opt(P.STRING, enum=["secure", "insecure"]),
                     stateuri=P.opt(P.STRING, maxLength=128), targetstorage=P.opt(P.STRING))
        start.update({"force-cpu": P.opt(P.STRING), "nets-host-mtu": P.opt(P.STRING, pattern=r"net\d+=\d+(,net\d+=\d+)*"),
                      "with-conntrack-state": P.opt(P.BOOL, default=0)})
        stop = dict(ident, skiplock=P.opt(P.BOOL), keepActive=P.opt(P.BOOL, default=0), timeout=TIMEOUT,
                    migratedfrom=P.opt(P.STRING, format="pve-node"))
        shutdown = dict(ident, forceStop=P.opt(P.BOOL, default=0), keepActive=P.opt(P.BOOL, default=0),
                        skiplock=P.opt(P.BOOL), timeout=TIMEOUT)
    else:
        start = dict(ident, skiplock=P.opt(P.BOOL), debug=P.opt(P.BOOL, default=0))
        stop = dict(ident, skiplock=P.opt(P.BOOL))
        shutdown = dict(ident, forceStop=P.opt(P.BOOL, default=0), timeout=P.opt(P.INT, minimum=0, default=60))
    stop["overrule-shutdown"] = P.opt(P.BOOL, default=0)
    return {"start": start, "stop": stop, "shutdown": shutdown, "reboot": dict(ident, timeout=TIMEOUT)}


def _register_guest_routes(kind: str):  # pylint: disable=too-many-locals
    base = f"/nodes/{{node}}/{kind}"
    ident = {"node": NODE, "vmid": VMID}

    def index(ctx, params):
        live = metrics(ctx)
        return [guest_status(g, live) for g in ctx.state.data["cluster"]["guests"].values()
                if g["type"] == kind and g["node"] == params["node"]
                and ctx.check(f"/vms/{g['vmid']}", ["VM.Audit"], noerr=True)]

    route("GET", base, params=dict(node=NODE, full=P.opt(P.BOOL)) if kind == "qemu" else {"node": NODE},
          perm=ALL, proxyto="node", protected=1)(index)

    def vm_dir(ctx, params):
        _guest(ctx, params["node"], kind, params["vmid"])
        return [{"subdir": s} for s in ("config", "pending", "status", "snapshot", "rrd", "rrddata", "firewall")]

    route("GET", base + "/{vmid}", params=ident, perm=ALL, proxyto="node")(vm_dir)

    def config(ctx, params):
        return G.config_view(_guest(ctx, params["node"], kind, params["vmid"]))

    route("GET", base + "/{vmid}/config",
          params=dict(ident, current=P.opt(P.BOOL, default=0), snapshot=P.opt(P.STRING, format="pve-configid")),
          perm=VM_AUDIT, proxyto="node")(config)

    def status_dir(ctx, params):
        _guest(ctx, params["node"], kind, params["vmid"])
        return [{"subdir": s} for s in ("current", "start", "stop", "reset", "shutdown", "suspend", "reboot")]

    route("GET", base + "/{vmid}/status", params=ident, perm=ALL, proxyto="node")(status_dir)

    def current(ctx, params):
        guest = _guest(ctx, params["node"], kind, params["vmid"])
        entry = guest_status(guest, metrics(ctx))
        entry["ha"] = {"managed": 1, "state": guest["hastate"]} if guest.get("hastate") else {"managed": 0}
        return entry

    route("GET", base + "/{vmid}/status/current", params=ident, perm=VM_AUDIT, proxyto="node", protected=1)(current)

    for action, spec in _power_params(kind, ident).items():
        route("POST", base + f"/{{vmid}}/status/{action}", params=spec, perm=VM_POWER, proxyto="node", protected=1)(
            lambda ctx, params, _action=action: _power_task(ctx, kind, _action, params))

    def snap_list(ctx, params):
        return G.snapshot_list(_guest(ctx, params["node"], kind, params["vmid"]))

    route("GET", base + "/{vmid}/snapshot", params=ident, perm=VM_AUDIT, proxyto="node", protected=1)(snap_list)

    def snap_create(ctx, params):
        guest = _guest(ctx, params["node"], kind, params["vmid"])
        name = params["snapname"]
        if name == "current" or name.lower() == "pending":
            fail(f"unable to use snapshot name '{name}' (reserved name)")
        quorate(ctx)
        return _locking_task(ctx, guest, params["node"], "snapshot", "snapshot", {
            "snapname": name, "description": params.get("description", ""), "vmstate": params.get("vmstate", 0)})

    create_params = dict(ident, snapname=SNAP, description=P.opt(P.STRING))
    if kind == "qemu":
        create_params["vmstate"] = P.opt(P.BOOL)
    route("POST", base + "/{vmid}/snapshot", params=create_params, perm=VM_SNAP, proxyto="node",
          protected=1)(snap_create)

    def snap_cmd_index(ctx, params):
        _guest(ctx, params["node"], kind, params["vmid"])
        return [{"cmd": "rollback"}, {"cmd": "config"}]

    route("GET", base + "/{vmid}/snapshot/{snapname}", params=dict(ident, snapname=SNAP), perm=ALL)(snap_cmd_index)

    def snap_delete(ctx, params):
        guest = _guest(ctx, params["node"], kind, params["vmid"])
        quorate(ctx)
        return _locking_task(ctx, guest, params["node"], "delsnapshot", "snapshot-delete",
                             {"snapname": params["snapname"], "force": params.get("force", 0)})

    route("DELETE", base + "/{vmid}/snapshot/{snapname}", params=dict(ident, snapname=SNAP, force=P.opt(P.BOOL)),
          perm=VM_SNAP, proxyto="node", protected=1)(snap_delete)

    def snap_rollback(ctx, params):
        guest = _guest(ctx, params["node"], kind, params["vmid"])
        quorate(ctx)
        return _locking_task(ctx, guest, params["node"], "rollback", "rollback",
                             {"snapname": params["snapname"], "start": params.get("start", 0)})

    route("POST", base + "/{vmid}/snapshot/{snapname}/rollback",
          params=dict(ident, snapname=SNAP, start=P.opt(P.BOOL, default=0)), perm=VM_ROLLBACK, proxyto="node",
          protected=1)(snap_rollback)


_register_guest_routes("qemu")
_register_guest_routes("lxc")


# -- tasks -------------------------------------------------------------------
UPID_RE = re.compile(r"^UPID:([a-zA-Z0-9]([a-zA-Z0-9\-]*[a-zA-Z0-9])?):([0-9A-Fa-f]{8}):([0-9A-Fa-f]{8,9}):"
                     r"([0-9A-Fa-f]{8}):([^:\s]+):([^:\s]*):([^:\s]+):$")
TASK_PARAMS = {"node": NODE, "upid": P.STRING}


def _task_entry(task: dict, list_entry=False) -> dict:
    entry = {"upid": task["upid"], "node": task["node"], "pid": task["pid"], "pstart": task["pstart"],
             "starttime": task["starttime"], "type": task["type"], "id": task["id"], "user": task["user"]}
    if "!" in task["user"]:
        entry["user"], entry["tokenid"] = task["user"].split("!", 1)
    if list_entry:
        if task["status"] != "running":
            entry["status"] = task["exitstatus"]
            entry["endtime"] = task.get("endtime", task["starttime"])
    else:
        entry["status"] = task["status"]
        if task["status"] != "running":
            entry["exitstatus"] = task["exitstatus"]
    return entry


def _task_visible(ctx, task: dict) -> bool:
    return task["user"] == ctx.authid or ctx.check(f"/nodes/{task['node']}", ["Sys.Audit"], noerr=True)


def _lookup_task(ctx, params) -> dict:
    if not UPID_RE.match(params["upid"]):
        param_error({"upid": "unable to parse worker upid"})
    task = ctx.state.find_task(params["upid"])
    if task is None or task["node"] != params["node"]:
        param_error({"upid": "no such task"})
    if task["user"] != ctx.authid:
        ctx.check(f"/nodes/{params['node']}", ["Sys.Audit"])
    return task


def _task_matches(task: dict, params: dict) -> bool:  # pylint: disable=too-many-return-statements
    running = task["status"] == "running"
    source = params.get("source", "archive")
    if (source == "archive" and running) or (source == "active" and not running):
        return False
    if params.get("errors") and (running or task["exitstatus"] == "OK"):
        return False
    if params.get("vmid") and task["id"] != str(params["vmid"]):
        return False
    if params.get("typefilter") and task["type"] != params["typefilter"]:
        return False
    if params.get("userfilter") and params["userfilter"] not in task["user"]:
        return False
    if "since" in params and task["starttime"] < params["since"]:
        return False
    return not ("until" in params and task["starttime"] > params["until"])


@route("GET", "/nodes/{node}/tasks",
       params={"node": NODE, "errors": P.opt(P.BOOL, default=0), "limit": P.opt(P.INT, minimum=0, default=50),
               "since": P.opt(P.INT), "source": P.opt(P.STRING, enum=["archive", "active", "all"], default="archive"),
               "start": P.opt(P.INT, minimum=0, default=0),
               "statusfilter": P.opt(P.STRING, format="pve-task-status-type-list"),
               "typefilter": P.opt(P.STRING), "until": P.opt(P.INT), "userfilter": P.opt(P.STRING),
               "vmid": P.opt(VMID)},
       perm=ALL, proxyto="node")
def node_tasks(ctx, params):
    result = [_task_entry(t, list_entry=True) for t in reversed(ctx.state.data["tasks"])
              if t["node"] == params["node"] and _task_visible(ctx, t) and _task_matches(t, params)]
    start = params.get("start", 0)
    return result[start:start + params.get("limit", 50)]


@route("GET", "/nodes/{node}/tasks/{upid}", params=TASK_PARAMS, perm=ALL)
def task_index(_ctx, _params):
    return [{"name": "log"}, {"name": "status"}]


@route("GET", "/nodes/{node}/tasks/{upid}/status", params=TASK_PARAMS, perm=ALL, proxyto="node", protected=1)
def task_status(ctx, params):
    return _task_entry(_lookup_task(ctx, params))


@route("GET", "/nodes/{node}/tasks/{upid}/log",
       params=dict(TASK_PARAMS, download=P.opt(P.BOOL), limit=P.opt(P.INT, minimum=0, default=50),
                   start=P.opt(P.INT, minimum=0, default=0)),
       perm=ALL, proxyto="node", protected=1)
def task_log(ctx, params):
    task = _lookup_task(ctx, params)
    start = params.get("start", 0)
    lines = task["log"][start:start + params.get("limit", 50)]
    return [{"n": start + i + 1, "t": t} for i, t in enumerate(lines)]


@route("DELETE", "/nodes/{node}/tasks/{upid}", params=TASK_PARAMS, perm=ALL, proxyto="node", protected=1)
def task_stop(ctx, params):
    task = _lookup_task(ctx, params)
    if task["user"] != ctx.authid:
        ctx.check(f"/nodes/{params['node']}", ["Sys.Modify"])
    if task["status"] == "running":
        task["effect"] = None
        task["error"] = "interrupted by signal"
        task["end_at"] = 0
        ctx.state.finish_due_tasks()
