"""incident_report.yml and incident_restore.yml, run with the real ansible-playbook.

incident_report inserts into ``incidents`` of a throwaway PostgreSQL 15 with
the shipped schema; incident_restore rolls a guest of the Proxmox VE API
simulator back to a snapshot. Both must leave their ``action_logs`` rows. The
connection settings come from the environment, exactly as the AWX credential
types inject them (PG*, PROXMOX_*).
"""
from __future__ import annotations

import os
import subprocess
import sys

import pytest

from ansible_collections.proxmox_ai.hardening.plugins.module_utils._migrations import apply_migrations

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
MIGRATIONS = os.path.join(ROOT, "roles", "postgresql", "files", "migrations")
COLLECTIONS = os.path.join(ROOT, "build", "collections")


def _env(pg_server, db, **extra):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PROXMOX_", "PG"))}
    env.update(ANSIBLE_COLLECTIONS_PATH=COLLECTIONS, ANSIBLE_NOCOLOR="1", ANSIBLE_RETRY_FILES_ENABLED="0",
               ANSIBLE_LOCALHOST_WARNING="0", ANSIBLE_INVENTORY_UNPARSED_WARNING="0",
               PGHOST="localhost", PGPORT=str(pg_server.port), PGDATABASE=db, PGUSER=pg_server.user,
               PGPASSWORD=pg_server.password, PGSSLMODE="verify-full", PGSSLROOTCERT=pg_server.ssl_ca)
    env.update(extra)
    return env


def _play(name, env, *extra_vars):
    cmd = ["ansible-playbook", os.path.join(ROOT, "playbooks", name), "-e",
           f"ansible_python_interpreter={sys.executable}"]
    for item in extra_vars:
        cmd += ["-e", item]
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600, check=False)


def _rows(conn, sql, args=()):
    with conn.cursor() as cur:
        cur.execute(sql, args)
        rows = cur.fetchall()
    conn.commit()
    return rows


@pytest.fixture(name="schema")
def fixture_schema(pg_server, pg_db):
    conn = pg_server.connect(pg_db)
    apply_migrations(conn, MIGRATIONS)
    conn.autocommit = True
    yield conn
    conn.close()


def _action_logs(conn, action):
    return _rows(conn, "SELECT actor, entity, status, details FROM action_logs WHERE action_type = %s ORDER BY id",
                 (action,))


@pytest.mark.postgres
def test_report_inserts_the_incident(pg_server, pg_db, schema):
    symptoms = "Unauthorized access attempt'); DROP TABLE incidents; --"
    proc = _play("incident_report.yml", _env(pg_server, pg_db),
                 '{"incident_alert_id": "security-001", "incident_entity_type": "system", "incident_entity": "n8n",'
                 f' "incident_symptoms": "{symptoms}", "incident_actions_taken": "isolated n8n",'
                 ' "incident_resolved": true, "awx_user_name": "operator1"}')
    assert proc.returncode == 0, proc.stdout + proc.stderr
    rows = _rows(schema, "SELECT id, alert_id, entity_type, entity, symptoms, root_cause, actions_taken, "
                         "resolved_at IS NOT NULL FROM incidents")
    assert len(rows) == 1
    incident_id, alert, etype, entity, stored, cause, actions, resolved = rows[0]
    # Bound parameters: the quote and the DROP are data, not SQL.
    assert (alert, etype, entity, stored, cause, actions, resolved) == (
        "security-001", "system", "n8n", symptoms, None, "isolated n8n", True)
    assert f"Incident {incident_id} recorded" in proc.stdout
    logs = _action_logs(schema, "incident_report")
    assert [r[2] for r in logs] == ["started", "success"]
    assert logs[0][0] == "ansible:operator1"  # the AWX user who launched the job
    assert logs[1][1] == f"incidents/{incident_id}"


