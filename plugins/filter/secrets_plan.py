# -*- coding: utf-8 -*-
# Copyright (c) Proxmox AI hardening maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
name: secrets_plan
short_description: Decide the value of every secret of the stack (used by the secrets role)
version_added: 0.1.0
author: Proxmox AI hardening maintainers
description:
  - Given the secret definitions, returns the value to deliver for each secret and why, without writing anything.
  - A supplied value (from the vault) is used as is and checked against the policy; a weak, known-default or
    shared supplied value is refused by name. An existing value on the host is kept unless rotation is forced,
    it is older than O(rotation_days), or it is weak or shared; then a new one is generated if the secret may be
    generated. A missing secret is generated with O(length) characters from letters, digits and O(symbols), all
    four classes guaranteed; a missing third-party token is reported as missing (refused when required).
  - Not deterministic (it draws new random values); call it once, in a C(set_fact) task with C(no_log).
  - The result holds the values. Only its C(refused), C(report), C(metadata), C(actions), C(changed) and
    C(replaced) keys are free of values and may be shown.
options:
  _input:
    description:
      - The secret definitions, a list of dictionaries with C(name) (an environment variable name) and optional
        C(policy) (V(password) or V(token)), C(generate), C(required), C(length), C(min_length), C(services),
        C(file), C(env), C(consumer), C(rotate), C(owner), C(group), C(mode), C(description).
    type: list
    elements: dict
    required: true
  supplied:
    description: Values given by the user (vault), by secret name.
    type: dict
    default: {}
  env_text:
    description: The current content of the C(.env) file, or V(null) when there is none.
    type: str
  files:
    description: The current content of the secret files, by file name.
    type: dict
    default: {}
  metadata:
    description: "The rotation metadata: C({NAME: {set_at: ISO 8601 time, source: ...}})."
    type: dict
    default: {}
  now:
    description: The current time, ISO 8601 (UTC).
    type: str
  rotate:
    description: V(true) to rotate every secret that may be rotated, or a list of names to rotate.
    type: raw
    default: false
  rotation_days:
    description: Age in days from which a secret is due for rotation.
    type: int
    default: 90
  length:
    description: Length of generated secrets.
    type: int
    default: 32
  min_length:
    description: Minimum length of passwords.
    type: int
    default: 16
  symbols:
    description: The symbols generated secrets draw from.
    type: str
    default: "-_.="
  delivery:
    description: Where the values go, which decides where existing values are read first and the C(.env) content.
    type: str
    choices: [env, files, swarm]
    default: files
"""

EXAMPLES = r"""
- name: Plan the secrets
  ansible.builtin.set_fact:
    plan: >-
      {{ definitions | proxmox_ai.hardening.secrets_plan(supplied=vault_values, env_text=env_text,
         files=current_files, metadata=meta, now=now(utc=true).isoformat(), delivery='files') }}
  no_log: true
  vars:
    definitions:
      - name: POSTGRES_PASSWORD
        services: [postgres]
      - name: SLACK_BOT_TOKEN
        policy: token
"""

RETURN = r"""
_value:
  description: The plan.
  type: dict
  contains:
    values:
      description: Secret name -> value to deliver (secret).
      type: dict
    actions:
      description: Secret name -> V(kept), V(generated), V(rotated), V(supplied) or V(missing).
      type: dict
    reasons:
      description: Secret name -> why it was rotated (V(forced), V(age), V(weak), V(reused)).
      type: dict
    changed:
      description: Names whose value is new or different.
      type: list
      elements: str
    replaced:
      description: Names that had a value and get a different one (their consumers must be updated).
      type: list
      elements: str
    refused:
      description: Secret name -> list of problems (never the value).
      type: dict
    cannot_rotate:
      description: Names due or asked for rotation that are supplied or third-party tokens.
      type: list
      elements: str
    metadata:
      description: The new rotation metadata (names and times only).
      type: dict
    env_content:
      description: The new C(.env) content (secret), or V(null) to leave the file alone.
      type: str
    report:
      description: Per secret, C(name), C(action), C(source), C(set_at), C(age_days), C(due), C(reason).
      type: list
      elements: dict
    definitions:
      description: The definitions with every default filled in.
      type: list
      elements: dict
"""

from ansible.errors import AnsibleFilterError

from ansible_collections.proxmox_ai.hardening.plugins.module_utils._secret_plan import PlanError, plan_secrets


def secrets_plan(definitions, supplied=None, env_text=None, files=None, metadata=None, now=None, rotate=False,
                 rotation_days=90, length=32, min_length=16, symbols="-_.=", delivery="files"):
    """Decide every secret's value (see plugins/module_utils/_secret_plan.py)."""
    try:
        return plan_secrets(definitions, supplied=supplied, env_text=env_text, files=files, metadata=metadata,
                            now=now, rotate=rotate, rotation_days=int(rotation_days), length=int(length),
                            min_length=int(min_length), symbols=symbols, delivery=delivery)
    except (PlanError, ValueError, TypeError) as exc:
        raise AnsibleFilterError("secrets_plan: %s" % exc) from None


class FilterModule(object):
    """Secret planning."""

    def filters(self):
        return {"secrets_plan": secrets_plan}
