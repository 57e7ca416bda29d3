"""The nightly job of the retention role (pai_retention.py), installed the way the role installs it."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest

from ansible_collections.proxmox_ai.hardening.plugins.module_utils._migrations import apply_migrations

pytestmark = pytest.mark.postgres

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
MIGRATIONS = os.path.join(ROOT, "roles", "postgresql", "files", "migrations")


@pytest.fixture()
def job(tmp_path):
    """The script and the engine side by side, as in /usr/local/lib/proxmox-ai-retention."""
    folder = tmp_path / "lib"
    folder.mkdir()
    shutil.copy(os.path.join(ROOT, "roles", "retention", "files", "pai_retention.py"), folder)
    shutil.copy(os.path.join(ROOT, "plugins", "module_utils", "_retention.py"), folder)
    return folder / "pai_retention.py"


def run(job_path, config, *extra):
    return subprocess.run([sys.executable, str(job_path), "--config", str(config)] + list(extra),
                          capture_output=True, text=True, timeout=300, check=False)


def write_config(tmp_path, pg_server, db, policies, **extra):
    cfg = {"database": db, "policies": policies, "batch_size": 100, "lock_timeout": 100,
           "partition_tables": ["node_samples", "guest_samples", "storage_samples"], "partition_days_ahead": 9,
           "connect": {"host": pg_server.host, "port": pg_server.port, "user": pg_server.user,
                       "password": pg_server.password}}
    cfg.update(extra)
    path = tmp_path / "retention.json"
    path.write_text(json.dumps(cfg))
    return path


def test_run_deletes_creates_partitions_and_logs_to_action_logs(pg_server, pg_db, tmp_path, job):
    conn = pg_server.connect(pg_db)
    apply_migrations(conn, MIGRATIONS)
    with conn.cursor() as cur:
        cur.execute("INSERT INTO alerts (severity, alert_type, entity, message, dedup_key, created_at) "
                    "SELECT 'info', 't', 'e', 'm', 'k' || g, now() - make_interval(days => g) + interval '12 hours' "
                    "FROM generate_series(1, 120) g")
        cur.execute("INSERT INTO feedback (user_email, user_name, created_at) VALUES "
                    "('a@example.org', 'A', now() - interval '13 months'), ('b@example.org', 'B', now())")
    conn.commit()
    policies = [{"table": "alerts", "max_age": "90 days"},
                {"table": "feedback", "max_age": "12 months",
                 "anonymise": {"user_email": "anonymized@localhost", "user_name": "anonymized"}},
                {"table": "node_samples", "max_age": "30 days"}]
    config = write_config(tmp_path, pg_server, pg_db, policies)

    checked = run(job, config, "--check")
    assert checked.returncode == 0, checked.stderr
    report = json.loads(checked.stdout)
    assert report["counts"] == {"alerts": 30, "feedback:anonymise": 1, "node_samples": 0}
    with conn.cursor() as cur:
        cur.execute("SELECT count(*) FROM alerts")
        assert cur.fetchone()[0] == 120
        cur.execute("SELECT count(*) FROM action_logs")
        assert cur.fetchone()[0] == 0  # a check run logs nothing
    conn.commit()

    done = run(job, config)
    assert done.returncode == 0, done.stderr + done.stdout
    with conn.cursor() as cur:
        cur.execute("SELECT count(*) FROM alerts WHERE created_at < now() - interval '90 days'")
        assert cur.fetchone()[0] == 0
        cur.execute("SELECT count(*) FROM alerts")
        assert cur.fetchone()[0] == 90
        cur.execute("SELECT user_email FROM feedback ORDER BY created_at")
        assert [r[0] for r in cur.fetchall()] == ["anonymized@localhost", "b@example.org"]
        cur.execute("SELECT count(*) FROM pg_partition_tree('node_samples') WHERE isleaf")
        assert cur.fetchone()[0] == 12  # default + yesterday .. today+9 (the migration made up to +7)
        cur.execute("SELECT actor, action_type, entity, status, details FROM action_logs")
        rows = cur.fetchall()
    conn.commit()
    assert len(rows) == 1
    actor, action_type, entity, status, details = rows[0]
    assert actor.startswith("retention@") and action_type == "retention_run" and entity == pg_db
    assert status == "success"
    assert details["counts"] == {"alerts": 30, "feedback:anonymise": 1, "node_samples": 0}
    assert details["partitions_created"] == {"node_samples": 2, "guest_samples": 2, "storage_samples": 2}

    again = run(job, config)
    assert again.returncode == 0
    assert json.loads(again.stdout)["rows"] == 0
    conn.close()


def test_failure_is_logged_and_exits_1(pg_server, pg_db, tmp_path, job):
    conn = pg_server.connect(pg_db)
    apply_migrations(conn, MIGRATIONS)
    policies = [{"table": "alerts", "max_age": "90 days"}, {"table": "gone", "max_age": "1 day"}]
    config = write_config(tmp_path, pg_server, pg_db, policies)
    failed = run(job, config)
    assert failed.returncode == 1
    with conn.cursor() as cur:
        cur.execute("SELECT status, details->>'error' FROM action_logs WHERE action_type = 'retention_run'")
        status, error = cur.fetchone()
    conn.commit()
    assert status == "failure" and "table public.gone does not exist" in error
    conn.close()


@pytest.mark.parametrize("content, message", [
    ({"policies": []}, "database is missing"),
    ({"database": "x", "policies": []}, "policies must be a non-empty list"),
    ({"database": "x", "policies": [{"table": "a"}]}, "policy 1 needs a table and a max_age"),
    ({"database": "x", "policies": [{"table": "a", "max_age": 1, "typo": 1}]}, "unknown keys ['typo']"),
    ({"database": "x", "policies": [{"table": "a", "max_age": 1}], "batch_size": -1}, "batch_size must be"),
])
def test_check_config_refuses_bad_files(tmp_path, job, content, message):
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(content))
    proc = subprocess.run([sys.executable, str(job), "--check-config", str(path)], capture_output=True, text=True,
                          check=False)
    assert proc.returncode == 2 and message in proc.stderr
