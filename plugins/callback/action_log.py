# -*- coding: utf-8 -*-
# Copyright: (c) 2025, Proxmox AI hardening maintainers
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r'''
name: action_log
type: notification
short_description: Record every task result in the C(action_logs) audit table
description:
  - Writes one row per task result and host to the C(action_logs) table of the Proxmox AI database
    (timestamp, actor, action type = module, entity = host, status, source IP where known, details).
  - Task names, messages and every other text are scrubbed by the collection's C(sanitize_log) before they
    leave the controller; results of C(no_log) tasks are not recorded beyond their status.
  - Rows are queued on the task path and written in batches (one multi-row C(INSERT)) by a background
    thread, so the play does not wait for the database.
  - If the database cannot be reached the play still succeeds; the rows are appended to a local spool
    file (mode C(0600)) and written at the beginning of the next run that reaches the database.
  - The actor is the AWX / Automation Controller user that launched the job (C(awx_user_name) extra
    variable, recorded as C(awx:<user>)), otherwise O(actor), otherwise C(ansible:<local user>).
  - The source IP is the address of the SSH client the controller was reached from (C(SSH_CLIENT)),
    when known.
  - This callback must be enabled, for example with C(callbacks_enabled = proxmox_ai.hardening.action_log).
author:
  - Proxmox AI hardening maintainers (@proxmox-ai)
requirements:
  - psycopg2 (Python library) on the controller; without it every row goes to the spool file.
options:
  db_host:
    description: Host name or address of the PostgreSQL server (the name in its certificate for C(verify-full)).
    type: str
    default: localhost
    env:
      - name: PAI_ACTION_LOG_DB_HOST
    ini:
      - section: callback_action_log
        key: db_host
  db_port:
    description: TCP port of the PostgreSQL server.
    type: int
    default: 5432
    env:
      - name: PAI_ACTION_LOG_DB_PORT
    ini:
      - section: callback_action_log
        key: db_port
  db_name:
    description: Database holding the C(action_logs) table.
    type: str
    default: proxmox_ai
    env:
      - name: PAI_ACTION_LOG_DB_NAME
    ini:
      - section: callback_action_log
        key: db_name
  db_user:
    description: Role to log in as (needs only C(INSERT) on C(action_logs)).
    type: str
    default: proxmox_user
    env:
      - name: PAI_ACTION_LOG_DB_USER
    ini:
      - section: callback_action_log
        key: db_user
  db_password:
    description:
      - Password of O(db_user). Only read from the environment, never from a configuration file.
      - When empty, libpq's own C(PGPASSWORD) and C(~/.pgpass) apply.
    type: str
    default: ''
    env:
      - name: PAI_ACTION_LOG_DB_PASSWORD
  db_sslmode:
    description: libpq C(sslmode); use V(verify-full) with O(db_sslrootcert) over a network.
    type: str
    default: prefer
    choices: [disable, allow, prefer, require, verify-ca, verify-full]
    env:
      - name: PAI_ACTION_LOG_DB_SSLMODE
    ini:
      - section: callback_action_log
        key: db_sslmode
  db_sslrootcert:
    description: CA certificate that signed the server's certificate.
    type: path
    env:
      - name: PAI_ACTION_LOG_DB_SSLROOTCERT
    ini:
      - section: callback_action_log
        key: db_sslrootcert
  connect_timeout:
    description: Seconds to wait for a connection to the database.
    type: int
    default: 3
    env:
      - name: PAI_ACTION_LOG_CONNECT_TIMEOUT
    ini:
      - section: callback_action_log
        key: connect_timeout
  spool_path:
    description:
      - File that keeps the rows the database did not take (JSON lines, mode C(0600)); they are written at
        the next run.
    type: path
    default: ~/.ansible/proxmox_ai_action_log.spool
    env:
      - name: PAI_ACTION_LOG_SPOOL
    ini:
      - section: callback_action_log
        key: spool_path
  batch_size:
    description: Rows per C(INSERT).
    type: int
    default: 200
    env:
      - name: PAI_ACTION_LOG_BATCH_SIZE
    ini:
      - section: callback_action_log
        key: batch_size
  flush_interval:
    description: Seconds the writer waits for more rows before it writes a partial batch.
    type: float
    default: 1.0
    env:
      - name: PAI_ACTION_LOG_FLUSH_INTERVAL
    ini:
      - section: callback_action_log
        key: flush_interval
  shutdown_timeout:
    description: Seconds the end of the run waits for the writer; whatever is not written by then is spooled.
    type: float
    default: 15.0
    env:
      - name: PAI_ACTION_LOG_SHUTDOWN_TIMEOUT
    ini:
      - section: callback_action_log
        key: shutdown_timeout
  actor:
    description: Actor recorded when the run does not come from AWX (default C(ansible:<local user>)).
    type: str
    default: ''
    env:
      - name: PAI_ACTION_LOG_ACTOR
    ini:
      - section: callback_action_log
        key: actor
'''

