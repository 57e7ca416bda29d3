"""pg_retention against a real PostgreSQL 15, run through real ansible-playbook.

Every test builds the real schema (roles/postgresql/files/migrations) in a
fresh database, fills it with rows of known ages, runs the module and then
checks the database itself: which rows and partitions are left.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
import uuid

import pytest

from ansible_collections.proxmox_ai.hardening.plugins.module_utils._migrations import apply_migrations

pytestmark = pytest.mark.postgres

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
MIGRATIONS = os.path.join(ROOT, "roles", "postgresql", "files", "migrations")
GUIDE_POLICIES = [
    {"table": "alerts", "max_age": "90 days"},
    {"table": "incidents", "max_age": "12 months"},
    {"table": "action_logs", "max_age": "24 months"},
    {"table": "conversations", "max_age": 30},
    {"table": "feedback", "max_age": "12 months",
     "anonymise": {"user_email": "anonymized@localhost", "user_name": "anonymized"}},
    {"table": "node_samples", "max_age": "3 days"},
]


def run_module(tmp_path, module, args, check=False, diff=False):
    """Run one module task with ansible-playbook; return (result dict, playbook output)."""
    out = tmp_path / ("result-%s.json" % uuid.uuid4().hex)
    play = [{
        "hosts": "localhost", "gather_facts": False,
        "tasks": [
            {"name": "module under test", "proxmox_ai.hardening.%s" % module: args, "register": "r",
             "ignore_errors": True},
            {"name": "save result", "ansible.builtin.copy": {"content": "{{ r | to_json }}", "dest": str(out),
                                                             "mode": "0600"}, "check_mode": False},
        ],
    }]
    book = tmp_path / ("play-%s.yml" % uuid.uuid4().hex)
    book.write_text(json.dumps(play))
    cmd = ["ansible-playbook", "-i", "localhost,", "-c", "local", "-e",
           "ansible_python_interpreter=%s" % sys.executable, str(book)]
    if check:
        cmd.append("--check")
    if diff:
        cmd.append("--diff")
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return json.loads(out.read_text()), proc.stdout


def login(pg_server, db, **extra):
    args = {"login_host": pg_server.host, "login_port": pg_server.port, "login_user": pg_server.user,
            "login_password": pg_server.password, "login_db": db}
    args.update(extra)
    return args


def one(conn, query, args=None):
    with conn.cursor() as cur:
        cur.execute(query, args)
        row = cur.fetchone()
    conn.commit()
    return row[0] if row is not None and len(row) == 1 else row


def seed(conn):
    """Schema plus rows of known ages; returns {table: (expired, kept)}."""
    apply_migrations(conn, MIGRATIONS)
    with conn.cursor() as cur:
        cur.execute("SELECT create_daily_partitions('node_samples', 2, 10)")
        # alerts: 300 rows 91..390 days old (expired), 200 rows 0..89 days (kept)
        cur.execute("""INSERT INTO alerts (severity, alert_type, entity, message, dedup_key, status, resolved_at,
                       created_at)
                       SELECT 'warning', 'cpu_high', 'node' || g, 'm', 'k' || g, 'resolved', now(),
                              now() - make_interval(days => CASE WHEN g <= 300 THEN 90 + g ELSE (g - 301) % 89 END)
                       FROM generate_series(1, 500) g""")
        cur.execute("""INSERT INTO incidents (alert_id, entity_type, symptoms, created_at)
                       SELECT g::text, 'node', 's', now() - make_interval(months => CASE WHEN g <= 40 THEN 13
                              ELSE 11 END) FROM generate_series(1, 100) g""")
        cur.execute("""INSERT INTO action_logs (actor, action_type, status, created_at)
                       SELECT 'test', 'modify_config', 'success',
                              now() - make_interval(months => CASE WHEN g <= 25 THEN 25 ELSE 23 END)
                       FROM generate_series(1, 75) g""")
        cur.execute("""INSERT INTO conversations (conversation_id, role, content, created_at)
                       SELECT 'c' || g, 'user', 'hello', now() - make_interval(days => CASE WHEN g <= 60 THEN 31
                              ELSE 29 END) FROM generate_series(1, 90) g""")
        cur.execute("""INSERT INTO feedback (user_email, user_name, rating, comment, created_at)
                       SELECT 'user' || g || '@example.org', 'User ' || g, 4, 'note ' || g,
                              now() - make_interval(months => CASE WHEN g <= 30 THEN 13 ELSE 11 END)
                       FROM generate_series(1, 50) g""")
        # node_samples: one row per 30 minutes over the last 10 days (480 rows) +
        # 20 rows 20 days old (they land in the DEFAULT partition).
        cur.execute("""INSERT INTO node_samples (node, cpu, created_at)
                       SELECT 'pve1', 0.5, now() - make_interval(mins => 30 * g) FROM generate_series(0, 479) g""")
        cur.execute("""INSERT INTO node_samples (node, cpu, created_at)
                       SELECT 'pve1', 0.5, now() - interval '20 days' - make_interval(mins => g)
                       FROM generate_series(1, 20) g""")
    conn.commit()
    samples_expired = one(conn, "SELECT count(*) FROM node_samples WHERE created_at < now() - interval '3 days'")
    samples_total = one(conn, "SELECT count(*) FROM node_samples")
    return {"alerts": (300, 200), "incidents": (40, 60), "action_logs": (25, 50), "conversations": (60, 30),
            "feedback:anonymise": (30, 20), "node_samples": (samples_expired, samples_total - samples_expired)}


def table_counts(conn):
    return {t: one(conn, "SELECT count(*) FROM %s" % t) for t in
            ("alerts", "incidents", "action_logs", "conversations", "feedback", "node_samples")}


def partitions(conn, parent):
    with conn.cursor() as cur:
        cur.execute("SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
                    "WHERE i.inhparent = %s::regclass ORDER BY 1", (parent,))
        names = [r[0] for r in cur.fetchall()]
    conn.commit()
    return names


def test_check_mode_counts_match_real_run_and_second_run_deletes_nothing(pg_server, pg_db, tmp_path):
    conn = pg_server.connect(pg_db)
    expected = seed(conn)
    before = table_counts(conn)
    parts_before = partitions(conn, "node_samples")
    args = {"policies": GUIDE_POLICIES, "batch_size": 50}
    args.update(login(pg_server, pg_db))

    checked, _out = run_module(tmp_path, "pg_retention", args, check=True, diff=True)
    assert checked["changed"] is True
    assert checked["counts"] == {name: exp for name, (exp, _kept) in expected.items()}
    # check mode changed nothing: same rows, same partitions, nobody anonymised
    assert table_counts(conn) == before
    assert partitions(conn, "node_samples") == parts_before
    assert one(conn, "SELECT count(*) FROM feedback WHERE user_name = 'anonymized'") == 0
    would_drop = [p for p in checked["policies"] if p["name"] == "node_samples"][0]["partitions"]
    assert len(would_drop) >= 6, would_drop
    assert "alerts: 300 rows older than" in checked["diff"]["before"]

    real, _out = run_module(tmp_path, "pg_retention", args)
    assert real["changed"] is True
    assert real["counts"] == checked["counts"]
    after = table_counts(conn)
    for table, (expired, kept) in expected.items():
        if table == "feedback:anonymise":
            assert after["feedback"] == before["feedback"]
            assert one(conn, "SELECT count(*) FROM feedback WHERE user_name = 'anonymized' "
                             "AND user_email = 'anonymized@localhost'") == expired
        else:
            assert after[table] == kept == before[table] - expired, table
            cutoff = [p for p in real["policies"] if p["name"] == table][0]["cutoff"]
            assert one(conn, "SELECT count(*) FROM %s WHERE created_at < %%s" % table, (cutoff,)) == 0
    # exactly the partitions check mode announced are gone, the rest stay
    assert set(parts_before) - set(partitions(conn, "node_samples")) == {p.split(".")[1] for p in would_drop}
    assert one(conn, "SELECT count(*) FROM pg_class WHERE relname = ANY(%s)",
               ([p.split(".")[1] for p in would_drop],)) == 0
    assert one(conn, "SELECT min(created_at) > now() - interval '3 days' FROM node_samples") is True

    again, _out = run_module(tmp_path, "pg_retention", args)
    assert again["changed"] is False
    assert again["rows"] == 0
    assert set(again["counts"].values()) == {0}
    assert table_counts(conn) == after
    conn.close()


def test_anonymisation_leaves_recent_rows_alone(pg_server, pg_db, tmp_path):
    conn = pg_server.connect(pg_db)
    seed(conn)
    with conn.cursor() as cur:
        cur.execute("SELECT id, user_email, user_name, rating, comment, created_at FROM feedback ORDER BY id")
        rows_before = cur.fetchall()
    conn.commit()
    recent_before = [r for r in rows_before if r[0] > 30]
    # Over verified TLS, as the collection recommends.
    args = {"policies": [GUIDE_POLICIES[4]], "batch_size": 7}
    args.update(login(pg_server, pg_db, login_host="localhost", ssl_mode="verify-full",
                      ssl_rootcert=pg_server.ssl_ca))
    result, output = run_module(tmp_path, "pg_retention", args)
    assert result["changed"] is True and result["rows"] == 30
    assert result["policies"][0]["batches"] >= 1
    assert pg_server.password not in output
    with conn.cursor() as cur:
        cur.execute("SELECT id, user_email, user_name, rating, comment, created_at FROM feedback ORDER BY id")
        rows_after = cur.fetchall()
    conn.commit()
    assert [r for r in rows_after if r[0] > 30] == recent_before
    old = [r for r in rows_after if r[0] <= 30]
    assert {(r[1], r[2]) for r in old} == {("anonymized@localhost", "anonymized")}
    # only the named columns changed
    assert [(r[0], r[3], r[4], r[5]) for r in old] == [(r[0], r[3], r[4], r[5]) for r in rows_before if r[0] <= 30]

    again, _out = run_module(tmp_path, "pg_retention", args)
    assert again["changed"] is False and again["rows"] == 0
    conn.close()


@pytest.mark.parametrize("bad, message", [
    ({"table": "no_such_table", "max_age": "1 day"}, "table public.no_such_table does not exist"),
    ({"table": "alerts", "column": "no_such_column", "max_age": "1 day"},
     "column no_such_column does not exist in public.alerts"),
    ({"table": "alerts", "max_age": "-5 days"}, "max_age '-5 days' is negative"),
    ({"table": "alerts", "max_age": -1}, "max_age -1 is negative"),
    ({"table": "alerts", "max_age": "soon"}, "is not an interval"),
    ({"table": "alerts", "column": "message", "max_age": 1}, "is text, not a timestamp or date"),
    ({"table": "feedback", "max_age": 1, "anonymise": {"nope": "x"}}, "anonymise column nope does not exist"),
])
def test_bad_policy_fails_before_deleting_anything(pg_server, pg_db, tmp_path, bad, message):
    conn = pg_server.connect(pg_db)
    seed(conn)
    before = table_counts(conn)
    parts_before = partitions(conn, "node_samples")
    # valid policies first: they must not run either
    args = {"policies": GUIDE_POLICIES + [bad]}
    args.update(login(pg_server, pg_db))
    result, _out = run_module(tmp_path, "pg_retention", args)
    assert result["failed"] is True
    assert result["changed"] is False
    assert "nothing was changed" in result["msg"]
    assert message in result["msg"], result["msg"]
    assert "policy 7" in result["msg"]
    assert table_counts(conn) == before
    assert partitions(conn, "node_samples") == parts_before
    assert one(conn, "SELECT count(*) FROM feedback WHERE user_name = 'anonymized'") == 0
    conn.close()


def test_partition_expiry_drops_or_detaches_whole_days(pg_server, pg_db, tmp_path):
    conn = pg_server.connect(pg_db)
    seed(conn)
    with conn.cursor() as cur:
        cur.execute("SELECT create_daily_partitions('guest_samples', 2, 10)")
        cur.execute("""INSERT INTO guest_samples (node, vmid, guest_type, created_at)
                       SELECT 'pve1', 100 + g % 5, 'lxc', now() - make_interval(mins => 10 * g)
                       FROM generate_series(0, 1439) g""")  # 10 days, 144 rows per day
    conn.commit()
    cutoff_days = 4
    expired = one(conn, "SELECT count(*) FROM guest_samples WHERE created_at < now() - make_interval(days => %s)",
                  (cutoff_days,))
    kept = one(conn, "SELECT count(*) FROM guest_samples") - expired
    with conn.cursor() as cur:  # partitions whose whole day is older than the cutoff
        cur.execute("""SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
                       WHERE i.inhparent = 'guest_samples'::regclass AND c.relname <> 'guest_samples_default'
                       AND to_date(right(c.relname, 8), 'YYYYMMDD') + 1
                           <= (now() - make_interval(days => %s)) AT TIME ZONE 'UTC'""", (cutoff_days,))
        whole_days = sorted(r[0] for r in cur.fetchall())
    conn.commit()
    assert len(whole_days) >= 5

    args = {"policies": [{"table": "guest_samples", "max_age": "%d days" % cutoff_days, "partitions": "detach"}],
            "batch_size": 20}
    args.update(login(pg_server, pg_db))
    result, _out = run_module(tmp_path, "pg_retention", args)
    pol = result["policies"][0]
    assert result["rows"] == expired
    assert sorted(p.split(".")[1] for p in pol["partitions"]) == whole_days
    assert pol["partition_action"] == "detach"
    # detached: no longer partitions, still tables holding their rows
    assert not set(whole_days) & set(partitions(conn, "guest_samples"))
    detached_rows = sum(one(conn, "SELECT count(*) FROM %s" % name) for name in whole_days)
    assert 0 < detached_rows <= expired
    assert one(conn, "SELECT count(*) FROM guest_samples") == kept
    # the partly expired day was emptied row by row (in batches), not dropped
    partly = [k for k, v in pol["strategies"].items() if not v.startswith("partition")]
    assert partly, pol["strategies"]
    assert one(conn, "SELECT count(*) FROM guest_samples WHERE created_at < now() - make_interval(days => %s)",
               (cutoff_days,)) == 0

    # drop (the default): node_samples partitions really disappear
    args["policies"] = [{"table": "node_samples", "max_age": "3 days"}]
    result, _out = run_module(tmp_path, "pg_retention", args)
    dropped = [p.split(".")[1] for p in result["policies"][0]["partitions"]]
    assert dropped
    assert one(conn, "SELECT count(*) FROM pg_class WHERE relname = ANY(%s)", (dropped,)) == 0
    assert "node_samples_default" in partitions(conn, "node_samples")
    conn.close()


def test_batches_are_bounded_along_the_index_or_the_heap(pg_server, pg_db, tmp_path):
    conn = pg_server.connect(pg_db)
    with conn.cursor() as cur:
        # few expired rows and an index on the timestamp: batches follow the index
        cur.execute("CREATE TABLE events (id bigint, created_at timestamptz NOT NULL, body text)")
        cur.execute("CREATE INDEX ON events (created_at)")
        cur.execute("INSERT INTO events SELECT g, now() - make_interval(mins => g), repeat('x', 100) "
                    "FROM generate_series(1, 10000) g")  # 6.9 days; older than 6.6 days: 496 rows
        # most rows expired and no index: batches follow the heap in ctid ranges
        cur.execute("CREATE TABLE raw_log (created_at timestamptz, line text)")
        cur.execute("INSERT INTO raw_log SELECT now() - make_interval(hours => g), 'line ' || g "
                    "FROM generate_series(1, 20000) g")
        cur.execute("ANALYZE events")
        cur.execute("ANALYZE raw_log")
        cur.execute("SELECT reltuples / relpages FROM pg_class WHERE relname = 'raw_log'")
        per_page = cur.fetchone()[0]
    conn.commit()
    expected_events = one(conn, "SELECT count(*) FROM events WHERE created_at < now() - interval '9500 minutes'")
    expected_raw = one(conn, "SELECT count(*) FROM raw_log WHERE created_at < now() - interval '30 days'")
    args = {"policies": [{"table": "events", "max_age": "9500 minutes"}, {"table": "raw_log", "max_age": 30}],
            "batch_size": 100}
    args.update(login(pg_server, pg_db))
    result, _out = run_module(tmp_path, "pg_retention", args)
    events, raw = result["policies"]
    assert events["rows"] == expected_events and raw["rows"] == expected_raw == 20000 - 30 * 24 + 1
    assert events["strategies"] == {"public.events": "index"}
    assert events["largest_batch"] == 100
    assert events["batches"] == -(-expected_events // 100)  # ceil: full batches of 100, then the rest
    assert raw["strategies"] == {"public.raw_log": "ctid-range"}
    assert raw["largest_batch"] <= 100 + per_page
    assert raw["batches"] >= expected_raw // (100 + per_page)
    assert one(conn, "SELECT count(*) FROM events") == 10000 - expected_events
    assert one(conn, "SELECT count(*) FROM raw_log WHERE created_at < now() - interval '30 days'") == 0
    conn.close()


class Writer(threading.Thread):
    """Inserts into a table in a loop from its own connection; records the slowest insert."""

    def __init__(self, pg_server, db, query):
        super().__init__(daemon=True)
        self.conn = pg_server.connect(db)
        self.query = query
        self.stop = threading.Event()
        self.latencies = []
        self.error = None

    def run(self):
        try:
            with self.conn.cursor() as cur:
                while not self.stop.is_set():
                    started = time.monotonic()
                    cur.execute(self.query)
                    self.conn.commit()
                    self.latencies.append(time.monotonic() - started)
                    time.sleep(0.005)
        except Exception as exc:  # reported by the test
            self.error = exc
        finally:
            self.conn.close()


def test_concurrent_writer_is_not_blocked_by_batches(pg_server, pg_db, tmp_path):
    conn = pg_server.connect(pg_db)
    apply_migrations(conn, MIGRATIONS)
    with conn.cursor() as cur:
        cur.execute("""INSERT INTO alerts (severity, alert_type, entity, message, dedup_key, status, resolved_at,
                       created_at)
                       SELECT 'info', 't', 'e', 'm', 'k' || g, 'resolved', now(),
                              now() - interval '200 days' + make_interval(secs => g)
                       FROM generate_series(1, 200000) g""")
    conn.commit()
    writer = Writer(pg_server, pg_db, "INSERT INTO alerts (severity, alert_type, entity, message, dedup_key) "
                                      "VALUES ('info', 'w', 'e', 'm', gen_random_uuid()::text)")
    writer.start()
    time.sleep(0.5)
    args = {"policies": [{"table": "alerts", "max_age": "90 days"}], "batch_size": 5000}
    args.update(login(pg_server, pg_db))
    result, _out = run_module(tmp_path, "pg_retention", args)
    writer.stop.set()
    writer.join(10)
    assert writer.error is None
    assert result["rows"] == 200000
    assert result["policies"][0]["batches"] >= 20  # about 5000 rows each, committed one by one
    assert result["policies"][0]["largest_batch"] <= 2 * 5000
    assert one(conn, "SELECT count(*) FROM alerts WHERE alert_type = 't'") == 0
    assert one(conn, "SELECT count(*) FROM alerts WHERE alert_type = 'w'") == len(writer.latencies)
    assert len(writer.latencies) > 20
    assert max(writer.latencies) < 0.5, max(writer.latencies)
    conn.close()


def test_lock_timeout_keeps_writers_moving_while_a_partition_waits(pg_server, pg_db, tmp_path):
    """A long reader holds the parent; DETACH must not queue writers behind it for long."""
    conn = pg_server.connect(pg_db)
    seed(conn)
    reader = pg_server.connect(pg_db)
    monitor = pg_server.connect(pg_db)
    monitor.autocommit = True
    waited = threading.Event()
    hold_after_wait = 1.5

    def long_report():
        with reader.cursor() as cur, monitor.cursor() as mon:
            cur.execute("SELECT count(*) FROM node_samples")
            deadline = time.monotonic() + 120
            # hold the table until retention has queued for its lock at least once, then a while longer
            while time.monotonic() < deadline:
                mon.execute("SELECT count(*) FROM pg_stat_activity WHERE application_name = 'pg_retention' "
                            "AND wait_event_type = 'Lock'")
                if mon.fetchone()[0]:
                    waited.set()
                    break
                time.sleep(0.005)
            time.sleep(hold_after_wait)
        reader.commit()

    report = threading.Thread(target=long_report, daemon=True)
    report.start()
    time.sleep(0.3)
    writer = Writer(pg_server, pg_db, "INSERT INTO node_samples (node, cpu) VALUES ('pve2', 0.1)")
    writer.start()
    args = {"policies": [{"table": "node_samples", "max_age": "3 days"}], "lock_timeout": 50, "lock_retries": 30}
    args.update(login(pg_server, pg_db))
    result, _out = run_module(tmp_path, "pg_retention", args)
    report.join(30)
    writer.stop.set()
    writer.join(10)
    assert writer.error is None
    assert waited.is_set()
    assert result.get("failed") is not True, result
    pol = result["policies"][0]
    assert pol["partitions"], pol
    assert pol["lock_retries"] > 0  # it really had to wait for the reader, and gave way each time
    # Without lock_timeout the writer would wait behind the queued DETACH for
    # the whole hold; with it, at most one lock_timeout (plus scheduling).
    assert len(writer.latencies) > 20
    assert max(writer.latencies) < 0.5, max(writer.latencies)
    assert one(conn, "SELECT count(*) FROM node_samples WHERE node = 'pve2'") == len(writer.latencies)
    monitor.close()
    reader.close()
    conn.close()
