#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2025, Proxmox AI hardening maintainers
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
---
module: pve_remediate
short_description: Run a guest remediation safely - deny list, snapshot, record, execute, verify, roll back
version_added: 0.1.0
description:
  - Runs one remediation of a Proxmox VE guest in the order of the security guide
    and records every step in the C(action_logs) table.
  - 1. B(Self-protection) - the action is checked against O(deny_list) and the guest
    against O(protected_vmids), O(protected_names) and O(protected_tags) (the
    monitoring stack itself) before anything changes; a refused action is recorded
    with status C(refused) and the module fails without any change.
  - 2. B(Snapshot) of the guest through the API (the task is awaited by its UPID);
    if the snapshot fails nothing else runs.
  - 3. B(Record) the action (C(started)), 4. B(execute) it (C(executed)),
    5. B(verify) that the guest reached O(verify_status) within O(verify_timeout)
    seconds (C(verified) or C(verification_failed)).
  - 6. B(Roll back) to the snapshot when the execution or the verification failed
    (C(rolled_back) or C(rollback_failed)); the module then fails.
  - The database connection is opened first - without an audit trail nothing runs.
author:
  - Proxmox AI hardening maintainers (@proxmox-ai)
extends_documentation_fragment:
  - proxmox_ai.hardening.pve
  - proxmox_ai.hardening.postgres
attributes:
  check_mode:
    support: full
    description: Checks the deny list and the target, reads the guest and reports the steps it would run; records and changes nothing.
  diff_mode:
    support: none
    description: The steps are returned in RV(steps) and recorded in C(action_logs) instead.
options:
  action:
    description:
      - Name of the remediation, recorded as C(action_type) and checked against O(deny_list).
      - C(start_guest), C(stop_guest), C(shutdown_guest), C(reboot_guest) and C(restart_guest)
        imply O(operation).
    type: str
    required: true
  operation:
    description:
      - What to do to the guest. Default is derived from O(action).
    type: str
    choices: [start, stop, shutdown, reboot]
  vmid:
    description: Id of the guest.
    type: int
    required: true
  node:
    description: Node of the guest. Default is where C(/cluster/resources) finds it.
    type: str
  guest_type:
    description: C(qemu) or C(lxc). Default is what C(/cluster/resources) reports.
    type: str
    choices: [qemu, lxc]
  verify_status:
    description: Status the guest must reach. Default C(running) for start and reboot, C(stopped) for stop and shutdown.
    type: str
  verify_timeout:
    description: Seconds the guest has to reach O(verify_status).
    type: int
    default: 60
  task_timeout:
    description: Seconds to wait for each Proxmox VE task (snapshot, action, rollback).
    type: int
    default: 300
  snapshot:
    description: Take a snapshot first and roll back to it on failure. Without it a failure is only recorded.
    type: bool
    default: true
  snapshot_prefix:
    description: Prefix of the snapshot name (followed by the UTC time).
    type: str
    default: pai
  deny_list:
    description: Actions that are never run (self-protection).
    type: list
    elements: str
    default: [delete_workflow, modify_workflow, stop_n8n, delete_database]
  protected_vmids:
    description: Guests of the monitoring stack itself; no remediation may target them.
    type: list
    elements: int
    default: []
  protected_names:
    description: Shell patterns of guest names that no remediation may target (the monitoring stack).
    type: list
    elements: str
    default: [n8n*, proxmox-ai*, "*postgres*"]
  protected_tags:
    description: Guests carrying one of these Proxmox VE tags are never targeted.
    type: list
    elements: str
    default: [proxmox-ai, protected]
  actor:
    description: Who asked for the remediation (recorded as C(actor)), for example the AWX user.
    type: str
    default: remediation
  details:
    description: Extra data recorded with every step (for example the alert that triggered it).
    type: dict
    default: {}
