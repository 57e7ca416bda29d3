#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: Proxmox AI hardening maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: pve_role
short_description: Manage a Proxmox VE role and its exact set of privileges
version_added: 0.1.0
description:
  - Creates, updates or deletes a custom role of Proxmox VE access control (C(/access/roles)).
  - Sets the role's privileges to exactly the list given, or adds them with O(append=true); an empty list empties the role.
  - Every privilege name is checked against the privileges the server knows (read from the server itself) before
    anything is written, so a typo fails the task without a partial change, in check mode too.
  - Built-in roles (V(Administrator), V(NoAccess), every V(PVE*) role) are refused with a clear message before any
    API call; Proxmox VE does not allow changing them, nor creating a role whose name starts with C(PVE) (in any case).
  - Why this module exists - the C(community.proxmox) collection has no role module that can empty a privilege list, validate
    privilege names before writing, or report a diff; this one reads the state once, writes only what differs and
    computes the real change in check mode.
author:
  - Proxmox AI hardening maintainers (@proxmox-ai)
options:
  name:
    description:
      - Role id, letters, digits, C(.), C(-) and C(_). Must not start with C(PVE) (in any letter case).
    type: str
    required: true
    aliases: [roleid]
  privileges:
    description:
      - Privileges of the role, for example V(VM.Audit). Items may also be comma separated strings.
      - The role gets exactly these privileges (unless O(append=true)); V([]) removes them all.
      - When omitted, the privileges of an existing role are left alone and a new role is created empty.
    type: list
    elements: str
    aliases: [privs]
  append:
    description:
      - Add O(privileges) to those the role already has instead of replacing them.
    type: bool
    default: false
  state:
    description:
      - Whether the role should exist. Deleting a role does not remove ACL entries that use it (Proxmox VE behaviour).
    type: str
    choices: [present, absent]
    default: present
extends_documentation_fragment:
  - proxmox_ai.hardening.pve
  - proxmox_ai.hardening.pve.actiongroup
  - proxmox_ai.hardening.pve.attributes
seealso:
  - module: proxmox_ai.hardening.pve_acl
  - module: proxmox_ai.hardening.pve_permissions_info
"""

EXAMPLES = r"""
- name: Read-only role for the monitoring collector
  proxmox_ai.hardening.pve_role:
    api_host: pve1.example.org
    api_token_id: "root@pam!ansible"
    api_token_secret: "{{ vault_pve_token_secret }}"
    ca_path: /etc/ssl/pve-root-ca.pem
    name: ProxmoxAI-Readonly
    privileges: [VM.Audit, Datastore.Audit, Sys.Audit]
  delegate_to: localhost

- name: Add one privilege, keep the others (connection from PROXMOX_* environment variables)
  proxmox_ai.hardening.pve_role:
    name: ProxmoxAI-Readonly
    privileges: [SDN.Audit]
    append: true
  delegate_to: localhost

- name: Keep the role but take every privilege away
  proxmox_ai.hardening.pve_role:
    name: Legacy-Operators
    privileges: []
  delegate_to: localhost

- name: Remove a role
  proxmox_ai.hardening.pve_role:
    name: Legacy-Operators
    state: absent
  delegate_to: localhost
"""

RETURN = r"""
role:
  description: The role after the task (as it would be, in check mode); empty when absent.
  returned: always
  type: dict
  contains:
    roleid:
      description: Role id.
      type: str
      sample: ProxmoxAI-Readonly
    privileges:
      description: Sorted privileges.
      type: list
      elements: str
      sample: [Datastore.Audit, Sys.Audit, VM.Audit]
added:
  description: Privileges added by the task.
  returned: always
  type: list
  elements: str
  sample: [Sys.Audit]
removed:
  description: Privileges removed by the task.
  returned: always
  type: list
  elements: str
  sample: [VM.PowerMgmt]
