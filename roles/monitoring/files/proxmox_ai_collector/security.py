# -*- coding: utf-8 -*-
# Copyright: (c) 2025, Proxmox AI hardening maintainers
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Security events of the journal -> ``security`` alerts in the alerts table.

Reads ``journalctl -o json --follow`` (with a cursor file, so a restart goes on
where it stopped) and recognises, by trusted journal fields (``_TRANSPORT``,
``_SYSTEMD_UNIT``, which a local user cannot forge with ``logger``):

- ``ufw_block``: kernel ``[UFW BLOCK]`` lines, per source address;
- ``fail2ban_ban``: ``Ban <ip>`` of fail2ban (jails for sshd, nginx, PostgreSQL);
- ``auth_failure``: failed SSH logins, failed PostgreSQL password logins and
  nginx basic-auth failures, per source address;
- ``api_rejections``: 401/403/429 answers of the collector API, per client.

An alert is raised when a source reaches the threshold of its kind within
``security.window`` seconds (a fail2ban ban is an alert at once), with
``dedup_key = security:<kind>:<source>``: repeated bursts bump ``occurrences``.
"""

from __future__ import annotations

import collections
import json
import os
import re
import subprocess
import time

import psycopg2

from .logsafe import get_logger, sanitize_log

LOG = get_logger("security")

UFW_RE = re.compile(r"\[UFW (?:BLOCK|LIMIT BLOCK)\].*?\bSRC=(?P<src>[0-9a-fA-F.:]+)")
BAN_RE = re.compile(r"\[(?P<jail>[^\]]+)\]\s+Ban\s+(?P<src>[0-9a-fA-F.:]+)")
SSH_RE = re.compile(r"(?:Failed (?:password|publickey|keyboard-interactive/pam) for (?:invalid user )?\S+|"
                    r"Invalid user \S+|authentication failure;.*rhost=)\s*(?:from\s+)?(?P<src>[0-9a-fA-F.:]+)")
PG_RE = re.compile(r"(?:password authentication failed|no pg_hba\.conf entry).*?host \"?(?P<src>[0-9a-fA-F.:]+)|"
                   r"(?P<src2>[0-9a-fA-F.:]+)\(\d+\).*?password authentication failed")
NGINX_RE = re.compile(r"(?:user \"[^\"]*\" was not found|password mismatch).*?client: (?P<src>[0-9a-fA-F.:]+)")
API_RE = re.compile(r"api rejected request: status=(?P<status>\d+) client=(?P<src>\S+)")

UPSERT = (
    "INSERT INTO alerts (severity, alert_type, entity_type, entity, message, dedup_key, details) "
    "VALUES (%s, 'security', 'client', %s, %s, %s, %s::jsonb) "
    "ON CONFLICT (dedup_key) WHERE status <> 'resolved' DO UPDATE SET occurrences = alerts.occurrences + 1, "
    "last_seen_at = now(), message = EXCLUDED.message, details = EXCLUDED.details, severity = EXCLUDED.severity"
)


def classify(entry: dict):
    """(kind, source, extra) for a journal entry (a dict of ``journalctl -o json``), or None."""
    message = entry.get("MESSAGE")
    if not isinstance(message, str):
        return None
    unit = str(entry.get("_SYSTEMD_UNIT") or "")
    transport = entry.get("_TRANSPORT")
    if transport == "kernel":
        match = UFW_RE.search(message)
        return ("ufw_block", match.group("src"), {}) if match else None
    if unit == "fail2ban.service":
        match = BAN_RE.search(message)
        return ("fail2ban_ban", match.group("src"), {"jail": match.group("jail")}) if match else None
    if unit in ("ssh.service", "sshd.service") or unit.startswith("ssh@"):
        match = SSH_RE.search(message)
        return ("auth_failure", match.group("src"), {"service": "ssh"}) if match else None
    if unit.startswith("postgresql"):
        match = PG_RE.search(message)
        return ("auth_failure", match.group("src") or match.group("src2"), {"service": "postgresql"}) if match \
            else None
    if unit.startswith("nginx"):
        match = NGINX_RE.search(message)
        return ("auth_failure", match.group("src"), {"service": "nginx"}) if match else None
    if unit == "proxmox-ai-api.service":
        match = API_RE.search(message)
        return ("api_rejections", match.group("src"), {"status": int(match.group("status"))}) if match else None
    return None


class Watcher:
    """Counts events per (kind, source) in a sliding window and writes alerts for bursts."""

    def __init__(self, config, connect=None, clock=time.monotonic):
        settings = config["security"]
        self.window = float(settings["window"])
        self.thresholds = {"ufw_block": int(settings["ufw_block_threshold"]),
                           "auth_failure": int(settings["auth_failure_threshold"]),
                           "api_rejections": int(config["api"]["reject_burst"]), "fail2ban_ban": 1}
        self.dsn_kwargs = config.dsn_kwargs()
        self.connect = connect or (lambda: psycopg2.connect(**self.dsn_kwargs))
        self.clock = clock
        self.events = collections.defaultdict(collections.deque)
        self.pending = collections.OrderedDict()
        self.conn = None
        self.host = ""

    def feed(self, entry: dict) -> bool:
        """Process one journal entry; True when it raised (or refreshed) an alert."""
        found = classify(entry)
        if found is None:
            return False
        kind, source, extra = found
        now = self.clock()
        times = self.events[(kind, source)]
        times.append(now)
        while times and now - times[0] > self.window:
            times.popleft()
        if len(times) < max(1, self.thresholds.get(kind, 1)):
            return False
        times.clear()  # one alert occurrence per burst
        host = str(entry.get("_HOSTNAME") or "")
        if kind == "fail2ban_ban":
            message = f"fail2ban jail {extra.get('jail')} banned {source} on {host}"
            severity = "warning"
        else:
            message = f"{self.thresholds.get(kind, 1)}+ {kind.replace('_', ' ')} events from {source} on {host} " \
                      f"within {int(self.window)}s"
            severity = "warning"
        details = dict(extra, kind=kind, host=host, sample=sanitize_log(entry.get("MESSAGE", ""))[:500])
        self.pending[f"security:{kind}:{source}"] = (severity, source, message, details)
        while len(self.pending) > 10000:
            self.pending.popitem(last=False)
        return True

    def flush(self) -> bool:
        if not self.pending:
            return True
        try:
            if self.conn is None or self.conn.closed:
                self.conn = self.connect()
            with self.conn.cursor() as cur:
                for key, (severity, source, message, details) in list(self.pending.items()):
                    cur.execute(UPSERT, (severity, source, message, key, json.dumps(details)))
            self.conn.commit()
            for key in list(self.pending):
                LOG.warning("security alert: %s", self.pending[key][2])
            self.pending.clear()
            return True
        except psycopg2.Error as exc:
            LOG.error("cannot write security alerts (kept for the next try): %s", str(exc).strip())
            if self.conn is not None:
                self.conn.close()
            self.conn = None
            return False


def journal_command(cursor_file: str, follow: bool) -> list:
    cmd = ["journalctl", "-o", "json", "--no-pager", "--output-fields",
           "MESSAGE,_SYSTEMD_UNIT,_TRANSPORT,_HOSTNAME"]
    if not cursor_file or not os.path.exists(cursor_file):
        cmd += ["--lines", "0"]  # first start: only what happens from now on
    if cursor_file:
        cmd += ["--cursor-file", cursor_file]  # written on exit, resumed from on the next start
    if follow:
        cmd.append("--follow")
    return cmd


def run(config, follow: bool = True) -> int:
    watcher = Watcher(config)
    cursor = config["security"].get("journal_cursor_file") or ""
    LOG.info("security watcher started (window %ss)", int(watcher.window))
    while True:
        with subprocess.Popen(journal_command(cursor, follow), stdout=subprocess.PIPE, text=True) as proc:
            last_try = 0.0
            for line in proc.stdout:
                try:
                    raised = watcher.feed(json.loads(line))
                except ValueError:
                    continue
                # write at once; after a failed write retry at most every 5 seconds
                if watcher.pending and (raised or time.monotonic() - last_try > 5):
                    last_try = time.monotonic()
                    watcher.flush()
            proc.wait()
        watcher.flush()
        if not follow:
            return 0
        LOG.warning("journalctl exited with %s; restarting in 5s", proc.returncode)
        time.sleep(5)
