# -*- coding: utf-8 -*-
# Copyright: (c) 2025, Proxmox AI hardening maintainers
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The collector's HTTP API (FastAPI): ``/health``, ``/nodes``, ``/alerts``.

- Every route but ``/health`` needs ``X-API-Key``: missing -> 401, wrong -> 403,
  compared with ``hmac.compare_digest``.  The service refuses to start with a
  missing, default or weak key (``keypolicy.py``).
- slowapi rate limit per client (``api.rate_limit``, default ``10/minute``) as a
  middleware, so rejected requests count too; the 11th request in a minute
  gets 429.  Behind the local reverse proxy the client is taken from
  ``X-Forwarded-For`` only when the peer is in ``api.trusted_proxies``.
- Listens on 127.0.0.1 unless configured otherwise.
- Bursts of 401/403/429 from one client (``api.reject_burst`` within
  ``api.reject_window`` seconds) raise a ``security`` alert in the alerts table;
  every rejection is also logged (the journal) for the security watcher.
"""

from __future__ import annotations

import collections
import datetime
import hmac
import json
import threading
import time

import psycopg2
import psycopg2.pool
from fastapi import FastAPI, HTTPException, Query, Request, Security
from fastapi.responses import JSONResponse
from fastapi.security import APIKeyHeader
from slowapi import Limiter
from slowapi.errors import RateLimitExceeded
from slowapi.middleware import SlowAPIMiddleware
from slowapi.util import get_remote_address

from .config import ConfigError, read_secret_file
from .keypolicy import key_problem
from .logsafe import get_logger

LOG = get_logger("api")

NODES_SQL = """
SELECT DISTINCT ON (details->>'cluster', node)
       node, details->>'cluster' AS cluster, status, cpu, cpu_count, mem_used, mem_total, rootfs_used,
       rootfs_total, uptime, created_at
  FROM node_samples
 WHERE created_at > now() - make_interval(secs => %s)
 ORDER BY details->>'cluster', node, created_at DESC
"""
ALERTS_SQL = """
SELECT id, severity, alert_type, entity_type, entity, message, status, occurrences, created_at, last_seen_at,
       resolved_at
  FROM alerts
 WHERE ({status} ) AND (%(alert_type)s::text IS NULL OR alert_type = %(alert_type)s)
 ORDER BY created_at DESC, id DESC
 LIMIT %(limit)s
