#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: Proxmox AI hardening maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: audit_report
short_description: Assemble the security audit report on the controller
version_added: 0.1.0
description:
  - Action plugin that runs on the controller. It takes the items every host's C(audit) role collected, validates
    them, aggregates them per checklist item of the hardening guide, scrubs every string with the same code as the
    P(proxmox_ai.hardening.sanitize_log#filter) filter, and writes a JSON and a Markdown report with mode C(0600).
  - An item is C(pass), C(fail) or C(not checked). A C(pass) without evidence is turned into C(not checked); an
    unknown status into C(fail). A checklist item fails when it fails on any host, passes when it passes on at least
    one host and fails on none, and is C(not checked) otherwise (also when no host ran its check).
  - With O(strict=true) the task fails when any checklist item fails, after the reports are written.
  - The audit changes nothing on the managed hosts, so the task always reports RV(ignore:changed=false); it writes
    the reports in check mode too, because they are the audit's output.
options:
  items:
    description:
      - The items, each a dictionary with C(id), C(status), C(reason), C(evidence) (list of strings) and C(host).
    type: list
    elements: dict
    required: true
  dest_dir:
    description: Directory on the controller for the reports; created with mode C(0700) when missing.
    type: path
    required: true
  basename:
    description: File name of the reports without extension (C(.json) and C(.md) are added).
    type: str
    default: audit-report
  strict:
    description: Fail when any checklist item fails.
    type: bool
    default: false
  hosts:
    description: The audited hosts, to list in the report (also those that reported nothing).
    type: list
    elements: str
    default: []
attributes:
  action:
    description: Runs as an action plugin on the controller.
    support: full
  async:
    description: Cannot run asynchronously.
    support: none
  check_mode:
    description: Runs the same in check mode (writes the reports, reports no change).
    support: full
  diff_mode:
    description: Returns no diff.
    support: none
  platform:
    description: The controller's platform.
    support: full
    platforms: posix
author:
  - Proxmox AI hardening maintainers (@proxmox-ai)
seealso:
  - plugin: proxmox_ai.hardening.sanitize_log
    plugin_type: filter
"""

EXAMPLES = r"""
- name: Write the report and fail on any failed item
  proxmox_ai.hardening.audit_report:
    items: "{{ ansible_play_hosts | map('extract', hostvars, 'audit_items') | flatten }}"
    dest_dir: "{{ playbook_dir }}/../build/audit"
    strict: true
  run_once: true
  delegate_to: localhost
"""

RETURN = r"""
json_path:
  description: Path of the JSON report.
  returned: always
  type: str
  sample: /srv/audit/audit-report.json
markdown_path:
  description: Path of the Markdown report.
  returned: always
  type: str
  sample: /srv/audit/audit-report.md
summary:
  description: Counts per status, the ids of the failed checklist items and the overall result.
  returned: always
  type: dict
  sample: {"pass": 5, "fail": 1, "not checked": 9, "total": 15, "failed": ["firewall"], "result": "fail"}
checklist:
  description: One entry per checklist item with C(id), C(title), C(status), C(reason) and C(hosts).
  returned: always
  type: list
  elements: dict
lines:
  description: One line per checklist item, for the play output.
  returned: always
  type: list
  elements: str
"""
