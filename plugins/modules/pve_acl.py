#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: Proxmox AI hardening maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: pve_acl
short_description: Manage Proxmox VE ACL entries for users, groups and API tokens
version_added: 0.1.0
description:
  - Grants or revokes roles on Proxmox VE access control paths (C(/access/acl)) for users, groups and API tokens,
    several entries per task.
  - Reads the ACL once, compares each entry including C(propagate) in both directions (V(true) to V(false) and back),
    and writes only the entries that differ, grouped into as few calls as possible.
  - Paths are normalised the way the server does it (V(vms/100/) is V(/vms/100)) and checked against the paths
    Proxmox VE accepts before anything is written, so a typo fails the whole task without a partial change.
  - With O(exclusive=true), every other ACL entry of the users, groups and tokens named in O(entries) is removed,
    on any path, so the listed entries become their complete set of grants.
  - Why this module exists - the ACL module of the C(community.proxmox) collection has no check mode and compares C(propagate)
    wrongly, so changing it is either missed or reported on every run.
author:
  - Proxmox AI hardening maintainers (@proxmox-ai)
options:
  entries:
    description: ACL entries. Each grants every role in O(entries[].roles) to every subject listed in it.
    type: list
    elements: dict
    required: true
    suboptions:
      path:
        description: ACL path, for example V(/), V(/vms/100), V(/storage/local), V(/pool/prod).
        type: str
        required: true
      roles:
        description: Role ids to grant (or revoke).
        type: list
        elements: str
        required: true
        aliases: [role]
      users:
        description: User ids C(name@realm).
        type: list
        elements: str
        aliases: [user]
      groups:
        description: Group ids.
        type: list
        elements: str
        aliases: [group]
      tokens:
        description: Full API token ids C(user@realm!name).
        type: list
        elements: str
        aliases: [token]
      propagate:
        description: Whether the grant is inherited by the paths below O(entries[].path).
        type: bool
        default: true
  exclusive:
    description:
      - Remove every ACL entry of the subjects named in O(entries) that is not listed, on any path.
      - Only with O(state=present).
    type: bool
    default: false
  state:
    description: V(present) grants the entries, V(absent) revokes them (whatever their C(propagate)).
    type: str
    choices: [present, absent]
    default: present
extends_documentation_fragment:
  - proxmox_ai.hardening.pve
  - proxmox_ai.hardening.pve.actiongroup
  - proxmox_ai.hardening.pve.attributes
notes:
  - Roles, users, groups and tokens must exist; the server reports the ones that do not.
seealso:
  - module: proxmox_ai.hardening.pve_role
  - module: proxmox_ai.hardening.pve_permissions_info
"""

EXAMPLES = r"""
- name: Read-only role on the whole cluster for the collector's user and token
  proxmox_ai.hardening.pve_acl:
    api_host: pve1.example.org
    api_token_id: "root@pam!ansible"
    api_token_secret: "{{ vault_pve_token_secret }}"
    entries:
      - path: /
        roles: [ProxmoxAI-Readonly]
        users: [proxmox-ai@pam]
        tokens: ["proxmox-ai@pam!monitoring"]
  delegate_to: localhost

- name: These are the only grants of the token (others are removed)
  proxmox_ai.hardening.pve_acl:
    entries:
      - path: /
        role: ProxmoxAI-Readonly
        token: "proxmox-ai@pam!monitoring"
    exclusive: true
  delegate_to: localhost

- name: Grant on one VM only, not inherited
  proxmox_ai.hardening.pve_acl:
    entries:
      - path: vms/100
        roles: [PVEVMUser]
        groups: [operators]
        propagate: false
  delegate_to: localhost

- name: Revoke
  proxmox_ai.hardening.pve_acl:
    entries:
      - path: /vms/100
        roles: [PVEVMUser]
        groups: [operators]
    state: absent
  delegate_to: localhost
"""

RETURN = r"""
added:
  description: ACL entries granted, or re-granted with another C(propagate), by the task (would be, in check mode).
  returned: always
  type: list
  elements: dict
  sample: [{path: /, roleid: ProxmoxAI-Readonly, type: token, ugid: "proxmox-ai@pam!monitoring", propagate: true}]
removed:
  description: ACL entries revoked by the task (would be, in check mode).
  returned: always
  type: list
  elements: dict
  sample: [{path: /vms/100, roleid: PVEVMAdmin, type: user, ugid: proxmox-ai@pam, propagate: true}]
acl:
  description: After the task, all ACL entries of the subjects named in O(entries).
  returned: always
  type: list
  elements: dict
  sample: [{path: /, roleid: ProxmoxAI-Readonly, type: user, ugid: proxmox-ai@pam, propagate: true}]
api_calls:
  description: The API requests made, in order (C(METHOD /path)); one read, then the writes.
  returned: always
  type: list
  elements: str
  sample: ["GET /access/acl", "PUT /access/acl"]
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.proxmox_ai.hardening.plugins.module_utils._pve import (
    GROUPID_RE,
    ROLEID_RE,
    PveApiError,
    acl_path_error,
    check_userid,
    from_api_bool,
    normalize_acl_path,
    parse_token_id,
    pve_common_argument_spec,
    pve_fail,
    pve_module_init,
    split_list,
)

KINDS = (('user', 'users'), ('group', 'groups'), ('token', 'tokens'))


