"""Tests for plugins/module_utils/_secret_plan.py (what the secrets role decides for each secret)."""
from __future__ import annotations

import json

import pytest

from ansible_collections.proxmox_ai.hardening.plugins.filter.secrets_plan import FilterModule
from ansible_collections.proxmox_ai.hardening.plugins.module_utils._secret_plan import (
    BLOCK_BEGIN,
    PlanError,
    parse_env,
    plan_secrets,
)
from ansible_collections.proxmox_ai.hardening.plugins.module_utils._secret_policy import check_secret

NOW = "2025-06-01T12:00:00Z"
DEFS = [
    {"name": "POSTGRES_PASSWORD", "services": ["postgres", "monitor"], "consumer": "postgresql"},
    {"name": "API_KEY", "services": ["monitor", "n8n"]},
    {"name": "N8N_BASIC_AUTH_PASSWORD", "services": ["n8n"]},
    {"name": "SLACK_BOT_TOKEN", "policy": "token", "services": ["n8n"]},
    {"name": "TWILIO_AUTH_TOKEN", "policy": "token"},
]
SLACK = "xoxb-2294716503-3318264055-Kq8ZtR2mWv7XyP4nLs9BcD3f"
STRONG_A = "Vq7-mK2_xR9.tL4=wZ8p"
STRONG_B = "Hs3.Jd8-Lp2_Wq6=Nm4x"


def files_of(plan):
    defs = {d["name"]: d for d in plan["definitions"]}
    return {defs[n]["file"]: v for n, v in plan["values"].items()}


def no_values_in(plan, *extra):
    shown = json.dumps([plan["refused"], plan["report"], plan["metadata"], plan["actions"], plan["changed"],
                        plan["replaced"], plan["reasons"], plan["cannot_rotate"]])
    for value in list(plan["values"].values()) + list(extra):
        assert value not in shown


def test_first_run_generates_to_policy_and_reports_missing_tokens():
    plan = plan_secrets(DEFS, supplied={"SLACK_BOT_TOKEN": SLACK}, now=NOW)
    assert plan["actions"] == {"POSTGRES_PASSWORD": "generated", "API_KEY": "generated",
                               "N8N_BASIC_AUTH_PASSWORD": "generated", "SLACK_BOT_TOKEN": "supplied",
                               "TWILIO_AUTH_TOKEN": "missing"}
    generated = [plan["values"][n] for n in ("POSTGRES_PASSWORD", "API_KEY", "N8N_BASIC_AUTH_PASSWORD")]
    assert all(len(v) == 32 and check_secret(v) == [] for v in generated)
    assert len(set(plan["values"].values())) == len(plan["values"])
    assert "TWILIO_AUTH_TOKEN" not in plan["values"]
    assert plan["refused"] == {}
    assert plan["replaced"] == []
    assert plan["changed"] == sorted(plan["values"])
    assert plan["metadata"]["API_KEY"] == {"set_at": NOW, "source": "generated"}
    assert plan["metadata"]["SLACK_BOT_TOKEN"] == {"set_at": NOW, "source": "supplied"}
    assert plan["env_content"] is None  # files delivery, no .env: nothing to purge, nothing created
    no_values_in(plan)


def test_second_run_keeps_every_value_and_changes_nothing():
    first = plan_secrets(DEFS, supplied={"SLACK_BOT_TOKEN": SLACK}, now=NOW)
    second = plan_secrets(DEFS, supplied={"SLACK_BOT_TOKEN": SLACK}, files=files_of(first),
                          metadata=first["metadata"], now="2025-06-02T12:00:00Z")
    assert second["values"] == first["values"]
    assert second["changed"] == [] and second["replaced"] == []
    assert second["metadata"] == first["metadata"]
    assert {n: a for n, a in second["actions"].items() if a != "missing"} == {
        "POSTGRES_PASSWORD": "kept", "API_KEY": "kept", "N8N_BASIC_AUTH_PASSWORD": "kept", "SLACK_BOT_TOKEN": "supplied"}


def test_forced_rotation_changes_exactly_the_generated_ones():
    first = plan_secrets(DEFS, supplied={"SLACK_BOT_TOKEN": SLACK}, now=NOW)
    rotated = plan_secrets(DEFS, supplied={"SLACK_BOT_TOKEN": SLACK}, files=files_of(first),
                           metadata=first["metadata"], now=NOW, rotate=True)
    assert rotated["replaced"] == ["API_KEY", "N8N_BASIC_AUTH_PASSWORD", "POSTGRES_PASSWORD"]
    assert rotated["values"]["SLACK_BOT_TOKEN"] == SLACK
    assert rotated["cannot_rotate"] == ["SLACK_BOT_TOKEN"]
    for name in rotated["replaced"]:
        assert rotated["values"][name] != first["values"][name]
        assert rotated["reasons"][name] == "forced"
        assert check_secret(rotated["values"][name]) == []


