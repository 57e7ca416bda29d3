# -*- coding: utf-8 -*-
# Copyright: (c) 2025, Proxmox AI hardening maintainers
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Benchmark of pg_retention against plain DELETE, with a concurrent writer.

1. Fills alerts, incidents, action_logs and conversations (the real schema)
   with --rows expired rows (plus 2 % recent rows that must stay), then expires
   them once with one plain ``DELETE ... WHERE created_at < ...`` per table and,
   on identical fresh data, once with the pg_retention module (run by
   ansible-playbook, as users run it). A separate connection inserts into
   alerts and action_logs all the time and records its slowest insert.
2. Puts --day-rows samples into one day of node_samples and expires that day
   once by partition (the module: DETACH + DROP) and once by DELETE.

Prints rows/s, the ratio, the writer's longest wait, the partition figures and
whether the goals hold (batched >= plain / 1.5 rows/s, no insert waits more
than 200 ms, partition expiry in milliseconds). Uses a throwaway PostgreSQL
cluster (tests/support/postgres.py: fsync off, as in the tests) unless --dsn
is given. Run: python -m bench.bench_retention --rows 1000000 (make bench uses
$BENCH_RETENTION_ROWS, default 10 million).
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
import uuid

import psycopg2
import psycopg2.extensions

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

MIGRATIONS = os.path.join(ROOT, "roles", "postgresql", "files", "migrations")
# table: (share of the expired rows, max_age, INSERT columns, SELECT expressions with g)
TABLES = {
    "alerts": (0.4, "90 days", "severity, alert_type, entity, message, dedup_key, status, resolved_at, created_at",
               "'warning', 'cpu_high', 'pve' || (g % 16), 'CPU above 90 percent on pve' || (g % 16), 'k' || g, "
               "'resolved', {ts}, {ts}"),
    "action_logs": (0.3, "24 months", "actor, action_type, entity, status, ip, details, created_at",
                    "'n8n', 'restart_service', 'lxc/' || (g % 200), 'success', '10.0.0.1', "
                    "'{{\"attempt\": 1}}'::jsonb, {ts}"),
    "conversations": (0.2, "30 days", "conversation_id, channel, role, content, created_at",
                      "'c' || (g / 10), 'slack:#ops', 'user', 'why is pve3 slow today?', {ts}"),
    "incidents": (0.1, "12 months", "alert_id, entity_type, entity, symptoms, root_cause, actions_taken, created_at",
                  "g::text, 'node', 'pve' || (g % 16), 'high load', 'backup job', 'rescheduled', {ts}"),
}
RECENT_SHARE = 0.02


def log(msg):
    print(msg, flush=True)


class Writer(threading.Thread):
    """Inserts into alerts and action_logs in a loop; records every insert's latency."""

    def __init__(self, dsn, table_queries):
        super().__init__(daemon=True)
        self.dsn = dsn
        self.queries = table_queries
        self.stop_event = threading.Event()
        self.latencies = []
        self.error = None

    def run(self):
        conn = psycopg2.connect(self.dsn)
        try:
            with conn.cursor() as cur:
                i = 0
                while not self.stop_event.is_set():
                    started = time.monotonic()
                    cur.execute(self.queries[i % len(self.queries)])
                    conn.commit()
                    self.latencies.append(time.monotonic() - started)
                    i += 1
                    time.sleep(0.002)
        except Exception as exc:  # reported in the figures
            self.error = exc
        finally:
            conn.close()

    def stop(self):
        self.stop_event.set()
        self.join(30)
        lat = sorted(self.latencies) or [0.0]
        return {"inserts": len(self.latencies), "max_ms": round(lat[-1] * 1000, 1),
                "p99_ms": round(lat[int(len(lat) * 0.99) - 1 if len(lat) > 1 else 0] * 1000, 1),
                "error": str(self.error) if self.error else None}


WRITER_QUERIES = [
    "INSERT INTO alerts (severity, alert_type, entity, message, dedup_key) "
    "VALUES ('info', 'bench_writer', 'pve1', 'm', gen_random_uuid()::text)",
    "INSERT INTO action_logs (actor, action_type, status) VALUES ('bench', 'bench_writer', 'success')",
]


