"""Report logic of the security audit: item validation, aggregation, findings, Markdown."""
from __future__ import annotations

import pytest

from ansible_collections.proxmox_ai.hardening.plugins.module_utils import _audit

STRONG_A = "Vq7-mK2_xR9.tL4=wZ8p"
STRONG_B = "Hs3=Jd8qWm2xZp5Tc.L9"


def _item(check, status, host="h1", evidence=("seen",), reason="r"):
    return {"id": check, "status": status, "host": host, "evidence": list(evidence), "reason": reason}


def _status(checklist, check):
    return next(c for c in checklist if c["id"] == check)["status"]


def test_pass_without_evidence_is_not_a_pass():
    item = _audit.normalise(_item("firewall", "pass", evidence=()))
    assert item["status"] == "not checked"
    assert "without evidence" in item["reason"]
    for empty in (None, "", [], [""], [None, {}]):
        raw = _item("firewall", "pass")
        raw["evidence"] = empty
        assert _audit.normalise(raw)["status"] == "not checked"


def test_unknown_status_fails():
    assert _audit.normalise(_item("firewall", "ok"))["status"] == "fail"
    assert _audit.normalise({"id": "firewall"})["status"] == "fail"


def test_evidence_string_becomes_list():
    raw = _item("firewall", "pass")
    raw["evidence"] = "ufw active"
    assert _audit.normalise(raw)["evidence"] == ["ufw active"]


@pytest.mark.parametrize("statuses, expected", [
    (["pass", "pass"], "pass"),
    (["pass", "fail"], "fail"),
    (["not checked", "fail"], "fail"),
    (["not checked", "pass"], "pass"),
    (["not checked", "not checked"], "not checked"),
    ([], "not checked"),
])
def test_aggregation_over_hosts(statuses, expected):
    items = [_item("tls_proxy", s, host="h%d" % i) for i, s in enumerate(statuses)]
    checklist, summary, _items = _audit.aggregate(items)
    assert _status(checklist, "tls_proxy") == expected
    assert (summary["failed"] == ["tls_proxy"]) == (expected == "fail")


def test_every_checklist_item_is_reported():
    checklist, summary, _items = _audit.aggregate([_item("firewall", "pass")])
    assert [c["id"] for c in checklist] == [c for c, _t in _audit.CHECKLIST]
    assert summary["total"] == 15
    assert summary["pass"] == 1 and summary["not checked"] == 14 and summary["fail"] == 0
    assert summary["result"] == "pass"
    untouched = next(c for c in checklist if c["id"] == "backups")
    assert untouched["reason"] == "no host of this inventory ran this check"


def test_strict_mode():
    ok = _audit.build_report([_item("firewall", "pass"), _item("backups", "not checked", evidence=())])
    bad = _audit.build_report([_item("firewall", "fail"), _item("tls_proxy", "fail", host="p")])
    assert _audit.strict_failure(ok, True) is None
    assert _audit.strict_failure(bad, False) is None
    assert _audit.strict_failure(bad, True) == "security audit failed: firewall, tls_proxy"
    # a pass without evidence does not fail strict mode, but is not counted as a pass either
    hollow = _audit.build_report([_item("firewall", "pass", evidence=())])
    assert hollow["summary"]["pass"] == 0 and _audit.strict_failure(hollow, True) is None


def test_secret_findings_name_never_value():
    found = _audit.secret_findings({
        "POSTGRES_PASSWORD": "changeme", "API_KEY": STRONG_A, "N8N_BASIC_AUTH_PASSWORD": STRONG_A,
        "VM_DEFAULT_PASSWORD": STRONG_B, "POSTGRES_USER": "admin", "POSTGRES_PASSWORD_FILE": "/run/secrets/x",
        "SLACK_BOT_TOKEN": "xoxb-your-token", "EMPTY_SECRET": "",
    })
    assert found["checked"] == ["API_KEY", "EMPTY_SECRET", "N8N_BASIC_AUTH_PASSWORD", "POSTGRES_PASSWORD",
                                "SLACK_BOT_TOKEN", "VM_DEFAULT_PASSWORD"]
    assert sorted(found["weak"]) == ["EMPTY_SECRET", "POSTGRES_PASSWORD", "SLACK_BOT_TOKEN"]
    assert found["reused"] == [["API_KEY", "N8N_BASIC_AUTH_PASSWORD"]]
    text = repr(found)
    assert "changeme" not in text and STRONG_A not in text and "your-token" not in text


