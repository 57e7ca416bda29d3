"""pve_remediate against the simulator with fault injection; the audit trail in a real PostgreSQL."""
from __future__ import annotations

import json
import subprocess
import sys
import uuid

import pytest
import yaml

from .helpers import ROOT, RequestCounter, action_log_env, ansible_env

pytestmark = [pytest.mark.postgres, pytest.mark.pvesim]


def run_module(tmp_path, sim, db, check=False, **args):
    out = tmp_path / f"result-{uuid.uuid4().hex}.json"
    params = {"api_host": sim.host, "api_port": sim.port, "api_token_id": sim.admin_token_id,
              "api_token_secret": sim.admin_token_secret, "ca_path": sim.ca_cert, "login_host": "localhost",
              "login_port": db.server.port, "login_user": db.server.user, "login_password": db.server.password,
              "login_db": db.name, "ssl_mode": "verify-full", "ssl_rootcert": db.server.ssl_ca,
              "verify_timeout": 3, "task_timeout": 30, "actor": "awx:alice"}
    params.update(args)
    play = [{"hosts": "localhost", "gather_facts": False, "tasks": [
        {"name": "remediate", "proxmox_ai.hardening.pve_remediate": params, "register": "r", "ignore_errors": True},
        {"name": "save", "ansible.builtin.copy": {"content": "{{ r | to_json }}", "dest": str(out), "mode": "0600"},
         "check_mode": False}]}]
    book = tmp_path / f"play-{uuid.uuid4().hex}.yml"
    book.write_text(yaml.safe_dump(play))
    cmd = ["ansible-playbook", "-i", "localhost,", "-c", "local", "-e", f"ansible_python_interpreter={sys.executable}",
           str(book)] + (["--check"] if check else [])
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=ansible_env(), check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return json.loads(out.read_text())


def steps(db) -> list:
    return [r[0] for r in db.query("SELECT status FROM action_logs ORDER BY id")]


def guest_of(sim, wanted_status: str, kind: str = "qemu") -> dict:
    return sorted((g for g in sim.api().cluster.resources.get(type="vm")
                   if g["status"] == wanted_status and g["type"] == kind and not g.get("template")),
                  key=lambda g: g["vmid"])[0]


def snapshots(sim, guest) -> list:
    return [s["name"] for s in sim.api().nodes(guest["node"]).qemu(guest["vmid"]).snapshot.get()
            if s["name"] != "current"]


def status(sim, guest) -> str:
    return sim.api().nodes(guest["node"]).qemu(guest["vmid"]).status.current.get()["status"]


def test_start_guest_snapshot_record_execute_verify(pve_sim_fresh, mon_db, tmp_path):
    sim = pve_sim_fresh
    guest = guest_of(sim, "stopped")
    result = run_module(tmp_path, sim, mon_db, action="start_guest", vmid=guest["vmid"],
                        details={"alert_id": 7, "note": "password=hunter2"})
    assert not result.get("failed"), result
    assert result["changed"] is True and result["rolled_back"] is False
    assert status(sim, guest) == "running"
    assert snapshots(sim, guest) == [result["snapshot"]]
    assert steps(mon_db) == ["snapshot", "started", "executed", "verified"]
    rows = mon_db.query("SELECT actor, action_type, entity, details FROM action_logs ORDER BY id")
    assert {(r[0], r[1], r[2]) for r in rows} == {("awx:alice", "start_guest", f"qemu/{guest['vmid']}")}
    assert len({r[3]["run_id"] for r in rows}) == 1 and rows[0][3]["alert_id"] == 7
    assert "hunter2" not in json.dumps([r[3] for r in rows])


@pytest.mark.parametrize("fault", ["verification", "task"])
def test_failed_verification_rolls_back_to_the_snapshot(pve_sim_fresh, mon_db, tmp_path, fault):
    sim = pve_sim_fresh
    guest = guest_of(sim, "stopped")
    args = {"action": "start_guest", "vmid": guest["vmid"]}
    if fault == "verification":
        args["verify_status"] = "paused"  # the guest starts but never reaches what the check wants
    else:
        sim.inject(task={"type": "qmstart", "id": guest["vmid"], "exitstatus": "start failed: simulated"})
    result = run_module(tmp_path, sim, mon_db, **args)
    assert result["failed"] is True and result["rolled_back"] is True
    assert "rolled back to snapshot" in result["msg"]
    assert steps(mon_db) == ["snapshot", "started", "executed", "verification_failed", "rolled_back"]
    # the guest is back in the snapshot's state (it was stopped), the snapshot is kept
    assert status(sim, guest) == "stopped"
    assert snapshots(sim, guest) == [result["snapshot"]]
    tasks = {t["type"]: t["status"] for t in sim.api().nodes(guest["node"]).tasks.get(vmid=guest["vmid"])}
    assert tasks["qmrollback"] == "OK" and tasks["qmsnapshot"] == "OK"
    assert tasks["qmstart"] == ("OK" if fault == "verification" else "start failed: simulated")


