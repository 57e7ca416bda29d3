"""The audit role's api_key_auth and rate_limiting items against the real collector API (uvicorn)."""
from __future__ import annotations

import json
import os
import subprocess

import pytest
import yaml

from .test_api import api  # pylint: disable=unused-import

pytestmark = [pytest.mark.postgres, pytest.mark.pvesim]

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))


def test_audit_sees_401_403_and_429(api, tmp_path):  # pylint: disable=redefined-outer-name
    url, key = api[0], api[1]
    play = [{"name": "audit", "hosts": "localhost", "gather_facts": False,
             "vars": {"audit_checks": ["api_key_auth"], "audit_api_url": url, "audit_api_rate_probe_requests": 15,
                      "audit_report_dir": str(tmp_path), "audit_report_basename": "api"},
             "roles": [{"role": "proxmox_ai.hardening.audit"}]}]
    (tmp_path / "play.yml").write_text(yaml.safe_dump(play))
    (tmp_path / "hosts").write_text("localhost ansible_connection=local ansible_python_interpreter=%s\n"
                                    % os.path.join(ROOT, ".venv", "bin", "python"))
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=os.path.join(ROOT, "build", "collections"), ANSIBLE_NOCOLOR="1",
               ANSIBLE_LOCAL_TEMP=str(tmp_path / "tmp"))
    proc = subprocess.run([os.path.join(ROOT, ".venv", "bin", "ansible-playbook"), "-i", str(tmp_path / "hosts"),
                           str(tmp_path / "play.yml")], capture_output=True, text=True, env=env, timeout=300,
                          check=False)
    assert proc.returncode == 0, proc.stdout[-3000:]
    text = (tmp_path / "api.json").read_text()
    assert key not in text
    items = {i["id"]: i for i in json.loads(text)["items"]}
    auth, rate = items["api_key_auth"], items["rate_limiting"]
    assert auth["status"] == "pass", auth
    assert auth["evidence"] == ["GET /nodes without a key -> 401", "GET /nodes with a wrong key -> 403"]
    assert rate["status"] == "pass", rate
    # limit 10/minute per client across routes: the 11th request of this client gets 429
    assert rate["reason"] == "429 after 11 requests", rate
