# -*- coding: utf-8 -*-
# Copyright: Proxmox AI hardening maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Logic of the security audit: checklist items, findings on secrets, status aggregation, reports.

Pure functions, no I/O, so that the filters, the ``audit_report`` action plugin
and the unit tests share them.  Secret VALUES never leave these functions: the
findings name secrets, never quote them.
"""

from __future__ import annotations

import datetime
import re

from ansible_collections.proxmox_ai.hardening.plugins.module_utils._secret_policy import (
    check_secret,
    check_token,
    find_reused,
)
from ansible_collections.proxmox_ai.hardening.plugins.module_utils._secret_plan import parse_time

PASS, FAIL, NOT_CHECKED = "pass", "fail", "not checked"
STATUSES = (PASS, FAIL, NOT_CHECKED)

# The guide's security checklist, one id per item the audit checks.
CHECKLIST = (
    ("default_passwords", "Default passwords changed (no known default or reused value)"),
    ("docker_secrets", "Docker secrets in use (*_FILE, no secret in the compose config)"),
    ("firewall", "Firewall active with the expected rules"),
    ("tls_proxy", "TLS on the proxy (protocol versions, certificate validity)"),
    ("proxmox_token", "Proxmox access by API token with least privilege"),
    ("postgresql_ssl", "PostgreSQL SSL on and non-SSL connections refused"),
    ("api_key_auth", "API key authentication on the collector API"),
    ("rate_limiting", "Rate limiting on the collector API"),
    ("backups", "Backups recent and decryptable"),
    ("log_monitoring", "Log monitoring for security events in place"),
    ("audit_trail", "Audit trail receiving rows"),
    ("retention", "Retention scheduled and last run successful"),
    ("secret_rotation", "Secrets younger than the rotation age"),
    ("packages", "Dependencies updated (no pending security updates)"),
    ("image_scan", "Container images scanned for vulnerabilities"),
)
TITLES = dict(CHECKLIST)

TOKEN_NAMES = re.compile(r"(TOKEN|_SID)$")
SECRET_NAMES = re.compile(r"(PASSWORD|PASSWD|SECRET|TOKEN|API_KEY|_KEY|_PASS)$", re.I)


def item(check, status, reason, evidence=None, host=None):
    """One audit item as a dictionary."""
    return {"id": check, "title": TITLES.get(check, check), "host": host, "status": status,
            "reason": reason, "evidence": list(evidence or [])}


def normalise(raw, host=None):
    """Validate one item: unknown status -> fail; a pass without evidence becomes ``not checked``."""
    raw = dict(raw or {})
    check = str(raw.get("id") or "unknown")
    status = raw.get("status")
    evidence = raw.get("evidence")
    if evidence is None:
        evidence = []
    elif not isinstance(evidence, list):
        evidence = [evidence]
    evidence = [e for e in evidence if e not in (None, "", [], {})]
    reason = str(raw.get("reason") or "")
    if status not in STATUSES:
        return item(check, FAIL, "invalid status %r reported by the check" % (status,), evidence,
                    raw.get("host", host))
    if status == PASS and not evidence:
        return item(check, NOT_CHECKED, "the check claimed a pass without evidence: " + reason, evidence,
                    raw.get("host", host))
    if not reason:
        reason = {PASS: "passed", FAIL: "failed", NOT_CHECKED: "not checked"}[status]
    return item(check, status, reason, evidence, raw.get("host", host))


def aggregate(items):
    """Per checklist item over all hosts: fail if any host fails, pass if any passes, else not checked.

    Returns ``(checklist, summary)``: ``checklist`` lists every checklist item
    (also those no host reported: not checked), ``summary`` counts them.
    """
    items = [normalise(i) for i in items or []]
    ids = [c for c, _t in CHECKLIST] + sorted({i["id"] for i in items} - set(TITLES))
    checklist = []
    for check in ids:
        mine = [i for i in items if i["id"] == check]
        statuses = {i["status"] for i in mine}
        if FAIL in statuses:
            status = FAIL
            reason = "; ".join("%s: %s" % (i["host"], i["reason"]) for i in mine if i["status"] == FAIL)
        elif PASS in statuses:
            status = PASS
            reason = "; ".join("%s: %s" % (i["host"], i["reason"]) for i in mine if i["status"] == PASS)
        else:
            status = NOT_CHECKED
            reason = ("; ".join("%s: %s" % (i["host"], i["reason"]) for i in mine)
                      or "no host of this inventory ran this check")
        checklist.append({"id": check, "title": TITLES.get(check, check), "status": status, "reason": reason,
                          "hosts": sorted({str(i["host"]) for i in mine})})
    summary = {s: sum(1 for c in checklist if c["status"] == s) for s in STATUSES}
    summary["total"] = len(checklist)
    summary["failed"] = [c["id"] for c in checklist if c["status"] == FAIL]
    summary["result"] = FAIL if summary["failed"] else PASS
    return checklist, summary, items


def build_report(items, generated_at=None, hosts=None):
    """The whole report as a dictionary (before sanitising)."""
    checklist, summary, items = aggregate(items)
    return {"generated_at": generated_at or datetime.datetime.now(datetime.timezone.utc).strftime(
        "%Y-%m-%dT%H:%M:%SZ"), "hosts": sorted(hosts or {str(i["host"]) for i in items}),
        "summary": summary, "checklist": checklist, "items": items}


def strict_failure(report, strict):
    """The failure message for strict mode, or None."""
    failed = report["summary"]["failed"]
    if strict and failed:
        return "security audit failed: %s" % ", ".join(failed)
    return None


def _md(text):
    return str(text).replace("|", "\\|").replace("\n", " ")


def render_markdown(report):
    """A readable Markdown rendering of ``report``."""
    summ = report["summary"]
    lines = ["# Security audit report", "",
             "Generated %s for %s." % (report["generated_at"], ", ".join(report["hosts"]) or "no host"), "",
             "Result: **%s** (%d pass, %d fail, %d not checked)." % (
                 summ["result"], summ[PASS], summ[FAIL], summ[NOT_CHECKED]), "",
             "## Checklist", "", "| item | status | reason |", "| --- | --- | --- |"]
    for c in report["checklist"]:
        lines.append("| %s | %s | %s |" % (_md(c["title"]), c["status"], _md(c["reason"])))
    lines += ["", "## Evidence per host", ""]
    for i in report["items"]:
        lines.append("### %s on %s: %s" % (i["id"], i["host"], i["status"]))
        lines.append("")
        lines.append(_md(i["reason"]))
        lines.append("")
        for e in i["evidence"]:
            lines.append("- `%s`" % _md(e).replace("`", "'"))
        lines.append("")
    return "\n".join(lines).rstrip() + "\n"


def secret_findings(values, min_length=16, extra_words=()):
    """Weak and reused secrets among ``values`` (name -> value), by NAME only.

    Only names that look like secrets are checked (``*_PASSWORD``, ``*_TOKEN``,
    ``*_SECRET``, ``*_KEY``); ``*_FILE`` entries are paths, not secrets.
    Returns ``{"checked": [...], "weak": {name: [problems]}, "reused": [[names]]}``.
    """
    secrets = {k: v for k, v in (values or {}).items()
               if isinstance(k, str) and SECRET_NAMES.search(k) and not k.endswith("_FILE")}
    weak = {}
    for name, value in sorted(secrets.items()):
        value = "" if value is None else str(value)
        if TOKEN_NAMES.search(name):
            problems = check_token(value, extra_words=extra_words)
        else:
            problems = check_secret(value, min_length=int(min_length), extra_words=extra_words)
        if value == "":
            problems = ["is empty"]
        if problems:
            weak[name] = problems
    return {"checked": sorted(secrets), "weak": weak, "reused": find_reused(secrets)}


def compose_findings(config_text, secret_values):
    """Secrets visible in a rendered compose config: names of ``secret_values`` whose value appears in it,
    and environment keys that carry a literal secret instead of a ``*_FILE`` path."""
    text = config_text or ""
    leaked = sorted(name for name, value in (secret_values or {}).items()
                    if isinstance(value, str) and len(value) >= 4 and value in text)
    literal = set()
    # [ \t] rather than \s: a key with an empty value must not take the next line as its value.
    for match in re.finditer(r"^[ \t]*-?[ \t]*['\"]?([A-Za-z_][A-Za-z0-9_]*)['\"]?[ \t]*[:=][ \t]*(\S.*)?$", text, re.M):
        key, value = match.group(1), (match.group(2) or "").strip().strip("'\"")
        if SECRET_NAMES.search(key) and not key.endswith("_FILE") and value and value not in ("null", "~"):
            literal.add(key)
    file_keys = sorted(set(re.findall(r"\b([A-Z][A-Z0-9_]*_FILE)\b", text)))
    return {"leaked": leaked, "literal": sorted(literal), "file_keys": file_keys}


def secret_ages(metadata, max_days, now=None):
    """Ages of the secrets in the rotation metadata (the secrets role's file, or name -> {set_at}): ``{"ages": {name: days},
    "overdue": [names], "unknown": [names]}``."""
    now = parse_time(now) if isinstance(now, str) else now
    now = now or datetime.datetime.now(datetime.timezone.utc)
    ages, overdue, unknown = {}, [], []
    if isinstance(metadata, dict) and isinstance(metadata.get("secrets"), dict) and "version" in metadata:
        # the secrets role's file: {"version": 1, "secrets": {name: {"set_at": ...}}, "pending": [...]}
        metadata = metadata["secrets"]
    for name, entry in sorted((metadata or {}).items()):
        set_at = parse_time((entry or {}).get("set_at") if isinstance(entry, dict) else None)
        if set_at is None:
            unknown.append(name)
            continue
        ages[name] = (now - set_at).days
        if ages[name] >= int(max_days):
            overdue.append(name)
    return {"ages": ages, "overdue": overdue, "unknown": unknown}


def ufw_findings(status_text, expected):
    """Parse ``ufw status verbose``: active, default incoming policy, and ALLOW rules outside ``expected``
    (entries such as ``22/tcp`` or ``8000:8004/tcp``; the ``(v6)`` twin of a rule counts as the same)."""
    text = status_text or ""
    active = bool(re.search(r"^Status:\s*active\s*$", text, re.M))
    default = re.search(r"^Default:\s*(\w+)\s*\(incoming\)", text, re.M)
    allowed = []
    for line in text.splitlines():
        match = re.match(r"^(.+?)\s{2,}(ALLOW|LIMIT)(?: IN)?\s{2,}(.+?)\s*$", line)
        if not match:
            continue
        target = match.group(1).replace("(v6)", "").strip()
        allowed.append(target)
    expected = {str(e).strip() for e in expected or []}
    unexpected = sorted({a for a in allowed if a.split(" ")[0] not in expected})
    return {"active": active, "default_incoming": default.group(1) if default else None,
            "allowed": sorted(set(allowed)), "unexpected": unexpected}
