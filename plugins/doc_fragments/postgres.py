# -*- coding: utf-8 -*-
# Copyright: (c) 2025, Proxmox AI hardening maintainers
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import absolute_import, division, print_function

__metaclass__ = type


class ModuleDocFragment(object):

    # Connection options of every PostgreSQL module in this collection
    # (argument spec: plugins/module_utils/_pg.py pg_common_argument_spec()).
    DOCUMENTATION = r'''
options:
  login_user:
    description:
      - The PostgreSQL role to log in as.
    type: str
    default: postgres
  login_password:
    description:
      - The password of O(login_user).
      - Leave empty for peer authentication over the local socket, or to let libpq
        read C(PGPASSWORD) or C(~/.pgpass).
    type: str
    default: ''
  login_host:
    description:
      - Host name or address of the server.
      - Use the name in the server certificate when O(ssl_mode=verify-full).
      - Empty means the local Unix socket.
    type: str
    default: ''
  login_unix_socket:
    description:
      - Directory of the server's Unix socket (for example V(/var/run/postgresql)).
      - Takes precedence over O(login_host).
    type: str
    default: ''
  login_port:
    description:
      - TCP port (also the socket file suffix).
    type: int
    default: 5432
    aliases: [port]
  login_db:
    description:
      - Database to connect to. Empty means libpq's default (the user name).
    type: str
    default: ''
    aliases: [db]
  ssl_mode:
    description:
      - libpq C(sslmode). V(verify-full) checks the certificate chain against
        O(ssl_rootcert) and the host name against the certificate, and is the
        recommended value over a network.
      - See U(https://www.postgresql.org/docs/current/libpq-ssl.html).
    type: str
    default: prefer
    choices: [disable, allow, prefer, require, verify-ca, verify-full]
  ssl_rootcert:
    description:
      - CA certificate file used to verify the server (libpq C(sslrootcert)).
    type: path
    aliases: [ca_cert]
  ssl_cert:
    description:
      - Client certificate file (libpq C(sslcert)).
    type: path
  ssl_key:
    description:
      - Client private key file (libpq C(sslkey)). A path, not a secret value.
    type: path
  connect_timeout:
    description:
      - Seconds to wait for the connection.
    type: int
    default: 10
  session_role:
    description:
      - Role to C(SET ROLE) to after logging in; the work is then done with its privileges.
    type: str
  connect_params:
    description:
      - Further libpq connection keywords (for example C(application_name) or C(options)).
      - These take precedence over the options above.
    type: dict
    default: {}
requirements:
  - psycopg2 >= 2.8 (Debian package C(python3-psycopg2)) on the host that runs the module.
notes:
  - To use peer authentication on the database host, leave O(login_host) empty and
    run the task with C(become_user) set to the operating system user of O(login_user).
'''