def test_snapshot_failure_stops_before_any_change(pve_sim_fresh, mon_db, tmp_path):
    sim = pve_sim_fresh
    guest = guest_of(sim, "stopped")
    sim.inject(task={"type": "qmsnapshot", "id": guest["vmid"], "exitstatus": "snapshot failed: no space"})
    result = run_module(tmp_path, sim, mon_db, action="start_guest", vmid=guest["vmid"])
    assert result["failed"] is True and "nothing was changed" in result["msg"]
    assert steps(mon_db) == ["snapshot"]
    assert mon_db.scalar("SELECT details->>'status' FROM action_logs") == "failed"
    assert status(sim, guest) == "stopped"
    assert not [t for t in sim.api().nodes(guest["node"]).tasks.get(vmid=guest["vmid"]) if t["type"] == "qmstart"]


@pytest.mark.parametrize("action", ["delete_database", "stop_n8n", "modify_workflow", "delete_workflow"])
def test_prohibited_action_is_refused_before_any_call_and_logged(pve_sim_fresh, mon_db, tmp_path, action):
    sim = pve_sim_fresh
    guest = guest_of(sim, "running")
    counter = RequestCounter(sim)
    result = run_module(tmp_path, sim, mon_db, action=action, vmid=guest["vmid"], operation="stop")
    assert result["failed"] is True and result["refused"] is True and result["changed"] is False
    assert "deny list" in result["msg"]
    assert counter.counts() == {"/cluster/status": 0, "/cluster/resources": 0, ".": 0}  # not a single API call
    assert status(sim, guest) == "running" and snapshots(sim, guest) == []
    assert mon_db.query("SELECT action_type, status, details->>'reason' FROM action_logs") == [
        (action, "refused", f"action '{action}' is on the deny list (self-protection)")]


def test_the_monitoring_stack_itself_is_protected(pve_sim_fresh, mon_db, tmp_path):
    sim = pve_sim_fresh
    guest = guest_of(sim, "running")
    sim.edit_guest(guest["vmid"], config={"name": "n8n-prod"})
    result = run_module(tmp_path, sim, mon_db, action="stop_guest", vmid=guest["vmid"])
    assert result["refused"] is True and "monitoring stack" in result["msg"]
    assert steps(mon_db) == ["refused"]
    assert status(sim, guest) == "running" and snapshots(sim, guest) == []
    other = guest_of(sim, "stopped")
    result = run_module(tmp_path, sim, mon_db, action="start_guest", vmid=other["vmid"],
                        protected_vmids=[other["vmid"]])
    assert result["refused"] is True and steps(mon_db) == ["refused", "refused"]
    assert status(sim, other) == "stopped"


def test_check_mode_records_and_changes_nothing(pve_sim_fresh, mon_db, tmp_path):
    sim = pve_sim_fresh
    guest = guest_of(sim, "stopped")
    result = run_module(tmp_path, sim, mon_db, check=True, action="start_guest", vmid=guest["vmid"])
    assert result["changed"] is True and [s["step"] for s in result["steps"]] == [
        "snapshot", "started", "executed", "verified"]
    assert steps(mon_db) == [] and status(sim, guest) == "stopped" and snapshots(sim, guest) == []


def test_remediate_playbook_as_awx_runs_it_with_the_audit_callback(pve_sim_fresh, mon_db, tmp_path):
    """playbooks/remediate.yml with the collector's extra vars, credentials in the environment (AWX style)."""
    sim = pve_sim_fresh
    guest = guest_of(sim, "stopped")
    extra = {"remediation_action": "start_guest", "awx_user_name": "bob", "awx_job_id": 99,
             "remediation_db_host": "localhost", "remediation_db_port": mon_db.server.port,
             "remediation_db_name": mon_db.name, "remediation_db_user": mon_db.server.user,
             "remediation_db_sslrootcert": mon_db.server.ssl_ca, "remediation_verify_timeout": 5,
             "remediation_alert": {"id": 12, "alert_type": "guest_stopped", "entity": f"qemu/{guest['vmid']}",
                                   "entity_type": "qemu", "severity": "critical",
                                   "details": {"node": guest["node"], "vmid": guest["vmid"]}}}
    env = ansible_env(
        PROXMOX_HOST=sim.host, PROXMOX_PORT=str(sim.port), PROXMOX_TOKEN_ID=sim.admin_token_id,
        PROXMOX_TOKEN_SECRET=sim.admin_token_secret, PROXMOX_CA_PATH=sim.ca_cert,
        **action_log_env(mon_db, str(tmp_path / "spool")))
    extra_file = tmp_path / "extra.json"
    extra_file.write_text(json.dumps(dict(extra, remediation_db_password=mon_db.server.password)))
    proc = subprocess.run(["ansible-playbook", "-i", "localhost,", "-c", "local", "-e",
                           f"ansible_python_interpreter={sys.executable}", "-e", f"@{extra_file}",
                           "playbooks/remediate.yml"], capture_output=True, text=True, timeout=300, env=env,
                          check=False, cwd=ROOT)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert status(sim, guest) == "running"
    rows = mon_db.query("SELECT actor, action_type, status FROM action_logs ORDER BY id")
    module_rows = [r for r in rows if r[1] == "start_guest"]
    assert module_rows == [("awx:bob", "start_guest", s) for s in ("snapshot", "started", "executed", "verified")]
    # the callback recorded the play's tasks too, under the same AWX user
    callback_rows = [r for r in rows if r[1] != "start_guest"]
    assert ("awx:bob", "proxmox_ai.hardening.pve_remediate", "changed") in callback_rows
    assert mon_db.scalar("SELECT count(*) FROM action_logs WHERE details->>'awx_job_id' = '99'") == len(rows)
