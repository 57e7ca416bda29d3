# -*- coding: utf-8 -*-
# Copyright: (c) 2025, Proxmox AI hardening maintainers
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Retention and anonymisation policies for PostgreSQL, in bounded batches.

The one implementation, used by the ``pg_retention`` module and, unchanged, by
the nightly job that the ``retention`` role installs.  Standard library plus
psycopg2 only; no Ansible imports.

A policy is a dict::

    {'table': 'alerts', 'schema': 'public', 'column': 'created_at',
     'max_age': '90 days',                      # interval text, or days as a number
     'anonymise': {'user_email': 'x@y'},         # optional: update instead of delete
     'partitions': 'drop',                       # or 'detach' (partitioned tables)
     'name': 'alerts'}                           # optional label in the results

How it keeps the tables writable:

* every policy is validated first (table, columns, types, age, privileges) and
  the cutoffs (``now() - max_age``) are computed once, in one transaction;
  nothing is changed when any policy is invalid;
* whole partitions whose upper bound is at or before the cutoff are detached
  and dropped (the lock on the parent lasts milliseconds, rows are counted
  before the parent is locked);
* other rows go in batches of at most ``batch_size`` rows, one transaction per
  batch: along a btree index on the timestamp column (keyset on the timestamp)
  where one exists, otherwise along the heap in ``ctid`` ranges (TID range
  scans, PostgreSQL 14+), so no batch rescans what earlier batches removed;
* ``lock_timeout`` is short and a batch that did not get its lock is rolled
  back and retried with backoff, so a waiting retention statement never holds
  up the application's writers for longer than ``lock_timeout``.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import re
import time

try:
    import psycopg2
    from psycopg2 import sql
    HAS_PSYCOPG2 = True
except ImportError:  # pragma: no cover - the callers report it
    psycopg2 = None
    sql = None
    HAS_PSYCOPG2 = False

TIME_TYPES = ('timestamp with time zone', 'timestamp without time zone', 'date')
# lock_not_available, deadlock_detected, serialization_failure
RETRY_CODES = ('55P03', '40P01', '40001')
NUMBER_RE = re.compile(r'^\s*-?[0-9]+(\.[0-9]+)?\s*$')
RANGE_BOUND_RE = re.compile(r'^FOR VALUES FROM \((?P<lower>.*)\) TO \((?P<upper>.*)\)$', re.S)
# Expired share of a table (planner estimate) below which batches follow the
# index on the timestamp column instead of reading the heap in ctid ranges.
INDEX_SHARE = 0.2
DEFAULTS = {'batch_size': 10000, 'lock_timeout_ms': 100, 'lock_retries': 20, 'batch_delay': 0.0}


class PolicyError(Exception):
    """One or more policies are invalid; nothing was changed."""

    def __init__(self, errors):
        self.errors = list(errors)
        super(PolicyError, self).__init__('; '.join(self.errors))


class RetentionError(Exception):
    """A policy failed while running; ``results`` holds what was done before."""

    def __init__(self, message, results):
        self.results = results
        super(RetentionError, self).__init__(message)


class Policy(object):
    """A validated policy: resolved table, column types, fixed cutoff."""

    def __init__(self, index, raw):
        self.index = index
        self.raw = raw
        self.schema = None
        self.table = None
        self.oid = None
        self.relkind = None
        self.column = raw.get('column') or 'created_at'
        self.coltype = None
        self.interval = None
        self.cutoff = None
        self.values = []  # [(column, value, type)]
        self.action = 'anonymise' if raw.get('anonymise') else 'delete'
        self.partitions = raw.get('partitions') or 'drop'
        self.name = raw.get('name')

    @property
    def qualified(self):
        return '%s.%s' % (self.schema, self.table)

    def label(self):
        return 'policy %d (%s)' % (self.index + 1, self.name or self.raw.get('table'))


# --------------------------------------------------------------------------- helpers

def _rel_ident(schema, name):
    return sql.Identifier(schema, name)


