"""update.yml's rollout control on two real hosts (throwaway podman containers, no network).

Packages and compose are switched off (no mirror, no Docker here): what is
tested is the order and the stop rule: one host at a time, the health URL
checked on each before the next one starts, and the first unhealthy host
ends the run before the next host is touched.
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import uuid

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
COLLECTIONS = os.path.join(ROOT, "build", "collections")
IMAGE = os.environ.get("PAI_IMAGE", "localhost/proxmox-ai-debian12:latest")

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("podman"), reason="needs root and podman")]


def _podman(*args, check=True):
    return subprocess.run(["podman", *args], capture_output=True, text=True, timeout=120, check=check)


@pytest.fixture(name="hosts", scope="module")
def fixture_hosts():
    if _podman("image", "exists", IMAGE, check=False).returncode != 0:
        pytest.skip(f"{IMAGE} missing: run scripts/build-image.sh")
    tag = uuid.uuid4().hex[:6]
    names = [f"pai-update-a-{tag}", f"pai-update-b-{tag}"]
    try:
        for name in names:
            _podman("run", "-d", "--name", name, "--network=none", IMAGE, "sleep", "infinity")
        yield names
    finally:
        for name in names:
            _podman("rm", "-f", "-t", "0", name, check=False)


def _health(host, up):
    if up:
        _podman("exec", host, "sh", "-c", "mkdir -p /srv/h && echo ok > /srv/h/health")
        _podman("exec", "-d", host, "python3", "-m", "http.server", "8080", "--bind", "127.0.0.1", "--directory", "/srv/h")
    else:
        _podman("exec", host, "pkill", "-f", "http.server", check=False)


def _play(hosts, tmp_path):
    inventory = tmp_path / "hosts.ini"
    inventory.write_text("[docker_hosts]\n" + "".join(
        f"{h} ansible_connection=containers.podman.podman ansible_python_interpreter=/usr/bin/python3\n" for h in hosts))
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=COLLECTIONS, ANSIBLE_NOCOLOR="1", ANSIBLE_RETRY_FILES_ENABLED="0")
    cmd = ["ansible-playbook", "-i", str(inventory), os.path.join(ROOT, "playbooks", "update.yml"),
           "-e", "update_target=docker_hosts", "-e", "update_packages_enabled=false",
           "-e", "update_compose_enabled=false", "-e", "update_health_url=http://127.0.0.1:8080/health",
           "-e", "update_health_retries=3", "-e", "update_health_delay=1"]
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600, check=False)


def _health_results(stdout):
    """(status, host) of every 'Wait until the host is healthy' result, in output order."""
    results = []
    for block in stdout.split("TASK [")[1:]:
        if block.startswith("Wait until the host is healthy"):
            results += re.findall(r"^(ok|fatal): \[([^\]]+)\]", block, re.M)
    return results


def test_one_host_at_a_time_with_health_checks(hosts, tmp_path):
    for host in hosts:
        _health(host, True)
    proc = _play(hosts, tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert _health_results(proc.stdout) == [("ok", hosts[0]), ("ok", hosts[1])]
    assert proc.stdout.count("PLAY [Update hosts one at a time]") == 2  # serial: 1 -> one batch per host


def test_first_unhealthy_host_stops_the_run(hosts, tmp_path):
    _health(hosts[0], False)
    _health(hosts[1], True)
    proc = _play(hosts, tmp_path)
    assert proc.returncode != 0
    assert _health_results(proc.stdout) == [("fatal", hosts[0])]
    assert f"[{hosts[1]}]" not in proc.stdout  # the second host was never touched