api_calls:
  description: The API requests made, in order (C(METHOD /path)); one read, then the writes.
  returned: always
  type: list
  elements: str
  sample: ["GET /access/roles", "PUT /access/roles/ProxmoxAI-Readonly"]
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.proxmox_ai.hardening.plugins.module_utils._pve import (
    BUILTIN_ROLES,
    ROLEID_RE,
    PveApiError,
    pve_common_argument_spec,
    pve_fail,
    pve_module_init,
    split_list,
)


def builtin_refusal(name):
    if name in BUILTIN_ROLES or name.upper().startswith('PVE'):
        return ("role '%s' is a built-in Proxmox VE role (or uses the reserved 'PVE' prefix): Proxmox VE does not allow "
                "creating, changing or deleting it. Use a role name of your own, e.g. 'ProxmoxAI-Readonly'" % name)
    return None


def main():
    argument_spec = pve_common_argument_spec()
    argument_spec.update(
        name=dict(type='str', required=True, aliases=['roleid']),
        privileges=dict(type='list', elements='str', aliases=['privs']),
        append=dict(type='bool', default=False),
        state=dict(type='str', default='present', choices=['present', 'absent']),
    )
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True)
    client = pve_module_init(module)
    name = module.params['name']
    state = module.params['state']
    append = module.params['append']
    wanted = None if module.params['privileges'] is None else set(split_list(module.params['privileges']))

    if not ROLEID_RE.match(name):
        pve_fail(module, client, "invalid role id '%s': use only letters, digits, '.', '-' and '_'" % name)
    refusal = builtin_refusal(name)
    if refusal:
        pve_fail(module, client, refusal)

    try:
        roles = client.get('/access/roles') or []
    except PveApiError as exc:
        pve_fail(module, client, exc)

    current = None
    current_privs = set()
    known = set()
    for entry in roles:
        privs = set(split_list([entry.get('privs') or '']))
        known |= privs
        if entry.get('roleid') == name:
            current = entry
            current_privs = privs
    if current is not None and str(current.get('special', 0)) not in ('0', 'False', ''):
        pve_fail(module, client, builtin_refusal(name) or "role '%s' is marked special (built-in) by the server and cannot "
                 "be changed" % name)

    before = {'roleid': name, 'privileges': sorted(current_privs)} if current is not None else {}
    result = dict(changed=False, added=[], removed=[])

    if state == 'absent':
        if current is not None:
            result['changed'] = True
            result['removed'] = sorted(current_privs)
            if not module.check_mode:
                try:
                    client.delete('/access/roles/%s' % name)
                except PveApiError as exc:
                    pve_fail(module, client, exc)
        after = {}
    else:
        if wanted is not None and known:
            unknown = sorted(wanted - known)
            if unknown:
                pve_fail(module, client, "unknown privilege(s) %s for role '%s'; nothing was changed. Privileges this server "
                         "knows: %s" % (', '.join(unknown), name, ', '.join(sorted(known))))
        have = current_privs if current is not None else set()
        if wanted is None:
            target = set(have)
        elif append:
            target = have | wanted
        else:
            target = set(wanted)
        result['added'] = sorted(target - have)
        result['removed'] = sorted(have - target)
        try:
            if current is None:
                result['changed'] = True
                if not module.check_mode:
                    client.post('/access/roles', roleid=name, privs=','.join(sorted(target)) if target else None)
            elif target != have:
                result['changed'] = True
                if not module.check_mode:
                    if append:
                        client.put('/access/roles/%s' % name, privs=','.join(result['added']), append=True)
                    else:
                        client.put('/access/roles/%s' % name, privs=','.join(sorted(target)))
        except PveApiError as exc:
            pve_fail(module, client, exc)
        after = {'roleid': name, 'privileges': sorted(target)}

    result['role'] = after
    result['api_calls'] = client.calls
    if module._diff:
        result['diff'] = dict(before=before, after=after)
    module.exit_json(**result)


if __name__ == '__main__':
    main()
