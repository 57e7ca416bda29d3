"""pg_migrate and the shipped migrations against a real PostgreSQL 15 (ansible-playbook runs)."""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import threading
import uuid

import pytest

from ansible_collections.proxmox_ai.hardening.plugins.module_utils._migrations import apply_migrations

pytestmark = pytest.mark.postgres

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
MIGRATIONS = os.path.join(ROOT, "roles", "postgresql", "files", "migrations")
SHIPPED = sorted(f[:-4] for f in os.listdir(MIGRATIONS) if f.endswith(".sql"))
TABLES = {"alerts", "incidents", "action_logs", "conversations", "feedback", "node_samples", "guest_samples",
          "storage_samples", "schema_migrations"}


def run_module(tmp_path, args, check=False):
    out = tmp_path / ("result-%s.json" % uuid.uuid4().hex)
    play = [{"hosts": "localhost", "gather_facts": False, "tasks": [
        {"name": "migrate", "proxmox_ai.hardening.pg_migrate": args, "register": "r", "ignore_errors": True},
        {"name": "save", "ansible.builtin.copy": {"content": "{{ r | to_json }}", "dest": str(out), "mode": "0600"},
         "check_mode": False}]}]
    book = tmp_path / ("play-%s.yml" % uuid.uuid4().hex)
    book.write_text(json.dumps(play))
    cmd = ["ansible-playbook", "-i", "localhost,", "-c", "local", "-e",
           "ansible_python_interpreter=%s" % sys.executable, str(book)] + (["--check"] if check else [])
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return json.loads(out.read_text())


def args_for(pg_server, db, path=MIGRATIONS):
    return {"path": str(path), "login_host": pg_server.host, "login_port": pg_server.port,
            "login_user": pg_server.user, "login_password": pg_server.password, "login_db": db}


def tables(conn):
    with conn.cursor() as cur:
        cur.execute("SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
                    "WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p') AND NOT c.relispartition")
        names = {r[0] for r in cur.fetchall()}
    conn.commit()
    return names


def test_check_then_apply_then_nothing(pg_server, pg_db, tmp_path):
    conn = pg_server.connect(pg_db)
    checked = run_module(tmp_path, args_for(pg_server, pg_db), check=True)
    assert checked["changed"] is True
    assert checked["applied"] == SHIPPED
    assert tables(conn) == set()  # check mode created nothing, not even schema_migrations

    applied = run_module(tmp_path, args_for(pg_server, pg_db))
    assert applied["changed"] is True and applied["version_after"] == len(SHIPPED)
    assert tables(conn) == TABLES
    with conn.cursor() as cur:
        cur.execute("SELECT version, name, checksum FROM schema_migrations ORDER BY version")
        rows = cur.fetchall()
        expected = []
        for name in SHIPPED:
            with open(os.path.join(MIGRATIONS, name + ".sql"), "rb") as handle:
                expected.append((int(name[:3]), name, hashlib.sha256(handle.read()).hexdigest()))
        assert rows == expected
        # the time series are partitioned by day, with a default partition
        cur.execute("SELECT count(*) FROM pg_partition_tree('node_samples') WHERE isleaf")
        assert cur.fetchone()[0] == 10  # default + yesterday .. today+7
        cur.execute("SELECT partstrat FROM pg_partitioned_table WHERE partrelid = 'guest_samples'::regclass")
        assert cur.fetchone()[0] == "r"
    conn.commit()

    again = run_module(tmp_path, args_for(pg_server, pg_db))
    assert again["changed"] is False and again["applied"] == []
    conn.close()


def test_sql_of_each_migration_runs_twice(pg_server, pg_db):
    """Idempotent files: running the SQL again (by hand) changes nothing and does not fail."""
    conn = pg_server.connect(pg_db)
    text = ""
    for name in SHIPPED:
        with open(os.path.join(MIGRATIONS, name + ".sql"), encoding="utf-8") as handle:
            text += handle.read() + "\n"
    with conn.cursor() as cur:
        cur.execute(text)
        conn.commit()
        cur.execute("SELECT count(*) FROM pg_class")
        objects = cur.fetchone()[0]
        cur.execute(text)
        conn.commit()
        cur.execute("SELECT count(*) FROM pg_class")
        assert cur.fetchone()[0] == objects
        cur.execute("INSERT INTO action_logs (actor, action_type, status) VALUES ('t', 'x', 'success')")
        conn.commit()
        with pytest.raises(Exception, match="append-only"):
            cur.execute("UPDATE action_logs SET status = 'forged'")
        conn.rollback()
    conn.close()


def test_edited_migration_is_refused_and_failed_one_rolls_back(pg_server, pg_db, tmp_path):
    folder = tmp_path / "migrations"
    shutil.copytree(MIGRATIONS, folder)
    conn = pg_server.connect(pg_db)
    assert run_module(tmp_path, args_for(pg_server, pg_db, folder))["changed"] is True

    (folder / "090_broken.sql").write_text("CREATE TABLE half_done (id int);\nSELECT no_such_function();\n")
    failed = run_module(tmp_path, args_for(pg_server, pg_db, folder))
    assert failed["failed"] is True and "090_broken.sql failed" in failed["msg"]
    assert "half_done" not in tables(conn)
    with conn.cursor() as cur:
        cur.execute("SELECT max(version) FROM schema_migrations")
        assert cur.fetchone()[0] == len(SHIPPED)
    conn.commit()

    (folder / "090_broken.sql").write_text("CREATE TABLE IF NOT EXISTS extra (id int);\n")
    assert run_module(tmp_path, args_for(pg_server, pg_db, folder))["applied"] == ["090_broken"]
    assert "extra" in tables(conn)

    with open(folder / "001_initial_schema.sql", "a", encoding="utf-8") as handle:
        handle.write("\n-- edited\n")
    edited = run_module(tmp_path, args_for(pg_server, pg_db, folder))
    assert edited["failed"] is True and "must not be edited" in edited["msg"]
    conn.close()


def test_concurrent_runs_apply_once(pg_server, pg_db):
    results, errors = [], []

    def worker():
        conn = pg_server.connect(pg_db)
        try:
            results.append(apply_migrations(conn, MIGRATIONS)["applied"])
        except Exception as exc:  # reported below
            errors.append(exc)
        finally:
            conn.close()

    threads = [threading.Thread(target=worker) for count in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not errors
    assert sorted(results) == [[], [], SHIPPED]
