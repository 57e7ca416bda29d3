# -*- coding: utf-8 -*-
# Copyright: (c) 2025, Proxmox AI hardening maintainers
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Proxmox VE API access for one cluster: one keep-alive HTTPS session, token auth, retries with backoff.

A poll is exactly two GET requests, ``/cluster/status`` and ``/cluster/resources``,
whatever the size of the cluster.  When an endpoint keeps failing the next
endpoint of the same cluster is tried (failover); the session is kept across
polls so the TLS handshake happens once.
"""

from __future__ import annotations

import random
import time

import requests

from .logsafe import get_logger

LOG = get_logger("pve")


class PollError(Exception):
    """A poll of a cluster failed on every endpoint after all retries."""


class ApiError(Exception):
    """The API answered with an HTTP error that retrying will not fix (401, 403, 4xx, 501)."""

    def __init__(self, status: int, reason: str, url: str):
        super().__init__(f"HTTP {status} {reason} from {url}")
        self.status = status


class ClusterClient:  # pylint: disable=too-many-instance-attributes
    """The endpoints of one cluster and the HTTP session used to poll it."""

    def __init__(self, endpoints: list, timeout: float = 10.0, retries: int = 3, backoff_initial: float = 1.0,
                 backoff_max: float = 30.0, sleep=time.sleep):  # pylint: disable=too-many-arguments
        self.endpoints = list(endpoints)
        self.current = 0
        self.timeout = timeout
        self.retries = max(0, int(retries))
        self.backoff_initial = backoff_initial
        self.backoff_max = backoff_max
        self.sleep = sleep
        self.session = None
        self.api_calls = 0          # every HTTP request sent, retries included
        self.last_poll_calls = 0
        self.name = self.endpoints[0].cluster or self.endpoints[0].name

    @property
    def endpoint(self):
        return self.endpoints[self.current]

    def _session(self) -> requests.Session:
        if self.session is None:
            session = requests.Session()
            # REQUESTS_CA_BUNDLE and proxies from the environment must not replace the configured CA.
            session.trust_env = False
            session.headers["Authorization"] = self.endpoint.auth_header
            session.headers["Accept"] = "application/json"
            session.headers["User-Agent"] = "proxmox-ai-collector"
            self.session = session
        return self.session

    def close(self) -> None:
        if self.session is not None:
            self.session.close()
            self.session = None

    def _switch(self) -> None:
        self.close()
        if len(self.endpoints) > 1:
            self.current = (self.current + 1) % len(self.endpoints)
            LOG.warning("cluster %s: switching to endpoint %s (%s)", self.name, self.endpoint.name, self.endpoint.host)

    def get(self, path: str):
        """GET one path below /api2/json on the current endpoint; retries transient failures."""
        delay = self.backoff_initial
        last_error = None
        for attempt in range(self.retries + 1):
            endpoint = self.endpoint
            url = endpoint.url + path
            try:
                self.api_calls += 1
                self.last_poll_calls += 1
                resp = self._session().get(url, timeout=self.timeout, verify=endpoint.verify)
                if resp.status_code == 200:
                    return resp.json()["data"]
                reason = resp.reason or ""
                if resp.status_code in (401, 403) or 400 <= resp.status_code < 500 or resp.status_code == 501:
                    raise ApiError(resp.status_code, reason, url)
                last_error = f"HTTP {resp.status_code} {reason}".strip()
            except ApiError:
                raise
            except (requests.RequestException, ValueError, KeyError) as exc:
                last_error = f"{type(exc).__name__}: {exc}"
                self.close()  # a broken connection is not reused
            if attempt < self.retries:
                wait = min(self.backoff_max, delay) * (0.8 + 0.4 * random.random())  # nosec B311 - jitter only
                LOG.warning("cluster %s: GET %s on %s failed (%s); retry %d/%d in %.1fs", self.name, path,
                            endpoint.name, last_error, attempt + 1, self.retries, wait)
                self.sleep(wait)
                delay = min(self.backoff_max, delay * 2)
        raise PollError(f"GET {path} on {self.endpoint.name} ({self.endpoint.host}) failed after "
                        f"{self.retries + 1} attempts: {last_error}")

    def poll(self) -> tuple:
        """(cluster status, cluster resources): two requests; tries every endpoint once before giving up."""
        self.last_poll_calls = 0
        errors = []
        for _round in range(len(self.endpoints)):
            try:
                status = self.get("/cluster/status")
                resources = self.get("/cluster/resources")
                return status, resources
            except (PollError, ApiError) as exc:
                errors.append(str(exc))
                self._switch()
        raise PollError("; ".join(errors))
