"""The firewall role's validation and lock-out filters (plugins/filter/firewall_*)."""
from __future__ import annotations

import pytest

from ansible_collections.proxmox_ai.hardening.plugins.filter.firewall_lockout_errors import FilterModule as LockoutFilters
from ansible_collections.proxmox_ai.hardening.plugins.filter.firewall_rule_errors import FilterModule as RuleFilters

rule_errors = RuleFilters().filters()["firewall_rule_errors"]
lockout_errors = LockoutFilters().filters()["firewall_lockout_errors"]

SSH_ANY = {"rule": "allow", "port": 22, "proto": "tcp", "from": "any", "origin": "firewall_ssh_allowed_networks"}


@pytest.mark.parametrize(
    "rule",
    [
        {"rule": "allow", "port": 5678, "proto": "tcp", "from": "10.0.0.0/8"},
        {"rule": "deny", "port": "8000:8004", "proto": "tcp", "from": "any"},
        {"rule": "limit", "port": "22", "proto": "tcp", "from": "2001:db8::/32"},
        {"rule": "reject", "proto": "any", "from": "192.0.2.7"},
        {"rule": "allow", "port": 53, "proto": "udp", "state": "absent"},
        {"from": "fd00::1"},
    ],
)
def test_valid_rules_have_no_errors(rule):
    assert rule_errors([rule]) == []


@pytest.mark.parametrize(
    ("rule", "needle"),
    [
        ({"from": "10.0.0.0/33"}, "not a valid IPv4/IPv6"),
        ({"from": "10.0.0.300"}, "not a valid IPv4/IPv6"),
        ({"from": "10.1.2.3/8"}, "did you mean 10.0.0.0/8"),
        ({"from": "fd00::1/129"}, "not a valid IPv4/IPv6"),
        ({"port": 0}, "out of range"),
        ({"port": 65536}, "out of range"),
        ({"port": "8004:8000", "proto": "tcp"}, "from low to high"),
        ({"port": "80,443"}, "not a port or a port range"),
        ({"port": True}, "not a port"),
        ({"port": "8000:8004", "proto": "any"}, "needs proto tcp or udp"),
        ({"proto": "tcpx"}, "unknown protocol 'tcpx'"),
        ({"rule": "permit"}, "unknown rule 'permit'"),
        ({"state": "gone"}, "unknown state 'gone'"),
    ],
)
def test_invalid_rules_are_named(rule, needle):
    rule = dict(rule, origin="firewall_rules[3]")
    errors = rule_errors([rule])
    assert len(errors) == 1, errors
    assert errors[0].startswith("firewall_rules[3]: ")
    assert needle in errors[0]


def test_every_problem_is_reported_once():
    rules = [
        {"from": "10.0.0.0/33", "port": 5678, "origin": "firewall_trusted_networks"},
        {"from": "10.0.0.0/33", "port": 5432, "origin": "firewall_trusted_networks"},
        {"port": 70000, "proto": "udpx", "origin": "firewall_rules[0]"},
    ]
    errors = rule_errors(rules)
    assert len(errors) == 3, errors
    combined = [
        {"from": "10.0.0.0/33", "origin": "firewall_trusted_networks[0]"},
        {"from": "10.0.0.0/33", "port": 5678, "origin": "firewall_trusted_ports[0] x firewall_trusted_networks[0]"},
        {"from": "10.0.0.0/33", "port": 5432, "origin": "firewall_trusted_ports[1] x firewall_trusted_networks[0]"},
    ]
    assert [e.split(":")[0] for e in rule_errors(combined)] == ["firewall_trusted_networks[0]"]
    assert rule_errors("not a list") == ["the rules must be a list, got str"]
    assert "must be a dictionary" in rule_errors(["x"])[0]


def test_connection_allowed_from_any():
    assert lockout_errors([SSH_ANY], "192.0.2.10", 22) == []


@pytest.mark.parametrize("client", ["10.89.213.1", "::ffff:10.89.213.1"])
def test_connection_outside_the_ssh_networks_is_refused(client):
    rules = [dict(SSH_ANY, **{"from": "10.89.213.8/29"})]
    errors = lockout_errors(rules, client, "22")
    assert errors == ["no rule allows the current connection from 10.89.213.1 to port 22: it would be cut"]


def test_deny_rule_matching_the_connection_is_refused_whatever_the_order():
    deny = {"rule": "deny", "port": "20:25", "proto": "tcp", "from": "10.0.0.0/8", "origin": "firewall_rules[1]"}
    errors = lockout_errors([SSH_ANY, deny], "10.1.1.1", 22)
    assert len(errors) == 1
    assert "firewall_rules[1]" in errors[0] and "would cut" in errors[0]


@pytest.mark.parametrize(
    "other",
    [
        {"rule": "deny", "port": 22, "proto": "udp", "from": "any"},
        {"rule": "deny", "port": 23, "proto": "tcp", "from": "any"},
        {"rule": "deny", "port": 22, "proto": "tcp", "from": "172.16.0.0/12"},
        {"rule": "deny", "port": 22, "proto": "tcp", "from": "2001:db8::/32"},
        {"rule": "deny", "port": 22, "proto": "tcp", "from": "any", "state": "absent"},
    ],
)
def test_rules_that_do_not_match_the_connection_are_fine(other):
    assert lockout_errors([SSH_ANY, other], "10.1.1.1", 22) == []


def test_connection_port_other_than_ssh_port_must_be_allowed():
    assert lockout_errors([SSH_ANY], "10.1.1.1", 2222)[0].startswith("no rule allows")
    assert lockout_errors([SSH_ANY, {"rule": "limit", "port": 2222, "proto": "tcp"}], "10.1.1.1", 2222) == []


def test_ipv6_client():
    rules = [dict(SSH_ANY, **{"from": "2001:db8::/32"})]
    assert lockout_errors(rules, "2001:db8::5", 22) == []
    assert lockout_errors(rules, "2001:db9::5", 22) != []


def test_bad_input_is_a_problem_not_a_crash():
    assert "not an IP address" in lockout_errors([SSH_ANY], "", 22)[0]
    assert "not a number" in lockout_errors([SSH_ANY], "10.0.0.1", "ssh")[0]
    assert "not a valid" in lockout_errors([{"from": "nope"}], "10.0.0.1", 22)[0]
