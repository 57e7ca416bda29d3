# -*- coding: utf-8 -*-
# Copyright: (c) 2025, Proxmox AI hardening maintainers
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""PostgreSQL writer of the collector: bulk writes, an in-memory buffer and a spool file for outages.

Every poll becomes one ``Batch`` (sample rows of one cluster plus alert
changes).  A batch is written in one transaction: one ``COPY`` per sample
table, one multi-row ``INSERT ... ON CONFLICT`` for the firing alerts and one
``UPDATE`` for the resolved ones.  While the database is unreachable batches
wait in memory (bounded by ``buffer.max_rows``, enforced after each failed write); the oldest overflow goes to
the spool file when one is configured (JSON lines, mode 0600) and only
otherwise is dropped (counted and logged).  On shutdown the memory buffer is
spooled as well, and the spool is written first when the database is back,
so samples keep their order and their original timestamps.
"""

from __future__ import annotations

import collections
import io
import json
import os
import threading
import time

import psycopg2
import psycopg2.extras

from . import rules
from .logsafe import get_logger

LOG = get_logger("store")

_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


def _copy_value(value) -> str:
    if value is None:
        return "\\N"
    if value is True:
        return "t"
    if value is False:
        return "f"
    if isinstance(value, float):
        return repr(value)
    return str(value).translate(_ESCAPES)


def copy_text(rows) -> io.StringIO:
    """Rows in PostgreSQL's COPY text format."""
    out = io.StringIO()
    write = out.write
    for row in rows:
        write("\t".join(_copy_value(v) for v in row))
        write("\n")
    out.seek(0)
    return out


class Batch:  # pylint: disable=too-few-public-methods
    """Everything one poll of one cluster writes."""

    __slots__ = ("ts", "cluster", "nodes", "guests", "storages", "upserts", "resolves", "events")

    def __init__(self, ts, cluster, nodes=(), guests=(), storages=(), upserts=(), resolves=(), events=()):
        self.ts = ts
        self.cluster = cluster
        self.nodes = list(nodes)
        self.guests = list(guests)
        self.storages = list(storages)
        self.upserts = list(upserts)      # alert dicts (rules.Alert.as_dict())
        self.resolves = list(resolves)    # dedup keys
        self.events = list(events)        # action_logs rows (dicts)

    @property
    def rows(self) -> int:
        return len(self.nodes) + len(self.guests) + len(self.storages)

    @property
    def weight(self) -> int:
        return max(1, self.rows + len(self.upserts) + len(self.resolves) + len(self.events))

    def to_json(self) -> str:
        return json.dumps({k: getattr(self, k) for k in self.__slots__}, separators=(",", ":"))

    @classmethod
    def from_json(cls, line: str) -> "Batch":
        data = json.loads(line)
        return cls(**{k: data.get(k) or ([] if k not in ("ts", "cluster") else "") for k in cls.__slots__})


class Spool:
    """Append-only JSON-lines file of batches that could not be written (mode 0600)."""

    def __init__(self, path: str, max_bytes: int):
        self.path = path
        self.max_bytes = int(max_bytes)

    def size(self) -> int:
        try:
            return os.path.getsize(self.path)
        except OSError:
            return 0

    def append(self, batches) -> int:
        """Append batches; returns how many did not fit (the caller counts them as dropped)."""
        lines = [b.to_json() + "\n" for b in batches]
        if not lines:
            return 0
        size = self.size()
        keep = []
        for line in lines:
            if size + len(line) > self.max_bytes:
                break
            keep.append(line)
            size += len(line)
        if keep:
            fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
            with os.fdopen(fd, "a", encoding="utf-8") as handle:
                handle.writelines(keep)
                handle.flush()
                os.fsync(handle.fileno())
        return len(lines) - len(keep)

    def read(self) -> list:
        try:
            with open(self.path, encoding="utf-8") as handle:
                lines = handle.readlines()
        except FileNotFoundError:
            return []
        batches = []
        for number, line in enumerate(lines, 1):
            line = line.strip()
            if not line:
                continue
            try:
                batches.append(Batch.from_json(line))
            except (ValueError, TypeError) as exc:
                LOG.error("spool %s line %d is unreadable and is skipped: %s", self.path, number, exc)
        return batches

    def rewrite(self, batches) -> None:
        """Replace the spool with ``batches`` (empty list: remove it)."""
        if not batches:
            try:
                os.unlink(self.path)
            except FileNotFoundError:
                pass
            return
        tmp = self.path + ".tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.writelines(b.to_json() + "\n" for b in batches)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, self.path)