def populate(conn, rows):
    """Fresh copies of the four tables with `rows` expired rows in all, time-ordered like real logs."""
    with conn.cursor() as cur:
        cur.execute("TRUNCATE alerts, action_logs, conversations, incidents RESTART IDENTITY")
        conn.commit()
        for table, (share, age, columns, exprs) in TABLES.items():
            expired = int(rows * share)
            recent = int(expired * RECENT_SHARE)
            # expired rows: spread over 200 days before the cutoff, oldest first
            ts_old = ("(now() - interval '{age}' - interval '200 days' + "
                      "make_interval(secs => g * (17280000.0 / {n})))").format(age=age, n=max(expired, 1))
            cur.execute("INSERT INTO {t} ({c}) SELECT {e} FROM generate_series(1, {n}) g".format(
                t=table, c=columns, e=exprs.format(ts=ts_old), n=expired))
            ts_new = "(now() - make_interval(secs => ({n} - g) * 60))".format(n=recent)
            cur.execute("INSERT INTO {t} ({c}) SELECT {e} FROM generate_series(1, {n}) g".format(
                t=table, c=columns, e=exprs.format(ts=ts_new), n=recent))
            conn.commit()
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute("VACUUM ANALYZE alerts, action_logs, conversations, incidents")
        cur.execute("CHECKPOINT")
    conn.autocommit = False


def expired_counts(conn):
    out = {}
    with conn.cursor() as cur:
        for table, (_share, age, _c, _e) in TABLES.items():
            cur.execute("SELECT count(*) FROM {0} WHERE created_at < now() - interval '{1}'".format(table, age))
            out[table] = cur.fetchone()[0]
    conn.commit()
    return out


def plain_delete(dsn):
    conn = psycopg2.connect(dsn)
    rows, per_table = 0, {}
    started = time.monotonic()
    with conn.cursor() as cur:
        for table, (_share, age, _c, _e) in TABLES.items():
            t0 = time.monotonic()
            cur.execute("DELETE FROM {0} WHERE created_at < now() - interval '{1}'".format(table, age))
            rows += cur.rowcount
            conn.commit()
            per_table[table] = round(time.monotonic() - t0, 2)
    seconds = time.monotonic() - started
    conn.close()
    return rows, seconds, per_table


def run_module(login, module_args, workdir):
    """Run proxmox_ai.hardening.pg_retention with ansible-playbook; returns (result, wall seconds)."""
    out = os.path.join(workdir, "result-%s.json" % uuid.uuid4().hex)
    args = dict(login)
    args.update(module_args)
    play = [{"hosts": "localhost", "gather_facts": False, "tasks": [
        {"name": "retention", "proxmox_ai.hardening.pg_retention": args, "register": "r"},
        {"name": "save", "ansible.builtin.copy": {"content": "{{ r | to_json }}", "dest": out, "mode": "0600"}}]}]
    book = os.path.join(workdir, "bench-%s.yml" % uuid.uuid4().hex)
    with open(book, "w", encoding="utf-8") as handle:
        json.dump(play, handle)
    started = time.monotonic()
    proc = subprocess.run(["ansible-playbook", "-i", "localhost,", "-c", "local", "-e",
                           "ansible_python_interpreter=%s" % sys.executable, book],
                          capture_output=True, text=True, check=False)
    wall = time.monotonic() - started
    if proc.returncode != 0:
        raise SystemExit("module run failed:\n" + proc.stdout + proc.stderr)
    with open(out, encoding="utf-8") as handle:
        return json.load(handle), wall


def with_writer(dsn, func):
    writer = Writer(dsn, WRITER_QUERIES)
    writer.start()
    time.sleep(0.5)
    try:
        result = func()
    finally:
        figures = writer.stop()
    return result, figures