def test_rotation_of_named_secrets_only():
    first = plan_secrets(DEFS, now=NOW)
    plan = plan_secrets(DEFS, files=files_of(first), metadata=first["metadata"], now=NOW, rotate=["API_KEY"])
    assert plan["replaced"] == ["API_KEY"]
    with pytest.raises(PlanError, match="NOPE"):
        plan_secrets(DEFS, rotate=["NOPE"], now=NOW)


def test_age_rotation_and_age_report():
    first = plan_secrets(DEFS, now="2025-01-01T00:00:00Z")
    meta = dict(first["metadata"])
    meta["API_KEY"] = {"set_at": "2025-03-01T00:00:00Z", "source": "generated"}  # 92 days before NOW
    plan = plan_secrets(DEFS, files=files_of(first), metadata=meta, now=NOW, rotation_days=91)
    assert plan["replaced"] == ["API_KEY", "N8N_BASIC_AUTH_PASSWORD", "POSTGRES_PASSWORD"]
    recent = dict(meta, POSTGRES_PASSWORD={"set_at": NOW}, N8N_BASIC_AUTH_PASSWORD={"set_at": NOW})
    plan = plan_secrets(DEFS, files=files_of(first), metadata=recent, now=NOW, rotation_days=92)
    assert plan["replaced"] == ["API_KEY"] and plan["reasons"] == {"API_KEY": "age"}
    report = {r["name"]: r for r in plan["report"]}
    assert report["API_KEY"]["age_days"] == 0 and report["API_KEY"]["action"] == "rotated"
    assert report["POSTGRES_PASSWORD"]["age_days"] == 0 and report["POSTGRES_PASSWORD"]["due"] is False
    kept = plan_secrets(DEFS, files=files_of(first), metadata=recent, now=NOW, rotation_days=93)
    assert kept["replaced"] == []
    assert {r["name"]: r["age_days"] for r in kept["report"]}["API_KEY"] == 92


def test_weak_supplied_values_are_refused_by_name_without_the_value():
    plan = plan_secrets(DEFS, supplied={"POSTGRES_PASSWORD": "Password123!", "SLACK_BOT_TOKEN": "xoxb-your-token"},
                        now=NOW)
    assert set(plan["refused"]) == {"POSTGRES_PASSWORD", "SLACK_BOT_TOKEN"}
    assert "is a known default or weak value, or is built from one" in plan["refused"]["POSTGRES_PASSWORD"]
    assert "is shorter than 16 characters" in plan["refused"]["POSTGRES_PASSWORD"]
    assert plan["refused"]["SLACK_BOT_TOKEN"] == ["is a placeholder, not a real token"]
    no_values_in(plan, "Password123!", "xoxb-your-token")


def test_reused_supplied_values_are_refused_by_name():
    plan = plan_secrets(DEFS, supplied={"POSTGRES_PASSWORD": STRONG_A, "N8N_BASIC_AUTH_PASSWORD": STRONG_A}, now=NOW)
    assert plan["refused"] == {
        "N8N_BASIC_AUTH_PASSWORD": ["has the same value as POSTGRES_PASSWORD (every service needs its own)"],
        "POSTGRES_PASSWORD": ["has the same value as N8N_BASIC_AUTH_PASSWORD (every service needs its own)"]}


def test_weak_or_reused_values_found_on_the_host_are_replaced():
    env = "POSTGRES_PASSWORD=changeme\nAPI_KEY=%s\nN8N_BASIC_AUTH_PASSWORD=%s\nOTHER=1\n" % (STRONG_A, STRONG_A)
    plan = plan_secrets(DEFS, env_text=env, now=NOW, delivery="env")
    assert plan["reasons"] == {"POSTGRES_PASSWORD": "weak", "API_KEY": "reused", "N8N_BASIC_AUTH_PASSWORD": "reused"}
    assert plan["refused"] == {}
    assert plan["replaced"] == ["API_KEY", "N8N_BASIC_AUTH_PASSWORD", "POSTGRES_PASSWORD"]


def test_rotate_false_keeps_existing_values_and_refuses_weak_ones():
    defs = [{"name": "POSTGRES_PASSWORD", "rotate": False}, {"name": "API_KEY"}]
    first = plan_secrets(defs, now=NOW)
    plan = plan_secrets(defs, files=files_of(first), metadata=first["metadata"], now=NOW, rotate=True)
    assert plan["replaced"] == ["API_KEY"]
    assert plan["cannot_rotate"] == ["POSTGRES_PASSWORD"]
    assert {r["name"]: r["due"] for r in plan["report"]} == {"POSTGRES_PASSWORD": True, "API_KEY": False}
    weak = plan_secrets(defs, files={"postgres_password": "changeme"}, now=NOW)
    assert weak["refused"]["POSTGRES_PASSWORD"][0].startswith("(the value already on the host)")
    assert "POSTGRES_PASSWORD" not in weak["changed"]
    assert plan_secrets(defs, now=NOW)["actions"]["POSTGRES_PASSWORD"] == "generated"  # missing: still generated