def _run_in_savepoint(cur, query, args=None):
    """Run ``query`` inside a savepoint; return (rows, error text)."""
    cur.execute('SAVEPOINT pai_check')
    try:
        cur.execute(query, args)
        rows = cur.fetchall()
    except psycopg2.Error as exc:
        cur.execute('ROLLBACK TO SAVEPOINT pai_check')
        return None, pg_message(exc)
    cur.execute('RELEASE SAVEPOINT pai_check')
    return rows, None


def pg_message(exc):
    """The server's primary message of a psycopg2 error, without the 'ERROR:' prefix."""
    message = (getattr(getattr(exc, 'diag', None), 'message_primary', None) or str(exc)).strip()
    return message.splitlines()[0] if message else repr(exc)


def _age_text(value):
    """max_age as interval text; numbers (or numeric strings) are days."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, (int, float)):
        return '%s days' % value
    text = str(value).strip()
    if not text:
        return None
    if NUMBER_RE.match(text):
        return '%s days' % text
    return text


def _split_table(raw):
    table = raw.get('table')
    schema = raw.get('schema')
    if table and '.' in table and not schema:
        schema, table = table.split('.', 1)
    return schema or 'public', table


def _column(cur, oid, column):
    cur.execute(
        'SELECT format_type(a.atttypid, a.atttypmod), a.attnum FROM pg_attribute a '
        'WHERE a.attrelid = %s AND a.attname = %s AND a.attnum > 0 AND NOT a.attisdropped', (oid, column))
    row = cur.fetchone()
    return (row[0], row[1]) if row else (None, None)


# --------------------------------------------------------------------------- validation

def validate(conn, raw_policies):
    """Resolve and check every policy; raise PolicyError listing all problems.

    Runs in one transaction, so all cutoffs derive from the same ``now()``.
    """
    errors = []
    policies = []
    cur = conn.cursor()
    try:
        if not raw_policies:
            raise PolicyError(['no policies given'])
        for index, raw in enumerate(raw_policies):
            pol = Policy(index, raw)
            policies.append(pol)
            problems = _validate_one(cur, pol)
            errors.extend('%s: %s' % (pol.label(), p) for p in problems)
        if errors:
            raise PolicyError(errors)
        for pol in policies:
            if not pol.name:
                pol.name = pol.table if pol.action == 'delete' else '%s:anonymise' % pol.table
    finally:
        conn.rollback()
        cur.close()
    return policies


def _validate_one(cur, pol):
    problems = []
    raw = pol.raw
    pol.schema, pol.table = _split_table(raw)
    if not pol.table:
        return ['no table given']
    if pol.partitions not in ('drop', 'detach'):
        problems.append("partitions must be 'drop' or 'detach', not %r" % pol.partitions)
    cur.execute(
        'SELECT c.oid, c.relkind FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace '
        'WHERE n.nspname = %s AND c.relname = %s', (pol.schema, pol.table))
    row = cur.fetchone()
    if row is None:
        return problems + ['table %s.%s does not exist' % (pol.schema, pol.table)]
    pol.oid, pol.relkind = row[0], row[1]
    if pol.relkind not in ('r', 'p'):
        return problems + ['%s is not a table (relkind %s)' % (pol.qualified, pol.relkind)]

    pol.coltype, attnum = _column(cur, pol.oid, pol.column)
    if pol.coltype is None:
        problems.append('column %s does not exist in %s' % (pol.column, pol.qualified))
    elif pol.coltype not in TIME_TYPES:
        problems.append('column %s of %s is %s, not a timestamp or date' % (pol.column, pol.qualified, pol.coltype))

    age = _age_text(raw.get('max_age'))
    if age is None:
        problems.append('max_age is missing or empty')
    else:
        rows, err = _run_in_savepoint(
            cur, "SELECT CAST(%s AS interval)::text, CAST(%s AS interval) < interval '0', "
                 "now() - CAST(%s AS interval)", (age, age, age))
        if err:
            problems.append('max_age %r is not an interval: %s' % (raw.get('max_age'), err))
        elif rows[0][1]:
            problems.append('max_age %r is negative' % (raw.get('max_age'),))
        else:
            pol.interval, pol.cutoff = rows[0][0], rows[0][2]

    anonymise = raw.get('anonymise') or {}
    if not isinstance(anonymise, dict):
        problems.append('anonymise must be a mapping of column: value')
        anonymise = {}
    for column in sorted(anonymise):
        coltype, _attnum = _column(cur, pol.oid, column)
        if coltype is None:
            problems.append('anonymise column %s does not exist in %s' % (column, pol.qualified))
            continue
        value = anonymise[column]
        _rows, err = _run_in_savepoint(cur, sql.SQL('SELECT CAST(%s AS {0})').format(sql.SQL(coltype)), (value,))
        if err:
            problems.append('anonymise value %r does not fit column %s (%s): %s' % (value, column, coltype, err))
            continue
        pol.values.append((column, value, coltype))

    if not problems:
        problems.extend(_check_privileges(cur, pol, attnum))
    return problems


def _check_privileges(cur, pol, attnum):
    problems = []
    cur.execute('SELECT has_column_privilege(%s, %s::smallint, %s)', (pol.oid, attnum, 'SELECT'))
    if not cur.fetchone()[0]:
        problems.append('no SELECT privilege on %s.%s' % (pol.qualified, pol.column))
    if pol.action == 'delete':
        cur.execute('SELECT has_table_privilege(%s, %s)', (pol.oid, 'DELETE'))
        if not cur.fetchone()[0]:
            problems.append('no DELETE privilege on %s' % pol.qualified)
    else:
        for column, _value, _type in pol.values:
            cur.execute('SELECT has_column_privilege(%s, %s, %s), has_column_privilege(%s, %s, %s)',
                        (pol.oid, column, 'UPDATE', pol.oid, column, 'SELECT'))
            upd, sel = cur.fetchone()
            if not (upd and sel):
                problems.append('no SELECT and UPDATE privilege on %s.%s' % (pol.qualified, column))
    return problems


# --------------------------------------------------------------------------- planning

class Plan(object):
    """What a policy touches: partitions to detach/drop, leaf tables to batch."""

    def __init__(self):
        self.drop = []    # [(parent oid, partition oid, schema, name)]
        self.leaves = []  # [(oid, schema, name)]
        self.warnings = []


def plan_policy(conn, pol):
    plan = Plan()
    cur = conn.cursor()
    try:
        cur.execute('SELECT n.nspname, c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace '
                    'WHERE c.oid = %s', (pol.oid,))
        schema, name = cur.fetchone()
        if pol.relkind == 'p':
            _walk(cur, pol, pol.oid, plan)
        else:
            plan.leaves.append((pol.oid, schema, name))
    finally:
        conn.rollback()
        cur.close()
    return plan


def _drop_mark(pol):
    """Comment put on a partition detached for dropping (finished by the next run if interrupted)."""
    return 'pg_retention: detached from %s, to be dropped' % pol.qualified


def _unquote_bound(text):
    text = text.strip()
    if text.startswith("'") and text.endswith("'"):
        return text[1:-1].replace("''", "'")
    return None  # MINVALUE / MAXVALUE / multi-column


def _walk(cur, pol, parent_oid, plan):
    cur.execute(
        'SELECT p.partstrat, p.partnatts, a.attname, pg_has_role(c.relowner, %s) '
        'FROM pg_partitioned_table p JOIN pg_class c ON c.oid = p.partrelid '
        'LEFT JOIN pg_attribute a ON a.attrelid = p.partrelid AND a.attnum = p.partattrs[0] '
        'WHERE p.partrelid = %s', ('USAGE', parent_oid))
    strat, natts, keycol, own_parent = cur.fetchone()
    by_range_on_column = strat == 'r' and natts == 1 and keycol == pol.column and pol.action == 'delete'
    cur.execute(
        'SELECT c.oid, n.nspname, c.relname, c.relkind, pg_get_expr(c.relpartbound, c.oid), '
        'pg_has_role(c.relowner, %s) FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid '
        'JOIN pg_namespace n ON n.oid = c.relnamespace WHERE i.inhparent = %s ORDER BY c.relname',
        ('USAGE', parent_oid))
    for oid, schema, name, relkind, bound, own_child in cur.fetchall():
        if by_range_on_column and _fully_expired(cur, pol, bound):
            if own_parent and own_child:
                plan.drop.append((parent_oid, oid, schema, name))
                continue
            plan.warnings.append('%s.%s is expired but not owned by the current role: deleting its rows in '
                                 'batches instead of dropping it' % (schema, name))
        if relkind == 'p':
            _walk(cur, pol, oid, plan)
        else:
            plan.leaves.append((oid, schema, name))


def _fully_expired(cur, pol, bound):
    match = RANGE_BOUND_RE.match(bound or '')
    if not match:
        return False  # DEFAULT partition
    upper = _unquote_bound(match.group('upper'))
    if upper is None:
        return False
    cur.execute(sql.SQL('SELECT CAST(%s AS {0}) <= %s').format(sql.SQL(pol.coltype)), (upper, pol.cutoff))
    return bool(cur.fetchone()[0])


# --------------------------------------------------------------------------- counting (check mode)

def _params(pol):
    """Named query arguments of a policy: cutoff and anonymisation values."""
    args = {'cutoff': pol.cutoff}
    for pos, (_column, value, _type) in enumerate(pol.values):
        args['v%d' % pos] = value
    return args


def _predicate(pol):
    """WHERE clause selecting the rows a policy touches (named placeholders, see _params)."""
    clause = sql.SQL('{0} < %(cutoff)s').format(sql.Identifier(pol.column))
    if pol.action == 'anonymise':
        parts = [sql.SQL('{0} IS DISTINCT FROM CAST({1} AS {2})').format(
            sql.Identifier(column), sql.Placeholder('v%d' % pos), sql.SQL(coltype))
            for pos, (column, _value, coltype) in enumerate(pol.values)]
        clause = sql.SQL('{0} AND ({1})').format(clause, sql.SQL(' OR ').join(parts))
    return clause


def _change(pol, table):
    """DELETE FROM table, or UPDATE table SET the anonymised values."""
    if pol.action == 'delete':
        return sql.SQL('DELETE FROM {0}').format(table)
    sets = sql.SQL(', ').join(
        sql.SQL('{0} = CAST({1} AS {2})').format(sql.Identifier(column), sql.Placeholder('v%d' % pos),
                                                 sql.SQL(coltype))
        for pos, (column, _value, coltype) in enumerate(pol.values))
    return sql.SQL('UPDATE {0} SET {1}').format(table, sets)


def count_policy(conn, pol):
    """Exact number of rows the policy touches now."""
    cur = conn.cursor()
    try:
        cur.execute(sql.SQL('SELECT count(*) FROM {0} WHERE {1}').format(
            _rel_ident(pol.schema, pol.table), _predicate(pol)), _params(pol))
        return cur.fetchone()[0]
    finally:
        conn.rollback()
        cur.close()


# --------------------------------------------------------------------------- execution

class Runner(object):
    """Runs validated policies on one connection (autocommit off)."""

    def __init__(self, conn, batch_size=None, lock_timeout_ms=None, lock_retries=None, batch_delay=None,
                 log=None):
        self.conn = conn
        self.batch_size = int(batch_size or DEFAULTS['batch_size'])
        self.lock_timeout_ms = int(DEFAULTS['lock_timeout_ms'] if lock_timeout_ms is None else lock_timeout_ms)
        self.lock_retries = int(DEFAULTS['lock_retries'] if lock_retries is None else lock_retries)
        self.batch_delay = float(batch_delay or 0)
        self.log = log or (lambda msg: None)
        if self.batch_size < 1:
            raise PolicyError(['batch_size must be at least 1'])
        if self.lock_timeout_ms < 1:
            raise PolicyError(['lock_timeout must be at least 1 ms'])

    # -- transactions with retry on lock timeouts
    def _tx(self, func, stats):
        attempt = 0
        while True:
            cur = self.conn.cursor()
            try:
                result = func(cur)
                self.conn.commit()
                return result
            except psycopg2.Error as exc:
                self.conn.rollback()
                if exc.pgcode in RETRY_CODES and attempt < self.lock_retries:
                    attempt += 1
                    stats['lock_retries'] += 1
                    time.sleep(min(2.0, 0.02 * (2 ** attempt)))
                    continue
                raise
            finally:
                cur.close()

    def run(self, policies, check=False):
        """Run (or only count, if ``check``) every policy; returns a list of result dicts."""
        results = []
        with self.conn.cursor() as cur:
            # Session-wide: every batch, detach and drop waits at most this long for a lock.
            cur.execute('SET lock_timeout = %s', ('%dms' % self.lock_timeout_ms,))
        self.conn.commit()
        for pol in policies:
            leftovers = [] if check else self._drop_leftovers(pol)
            plan = plan_policy(self.conn, pol)
            result = {
                'name': pol.name, 'table': pol.qualified, 'column': pol.column, 'action': pol.action,
                'max_age': pol.interval, 'cutoff': pol.cutoff.isoformat(), 'rows': 0, 'batches': 0, 'largest_batch': 0,
                'lock_retries': 0, 'partitions': [self._name(s, n) for _p, _o, s, n in plan.drop],
                'partition_action': pol.partitions if plan.drop else None,
                'strategies': {}, 'warnings': leftovers + plan.warnings, 'seconds': 0.0, 'parent_lock_ms': None,
            }
            results.append(result)
            started = time.time()
            try:
                if check:
                    result['rows'] = count_policy(self.conn, pol)
                else:
                    for parent_oid, oid, schema, name in plan.drop:
                        result['rows'] += self._expire_partition(pol, parent_oid, oid, schema, name, result)
                    for oid, schema, name in plan.leaves:
                        result['rows'] += self._batched(pol, oid, schema, name, result)
            except psycopg2.Error as exc:
                raise RetentionError('%s on %s failed after %d rows (those are committed): %s' % (
                    pol.action, pol.qualified, result['rows'], pg_message(exc)), results)
            result['seconds'] = round(time.time() - started, 3)
            self.log('%s: %d rows (%s)' % (pol.name, result['rows'], 'would touch' if check else pol.action))
        return results

    @staticmethod
    def _name(schema, name):
        return '%s.%s' % (schema, name)

    # -- whole partitions
    def _expire_partition(self, pol, parent_oid, oid, schema, name, result):
        """Detach (and then drop) one expired partition; returns its row count.

        The parent is locked only for the DETACH (one short transaction);
        the DROP follows in its own transaction and locks only the detached
        table. A partition detached for dropping carries a comment, so that a
        run interrupted in between is finished by the next one.
        """
        part = _rel_ident(schema, name)

        def detach(cur):
            cur.execute('SELECT to_regclass(%s) = %s::oid', (self._quoted(schema, name), oid))
            row = cur.fetchone()
            if not row or not row[0]:
                return None  # dropped by someone else meanwhile
            # Writers of recent rows never touch this partition, so a SHARE lock
            # here blocks nobody in practice; it keeps the count exact.
            cur.execute(sql.SQL('LOCK TABLE {0} IN SHARE MODE').format(part))
            cur.execute(sql.SQL('SELECT count(*) FROM {0}').format(part))
            rows = cur.fetchone()[0]
            cur.execute('SELECT %s::oid::regclass::text', (parent_oid,))
            parent = cur.fetchone()[0]
            locked[0] = time.time()
            cur.execute(sql.SQL('ALTER TABLE {0} DETACH PARTITION {1}').format(sql.SQL(parent), part))
            if pol.partitions == 'drop':
                cur.execute(sql.SQL('COMMENT ON TABLE {0} IS {1}').format(part, sql.Literal(_drop_mark(pol))))
            return rows

        locked = [None]
        stats = {'lock_retries': 0}
        rows = self._tx(detach, stats)
        if locked[0] is not None:
            # From requesting the parent's lock to commit: what writers may feel.
            held = round((time.time() - locked[0]) * 1000.0, 1)
            result['parent_lock_ms'] = max(result.get('parent_lock_ms') or 0.0, held)
        if rows is not None and pol.partitions == 'drop':
            self._tx(lambda cur: cur.execute(sql.SQL('DROP TABLE IF EXISTS {0}').format(part)), stats)
        result['lock_retries'] += stats['lock_retries']
        result['batches'] += 1
        result['strategies'][self._name(schema, name)] = 'partition-%s' % pol.partitions
        return rows or 0

    def _drop_leftovers(self, pol):
        """Drop partitions an interrupted run detached for dropping but did not drop."""
        if pol.relkind != 'p' or pol.action != 'delete' or pol.partitions != 'drop':
            return []
        cur = self.conn.cursor()
        try:
            cur.execute("SELECT n.nspname, c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
                        "WHERE c.relkind IN ('r', 'p') AND NOT c.relispartition "
                        "AND obj_description(c.oid, 'pg_class') = %s", (_drop_mark(pol),))
            found = cur.fetchall()
        finally:
            self.conn.rollback()
            cur.close()
        stats = {'lock_retries': 0}
        for schema, name in found:
            self._tx(lambda c, s=schema, n=name: c.execute(
                sql.SQL('DROP TABLE IF EXISTS {0}').format(_rel_ident(s, n))), stats)
        return ['dropped %s.%s, left detached by an interrupted run' % row for row in found]

    def _quoted(self, schema, name):
        return _rel_ident(schema, name).as_string(self.conn)

    # -- batches of rows
    def _strategy(self, pol, oid, schema, name):
        """Pick how to walk one table: ('index'|'ctid-range'|'scan', blocks, blocks per batch).

        ctid ranges read the heap once, like a plain DELETE: best when a large
        part of the table expires. The index keyset touches only expired rows
        (two heap visits each): best for the usual nightly sliver. The split is
        the planner's estimate of the expired share against INDEX_SHARE.
        """
        cur = self.conn.cursor()
        try:
            cur.execute(
                'SELECT EXISTS (SELECT 1 FROM pg_index i JOIN pg_class ic ON ic.oid = i.indexrelid '
                'JOIN pg_am am ON am.oid = ic.relam JOIN pg_attribute a ON a.attrelid = i.indrelid '
                'AND a.attnum = i.indkey[0] WHERE i.indrelid = %s AND a.attname = %s AND am.amname = %s '
                'AND i.indisvalid AND i.indpred IS NULL), '
                "current_setting('server_version_num')::int, "
                "pg_relation_size(%s) / current_setting('block_size')::int, "
                'c.reltuples, c.relpages FROM pg_class c WHERE c.oid = %s', (oid, pol.column, 'btree', oid, oid))
            has_index, version, blocks, reltuples, relpages = cur.fetchone()
            share = 1.0
            if has_index and reltuples > 0:
                cur.execute(sql.SQL('EXPLAIN (FORMAT JSON) SELECT 1 FROM {0} WHERE {1}').format(
                    _rel_ident(schema, name), _predicate(pol)), _params(pol))
                plan = cur.fetchone()[0]
                plan = json.loads(plan) if isinstance(plan, str) else plan
                share = float(plan[0]['Plan']['Plan Rows']) / reltuples
        finally:
            self.conn.rollback()
            cur.close()
        if version < 140000:  # no TID range scans
            return ('index' if has_index else 'scan'), 0, 0
        if has_index and share < INDEX_SHARE:
            return 'index', 0, 0
        per_page = (reltuples / relpages) if relpages > 0 and reltuples > 0 else 60.0
        return 'ctid-range', int(blocks), max(1, int(self.batch_size / max(1.0, per_page)))

    def _batched(self, pol, oid, schema, name, result):
        strategy, blocks, step = self._strategy(pol, oid, schema, name)
        table = _rel_ident(schema, name)
        col = sql.Identifier(pol.column)
        change, where = _change(pol, table), _predicate(pol)
        stats = {'lock_retries': 0}
        total = 0
        if strategy == 'ctid-range':
            # One pass along the heap, step blocks per batch (TID range scan).
            query = sql.SQL('{0} WHERE ctid >= %(tid_lo)s::tid AND ctid < %(tid_hi)s::tid AND {1}').format(
                change, where)
            # A range never spans less than one block; the step shrinks when the
            # table is denser than its statistics said.
            start = 0
            while start < blocks:
                args = _params(pol)
                args.update(tid_lo='(%d,0)' % start, tid_hi='(%d,0)' % (start + step))
                count = self._tx(lambda cur, a=args: self._rowcount(cur, query, a), stats)
                total += count
                result['batches'] += 1
                result['largest_batch'] = max(result['largest_batch'], count)
                start += step
                if count > self.batch_size * 1.5:
                    step = max(1, int(step * self.batch_size / count))
                self._pause()
        else:
            # Keyset along the index on the timestamp: each batch starts where
            # the previous one ended, so dead index entries are not rescanned.
            low = None
            while True:
                args = _params(pol)
                keyset = sql.SQL('')
                if low is not None:
                    keyset = sql.SQL(' AND {0} >= %(low)s').format(col)
                    args['low'] = low
                order = sql.SQL(' ORDER BY {0}').format(col) if strategy == 'index' else sql.SQL('')
                query = sql.SQL(
                    'WITH d AS ({change} WHERE ctid = ANY(ARRAY('
                    'SELECT ctid FROM {table} WHERE {where}{keyset}{order} LIMIT {limit})) AND {where} '
                    'RETURNING {col}) SELECT count(*), max({col}) FROM d').format(
                        change=change, table=table, where=where, keyset=keyset, order=order,
                        limit=sql.Literal(self.batch_size), col=col)
                count, highest = self._tx(lambda cur, q=query, a=args: self._one(cur, q, a), stats)
                if not count:
                    break
                total += count
                result['batches'] += 1
                result['largest_batch'] = max(result['largest_batch'], count)
                if strategy == 'index':
                    low = highest
                self._pause()
        result['lock_retries'] += stats['lock_retries']
        if total:
            result['strategies'][self._name(schema, name)] = strategy
        return total

    @staticmethod
    def _rowcount(cur, query, args):
        cur.execute(query, args)
        return cur.rowcount

    @staticmethod
    def _one(cur, query, args):
        cur.execute(query, args)
        return cur.fetchone()

    def _pause(self):
        if self.batch_delay > 0:
            time.sleep(self.batch_delay)


def connect_session(conn, statement_timeout_ms=0):
    """Session settings for a retention connection (no statement timeout by default)."""
    conn.autocommit = False
    with conn.cursor() as cur:
        cur.execute('SET statement_timeout = %s', ('%dms' % statement_timeout_ms,))
        cur.execute("SET application_name = 'pg_retention'")
    conn.commit()


def apply(conn, raw_policies, check=False, **options):
    """Validate all policies, then run them (or count in check mode).

    Returns ``{'policies': [...], 'rows': total, 'changed': bool}``; raises
    PolicyError before touching anything, or RetentionError with the partial
    results if a statement fails midway.
    """
    log = options.pop('log', None)
    runner = Runner(conn, log=log, **options)
    policies = validate(conn, raw_policies)
    results = runner.run(policies, check=check)
    total = sum(r['rows'] for r in results)
    changed = total > 0 or any(r['partitions'] for r in results)
    return {'policies': results, 'rows': total, 'changed': changed}
