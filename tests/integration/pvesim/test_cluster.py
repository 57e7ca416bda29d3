"""Cluster data: /version, /nodes, /cluster/status, /cluster/resources, guest status and tasks."""
from __future__ import annotations

import re

import pytest

from .helpers import raises

pytestmark = pytest.mark.pvesim

UPID_RE = re.compile(r"^UPID:(pve\d+):[0-9A-F]{8}:[0-9A-F]{8}:[0-9A-F]{8}:([a-z]+):(\d+):([^:]+):$")


def test_cluster_status_lists_cluster_and_nodes(sim):
    status = sim.api().cluster.status.get()
    assert status[0] == {"type": "cluster", "id": "cluster", "name": "pvesim", "nodes": 3, "quorate": 1, "version": 5}
    nodes = status[1:]
    assert [n["name"] for n in nodes] == ["pve1", "pve2", "pve3"]
    assert nodes[0] == {"type": "node", "id": "node/pve1", "name": "pve1", "nodeid": 1, "ip": "10.10.0.1",
                        "level": "", "local": 1, "online": 1}
    assert [n["local"] for n in nodes] == [1, 0, 0]


def test_nodes_index_and_node_status(sim):
    nodes = sim.api().nodes.get()
    assert [n["node"] for n in nodes] == ["pve1", "pve2", "pve3"]
    assert {"node", "status", "cpu", "maxcpu", "mem", "maxmem", "uptime", "level", "ssl_fingerprint"} <= set(nodes[0])
    status = sim.api().nodes("pve2").status.get()
    assert status["pveversion"].startswith("pve-manager/9.1.3/")
    assert {"cpu", "cpuinfo", "memory", "rootfs", "loadavg", "uptime", "current-kernel", "boot-info"} <= set(status)
    assert status["memory"]["total"] == status["memory"]["used"] + status["memory"]["free"]


def test_unknown_node_is_500(sim):
    exc = raises(sim.api().nodes("pve99").status.get)
    assert exc.status_code == 500
    assert exc.content == "hostname lookup 'pve99' failed - failed to get address info for: pve99: Name or service not known"


def test_resources_have_the_real_fields(sim):
    resources = sim.api().cluster.resources.get()
    by_type: dict = {}
    for entry in resources:
        by_type.setdefault(entry["type"], []).append(entry)
    assert set(by_type) == {"qemu", "lxc", "node", "storage", "sdn"}
    assert len(by_type["qemu"]) + len(by_type["lxc"]) == 30 and len(by_type["node"]) == 3
    assert len(by_type["storage"]) == 6, "2 storages on 3 nodes"
    guest = by_type["qemu"][0]
    assert {"id", "type", "node", "status", "name", "vmid", "maxcpu", "cpu", "maxmem", "mem", "maxdisk", "disk",
            "uptime", "template", "netin", "netout", "diskread", "diskwrite"} <= set(guest)
    assert guest["id"] == f"qemu/{guest['vmid']}"
    node = by_type["node"][0]
    assert {"id", "node", "status", "maxcpu", "cpu", "maxmem", "mem", "maxdisk", "disk", "uptime", "level",
            "cgroup-mode"} <= set(node) and node["cgroup-mode"] == 2
    store = by_type["storage"][0]
    assert {"id", "storage", "node", "status", "plugintype", "shared", "content", "maxdisk", "disk"} <= set(store)
    assert store["id"] == f"storage/{store['node']}/{store['storage']}"
    vmids = [str(e["vmid"]) for e in resources if e["type"] in ("qemu", "lxc")]
    assert vmids == sorted(vmids), "guests come first, ordered like the real server"


def test_resources_type_filter(sim):
    api = sim.api()
    assert {e["type"] for e in api.cluster.resources.get(type="vm")} == {"qemu", "lxc"}
    assert {e["type"] for e in api.cluster.resources.get(type="node")} == {"node"}
    assert {e["type"] for e in api.cluster.resources.get(type="storage")} == {"storage"}
    assert {e["type"] for e in api.cluster.resources.get(type="sdn")} == {"sdn"}


