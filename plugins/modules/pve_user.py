#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: Proxmox AI hardening maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: pve_user
short_description: Manage a Proxmox VE user without touching its API tokens
version_added: 0.1.0
description:
  - Creates, updates or deletes a user of Proxmox VE access control (C(/access/users)).
  - Only the options given are managed; an option left out keeps its current value on the server.
  - Group membership is compared as a set, so the order of O(groups) never causes a change.
  - The user's API tokens are never read for comparison, never sent and never removed by an update; manage them
    with M(proxmox_ai.hardening.pve_token). Only O(state=absent) removes them, because Proxmox VE deletes a user's
    tokens and ACL entries together with the user.
  - Why this module exists - the user module of the C(community.proxmox) collection deletes every API token it was not told about
    when it updates a user, which silently breaks collectors that authenticate with a token.
author:
  - Proxmox AI hardening maintainers (@proxmox-ai)
options:
  userid:
    description:
      - User id C(name@realm), for example V(proxmox-ai@pam).
      - For the C(pam) realm the Linux account must exist on the nodes for password logins; API tokens work without it.
    type: str
    required: true
    aliases: [name, user]
  comment:
    description: Free-text comment.
    type: str
  email:
    description: E-mail address.
    type: str
  firstname:
    description: First name.
    type: str
  lastname:
    description: Last name.
    type: str
  enable:
    description: Whether the account is enabled.
    type: bool
  expire:
    description: Account expiration as seconds since the epoch; V(0) means never.
    type: int
  groups:
    description:
      - Exact set of groups the user belongs to (order does not matter); V([]) removes the user from all groups.
      - The groups must exist.
    type: list
    elements: str
  password:
    description:
      - Initial password, only used when the user is created (C(pve) realm; C(pam) passwords live on the nodes).
      - Never compared or changed afterwards, so the task stays idempotent.
    type: str
  state:
    description: Whether the user should exist. V(absent) also removes its tokens and ACL entries (Proxmox VE behaviour).
    type: str
    choices: [present, absent]
    default: present
extends_documentation_fragment:
  - proxmox_ai.hardening.pve
  - proxmox_ai.hardening.pve.actiongroup
  - proxmox_ai.hardening.pve.attributes
seealso:
  - module: proxmox_ai.hardening.pve_token
  - module: proxmox_ai.hardening.pve_acl
"""

EXAMPLES = r"""
- name: Service user of the monitoring collector
  proxmox_ai.hardening.pve_user:
    api_host: pve1.example.org
    api_token_id: "root@pam!ansible"
    api_token_secret: "{{ vault_pve_token_secret }}"
    userid: proxmox-ai@pam
    comment: Proxmox AI monitoring (read-only)
    enable: true
  delegate_to: localhost

- name: Exact group membership, in any order
  proxmox_ai.hardening.pve_user:
    userid: alice@pve
    groups: [operators, auditors]
  delegate_to: localhost

- name: Remove a user (its tokens and ACL entries go with it)
  proxmox_ai.hardening.pve_user:
    userid: olduser@pve
    state: absent
  delegate_to: localhost
"""

RETURN = r"""
user:
  description: The managed fields of the user after the task (as they would be, in check mode); empty when absent.
  returned: always
  type: dict
  sample:
    userid: proxmox-ai@pam
    comment: Proxmox AI monitoring (read-only)
    enable: true
    expire: 0
    groups: []
changed_fields:
  description: Fields the task changed (or would change in check mode).
  returned: always
  type: list
  elements: str
  sample: [comment, groups]
api_calls:
  description: The API requests made, in order (C(METHOD /path)); one read, then the writes.
  returned: always
  type: list
  elements: str
  sample: ["GET /access/users/proxmox-ai@pam", "PUT /access/users/proxmox-ai@pam"]
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.proxmox_ai.hardening.plugins.module_utils._pve import (
    GROUPID_RE,
    PveApiError,
    check_userid,
    from_api_bool,
    pve_common_argument_spec,
    pve_fail,
    pve_module_init,
    split_list,
)

