# -*- coding: utf-8 -*-
# Copyright (c) Proxmox AI hardening maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Controller-side checks for the firewall role (standard library only, no netaddr).

A rule is a dict with the keys the firewall role builds: ``rule`` (allow, deny,
reject, limit), ``port`` (int, "N", "N:M" or empty for every port), ``proto``
(tcp, udp, any), ``from`` ("any" or an IPv4/IPv6 address or network),
``state`` (present, absent), ``comment`` and ``origin`` (the variable the rule
came from, used in messages). Keys that are absent take their ufw defaults.
"""
from __future__ import annotations

import ipaddress

RULES = ("allow", "deny", "reject", "limit")
PROTOS = ("tcp", "udp", "any")
STATES = ("present", "absent")
ANY = ("any", "0.0.0.0/0", "::/0")


def _label(rule, index):
    return str(rule.get("origin") or "rules[%d]" % index)


def parse_port(value):
    """Return (low, high) for a port or port range, None for every port; raise ValueError when invalid."""
    if value is None or (isinstance(value, str) and value.strip().lower() in ("", "any")):
        return None
    if isinstance(value, bool):
        raise ValueError("%r is not a port" % (value,))
    if isinstance(value, int):
        low = high = value
    else:
        text = str(value).strip()
        parts = text.split(":")
        if len(parts) > 2 or not all(p.isdigit() for p in parts):
            raise ValueError("%r is not a port or a port range N:M" % (value,))
        low, high = int(parts[0]), int(parts[-1])
        if len(parts) == 2 and low >= high:
            raise ValueError("port range %r must go from low to high" % (value,))
    for port in (low, high):
        if not 1 <= port <= 65535:
            raise ValueError("port %r is out of range (1-65535)" % (value,))
    return (low, high)


def parse_source(value):
    """Return None for "any" or an ip_network; raise ValueError when invalid."""
    text = str(value).strip() if value is not None else "any"
    if text.lower() in ANY:
        return None
    try:
        return ipaddress.ip_network(text, strict=True)
    except ValueError as exc:
        try:
            loose = ipaddress.ip_network(text, strict=False)
        except ValueError:
            raise ValueError("%r is not a valid IPv4/IPv6 address or network (%s)" % (value, exc))
        raise ValueError("%r has host bits set: did you mean %s?" % (value, loose))


def parse_address(value):
    """Return an ip_address (IPv4-mapped IPv6 addresses become IPv4); raise ValueError when invalid."""
    address = ipaddress.ip_address(str(value).strip())
    if address.version == 6 and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def describe(rule):
    port = rule.get("port")
    port = "any port" if parse_port_safe(port) is None else "port %s" % port
    return "%s from %s to %s/%s" % (rule.get("rule", "allow"), rule.get("from", "any") or "any", port, rule.get("proto", "any"))


def parse_port_safe(value):
    try:
        return parse_port(value)
    except ValueError:
        return None


def rule_errors(rules):
    """List every problem in ``rules`` (empty when all are valid); messages name the variable.

    Each invalid value is reported once, under the first rule it appears in
    (a network combined with several ports is one mistake, not several).
    """
    if not isinstance(rules, (list, tuple)):
        return ["the rules must be a list, got %s" % type(rules).__name__]
    errors = []
    seen = set()

    def report(where, field, value, message):
        key = (field, repr(value))
        if key not in seen:
            seen.add(key)
            errors.append("%s: %s" % (where, message))

    for index, rule in enumerate(rules):
        if not isinstance(rule, dict):
            errors.append("rules[%d]: must be a dictionary, got %r" % (index, rule))
            continue
        where = _label(rule, index)
        action = rule.get("rule", "allow")
        if action not in RULES:
            report(where, "rule", action, "unknown rule %r (allowed: %s)" % (action, ", ".join(RULES)))
        proto = rule.get("proto", "any")
        if proto not in PROTOS:
            report(where, "proto", proto, "unknown protocol %r (allowed: %s)" % (proto, ", ".join(PROTOS)))
        state = rule.get("state", "present")
        if state not in STATES:
            report(where, "state", state, "unknown state %r (allowed: %s)" % (state, ", ".join(STATES)))
        port = None
        if "port" in rule:
            try:
                port = parse_port(rule["port"])
            except ValueError as exc:
                report(where, "port", rule["port"], str(exc))
        if port is not None and port[0] != port[1] and proto not in ("tcp", "udp"):
            report(where, "range", (rule["port"], proto), "the port range %s needs proto tcp or udp" % (rule["port"],))
        if "from" in rule:
            try:
                parse_source(rule["from"])
            except ValueError as exc:
                report(where, "from", rule["from"], str(exc))
    return errors


def _matches(rule, client, port):
    if rule.get("state", "present") != "present":
        return False
    if rule.get("proto", "any") not in ("tcp", "any"):
        return False
    span = parse_port(rule.get("port"))
    if span is not None and not span[0] <= port <= span[1]:
        return False
    network = parse_source(rule.get("from", "any"))
    if network is None:
        return True
    return network.version == client.version and client in network


def lockout_errors(rules, client, port):
    """Problems that would cut a TCP connection from ``client`` to ``port`` (empty when it stays allowed).

    Order-independent on purpose: ufw evaluates rules in the order they were
    first added, which may differ from the order requested, so any deny or
    reject rule that matches the connection is refused, and at least one
    allow or limit rule must match it.
    """
    errors = rule_errors(rules)
    if errors:
        return errors
    try:
        address = parse_address(client)
    except ValueError:
        return ["cannot tell where the current connection comes from (%r is not an IP address)" % (client,)]
    try:
        port = int(port)
    except (TypeError, ValueError):
        return ["the SSH port %r is not a number" % (port,)]
    matching = [(i, r) for i, r in enumerate(rules) if _matches(r, address, port)]
    for index, rule in matching:
        if rule.get("rule", "allow") in ("deny", "reject"):
            errors.append(
                "%s (%s) would cut the current connection from %s to port %d"
                % (_label(rule, index), describe(rule), address, port)
            )
    if not any(r.get("rule", "allow") in ("allow", "limit") for _i, r in matching):
        errors.append(
            "no rule allows the current connection from %s to port %d: it would be cut" % (address, port)
        )
    return errors
