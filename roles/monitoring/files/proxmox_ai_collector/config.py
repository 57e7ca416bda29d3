# -*- coding: utf-8 -*-
# Copyright: (c) 2025, Proxmox AI hardening maintainers
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Configuration of the collector, its API and its helpers (one YAML file, mode 0600).

The Proxmox VE endpoints come from the node configuration written by the
``proxmox_access`` role (``nodes_file``)::

    nodes:
      - name: pve1                # node name
        host: 10.0.1.10
        port: 8006
        user: proxmox-ai@pam
        token_name: monitoring
        token_value: <uuid>
        verify_ssl: true          # CA verification, on unless explicitly false
        ca_cert: /etc/proxmox-ai/prod-ca.pem   # optional: CA bundle to verify with
        cluster: prod             # optional: entries of one cluster share a key

Entries of one cluster are failover endpoints of that cluster: the collector
polls each cluster through one of them (grouped by ``cluster`` when given,
otherwise by the node names that ``/cluster/status`` reports).
"""

from __future__ import annotations

import copy
import os
import stat

import yaml

DEFAULTS = {
    "nodes_file": "/etc/proxmox-ai/proxmox-nodes.yml",
    "poll_interval": 30.0,
    "request_timeout": 10.0,
    "retries": 3,
    "backoff_initial": 1.0,
    "backoff_max": 30.0,
    "log_level": "INFO",
    "state_file": "",
    "database": {
        "host": "127.0.0.1",
        "port": 5432,
        "dbname": "proxmox_ai",
        "user": "proxmox_user",
        "password": "",
        "password_file": "",
        "sslmode": "prefer",
        "sslrootcert": "",
        "sslcert": "",
        "sslkey": "",
        "connect_timeout": 5,
    },
    "thresholds": {
        "storage_warning": 85.0,
        "storage_critical": 95.0,
        "node_memory_warning": 90.0,
        "node_memory_critical": 97.0,
        "guest_memory_warning": 95.0,
        "guest_memory_critical": 99.0,
    },
    "alerts": {
        "guest_stopped": True,
        "ignore_tags": ["no-monitor"],
    },
    "buffer": {
        "max_rows": 500000,
        "spool_file": "",
        "spool_max_bytes": 256 * 1024 * 1024,
    },
    "api": {
        "listen": "127.0.0.1",
        "port": 8008,
        "key_file": "/etc/proxmox-ai/api-key",
        "rate_limit": "10/minute",
        "trusted_proxies": ["127.0.0.1"],
        "min_key_length": 32,
        "reject_burst": 5,
        "reject_window": 60,
    },
    "remediation": {
        "mode": "none",
        "cooldown": 900,
        "map": {},
        "awx": {"url": "", "token_file": "", "job_template_id": 0, "verify_ssl": True, "ca_cert": "", "timeout": 15},
        "runner": {"private_data_dir": "/var/lib/proxmox-ai/remediation", "playbook": "remediate.yml", "timeout": 1800,
                   "rotate_artifacts": 0},
    },
    "security": {
        "window": 300,
        "ufw_block_threshold": 20,
        "auth_failure_threshold": 5,
        "journal_cursor_file": "",
    },
}

SSL_MODES = ("disable", "allow", "prefer", "require", "verify-ca", "verify-full")


class ConfigError(Exception):
    """The configuration cannot be used; the message says what to fix."""


def _merge(base: dict, override: dict, where: str = "") -> dict:
    result = copy.deepcopy(base)
    for key, value in (override or {}).items():
        if key not in base:
            raise ConfigError(f"unknown setting '{where}{key}'")
        if isinstance(base[key], dict) and key not in ("map",):
            if not isinstance(value, dict):
                raise ConfigError(f"'{where}{key}' must be a mapping")
            result[key] = _merge(base[key], value, f"{where}{key}.")
        else:
            result[key] = value
    return result


def _read_yaml(path: str, what: str):
    try:
        with open(path, encoding="utf-8") as handle:
            return yaml.safe_load(handle) or {}
    except OSError as exc:
        raise ConfigError(f"cannot read the {what} {path}: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"the {what} {path} is not valid YAML: {exc}") from None


def _warn_permissions(path: str, warnings: list) -> None:
    try:
        mode = stat.S_IMODE(os.stat(path).st_mode)
    except OSError:
        return
    if mode & 0o077:
        warnings.append(f"{path} holds secrets but has mode {mode:04o} (expected 0600)")


def read_secret_file(path: str, what: str) -> str:
    try:
        with open(path, encoding="utf-8") as handle:
            return handle.read().strip()
    except OSError as exc:
        raise ConfigError(f"cannot read the {what} file {path}: {exc.strerror}") from None


class Endpoint:  # pylint: disable=too-few-public-methods,too-many-instance-attributes
    """One Proxmox VE API endpoint (a node of the node configuration)."""

    def __init__(self, entry: dict, index: int):
        where = f"nodes[{index}]"
        for key in ("name", "host", "user", "token_name", "token_value"):
            if not entry.get(key):
                raise ConfigError(f"{where}: '{key}' is missing or empty")
        self.name = str(entry["name"])
        self.host = str(entry["host"])
        self.port = int(entry.get("port") or 8006)
        self.user = str(entry["user"])
        self.token_name = str(entry["token_name"])
        self.token_value = str(entry["token_value"])
        self.cluster = str(entry["cluster"]) if entry.get("cluster") else ""
        verify = entry.get("verify_ssl", True)
        if isinstance(verify, str):
            verify = verify.strip().lower() not in ("0", "false", "no", "off")
        ca_cert = entry.get("ca_cert") or ""
        if verify and ca_cert:
            if not os.path.isfile(ca_cert):
                raise ConfigError(f"{where}: ca_cert {ca_cert} does not exist")
            self.verify = ca_cert
        else:
            self.verify = bool(verify)

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host and not self.host.startswith("[") else self.host
        return f"https://{host}:{self.port}/api2/json"

    @property
    def auth_header(self) -> str:
        return f"PVEAPIToken={self.user}!{self.token_name}={self.token_value}"


def load_nodes(path: str, warnings: list) -> list:
    data = _read_yaml(path, "node configuration")
    entries = data.get("nodes") if isinstance(data, dict) else None
    if not isinstance(entries, list) or not entries:
        raise ConfigError(f"{path}: expected a non-empty 'nodes' list")
    _warn_permissions(path, warnings)
    endpoints = [Endpoint(entry if isinstance(entry, dict) else {}, i) for i, entry in enumerate(entries)]
    for endpoint in endpoints:
        if endpoint.verify is False:
            warnings.append(f"TLS verification is off for {endpoint.name} ({endpoint.host}): use a CA (ca_cert)")
    return endpoints


class Config:  # pylint: disable=too-few-public-methods
    """The merged settings plus derived values; ``warnings`` lists what deserves a log line."""

    def __init__(self, data: dict, path: str = "", load_endpoints: bool = True):
        self.path = path
        self.warnings: list = []
        self.data = _merge(DEFAULTS, data or {})
        self._check()
        self.endpoints = load_nodes(self.data["nodes_file"], self.warnings) if load_endpoints else []

    def __getitem__(self, key):
        return self.data[key]

    def _check(self) -> None:
        data = self.data
        for key in ("poll_interval", "request_timeout", "backoff_initial", "backoff_max"):
            try:
                data[key] = float(data[key])
            except (TypeError, ValueError):
                raise ConfigError(f"'{key}' must be a number") from None
            if data[key] <= 0:
                raise ConfigError(f"'{key}' must be positive")
        data["retries"] = int(data["retries"])
        database = data["database"]
        if database["sslmode"] not in SSL_MODES:
            raise ConfigError(f"database.sslmode must be one of {', '.join(SSL_MODES)}")
        if database["sslmode"] in ("verify-ca", "verify-full") and database["sslrootcert"] \
                and not os.path.isfile(database["sslrootcert"]):
            raise ConfigError(f"database.sslrootcert {database['sslrootcert']} does not exist")
        if int(data["buffer"]["max_rows"]) < 1:
            raise ConfigError("buffer.max_rows must be at least 1")
        mode = data["remediation"]["mode"]
        if mode not in ("none", "awx", "runner"):
            raise ConfigError("remediation.mode must be none, awx or runner")
        if not isinstance(data["remediation"]["map"], dict):
            raise ConfigError("remediation.map must map alert types to remediation actions")
        if not isinstance(data["alerts"]["ignore_tags"], list):
            raise ConfigError("alerts.ignore_tags must be a list")

    def dsn_kwargs(self) -> dict:
        """psycopg2.connect() keyword arguments (the password never leaves this dict)."""
        database = self.data["database"]
        kwargs = {"host": database["host"], "port": int(database["port"]), "dbname": database["dbname"],
                  "user": database["user"], "sslmode": database["sslmode"],
                  "connect_timeout": int(database["connect_timeout"]),
                  "application_name": "proxmox-ai-collector"}
        password = database["password"]
        if not password and database["password_file"]:
            password = read_secret_file(database["password_file"], "database password")
        if password:
            kwargs["password"] = password
        for key in ("sslrootcert", "sslcert", "sslkey"):
            if database[key]:
                kwargs[key] = database[key]
        return kwargs

    def describe_db(self) -> str:
        database = self.data["database"]
        return f"{database['user']}@{database['host']}:{database['port']}/{database['dbname']} " \
               f"(sslmode={database['sslmode']})"


def load(path: str, load_endpoints: bool = True) -> Config:
    data = _read_yaml(path, "configuration")
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping")
    config = Config(data, path, load_endpoints)
    _warn_permissions(path, config.warnings)
    return config