notes:
  - The API token needs C(VM.Snapshot), C(VM.Snapshot.Rollback), C(VM.PowerMgmt) and C(VM.Audit) on the guest;
    the database role needs C(INSERT) on C(action_logs).
'''

EXAMPLES = r'''
- name: Start a stopped guest, rolling back if it does not come up
  proxmox_ai.hardening.pve_remediate:
    api_host: pve1.example.org
    api_token_id: remediation@pve!awx
    api_token_secret: "{{ vault_pve_remediation_secret }}"
    ca_path: /etc/proxmox-ai/prod-ca.pem
    action: start_guest
    vmid: 101
    login_host: db.example.org
    login_db: proxmox_ai
    login_user: proxmox_user
    login_password: "{{ vault_db_password }}"
    ssl_mode: verify-full
    ssl_rootcert: /etc/proxmox-ai/pg-ca.pem
    actor: "awx:{{ awx_user_name | default('remediation') }}"
'''

RETURN = r'''
steps:
  description: The steps run, in order, as recorded in action_logs.
  returned: always
  type: list
  elements: dict
  sample: [{step: snapshot, status: ok, upid: "UPID:pve1:..."}, {step: started}, {step: executed, status: ok}]
snapshot:
  description: Name of the snapshot taken.
  returned: when a snapshot was taken
  type: str
  sample: pai-20250101T120000Z
refused:
  description: True when the deny list or the protection of the monitoring stack refused the action.
  returned: always
  type: bool
rolled_back:
  description: True when the guest was rolled back to the snapshot.
  returned: always
  type: bool
api_calls:
  description: The Proxmox VE API requests made, in order (C(METHOD /path)).
  returned: when the module failed on an API error
  type: list
  elements: str
  sample: ["GET /cluster/resources"]
