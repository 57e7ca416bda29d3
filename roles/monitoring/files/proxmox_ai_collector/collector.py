# -*- coding: utf-8 -*-
# Copyright: (c) 2025, Proxmox AI hardening maintainers
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The polling loop: every ``poll_interval`` seconds, two API calls per cluster, one bulk write per cluster.

Nothing in the loop may stop it: a cluster that cannot be polled raises a
``poll_failed`` alert (recorded like any other alert, resolved by the next
good poll), a database outage only fills the buffer (see ``store.py``).
"""

from __future__ import annotations

import concurrent.futures
import datetime
import json
import os
import threading
import time

from . import rules
from .logsafe import get_logger
from .pve import ClusterClient, PollError
from .remediation import Dispatcher
from .store import Batch, Store

LOG = get_logger("collector")


def now_iso() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat()


def group_endpoints(endpoints: list) -> list:
    """Endpoints with the same ``cluster`` key form one group; every other endpoint starts alone."""
    groups, by_cluster = [], {}
    for endpoint in endpoints:
        if endpoint.cluster:
            if endpoint.cluster not in by_cluster:
                by_cluster[endpoint.cluster] = []
                groups.append(by_cluster[endpoint.cluster])
            by_cluster[endpoint.cluster].append(endpoint)
        else:
            groups.append([endpoint])
    return groups


class Collector:  # pylint: disable=too-many-instance-attributes
    """Polls every cluster of the configuration and hands the results to the store."""

    def __init__(self, config, store: Store | None = None, sleep=time.sleep):
        self.config = config
        self.sleep = sleep
        self.store = store or Store(config.dsn_kwargs(), config["buffer"]["max_rows"], config["buffer"]["spool_file"],
                                    config["buffer"]["spool_max_bytes"], config.describe_db())
        self.clients = [self._client(group) for group in group_endpoints(config.endpoints)]
        self.rules = rules.Rules(config["thresholds"], config["alerts"])
        self.dispatcher = Dispatcher(config["remediation"], self._record_event)
        self.events = []
        self.events_lock = threading.Lock()
        self.stop_event = threading.Event()
        self.polls = 0
        self.failed_polls = 0
        self.last_poll = {}
        self.state_file = config.data.get("state_file") or ""
        for warning in config.warnings:
            LOG.warning("%s", warning)

    def _client(self, group: list) -> ClusterClient:
        cfg = self.config
        return ClusterClient(group, timeout=cfg["request_timeout"], retries=cfg["retries"],
                             backoff_initial=cfg["backoff_initial"], backoff_max=cfg["backoff_max"], sleep=self.sleep)

    def _record_event(self, event: dict) -> None:
        with self.events_lock:
            self.events.append(dict(event, timestamp=event.get("timestamp") or now_iso()))

    # -- one poll --------------------------------------------------------------------
    def _poll_cluster(self, client: ClusterClient) -> tuple:
        started = time.perf_counter()
        ts = now_iso()
        try:
            status, resources = client.poll()
            return client, ts, status, resources, None, time.perf_counter() - started
        except PollError as exc:
            return client, ts, None, None, str(exc), time.perf_counter() - started
        except Exception as exc:  # pylint: disable=broad-except  # never let one cluster stop the loop
            return client, ts, None, None, f"{type(exc).__name__}: {exc}", time.perf_counter() - started

    def _merge_groups(self, client: ClusterClient, node_names: set) -> None:
        """Fold single endpoints that belong to an already polled cluster into its failover list."""
        for other in list(self.clients):
            if other is client or other.endpoints[0].cluster:
                continue
            if all(e.name in node_names for e in other.endpoints):
                client.endpoints.extend(other.endpoints)
                other.close()
                self.clients.remove(other)
                LOG.info("endpoint(s) %s belong to cluster %s: used as failover", [e.name for e in other.endpoints],
                         client.name)

    def poll_once(self) -> dict:
        """Poll every cluster, write the batches, dispatch remediations. Returns figures of this poll."""
        clients = list(self.clients)
        workers = max(1, min(8, len(clients)))
        with concurrent.futures.ThreadPoolExecutor(max_workers=workers) as pool:
            results = list(pool.map(self._poll_cluster, clients))
        summary = {"clusters": len(results), "failed": 0, "rows": 0, "api_calls": 0, "poll_seconds": {}}
        if not self.store.open_loaded:
            self.store.load_open_alerts()  # the alerts a previous run left open (e.g. a guest still stopped)
        for client, ts, status, resources, error, seconds in results:
            summary["api_calls"] += client.last_poll_calls
            summary["poll_seconds"][client.name] = seconds
            self.polls += 1
            if error is not None:
                self.failed_polls += 1
                summary["failed"] += 1
                LOG.error("poll of cluster %s failed: %s", client.name, error)
                alert = rules.poll_failed_alert(client.name, error)
                self.store.submit(Batch(ts, client.name, upserts=[alert.as_dict()]))
                continue
            # the label stays the configured one (cluster key or first endpoint name): dedup keys must not move
            obs = rules.Observation(client.name, ts, status, resources)
            self._merge_groups(client, obs.node_names)
            firing, observed, present = self.rules.evaluate(obs, self.store.open_keys)
            # until the open alerts are known (database down since the start) nothing is resolved
            resolves = rules.resolvable(obs.cluster, self.store.open_keys, firing, observed, present) \
                if self.store.open_loaded else []
            self.store.submit(Batch(ts, obs.cluster, obs.node_rows, obs.guest_rows, obs.storage_rows,
                                    [a.as_dict() for a in firing.values()], resolves))
            summary["rows"] += obs.rows
            self.last_poll[obs.cluster] = {"time": ts, "rows": obs.rows, "api_calls": client.last_poll_calls,
                                           "seconds": round(seconds, 4)}
        with self.events_lock:
            events, self.events = self.events, []
        if events:
            self.store.submit(Batch(now_iso(), "", events=events))
        summary["written"] = self.store.flush()
        for key, alert_id, alert in self.store.take_new_alerts():
            self.dispatcher.handle(alert, alert_id)
            LOG.info("alert opened: %s (%s)", key, alert["message"])
        self._write_state(summary)
        return summary

    def _write_state(self, summary: dict) -> None:
        if not self.state_file:
            return
        state = {"time": now_iso(), "polls": self.polls, "failed_polls": self.failed_polls,
                 "database": "ok" if summary.get("written") else "unreachable",
                 "buffered_rows": self.store.buffered_rows, "clusters": self.last_poll,
                 "store": self.store.stats}
        tmp = self.state_file + ".tmp"
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o640)
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                json.dump(state, handle)
            os.replace(tmp, self.state_file)
        except OSError as exc:
            LOG.warning("cannot write the state file %s: %s", self.state_file, exc)

    # -- the loop ----------------------------------------------------------------------
    def run(self, max_polls: int = 0) -> None:
        interval = float(self.config["poll_interval"])
        LOG.info("collector started: %d cluster endpoint group(s), poll every %.0fs, database %s", len(self.clients),
                 interval, self.config.describe_db())
        done = 0
        while not self.stop_event.is_set():
            started = time.monotonic()
            try:
                summary = self.poll_once()
                LOG.debug("poll: %s", summary)
            except Exception:  # pylint: disable=broad-except  # the loop must survive anything
                LOG.exception("unexpected error in the poll loop")
            done += 1
            if max_polls and done >= max_polls:
                break
            self.stop_event.wait(max(0.0, interval - (time.monotonic() - started)))
        self.shutdown()

    def shutdown(self) -> None:
        self.dispatcher.join(10)
        with self.events_lock:
            events, self.events = self.events, []
        if events:
            self.store.submit(Batch(now_iso(), "", events=events))
        if not self.store.flush():
            self.store.spool_pending()
        self.store.close()
        for client in self.clients:
            client.close()
        LOG.info("collector stopped")
