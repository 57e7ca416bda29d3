"""The collector against the Proxmox VE API simulator and a real PostgreSQL 15 (no mocks).

What is asserted is what ends up in the database (rows, alert states,
timestamps) and what the simulator really served (its request log).
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys

import pytest
import yaml

from .helpers import ROOT, RequestCounter, ansible_env, run_cli, wait_for, write_config, write_nodes_file

pytestmark = [pytest.mark.postgres, pytest.mark.pvesim]


@pytest.fixture()
def modules(collector_pkg):  # pylint: disable=unused-argument
    from proxmox_ai_collector import collector, config, logsafe  # pylint: disable=import-outside-toplevel
    return collector, config, logsafe


def make(modules, tmp_path, sim, db, **overrides):
    collector, config = modules[0], modules[1]
    return collector.Collector(config.load(write_config(str(tmp_path), sim, db, **overrides)))


def counts(db) -> tuple:
    return tuple(db.scalar(f"SELECT count(*) FROM {t}") for t in ("node_samples", "guest_samples", "storage_samples"))


def alerts(db, status: str | None = None) -> dict:
    sql = "SELECT dedup_key, status, occurrences, severity, resolved_at IS NOT NULL FROM alerts"
    rows = db.query(sql + (" WHERE status = %s" if status else ""), (status,) if status else None)
    return {r[0]: r[1:] for r in rows}


def test_one_poll_is_two_api_calls_and_one_bulk_write(modules, pvesim_factory, mon_db, tmp_path):
    sim = pvesim_factory(nodes=4, guests_per_node=25, storages=3)
    col = make(modules, tmp_path, sim, mon_db)
    counter = RequestCounter(sim)
    summary = col.poll_once()
    col.poll_once()
    # exactly /cluster/status and /cluster/resources per poll, nothing per guest or per node
    assert counter.counts() == {"/cluster/status": 2, "/cluster/resources": 2, ".": 0}
    assert summary["api_calls"] == 2 and summary["written"] is True
    assert counts(mon_db) == (2 * 4, 2 * 100, 2 * 4 * 3)
    # the samples carry the API's figures: compare one guest with what the simulator reports
    res = {g["vmid"]: g for g in sim.api().cluster.resources.get(type="vm")}
    vmid, maxmem, name, gtype, node = mon_db.query(
        "SELECT vmid, mem_total, name, guest_type, node FROM guest_samples ORDER BY created_at DESC, vmid LIMIT 1")[0]
    assert (maxmem, name, gtype, node) == (res[vmid]["maxmem"], res[vmid]["name"], res[vmid]["type"], res[vmid]["node"])
    assert mon_db.scalar("SELECT count(DISTINCT created_at) FROM guest_samples") == 2
    assert mon_db.scalar("SELECT count(*) FROM node_samples WHERE details->>'cluster' = 'pvesim'") == 8
    col.shutdown()


def test_alerts_raised_deduplicated_and_resolved(modules, pve_sim_fresh, mon_db, tmp_path):
    sim = pve_sim_fresh
    running = sorted((g["vmid"], g["type"]) for g in sim.api().cluster.resources.get(type="vm")
                     if g["status"] == "running" and g["node"] == "pve1")
    victim, kind = running[0]
    col = make(modules, tmp_path, sim, mon_db, thresholds={"storage_warning": 1, "storage_critical": 99.9})
    col.poll_once()
    first = alerts(mon_db)
    storage_keys = {k for k in first if ":storage_full:" in k}
    # 2 storages: local (per node, 3 entities) and local-lvm (per node, 3): all above 1 %
    assert len(storage_keys) == 6 and all(v[0] == "open" and v[2] == "warning" for k, v in first.items()
                                          if k in storage_keys)
    assert not {k for k in first if ":storage_full:" not in k}

    sim.inject(node="pve3", online=False)
    sim.inject(quorate=False)
    sim.edit_guest(victim, status="stopped")
    col.poll_once()
    col.poll_once()
    now = alerts(mon_db)
    assert now["pve:pvesim:node_offline:pve3"][:2] == ("open", 2)
    assert now["pve:pvesim:quorum_lost:pvesim"][:2] == ("open", 2)
    assert now[f"pve:pvesim:guest_stopped:{kind}/{victim}"][:2] == ("open", 2)
    # de-duplication: one row per condition however many polls saw it
    assert mon_db.scalar("SELECT count(*) FROM alerts") == len(now)
    assert mon_db.scalar("SELECT max(occurrences) FROM alerts WHERE alert_type = 'storage_full'") == 3

    sim.clear_faults()
    sim.edit_guest(victim, status="running")
    col.poll_once()
    after = alerts(mon_db)
    for key in ("pve:pvesim:node_offline:pve3", "pve:pvesim:quorum_lost:pvesim"):
        assert after[key][0] == "resolved" and after[key][3] is True
    assert [v[0] for k, v in after.items() if ":guest_stopped:" in k] == ["resolved"]
    assert all(after[k][0] == "open" for k in storage_keys)  # still above the threshold
    col.shutdown()


def test_memory_threshold_and_guests_of_offline_node_keep_their_state(modules, pve_sim_fresh, mon_db, tmp_path):
    sim = pve_sim_fresh
    col = make(modules, tmp_path, sim, mon_db,
               thresholds={"node_memory_warning": 1, "node_memory_critical": 99.9, "guest_memory_warning": 99.8,
                           "guest_memory_critical": 99.9})
    col.poll_once()
    mem = {k for k, v in alerts(mon_db).items() if ":memory_high:" in k and v[0] == "open"}
    assert mem == {"pve:pvesim:memory_high:pve1", "pve:pvesim:memory_high:pve2", "pve:pvesim:memory_high:pve3"}
    on_pve2 = sorted(g["vmid"] for g in sim.api().cluster.resources.get(type="vm")
                     if g["status"] == "running" and g["node"] == "pve2" and not g.get("template"))
    sim.edit_guest(on_pve2[0], status="stopped")
    col.poll_once()
    key = [k for k in alerts(mon_db, "open") if ":guest_stopped:" in k]
    assert len(key) == 1
    # the node goes offline: its guests are 'unknown' -> the guest alert neither resolves nor duplicates
    sim.inject(node="pve2", online=False)
    col.poll_once()
    state = alerts(mon_db)
    assert state[key[0]][0] == "open"
    assert state["pve:pvesim:memory_high:pve2"][0] == "resolved"  # offline node: memory condition gone
    assert state["pve:pvesim:node_offline:pve2"][0] == "open"
    col.shutdown()


def test_proxmox_outage_is_retried_recorded_and_survived(modules, pvesim_factory, mon_db, tmp_path):
    sim = pvesim_factory(nodes=2, guests_per_node=5, storages=1)
    col = make(modules, tmp_path, sim, mon_db, retries=2)
    # a transient failure is absorbed by the retry: same poll, one extra call
    sim.inject(fail={"count": 1, "status": 500, "path": "^/cluster/resources"})
    summary = col.poll_once()
    assert summary["failed"] == 0 and summary["api_calls"] == 3
    assert counts(mon_db) == (2, 10, 2)
    # the API is gone: the poll is recorded as failed, nothing crashes
    sim.stop()
    summary = col.poll_once()
    assert summary["failed"] == 1 and summary["written"] is True
    failed = alerts(mon_db)["pve:pvesim:poll_failed:pvesim"]
    assert failed[0] == "open"
    col.poll_once()
    assert alerts(mon_db)["pve:pvesim:poll_failed:pvesim"][:2] == ("open", 2)
    assert counts(mon_db) == (2, 10, 2)
    sim.start()
    summary = col.poll_once()
    assert summary["failed"] == 0
    assert alerts(mon_db)["pve:pvesim:poll_failed:pvesim"][0] == "resolved"
    assert counts(mon_db) == (4, 20, 4)
    assert col.failed_polls == 2
    col.shutdown()


def test_database_outage_buffers_in_memory_and_loses_nothing(modules, pve_sim_fresh, mon_db, tmp_path):
    col = make(modules, tmp_path, pve_sim_fresh, mon_db)
    col.poll_once()
    mon_db.server.ctl("stop")
    try:
        pve_sim_fresh.inject(node="pve2", online=False)
        for _round in range(3):
            summary = col.poll_once()
            assert summary["written"] is False
        assert col.store.buffered_rows == 3 * 39
    finally:
        mon_db.server.ctl("start")
    summary = col.poll_once()
    assert summary["written"] is True and col.store.buffered_rows == 0
    assert counts(mon_db) == (5 * 3, 5 * 30, 5 * 6)
    # every buffered poll kept its own timestamp, and the alert raised during the outage arrived
    assert mon_db.scalar("SELECT count(DISTINCT created_at) FROM node_samples") == 5
    assert alerts(mon_db)["pve:pvesim:node_offline:pve2"][:2] == ("open", 4)
    col.shutdown()


def test_database_outage_overflow_goes_to_the_spool_and_survives_a_restart(modules, pve_sim_fresh, mon_db, tmp_path):
    spool = str(tmp_path / "spool.jsonl")
    buffer = {"max_rows": 100, "spool_file": spool}
    col = make(modules, tmp_path, pve_sim_fresh, mon_db, buffer=buffer)
    mon_db.server.ctl("stop")
    try:
        for _round in range(4):
            col.poll_once()
        # 39 rows per poll, 100 allowed in memory: the two oldest polls went to the spool (0600)
        assert len(col.store.pending) == 2
        assert oct(os.stat(spool).st_mode & 0o777) == "0o600"
        col.shutdown()  # database still down: the memory buffer is spooled too
        with open(spool, encoding="utf-8") as handle:
            assert len(handle.readlines()) == 4
        assert col.store.stats["dropped_rows"] == 0
    finally:
        mon_db.server.ctl("start")
    again = make(modules, tmp_path, pve_sim_fresh, mon_db, buffer=buffer)
    again.poll_once()
    assert counts(mon_db) == (5 * 3, 5 * 30, 5 * 6)
    assert not os.path.exists(spool)
    times = [r[0] for r in mon_db.query("SELECT DISTINCT created_at FROM node_samples ORDER BY 1")]
    assert len(times) == 5
    again.shutdown()


def test_without_spool_an_overflow_is_counted_not_hidden(modules, pve_sim_fresh, mon_db, tmp_path):
    col = make(modules, tmp_path, pve_sim_fresh, mon_db, buffer={"max_rows": 50})
    mon_db.server.ctl("stop")
    try:
        for _round in range(3):
            col.poll_once()
    finally:
        mon_db.server.ctl("start")
    assert col.store.stats["dropped_batches"] == 2 and col.store.stats["dropped_rows"] == 78
    col.poll_once()
    assert counts(mon_db) == (2 * 3, 2 * 30, 2 * 6)
    col.shutdown()


def test_endpoints_of_one_cluster_are_failover_not_extra_polls(modules, pvesim_factory, mon_db, tmp_path):
    sim = pvesim_factory(nodes=3, guests_per_node=2, storages=1)
    user, token = sim.admin_token_id.split("!", 1)
    base = {"port": sim.port, "user": user, "token_name": token, "token_value": sim.admin_token_secret,
            "verify_ssl": True, "ca_cert": sim.ca_cert}
    nodes = str(tmp_path / "nodes.yml")
    with open(nodes, "w", encoding="utf-8") as handle:
        # pve1 is unreachable (closed port); pve2 and pve3 answer for the same cluster
        yaml.safe_dump({"nodes": [dict(base, name="pve1", host="127.0.0.1", port=1, cluster="lab"),
                                  dict(base, name="pve2", host="127.0.0.1", cluster="lab"),
                                  dict(base, name="pve3", host="localhost", cluster="lab")]}, handle)
    col = make(modules, tmp_path, None, mon_db, nodes_file=nodes, retries=0)
    assert len(col.clients) == 1
    counter = RequestCounter(sim)
    assert col.poll_once()["failed"] == 0
    col.poll_once()
    # pve1 (closed port) failed over to pve2 once; each poll is 2 calls to one endpoint of the cluster
    assert counter.counts() == {"/cluster/status": 2, "/cluster/resources": 2, ".": 0}
    assert counts(mon_db) == (6, 12, 6)
    assert mon_db.scalar("SELECT count(*) FROM node_samples WHERE details->>'cluster' = 'lab'") == 6
    col.shutdown()


def test_tls_verification_is_on_by_default(modules, pve_sim_fresh, mon_db, tmp_path):
    """Without the cluster's CA the collector refuses the simulator's certificate: a failed poll, no data."""
    nodes = write_nodes_file(str(tmp_path / "nodes.yml"), pve_sim_fresh)
    with open(nodes, encoding="utf-8") as handle:
        data = yaml.safe_load(handle)
    del data["nodes"][0]["ca_cert"], data["nodes"][0]["verify_ssl"]
    with open(nodes, "w", encoding="utf-8") as handle:
        yaml.safe_dump(data, handle)
    col = make(modules, tmp_path, None, mon_db, nodes_file=nodes, retries=0)
    summary = col.poll_once()
    assert summary["failed"] == 1
    assert "CERTIFICATE_VERIFY_FAILED" in alerts_messages(mon_db)
    assert counts(mon_db) == (0, 0, 0)
    col.shutdown()


def alerts_messages(db) -> str:
    return " ".join(r[0] for r in db.query("SELECT message FROM alerts"))


def test_cli_runs_logs_nothing_secret_and_stops_cleanly_on_sigterm(collector_pkg, pve_sim_fresh, mon_db, tmp_path):
    config = write_config(str(tmp_path), pve_sim_fresh, mon_db, state_file=str(tmp_path / "state.json"))
    checked = run_cli(collector_pkg, "check-config", "--config", config)
    assert checked.returncode == 0, checked.stderr
    env = dict(os.environ, PYTHONPATH=collector_pkg)
    with subprocess.Popen([sys.executable, "-m", "proxmox_ai_collector", "collect", "--config", config],
                          stderr=subprocess.PIPE, text=True, env=env) as proc:
        try:
            wait_for(lambda: mon_db.scalar("SELECT count(DISTINCT created_at) FROM node_samples") >= 2, 30,
                     what="two polls")
            # the database goes away and comes back while the service runs
            mon_db.server.ctl("stop")
            try:
                wait_for(lambda: '"database": "unreachable"' in (tmp_path / "state.json").read_text(), 30,
                         what="a poll with the database down")
            finally:
                mon_db.server.ctl("start")
            wait_for(lambda: '"database": "ok"' in (tmp_path / "state.json").read_text(), 30, what="recovery")
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(timeout=30) == 0
        finally:
            if proc.poll() is None:
                proc.kill()
        log = proc.stderr.read()
    assert "collector stopped" in log and "unreachable" in log and "reachable again" in log
    assert pve_sim_fresh.admin_token_secret not in log
    assert mon_db.server.password not in log
    polls = mon_db.scalar("SELECT count(DISTINCT created_at) FROM node_samples")
    assert mon_db.scalar("SELECT count(*) FROM guest_samples") == polls * 30


def test_logging_scrubs_secrets(modules):
    logsafe = modules[2]
    import io  # pylint: disable=import-outside-toplevel
    import logging  # pylint: disable=import-outside-toplevel
    stream = io.StringIO()
    logsafe.setup_logging("INFO", stream)
    logsafe.get_logger("t").error("connect host=db password=%s via %s", "hunter2-very-secret",
                                  "PVEAPIToken=u@pam!mon=0b6c6f5e-1111-2222-3333-444455556666")
    try:
        raise ValueError("dsn postgresql://app:s3cr3t-pass@db/x")
    except ValueError:
        logsafe.get_logger("t").exception("failed")
    text = stream.getvalue()
    assert "hunter2-very-secret" not in text and "0b6c6f5e-1111" not in text and "s3cr3t-pass" not in text
    assert "password=********" in text and "u@pam!mon=********" in text
    logging.getLogger().handlers = []


def test_bad_configuration_is_refused_with_a_clear_message(collector_pkg, tmp_path):
    path = tmp_path / "collector.yml"
    path.write_text("nodes_file: /nonexistent/nodes.yml\n")
    result = run_cli(collector_pkg, "check-config", "--config", str(path))
    assert result.returncode == 2 and "cannot read the node configuration /nonexistent/nodes.yml" in result.stderr
    path.write_text("pol_interval: 3\n")
    result = run_cli(collector_pkg, "check-config", "--config", str(path))
    assert result.returncode == 2 and "unknown setting 'pol_interval'" in result.stderr


class FakeAwx:  # pylint: disable=too-few-public-methods
    """A local HTTP server answering AWX's job template launch endpoint (records what it got)."""

    def __init__(self):
        import http.server  # pylint: disable=import-outside-toplevel
        import threading  # pylint: disable=import-outside-toplevel
        calls = self.calls = []

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):  # pylint: disable=invalid-name
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                calls.append((self.path, self.headers.get("Authorization"), json.loads(body)))
                payload = json.dumps({"job": 1000 + len(calls)}).encode()
                self.send_response(201)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args):  # pylint: disable=arguments-differ
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def test_mapped_alert_launches_an_awx_job_once_per_cooldown(modules, pve_sim_fresh, mon_db, tmp_path):
    sim = pve_sim_fresh
    awx = FakeAwx()
    token = tmp_path / "awx-token"
    token.write_text("awx-oauth-token-value\n")
    try:
        col = make(modules, tmp_path, sim, mon_db, remediation={
            "mode": "awx", "cooldown": 3600, "map": {"guest_stopped": "start_guest"},
            "awx": {"url": awx.url, "token_file": str(token), "job_template_id": 5}})
        victim = next(g for g in sim.api().cluster.resources.get(type="vm") if g["status"] == "running")
        col.poll_once()
        sim.edit_guest(victim["vmid"], status="stopped")
        col.poll_once()
        col.dispatcher.join(10)
        # flapping: back up (resolved), down again (a new alert) -> inside the cooldown, no second job
        sim.edit_guest(victim["vmid"], status="running")
        col.poll_once()
        sim.edit_guest(victim["vmid"], status="stopped")
        col.poll_once()
        col.dispatcher.join(10)
        col.poll_once()  # writes the dispatch records of the last poll
        col.shutdown()
    finally:
        awx.close()
    assert len(awx.calls) == 1
    path, auth, body = awx.calls[0]
    assert path == "/api/v2/job_templates/5/launch/" and auth == "Bearer awx-oauth-token-value"
    assert body["extra_vars"]["remediation_action"] == "start_guest"
    alert = body["extra_vars"]["remediation_alert"]
    assert alert["alert_type"] == "guest_stopped" and alert["details"]["vmid"] == victim["vmid"]
    assert alert["entity"] == f"{victim['type']}/{victim['vmid']}"
    rows = mon_db.query("SELECT actor, action_type, entity, status, details->>'job_id' FROM action_logs ORDER BY id")
    assert [r[3] for r in rows] == ["launched", "cooldown"]
    assert rows[0][:3] == ("collector", "remediation_dispatch", f"{victim['type']}/{victim['vmid']}")
    assert rows[0][4] == "1001"
    assert mon_db.scalar("SELECT count(*) FROM alerts WHERE alert_type = 'guest_stopped'") == 2


