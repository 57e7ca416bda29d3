# -*- coding: utf-8 -*-
# Copyright (c) Proxmox AI hardening maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
name: firewall_rule_errors
short_description: List the problems in a list of firewall rules
version_added: 0.1.0
author: Proxmox AI hardening maintainers
description:
  - Checks every rule of a list the way ufw would read it, with the Python standard library only
    (no netaddr needed on the controller).
  - Rule keys that are checked when present are C(rule) (allow, deny, reject, limit), C(port) (1-65535 or a range C(N:M)),
    C(proto) (tcp, udp, any), C(from) (C(any) or an IPv4/IPv6 address or network without host bits set) and
    C(state) (present, absent). C(origin) names the variable a rule came from in the messages.
  - Returns an empty list when every rule is valid.
options:
  _input:
    description: The rules, a list of dictionaries.
    type: list
    elements: dict
    required: true
"""

EXAMPLES = r"""
- name: Refuse invalid rules before anything changes
  ansible.builtin.assert:
    that: problems | length == 0
    fail_msg: "{{ problems | join('; ') }}"
  vars:
    problems: "{{ [{'rule': 'allow', 'port': 5678, 'proto': 'tcp', 'from': '10.0.0.0/33'}] | proxmox_ai.hardening.firewall_rule_errors }}"
"""

RETURN = r"""
_value:
  description: One message per problem; empty when every rule is valid.
  type: list
  elements: str
"""

from ansible_collections.proxmox_ai.hardening.plugins.plugin_utils._firewall import rule_errors


def firewall_rule_errors(rules):
    """Return the problems in ``rules``."""
    return rule_errors(rules)


class FilterModule(object):
    """Firewall rule validation."""

    def filters(self):
        return {"firewall_rule_errors": firewall_rule_errors}