TEXT_FIELDS = ('comment', 'email', 'firstname', 'lastname')


def current_view(data, userid):
    """The managed fields of the server's user record, with the server defaults filled in."""
    view = {'userid': userid}
    for field in TEXT_FIELDS:
        view[field] = data.get(field) or ''
    view['enable'] = from_api_bool(data.get('enable'), True)
    view['expire'] = int(data.get('expire') or 0)
    groups = data.get('groups') or []
    if isinstance(groups, str):
        groups = split_list([groups])
    view['groups'] = sorted(set(groups))
    return view


def main():
    argument_spec = pve_common_argument_spec()
    argument_spec.update(
        userid=dict(type='str', required=True, aliases=['name', 'user']),
        comment=dict(type='str'),
        email=dict(type='str'),
        firstname=dict(type='str'),
        lastname=dict(type='str'),
        enable=dict(type='bool'),
        expire=dict(type='int'),
        groups=dict(type='list', elements='str'),
        password=dict(type='str', no_log=True),
        state=dict(type='str', default='present', choices=['present', 'absent']),
    )
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True)
    client = pve_module_init(module)
    params = module.params
    userid = params['userid']
    try:
        check_userid(userid)
    except ValueError as exc:
        pve_fail(module, client, str(exc))
    groups = None if params['groups'] is None else sorted(set(split_list(params['groups'])))
    bad_groups = [g for g in groups or [] if not GROUPID_RE.match(g)]
    if bad_groups:
        pve_fail(module, client, 'invalid group id(s): %s' % ', '.join(bad_groups))
    if params['expire'] is not None and params['expire'] < 0:
        pve_fail(module, client, 'expire must be 0 (never) or seconds since the epoch')

    path = '/access/users/%s' % userid
    try:
        data = client.get(path)
    except PveApiError as exc:
        if exc.status == 500 and 'no such user' in (exc.reason or '').lower():
            data = None
        else:
            pve_fail(module, client, exc)

    before = current_view(data, userid) if data is not None else {}
    result = dict(changed=False, changed_fields=[])

    try:
        if params['state'] == 'absent':
            after = {}
            if data is not None:
                result['changed'] = True
                result['changed_fields'] = ['userid']
                if not module.check_mode:
                    client.delete(path)
        else:
            desired = dict(before) if data is not None else {
                'userid': userid, 'comment': '', 'email': '', 'firstname': '', 'lastname': '',
                'enable': True, 'expire': 0, 'groups': []}
            for field in TEXT_FIELDS + ('enable', 'expire'):
                if params[field] is not None:
                    desired[field] = params[field]
            if groups is not None:
                desired['groups'] = groups
            after = desired
            changed = [f for f in sorted(desired) if f != 'userid' and desired[f] != before.get(f)]
            if data is None:
                result['changed'] = True
                result['changed_fields'] = ['userid'] + [f for f in changed if params.get(f) is not None or
                                                         (f == 'groups' and groups is not None)]
                if not module.check_mode:
                    body = dict(userid=userid, password=params['password'])
                    for field in TEXT_FIELDS + ('enable', 'expire'):
                        body[field] = params[field]
                    if groups:
                        body['groups'] = ','.join(groups)
                    client.post('/access/users', **body)
            elif changed:
                result['changed'] = True
                result['changed_fields'] = changed
                if not module.check_mode:
                    body = {}
                    for field in changed:
                        body[field] = ','.join(desired[field]) if field == 'groups' else desired[field]
                    client.put(path, **body)
    except PveApiError as exc:
        pve_fail(module, client, exc)

    result['user'] = after
    result['api_calls'] = client.calls
    if module._diff:
        result['diff'] = dict(before=before, after=after)
    module.exit_json(**result)


if __name__ == '__main__':
    main()
