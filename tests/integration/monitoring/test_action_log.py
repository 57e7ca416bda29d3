"""The action_log callback with real ansible-playbook runs and a real PostgreSQL."""
from __future__ import annotations

import getpass
import os
import subprocess
import sys

import pytest
import yaml

from .helpers import action_log_env, ansible_env

pytestmark = pytest.mark.postgres

SECRET = "hunter2-Very-Secret-42"
PLAY = [{
    "name": "audited play",
    "hosts": "all",
    "gather_facts": False,
    "tasks": [
        {"name": "nothing to do", "ansible.builtin.debug": {"msg": "hello"}},
        {"name": "a change", "ansible.builtin.command": "true", "changed_when": True},
        {"name": "a failure that is ignored", "ansible.builtin.command": "false", "ignore_errors": True},
        {"name": "skipped", "ansible.builtin.debug": {"msg": "x"}, "when": False},
        {"name": "a loop is one result", "ansible.builtin.debug": {"msg": "{{ item }}"}, "loop": [1, 2, 3]},
        {"name": f"connect with password={SECRET}", "ansible.builtin.set_fact": {"token_value": SECRET},
         "no_log": True},
        {"name": "failure message with a secret", "ansible.builtin.fail": {"msg": f"db password={SECRET}"},
         "ignore_errors": True},
    ],
}]
EXPECTED = [  # (action_type, status) per host, in task order
    ("ansible.builtin.debug", "ok"), ("ansible.builtin.command", "changed"), ("ansible.builtin.command", "failed"),
    ("ansible.builtin.debug", "skipped"), ("ansible.builtin.debug", "ok"), ("ansible.builtin.set_fact", "ok"),
    ("ansible.builtin.fail", "failed"),
]


def run_play(tmp_path, env, hosts=("alpha", "beta"), extra_args=()):
    inventory = tmp_path / "inventory.ini"
    inventory.write_text("".join(f"{h} ansible_connection=local ansible_python_interpreter={sys.executable}\n"
                                 for h in hosts))
    book = tmp_path / "play.yml"
    book.write_text(yaml.safe_dump(PLAY, sort_keys=False))
    return subprocess.run(["ansible-playbook", "-i", str(inventory), str(book), *extra_args], capture_output=True,
                          text=True, timeout=300, env=env, check=False)


def rows(db, run_id=None):
    sql = ("SELECT actor, action_type, entity, status, host(ip), details FROM action_logs "
           + ("WHERE details->>'run_id' = %s " if run_id else "") + "ORDER BY id")
    return db.query(sql, (run_id,) if run_id else None)


def test_one_row_per_task_result_with_actor_ip_and_no_secret(mon_db, tmp_path):
    env = ansible_env(**action_log_env(mon_db, str(tmp_path / "spool"), SSH_CLIENT="192.0.2.10 50000 22"))
    result = run_play(tmp_path, env)
    assert result.returncode == 0, result.stdout + result.stderr
    found = rows(mon_db)
    assert len(found) == 2 * len(EXPECTED)
    for host in ("alpha", "beta"):
        mine = [r for r in found if r[2] == host]
        assert [(r[1], r[3]) for r in mine] == EXPECTED
    actor, ip, details = found[0][0], found[0][4], found[0][5]
    assert actor == f"ansible:{getpass.getuser()}"
    assert ip == "192.0.2.10"
    assert details["play"] == "audited play" and details["playbook"] == "play.yml" and details["task"] == "nothing to do"
    assert len({r[5]["run_id"] for r in found}) == 1
    ignored = [r[5] for r in found if r[3] == "failed"]
    assert all(d.get("ignore_errors") for d in ignored)
    no_log = [r[5] for r in found if r[1] == "ansible.builtin.set_fact"]
    assert all(d.get("no_log") for d in no_log)
    dump = str(mon_db.query("SELECT * FROM action_logs"))
    assert SECRET not in dump
    assert "password=********" in dump  # the task name and the failure message were scrubbed, not dropped
    assert not os.path.exists(tmp_path / "spool")


def test_awx_user_is_the_actor(mon_db, tmp_path):
    env = ansible_env(**action_log_env(mon_db, str(tmp_path / "spool")))
    result = run_play(tmp_path, env, hosts=("alpha",), extra_args=["-e", "awx_user_name=alice", "-e", "awx_job_id=42"])
    assert result.returncode == 0, result.stdout + result.stderr
    found = rows(mon_db)
    assert {r[0] for r in found} == {"awx:alice"}
    assert {r[5]["awx_job_id"] for r in found} == {"42"}


def test_database_down_the_play_succeeds_and_rows_arrive_next_run(mon_db, tmp_path):
    spool = tmp_path / "state" / "action_log.spool"
    env = ansible_env(**action_log_env(mon_db, str(spool)))
    mon_db.server.ctl("stop")
    try:
        first = run_play(tmp_path, env)
    finally:
        mon_db.server.ctl("start")
    assert first.returncode == 0, first.stdout + first.stderr
    assert "action_log: database unreachable" in first.stdout + first.stderr
    assert oct(os.stat(spool).st_mode & 0o777) == "0o600"
    with open(spool, encoding="utf-8") as handle:
        spooled = handle.read()
    assert len(spooled.splitlines()) == 2 * len(EXPECTED)
    assert SECRET not in spooled  # scrubbed before it touches the disk
    assert rows(mon_db) == []
    second = run_play(tmp_path, env)
    assert second.returncode == 0, second.stdout + second.stderr
    found = rows(mon_db)
    assert len(found) == 4 * len(EXPECTED)
    assert len({r[5]["run_id"] for r in found}) == 2
    assert os.path.getsize(spool) == 0
    # the first run's rows keep their own time: they are older than every row of the second run
    first_run = found[0][5]["run_id"]
    times = mon_db.query("SELECT details->>'run_id', max(\"timestamp\"), min(\"timestamp\") FROM action_logs "
                         "GROUP BY 1")
    by_run = {r[0]: (r[1], r[2]) for r in times}
    other = next(k for k in by_run if k != first_run)
    assert by_run[first_run][0] < by_run[other][1]
