"""Third-party clients: prometheus-pve-exporter's collectors, connection reuse, compression."""
from __future__ import annotations

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from pve_exporter.collector import CollectorsOptions, collect_pve
from pve_exporter.collector.cluster import ClusterResourcesCollector, StatusCollector, VersionCollector

pytestmark = pytest.mark.pvesim


def test_prometheus_pve_exporter_collects(sim):
    config = {"user": "root@pam", "token_name": "admin", "token_value": sim.admin_token_secret,
              "verify_ssl": sim.ca_cert, "port": sim.port}
    # every collector, as the exporter's defaults enable them all
    options = CollectorsOptions(status=True, version=True, subscription=True, node=True, cluster=True,
                                resources=True, backup_info=True, config=True, replication=True, qdevice=True)
    text = collect_pve(config, sim.host, cluster=True, node=True, options=options).decode()
    assert 'pve_up{id="cluster/pvesim"} 1.0' in text
    assert 'pve_up{id="node/pve1"} 1.0' in text
    assert 'pve_version_info{release="9.1",repoid="a9a13b1d",version="9.1.3"} 1.0' in text
    assert 'pve_cluster_info{id="cluster/pvesim",nodes="3",quorate="1",version="5"} 1.0' in text
    assert 'pve_node_info{id="node/pve2",level="",name="pve2",nodeid="2"} 1.0' in text
    assert 'pve_storage_info{content="backup,iso,vztmpl",id="storage/pve1/local"' in text
    assert 'pve_guest_info{id="qemu/100"' in text or 'pve_guest_info{id="lxc/100"' in text
    assert "pve_onboot_status{" in text, "the node config collector read /nodes/pve1/*/{vmid}/config"
    assert text.count("pve_memory_size_bytes{") == 30 + 3
    assert 'pve_not_backed_up_total{id="cluster/pvesim"} 30.0' in text
    assert 'pve_subscription_status{id="node/pve1",status="notfound"} 1.0' in text


def test_exporter_sees_only_what_its_token_may_audit(sim, make_principal):
    who = make_principal(user_acl=[("/", "PVEAuditor", 1)],
                         token_acl=[("/vms/100", "PVEAuditor", 0), ("/nodes", "PVEAuditor", 1)])
    registry = CollectorRegistry()
    api = who.token_api()
    registry.register(ClusterResourcesCollector(api))
    registry.register(VersionCollector(api))
    text = generate_latest(registry).decode()
    ids = {line.split('id="')[1].split('"')[0] for line in text.splitlines() if line.startswith("pve_memory_size_bytes{")}
    assert ids == {"node/pve1", "node/pve2", "node/pve3"} | ({"qemu/100"} if "qemu/100" in text else {"lxc/100"})
    status = CollectorRegistry()
    status.register(StatusCollector(api))
    with pytest.raises(Exception) as info:
        generate_latest(status)  # /cluster/status needs Sys.Audit on /
    assert "403" in str(info.value)


def test_keep_alive_reuses_one_connection(sim):
    session = sim.session()
    sockets = set()
    for _request in range(5):
        resp = session.get(f"{sim.url}/cluster/resources", timeout=5, stream=True)
        sockets.add(id(resp.raw._connection.sock))  # pylint: disable=protected-access
        assert resp.headers["Connection"] == "Keep-Alive"
        resp.content  # pylint: disable=pointless-statement
    assert len(sockets) == 1
    resp = session.get(f"{sim.url}/cluster/resources", timeout=5)
    assert resp.headers["Content-Encoding"] == "gzip" and resp.json()["data"]
    assert resp.headers["Server"] == "pve-api-daemon/3.0"
    assert resp.headers["Content-Type"] == "application/json;charset=UTF-8"
    resp = session.get(f"{sim.url}/nope", timeout=5)
    assert resp.status_code == 501 and resp.headers["Connection"] == "close", "errors close the connection"
