# -*- coding: utf-8 -*-
# Copyright: (c) 2025, Proxmox AI hardening maintainers
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Versioned SQL migrations tracked in ``schema_migrations``.

Pure Python on top of a psycopg2 connection (no Ansible imports), used by the
``pg_migrate`` module and directly by tests that need the schema::

    apply_migrations(conn, 'roles/postgresql/files/migrations')

Files are ``NNN_name.sql``.  Each pending file runs in one transaction together
with its ``schema_migrations`` row, under a session advisory lock so that two
runs never interleave.  A file that was applied with another checksum is an
error: released migrations are never edited.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import hashlib
import os
import re

MIGRATION_RE = re.compile(r'^(?P<version>[0-9]{3,})_(?P<name>[A-Za-z0-9_]+)\.sql$')
# pg_advisory_lock key: any constant, shared by every run against a database.
LOCK_KEY = 7369210458125011
TRACKING_DDL = (
    'CREATE TABLE IF NOT EXISTS schema_migrations ('
    ' version integer PRIMARY KEY,'
    ' name text NOT NULL,'
    ' checksum text NOT NULL,'
    ' applied_at timestamptz NOT NULL DEFAULT now())'
)


class MigrationError(Exception):
    """A migration set that cannot be applied (bad files, edited file, SQL error)."""


class Migration(object):
    """One migration file."""

    def __init__(self, version, name, filename, text):
        self.version = version
        self.name = name
        self.filename = filename
        self.text = text
        self.checksum = hashlib.sha256(text.encode('utf-8')).hexdigest()

    def as_dict(self):
        return {'version': self.version, 'name': self.name, 'file': self.filename, 'checksum': self.checksum}


def discover(path):
    """Read the migrations in ``path`` in version order; refuse malformed sets."""
    if not os.path.isdir(path):
        raise MigrationError('migrations directory %s does not exist' % path)
    found = {}
    for filename in sorted(os.listdir(path)):
        if not filename.endswith('.sql'):
            continue
        match = MIGRATION_RE.match(filename)
        if not match:
            raise MigrationError('%s: migration files are named NNN_name.sql' % filename)
        version = int(match.group('version'))
        if version in found:
            raise MigrationError('%s and %s have the same version %d' % (found[version].filename, filename, version))
        with open(os.path.join(path, filename), 'rb') as handle:
            text = handle.read().decode('utf-8')
        found[version] = Migration(version, filename[:-4], filename, text)
    if not found:
        raise MigrationError('no NNN_name.sql files in %s' % path)
    return [found[v] for v in sorted(found)]


def _applied(cur):
    cur.execute("SELECT to_regclass('schema_migrations') IS NOT NULL")
    if not cur.fetchone()[0]:
        return None
    cur.execute('SELECT version, name, checksum FROM schema_migrations ORDER BY version')
    return dict((row[0], (row[1], row[2])) for row in cur.fetchall())


def apply_migrations(conn, path, check=False, target_version=None):
    """Apply the pending migrations of ``path`` (or only list them if ``check``).

    Returns a dict: ``applied`` (names applied now, or that would be),
    ``version_before``, ``version_after`` (0 = none), ``known`` (all files) and
    ``unknown`` (versions in the database without a file: a newer schema).
    """
    migrations = discover(path)
    if target_version is not None:
        migrations = [m for m in migrations if m.version <= target_version]
    conn.autocommit = False
    cur = conn.cursor()
    try:
        cur.execute('SELECT pg_advisory_lock(%s)', (LOCK_KEY,))
        conn.commit()
        applied = _applied(cur)
        conn.commit()
        if applied is None:
            applied = {}
            if not check:
                cur.execute(TRACKING_DDL)
                conn.commit()
        for mig in migrations:
            if mig.version in applied and applied[mig.version][1] != mig.checksum:
                raise MigrationError(
                    '%s was applied with checksum %s but the file now has %s: released migrations must not be '
                    'edited, add a new NNN_name.sql instead' % (mig.filename, applied[mig.version][1], mig.checksum))
        pending = [m for m in migrations if m.version not in applied]
        version_before = max(applied) if applied else 0
        done = []
        for mig in pending:
            if not check:
                try:
                    cur.execute(mig.text)
                    cur.execute('INSERT INTO schema_migrations (version, name, checksum) VALUES (%s, %s, %s)',
                                (mig.version, mig.name, mig.checksum))
                    conn.commit()
                except Exception as exc:
                    conn.rollback()
                    raise MigrationError('%s failed (rolled back, nothing of it applied): %s'
                                         % (mig.filename, str(exc).strip()))
            done.append(mig.name)
        known_versions = set(m.version for m in discover(path))
        versions_after = set(applied) | set(m.version for m in pending)
        return {
            'applied': done,
            'version_before': version_before,
            'version_after': max(versions_after) if versions_after else 0,
            'known': [m.as_dict() for m in migrations],
            'unknown': sorted(v for v in applied if v not in known_versions),
        }
    finally:
        try:
            conn.rollback()
            cur.execute('SELECT pg_advisory_unlock(%s)', (LOCK_KEY,))
            conn.commit()
        finally:
            cur.close()
