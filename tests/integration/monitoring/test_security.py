"""The security-event watcher: journal entries (journalctl -o json shape) -> security alerts in PostgreSQL."""
from __future__ import annotations

import pytest

from .helpers import write_config

pytestmark = pytest.mark.postgres


class Clock:  # pylint: disable=too-few-public-methods
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


def kernel(src):
    return {"_TRANSPORT": "kernel", "_HOSTNAME": "fw1",
            "MESSAGE": f"[UFW BLOCK] IN=eth0 OUT= MAC=aa SRC={src} DST=10.0.0.5 LEN=60 PROTO=TCP SPT=4444 DPT=5432"}


def unit(name, message, host="db1"):
    return {"_TRANSPORT": "journal", "_SYSTEMD_UNIT": name, "_HOSTNAME": host, "MESSAGE": message}


@pytest.fixture()
def watcher(collector_pkg, mon_db, tmp_path):  # pylint: disable=unused-argument
    from proxmox_ai_collector import config, security  # pylint: disable=import-outside-toplevel
    cfg = config.load(write_config(str(tmp_path), None, mon_db, security={
        "window": 60, "ufw_block_threshold": 3, "auth_failure_threshold": 2}), load_endpoints=False)
    clock = Clock()
    return security.Watcher(cfg, clock=clock), clock, mon_db


def alerts(db):
    return {r[0]: r[1:] for r in db.query(
        "SELECT dedup_key, alert_type, entity, occurrences, details->>'kind' FROM alerts ORDER BY id")}


def test_bursts_become_deduplicated_security_alerts(watcher):
    watch, clock, db = watcher
    for _round in range(2):
        watch.feed(kernel("198.51.100.9"))
    assert watch.flush() and alerts(db) == {}  # below the threshold
    assert watch.feed(kernel("198.51.100.9"))
    watch.flush()
    assert alerts(db) == {"security:ufw_block:198.51.100.9": ("security", "198.51.100.9", 1, "ufw_block")}
    clock.now += 120  # outside the window: counting starts again
    for _round in range(2):
        assert not watch.feed(kernel("198.51.100.9"))
    assert watch.feed(kernel("198.51.100.9"))
    watch.flush()
    assert alerts(db)["security:ufw_block:198.51.100.9"][2] == 2


def test_recognised_sources(watcher):
    watch, db = watcher[0], watcher[2]
    entries = [
        unit("fail2ban.service", "NOTICE  [sshd] Ban 203.0.113.4"),
        unit("ssh.service", "Failed password for invalid user admin from 192.0.2.7 port 5050 ssh2"),
        unit("ssh.service", "Failed password for root from 192.0.2.7 port 5051 ssh2"),
        unit("postgresql@15-main.service", '2025-01-01 10:00:00 UTC [77] app@db 192.0.2.8 FATAL:  '
             'no pg_hba.conf entry for host "192.0.2.8", user "app", database "db", no encryption'),
        unit("postgresql@15-main.service", 'FATAL:  no pg_hba.conf entry for host "192.0.2.8", user "x"'),
        unit("nginx.service", '2025/01/01 10:00:00 [error] 12#12: *3 user "bob": password mismatch, '
             'client: 192.0.2.9, server: n8n'),
        unit("nginx.service", '2025/01/01 10:00:01 [error] 12#12: *4 user "bob": password mismatch, '
             'client: 192.0.2.9, server: n8n'),
        # forged: a local user writing a UFW line with logger is not the kernel
        {"_TRANSPORT": "syslog", "SYSLOG_IDENTIFIER": "kernel", "MESSAGE": kernel("192.0.2.66")["MESSAGE"]},
        unit("cron.service", "Ban 192.0.2.99"),
    ]
    for entry in entries:
        watch.feed(entry)
    watch.flush()
    found = alerts(db)
    assert set(found) == {"security:fail2ban_ban:203.0.113.4", "security:auth_failure:192.0.2.7",
                          "security:auth_failure:192.0.2.8", "security:auth_failure:192.0.2.9"}
    jail = db.scalar("SELECT details->>'jail' FROM alerts WHERE dedup_key = 'security:fail2ban_ban:203.0.113.4'")
    assert jail == "sshd"


def test_database_down_keeps_the_alerts_for_later(watcher):
    watch, db = watcher[0], watcher[2]
    db.server.ctl("stop")
    try:
        watch.feed(unit("fail2ban.service", "NOTICE  [nginx-http-auth] Ban 203.0.113.5"))
        assert watch.flush() is False and len(watch.pending) == 1
    finally:
        db.server.ctl("start")
    assert watch.flush() is True
    assert list(alerts(db)) == ["security:fail2ban_ban:203.0.113.5"]


def test_journal_command_resumes_from_the_cursor(collector_pkg, tmp_path):  # pylint: disable=unused-argument
    from proxmox_ai_collector import security  # pylint: disable=import-outside-toplevel
    cursor = tmp_path / "cursor"
    first = security.journal_command(str(cursor), True)
    assert "--lines" in first and first[first.index("--lines") + 1] == "0" and "--follow" in first
    cursor.write_text("s=abc")
    again = security.journal_command(str(cursor), True)
    assert "--lines" not in again and again[again.index("--cursor-file") + 1] == str(cursor)