"""
STATUS_FILTERS = {"open": "status <> 'resolved'", "resolved": "status = 'resolved'", "all": "true"}
SECURITY_UPSERT = (
    "INSERT INTO alerts (severity, alert_type, entity_type, entity, message, dedup_key, details) "
    "VALUES ('warning', 'security', 'client', %s, %s, %s, %s::jsonb) "
    "ON CONFLICT (dedup_key) WHERE status <> 'resolved' DO UPDATE SET occurrences = alerts.occurrences + 1, "
    "last_seen_at = now(), message = EXCLUDED.message, details = EXCLUDED.details"
)


def _jsonable(row: dict) -> dict:
    return {k: v.isoformat() if isinstance(v, (datetime.datetime, datetime.date)) else v for k, v in row.items()}


class Database:
    """A small psycopg2 pool, created lazily and rebuilt after connection errors."""

    def __init__(self, dsn_kwargs: dict):
        self.dsn_kwargs = dsn_kwargs
        self.pool = None
        self.lock = threading.Lock()

    def _pool(self):
        with self.lock:
            if self.pool is None:
                self.pool = psycopg2.pool.ThreadedConnectionPool(0, 4, **self.dsn_kwargs)
            return self.pool

    def reset(self) -> None:
        with self.lock:
            if self.pool is not None:
                self.pool.closeall()
            self.pool = None

    def query(self, sql: str, params=None, write: bool = False) -> list:
        try:
            pool = self._pool()
            conn = pool.getconn()
        except psycopg2.Error:
            self.reset()
            raise
        broken = False
        try:
            with conn.cursor() as cur:
                cur.execute(sql, params)
                rows = []
                if cur.description is not None:
                    names = [d[0] for d in cur.description]
                    rows = [dict(zip(names, r)) for r in cur.fetchall()]
            if write:
                conn.commit()
            else:
                conn.rollback()
            return rows
        except (psycopg2.OperationalError, psycopg2.InterfaceError):
            broken = True
            raise
        finally:
            try:
                pool.putconn(conn, close=broken)
            except psycopg2.Error:
                pass


class RejectionTracker:
    """Counts 401/403/429 per client; a burst raises one (de-duplicated) security alert."""

    def __init__(self, database: Database, burst: int, window: float):
        self.database = database
        self.burst = int(burst)
        self.window = float(window)
        self.seen = collections.defaultdict(collections.deque)
        self.lock = threading.Lock()

    def record(self, client: str, status: int, path: str) -> None:
        LOG.warning("api rejected request: status=%d client=%s path=%s", status, client, path)
        now = time.monotonic()
        with self.lock:
            times = self.seen[client]
            times.append((now, status))
            while times and now - times[0][0] > self.window:
                times.popleft()
            count = len(times)
            statuses = sorted({entry[1] for entry in times})
        if self.burst and count >= self.burst:
            message = f"{count} rejected API requests ({', '.join(map(str, statuses))}) from {client} " \
                      f"within {int(self.window)}s"
            details = json.dumps({"kind": "api_rejections", "client": client, "count": count, "statuses": statuses,
                                  "path": path})
            try:
                self.database.query(SECURITY_UPSERT, (client, message, f"security:api_rejections:{client}", details),
                                    write=True)
            except psycopg2.Error as exc:
                LOG.error("cannot record the security alert for %s: %s", client, str(exc).strip())


def create_app(config, api_key: str, database: Database | None = None) -> FastAPI:  # pylint: disable=too-many-locals
    """The application; ``api_key`` must already have passed ``key_problem``."""
    settings = config["api"]
    database = database or Database(config.dsn_kwargs())
    expected = api_key.encode("utf-8")
    tracker = RejectionTracker(database, settings["reject_burst"], settings["reject_window"])
    # application_limits: one bucket per client across every route (default_limits would count per route)
    limiter = Limiter(key_func=get_remote_address, application_limits=[str(settings["rate_limit"])],
                      storage_uri="memory://", headers_enabled=True)
    app = FastAPI(title="Proxmox AI collector API", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.limiter = limiter
    app.state.database = database
    app.state.tracker = tracker

    async def rate_limited(request: Request, exc: RateLimitExceeded):
        tracker.record(get_remote_address(request), 429, request.url.path)
        response = JSONResponse({"detail": f"Rate limit exceeded: {exc.detail}"}, status_code=429)
        return request.app.state.limiter._inject_headers(  # pylint: disable=protected-access
            response, request.state.view_rate_limit)

    app.add_exception_handler(RateLimitExceeded, rate_limited)
    app.add_middleware(SlowAPIMiddleware)
    header = APIKeyHeader(name="X-API-Key", auto_error=False)

    def require_key(request: Request, key: str | None = Security(header)) -> None:
        client = get_remote_address(request)
        if not key:
            tracker.record(client, 401, request.url.path)
            raise HTTPException(status_code=401, detail="missing API key", headers={"WWW-Authenticate": "APIKey"})
        if not hmac.compare_digest(key.encode("utf-8"), expected):
            tracker.record(client, 403, request.url.path)
            raise HTTPException(status_code=403, detail="invalid API key")

    def unavailable(exc) -> HTTPException:
        LOG.error("database query failed: %s", str(exc).strip())
        return HTTPException(status_code=503, detail="database unavailable")

    @app.get("/health")
    @limiter.exempt
    def health():
        try:
            database.query("SELECT 1")
            db_ok = True
        except psycopg2.Error:
            db_ok = False
        return JSONResponse({"status": "ok" if db_ok else "degraded", "database": "ok" if db_ok else "unreachable"},
                            status_code=200 if db_ok else 503)

    @app.get("/nodes", dependencies=[Security(require_key)])
    def nodes(max_age: int = Query(900, ge=1, le=86400)):
        try:
            rows = database.query(NODES_SQL, (max_age,))
        except psycopg2.Error as exc:
            raise unavailable(exc) from None
        return {"nodes": [_jsonable(r) for r in rows]}

    @app.get("/alerts", dependencies=[Security(require_key)])
    def alerts(status: str = Query("open", pattern="^(open|resolved|all)$"), alert_type: str | None = None,
               limit: int = Query(100, ge=1, le=1000)):
        sql = ALERTS_SQL.format(status=STATUS_FILTERS[status])
        try:
            rows = database.query(sql, {"alert_type": alert_type, "limit": limit})
        except psycopg2.Error as exc:
            raise unavailable(exc) from None
        return {"alerts": [_jsonable(r) for r in rows]}

    return app


def load_key(config) -> str:
    """The API key from ``api.key_file``; raises ConfigError when it is missing or refused by the policy."""
    settings = config["api"]
    if not settings.get("key_file"):
        raise ConfigError("refusing to start: api.key_file is not set (no API key)")
    try:
        key = read_secret_file(settings["key_file"], "API key")
    except ConfigError as exc:
        raise ConfigError(f"refusing to start: {exc}") from None
    problem = key_problem(key, settings.get("min_key_length", 32))
    if problem:
        raise ConfigError(f"refusing to start: {problem} ({settings['key_file']})")
    return key


def serve(config) -> int:
    import uvicorn  # pylint: disable=import-outside-toplevel

    try:
        key = load_key(config)
    except ConfigError as exc:
        LOG.error("%s", exc)
        return 2
    settings = config["api"]
    app = create_app(config, key)
    trusted = settings.get("trusted_proxies") or []
    LOG.info("API listening on %s:%s (rate limit %s per client)", settings["listen"], settings["port"],
             settings["rate_limit"])
    uvicorn.run(app, host=str(settings["listen"]), port=int(settings["port"]), log_config=None,
                proxy_headers=bool(trusted), forwarded_allow_ips=",".join(trusted) if trusted else None,
                server_header=False, date_header=True)
    return 0