@pytest.mark.postgres
def test_report_refuses_an_empty_report(pg_server, pg_db, schema):
    proc = _play("incident_report.yml", _env(pg_server, pg_db), "incident_alert_id=x")
    assert proc.returncode != 0
    assert "incident_symptoms are required" in proc.stdout
    assert _rows(schema, "SELECT count(*) FROM incidents") == [(0,)]


def _sim_env(pg_server, pg_db, sim, token_id=None):
    return _env(pg_server, pg_db, PROXMOX_HOST=sim.host, PROXMOX_PORT=str(sim.port),
                PROXMOX_TOKEN_ID=token_id or sim.admin_token_id, PROXMOX_TOKEN_SECRET=sim.admin_token_secret,
                PROXMOX_CA_PATH=sim.ca_cert)


def _guest_with_snapshot(sim, snapname):
    api = sim.api()
    guest = next(g for g in api.cluster.resources.get(type="vm") if g["type"] == "qemu" and not g.get("template"))
    node, vmid = guest["node"], guest["vmid"]
    vm = api.nodes(node).qemu(vmid)
    sim.wait_task(vm.snapshot.post(snapname=snapname))
    before = vm.config.get()
    # The incident: the guest's configuration changes after the snapshot.
    sim.edit_guest(vmid, config={"name": "tampered", "memory": 512})
    assert vm.config.get()["name"] == "tampered"
    return vm, vmid, before


@pytest.mark.postgres
@pytest.mark.pvesim
def test_restore_rolls_the_guest_back(pg_server, pg_db, schema, pve_sim_fresh):
    vm, vmid, before = _guest_with_snapshot(pve_sim_fresh, "before-incident")
    proc = _play("incident_restore.yml", _sim_env(pg_server, pg_db, pve_sim_fresh),
                 f"incident_pve_vmid={vmid}", "incident_snapshot=before-incident")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    after = vm.config.get()
    assert after["name"] == before["name"] and after["memory"] == before["memory"]
    current = next(s for s in vm.snapshot.get() if s["name"] == "current")
    assert current["parent"] == "before-incident"
    logs = _action_logs(schema, "incident_restore")
    assert [r[2] for r in logs] == ["started", "success"]
    assert logs[1][1] == f"qemu/{vmid}@before-incident"
    assert logs[1][3]["upid"].startswith("UPID:") and ":qmrollback:" in logs[1][3]["upid"]
    assert pve_sim_fresh.admin_token_secret not in proc.stdout


@pytest.mark.postgres
@pytest.mark.pvesim
def test_restore_reports_a_failed_rollback_task(pg_server, pg_db, schema, pve_sim_fresh):
    vm, vmid = _guest_with_snapshot(pve_sim_fresh, "before-incident")[:2]
    pve_sim_fresh.inject(task={"type": "qmrollback", "id": str(vmid), "count": 1, "exitstatus": "rollback failed"})
    proc = _play("incident_restore.yml", _sim_env(pg_server, pg_db, pve_sim_fresh),
                 f"incident_pve_vmid={vmid}", "incident_snapshot=before-incident")
    assert proc.returncode != 0
    assert "rollback failed" in proc.stdout
    assert vm.config.get()["name"] == "tampered"
    assert [r[2] for r in _action_logs(schema, "incident_restore")] == ["started", "failed"]


@pytest.mark.postgres
@pytest.mark.pvesim
def test_restore_refuses_an_unknown_snapshot(pg_server, pg_db, schema, pve_sim_fresh):
    vmid = _guest_with_snapshot(pve_sim_fresh, "before-incident")[1]
    proc = _play("incident_restore.yml", _sim_env(pg_server, pg_db, pve_sim_fresh),
                 f"incident_pve_vmid={vmid}", "incident_snapshot=nope")
    assert proc.returncode != 0
    assert "no such snapshot (has: before-incident)" in proc.stdout
    # Nothing was attempted, so nothing was recorded.
    assert _action_logs(schema, "incident_restore") == []