def check_subject(kind, ugid):
    if kind == 'user':
        check_userid(ugid)
    elif kind == 'token':
        parse_token_id(ugid)
    elif not GROUPID_RE.match(ugid):
        raise ValueError("invalid group id '%s'" % ugid)


def expand(entries):
    """{(path, type, ugid, roleid): propagate} of the requested entries; raise ValueError on bad input."""
    wanted = {}
    for index, entry in enumerate(entries):
        where = 'entries[%d]' % index
        path = normalize_acl_path(entry['path'])
        error = acl_path_error(path)
        if error:
            raise ValueError('%s: %s' % (where, error))
        roles = split_list(entry['roles'])
        if not roles:
            raise ValueError('%s: roles is empty' % where)
        for role in roles:
            if not ROLEID_RE.match(role):
                raise ValueError("%s: invalid role id '%s'" % (where, role))
        subjects = []
        for kind, key in KINDS:
            for ugid in split_list(entry.get(key)):
                try:
                    check_subject(kind, ugid)
                except ValueError as exc:
                    raise ValueError('%s: %s' % (where, exc))
                subjects.append((kind, ugid))
        if not subjects:
            raise ValueError('%s: give at least one of users, groups or tokens' % where)
        for kind, ugid in subjects:
            for role in roles:
                key = (path, kind, ugid, role)
                if key in wanted and wanted[key] != entry['propagate']:
                    raise ValueError("%s: %s %s is listed with role %s on %s twice, with different propagate"
                                     % (where, kind, ugid, role, path))
                wanted[key] = entry['propagate']
    return wanted


def as_dicts(atoms):
    return [dict(path=p, roleid=r, type=t, ugid=u, propagate=prop) for (p, t, u, r), prop in sorted(atoms.items())]


def plan_writes(atoms, delete):
    """Group entries into PUT /access/acl calls whose roles x subjects product is exactly the wanted set."""
    by_subject = {}
    for (path, kind, ugid, role), prop in atoms.items():
        by_subject.setdefault((path, None if delete else prop, kind, ugid), set()).add(role)
    calls = {}
    for (path, prop, kind, ugid), roles in by_subject.items():
        calls.setdefault((path, prop, tuple(sorted(roles))), []).append((kind, ugid))
    out = []
    for (path, prop, roles), subjects in sorted(calls.items(), key=lambda c: (c[0][0], str(c[0][1]), c[0][2])):
        body = dict(path=path, roles=','.join(roles))
        for kind, key in KINDS:
            ids = sorted(u for k, u in subjects if k == kind)
            if ids:
                body[key] = ','.join(ids)
        if delete:
            body['delete'] = True
        else:
            body['propagate'] = prop
        out.append(body)
    return out


def main():
    argument_spec = pve_common_argument_spec()
    argument_spec.update(
        entries=dict(type='list', elements='dict', required=True, options=dict(
            path=dict(type='str', required=True),
            roles=dict(type='list', elements='str', required=True, aliases=['role']),
            users=dict(type='list', elements='str', aliases=['user']),
            groups=dict(type='list', elements='str', aliases=['group']),
            tokens=dict(type='list', elements='str', no_log=False, aliases=['token']),
            propagate=dict(type='bool', default=True),
        )),
        exclusive=dict(type='bool', default=False),
        state=dict(type='str', default='present', choices=['present', 'absent']),
    )
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True)
    client = pve_module_init(module)
    state = module.params['state']
    exclusive = module.params['exclusive']
    if exclusive and state == 'absent':
        pve_fail(module, client, 'exclusive=true needs state=present')
    try:
        wanted = expand(module.params['entries'])
    except ValueError as exc:
        pve_fail(module, client, str(exc))
    subjects = set((kind, ugid) for (_path, kind, ugid, _role) in wanted)

    try:
        acl = client.get('/access/acl') or []
    except PveApiError as exc:
        pve_fail(module, client, exc)
    current = {}
    for item in acl:
        key = (normalize_acl_path(item.get('path')), item.get('type'), item.get('ugid'), item.get('roleid'))
        current[key] = from_api_bool(item.get('propagate'), True)
    mine = dict((k, v) for k, v in current.items() if (k[1], k[2]) in subjects)

    if state == 'present':
        add = dict((k, v) for k, v in wanted.items() if current.get(k) != v)
        remove = dict((k, v) for k, v in mine.items() if exclusive and k not in wanted)
        after = dict(mine)
        for key in remove:
            del after[key]
        after.update(wanted)
    else:
        add = {}
        remove = dict((k, current[k]) for k in wanted if k in current)
        after = dict((k, v) for k, v in mine.items() if k not in remove)

    # Grants first: if one fails (unknown role, user or token), nothing has been revoked yet.
    writes = plan_writes(add, False) + plan_writes(remove, True)
    if not module.check_mode:
        try:
            for body in writes:
                client.put('/access/acl', **body)
        except PveApiError as exc:
            pve_fail(module, client, exc, changed=len(client.calls) > 2)

    result = dict(changed=bool(writes), added=as_dicts(add), removed=as_dicts(remove), acl=as_dicts(after),
                  api_calls=client.calls)
    if module._diff:
        result['diff'] = dict(before={'acl': as_dicts(mine)}, after={'acl': as_dicts(after)})
    module.exit_json(**result)


if __name__ == '__main__':
    main()
