# -*- coding: utf-8 -*-
# Copyright (c) Proxmox AI hardening maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
name: strong_secret
short_description: Check a secret against the collection's secret policy
version_added: 0.1.0
author: Proxmox AI hardening maintainers
description:
  - True when the value is at least O(min_length) characters long, has an upper-case letter, a lower-case
    letter, a digit and a symbol, uses enough distinct characters, is not a known default or weak value (such as
    C(changeme), C(password), C(admin), C(proxmox), C(postgres), C(n8n), C(letmein), C(qwerty), C(123456)),
    also not when built from one with case changes, l33t substitutions or trivial prefixes and suffixes (such as
    C(Password123!) or C(P@ssw0rd2024)), and has no character that breaks C(.env) files, compose files, DSNs
    or shells (whitespace, quotes, backslash, C($), backquote).
  - With O(policy=token) it checks a third-party token (Slack, Twilio, Proxmox VE token secret) instead, which
    cannot be chosen; no character classes then, but at least O(min_length) characters, no placeholder
    (C(xoxb-your-token), C(<your-token>)), no weak value and no unsafe character.
  - To get the reasons rather than a boolean, the C(secrets) role reports the problems of each refused secret
    by name, never by value.
positional: min_length
options:
  _input:
    description: The secret to check.
    type: raw
    required: true
  min_length:
    description: The minimum length. Defaults to 16 for O(policy=password) and 8 for O(policy=token).
    type: int
  policy:
    description: Which policy to apply.
    type: str
    choices: [password, token]
    default: password
seealso:
  - plugin: proxmox_ai.hardening.sanitize_log
    plugin_type: filter
"""

EXAMPLES = r"""
- name: Refuse a weak database password (the message names the secret, never its value)
  ansible.builtin.assert:
    that: vault_postgres_password is proxmox_ai.hardening.strong_secret
    fail_msg: POSTGRES_PASSWORD does not meet the password policy
  no_log: true

- name: Require 24 characters for the API key
  ansible.builtin.assert:
    that: vault_api_key is proxmox_ai.hardening.strong_secret(24)
  no_log: true

- name: A Slack token is checked as a token, not as a password
  ansible.builtin.assert:
    that: vault_slack_bot_token is proxmox_ai.hardening.strong_secret(policy='token')
  no_log: true
"""

RETURN = r"""
_value:
  description: Whether the value passes the policy.
  type: bool
"""

from ansible.errors import AnsibleFilterError

from ansible_collections.proxmox_ai.hardening.plugins.module_utils._secret_policy import check_secret, check_token


def strong_secret(value, min_length=None, policy="password"):
    """True when ``value`` passes the password (or token) policy."""
    if policy not in ("password", "token"):
        raise AnsibleFilterError("strong_secret: policy must be 'password' or 'token'")
    if min_length is not None:
        try:
            min_length = int(min_length)
        except (TypeError, ValueError):
            raise AnsibleFilterError("strong_secret: min_length must be an integer") from None
    if policy == "token":
        return not check_token(value, 8 if min_length is None else min_length)
    return not check_secret(value, 16 if min_length is None else min_length)


class TestModule(object):
    """Secret policy test."""

    def tests(self):
        return {"strong_secret": strong_secret}
