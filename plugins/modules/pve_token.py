#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: Proxmox AI hardening maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: pve_token
short_description: Manage a Proxmox VE API token, its rotation and its secret
version_added: 0.1.0
description:
  - Creates, updates, rotates or deletes an API token of a Proxmox VE user (C(/access/users/<userid>/token/<name>)).
  - The token is named either by its full id O(token_id) (C(user@realm!name)) or by O(userid) and O(token_name);
    a malformed id fails before any API call.
  - The secret exists only once, in the answer to the call that creates or regenerates the token. The module returns
    it as RV(secret) (register the result in a task with C(no_log=true)) or, with O(secret_dest), writes it straight
    into a file with mode C(0600) on the host that runs the module and does not return it.
  - Rotation keeps the token id, its privilege separation and its ACL entries and replaces only the secret; it happens
    when O(regenerate=true), when the token is older than O(max_age), or when O(secret_dest) is missing or empty.
  - Proxmox VE does not record when a token was created. The module records it itself, as a marker
    C([ansible:created=YYYY-MM-DDTHH:MM:SSZ]) at the end of the token's comment, whenever it creates or regenerates
    the token; O(comment) is compared without the marker. This keeps the creation time on the server, where every
    controller (AWX, a laptop, CI) sees the same value.
  - Why this module exists - the C(community.proxmox) collection has no module for API tokens at all.
author:
  - Proxmox AI hardening maintainers (@proxmox-ai)
