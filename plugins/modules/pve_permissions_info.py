#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: Proxmox AI hardening maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: pve_permissions_info
short_description: Effective Proxmox VE privileges of a user or API token
version_added: 0.1.0
description:
  - Reads the privileges a user or an API token really has (C(GET /access/permissions)), after ACL inheritance,
    group membership and, for privilege-separated tokens, the intersection with the owner's privileges.
  - Lets a playbook assert least privilege, for example that a monitoring token has exactly the audit privileges and
    nothing that can change a VM.
  - Why this module exists - the C(community.proxmox) collection has no module that reports effective permissions.
author:
  - Proxmox AI hardening maintainers (@proxmox-ai)
options:
  userid:
    description:
      - User id C(name@realm) or full token id C(user@realm!name) to inspect.
      - When omitted, the identity the module authenticates as (for example the token itself) is inspected.
      - Inspecting another identity needs C(Sys.Audit) on C(/access), except for one's own tokens.
    type: str
    aliases: [user, token_id]
  path:
    description:
      - Only this ACL path (normalised like V(vms/100/) to V(/vms/100)); RV(privileges) then lists its privileges.
      - When omitted, the whole tree is returned.
    type: str
extends_documentation_fragment:
  - proxmox_ai.hardening.pve
  - proxmox_ai.hardening.pve.actiongroup
  - proxmox_ai.hardening.pve.attributes_info
seealso:
  - module: proxmox_ai.hardening.pve_acl
"""

EXAMPLES = r"""
- name: What can the monitoring token do on /?
  proxmox_ai.hardening.pve_permissions_info:
    api_host: pve1.example.org
    api_token_id: "root@pam!ansible"
    api_token_secret: "{{ vault_pve_token_secret }}"
    userid: "proxmox-ai@pam!monitoring"
    path: /
  delegate_to: localhost
  register: perms

- name: Exactly the audit privileges, nothing else
  ansible.builtin.assert:
    that:
      - perms.privileges == ['Datastore.Audit', 'Sys.Audit', 'VM.Audit']
"""

RETURN = r"""
userid:
  description: The inspected identity, or null for the authenticated one.
  returned: always
  type: str
  sample: proxmox-ai@pam!monitoring
permissions:
  description: Map of path to a map of privilege to whether it propagates.
  returned: always
  type: dict
  sample: {"/": {"Datastore.Audit": true, "Sys.Audit": true, "VM.Audit": true}}
privileges:
  description: Sorted privileges on O(path); null when O(path) is not given.
  returned: always
  type: list
  elements: str
  sample: [Datastore.Audit, Sys.Audit, VM.Audit]
api_calls:
  description: The API requests made (C(METHOD /path)).
  returned: always
  type: list
  elements: str
  sample: ["GET /access/permissions"]
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.proxmox_ai.hardening.plugins.module_utils._pve import (
    PveApiError,
    acl_path_error,
    check_userid,
    from_api_bool,
    normalize_acl_path,
    parse_token_id,
    pve_common_argument_spec,
    pve_fail,
    pve_module_init,
)


def main():
    argument_spec = pve_common_argument_spec()
    argument_spec.update(
        userid=dict(type='str', aliases=['user', 'token_id']),
        path=dict(type='str'),
    )
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True)
    client = pve_module_init(module)
    userid = module.params['userid']
    path = module.params['path']
    try:
        if userid is not None:
            if '!' in userid:
                parse_token_id(userid)
            else:
                check_userid(userid)
        if path is not None:
            path = normalize_acl_path(path)
            error = acl_path_error(path)
            if error:
                raise ValueError(error)
    except ValueError as exc:
        pve_fail(module, client, str(exc))

    try:
        data = client.get('/access/permissions', userid=userid, path=path) or {}
    except PveApiError as exc:
        pve_fail(module, client, exc)

    permissions = {}
    for key, privs in data.items():
        permissions[key] = dict((priv, from_api_bool(prop, True)) for priv, prop in (privs or {}).items())
    privileges = sorted(permissions.get(path, {})) if path is not None else None
    module.exit_json(changed=False, userid=userid, permissions=permissions, privileges=privileges,
                     api_calls=client.calls)


if __name__ == '__main__':
    main()
