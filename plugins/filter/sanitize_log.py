# -*- coding: utf-8 -*-
# Copyright (c) Proxmox AI hardening maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
name: sanitize_log
short_description: Remove passwords, tokens and other credentials from text
version_added: 0.1.0
author: Proxmox AI hardening maintainers
description:
  - Replaces the value of every secret it recognises with C(********) and keeps the key, header or scheme in
    front of it, so that the text stays readable.
  - "Recognises: C(password=...) and C(token=...) in any notation (C(key=value), C(key: value), JSON, YAML,
    Python dictionaries, query strings, command-line flags, XML), env-style C(*_PASSWORD=), C(*_TOKEN=),
    C(*_SECRET=), C(API_KEY=) assignments, C(Authorization) headers (C(Bearer), C(Basic),
    C(PVEAPIToken=user@realm!id=SECRET)), C(X-API-Key) headers, Proxmox VE ticket cookies (C(PVEAuthCookie)),
    bare tickets and C(CSRFPreventionToken), Slack tokens (C(xoxb-), C(xoxp-), C(xapp-)) and webhook URLs,
    Twilio credentials (C(ACxxx:token), C(https://SID:TOKEN@api.twilio.com)), PostgreSQL DSN passwords
    (C(password='...') and C(postgresql://user:pass@host)), the password of any URL, SQL C(PASSWORD '...')
    clauses and PEM private keys."
  - Given a dictionary or a list, returns a copy where values under secret-looking keys (C(password),
    C(api_key), C(authorization), C(*_token)...) are masked and every other string is scrubbed as text.
  - The same code (C(plugins/module_utils/_sanitize.py)) scrubs the logs of the Python collector and the
    C(action_log) callback. Sanitizing twice gives the same result as sanitizing once; it never fails.
options:
  _input:
    description: The text to scrub, or a dictionary or list to scrub recursively.
    type: raw
    required: true
seealso:
  - plugin: proxmox_ai.hardening.strong_secret
    plugin_type: test
"""

EXAMPLES = r"""
- name: Store a command's output without the credentials it printed
  ansible.builtin.copy:
    content: "{{ result.stdout | proxmox_ai.hardening.sanitize_log }}"
    dest: /var/log/proxmox-ai/last-run.log
    owner: root
    group: root
    mode: "0640"

- name: Show a connection string safely
  ansible.builtin.debug:
    msg: "{{ 'postgresql://app:s3cr3t@db/prod' | proxmox_ai.hardening.sanitize_log }}"
  # -> postgresql://app:********@db/prod

- name: Scrub a whole API response
  ansible.builtin.debug:
    msg: "{{ {'ticket': 'PVE:root@pam:65A1B2C3::sig', 'username': 'root@pam'} | proxmox_ai.hardening.sanitize_log }}"
  # -> {'ticket': '********', 'username': 'root@pam'}
"""

RETURN = r"""
_value:
  description: The scrubbed text (a string), or the scrubbed copy of a dictionary or list.
  type: raw
"""

from collections.abc import Mapping

from ansible_collections.proxmox_ai.hardening.plugins.module_utils._sanitize import sanitize_log as _sanitize_log
from ansible_collections.proxmox_ai.hardening.plugins.module_utils._sanitize import sanitize_obj


def sanitize_log(data):
    """Scrub ``data``: text through sanitize_log, dictionaries and lists through sanitize_obj."""
    if isinstance(data, Mapping):
        return sanitize_obj(dict(data))
    if isinstance(data, (list, tuple)):
        return sanitize_obj(list(data))
    return _sanitize_log(data)


class FilterModule(object):
    """Secret scrubbing."""

    def filters(self):
        return {"sanitize_log": sanitize_log}
