"""The audit's evidence filter (plugins/filter/audit_findings.py): dispatch, and the .env parser it shares with the secrets plan."""
from __future__ import annotations

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.proxmox_ai.hardening.plugins.filter.audit_findings import FilterModule

audit_findings = FilterModule().filters()["audit_findings"]

STRONG = "Vq7-mZ2!pL9@xR4_k"


def test_env_kind_reads_dashed_names_and_ignores_comments():
    found = audit_findings("# POSTGRES_PASSWORD=old\nexport my-app.API_KEY='%s'\nN8N_PORT=5678\n" % STRONG, "env")
    assert found == {"my-app.API_KEY": STRONG, "N8N_PORT": "5678"}


def test_env_kind_tolerates_missing_evidence():
    assert audit_findings(None, "env") == {}


def test_secrets_kind_names_weak_and_reused_values_without_quoting_them():
    found = audit_findings({"A_PASSWORD": STRONG, "B_PASSWORD": STRONG, "C_TOKEN": "changeme"}, "secrets")
    assert found["reused"] == [["A_PASSWORD", "B_PASSWORD"]]
    assert list(found["weak"]) == ["C_TOKEN"]
    assert STRONG not in repr(found) and "changeme" not in repr(found)


def test_unknown_kind_is_an_error_naming_it():
    with pytest.raises(AnsibleFilterError, match="unknown kind 'yaml'"):
        audit_findings("", "yaml")
