# -*- coding: utf-8 -*-
# Copyright: (c) 2025, Proxmox AI hardening maintainers
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Nightly retention job of the Proxmox AI monitoring database.

Installed by the proxmox_ai.hardening.retention role next to ``_retention.py``
(the unchanged engine of the ``pg_retention`` module) and run by
``pai-retention.service`` as the maintenance role's OS user, which logs in
through the local socket (peer authentication).  It:

1. applies the retention and anonymisation policies of the JSON config (all
   validated first; batched deletes; expired partitions dropped);
2. creates the time-series partitions ``partition_days_ahead`` days ahead;
3. writes one row to ``action_logs`` (action_type ``retention_run``) with the
   counts per policy, the partitions dropped and created, or the error.

Exit status 0 on success, 1 on failure (also logged), 2 on a bad config.
Run it with ``python3 pai_retention.py``. ``--check`` counts what would be touched and changes (and logs) nothing;
``--check-config FILE`` only validates a config file (used by the role
before a new config goes live).
"""

from __future__ import absolute_import, division, print_function

import argparse
import importlib.util
import json
import os
import socket
import sys
import time


def _load_engine():
    """The engine is the file _retention.py installed next to this script."""
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), '_retention.py')
    spec = importlib.util.spec_from_file_location('_retention', path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


_retention = _load_engine()

REQUIRED = ('database', 'policies')


def load_config(path):
    """Read and check the config; raises ValueError with a clear message."""
    with open(path, encoding='utf-8') as handle:
        cfg = json.load(handle)
    if not isinstance(cfg, dict):
        raise ValueError('%s: the config is a JSON object' % path)
    for key in REQUIRED:
        if key not in cfg:
            raise ValueError('%s: %s is missing' % (path, key))
    if not isinstance(cfg['policies'], list) or not cfg['policies']:
        raise ValueError('%s: policies must be a non-empty list' % path)
    for index, pol in enumerate(cfg['policies']):
        if not isinstance(pol, dict) or not pol.get('table') or pol.get('max_age') in (None, ''):
            raise ValueError('%s: policy %d needs a table and a max_age' % (path, index + 1))
        unknown = set(pol) - set(['table', 'schema', 'column', 'max_age', 'anonymise', 'partitions', 'name'])
        if unknown:
            raise ValueError('%s: policy %d has unknown keys %s' % (path, index + 1, sorted(unknown)))
    for key in ('batch_size', 'lock_timeout', 'lock_retries', 'partition_days_ahead', 'port'):
        if key in cfg and (not isinstance(cfg[key], int) or cfg[key] < 0):
            raise ValueError('%s: %s must be a non-negative integer' % (path, key))
    return cfg


def connect(cfg):
    import psycopg2
    kwargs = {'dbname': cfg['database'], 'application_name': 'pai-retention'}
    if cfg.get('socket_dir'):
        kwargs['host'] = cfg['socket_dir']
    if cfg.get('port'):
        kwargs['port'] = cfg['port']
    kwargs.update(cfg.get('connect') or {})
    return psycopg2.connect(**kwargs)


def create_partitions(conn, tables, days_ahead, retries=20):
    """create_daily_partitions() for each table; returns {table: created or error text}."""
    made = {}
    for table in tables:
        for attempt in range(retries + 1):
            try:
                with conn.cursor() as cur:
                    cur.execute('SELECT create_daily_partitions(%s::regclass, %s, 0)', (table, days_ahead))
                    made[table] = cur.fetchone()[0]
                conn.commit()
                break
            except Exception as exc:  # lock timeouts are retried, the rest reported
                conn.rollback()
                if getattr(exc, 'pgcode', None) in _retention.RETRY_CODES and attempt < retries:
                    time.sleep(min(2.0, 0.02 * (2 ** (attempt + 1))))
                    continue
                made[table] = 'error: %s' % _retention.pg_message(exc)
                break
    return made


def log_run(conn, database, status, details):
    conn.rollback()
    with conn.cursor() as cur:
        cur.execute("INSERT INTO action_logs (actor, action_type, entity, status, details) "
                    "VALUES (%s, 'retention_run', %s, %s, %s::jsonb)",
                    ('retention@%s' % socket.gethostname(), database, status, json.dumps(details, default=str)))
    conn.commit()


def main(argv=None):
    parser = argparse.ArgumentParser(description='Nightly retention job of the Proxmox AI database.')
    parser.add_argument('--config', default='/etc/proxmox-ai-retention/retention.json')
    parser.add_argument('--check', action='store_true', help='count what would be touched, change nothing')
    parser.add_argument('--check-config', metavar='FILE', help='only validate FILE and exit')
    opts = parser.parse_args(argv)

    try:
        cfg = load_config(opts.check_config or opts.config)
    except (OSError, ValueError) as exc:
        print('pai-retention: %s' % exc, file=sys.stderr)
        return 2
    if opts.check_config:
        print('pai-retention: %s is valid (%d policies)' % (opts.check_config, len(cfg['policies'])))
        return 0

    started = time.time()
    conn = connect(cfg)
    _retention.connect_session(conn)
    status, error, results = 'success', None, []
    try:
        outcome = _retention.apply(
            conn, cfg['policies'], check=opts.check, batch_size=cfg.get('batch_size'),
            lock_timeout_ms=cfg.get('lock_timeout'), lock_retries=cfg.get('lock_retries'))
        results = outcome['policies']
    except _retention.PolicyError as exc:
        status, error = 'failure', 'invalid policies, nothing changed: %s' % exc
    except _retention.RetentionError as exc:
        status, error, results = 'failure', str(exc), exc.results
    except Exception as exc:  # connection lost and the like: report, still try to log
        status, error = 'failure', _retention.pg_message(exc)

    created = {}
    if not opts.check and cfg.get('partition_tables'):
        created = create_partitions(conn, cfg['partition_tables'], cfg.get('partition_days_ahead', 7))
        if any(isinstance(v, str) for v in created.values()):
            status = 'failure'
            error = error or 'could not create partitions ahead: %s' % created
    details = {
        'counts': dict((r['name'], r['rows']) for r in results),
        'rows': sum(r['rows'] for r in results),
        'partitions_dropped': [p for r in results for p in r['partitions']],
        'partitions_created': created,
        'cutoffs': dict((r['name'], r['cutoff']) for r in results),
        'warnings': [w for r in results for w in r['warnings']],
        'seconds': round(time.time() - started, 3),
        'check': opts.check,
    }
    if error:
        details['error'] = error
    print(json.dumps(dict(status=status, **details), default=str, sort_keys=True))
    if not opts.check:
        try:
            log_run(conn, cfg['database'], status, details)
        except Exception as exc:  # the run itself is reported above
            print('pai-retention: could not write action_logs: %s' % _retention.pg_message(exc), file=sys.stderr)
            status = 'failure'
    conn.close()
    return 0 if status == 'success' else 1


if __name__ == '__main__':
    sys.exit(main())