options:
  token_id:
    description:
      - Full token id C(user@realm!name), for example V(proxmox-ai@pam!monitoring).
      - Mutually exclusive with O(userid) and O(token_name).
    type: str
  userid:
    description: The user that owns the token, C(name@realm). Used together with O(token_name).
    type: str
    aliases: [user]
  token_name:
    description: Token name, a letter followed by letters, digits, C(.), C(-) or C(_). Used together with O(userid).
    type: str
    aliases: [tokenid, name]
  privsep:
    description:
      - Privilege separation. With V(true) the token only has the privileges granted to the token itself by ACLs,
        limited to those of its user. With V(false) it has all privileges of its user.
    type: bool
    default: true
  expire:
    description:
      - Expiration as seconds since the epoch; V(0) means never. When omitted, an existing token keeps its value and a new
        one gets the server default (the user's expiration).
    type: int
  comment:
    description:
      - Comment of the token (without the creation marker the module adds). When omitted, the comment is not managed.
    type: str
  regenerate:
    description:
      - Replace the secret now (the token must already exist; a new token always gets a fresh secret).
      - Every run with V(true) rotates again and reports a change.
    type: bool
    default: false
  max_age:
    description:
      - Rotate the secret when the token is older than this, for example V(90d), V(12h), V(2w), or plain seconds.
      - A token without a creation marker (made outside this module) has an unknown age and is rotated.
    type: str
  secret_dest:
    description:
      - Write a newly created or regenerated secret into this file, mode C(0600), on the host that runs the module
        (the controller with C(delegate_to=localhost), else the target), instead of returning it.
      - The file contains the secret followed by a newline. It is replaced atomically.
      - When the token exists but this file is missing or empty, the secret is regenerated to fill it.
    type: path
  secret_dest_owner:
    description: Owner of O(secret_dest) (name or uid); default the user running the module.
    type: str
  secret_dest_group:
    description: Group of O(secret_dest) (name or gid); default the primary group of the user running the module.
    type: str
  state:
    description: Whether the token should exist. Deleting a token also removes its ACL entries (Proxmox VE behaviour).
    type: str
    choices: [present, absent]
    default: present
extends_documentation_fragment:
  - proxmox_ai.hardening.pve
  - proxmox_ai.hardening.pve.actiongroup
  - proxmox_ai.hardening.pve.attributes
notes:
  - In check mode no secret is created, so RV(secret) is never returned.
  - The diff never shows the secret, only whether it would be replaced.
seealso:
  - module: proxmox_ai.hardening.pve_user
  - module: proxmox_ai.hardening.pve_acl
"""

EXAMPLES = r"""
- name: Privilege-separated token for the collector, secret into a file on the controller
  proxmox_ai.hardening.pve_token:
    api_host: pve1.example.org
    api_token_id: "root@pam!ansible"
    api_token_secret: "{{ vault_pve_token_secret }}"
    token_id: "proxmox-ai@pam!monitoring"
    comment: Proxmox AI collector
    max_age: 90d
    secret_dest: /etc/proxmox-ai/pve-token.secret
  delegate_to: localhost

- name: Same token named by its parts; keep the secret in memory for a template
  proxmox_ai.hardening.pve_token:
    userid: proxmox-ai@pam
    token_name: monitoring
  delegate_to: localhost
  register: pve_token
  no_log: true

- name: Rotate now
  proxmox_ai.hardening.pve_token:
    token_id: "proxmox-ai@pam!monitoring"
    regenerate: true
    secret_dest: /etc/proxmox-ai/pve-token.secret
  delegate_to: localhost

- name: Remove the token
  proxmox_ai.hardening.pve_token:
    token_id: "proxmox-ai@pam!monitoring"
    state: absent
  delegate_to: localhost
"""

RETURN = r"""
token:
  description: The token after the task (as it would be, in check mode), without its secret; empty when absent.
  returned: always
  type: dict
  contains:
    token_id:
      description: Full token id.
      type: str
      sample: proxmox-ai@pam!monitoring
    userid:
      description: Owner.
      type: str
      sample: proxmox-ai@pam
    token_name:
      description: Token name.
      type: str
      sample: monitoring
    privsep:
      description: Privilege separation.
      type: bool
      sample: true
    expire:
      description: Expiration (seconds since the epoch, 0 = never).
      type: int
      sample: 0
    comment:
      description: Comment without the creation marker.
      type: str
      sample: Proxmox AI collector
    created:
      description: Creation time recorded by this module (UTC, ISO 8601), or null when unknown.
      type: str
      sample: "2025-06-01T12:00:00Z"
    age_seconds:
      description: Age of the secret in seconds, or null when unknown.
      type: int
      sample: 86400
secret:
  description:
    - The new secret (a UUID). Returned only when the task created or regenerated the token, not in check mode,
      and only without O(secret_dest). It cannot be read from the server later. Use C(no_log=true) on the task.
  returned: when a secret was generated and O(secret_dest) is not set
  type: str
secret_dest:
  description: The file the new secret was written to.
  returned: when a secret was generated and O(secret_dest) is set
  type: str
  sample: /etc/proxmox-ai/pve-token.secret
regenerated:
  description: Whether the secret of an existing token was (or would be, in check mode) replaced.
  returned: always
  type: bool
rotation_reason:
  description: Why the secret was replaced (V(requested), V(max_age), V(unknown_age), V(secret_dest_missing)), or null.
  returned: always
  type: str
  sample: max_age
api_calls:
  description: The API requests made, in order (C(METHOD /path)); one read, then the writes.
  returned: always
  type: list
  elements: str
  sample: ["GET /access/users/proxmox-ai@pam/token", "POST /access/users/proxmox-ai@pam/token/monitoring"]
"""

import calendar
import grp
import os
import pwd
import re
import tempfile
import time

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.proxmox_ai.hardening.plugins.module_utils._pve import (
    PveApiError,
    check_token_name,
    check_userid,
    from_api_bool,
    parse_token_id,
    pve_common_argument_spec,
    pve_fail,
    pve_module_init,
)

MARKER_RE = re.compile(r'\s*\[ansible:created=(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ)\]\s*$')
TIME_FORMAT = '%Y-%m-%dT%H:%M:%SZ'
UNITS = {'': 1, 's': 1, 'm': 60, 'h': 3600, 'd': 86400, 'w': 604800}


def parse_age(text):
    match = re.match(r'^\s*(\d+)\s*([smhdw]?)\s*$', text or '')
    if not match:
        raise ValueError("max_age '%s' is not a duration like 90d, 12h, 2w, 30m or a number of seconds" % text)
    return int(match.group(1)) * UNITS[match.group(2)]


def split_comment(comment):
    """(user comment, created epoch or None) from the stored comment."""
    comment = comment or ''
    match = MARKER_RE.search(comment)
    if not match:
        return comment, None
    created = calendar.timegm(time.strptime(match.group(1), TIME_FORMAT))
    return comment[:match.start()], created


def join_comment(comment, created):
    stamp = '[ansible:created=%s]' % time.strftime(TIME_FORMAT, time.gmtime(created))
    return '%s %s' % (comment, stamp) if comment else stamp


def view(userid, name, privsep, expire, comment, created, now):
    return {
        'token_id': '%s!%s' % (userid, name),
        'userid': userid,
        'token_name': name,
        'privsep': privsep,
        'expire': expire,
        'comment': comment,
        'created': time.strftime(TIME_FORMAT, time.gmtime(created)) if created is not None else None,
        'age_seconds': int(now - created) if created is not None else None,
    }


def secret_file_missing(path):
    try:
        with open(path, 'r') as handle:
            return not handle.read().strip()
    except (IOError, OSError):
        return True


def write_secret(module, path, secret):
    owner, group = module.params['secret_dest_owner'], module.params['secret_dest_group']
    uid = gid = -1
    try:
        if owner is not None:
            uid = int(owner) if owner.isdigit() else pwd.getpwnam(owner).pw_uid
        if group is not None:
            gid = int(group) if group.isdigit() else grp.getgrnam(group).gr_gid
    except KeyError as exc:
        raise OSError('unknown owner or group for secret_dest: %s' % exc)
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise OSError("the folder of secret_dest '%s' does not exist" % path)
    fd, tmp = tempfile.mkstemp(prefix='.pve_token.', dir=folder)
    try:
        os.fchmod(fd, 0o600)
        if uid != -1 or gid != -1:
            os.fchown(fd, uid, gid)
        os.write(fd, (secret + '\n').encode('utf-8'))
        os.fsync(fd)
        os.close(fd)
        fd = None
        os.rename(tmp, path)
    finally:
        if fd is not None:
            os.close(fd)
        if os.path.exists(tmp):
            os.unlink(tmp)


def main():
    argument_spec = pve_common_argument_spec()
    argument_spec.update(
        token_id=dict(type='str', no_log=False),
        userid=dict(type='str', aliases=['user']),
        token_name=dict(type='str', no_log=False, aliases=['tokenid', 'name']),
        privsep=dict(type='bool', default=True),
        expire=dict(type='int'),
        comment=dict(type='str'),
        regenerate=dict(type='bool', default=False),
        max_age=dict(type='str'),
        secret_dest=dict(type='path', no_log=False),
        secret_dest_owner=dict(type='str', no_log=False),
        secret_dest_group=dict(type='str', no_log=False),
        state=dict(type='str', default='present', choices=['present', 'absent']),
    )
    module = AnsibleModule(
        argument_spec=argument_spec,
        supports_check_mode=True,
        mutually_exclusive=[('token_id', 'userid'), ('token_id', 'token_name')],
        required_one_of=[('token_id', 'userid')],
        required_together=[('userid', 'token_name')],
    )
    client = pve_module_init(module)
    params = module.params
    try:
        if params['token_id']:
            userid, name = parse_token_id(params['token_id'])
        else:
            userid, name = params['userid'], params['token_name']
            check_userid(userid)
            check_token_name(name)
        max_age = parse_age(params['max_age']) if params['max_age'] is not None else None
    except ValueError as exc:
        pve_fail(module, client, str(exc))
    if params['expire'] is not None and params['expire'] < 0:
        pve_fail(module, client, 'expire must be 0 (never) or seconds since the epoch')
    if params['regenerate'] and params['state'] == 'absent':
        pve_fail(module, client, 'regenerate=true needs state=present')

    base = '/access/users/%s/token' % userid
    path = '%s/%s' % (base, name)
    now = int(time.time())
    try:
        tokens = client.get(base) or []
    except PveApiError as exc:
        user_missing = exc.status == 500 and 'no such user' in (exc.reason or '').lower()
        if exc.status == 403 and not user_missing:
            # Proxmox VE answers a bare 403 for the tokens of a user that does not exist (its permission check
            # needs the user); only on this error path, ask for the user itself to tell the two apart.
            try:
                client.get('/access/users/%s' % userid)
            except PveApiError as probe:
                user_missing = probe.status == 500 and 'no such user' in (probe.reason or '').lower()
        if user_missing:
            if params['state'] == 'absent':
                module.exit_json(changed=False, token={}, regenerated=False, rotation_reason=None, api_calls=client.calls)
            if module.check_mode:
                # An earlier task of the same check run may be about to create the user.
                module.warn("user '%s' does not exist yet; a real run fails unless it is created first" % userid)
                after = view(userid, name, params['privsep'], params['expire'] or 0, params['comment'] or '', now, now)
                result = dict(changed=True, token=after, regenerated=False, rotation_reason=None, api_calls=client.calls)
                if module._diff:
                    result['diff'] = dict(before={}, after=dict((k, v) for k, v in after.items() if k != 'age_seconds'))
                module.exit_json(**result)
            pve_fail(module, client, "user '%s' does not exist: create it first (proxmox_ai.hardening.pve_user)" % userid)
        pve_fail(module, client, exc)
    current = None
    for entry in tokens:
        if entry.get('tokenid') == name:
            current = entry

    result = dict(changed=False, regenerated=False, rotation_reason=None)
    before = {}
    if current is not None:
        old_comment, created = split_comment(current.get('comment'))
        before = view(userid, name, from_api_bool(current.get('privsep'), True), int(current.get('expire') or 0),
                      old_comment, created, now)

    secret = None
    try:
        if params['state'] == 'absent':
            after = {}
            if current is not None:
                result['changed'] = True
                if not module.check_mode:
                    client.delete(path)
        elif current is None:
            comment = params['comment'] or ''
            after = view(userid, name, params['privsep'], params['expire'] or 0, comment, now, now)
            result['changed'] = True
            if not module.check_mode:
                answer = client.post(path, privsep=params['privsep'], expire=params['expire'],
                                     comment=join_comment(comment, now)) or {}
                secret = answer.get('value')
                if not secret:
                    pve_fail(module, client, 'the server created %s!%s but returned no secret' % (userid, name))
        else:
            old_comment, created = before['comment'], split_comment(current.get('comment'))[1]
            reason = None
            if params['regenerate']:
                reason = 'requested'
            elif max_age is not None and created is None:
                reason = 'unknown_age'
            elif max_age is not None and now - created > max_age:
                reason = 'max_age'
            elif params['secret_dest'] and secret_file_missing(params['secret_dest']):
                reason = 'secret_dest_missing'
            comment = old_comment if params['comment'] is None else params['comment']
            stamp = now if reason else created
            body = {}
            if params['privsep'] != before['privsep']:
                body['privsep'] = params['privsep']
            if params['expire'] is not None and params['expire'] != before['expire']:
                body['expire'] = params['expire']
            if comment != old_comment or reason:
                body['comment'] = join_comment(comment, stamp) if stamp is not None else comment
            after = view(userid, name, params['privsep'], before['expire'] if params['expire'] is None else params['expire'],
                         comment, stamp, now)
            if reason:
                body['regenerate'] = True
                result.update(regenerated=True, rotation_reason=reason)
            if body:
                result['changed'] = True
                if not module.check_mode:
                    answer = client.put(path, **body)
                    if reason:
                        secret = answer.get('value') if isinstance(answer, dict) else None
                        if not secret:
                            pve_fail(module, client, 'the server regenerated %s!%s but returned no secret' % (userid, name))
    except PveApiError as exc:
        pve_fail(module, client, exc)

    if secret is not None:
        if params['secret_dest']:
            try:
                write_secret(module, params['secret_dest'], secret)
            except (IOError, OSError) as exc:
                pve_fail(module, client, 'the new secret of %s!%s could not be written to %s: %s. The token exists on the '
                         'server; rerun with regenerate=true once the file can be written'
                         % (userid, name, params['secret_dest'], exc), changed=True)
            result['secret_dest'] = params['secret_dest']
        else:
            result['secret'] = secret

    result['token'] = after
    result['api_calls'] = client.calls
    if module._diff:
        diff_before = dict(before)
        diff_after = dict(after)
        for item in (diff_before, diff_after):
            item.pop('age_seconds', None)
        if result['regenerated']:
            diff_after['secret'] = 'regenerated (%s)' % result['rotation_reason']
        result['diff'] = dict(before=diff_before, after=diff_after)
    module.exit_json(**result)


if __name__ == '__main__':
    main()
