"""The audit_report action plugin's assembly: files 0600, scrubbed, strict mode."""
from __future__ import annotations

import json
import os
import stat

from ansible_collections.proxmox_ai.hardening.plugins.action.audit_report import assemble


def _items():
    return [
        {"id": "firewall", "host": "db1", "status": "fail", "reason": "unexpected ALLOW rules: 8080/tcp",
         "evidence": ["allowed: 22/tcp, 8080/tcp"]},
        {"id": "postgresql_ssl", "host": "db1", "status": "pass", "reason": "refused",
         "evidence": ["sslmode=disable: FATAL ... postgresql://app:S3cret-Value-1@db1/x"]},
        {"id": "default_passwords", "host": "db1", "status": "pass", "reason": "no evidence", "evidence": []},
    ]


def test_reports_are_private_scrubbed_and_complete(tmp_path):
    dest = tmp_path / "audit"
    result = assemble(_items(), ["db1", "proxy1"], str(dest), "report", strict=False)
    assert result["changed"] is False and not result.get("failed")
    for path in (result["json_path"], result["markdown_path"]):
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
        with open(path, encoding="utf-8") as handle:
            assert "S3cret-Value-1" not in handle.read()
    assert stat.S_IMODE(os.stat(dest).st_mode) == 0o700
    with open(result["json_path"], encoding="utf-8") as handle:
        report = json.load(handle)
    assert report["hosts"] == ["db1", "proxy1"]
    statuses = {c["id"]: c["status"] for c in report["checklist"]}
    assert statuses["firewall"] == "fail"
    assert statuses["postgresql_ssl"] == "pass"
    assert statuses["default_passwords"] == "not checked"  # claimed pass without evidence
    assert result["summary"]["failed"] == ["firewall"]
    assert len(result["lines"]) == 15


def test_strict_fails_after_writing(tmp_path):
    result = assemble(_items(), [], str(tmp_path), "r", strict=True)
    assert result["failed"] is True
    assert result["msg"] == "security audit failed: firewall"
    assert os.path.exists(result["json_path"]) and os.path.exists(result["markdown_path"])
    ok = assemble(_items()[1:], [], str(tmp_path), "r", strict=True)
    assert not ok.get("failed")


def test_rewrite_keeps_mode(tmp_path):
    path = tmp_path / "r.json"
    path.write_text("old")
    os.chmod(path, 0o644)
    result = assemble(_items(), [], str(tmp_path), "r", strict=False)
    assert stat.S_IMODE(os.stat(result["json_path"]).st_mode) == 0o600