def day_of_samples(conn, day_rows):
    """node_samples: partitions for the last 6 days, `day_rows` rows in the day 3 days ago (UTC)."""
    with conn.cursor() as cur:
        cur.execute("TRUNCATE node_samples")
        cur.execute("SELECT create_daily_partitions('node_samples', 2, 6)")
        cur.execute("""INSERT INTO node_samples (node, cpu, mem_used, mem_total, created_at)
                       SELECT 'pve' || (g %% 16), random(), 1e9::bigint, 8e9::bigint,
                              ((now() AT TIME ZONE 'UTC')::date - 3)::timestamp AT TIME ZONE 'UTC'
                              + make_interval(secs => g * (86399.0 / %s))
                       FROM generate_series(1, %s) g""", (day_rows, day_rows))
        conn.commit()
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute("VACUUM ANALYZE node_samples")
        cur.execute("CHECKPOINT")
    conn.autocommit = False


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", maxsplit=1)[0])
    parser.add_argument("--rows", type=int, default=int(os.environ.get("BENCH_RETENTION_ROWS", 10_000_000)),
                        help="expired rows over the 4 tables (default: $BENCH_RETENTION_ROWS or 10 million)")
    parser.add_argument("--day-rows", type=int, default=1_000_000, help="time-series rows in the expired day")
    parser.add_argument("--batch-size", type=int, default=10000)
    parser.add_argument("--lock-timeout", type=int, default=100, help="ms")
    parser.add_argument("--dsn", help="libpq DSN of a server to use (a database is created and dropped)")
    parser.add_argument("--repeat", type=int, default=1,
                        help="runs of each method (ABBA order); the fastest of each is compared")
    parser.add_argument("--json", help="also write the figures to this file")
    opts = parser.parse_args()
    for path in (ROOT, os.path.join(ROOT, "build", "collections")):
        if path not in sys.path:
            sys.path.insert(0, path)
    apply_migrations = importlib.import_module(
        "ansible_collections.proxmox_ai.hardening.plugins.module_utils._migrations").apply_migrations

    server = None
    if opts.dsn:
        base_dsn = opts.dsn
    else:
        start_cluster = importlib.import_module("tests.support.postgres").start_cluster
        log("starting a throwaway PostgreSQL cluster ...")
        server = start_cluster()
        base_dsn = server.dsn("postgres")
    dbname = "bench_" + uuid.uuid4().hex[:8]
    admin = psycopg2.connect(base_dsn)
    admin.autocommit = True
    with admin.cursor() as cur:
        cur.execute('CREATE DATABASE "%s"' % dbname)
    params = psycopg2.extensions.parse_dsn(base_dsn)
    params["dbname"] = dbname
    dsn = psycopg2.extensions.make_dsn(**params)
    login = {"login_host": params.get("host", ""), "login_port": int(params.get("port", 5432)),
             "login_user": params.get("user", "postgres"), "login_password": params.get("password", ""),
             "login_db": dbname}
    figures = {"rows": opts.rows, "day_rows": opts.day_rows, "batch_size": opts.batch_size,
               "lock_timeout_ms": opts.lock_timeout}
    workdir = tempfile.mkdtemp(prefix="bench-retention-")
    try:
        conn = psycopg2.connect(dsn)
        apply_migrations(conn, MIGRATIONS)

        policies = [{"table": t, "max_age": age} for t, (_s, age, _c, _e) in TABLES.items()]
        module_args = {"policies": policies, "batch_size": opts.batch_size, "lock_timeout": opts.lock_timeout}
        runs = {"plain": [], "batched": []}
        # ABBA order over the repetitions, fresh identical data before every run,
        # so that load from elsewhere on the machine hits both methods alike.
        order = [("plain", "batched") if i % 2 == 0 else ("batched", "plain") for i in range(opts.repeat)]
        for method in [m for pair in order for m in pair]:
            log("populating %d expired rows for %s ..." % (opts.rows, method))
            t0 = time.monotonic()
            populate(conn, opts.rows)
            took = time.monotonic() - t0
            log("  took %.1f s; expired: %s; load %s" % (took, expired_counts(conn), os.getloadavg()[0]))
            if method == "plain":
                (rows, seconds, per_table), writer = with_writer(dsn, lambda: plain_delete(dsn))
                run = {"rows": rows, "seconds": round(seconds, 2), "rows_per_s": round(rows / seconds),
                       "per_table_s": per_table, "writer": writer}
            else:
                (result, wall), writer = with_writer(dsn, lambda: run_module(login, module_args, workdir))
                seconds = sum(p["seconds"] for p in result["policies"])
                run = {"rows": result["rows"], "seconds": round(seconds, 2), "wall_seconds": round(wall, 2),
                       "rows_per_s": round(result["rows"] / seconds),
                       "batches": sum(p["batches"] for p in result["policies"]),
                       "largest_batch": max(p["largest_batch"] for p in result["policies"]),
                       "lock_retries": sum(p["lock_retries"] for p in result["policies"]),
                       "per_table_s": dict((p["name"], p["seconds"]) for p in result["policies"]),
                       "strategies": sorted(set(s for p in result["policies"] for s in p["strategies"].values())),
                       "writer": writer}
            run["load_after"] = round(os.getloadavg()[0], 2)
            runs[method].append(run)
            log("  %s: %s" % (method, run))
            if run["rows"] != opts.rows:
                raise SystemExit("%s touched %d rows, not %d" % (method, run["rows"], opts.rows))
        figures["runs"] = runs
        # the fastest run of each method (the one least disturbed by other work)
        figures["plain"] = max(runs["plain"], key=lambda r: r["rows_per_s"])
        figures["batched"] = max(runs["batched"], key=lambda r: r["rows_per_s"])
        figures["batched"]["writer"] = {
            "max_ms": max(r["writer"]["max_ms"] for r in runs["batched"]),
            "inserts": sum(r["writer"]["inserts"] for r in runs["batched"])}

        log("one day of node_samples (%d rows): by partition ..." % opts.day_rows)
        day_of_samples(conn, opts.day_rows)
        policy = {"policies": [{"table": "node_samples", "max_age": "2 days"}], "lock_timeout": opts.lock_timeout}
        (result, wall), writer = with_writer(dsn, lambda: run_module(login, policy, workdir))
        pol = result["policies"][0]
        figures["partition"] = {"rows": pol["rows"], "partitions": len(pol["partitions"]),
                                "parent_lock_ms": pol["parent_lock_ms"],
                                "policy_ms_incl_count": round(pol["seconds"] * 1000, 1),
                                "wall_seconds": round(wall, 2), "writer": writer}
        log("  by partition: %s" % figures["partition"])
        log("  ... and by DELETE")
        day_of_samples(conn, opts.day_rows)

        def delete_day():
            c = psycopg2.connect(dsn)
            with c.cursor() as cur:
                started = time.monotonic()
                cur.execute("DELETE FROM node_samples WHERE created_at < now() - interval '2 days'")
                count = cur.rowcount
                c.commit()
                took = time.monotonic() - started
            c.close()
            return count, took
        (count, took), writer = with_writer(dsn, delete_day)
        figures["partition_by_delete"] = {"rows": count, "ms": round(took * 1000, 1), "writer": writer}
        log("  by DELETE: %s" % figures["partition_by_delete"])
        conn.close()
    finally:
        with admin.cursor() as cur:
            cur.execute('DROP DATABASE IF EXISTS "%s" WITH (FORCE)' % dbname)
        admin.close()
        if server is not None:
            importlib.import_module("tests.support.postgres").stop_cluster(server)

    ratio = figures["plain"]["rows_per_s"] / figures["batched"]["rows_per_s"]
    goals = {
        "batched within 1.5x of plain DELETE throughput": ratio <= 1.5,
        "no concurrent insert waited > 200 ms during the batched run":
            figures["batched"]["writer"]["max_ms"] <= 200 and figures["batched"]["writer"]["inserts"] > 0,
        "partition expiry (parent lock) in milliseconds": (figures["partition"]["parent_lock_ms"] or 0) < 1000,
    }
    figures["plain_over_batched_ratio"] = round(ratio, 3)
    figures["goals"] = goals
    print()
    print("pg_retention benchmark: %d expired rows over %s, batch_size %d" % (
        opts.rows, ", ".join(TABLES), opts.batch_size))
    print("  %-34s %12s %10s %12s %12s" % ("method", "rows", "seconds", "rows/s", "writer max"))
    for key, label in (("plain", "plain DELETE (1 statement/table)"), ("batched", "pg_retention (batched)")):
        f = figures[key]
        print("  %-34s %12d %10.2f %12d %9.1f ms" % (label, f["rows"], f["seconds"], f["rows_per_s"],
                                                     f["writer"]["max_ms"]))
        if len(figures["runs"][key]) > 1:
            print("  %-34s %s rows/s" % ("  (all runs)", ", ".join(str(r["rows_per_s"]) for r in figures["runs"][key])))
    print("  plain/batched throughput ratio: %.3f (goal <= 1.5)" % ratio)
    print("  one day of node_samples (%d rows):" % opts.day_rows)
    part, by_delete = figures["partition"], figures["partition_by_delete"]
    print("    by partition: parent locked %.1f ms (DETACH), policy %.1f ms incl. exact count, writer max %.1f ms"
          % (part["parent_lock_ms"] or 0, part["policy_ms_incl_count"], part["writer"]["max_ms"]))
    print("    by DELETE:    %.1f ms, writer max %.1f ms" % (by_delete["ms"], by_delete["writer"]["max_ms"]))
    for goal, ok in goals.items():
        print("  [%s] %s" % ("PASS" if ok else "FAIL", goal))
    if opts.json:
        with open(opts.json, "w", encoding="utf-8") as handle:
            json.dump(figures, handle, indent=2)
    return 0 if all(goals.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
