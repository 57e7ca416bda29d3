"""Benchmark of the Proxmox VE API simulator's /cluster/resources.

Starts ``python -m tools.pvesim`` as a subprocess for 3 nodes/300 guests,
16/3000 and 64/10000 (or the sizes given with --sizes), then times --requests
GET /cluster/resources through one requests.Session with CA verification:
as the admin token (everything, served from the cached answer) and as a
privilege-separated token that may audit /vms except one guest (filtered per
request).  Prints median and p95 latency, the answer size (JSON and gzip on
the wire), the JSON decode time on the client, the entries returned, and the
simulator's start-up time.  Goal: a 64-node, 10,000-guest cluster answers well
under a second.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

import requests

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_SIZES = "3:300,16:3000,64:10000"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Sim:
    """One simulator subprocess in a temporary folder."""

    def __init__(self, nodes: int, guests: int, storages: int):
        self.dir = tempfile.mkdtemp(prefix="bench-pvesim-")
        self.port = _free_port()
        self.ca = os.path.join(self.dir, "ca.pem")
        token_file = os.path.join(self.dir, "admin-token")
        cmd = [sys.executable, "-m", "tools.pvesim", "--port", str(self.port), "--nodes", str(nodes),
               "--guests", str(guests), "--storages", str(storages), "--ca-cert-out", self.ca,
               "--admin-token-out", token_file, "--state-file", os.path.join(self.dir, "state.json")]
        started = time.perf_counter()
        self.proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL,  # pylint: disable=consider-using-with
                                     stderr=subprocess.STDOUT)
        self.url = f"https://127.0.0.1:{self.port}/api2/json"
        while True:
            if self.proc.poll() is not None:
                raise SystemExit(f"simulator exited with {self.proc.returncode}")
            try:
                requests.get(f"{self.url}/version", verify=self.ca, timeout=2)
                break
            except (requests.ConnectionError, OSError):
                time.sleep(0.05)
        self.startup = time.perf_counter() - started
        with open(token_file, encoding="utf-8") as handle:
            self.admin = handle.read().strip()

    def session(self, token: str) -> requests.Session:
        sess = requests.Session()
        sess.trust_env = False
        sess.verify = self.ca
        sess.headers["Authorization"] = f"PVEAPIToken={token}"
        return sess

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        shutil.rmtree(self.dir, ignore_errors=True)


def _filtered_token(sim: Sim) -> str:
    """A privsep token with PVEAuditor on /vms, except NoAccess on /vms/100."""
    admin = sim.session(sim.admin)
    admin.post(f"{sim.url}/access/users", data={"userid": "bench@pve"}, timeout=30).raise_for_status()
    resp = admin.post(f"{sim.url}/access/users/bench@pve/token/mon", data={"privsep": "1"}, timeout=30)
    resp.raise_for_status()
    token = resp.json()["data"]
    for data in ({"path": "/", "roles": "PVEAuditor", "users": "bench@pve"},
                 {"path": "/vms", "roles": "PVEAuditor", "tokens": token["full-tokenid"]},
                 {"path": "/vms/100", "roles": "NoAccess", "tokens": token["full-tokenid"]}):
        admin.put(f"{sim.url}/access/acl", data=data, timeout=30).raise_for_status()
    return f"{token['full-tokenid']}={token['value']}"


def _measure(session: requests.Session, url: str, count: int) -> dict:
    latencies, decode = [], []
    wire = size = entries = 0
    for _request in range(count):
        started = time.perf_counter()
        resp = session.get(url, timeout=60)
        body = resp.content
        latencies.append(time.perf_counter() - started)
        resp.raise_for_status()
        started = time.perf_counter()
        entries = len(json.loads(body)["data"])
        decode.append(time.perf_counter() - started)
        size = len(body)
        wire = int(resp.headers.get("Content-Length", size))
    latencies.sort()
    return {"median": statistics.median(latencies) * 1000, "p95": latencies[max(0, int(len(latencies) * 0.95) - 1)] * 1000,
            "max": latencies[-1] * 1000, "decode": statistics.median(decode) * 1000, "size": size, "wire": wire,
            "entries": entries}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--sizes", default=DEFAULT_SIZES, help=f"nodes:guests list (default {DEFAULT_SIZES})")
    parser.add_argument("--requests", type=int, default=30, help="requests per measurement (default 30)")
    parser.add_argument("--storages", type=int, default=4, help="storages per node (default 4)")
    args = parser.parse_args(argv)
    print(f"{'cluster':>14} {'caller':>9} {'entries':>8} {'median ms':>10} {'p95 ms':>8} {'max ms':>8} "
          f"{'decode ms':>10} {'JSON bytes':>11} {'wire bytes':>11} {'startup s':>10}")
    worst = 0.0
    for size in args.sizes.split(","):
        nodes, guests = (int(v) for v in size.split(":"))
        sim = Sim(nodes, guests, args.storages)
        try:
            callers = {"admin": sim.session(sim.admin), "filtered": sim.session(_filtered_token(sim))}
            for name, session in callers.items():
                session.get(f"{sim.url}/cluster/resources", timeout=60)  # connection set up, cache warm
                fig = _measure(session, f"{sim.url}/cluster/resources", args.requests)
                worst = max(worst, fig["p95"])
                print(f"{f'{nodes}n/{guests}g':>14} {name:>9} {fig['entries']:>8} {fig['median']:>10.1f} "
                      f"{fig['p95']:>8.1f} {fig['max']:>8.1f} {fig['decode']:>10.1f} {fig['size']:>11} "
                      f"{fig['wire']:>11} {sim.startup:>10.2f}")
        finally:
            sim.stop()
    verdict = "holds" if worst < 1000 else "MISSED"
    print(f"goal (/cluster/resources p95 well under 1 s at every size): {verdict}, worst p95 {worst:.1f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
