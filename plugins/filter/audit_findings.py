# -*- coding: utf-8 -*-
# Copyright: Proxmox AI hardening maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
name: audit_findings
short_description: Findings of the security audit on secrets, compose configs, rotation metadata and ufw
version_added: 0.1.0
author: Proxmox AI hardening maintainers
description:
  - Turns raw evidence the C(audit) role collected into findings. Findings name secrets, never quote their values.
  - O(kind=env) parses a C(.env) text into a dictionary (name -> value); keep it under C(no_log).
  - O(kind=secrets) checks a dictionary of secrets (name -> value) against the collection's secret policy (see
    P(proxmox_ai.hardening.strong_secret#test)) and finds reused values; returns C(checked) (names), C(weak)
    (name -> problems) and C(reused) (lists of names sharing a value).
  - O(kind=compose) looks at a rendered C(docker compose config) text; O(secrets) maps names to values. Returns
    C(leaked) (names whose value appears in the text), C(literal) (secret-looking environment keys with a literal
    value) and C(file_keys) (the C(*_FILE) keys in use).
  - O(kind=rotation) reads the C(secrets) role's rotation metadata (name -> C(set_at)) and returns C(ages)
    (name -> days), C(overdue) (names at least O(max_days) old) and C(unknown) (names without a time).
  - O(kind=ufw) parses C(ufw status verbose) and returns C(active), C(default_incoming), C(allowed) and
    C(unexpected) (ALLOW rules whose target is not in O(expected)).
options:
  _input:
    description: The evidence (text or dictionary, depending on O(kind)).
    type: raw
    required: true
  kind:
    description: Which evidence O(_input) is.
    type: str
    choices: [env, secrets, compose, rotation, ufw]
    required: true
  secrets:
    description: For O(kind=compose), the secrets (name -> value) that must not appear.
    type: dict
  max_days:
    description: For O(kind=rotation), the rotation age in days.
    type: int
    default: 90
  expected:
    description: For O(kind=ufw), the allowed targets such as C(22/tcp) or C(8000:8004/tcp).
    type: list
    elements: str
  min_length:
    description: For O(kind=secrets), the minimum password length.
    type: int
    default: 16
seealso:
  - plugin: proxmox_ai.hardening.strong_secret
    plugin_type: test
"""

EXAMPLES = r"""
- name: Weak or reused secrets of the .env file, by name
  ansible.builtin.set_fact:
    findings: "{{ env_text | proxmox_ai.hardening.audit_findings('env') | proxmox_ai.hardening.audit_findings('secrets') }}"
  no_log: true

- name: Unexpected open ports
  ansible.builtin.debug:
    msg: "{{ (ufw.stdout | proxmox_ai.hardening.audit_findings('ufw', expected=['22/tcp'])).unexpected }}"
"""

RETURN = r"""
_value:
  description: The findings; see the description for the keys of each O(kind).
  type: dict
"""

from ansible.errors import AnsibleFilterError

from ansible_collections.proxmox_ai.hardening.plugins.module_utils import _audit, _secret_plan


def audit_findings(data, kind, secrets=None, max_days=90, expected=None, min_length=16):
    """Dispatch on ``kind``; see DOCUMENTATION."""
    if kind == "env":
        return _secret_plan.parse_env(data if isinstance(data, str) else "")
    if kind == "secrets":
        return _audit.secret_findings(data if isinstance(data, dict) else {}, min_length=min_length)
    if kind == "compose":
        return _audit.compose_findings(data if isinstance(data, str) else "", secrets or {})
    if kind == "rotation":
        return _audit.secret_ages(data if isinstance(data, dict) else {}, max_days)
    if kind == "ufw":
        return _audit.ufw_findings(data if isinstance(data, str) else "", expected or [])
    raise AnsibleFilterError("audit_findings: unknown kind %r" % (kind,))


class FilterModule(object):
    """Audit findings."""

    def filters(self):
        return {"audit_findings": audit_findings}
