# -*- coding: utf-8 -*-
# Copyright (c) Proxmox AI hardening maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
name: firewall_lockout_errors
short_description: Tell whether firewall rules would cut a TCP connection
version_added: 0.1.0
author: Proxmox AI hardening maintainers
description:
  - Given the incoming rules a host will have, lists why a TCP connection from O(client) to O(port) would be cut.
  - Independent of rule order on purpose (ufw keeps rules in the order they were first added, which can differ
    from the order requested) so any C(deny) or C(reject) rule that matches the connection is a problem, and at
    least one C(allow) or C(limit) rule must match it.
  - IPv4-mapped IPv6 client addresses are compared as IPv4.
  - Returns an empty list when the connection stays allowed; invalid rules are reported as problems too.
positional: client, port
options:
  _input:
    description: The rules, a list of dictionaries (see P(proxmox_ai.hardening.firewall_rule_errors#filter)).
    type: list
    elements: dict
    required: true
  client:
    description: The address the connection comes from (the first field of C(SSH_CONNECTION)).
    type: str
    required: true
  port:
    description: The port the connection goes to (the fourth field of C(SSH_CONNECTION)).
    type: int
    required: true
"""

EXAMPLES = r"""
- name: Refuse rules that would cut the current SSH connection
  ansible.builtin.assert:
    that: problems | length == 0
    fail_msg: "{{ problems | join('; ') }}"
  vars:
    problems: "{{ rules | proxmox_ai.hardening.firewall_lockout_errors('192.0.2.10', 22) }}"
    rules:
      - {rule: allow, port: 22, proto: tcp, from: 10.0.0.0/8}
"""

RETURN = r"""
_value:
  description: One message per problem; empty when the connection stays allowed.
  type: list
  elements: str
"""

from ansible_collections.proxmox_ai.hardening.plugins.plugin_utils._firewall import lockout_errors


def firewall_lockout_errors(rules, client, port):
    """Return why ``rules`` would cut a TCP connection from ``client`` to ``port``."""
    return lockout_errors(rules, client, port)


class FilterModule(object):
    """Firewall lock-out check."""

    def filters(self):
        return {"firewall_lockout_errors": firewall_lockout_errors}