def test_resources_are_filtered_by_privileges(sim, make_principal):
    nobody = make_principal(user_acl=[("/", "PVEAuditor", 1)])
    assert nobody.token_api().cluster.resources.get() == [], "a token without ACLs sees nothing, and no 403"
    vm_only = make_principal(user_acl=[("/", "PVEAuditor", 1)],
                             token_acl=[("/vms/100", "PVEAuditor", 0), ("/storage/local", "PVEAuditor", 0)])
    seen = vm_only.token_api().cluster.resources.get()
    assert sorted(e["id"] for e in seen) == ["qemu/100", "storage/pve1/local", "storage/pve2/local",
                                             "storage/pve3/local"]
    nodes_only = make_principal(user_acl=[("/nodes", "PVEAuditor", 1)])
    assert {e["type"] for e in nodes_only.user_api().cluster.resources.get()} == {"node"}
    most = make_principal(user_acl=[("/", "PVEAuditor", 1), ("/vms/105", "NoAccess", 0)])
    ids = {e["id"] for e in most.user_api().cluster.resources.get(type="vm")}
    assert len(ids) == 29 and not any(i.endswith("/105") for i in ids)


def test_guest_status_and_power_tasks(sim):
    api = sim.api()
    guests = {e["vmid"]: e for e in api.cluster.resources.get(type="vm")}
    vmid = next(v for v, e in guests.items() if e["type"] == "qemu" and e["status"] == "running" and not e["template"])
    node = guests[vmid]["node"]
    current = api.nodes(node).qemu(vmid).status.current.get()
    assert current["status"] == "running" and current["vmid"] == vmid and current["qmpstatus"] == "running"
    assert current["ha"]["managed"] in (0, 1) and current["uptime"] > 0
    upid = api.nodes(node).qemu(vmid).status.stop.post()
    match = UPID_RE.match(upid)
    assert match and match.groups() == (node, "qmstop", str(vmid), "root@pam!admin")
    assert api.nodes(node).tasks(upid).status.get()["status"] == "running"
    status = sim.wait_task(upid)
    assert status["exitstatus"] == "OK" and status["type"] == "qmstop" and status["user"] == "root@pam"
    assert api.nodes(node).qemu(vmid).status.current.get()["status"] == "stopped"
    assert sim.wait_task(api.nodes(node).qemu(vmid).status.start.post())["exitstatus"] == "OK"
    assert api.nodes(node).qemu(vmid).status.current.get()["status"] == "running"
    failed = sim.wait_task(api.nodes(node).qemu(vmid).status.start.post())
    assert failed["exitstatus"] == f"VM {vmid} already running"
    log = api.nodes(node).tasks(upid).log.get()
    assert log[-1] == {"n": len(log), "t": "TASK OK"}
    assert any(t["upid"] == upid for t in api.nodes(node).tasks.get())
    assert any(t["upid"] == upid for t in api.cluster.tasks.get())


def test_lxc_power_errors_before_the_task(sim):
    api = sim.api()
    ct = next(e for e in api.cluster.resources.get(type="vm") if e["type"] == "lxc" and e["status"] == "stopped")
    exc = raises(api.nodes(ct["node"]).lxc(ct["vmid"]).status.shutdown.post)
    assert (exc.status_code, exc.content) == (500, f"CT {ct['vmid']} not running")


def test_unknown_guest_and_wrong_node(sim):
    exc = raises(sim.api().nodes("pve1").qemu(99999).status.current.get)
    assert (exc.status_code, exc.content) == (500, "Configuration file 'nodes/pve1/qemu-server/99999.conf' does not exist")
    exc = raises(sim.api().nodes("pve2").lxc(100).status.current.get)
    assert exc.content == "Configuration file 'nodes/pve2/lxc/100.conf' does not exist"
    exc = raises(sim.api().nodes("pve1").qemu(42).status.current.get)
    assert exc.status_code == 400 and exc.errors == {"vmid": "value must have a minimum value of 100"}


def test_task_status_errors(sim):
    exc = raises(sim.api().nodes("pve1").tasks("not-a-upid").status.get)
    assert exc.status_code == 400 and exc.errors == {"upid": "unable to parse worker upid"}
    fake = "UPID:pve1:00000001:00000001:00000001:qmstart:100:root@pam:"
    exc = raises(sim.api().nodes("pve1").tasks(fake).status.get)
    assert exc.errors == {"upid": "no such task"}


def test_node_storage_and_guest_lists(sim):
    api = sim.api()
    stores = api.nodes("pve1").storage.get()
    assert [s["storage"] for s in stores] == ["local", "local-lvm"]
    assert {"total", "used", "avail", "active", "enabled", "content", "type", "shared"} <= set(stores[0])
    qemu = api.nodes("pve1").qemu.get()
    lxc = api.nodes("pve1").lxc.get()
    assert len(qemu) + len(lxc) == 10 and all(e["type"] == "lxc" for e in lxc)
    config = api.nodes("pve1").qemu(qemu[0]["vmid"]).config.get()
    assert config["name"] == qemu[0]["name"] and "digest" in config