EXAMPLES = r'''
# ansible.cfg
# [defaults]
# callbacks_enabled = proxmox_ai.hardening.action_log
# [callback_action_log]
# db_host = db.example.org
# db_sslmode = verify-full
# db_sslrootcert = /etc/proxmox-ai/pg-ca.pem
#
# environment (AWX: a credential type injects it)
# PAI_ACTION_LOG_DB_PASSWORD=...
'''

import datetime
import fcntl
import getpass
import ipaddress
import json
import os
import queue
import threading
import uuid

from ansible.plugins.callback import CallbackBase

from ansible_collections.proxmox_ai.hardening.plugins.module_utils._sanitize import sanitize_log, sanitize_obj

try:
    import psycopg2
    import psycopg2.extras
    HAS_PSYCOPG2 = True
except ImportError:  # pragma: no cover - everything is spooled then
    HAS_PSYCOPG2 = False

INSERT_SQL = 'INSERT INTO action_logs ("timestamp", actor, action_type, entity, status, ip, details) VALUES %s'
INSERT_TEMPLATE = '(%s::timestamptz, %s, %s, %s, %s, %s::inet, %s::jsonb)'
_STOP = object()


def _now():
    return datetime.datetime.now(datetime.timezone.utc).isoformat()


def _source_ip():
    for name in ('SSH_CLIENT', 'SSH_CONNECTION'):
        value = os.environ.get(name, '').split()
        if value:
            try:
                return str(ipaddress.ip_address(value[0]))
            except ValueError:
                continue
    return None


def _text(value, limit=2000):
    if value is None:
        return None
    return str(value)[:limit]


class Spool:
    """JSON lines of unwritten rows, shared by concurrent runs through an exclusive lock."""

    def __init__(self, path):
        self.path = os.path.expanduser(path)

    def _open(self, flags):
        folder = os.path.dirname(self.path)
        if folder and not os.path.isdir(folder):
            os.makedirs(folder, mode=0o700, exist_ok=True)
        fd = os.open(self.path, flags | os.O_CREAT, 0o600)
        fcntl.flock(fd, fcntl.LOCK_EX)
        return fd

    def append(self, rows):
        if not rows:
            return
        fd = self._open(os.O_WRONLY | os.O_APPEND)
        try:
            data = ''.join(json.dumps(row, separators=(',', ':')) + '\n' for row in rows).encode('utf-8')
            os.write(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)

    def deliver(self, write):
        """Hand every spooled row to ``write(rows)``; the file is emptied only when that succeeded."""
        if not os.path.exists(self.path):
            return 0
        fd = self._open(os.O_RDWR)
        try:
            with os.fdopen(os.dup(fd), 'r', encoding='utf-8') as handle:
                rows = []
                for line in handle:
                    line = line.strip()
                    if line:
                        try:
                            rows.append(json.loads(line))
                        except ValueError:
                            continue
            if rows:
                write(rows)
            os.ftruncate(fd, 0)
            return len(rows)
        finally:
            os.close(fd)


