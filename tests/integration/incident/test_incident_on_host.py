"""incident_investigate.yml and incident_isolate.yml on a real Debian 12 systemd host.

The host is a throwaway podman container of the project's test image
(``scripts/build-image.sh``), reached through containers.podman.podman. A
unit that logs secrets is the "affected service": investigate must collect
its journal, scrubbed, into a 0700 folder with 0600 files on the controller;
isolate must stop and disable it (unit file kept) and both must leave
their action_logs rows.
"""
from __future__ import annotations

import glob
import os
import shutil
import stat
import subprocess
import sys
import time
import uuid

import pytest

from ansible_collections.proxmox_ai.hardening.plugins.module_utils._migrations import apply_migrations

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
MIGRATIONS = os.path.join(ROOT, "roles", "postgresql", "files", "migrations")
COLLECTIONS = os.path.join(ROOT, "build", "collections")
IMAGE = os.environ.get("PAI_IMAGE", "localhost/proxmox-ai-debian12:latest")
UNIT = "pai-incident-demo.service"
SECRET = "hunter2-" + uuid.uuid4().hex[:8]
UNIT_TEXT = f"""[Unit]
Description=Service hit by the incident (test)
[Service]
ExecStart=/bin/sh -c 'echo "login ok"; echo "db password={SECRET}"; echo "token: {SECRET}"; exec sleep infinity'
[Install]
WantedBy=multi-user.target
"""

pytestmark = [pytest.mark.slow, pytest.mark.postgres,
              pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("podman"), reason="needs root and podman")]


def _podman(*args, check=True):
    return subprocess.run(["podman", *args], capture_output=True, text=True, timeout=120, check=check)


@pytest.fixture(name="host", scope="module")
def fixture_host():
    if _podman("image", "exists", IMAGE, check=False).returncode != 0:
        pytest.skip(f"{IMAGE} missing: run scripts/build-image.sh")
    name = "pai-incident-" + uuid.uuid4().hex[:8]
    _podman("run", "-d", "--name", name, "--systemd=always", "--cap-add=NET_ADMIN,NET_RAW,SYS_ADMIN",
            "--network=none", IMAGE, "/sbin/init")
    try:
        deadline = time.monotonic() + 60
        while _podman("exec", name, "systemctl", "is-system-running", check=False).stdout.strip() not in (
                "running", "degraded"):
            assert time.monotonic() < deadline, "systemd did not come up in the container"
            time.sleep(0.5)
        _podman("exec", name, "sh", "-c", f"cat > /etc/systemd/system/{UNIT} <<'EOF'\n{UNIT_TEXT}EOF")
        _podman("exec", name, "systemctl", "daemon-reload")
        _podman("exec", name, "systemctl", "enable", "--now", UNIT)
        deadline = time.monotonic() + 30
        while "token" not in _podman("exec", name, "journalctl", "-u", UNIT, "--no-pager", check=False).stdout:
            assert time.monotonic() < deadline, "the unit never logged"
            time.sleep(0.5)
        yield name
    finally:
        _podman("rm", "-f", "-t", "0", name, check=False)


@pytest.fixture(name="schema")
def fixture_schema(pg_server, pg_db):
    conn = pg_server.connect(pg_db)
    apply_migrations(conn, MIGRATIONS)
    conn.autocommit = True
    yield conn
    conn.close()


def _play(name, host, pg_server, pg_db, tmp_path, *extra_vars):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PROXMOX_", "PG"))}
    env.update(ANSIBLE_COLLECTIONS_PATH=COLLECTIONS, ANSIBLE_NOCOLOR="1", ANSIBLE_RETRY_FILES_ENABLED="0",
               ANSIBLE_HOST_KEY_CHECKING="0", PGHOST="localhost", PGPORT=str(pg_server.port), PGDATABASE=pg_db,
               PGUSER=pg_server.user, PGPASSWORD=pg_server.password, PGSSLMODE="verify-full",
               PGSSLROOTCERT=pg_server.ssl_ca, PAI_INCIDENT_DIR=str(tmp_path / "evidence"))
    inventory = tmp_path / "hosts.ini"
    inventory.write_text(f"{host} ansible_connection=containers.podman.podman ansible_python_interpreter=/usr/bin/python3\n"
                         f"localhost ansible_connection=local ansible_python_interpreter={sys.executable}\n")
    cmd = ["ansible-playbook", "-i", str(inventory), os.path.join(ROOT, "playbooks", name),
           "-e", f"incident_target={host}"]
    for item in extra_vars:
        cmd += ["-e", item]
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600, check=False)


def _statuses(conn, action):
    with conn.cursor() as cur:
        cur.execute("SELECT status, entity FROM action_logs WHERE action_type = %s ORDER BY id", (action,))
        return cur.fetchall()


@pytest.mark.skipif(not os.path.exists(os.path.join(ROOT, "plugins", "filter", "sanitize_log.py")),
                    reason="the proxmox_ai.hardening.sanitize_log filter (plugins/filter/sanitize_log.py) is not there yet")
def test_investigate_collects_scrubbed_logs(host, pg_server, pg_db, schema, tmp_path):
    proc = _play("incident_investigate.yml", host, pg_server, pg_db, tmp_path, "incident_id=security-001",
                 "incident_service_kind=systemd", f"incident_service={UNIT}", "incident_log_lines=50")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert SECRET not in proc.stdout + proc.stderr
    folders = glob.glob(str(tmp_path / "evidence" / "security-001-*T*Z"))
    assert len(folders) == 1, folders
    logfile = os.path.join(folders[0], host, f"systemd-{UNIT}.log")
    text = open(logfile, encoding="utf-8").read()
    assert "login ok" in text
    assert SECRET not in text
    assert stat.S_IMODE(os.stat(logfile).st_mode) == 0o600
    for folder in (folders[0], os.path.dirname(logfile)):
        assert stat.S_IMODE(os.stat(folder).st_mode) == 0o700
    assert [row[0] for row in _statuses(schema, "incident_investigate")] == ["started", "success"]


def test_isolate_stops_the_unit_and_keeps_it(host, pg_server, pg_db, schema, tmp_path):
    assert _podman("exec", host, "systemctl", "is-active", UNIT, check=False).stdout.strip() == "active"
    proc = _play("incident_isolate.yml", host, pg_server, pg_db, tmp_path,
                 "incident_service_kind=systemd", f"incident_service={UNIT}")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert _podman("exec", host, "systemctl", "is-active", UNIT, check=False).stdout.strip() == "inactive"
    assert _podman("exec", host, "systemctl", "is-enabled", UNIT, check=False).stdout.strip() == "disabled"
    assert _podman("exec", host, "test", "-f", f"/etc/systemd/system/{UNIT}", check=False).returncode == 0
    entity = f"{host}/systemd/{UNIT}"
    assert _statuses(schema, "incident_isolate") == [("started", entity), ("success", entity)]


def test_isolate_fails_on_an_unknown_unit(host, pg_server, pg_db, schema, tmp_path):
    proc = _play("incident_isolate.yml", host, pg_server, pg_db, tmp_path,
                 "incident_service_kind=systemd", "incident_service=pai-no-such-unit.service")
    assert proc.returncode != 0
    assert [row[0] for row in _statuses(schema, "incident_isolate")] == ["started", "failed"]
