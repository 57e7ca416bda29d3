# -*- coding: utf-8 -*-
# Copyright: Proxmox AI hardening maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Action plugin of proxmox_ai.hardening.audit_report (documented in plugins/modules/audit_report.py)."""

from __future__ import annotations

import json
import os
import tempfile

from ansible.module_utils.common.text.converters import to_native
from ansible.plugins.action import ActionBase

from ansible_collections.proxmox_ai.hardening.plugins.module_utils import _audit
from ansible_collections.proxmox_ai.hardening.plugins.module_utils._sanitize import sanitize_obj

ARGUMENT_SPEC = dict(
    items=dict(type="list", elements="dict", required=True),
    dest_dir=dict(type="path", required=True),
    basename=dict(type="str", default="audit-report"),
    strict=dict(type="bool", default=False),
    hosts=dict(type="list", elements="str", default=[]),
)


def write_private(path, text):
    """Write ``text`` to ``path`` atomically with mode 0600."""
    directory = os.path.dirname(path)
    fd, tmp = tempfile.mkstemp(prefix=".audit-", dir=directory)
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def assemble(items, hosts, dest_dir, basename, strict):
    """Build, scrub and write the report; returns the task result."""
    report = _audit.build_report(items, hosts=hosts or None)
    report = sanitize_obj(report)
    os.makedirs(dest_dir, mode=0o700, exist_ok=True)
    json_path = os.path.join(dest_dir, basename + ".json")
    md_path = os.path.join(dest_dir, basename + ".md")
    write_private(json_path, json.dumps(report, indent=2, sort_keys=True) + "\n")
    write_private(md_path, _audit.render_markdown(report))
    lines = ["%-13s %-17s %s" % (c["status"], c["id"], c["reason"]) for c in report["checklist"]]
    result = dict(changed=False, json_path=json_path, markdown_path=md_path, summary=report["summary"],
                  checklist=report["checklist"], lines=lines)
    failure = _audit.strict_failure(report, strict)
    if failure:
        result.update(failed=True, msg=failure)
    else:
        result["msg"] = "audit %s: %d pass, %d fail, %d not checked; report in %s" % (
            report["summary"]["result"], report["summary"]["pass"], report["summary"]["fail"],
            report["summary"]["not checked"], md_path)
    return result


class ActionModule(ActionBase):
    """Assemble the audit report on the controller."""

    TRANSFERS_FILES = False
    _requires_connection = False

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        del tmp
        _validation, args = self.validate_argument_spec(argument_spec=ARGUMENT_SPEC)
        try:
            result.update(assemble(args["items"], args["hosts"], args["dest_dir"], args["basename"],
                                   args["strict"]))
        except OSError as exc:
            result.update(failed=True, changed=False, msg="cannot write the audit report: %s" % to_native(exc))
        return result