class Writer(threading.Thread):
    """Background thread: delivers the spool, then writes queued rows in batches."""

    def __init__(self, options, display):
        super(Writer, self).__init__(name='action_log_writer', daemon=True)
        self.options = options
        self.display = display
        self.queue = queue.Queue()
        self.unsent = []
        self.conn = None
        self.down = not HAS_PSYCOPG2
        self.written = 0
        self.spool = Spool(options['spool_path'])
        self.lock = threading.Lock()

    def _connect(self):
        if self.conn is None or self.conn.closed:
            kwargs = dict(host=self.options['db_host'], port=self.options['db_port'], dbname=self.options['db_name'],
                          user=self.options['db_user'], sslmode=self.options['db_sslmode'],
                          connect_timeout=self.options['connect_timeout'],
                          application_name='proxmox_ai.hardening.action_log')
            if self.options.get('db_password'):
                kwargs['password'] = self.options['db_password']
            if self.options.get('db_sslrootcert'):
                kwargs['sslrootcert'] = self.options['db_sslrootcert']
            self.conn = psycopg2.connect(**kwargs)
        return self.conn

    def _insert(self, rows):
        conn = self._connect()
        values = [(r['timestamp'], r['actor'], r['action_type'], r['entity'], r['status'], r.get('ip'),
                   json.dumps(r.get('details') or {})) for r in rows]
        try:
            with conn.cursor() as cur:
                psycopg2.extras.execute_values(cur, INSERT_SQL, values, template=INSERT_TEMPLATE, page_size=1000)
            conn.commit()
        except Exception:
            try:
                conn.close()
            finally:
                self.conn = None
            raise
        self.written += len(rows)

    def _went_down(self, exc):
        self.down = True
        text = str(exc).strip()
        reason = text.splitlines()[0] if text else type(exc).__name__
        self.display.warning('action_log: database unreachable, rows are spooled to %s: %s'
                             % (self.spool.path, sanitize_log(reason)))

    def _write(self, rows):
        if not rows:
            return
        if self.down:
            self.unsent.extend(rows)
            return
        try:
            self._insert(rows)
        except Exception as exc:  # pylint: disable=broad-except  # the play must never fail because of the audit log
            self.unsent.extend(rows)
            self._went_down(exc)

    def run(self):
        if not HAS_PSYCOPG2:
            self.display.warning('action_log: psycopg2 is not installed on the controller; rows are spooled to %s'
                                 % self.spool.path)
        if not self.down:
            try:
                delivered = self.spool.deliver(self._insert)
                if delivered:
                    self.display.vv('action_log: wrote %d spooled rows' % delivered)
            except Exception as exc:  # pylint: disable=broad-except
                self._went_down(exc)
        batch = []
        size = max(1, int(self.options['batch_size']))
        interval = max(0.05, float(self.options['flush_interval']))
        while True:
            try:
                item = self.queue.get(timeout=interval)
            except queue.Empty:
                self._write(self._prepare(batch))
                batch = []
                continue
            if item is _STOP:
                self._write(self._prepare(batch))
                break
            batch.append(item)
            if len(batch) >= size:
                self._write(self._prepare(batch))
                batch = []
        if self.conn is not None:
            self.conn.close()

    @staticmethod
    def _prepare(items):
        """Scrub on the writer thread, not on the task path."""
        rows = []
        for item in items:
            row = dict(item)
            row['details'] = sanitize_obj(row.get('details') or {})
            row['entity'] = sanitize_log(row['entity']) if row.get('entity') else row.get('entity')
            row['actor'] = sanitize_log(row['actor'])
            rows.append(row)
        return rows

    def finish(self, timeout):
        """Stop the thread; rows it could not write (or did not reach in time) go to the spool."""
        self.queue.put(_STOP)
        self.join(timeout)
        leftovers = []
        if self.is_alive():
            self.display.warning('action_log: the database writer did not finish in %ss; spooling the rest' % timeout)
            while True:
                try:
                    item = self.queue.get_nowait()
                except queue.Empty:
                    break
                if item is not _STOP:
                    leftovers.append(item)
            leftovers = self._prepare(leftovers)
        rows = self.unsent + leftovers
        self.unsent = []
        if rows:
            try:
                self.spool.append(rows)
            except OSError as exc:
                self.display.error('action_log: cannot write the spool file %s, %d audit rows are lost: %s'
                                   % (self.spool.path, len(rows), exc))


