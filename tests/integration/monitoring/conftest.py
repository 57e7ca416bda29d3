"""Fixtures of the monitoring tests: the collector installed as the role installs it, a migrated database.

``collector_pkg`` copies ``roles/monitoring/files/proxmox_ai_collector`` and the
collection's ``plugins/module_utils/_sanitize.py`` into one package folder, exactly
the layout the ``monitoring`` role builds in its virtualenv, and puts it on
``sys.path``.  ``mon_db`` is a fresh database with the shipped migrations applied
(the same ``apply_migrations`` the ``pg_migrate`` module runs).
"""
from __future__ import annotations

import shutil
import sys
import tempfile

import pytest

from ansible_collections.proxmox_ai.hardening.plugins.module_utils._migrations import apply_migrations

from .helpers import MIGRATIONS, MonDb, install_collector


@pytest.fixture(scope="session")
def collector_pkg():
    base = tempfile.mkdtemp(prefix="pai-collector-")
    install_collector(base)
    sys.path.insert(0, base)
    try:
        yield base
    finally:
        sys.path.remove(base)
        for name in [m for m in sys.modules if m == "proxmox_ai_collector" or m.startswith("proxmox_ai_collector.")]:
            del sys.modules[name]
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture()
def mon_db(pg_server, pg_db):
    conn = pg_server.connect(pg_db)
    apply_migrations(conn, MIGRATIONS)
    conn.close()
    return MonDb(pg_server, pg_db)
