#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2025, Proxmox AI hardening maintainers
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
---
module: pg_retention
short_description: Delete or anonymise old PostgreSQL rows in bounded batches, drop expired partitions
version_added: 0.1.0
description:
  - Applies retention policies (table, timestamp column, maximum age) and
    anonymisation policies (set columns to given values in rows older than the
    maximum age) to a PostgreSQL database.
  - All policies are validated first (table and columns exist, the timestamp
    column is a timestamp or date, the age is a non-negative interval, the
    values fit their columns, the login has the privileges); if any is invalid
    the module fails listing every problem and changes nothing.
  - Rows are deleted or updated in batches of at most O(batch_size) rows, one
    transaction per batch, with a short O(lock_timeout) and retries, so no lock
    is held long and the application keeps writing to the same tables
    meanwhile. Batches follow a btree index on the timestamp column where one
    exists (keyset on the timestamp), otherwise the table's heap in C(ctid)
    ranges, so every row is visited once.
  - On a table range-partitioned on the timestamp column, partitions whose
    upper bound is at or before the cutoff are detached and dropped (or only
    detached) instead of deleting their rows; rows in partly expired partitions
    and in the DEFAULT partition are deleted in batches.
  - Why this module exists in this collection - M(community.postgresql.postgresql_query)
    and M(community.postgresql.postgresql_script) run a statement as given, and a
    plain C(DELETE ... WHERE created_at < ...) is one long transaction (bloat,
    replication lag, locks on every deleted row until the end), has no
    exact check mode, no per-policy counts, no partition handling and no
    up-front validation. community.postgresql has no retention module.
  - The same engine (C(plugins/module_utils/_retention.py)) is what the
    P(proxmox_ai.hardening.retention#role) role's nightly job runs.
author:
  - Proxmox AI hardening maintainers (@proxmox-ai)
extends_documentation_fragment:
  - proxmox_ai.hardening.postgres
attributes:
  check_mode:
    support: full
    description:
      - Counts exactly the rows each policy would delete or anonymise and lists
        the partitions it would detach or drop; changes nothing.
  diff_mode:
    support: full
    description:
      - Per policy, the number of rows it touches before and after (0 after a real run).
options:
  policies:
    description:
      - The policies, run in the given order.
    type: list
    elements: dict
    required: true
    suboptions:
      table:
        description:
          - Table name, optionally schema-qualified (V(public.alerts)).
        type: str
        required: true
      schema:
        description:
          - Schema of O(policies[].table) when it is not qualified.
        type: str
        default: public
      column:
        description:
          - The timestamp (or date) column that gives the age of a row.
        type: str
        default: created_at
      max_age:
        description:
          - Rows whose O(policies[].column) is older than C(now() - max_age) are touched.
          - A PostgreSQL interval (V(90 days), V(12 months), V(P1Y)) or a number of days.
          - Must not be negative.
        type: raw
        required: true
      anonymise:
        description:
          - Columns and the values to give them in expired rows, instead of deleting the rows.
          - Rows that already hold these values are not touched again.
        type: dict
        aliases: [anonymize]
      partitions:
        description:
          - What to do with expired partitions of a table range-partitioned on O(policies[].column).
          - V(detach) keeps them as standalone tables (for archiving).
        type: str
        default: drop
        choices: [drop, detach]
      name:
        description:
          - Label of the policy in the results. Defaults to the table name
            (with V(:anonymise) appended for anonymisation policies).
        type: str
  batch_size:
    description:
      - Rows one batch (one transaction) deletes or updates at most; batches along
        C(ctid) ranges adapt their block count to hold about this many (at least one block).
    type: int
    default: 10000
  lock_timeout:
    description:
      - Milliseconds a statement waits for a lock before the batch is rolled back and retried.
      - While a retention statement waits in the lock queue, writers queue
        behind it; this bounds that wait.
    type: int
    default: 100
  lock_retries:
    description:
      - How often one batch is retried after a lock timeout, deadlock or
        serialization failure (exponential backoff up to 2 s) before the module fails.
    type: int
    default: 20
  batch_delay:
    description:
      - Seconds to sleep between batches, to leave I/O to the application.
    type: float
    default: 0
notes:
  - Batches along C(ctid) ranges use TID range scans (PostgreSQL 14 or later).
    On older servers, tables without an index on the timestamp column are
    scanned once per batch.
  - The login needs SELECT and DELETE (or UPDATE on the anonymised columns) on
    each table, and must own a partitioned table and its partitions to drop
    them; partitions it does not own are emptied by batched deletes, with a warning.
  - Rows already committed stay deleted when a later batch fails; the module
    then fails and returns what it did so far in RV(policies).
seealso:
  - module: community.postgresql.postgresql_query
  - name: PostgreSQL partition maintenance
    description: Detaching and dropping partitions.
    link: https://www.postgresql.org/docs/current/ddl-partitioning.html#DDL-PARTITIONING-DECLARATIVE-MAINTENANCE
'''

EXAMPLES = r'''
- name: Apply the data retention policies of the monitoring database
  proxmox_ai.hardening.pg_retention:
    login_db: proxmox_ai
    login_user: proxmox_maintenance
    policies:
      - table: alerts
        max_age: 90 days
      - table: incidents
        max_age: 12 months
      - table: action_logs
        max_age: 24 months
      - table: conversations
        max_age: 30
      - table: feedback
        max_age: 12 months
        anonymise:
          user_email: anonymized@localhost
          user_name: anonymized
      - table: node_samples
        max_age: 30 days
  become: true
  become_user: proxmox_maintenance

- name: How many rows would go (check mode), over TLS with full verification
  proxmox_ai.hardening.pg_retention:
    login_host: db.example.org
    login_user: proxmox_maintenance
    login_password: "{{ vault_pg_maintenance_password }}"
    login_db: proxmox_ai
    ssl_mode: verify-full
    ssl_rootcert: /etc/ssl/certs/proxmox-ai-ca.pem
    policies:
      - table: public.alerts
        max_age: 90 days
  check_mode: true
  register: would_expire

- name: Keep expired partitions as standalone tables, small batches
  proxmox_ai.hardening.pg_retention:
    login_db: proxmox_ai
    batch_size: 2000
    lock_timeout: 50
    policies:
      - table: guest_samples
        max_age: 14 days
        partitions: detach
'''

RETURN = r'''
policies:
  description: One entry per policy, in the order given.
  returned: always
  type: list
  elements: dict
  contains:
    name:
      description: The policy label.
      type: str
      sample: alerts
    table:
      description: Schema-qualified table.
      type: str
      sample: public.alerts
    column:
      description: The timestamp column.
      type: str
      sample: created_at
    action:
      description: V(delete) or V(anonymise).
      type: str
      sample: delete
    max_age:
      description: The maximum age as PostgreSQL prints the interval.
      type: str
      sample: 90 days
    cutoff:
      description: Rows older than this (ISO 8601) were touched. The same C(now()) for every policy of a run.
      type: str
      sample: '2025-03-01T02:00:00.123456+00:00'
    rows:
      description:
        - Rows deleted or anonymised (in check mode, that would be). Includes the rows of dropped partitions.
      type: int
      sample: 1234
    batches:
      description: Transactions used (one per batch, one per partition).
      type: int
      sample: 3
    largest_batch:
      description:
        - Most rows one batch changed. Batches along C(ctid) ranges never span less than
          one table block, so with a very small O(batch_size) a batch may hold one block's rows.
      type: int
      sample: 10000
    lock_retries:
      description: Batches retried after a lock timeout.
      type: int
      sample: 0
    partitions:
      description: Partitions detached (and dropped unless RV(policies[].partition_action=detach)).
      type: list
      elements: str
      sample: [public.node_samples_p20250101]
    partition_action:
      description: V(drop) or V(detach) when partitions were (or would be) expired, else null.
      type: str
      sample: drop
    strategies:
      description: How each touched table or partition was processed (V(index), V(ctid-range), V(partition-drop)...).
      type: dict
      sample: {public.alerts: index}
    warnings:
      description: Partitions that could not be dropped (not owned) and were emptied by batches instead.
      type: list
      elements: str
      sample: []
    parent_lock_ms:
      description:
        - Longest time, in milliseconds, from requesting the lock on a partitioned
          table to committing a partition's detach (and drop); null when no partition was expired.
      type: float
      sample: 3.2
    seconds:
      description: Time the policy took.
      type: float
      sample: 0.42
rows:
  description: Total rows touched (or that would be, in check mode).
  returned: always
  type: int
  sample: 1234
counts:
  description: Rows per policy label, handy for logging.
  returned: always
  type: dict
  sample: {alerts: 1200, 'feedback:anonymise': 34}
'''

import traceback

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.proxmox_ai.hardening.plugins.module_utils._pg import (
    pg_common_argument_spec,
    pg_connect,
)
from ansible_collections.proxmox_ai.hardening.plugins.module_utils import _retention


def main():
    argument_spec = pg_common_argument_spec()
    argument_spec.update(
        policies=dict(type='list', elements='dict', required=True, options=dict(
            table=dict(type='str', required=True),
            schema=dict(type='str', default='public'),
            column=dict(type='str', default='created_at'),
            max_age=dict(type='raw', required=True),
            anonymise=dict(type='dict', aliases=['anonymize']),
            partitions=dict(type='str', default='drop', choices=['drop', 'detach']),
            name=dict(type='str'),
        )),
        batch_size=dict(type='int', default=10000),
        lock_timeout=dict(type='int', default=100),
        lock_retries=dict(type='int', default=20),
        batch_delay=dict(type='float', default=0.0),
    )
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True)
    params = module.params
    if params['batch_size'] < 1 or params['lock_timeout'] < 1 or params['lock_retries'] < 0 \
            or params['batch_delay'] < 0:
        module.fail_json(msg='batch_size and lock_timeout must be at least 1, lock_retries and batch_delay not negative')

    conn = pg_connect(module)
    result = dict(changed=False, policies=[], rows=0, counts={})
    try:
        _retention.connect_session(conn)
        outcome = _retention.apply(
            conn, params['policies'], check=module.check_mode, batch_size=params['batch_size'],
            lock_timeout_ms=params['lock_timeout'], lock_retries=params['lock_retries'],
            batch_delay=params['batch_delay'])
    except _retention.PolicyError as exc:
        module.fail_json(msg='Invalid retention policies, nothing was changed: %s' % exc, errors=exc.errors,
                         **result)
    except _retention.RetentionError as exc:
        result['policies'] = exc.results
        result['rows'] = sum(p['rows'] for p in exc.results)
        result['changed'] = result['rows'] > 0
        module.fail_json(msg=str(exc), **result)
    except Exception as exc:  # psycopg2 errors outside a batch (e.g. connection lost)
        module.fail_json(msg='pg_retention failed: %s' % _retention.pg_message(exc),
                         exception=traceback.format_exc(), **result)
    finally:
        conn.close()

    for item in outcome['policies']:
        for warning in item['warnings']:
            module.warn(warning)
    result.update(
        changed=outcome['changed'],
        policies=outcome['policies'],
        rows=outcome['rows'],
        counts=dict((p['name'], p['rows']) for p in outcome['policies']),
    )
    if module._diff:
        touched = [p for p in outcome['policies'] if p['rows'] or p['partitions']]
        result['diff'] = dict(
            before=''.join('%s: %d rows older than %s\n' % (p['name'], p['rows'], p['cutoff']) for p in touched),
            after=''.join('%s: 0 rows older than %s\n' % (p['name'], p['cutoff']) for p in touched),
        )
    module.exit_json(**result)


if __name__ == '__main__':
    main()