class CallbackModule(CallbackBase):
    """Audit trail of every task result in action_logs."""

    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = 'notification'
    CALLBACK_NAME = 'proxmox_ai.hardening.action_log'
    CALLBACK_NEEDS_ENABLED = True

    def __init__(self, display=None):
        super(CallbackModule, self).__init__(display=display)
        self.writer = None
        self.actor = None
        self.run_id = str(uuid.uuid4())
        self.playbook = None
        self.play = None
        self.ip = _source_ip()
        self.awx_job_id = None

    def _settings(self):
        names = ('db_host', 'db_port', 'db_name', 'db_user', 'db_password', 'db_sslmode', 'db_sslrootcert',
                 'connect_timeout', 'spool_path', 'batch_size', 'flush_interval', 'shutdown_timeout', 'actor')
        return dict((name, self.get_option(name)) for name in names)

    def _start(self):
        if self.writer is None:
            self.writer = Writer(self._settings(), self._display)
            self.writer.start()
        return self.writer

    def v2_playbook_on_start(self, playbook):
        self.playbook = os.path.basename(getattr(playbook, '_file_name', '') or '')
        self._start()

    def v2_playbook_on_play_start(self, play):
        self.play = _text(play.get_name(), 200)
        extra = {}
        try:
            extra = dict(play.get_variable_manager().extra_vars)
        except Exception:  # pylint: disable=broad-except
            extra = {}
        user = extra.get('awx_user_name') or extra.get('tower_user_name')
        if user:
            self.actor = 'awx:%s' % user
            self.awx_job_id = extra.get('awx_job_id') or extra.get('tower_job_id')
        elif self.actor is None:
            configured = self.get_option('actor')
            self.actor = configured or 'ansible:%s' % getpass.getuser()

    @staticmethod
    def _data(result):
        data = getattr(result, 'result', None)
        if data is None:
            data = result._result  # pylint: disable=protected-access
        return data

    def _record(self, result, status, extra=None):
        task = result._task  # pylint: disable=protected-access
        details = {'task': _text(task.get_name(), 500), 'play': self.play, 'playbook': self.playbook,
                   'run_id': self.run_id}
        if self.awx_job_id:
            details['awx_job_id'] = str(self.awx_job_id)
        if task.no_log:
            details['no_log'] = True
        elif status in ('failed', 'unreachable'):
            # only failures need the result itself (its message); converting it costs time on the task path
            data = self._data(result)
            if data.get('censored'):
                details['no_log'] = True
            elif data.get('msg'):
                details['msg'] = _text(data.get('msg'))
        if extra:
            details.update(extra)
        self._start().queue.put({
            'timestamp': _now(), 'actor': self.actor or self.get_option('actor') or 'ansible:%s' % getpass.getuser(),
            'action_type': _text(getattr(task, 'resolved_action', None) or task.action, 200),
            'entity': _text(result._host.get_name(), 500),  # pylint: disable=protected-access
            'status': status, 'ip': self.ip, 'details': details,
        })

    def v2_runner_on_ok(self, result):
        self._record(result, 'changed' if result.is_changed() else 'ok')

    def v2_runner_on_failed(self, result, ignore_errors=False):
        self._record(result, 'failed', {'ignore_errors': True} if ignore_errors else None)

    def v2_runner_on_skipped(self, result):
        self._record(result, 'skipped')

    def v2_runner_on_unreachable(self, result):
        self._record(result, 'unreachable')

    def v2_playbook_on_stats(self, stats):
        if self.writer is not None:
            self.writer.finish(float(self.get_option('shutdown_timeout')))
            self.writer = None