def test_weak_third_party_token_on_the_host_is_refused():
    plan = plan_secrets(DEFS, env_text="SLACK_BOT_TOKEN=xoxb-your-token\n", now=NOW, delivery="env")
    assert plan["refused"]["SLACK_BOT_TOKEN"] == ["(the value already on the host) is a placeholder, not a real token"]


def test_required_token_missing_is_refused():
    defs = DEFS[:-1] + [{"name": "TWILIO_AUTH_TOKEN", "policy": "token", "required": True}]
    plan = plan_secrets(defs, now=NOW)
    assert plan["refused"] == {"TWILIO_AUTH_TOKEN": [
        "is required but was not supplied (set it in secrets_values, from the vault)"]}


def test_env_delivery_writes_a_managed_block_and_keeps_other_lines():
    env = "# stack settings\nN8N_PROTOCOL=https\nexport POSTGRES_PASSWORD='%s'\nWEBHOOK_URL=https://n8n\n" % STRONG_A
    plan = plan_secrets(DEFS, env_text=env, now=NOW, delivery="env")
    content = plan["env_content"]
    assert content.startswith("# stack settings\nN8N_PROTOCOL=https\nWEBHOOK_URL=https://n8n\n\n" + BLOCK_BEGIN)
    assert parse_env(content) == dict(plan["values"], N8N_PROTOCOL="https", WEBHOOK_URL="https://n8n")
    assert plan["values"]["POSTGRES_PASSWORD"] == STRONG_A and plan["actions"]["POSTGRES_PASSWORD"] == "kept"
    again = plan_secrets(DEFS, env_text=content, metadata=plan["metadata"], now=NOW, delivery="env")
    assert again["env_content"] == content and again["changed"] == []


def test_switching_to_files_keeps_values_and_purges_them_from_env():
    env = "N8N_PROTOCOL=https\nPOSTGRES_PASSWORD=%s\nAPI_KEY=%s\n" % (STRONG_A, STRONG_B)
    plan = plan_secrets(DEFS, env_text=env, now=NOW, delivery="files")
    assert plan["values"]["POSTGRES_PASSWORD"] == STRONG_A and plan["values"]["API_KEY"] == STRONG_B
    assert plan["env_content"] == "N8N_PROTOCOL=https\n"
    assert "POSTGRES_PASSWORD" not in plan["changed"]


def test_files_win_over_env_in_files_delivery_and_the_reverse():
    files = {"postgres_password": STRONG_A}
    env = "POSTGRES_PASSWORD=%s\n" % STRONG_B
    assert plan_secrets(DEFS, env_text=env, files=files, now=NOW)["values"]["POSTGRES_PASSWORD"] == STRONG_A
    assert plan_secrets(DEFS, env_text=env, files=files, now=NOW, delivery="env")["values"]["POSTGRES_PASSWORD"] \
        == STRONG_B


@pytest.mark.parametrize("defs, supplied, message", [
    ([{"name": "lower"}], {}, "upper case"),
    ([{"name": "A_PASSWORD"}, {"name": "A_PASSWORD"}], {}, "defined twice"),
    ([{"name": "A_PASSWORD", "length": 12}], {}, "below the policy minimum"),
    ([{"name": "A_PASSWORD", "file": "../x"}], {}, "file"),
    ([{"name": "A_PASSWORD"}, {"name": "B_PASSWORD", "file": "a_password"}], {}, "used by another secret"),
    ([{"name": "A_PASSWORD", "policy": "weird"}], {}, "policy"),
    ([{"name": "A_PASSWORD"}], {"OTHER": STRONG_A}, "undefined secrets: OTHER"),
    ("notalist", {}, "list"),
])
def test_configuration_errors(defs, supplied, message):
    with pytest.raises(PlanError, match=message):
        plan_secrets(defs, supplied=supplied, now=NOW)


def test_filter_wraps_errors_for_ansible():
    from ansible.errors import AnsibleFilterError

    plan_filter = FilterModule().filters()["secrets_plan"]
    assert plan_filter(DEFS, now=NOW)["actions"]["API_KEY"] == "generated"
    with pytest.raises(AnsibleFilterError, match="secrets_plan: delivery"):
        plan_filter(DEFS, delivery="carrier-pigeon")


def test_parse_env_reads_every_assignment_the_audit_needs():
    # one parser for the secrets plan and the audit (filter audit_findings kind=env)
    text = "# c\nexport A='x y'\nB=\"q\"\n\nC=1=2\nbroken\n  # D=commented\nmy-app.PASSWORD = s3cret\nB=last\n"
    assert parse_env(text) == {"A": "x y", "B": "last", "C": "1=2", "my-app.PASSWORD": "s3cret"}
