"""The collector API as a real uvicorn process over HTTP, reading a real PostgreSQL."""
from __future__ import annotations

import contextlib
import os
import secrets
import socket
import subprocess
import sys

import pytest
import requests

from .helpers import run_cli, wait_for, write_config

pytestmark = [pytest.mark.postgres, pytest.mark.pvesim]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def key_file(tmp_path, key: str) -> str:
    path = tmp_path / "api-key"
    path.write_text(key + "\n")
    path.chmod(0o600)
    return str(path)


@contextlib.contextmanager
def api_process(pkg, config):
    env = dict(os.environ, PYTHONPATH=pkg)
    with subprocess.Popen([sys.executable, "-m", "proxmox_ai_collector", "api", "--config", config],
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env) as proc:
        try:
            yield proc
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()


def wait_up(proc, url: str) -> None:
    def up():
        if proc.poll() is not None:
            raise AssertionError(f"API exited with {proc.returncode}: {proc.stdout.read()}")
        try:
            return requests.get(url + "/health", timeout=2).status_code == 200
        except requests.ConnectionError:
            return False
    wait_for(up, 90, what="the API to answer")


@pytest.fixture()
def api(collector_pkg, pve_sim_fresh, mon_db, tmp_path):
    """A running API with a strong key and a database that has samples and an alert."""
    from proxmox_ai_collector import collector, config  # pylint: disable=import-outside-toplevel
    key = secrets.token_hex(32)
    path = write_config(str(tmp_path), pve_sim_fresh, mon_db,
                        api={"port": free_port(), "key_file": key_file(tmp_path, key), "reject_burst": 3})
    col = collector.Collector(config.load(path))
    pve_sim_fresh.inject(node="pve2", online=False)
    col.poll_once()
    col.shutdown()
    for attempt in range(3):  # the free port may be taken by a parallel test before uvicorn binds it
        port = free_port()
        path = write_config(str(tmp_path), pve_sim_fresh, mon_db,
                            api={"port": port, "key_file": key_file(tmp_path, key), "reject_burst": 3})
        url = f"http://127.0.0.1:{port}"
        with api_process(collector_pkg, path) as proc:
            try:
                wait_up(proc, url)
            except AssertionError:
                if attempt == 2 or proc.poll() is None:
                    raise
                continue
            yield url, key, mon_db, proc
            return


def test_routes_need_the_key_401_403_then_429_on_the_11th(api):
    url, key = api[0], api[1]
    answers = [requests.get(url + "/nodes", timeout=5)]
    answers.append(requests.get(url + "/nodes", headers={"X-API-Key": "wrong-" + key[6:]}, timeout=5))
    answers.append(requests.get(url + "/alerts", headers={"X-API-Key": key[:-1]}, timeout=5))
    good = [requests.get(url + path, headers={"X-API-Key": key}, timeout=5)
            for path in ("/nodes", "/alerts", "/nodes", "/alerts", "/nodes", "/alerts", "/nodes")]
    eleventh = requests.get(url + "/nodes", headers={"X-API-Key": key}, timeout=5)
    assert [a.status_code for a in answers] == [401, 403, 403]
    assert [g.status_code for g in good] == [200] * 7
    assert eleventh.status_code == 429
    nodes = {n["node"]: n for n in good[0].json()["nodes"]}
    assert set(nodes) == {"pve1", "pve2", "pve3"} and nodes["pve2"]["status"] == "offline"
    assert nodes["pve1"]["mem_total"] > 0 and nodes["pve1"]["cluster"] == "pvesim"
    opened = good[1].json()["alerts"]
    # the collector's alert, and the security alert of the three rejections above (reject_burst: 3)
    assert sorted((a["alert_type"], a["entity"], a["status"]) for a in opened) == [
        ("node_offline", "pve2", "open"), ("security", "127.0.0.1", "open")]
    # /health is not rate limited and says nothing secret
    health = requests.get(url + "/health", timeout=5)
    assert health.status_code == 200 and health.json() == {"status": "ok", "database": "ok"}


def test_rejection_burst_raises_a_security_alert_and_is_logged(api):
    url, key, db, proc = api
    for _round in range(3):
        assert requests.get(url + "/alerts", headers={"X-API-Key": "x" * 64}, timeout=5).status_code == 403
    rows = db.query("SELECT alert_type, entity, severity, status, details->>'kind' FROM alerts "
                    "WHERE alert_type = 'security'")
    assert rows == [("security", "127.0.0.1", "warning", "open", "api_rejections")]
    requests.get(url + "/alerts", timeout=5)
    assert db.scalar("SELECT occurrences FROM alerts WHERE alert_type = 'security'") == 2
    proc.terminate()
    proc.wait(timeout=15)
    log = proc.stdout.read()
    assert "api rejected request: status=403 client=127.0.0.1 path=/alerts" in log
    assert key not in log


def test_proxied_clients_are_limited_separately_only_behind_a_trusted_proxy(api):
    url, key = api[0], api[1]
    headers = {"X-API-Key": key}
    first = [requests.get(url + "/nodes", headers=dict(headers, **{"X-Forwarded-For": "203.0.113.7"}), timeout=5)
             for _round in range(11)]
    other = requests.get(url + "/nodes", headers=dict(headers, **{"X-Forwarded-For": "203.0.113.8"}), timeout=5)
    assert [r.status_code for r in first] == [200] * 10 + [429]
    assert other.status_code == 200


@pytest.mark.parametrize("key, why", [
    (None, "refusing to start: cannot read the API key file"),
    ("changeme", "default or placeholder"),
    ("CHANGEME-changeme-CHANGEME-changeme-0000", "default or placeholder"),
    ("a1B2c3D4e5", "shorter than 32 characters"),
    ("ab" * 20, "weak value"),
    ("0123456789abcdef" * 2, "weak value"),
    ("7Hq2" * 10, "not random enough"),
])
def test_refuses_to_start_with_a_missing_default_or_weak_key(collector_pkg, mon_db, tmp_path, key, why):
    port = free_port()
    keyfile = key_file(tmp_path, key) if key is not None else str(tmp_path / "missing-key")
    path = write_config(str(tmp_path), None, mon_db, api={"port": port, "key_file": keyfile})
    result = run_cli(collector_pkg, "api", "--config", path, timeout=60)
    assert result.returncode == 2
    assert why in result.stderr
    if key:
        assert key not in result.stderr
    with pytest.raises(requests.ConnectionError):
        requests.get(f"http://127.0.0.1:{port}/health", timeout=2)


def test_listens_on_loopback_only_by_default(api):
    url = api[0]
    port = int(url.rsplit(":", 1)[1])
    listening = subprocess.run(["ss", "-Htln", f"sport = :{port}"], capture_output=True, text=True, check=True).stdout
    assert [line.split()[3] for line in listening.splitlines()] == [f"127.0.0.1:{port}"]
