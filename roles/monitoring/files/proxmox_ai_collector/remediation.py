# -*- coding: utf-8 -*-
# Copyright: (c) 2025, Proxmox AI hardening maintainers
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Remediation callbacks: new alerts of mapped types start a remediation run, with a cooldown.

``remediation.map`` maps an alert type to a remediation action name (or to a
mapping with ``action`` and optionally ``job_template_id`` / ``playbook``).
``mode: awx`` launches an AWX / Automation Controller job template through
its REST API (``POST /api/v2/job_templates/<id>/launch/``); ``mode: runner``
runs ``playbooks/remediate.yml`` locally with ansible-runner.  Either way the
run itself goes through the ``remediation`` role (deny list, snapshot,
record, execute, verify, rollback).  A run per (alert type, entity) at most
every ``cooldown`` seconds: a flapping alert cannot start a storm of runs.
Every decision (launched, failed, cooldown) is recorded in ``action_logs``.
"""

from __future__ import annotations

import threading
import time

import requests

from .config import read_secret_file
from .logsafe import get_logger, sanitize_log

LOG = get_logger("remediation")


class Dispatcher:
    """Decides, launches (in a background thread) and records remediation runs."""

    def __init__(self, settings: dict, record, clock=time.monotonic):
        self.settings = settings
        self.mode = settings.get("mode", "none")
        self.cooldown = float(settings.get("cooldown", 900))
        self.mapping = dict(settings.get("map") or {})
        self.record = record          # callable(event dict): appended to action_logs
        self.clock = clock
        self.last = {}
        self.threads = []
        self.lock = threading.Lock()

    def _action(self, alert_type: str):
        spec = self.mapping.get(alert_type)
        if spec is None:
            return None
        return dict(spec) if isinstance(spec, dict) else {"action": str(spec)}

    def handle(self, alert: dict, alert_id=None) -> str:
        """Called for every newly opened alert. Returns what happened (for tests and logs)."""
        if self.mode == "none":
            return "disabled"
        spec = self._action(alert["alert_type"])
        if spec is None:
            return "unmapped"
        key = (alert["alert_type"], alert["entity"])
        now = self.clock()
        details = {"alert_id": alert_id, "alert_type": alert["alert_type"], "action": spec["action"],
                   "mode": self.mode, "dedup_key": alert["key"]}
        with self.lock:
            last = self.last.get(key)
            if last is not None and now - last < self.cooldown:
                details["cooldown_left"] = int(self.cooldown - (now - last))
                self.record({"actor": "collector", "action_type": "remediation_dispatch", "entity": alert["entity"],
                             "status": "cooldown", "details": details})
                LOG.info("remediation %s for %s skipped: cooldown (%ds left)", spec["action"], alert["entity"],
                         details["cooldown_left"])
                return "cooldown"
            self.last[key] = now
        extra_vars = {
            "remediation_action": spec["action"],
            "remediation_alert": {"id": alert_id, "alert_type": alert["alert_type"], "entity": alert["entity"],
                                  "entity_type": alert["entity_type"], "severity": alert["severity"],
                                  "details": alert.get("details") or {}},
        }
        thread = threading.Thread(target=self._launch, args=(spec, extra_vars, alert, details),
                                  name="remediation", daemon=True)
        thread.start()
        self.threads.append(thread)
        self.threads = [t for t in self.threads if t.is_alive()]
        return "launched"

    def _launch(self, spec: dict, extra_vars: dict, alert: dict, details: dict) -> None:
        try:
            if self.mode == "awx":
                details.update(self._launch_awx(spec, extra_vars))
            else:
                details.update(self._launch_runner(spec, extra_vars))
            status = "launched" if details.get("ok", True) else "failed"
        except Exception as exc:  # pylint: disable=broad-except  # a failed launch must not stop the collector
            status = "failed"
            details["error"] = sanitize_log(f"{type(exc).__name__}: {exc}")[:2000]
        details.pop("ok", None)
        LOG.info("remediation %s for %s: %s", spec["action"], alert["entity"], status)
        self.record({"actor": "collector", "action_type": "remediation_dispatch", "entity": alert["entity"],
                     "status": status, "details": details})

    def _launch_awx(self, spec: dict, extra_vars: dict) -> dict:
        awx = self.settings.get("awx") or {}
        template = int(spec.get("job_template_id") or awx.get("job_template_id") or 0)
        if not awx.get("url") or not template:
            raise ValueError("remediation.awx.url and a job_template_id are required for mode awx")
        token = read_secret_file(awx["token_file"], "AWX token") if awx.get("token_file") else ""
        verify = awx.get("ca_cert") or bool(awx.get("verify_ssl", True))
        url = f"{str(awx['url']).rstrip('/')}/api/v2/job_templates/{template}/launch/"
        with requests.Session() as session:
            session.trust_env = False
            resp = session.post(url, json={"extra_vars": extra_vars}, timeout=float(awx.get("timeout", 15)),
                                verify=verify, headers={"Authorization": f"Bearer {token}"} if token else {})
        result = {"job_template_id": template, "http_status": resp.status_code, "ok": resp.status_code in (200, 201)}
        if result["ok"]:
            result["job_id"] = (resp.json() or {}).get("job")
        return result

    def _launch_runner(self, spec: dict, extra_vars: dict) -> dict:
        import ansible_runner  # pylint: disable=import-outside-toplevel,import-error

        runner = self.settings.get("runner") or {}
        run = ansible_runner.run(private_data_dir=runner.get("private_data_dir"),
                                 playbook=spec.get("playbook") or runner.get("playbook", "remediate.yml"),
                                 extravars=extra_vars, quiet=True, timeout=int(runner.get("timeout", 1800)),
                                 rotate_artifacts=int(runner.get("rotate_artifacts", 0)))
        return {"runner_status": run.status, "rc": run.rc, "ok": run.rc == 0}

    def join(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        for thread in list(self.threads):
            thread.join(max(0.0, deadline - time.monotonic()))
