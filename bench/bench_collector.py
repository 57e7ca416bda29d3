# -*- coding: utf-8 -*-
# Copyright: (c) 2025, Proxmox AI hardening maintainers
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Benchmark of the collector against prometheus-pve-exporter on the same simulated clusters.

For each size (3 nodes / 300 guests, 16 / 3,000, 64 / 10,000 by default) one
simulator (tools/pvesim) serves both, in this process tree:

- API calls per poll, counted by the simulator itself (zero-delay request
  faults whose counters it decrements), and poll wall time of our collector
  (``/cluster/status`` + ``/cluster/resources``, then one bulk write) versus one
  full scrape of the cluster by prometheus-pve-exporter (the cluster scrape plus
  the per-node scrape of every node, as its documentation deploys it: the node
  scrape reads every guest's configuration);
- sample rows written per second to PostgreSQL (COPY, throwaway cluster with
  fsync off as in the tests);
- resident memory (peak) of a collector process polling the largest size.

Prints the figures and whether the goals hold: at most 3 API calls per poll,
poll time at the largest size at most a fifth of the exporter's.
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
for _path in (os.path.join(ROOT, "build", "collections"), ROOT):
    if _path not in sys.path:
        sys.path.insert(0, _path)

# pylint: disable=wrong-import-position
import psycopg2  # noqa: E402
import yaml  # noqa: E402

from tests.integration.monitoring.helpers import MIGRATIONS, RequestCounter, install_collector  # noqa: E402
from tests.support.postgres import start_cluster, stop_cluster  # noqa: E402
from tests.support.pvesim import start_sim, stop_sim  # noqa: E402

SIZES = ((3, 100), (16, 188), (64, 157))  # nodes, guests per node: 300, 3,008, 10,048 guests


def log(msg: str) -> None:
    print(msg, flush=True)


class _StatusAs:  # pylint: disable=too-few-public-methods
    """/cluster/status as seen from ``node`` (the exporter's node scrape reads the local node from it)."""

    def __init__(self, resource, node):
        self.resource, self.node = resource, node

    def get(self, *args, **kwargs):
        return [dict(e, local=int(e.get("name") == self.node)) if e.get("type") == "node" else e
                for e in self.resource.get(*args, **kwargs)]


class _ClusterAs:  # pylint: disable=too-few-public-methods
    def __init__(self, resource, node):
        self.resource, self.node = resource, node

    def __getattr__(self, name):
        attr = getattr(self.resource, name)
        return _StatusAs(attr, self.node) if name == "status" else attr

    def __call__(self, *args):
        return self.resource(*args)


class ApiAs:  # pylint: disable=too-few-public-methods
    """A proxmoxer client that answers the exporter's 'which node am I' question with ``node``.

    Every request still goes to the simulator; only the ``local`` flag of the
    answer changes, so the exporter's node scrape of each node runs its real code.
    """

    def __init__(self, api, node):
        self.api, self.node = api, node

    def __getattr__(self, name):
        attr = getattr(self.api, name)
        return _ClusterAs(attr, self.node) if name == "cluster" else attr

    def __call__(self, *args):
        return self.api(*args)


def exporter_poll(sim, nodes: list) -> float:
    """One full scrape of the cluster by prometheus-pve-exporter; returns seconds."""
    # pylint: disable=import-outside-toplevel
    from prometheus_client import CollectorRegistry, generate_latest
    from proxmoxer import ProxmoxAPI
    from pve_exporter.collector import CollectorsOptions, collect_pve
    from pve_exporter.collector.node import NodeConfigCollector, NodeReplicationCollector, SubscriptionCollector

    user, token = sim.admin_token_id.split("!", 1)
    config = {"user": user, "token_name": token, "token_value": sim.admin_token_secret, "verify_ssl": sim.ca_cert,
              "port": sim.port}
    options = CollectorsOptions(status=True, version=True, subscription=True, node=True, cluster=True,
                                resources=True, backup_info=False, config=True, replication=True, qdevice=False)
    started = time.perf_counter()
    collect_pve(config, sim.host, True, False, options)  # the cluster scrape
    for node in nodes:                                     # the node scrape of every node
        api = ApiAs(ProxmoxAPI(sim.host, **config), node)
        registry = CollectorRegistry()
        for collector in (SubscriptionCollector, NodeConfigCollector, NodeReplicationCollector):
            registry.register(collector(api))
        generate_latest(registry)
    return time.perf_counter() - started


def write_files(folder: str, sim, pg, dbname: str, poll_interval: float = 30.0) -> str:
    user, token = sim.admin_token_id.split("!", 1)
    nodes = os.path.join(folder, "nodes.yml")
    with open(nodes, "w", encoding="utf-8") as handle:
        yaml.safe_dump({"nodes": [{"name": "bench", "host": sim.host, "port": sim.port, "user": user,
                                   "token_name": token, "token_value": sim.admin_token_secret, "verify_ssl": True,
                                   "ca_cert": sim.ca_cert}]}, handle)
    os.chmod(nodes, 0o600)
    path = os.path.join(folder, "collector.yml")
    with open(path, "w", encoding="utf-8") as handle:
        yaml.safe_dump({"nodes_file": nodes, "poll_interval": poll_interval, "log_level": "WARNING",
                        "request_timeout": 120,
                        "database": {"host": "localhost", "port": pg.port, "dbname": dbname, "user": pg.user,
                                     "password": pg.password, "sslmode": "verify-full", "sslrootcert": pg.ssl_ca}},
                       handle)
    os.chmod(path, 0o600)
    return path


def new_db(pg, name: str) -> None:
    from ansible_collections.proxmox_ai.hardening.plugins.module_utils._migrations import (  # pylint: disable=import-outside-toplevel
        apply_migrations)
    conn = pg.connect()
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute(f'CREATE DATABASE "{name}"')
    conn.close()
    conn = pg.connect(name)
    apply_migrations(conn, MIGRATIONS)
    conn.close()


def bench_size(pg, workdir: str, nodes: int, per_node: int, polls: int, exporter: bool) -> dict:
    from proxmox_ai_collector import collector, config  # pylint: disable=import-outside-toplevel,import-error
    sim = start_sim(nodes=nodes, guests_per_node=per_node, storages=2)
    try:
        dbname = f"bench_{nodes}"
        new_db(pg, dbname)
        folder = tempfile.mkdtemp(dir=workdir)
        col = collector.Collector(config.load(write_files(folder, sim, pg, dbname)))
        col.poll_once()  # warm-up: TLS handshake, first resources build of the simulator
        counter = RequestCounter(sim)
        api_times, totals = [], []
        for _round in range(polls):
            started = time.perf_counter()
            summary = col.poll_once()
            totals.append(time.perf_counter() - started)
            api_times.append(sum(summary["poll_seconds"].values()))
            assert summary["written"] and not summary["failed"], summary
        ours = counter.counts()
        stats = col.store.stats
        result = {
            "guests": nodes * per_node, "nodes": nodes, "rows_per_poll": summary["rows"],
            "calls_per_poll": sum(ours.values()) / polls, "other_calls": ours["."],
            "api_s": statistics.median(api_times), "poll_s": statistics.median(totals),
            "rows_per_s": stats["rows_written"] / stats["write_seconds"] if stats["write_seconds"] else 0.0,
        }
        col.shutdown()
        if exporter:
            sim.clear_faults()
            counter = RequestCounter(sim, paths=())
            result["exporter_s"] = exporter_poll(sim, [f"pve{i + 1}" for i in range(nodes)])
            result["exporter_calls"] = counter.counts()["."]
        return result
    finally:
        stop_sim(sim)


def rss_at(pg, workdir: str, pkg: str, nodes: int, per_node: int, polls: int = 4) -> dict:
    """Peak and current RSS of a real collector process after ``polls`` polls of the largest cluster."""
    sim = start_sim(nodes=nodes, guests_per_node=per_node, storages=2)
    try:
        dbname = f"bench_rss_{nodes}"
        new_db(pg, dbname)
        folder = tempfile.mkdtemp(dir=workdir)
        path = write_files(folder, sim, pg, dbname, poll_interval=1.0)
        env = dict(os.environ, PYTHONPATH=pkg)
        with subprocess.Popen([sys.executable, "-m", "proxmox_ai_collector", "collect", "--config", path],
                              env=env) as proc:
            conn = psycopg2.connect(pg.dsn(dbname))
            conn.autocommit = True
            deadline = time.monotonic() + 300
            while time.monotonic() < deadline:
                with conn.cursor() as cur:
                    cur.execute("SELECT count(DISTINCT created_at) FROM node_samples")
                    if cur.fetchone()[0] >= polls:
                        break
                time.sleep(0.5)
            conn.close()
            status = {}
            with open(f"/proc/{proc.pid}/status", encoding="utf-8") as handle:
                for line in handle:
                    key, value = line.split(":", 1) if ":" in line else (line, "")
                    status[key] = value.strip()
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=60)
        return {"hwm_mib": int(status["VmHWM"].split()[0]) / 1024, "rss_mib": int(status["VmRSS"].split()[0]) / 1024}
    finally:
        stop_sim(sim)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--polls", type=int, default=3, help="polls of our collector per size (median)")
    parser.add_argument("--sizes", default=",".join(f"{n}x{g}" for n, g in SIZES),
                        help="comma list of NODESxGUESTS_PER_NODE")
    parser.add_argument("--no-exporter", action="store_true", help="skip prometheus-pve-exporter")
    args = parser.parse_args()
    sizes = [tuple(int(x) for x in s.split("x")) for s in args.sizes.split(",")]
    workdir = tempfile.mkdtemp(prefix="pai-bench-collector-")
    pkg = install_collector(workdir)
    sys.path.insert(0, pkg)
    pg = start_cluster()
    try:
        results = []
        for nodes, per_node in sizes:
            log(f"-- {nodes} nodes / {nodes * per_node} guests")
            result = bench_size(pg, workdir, nodes, per_node, args.polls, not args.no_exporter)
            results.append(result)
            line = (f"   ours: {result['calls_per_poll']:.1f} API calls/poll ({result['other_calls']} outside "
                    f"/cluster/status|resources), API {result['api_s'] * 1000:.0f} ms, poll incl. DB write "
                    f"{result['poll_s'] * 1000:.0f} ms, {result['rows_per_poll']} rows/poll, "
                    f"{result['rows_per_s']:.0f} rows/s written")
            log(line)
            if "exporter_s" in result:
                log(f"   prometheus-pve-exporter: {result['exporter_calls']} API calls/scrape, "
                    f"{result['exporter_s'] * 1000:.0f} ms  -> ours is {result['exporter_s'] / result['poll_s']:.0f}x "
                    f"faster, {result['exporter_calls'] / max(1, result['calls_per_poll']):.0f}x fewer calls")
        big = max(sizes, key=lambda s: s[0] * s[1])
        memory = rss_at(pg, workdir, pkg, *big)
        log(f"-- collector process at {big[0] * big[1]} guests: peak RSS {memory['hwm_mib']:.1f} MiB, "
            f"current {memory['rss_mib']:.1f} MiB")
        calls_ok = all(r["calls_per_poll"] <= 3 for r in results)
        largest = results[-1]
        log(f"goal: <= 3 API calls per poll at every size: {'OK' if calls_ok else 'MISSED'}")
        if "exporter_s" in largest:
            ratio = largest["poll_s"] / largest["exporter_s"]
            log(f"goal: poll time at {largest['guests']} guests <= 1/5 of the exporter's: "
                f"{'OK' if ratio <= 0.2 else 'MISSED'} ({ratio:.3f})")
        return 0 if calls_ok else 1
    finally:
        stop_cluster(pg)


if __name__ == "__main__":
    sys.exit(main())