def test_mapped_alert_runs_remediate_yml_locally_with_ansible_runner(modules, pve_sim_fresh, mon_db, tmp_path):
    """The whole loop: guest stops -> alert -> ansible-runner runs playbooks/remediate.yml -> guest runs again."""
    sim = pve_sim_fresh
    data = tmp_path / "runner"
    (data / "project").mkdir(parents=True)
    (data / "inventory").mkdir()
    (data / "env").mkdir()
    shutil.copy(os.path.join(ROOT, "playbooks", "remediate.yml"), data / "project" / "remediate.yml")
    db_vars = {"remediation_db_host": "localhost", "remediation_db_port": mon_db.server.port,
               "remediation_db_name": mon_db.name, "remediation_db_user": mon_db.server.user,
               "remediation_db_password": mon_db.server.password, "remediation_db_sslrootcert": mon_db.server.ssl_ca,
               "remediation_verify_timeout": 10, "ansible_connection": "local",
               "ansible_python_interpreter": sys.executable}
    (data / "inventory" / "hosts.yml").write_text(yaml.safe_dump({"all": {"hosts": {"localhost": db_vars}}}))
    env = ansible_env(PROXMOX_HOST=sim.host, PROXMOX_PORT=str(sim.port), PROXMOX_TOKEN_ID=sim.admin_token_id,
                      PROXMOX_TOKEN_SECRET=sim.admin_token_secret, PROXMOX_CA_PATH=sim.ca_cert)
    (data / "env" / "envvars").write_text(yaml.safe_dump(
        {k: v for k, v in env.items() if k.startswith(("PROXMOX_", "ANSIBLE_", "PATH"))}))
    col = make(modules, tmp_path, sim, mon_db, remediation={
        "mode": "runner", "map": {"guest_stopped": "start_guest"},
        "runner": {"private_data_dir": str(data), "playbook": "remediate.yml", "timeout": 300}})
    victim = sorted((g for g in sim.api().cluster.resources.get(type="vm")
                     if g["status"] == "running" and g["type"] == "qemu"), key=lambda g: g["vmid"])[0]
    col.poll_once()
    sim.edit_guest(victim["vmid"], status="stopped")
    col.poll_once()
    col.dispatcher.join(240)
    col.poll_once()
    col.shutdown()
    running = sim.api().nodes(victim["node"]).qemu(victim["vmid"]).status.current.get()["status"]
    rows = mon_db.query("SELECT actor, action_type, status, details->>'alert_type' FROM action_logs ORDER BY id")
    steps = [r[2] for r in rows if r[1] == "start_guest"]
    assert steps == ["snapshot", "started", "executed", "verified"], rows
    assert {r[3] for r in rows if r[1] == "start_guest"} == {"guest_stopped"}
    assert [r[2] for r in rows if r[1] == "remediation_dispatch"] == ["launched"]
    assert running == "running"
    # and the collector resolved the alert once the guest was back
    assert mon_db.scalar("SELECT status FROM alerts WHERE alert_type = 'guest_stopped'") == "resolved"


def test_a_restarted_collector_keeps_alerts_it_cannot_re_derive(modules, pve_sim_fresh, mon_db, tmp_path):
    """A guest that stopped before the restart stays alerted (the new process never saw it running)."""
    sim = pve_sim_fresh
    victim = next(g for g in sim.api().cluster.resources.get(type="vm") if g["status"] == "running")
    col = make(modules, tmp_path, sim, mon_db)
    col.poll_once()
    sim.edit_guest(victim["vmid"], status="stopped")
    col.poll_once()
    col.shutdown()
    key = f"pve:pvesim:guest_stopped:{victim['type']}/{victim['vmid']}"
    assert alerts(mon_db)[key][:2] == ("open", 1)
    again = make(modules, tmp_path, sim, mon_db)
    again.poll_once()
    assert alerts(mon_db)[key][:2] == ("open", 2)
    sim.edit_guest(victim["vmid"], status="running")
    again.poll_once()
    assert alerts(mon_db)[key][0] == "resolved"
    again.shutdown()