'''

import datetime
import fnmatch
import json
import time
import uuid

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.proxmox_ai.hardening.plugins.module_utils._pg import pg_common_argument_spec, pg_connect
from ansible_collections.proxmox_ai.hardening.plugins.module_utils._pve import (
    PveApiError, pve_common_argument_spec, pve_fail, pve_module_init)
from ansible_collections.proxmox_ai.hardening.plugins.module_utils._sanitize import sanitize_log, sanitize_obj

IMPLIED = {'start_guest': 'start', 'stop_guest': 'stop', 'shutdown_guest': 'shutdown', 'reboot_guest': 'reboot',
           'restart_guest': 'reboot'}
EXPECTED = {'start': 'running', 'reboot': 'running', 'stop': 'stopped', 'shutdown': 'stopped'}
INSERT = ('INSERT INTO action_logs ("timestamp", actor, action_type, entity, status, details) '
          'VALUES (now(), %s, %s, %s, %s, %s::jsonb)')


class Remediation(object):
    """One run: the audit connection, the API client and the steps done so far."""

    def __init__(self, module, client, conn):
        self.module = module
        self.client = client
        self.conn = conn
        self.params = module.params
        self.run_id = str(uuid.uuid4())
        self.steps = []
        self.entity = 'vm/%s' % self.params['vmid']

    def record(self, step, **details):
        entry = dict(step=step, **details)
        self.steps.append(entry)
        if self.module.check_mode or self.conn is None:
            return
        data = sanitize_obj(dict(self.params['details'] or {}, run_id=self.run_id, **entry))
        try:
            with self.conn.cursor() as cur:
                cur.execute(INSERT, (self.params['actor'], self.params['action'], self.entity, step, json.dumps(data)))
            self.conn.commit()
        except Exception as exc:  # pylint: disable=broad-except  # a lost audit row must not strand a half-done action
            entry['recorded'] = False
            self.module.warn('could not record step %s in action_logs: %s' % (step, sanitize_log(str(exc).strip())))
            if step == 'snapshot':
                self.fail('the audit trail is unavailable (%s): stopping before any change to the guest'
                          % sanitize_log(str(exc).strip()))

    def fail(self, msg, **result):
        result.setdefault('refused', False)
        result.setdefault('rolled_back', False)
        result.setdefault('changed', any(s['step'] in ('snapshot', 'executed', 'rolled_back') for s in self.steps))
        self.module.fail_json(msg=sanitize_log(msg), steps=self.steps, **result)

    def wait(self, node, upid):
        """Wait for a task; returns its exit status ('OK', 'WARNINGS: n' or the error)."""
        deadline = time.time() + self.params['task_timeout']
        while True:
            status = self.client.get('/nodes/%s/tasks/%s/status' % (node, upid))
            if status.get('status') == 'stopped':
                return status.get('exitstatus') or 'unknown'
            if time.time() > deadline:
                return 'timeout after %ss' % self.params['task_timeout']
            time.sleep(0.2)


def task_ok(exitstatus):
    return exitstatus == 'OK' or str(exitstatus).startswith('WARNINGS')


def refusal(params, guest):
    """Why this remediation must not run (None if it may)."""
    if params['action'] in params['deny_list']:
        return "action '%s' is on the deny list (self-protection)" % params['action']
    if params['vmid'] in params['protected_vmids']:
        return 'guest %s belongs to the monitoring stack (protected_vmids)' % params['vmid']
    if guest is not None:
        name = guest.get('name') or ''
        for pattern in params['protected_names']:
            if name and fnmatch.fnmatch(name, pattern):
                return "guest %s (%s) belongs to the monitoring stack (protected_names '%s')" % (
                    params['vmid'], name, pattern)
        tags = set(t for t in str(guest.get('tags') or '').replace(',', ';').split(';') if t)
        hit = sorted(tags & set(params['protected_tags']))
        if hit:
            return 'guest %s carries the protected tag %s' % (params['vmid'], hit[0])
    return None


def main():  # pylint: disable=too-many-locals,too-many-branches,too-many-statements
    argument_spec = pve_common_argument_spec()
    argument_spec.update(pg_common_argument_spec())
    argument_spec.update(
        action=dict(type='str', required=True),
        operation=dict(type='str', choices=['start', 'stop', 'shutdown', 'reboot']),
        vmid=dict(type='int', required=True),
        node=dict(type='str'),
        guest_type=dict(type='str', choices=['qemu', 'lxc']),
        verify_status=dict(type='str'),
        verify_timeout=dict(type='int', default=60),
        task_timeout=dict(type='int', default=300),
        snapshot=dict(type='bool', default=True),
        snapshot_prefix=dict(type='str', default='pai'),
        deny_list=dict(type='list', elements='str',
                       default=['delete_workflow', 'modify_workflow', 'stop_n8n', 'delete_database']),
        protected_vmids=dict(type='list', elements='int', default=[]),
        protected_names=dict(type='list', elements='str', default=['n8n*', 'proxmox-ai*', '*postgres*']),
        protected_tags=dict(type='list', elements='str', default=['proxmox-ai', 'protected']),
        actor=dict(type='str', default='remediation'),
        details=dict(type='dict', default={}),
    )
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True)
    params = module.params
    # No audit trail, no action: the database comes first.
    conn = None if module.check_mode else pg_connect(module)
    run = Remediation(module, None, conn)

    denied = refusal(params, None)
    if denied:
        run.record('refused', reason=denied)
        run.fail('refused: %s' % denied, refused=True, changed=False)

    client = pve_module_init(module)
    run.client = client
    try:
        resources = client.get('/cluster/resources', type='vm')
    except PveApiError as exc:
        run.record('failed', reason=exc.msg)
        pve_fail(module, client, exc, steps=run.steps, refused=False, rolled_back=False)
    guest = next((g for g in resources if int(g.get('vmid', -1)) == params['vmid']), None)
    denied = refusal(params, guest)
    if denied:
        run.record('refused', reason=denied)
        run.fail('refused: %s' % denied, refused=True, changed=False)
    if guest is None:
        run.record('failed', reason='no such guest')
        run.fail('guest %s does not exist' % params['vmid'])
    node = params['node'] or guest['node']
    kind = params['guest_type'] or guest['type']
    run.entity = '%s/%s' % (kind, params['vmid'])
    operation = params['operation'] or IMPLIED.get(params['action'])
    if operation is None:
        run.record('refused', reason='no operation for this action')
        run.fail("action '%s' implies no operation: set operation" % params['action'], refused=True, changed=False)
    expected = params['verify_status'] or EXPECTED[operation]
    base = '/nodes/%s/%s/%s' % (node, kind, params['vmid'])
    snapname = '%s-%s' % (params['snapshot_prefix'],
                          datetime.datetime.now(datetime.timezone.utc).strftime('%Y%m%dT%H%M%S%fZ')[:-4])

    if module.check_mode:
        plan = (['snapshot'] if params['snapshot'] else []) + ['started', 'executed', 'verified']
        module.exit_json(changed=True, steps=[{'step': s, 'status': 'planned'} for s in plan], refused=False,
                         rolled_back=False, snapshot=snapname if params['snapshot'] else None,
                         guest_status=guest.get('status'))

    try:
        if params['snapshot']:
            upid = client.post(base + '/snapshot', snapname=snapname,
                               description='before %s by %s' % (params['action'], params['actor']))
            exitstatus = run.wait(node, upid)
            run.record('snapshot', status='ok' if task_ok(exitstatus) else 'failed', snapshot=snapname, upid=upid,
                       exitstatus=exitstatus)
            if not task_ok(exitstatus):
                run.fail('snapshot %s of %s failed (%s): nothing was changed' % (snapname, run.entity, exitstatus),
                         changed=False)
        run.record('started', operation=operation, node=node, snapshot=snapname if params['snapshot'] else None)
        try:
            upid = client.post(base + '/status/' + operation)
            exitstatus = run.wait(node, upid)
        except PveApiError as exc:
            upid, exitstatus = None, exc.msg
        run.record('executed', status='ok' if task_ok(exitstatus) else 'failed', upid=upid, exitstatus=exitstatus)

        verified, current = False, None
        if task_ok(exitstatus):
            deadline = time.time() + params['verify_timeout']
            while True:
                current = client.get(base + '/status/current').get('status')
                if current == expected:
                    verified = True
                    break
                if time.time() > deadline:
                    break
                time.sleep(0.5)
        if verified:
            run.record('verified', expected=expected, observed=current)
            module.exit_json(changed=True, steps=run.steps, snapshot=snapname if params['snapshot'] else None,
                             refused=False, rolled_back=False)
        run.record('verification_failed', expected=expected, observed=current, exitstatus=exitstatus)
        if not params['snapshot']:
            run.fail('%s of %s failed verification (expected %s, saw %s); no snapshot to roll back to'
                     % (params['action'], run.entity, expected, current))
        upid = client.post(base + '/snapshot/%s/rollback' % snapname,
                           start=1 if guest.get('status') == 'running' else 0)
        exitstatus = run.wait(node, upid)
        if task_ok(exitstatus):
            run.record('rolled_back', snapshot=snapname, upid=upid)
            run.fail('%s of %s failed verification (expected %s, saw %s): rolled back to snapshot %s'
                     % (params['action'], run.entity, expected, current, snapname), rolled_back=True,
                     snapshot=snapname)
        run.record('rollback_failed', snapshot=snapname, upid=upid, exitstatus=exitstatus)
        run.fail('%s of %s failed verification and the rollback to %s failed too (%s)'
                 % (params['action'], run.entity, snapname, exitstatus), snapshot=snapname)
    except PveApiError as exc:
        run.record('failed', reason=exc.msg)
        run.fail(exc.msg)


if __name__ == '__main__':
    main()