UPSERT_SQL = (
    "INSERT INTO alerts (severity, alert_type, entity_type, entity, message, dedup_key, details, last_seen_at, "
    "created_at) VALUES %s "
    "ON CONFLICT (dedup_key) WHERE status <> 'resolved' DO UPDATE SET "
    "occurrences = alerts.occurrences + 1, last_seen_at = EXCLUDED.last_seen_at, message = EXCLUDED.message, "
    "severity = EXCLUDED.severity, details = EXCLUDED.details "
    "RETURNING dedup_key, (xmax = 0) AS inserted, id"
)
UPSERT_TEMPLATE = "(%s, %s, %s, %s, %s, %s, %s::jsonb, %s::timestamptz, %s::timestamptz)"
RESOLVE_SQL = ("UPDATE alerts SET status = 'resolved', resolved_at = %s::timestamptz "
               "WHERE dedup_key = ANY(%s) AND status <> 'resolved'")
EVENT_SQL = "INSERT INTO action_logs (\"timestamp\", actor, action_type, entity, status, details) VALUES %s"
EVENT_TEMPLATE = "(%s::timestamptz, %s, %s, %s, %s, %s::jsonb)"


class Store:  # pylint: disable=too-many-instance-attributes
    """Buffered writer; ``flush()`` never raises, it reports whether everything was written."""

    MAX_REJECTIONS = 3

    def __init__(self, dsn_kwargs: dict, max_rows: int = 500000, spool_file: str = "",
                 spool_max_bytes: int = 256 * 1024 * 1024, describe: str = "the database"):
        self.dsn_kwargs = dict(dsn_kwargs)
        self.describe = describe
        self.max_rows = int(max_rows)
        self.spool = Spool(spool_file, spool_max_bytes) if spool_file else None
        self.pending = collections.deque()
        self.pending_weight = 0
        self.conn = None
        self.lock = threading.RLock()
        self.down_since = None
        self.stats = {"rows_written": 0, "batches_written": 0, "write_seconds": 0.0, "dropped_batches": 0,
                      "dropped_rows": 0, "spooled_batches": 0, "failed_flushes": 0}
        self.new_alerts = []          # (dedup_key, id, alert dict) inserted by the last flushes
        self.open_keys = set()
        self.open_loaded = False
        self.rejections = {}

    # -- connection --------------------------------------------------------------
    def _connect(self):
        if self.conn is not None and not self.conn.closed:
            return self.conn
        self.conn = psycopg2.connect(**self.dsn_kwargs)
        self.conn.autocommit = False
        return self.conn

    def close(self) -> None:
        if self.conn is not None:
            try:
                self.conn.close()
            except psycopg2.Error:
                pass
        self.conn = None

    def load_open_alerts(self) -> bool:
        """Read the unresolved collector alerts once (merged with what the collector already believes)."""
        with self.lock:
            try:
                conn = self._connect()
                with conn.cursor() as cur:
                    cur.execute("SELECT dedup_key FROM alerts WHERE status <> 'resolved' AND dedup_key LIKE 'pve:%%'")
                    self.open_keys |= {row[0] for row in cur.fetchall()}
                conn.rollback()
                self.open_loaded = True
                return True
            except psycopg2.Error as exc:
                self._failed(exc)
                return False

    # -- buffer --------------------------------------------------------------------
    @property
    def buffered_rows(self) -> int:
        return sum(b.rows for b in self.pending)

    def submit(self, batch: Batch) -> None:
        with self.lock:
            for alert in batch.upserts:
                self.open_keys.add(alert["key"])
            self.open_keys.difference_update(batch.resolves)
            self.pending.append(batch)
            self.pending_weight += batch.weight

    def _trim(self) -> None:
        """After a failed flush: keep at most ``max_rows`` in memory, the oldest overflow goes to the spool."""
        with self.lock:
            overflow = []
            while self.pending_weight > self.max_rows and len(self.pending) > 1:
                oldest = self.pending.popleft()
                self.pending_weight -= oldest.weight
                overflow.append(oldest)
            if overflow:
                self._offload(overflow, "the in-memory buffer is full")

    def _offload(self, batches: list, why: str) -> None:
        dropped = batches
        if self.spool is not None:
            try:
                lost = self.spool.append(batches)
                self.stats["spooled_batches"] += len(batches) - lost
                dropped = batches[len(batches) - lost:] if lost else []
            except OSError as exc:
                LOG.error("cannot write the spool file %s: %s", self.spool.path, exc)
        if dropped:
            rows = sum(b.rows for b in dropped)
            self.stats["dropped_batches"] += len(dropped)
            self.stats["dropped_rows"] += rows
            LOG.error("%s and no spool space is left: dropped %d batches (%d sample rows)", why, len(dropped), rows)

    def spool_pending(self) -> None:
        """On shutdown: move the memory buffer to the spool file (or report what is lost)."""
        with self.lock:
            if not self.pending:
                return
            batches = list(self.pending)
            self.pending.clear()
            self.pending_weight = 0
            self._offload(batches, "shutting down with unwritten samples")
            if self.spool is not None:
                LOG.info("spooled %d unwritten batches to %s", len(batches), self.spool.path)

    # -- writing -------------------------------------------------------------------
    def _rollback(self) -> None:
        if self.conn is not None and not self.conn.closed:
            try:
                self.conn.rollback()
            except psycopg2.Error:
                self.close()

    def _failed(self, exc) -> None:
        self.close()
        self._trim()
        self.stats["failed_flushes"] += 1
        if self.down_since is None:
            self.down_since = time.time()
            LOG.error("database %s unreachable, buffering samples: %s", self.describe, str(exc).strip())
        else:
            LOG.warning("database %s still unreachable (%ds, %d batches buffered): %s", self.describe,
                        int(time.time() - self.down_since), len(self.pending), str(exc).strip().splitlines()[0]
                        if str(exc).strip() else type(exc).__name__)

    def _write(self, conn, batch: Batch) -> None:
        started = time.perf_counter()
        with conn.cursor() as cur:
            for table, columns, rows in (("node_samples", rules.NODE_COLUMNS, batch.nodes),
                                         ("guest_samples", rules.GUEST_COLUMNS, batch.guests),
                                         ("storage_samples", rules.STORAGE_COLUMNS, batch.storages)):
                if rows:
                    cur.copy_expert(f"COPY {table} ({', '.join(columns)}) FROM STDIN", copy_text(rows))
            inserted = []
            if batch.upserts:
                values = [(a["severity"], a["alert_type"], a["entity_type"], a["entity"], a["message"], a["key"],
                           json.dumps(a.get("details") or {}), batch.ts, batch.ts) for a in batch.upserts]
                result = psycopg2.extras.execute_values(cur, UPSERT_SQL, values, template=UPSERT_TEMPLATE,
                                                        page_size=max(1, len(values)), fetch=True)
                by_key = {a["key"]: a for a in batch.upserts}
                inserted = [(key, ident, by_key[key]) for key, new, ident in result if new]
            if batch.resolves:
                cur.execute(RESOLVE_SQL, (batch.ts, list(batch.resolves)))
            if batch.events:
                values = [(e.get("timestamp") or batch.ts, e["actor"], e["action_type"], e.get("entity"), e["status"],
                           json.dumps(e.get("details") or {})) for e in batch.events]
                psycopg2.extras.execute_values(cur, EVENT_SQL, values, template=EVENT_TEMPLATE,
                                               page_size=max(1, len(values)))
        conn.commit()
        self.new_alerts.extend(inserted)
        self.stats["rows_written"] += batch.rows
        self.stats["batches_written"] += 1
        self.stats["write_seconds"] += time.perf_counter() - started

    def flush(self) -> bool:
        """Write the spool, then the buffer, oldest first. True when nothing is left to write."""
        with self.lock:
            try:
                conn = self._connect()
                if not self.open_loaded:
                    self.load_open_alerts()
                self._drain_spool(conn)
                while self.pending:
                    batch = self.pending[0]
                    self._write(conn, batch)
                    self.pending.popleft()
                    self.pending_weight -= batch.weight
            except (psycopg2.OperationalError, psycopg2.InterfaceError) as exc:
                self._failed(exc)
                return False
            except psycopg2.Error as exc:
                # the server refused this batch (not a connection problem): retry it a few times, then drop it
                self._rollback()
                batch = self.pending[0] if self.pending else None
                self.rejections[id(batch)] = self.rejections.get(id(batch), 0) + 1
                LOG.error("database %s refused a batch of cluster %s: %s", self.describe,
                          batch.cluster if batch else "?", str(exc).strip())
                if batch is not None and self.rejections[id(batch)] >= self.MAX_REJECTIONS:
                    self.pending.popleft()
                    self.pending_weight -= batch.weight
                    self.rejections.pop(id(batch), None)
                    self.stats["dropped_batches"] += 1
                    self.stats["dropped_rows"] += batch.rows
                    LOG.error("dropped that batch (%d sample rows) after %d refusals", batch.rows, self.MAX_REJECTIONS)
                return False
            if self.down_since is not None:
                LOG.info("database %s reachable again after %ds; buffered samples written", self.describe,
                         int(time.time() - self.down_since))
                self.down_since = None
            return True

    def _drain_spool(self, conn) -> None:
        if self.spool is None or not self.spool.size():
            return
        batches = self.spool.read()
        done = 0
        try:
            for batch in batches:
                try:
                    self._write(conn, batch)
                except (psycopg2.DataError, psycopg2.IntegrityError) as exc:
                    self._rollback()
                    self.stats["dropped_batches"] += 1
                    self.stats["dropped_rows"] += batch.rows
                    LOG.error("dropped a spooled batch of cluster %s the database refuses: %s", batch.cluster,
                              str(exc).strip())
                done += 1
        finally:
            self.spool.rewrite(batches[done:])
            if done:
                LOG.info("wrote %d spooled batches from %s", done, self.spool.path)

    def take_new_alerts(self) -> list:
        with self.lock:
            result, self.new_alerts = self.new_alerts, []
            return result
