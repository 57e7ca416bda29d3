# -*- coding: utf-8 -*-
# Copyright: (c) 2025, Proxmox AI hardening maintainers
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Overhead of the action_log callback on a 500-task playbook, against the default callback alone.

Runs the same playbook (500 tasks on localhost) with ansible-playbook: with the
default callback only, with action_log writing to a throwaway PostgreSQL, and
with action_log while that database is down (rows spooled). Runs alternate.
On a shared machine the wall time of one run varies by tens of percent, so the
figures are the minimum and median wall time and the CPU time of the whole
process tree; the goal (< 5 %) is judged on the minimum wall time. Also prints
the rows written (one per task result) and the rows spooled.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import uuid

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
for _path in (os.path.join(ROOT, "build", "collections"), ROOT):
    if _path not in sys.path:
        sys.path.insert(0, _path)

# pylint: disable=wrong-import-position
import yaml  # noqa: E402

from tests.integration.monitoring.helpers import MIGRATIONS, MonDb, action_log_env, ansible_env  # noqa: E402
from tests.support.postgres import start_cluster, stop_cluster  # noqa: E402


def log(msg: str) -> None:
    print(msg, flush=True)


def playbook(folder: str, tasks: int) -> str:
    kinds = [
        {"ansible.builtin.debug": {"msg": "task {{ 1 }}"}},
        {"ansible.builtin.set_fact": {"x": "password=hunter2"}},
        {"ansible.builtin.debug": {"msg": "skipped"}, "when": False},
        {"ansible.builtin.assert": {"that": ["1 == 1"], "quiet": True}},
    ]
    play = [{"name": "bench", "hosts": "localhost", "gather_facts": False,
             "tasks": [dict(kinds[i % len(kinds)], name=f"task {i}") for i in range(tasks)]}]
    path = os.path.join(folder, "bench.yml")
    with open(path, "w", encoding="utf-8") as handle:
        yaml.safe_dump(play, handle)
    return path


def run(book: str, env: dict) -> tuple:
    """(wall seconds, CPU seconds of the whole ansible-playbook process tree) of one run."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    proc = subprocess.run(["ansible-playbook", "-i", "localhost,", "-c", "local", "-e",
                           f"ansible_python_interpreter={sys.executable}", book], capture_output=True, text=True,
                          env=env, timeout=1800, check=False)
    elapsed = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        raise RuntimeError(proc.stdout[-2000:] + proc.stderr[-2000:])
    return elapsed, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def summary(label: str, runs: list, base: dict | None = None) -> dict:
    walls, cpus = [r[0] for r in runs], [r[1] for r in runs]
    figures = {"min": min(walls), "median": statistics.median(walls), "cpu": statistics.median(cpus)}
    text = f"   {label:<32} wall min {figures['min']:6.2f} s, median {figures['median']:6.2f} s; " \
           f"CPU {figures['cpu']:6.2f} s"
    if base:
        figures.update({k + "_pct": (figures[k] - base[k]) / base[k] * 100 for k in ("min", "median", "cpu")})
        text += f"  -> overhead wall {figures['min_pct']:+.1f} % (min), {figures['median_pct']:+.1f} % (median), " \
                f"CPU {figures['cpu_pct']:+.1f} %"
    log(text)
    return figures


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--tasks", type=int, default=500)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    from ansible_collections.proxmox_ai.hardening.plugins.module_utils._migrations import (  # pylint: disable=import-outside-toplevel
        apply_migrations)
    folder = tempfile.mkdtemp(prefix="pai-bench-callback-")
    book = playbook(folder, args.tasks)
    pg = start_cluster()
    try:
        name = "bench_" + uuid.uuid4().hex[:8]
        conn = pg.connect()
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute(f'CREATE DATABASE "{name}"')
        conn.close()
        conn = pg.connect(name)
        apply_migrations(conn, MIGRATIONS)
        conn.close()
        db = MonDb(pg, name)
        spool = os.path.join(folder, "spool")
        plain_env = ansible_env()
        logged_env = ansible_env(**action_log_env(db, spool))
        plain, logged = [], []
        run(book, plain_env)  # warm caches (Python bytecode, collection loader)
        for _round in range(args.runs):  # alternate, so that background load hits both alike
            plain.append(run(book, plain_env))
            logged.append(run(book, logged_env))
        rows = db.scalar("SELECT count(*) FROM action_logs")
        pg.ctl("stop")
        try:
            down = [run(book, logged_env) for _round in range(max(1, args.runs // 2))]
        finally:
            pg.ctl("start")
        with open(spool, encoding="utf-8") as handle:
            spooled = sum(1 for _line in handle)
        log(f"{args.tasks}-task playbook, {args.runs} alternating runs each (shared machine: the minimum wall time "
            "and the CPU time are the stable figures)")
        base = summary("default callback only", plain)
        with_log = summary("+ action_log (database up)", logged, base)
        summary("+ action_log (database down)", down, base)
        log(f"   rows: {rows} for {args.runs} runs ({rows // args.runs} per run of {args.tasks} tasks); "
            f"{spooled} rows spooled while the database was down")
        ok = with_log["min_pct"] < 5 and rows == args.runs * args.tasks
        log(f"goal: overhead < 5 % (minimum wall time) and one row per task: {'OK' if ok else 'MISSED'}")
        return 0 if ok else 1
    finally:
        stop_cluster(pg)


if __name__ == "__main__":
    sys.exit(main())