def test_compose_findings():
    config = ("services:\n  app:\n    environment:\n      POSTGRES_PASSWORD_FILE: /run/secrets/pg\n"
              "      N8N_BASIC_AUTH_PASSWORD: %s\n      DB_HOST: db\n" % STRONG_B)
    found = _audit.compose_findings(config, {"N8N_BASIC_AUTH_PASSWORD": STRONG_B, "API_KEY": STRONG_A})
    assert found == {"leaked": ["N8N_BASIC_AUTH_PASSWORD"], "literal": ["N8N_BASIC_AUTH_PASSWORD"],
                     "file_keys": ["POSTGRES_PASSWORD_FILE"]}
    clean = _audit.compose_findings("environment:\n  - API_KEY_FILE=/run/secrets/k\n", {"API_KEY": STRONG_A})
    assert clean == {"leaked": [], "literal": [], "file_keys": ["API_KEY_FILE"]}


def test_compose_findings_top_level_secrets_are_not_literal_values():
    # docker-compose config of the secrets role's overlay: a key with an empty value (the secret's
    # name) is followed by its file; the next line is not its value.
    config = ("secrets:\n  container_default_password:\n    file: /etc/proxmox-ai/secrets/container_default_password\n"
              "services:\n  app:\n    environment:\n      CONTAINER_DEFAULT_PASSWORD_FILE: /run/secrets/c\n"
              "    secrets:\n    - source: container_default_password\n")
    found = _audit.compose_findings(config, {"CONTAINER_DEFAULT_PASSWORD": STRONG_A})
    assert found == {"leaked": [], "literal": [], "file_keys": ["CONTAINER_DEFAULT_PASSWORD_FILE"]}
    # and a literal password two lines below an empty key is still found
    found = _audit.compose_findings("x:\n  MY_PASSWORD:\n  DB_PASSWORD: hunter2hunter2\n", {})
    assert found["literal"] == ["DB_PASSWORD"]


def test_secret_ages_of_the_secrets_roles_metadata_file():
    meta = {"version": 1, "pending": [], "secrets": {"A": {"set_at": "2026-01-01T00:00:00Z", "source": "generated"},
                                                     "B": {"set_at": "2025-09-01T00:00:00Z", "source": "supplied"}}}
    ages = _audit.secret_ages(meta, 90, now="2026-01-31T00:00:00Z")
    assert ages == {"ages": {"A": 30, "B": 152}, "overdue": ["B"], "unknown": []}


def test_secret_ages():
    meta = {"A": {"set_at": "2026-01-01T00:00:00Z"}, "B": {"set_at": "2025-09-01T00:00:00Z"}, "C": {}}
    ages = _audit.secret_ages(meta, 90, now="2026-01-31T00:00:00Z")
    assert ages == {"ages": {"A": 30, "B": 152}, "overdue": ["B"], "unknown": ["C"]}


UFW = """Status: active
Logging: on (low)
Default: deny (incoming), allow (outgoing), deny (routed)
New profiles: skip

To                         Action      From
--                         ------      ----
22/tcp                     ALLOW IN    Anywhere
443/tcp                    ALLOW IN    Anywhere
5432/tcp                   ALLOW IN    10.0.0.0/8
8080/tcp                   ALLOW IN    Anywhere
22/tcp (v6)                ALLOW IN    Anywhere (v6)
8080/tcp (v6)              ALLOW IN    Anywhere (v6)
"""


def test_ufw_findings():
    found = _audit.ufw_findings(UFW, ["22/tcp", "443/tcp", "5432/tcp"])
    assert found["active"] and found["default_incoming"] == "deny"
    assert found["unexpected"] == ["8080/tcp"]
    assert _audit.ufw_findings(UFW, ["22/tcp", "443/tcp", "5432/tcp", "8080/tcp"])["unexpected"] == []
    inactive = _audit.ufw_findings("Status: inactive\n", ["22/tcp"])
    assert not inactive["active"] and inactive["default_incoming"] is None


def test_markdown_lists_every_item():
    report = _audit.build_report([_item("firewall", "fail", reason="open | port"),
                                  _item("tls_proxy", "pass", evidence=["accepted: TLSv1.3"])],
                                 generated_at="2026-01-01T00:00:00Z")
    text = _audit.render_markdown(report)
    assert "Result: **fail** (1 pass, 1 fail, 13 not checked)." in text
    assert "open \\| port" in text
    assert "- `accepted: TLSv1.3`" in text
    assert text.count("\n| ") == 2 + 15  # header, separator, one row per checklist item
