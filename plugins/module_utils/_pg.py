# -*- coding: utf-8 -*-
# Copyright: (c) 2025, Proxmox AI hardening maintainers
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""PostgreSQL connection options shared by the collection's modules.

``pg_common_argument_spec()`` is the argument spec every PostgreSQL module
extends (documented once in ``doc_fragments/postgres.py``);
``pg_connect(module)`` opens a psycopg2 connection from those options, or
fails the module with a clear message.  ``connect_kwargs(params)`` is the pure
mapping from options to libpq keywords (unit-testable, no module needed).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import traceback

from ansible.module_utils.basic import missing_required_lib

try:
    import psycopg2
    from psycopg2 import sql
    HAS_PSYCOPG2 = True
    PSYCOPG2_IMPORT_ERROR = None
except ImportError:  # pragma: no cover - reported by pg_connect
    psycopg2 = None
    sql = None
    HAS_PSYCOPG2 = False
    PSYCOPG2_IMPORT_ERROR = traceback.format_exc()

SSL_MODES = ['disable', 'allow', 'prefer', 'require', 'verify-ca', 'verify-full']


def pg_common_argument_spec():
    """Connection options, identical in every module of this collection."""
    return dict(
        login_user=dict(type='str', default='postgres'),
        login_password=dict(type='str', default='', no_log=True),
        login_host=dict(type='str', default=''),
        login_unix_socket=dict(type='str', default=''),
        login_port=dict(type='int', default=5432, aliases=['port']),
        login_db=dict(type='str', default='', aliases=['db']),
        ssl_mode=dict(type='str', default='prefer', choices=SSL_MODES),
        ssl_rootcert=dict(type='path', aliases=['ca_cert']),
        ssl_cert=dict(type='path'),
        ssl_key=dict(type='path', no_log=False),
        connect_timeout=dict(type='int', default=10),
        session_role=dict(type='str'),
        connect_params=dict(type='dict', default={}),
    )


def connect_kwargs(params):
    """Map the common options to psycopg2/libpq keyword arguments.

    Empty options are left out so that libpq's own defaults and environment
    (``PGHOST``, ``PGPASSFILE``...) still apply.
    """
    mapping = (
        ('login_user', 'user'),
        ('login_password', 'password'),
        ('login_db', 'dbname'),
        ('login_port', 'port'),
        ('ssl_mode', 'sslmode'),
        ('ssl_rootcert', 'sslrootcert'),
        ('ssl_cert', 'sslcert'),
        ('ssl_key', 'sslkey'),
        ('connect_timeout', 'connect_timeout'),
    )
    kwargs = {}
    for option, keyword in mapping:
        value = params.get(option)
        if value not in (None, ''):
            kwargs[keyword] = value
    # A unix socket directory wins over a host name, as in community.postgresql.
    host = params.get('login_unix_socket') or params.get('login_host')
    if host:
        kwargs['host'] = host
    kwargs.update(params.get('connect_params') or {})
    kwargs.setdefault('application_name', 'proxmox_ai.hardening')
    return kwargs


def describe_target(params):
    """Human-readable target for error messages (never the password)."""
    host = params.get('login_unix_socket') or params.get('login_host') or 'local socket'
    return '%s@%s:%s/%s' % (params.get('login_user'), host, params.get('login_port'), params.get('login_db') or '-')


def pg_connect(module, autocommit=False):
    """Open a connection for ``module`` or fail it; applies ``session_role``."""
    if not HAS_PSYCOPG2:
        module.fail_json(msg=missing_required_lib('psycopg2'), exception=PSYCOPG2_IMPORT_ERROR)
    params = module.params
    if params.get('ssl_mode') in ('verify-ca', 'verify-full') and not params.get('ssl_rootcert'):
        module.warn('ssl_mode=%s without ssl_rootcert: libpq uses ~/.postgresql/root.crt' % params['ssl_mode'])
    try:
        conn = psycopg2.connect(**connect_kwargs(params))
    except psycopg2.Error as exc:
        module.fail_json(msg='Unable to connect to PostgreSQL (%s): %s' % (describe_target(params), str(exc).strip()))
    conn.autocommit = autocommit
    if params.get('session_role'):
        try:
            set_role(conn, params['session_role'])
            if not autocommit:
                conn.commit()
        except psycopg2.Error as exc:
            conn.close()
            module.fail_json(msg='Could not switch to session_role %s: %s' % (params['session_role'], str(exc).strip()))
    return conn


def set_role(conn, role):
    """SET ROLE with the role name quoted as an identifier."""
    with conn.cursor() as cur:
        cur.execute(sql.SQL('SET ROLE {0}').format(sql.Identifier(role)))
