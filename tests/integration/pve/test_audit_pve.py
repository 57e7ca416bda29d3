"""The audit role's proxmox_token item against the simulator: effective privileges of the collector's token."""
from __future__ import annotations

import json

import pytest

pytestmark = pytest.mark.pvesim


def _audit(ansible, sim, tmp_path, token_id, check=False):
    conn = dict(api_host=sim.host, api_port=sim.port, api_token_id=sim.admin_token_id,
                api_token_secret=sim.admin_token_secret, ca_path=str(sim.ca_cert))
    run = ansible.run(roles=[{"role": "proxmox_ai.hardening.audit"}], check=check, connection=False, play_vars={
        "audit_checks": ["proxmox_token"], "audit_pve_api": conn, "audit_pve_token_id": token_id,
        "audit_report_dir": str(tmp_path / "report"), "audit_report_basename": "check" if check else "run"})
    assert run.rc == 0, run.output[-4000:]
    assert run.changed == 0
    path = tmp_path / "report" / ("check.json" if check else "run.json")
    text = path.read_text()
    assert sim.admin_token_secret not in text
    report = json.loads(text)
    return next(c for c in report["checklist"] if c["id"] == "proxmox_token"), report


def test_least_privilege_token_passes_and_admin_token_fails(ansible, sim, uid, tmp_path):
    user = f"audit{uid}@pve"
    api = sim.api()
    api.access.roles.post(roleid=f"Audit-{uid}", privs="VM.Audit,Sys.Audit,Datastore.Audit")
    api.access.users.post(userid=user)
    api.access.users(user).token("mon").post(privsep=0)
    api.access.acl.put(path="/", roles=f"Audit-{uid}", users=user)

    item, report = _audit(ansible, sim, tmp_path, f"{user}!mon")
    assert item["status"] == "pass", item
    evidence = next(i for i in report["items"] if i["id"] == "proxmox_token")["evidence"]
    assert evidence[0].endswith(": Datastore.Audit, Sys.Audit, VM.Audit")
    assert report["summary"]["not checked"] == 14  # every other check disabled

    checked, _report = _audit(ansible, sim, tmp_path, f"{user}!mon", check=True)
    assert checked["status"] == "pass"

    api.access.acl.put(path="/", roles="PVEVMAdmin", users=user)
    item, _report = _audit(ansible, sim, tmp_path, f"{user}!mon")
    assert item["status"] == "fail"
    assert "more than least privilege: " in item["reason"] and "VM.PowerMgmt" in item["reason"]


def test_password_identity_fails(ansible, sim, uid, tmp_path):
    user = f"pw{uid}@pve"
    api = sim.api()
    api.access.users.post(userid=user)
    api.access.acl.put(path="/", roles="PVEAuditor", users=user)
    item, _report = _audit(ansible, sim, tmp_path, user)
    assert item["status"] == "fail" and "is not an API token" in item["reason"]
