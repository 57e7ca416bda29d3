# -*- coding: utf-8 -*-
# Copyright: (c) 2025, Proxmox AI hardening maintainers
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""What the ``secrets`` role does with each secret, decided in one pure function.

``plan_secrets()`` takes the secret definitions, the values supplied by the
user (vault), what the target already holds (``.env`` text and secret files)
and the rotation metadata, and returns the value to deliver for each secret,
why, and what must be refused.  It writes nothing: the role validates the plan
(``refused`` must be empty) before it changes anything.

Decisions, per secret:

- supplied (vault) -> used as is, checked against the policy (refused if weak,
  a known default or shared with another secret);
- else an existing value on the target -> kept, unless rotation is forced or
  due (older than ``rotation_days``), or the value is weak or shared: then a
  new one is generated (``rotated``), if the secret may be generated and its
  definition does not say ``rotate: false`` (its consumer cannot follow a new
  value: a due one is then reported in ``cannot_rotate``, a weak one refused);
- else generated, if it may be; a third-party token that is neither supplied
  nor present is ``missing`` (or refused when ``required``).

Values never appear in ``refused``, ``report`` or ``metadata``.
"""

from __future__ import annotations

import base64
import datetime
import hashlib
import hmac
import os
import re

from ansible_collections.proxmox_ai.hardening.plugins.module_utils._secret_policy import (
    SAFE_SYMBOLS,
    check_secret,
    check_token,
    find_reused,
    generate_secret,
)

__all__ = ["BLOCK_BEGIN", "BLOCK_END", "PlanError", "normalize_definitions", "parse_env", "plan_secrets",
           "scram_sha256"]

BLOCK_BEGIN = "# BEGIN proxmox_ai.hardening.secrets (managed by Ansible: values live in the vault, do not edit)"
BLOCK_END = "# END proxmox_ai.hardening.secrets"
_NAME_RE = re.compile(r"^[A-Z][A-Z0-9_]*$")
_FILE_RE = re.compile(r"^[a-z0-9][a-z0-9_.-]*$")
# NAME=value, optionally after "export". Names are read loosely (anything up to
# "=" without blanks or "#"): compose accepts such keys, and the audit must see
# a secret under a dashed or dotted name too; the names this module writes are
# identifiers anyway.
_ENV_LINE_RE = re.compile(r"^\s*(?:export\s+)?([^\s=#]+)\s*=(.*)$")


class PlanError(ValueError):
    """A configuration error (the message never contains a secret value)."""


def _default(value, default):
    return default if value is None else value


def normalize_definitions(definitions, length=32, min_length=16):
    """Fill the defaults of each definition and check names, files and types."""
    if not isinstance(definitions, (list, tuple)):
        raise PlanError("the secret definitions must be a list of dictionaries")
    result = []
    seen_names, seen_files = set(), set()
    for raw in definitions:
        if not isinstance(raw, dict) or not isinstance(raw.get("name"), str):
            raise PlanError("every secret definition needs a name")
        name = raw["name"]
        if not _NAME_RE.match(name):
            raise PlanError("secret name %r: use upper case letters, digits and _ (an environment variable name)"
                            % name)
        if name in seen_names:
            raise PlanError("secret %s is defined twice" % name)
        seen_names.add(name)
        policy = raw.get("policy", "password")
        if policy not in ("password", "token"):
            raise PlanError("secret %s: policy must be password or token" % name)
        item = {
            "name": name,
            "policy": policy,
            "generate": bool(_default(raw.get("generate"), policy == "password")),
            "required": bool(_default(raw.get("required"), False)),
            "length": int(raw.get("length") or length),
            "min_length": int(raw.get("min_length") or (min_length if policy == "password" else 8)),
            "services": list(raw.get("services") or []),
            "file": raw.get("file") or name.lower(),
            "env": raw.get("env") or name,
            "consumer": raw.get("consumer") or "",
            "rotate": bool(_default(raw.get("rotate"), True)),
        }
        for key in ("owner", "group", "mode", "description"):
            if raw.get(key) not in (None, ""):
                item[key] = str(raw[key])
        if not _FILE_RE.match(item["file"]):
            raise PlanError("secret %s: file %r must be lower case letters, digits, '.', '_' or '-'"
                            % (name, item["file"]))
        if item["file"] in seen_files:
            raise PlanError("secret %s: file %s is used by another secret" % (name, item["file"]))
        seen_files.add(item["file"])
        if not _NAME_RE.match(item["env"]):
            raise PlanError("secret %s: env %r is not an environment variable name" % (name, item["env"]))
        if item["generate"] and item["length"] < max(16, item["min_length"]):
            raise PlanError("secret %s: length %d is below the policy minimum %d"
                            % (name, item["length"], max(16, item["min_length"])))
        if not all(isinstance(s, str) and s for s in item["services"]):
            raise PlanError("secret %s: services must be a list of compose service names" % name)
        result.append(item)
    return result


def _unquote(value):
    value = value.strip()
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
        return value[1:-1]
    return value


def parse_env(text):
    """``{NAME: value}`` of a .env file (last assignment wins; quotes removed)."""
    values = {}
    for line in (text or "").splitlines():
        match = _ENV_LINE_RE.match(line)
        if match and not line.lstrip().startswith("#"):
            values[match.group(1)] = _unquote(match.group(2))
    return values


def _render_env(text, names, values, with_block):
    """The .env text: lines assigning our names removed, our managed block appended (env delivery)."""
    kept = []
    inside = False
    for line in (text or "").splitlines():
        if line.strip() == BLOCK_BEGIN:
            inside = True
            continue
        if line.strip() == BLOCK_END:
            inside = False
            continue
        match = _ENV_LINE_RE.match(line)
        if inside or (match and match.group(1) in names and not line.lstrip().startswith("#")):
            continue
        kept.append(line)
    while kept and not kept[-1].strip():
        kept.pop()
    if with_block and values:
        if kept:
            kept.append("")
        kept.append(BLOCK_BEGIN)
        kept.extend("%s=%s" % (name, values[name]) for name in sorted(values))
        kept.append(BLOCK_END)
    if not kept:
        return ""
    return "\n".join(kept) + "\n"


def parse_time(value):
    """An ISO 8601 time (``Z`` allowed) as an aware datetime, UTC when it names no zone; None if unparsable."""
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=datetime.timezone.utc)
    return parsed


def _problems(defn, value, extra_words):
    words = list(extra_words) + [part.lower() for part in defn["name"].split("_") if len(part) >= 3]
    if defn["policy"] == "token":
        return check_token(value, defn["min_length"], extra_words=words)
    return check_secret(value, defn["min_length"], extra_words=words)


def plan_secrets(definitions, supplied=None, env_text=None, files=None, metadata=None, now=None, rotate=False,
                 rotation_days=90, length=32, min_length=16, symbols=SAFE_SYMBOLS, delivery="files",
                 extra_words=()):
    """Decide every secret's value; see the module docstring.  Returns a dictionary:

    ``values`` (name -> value to deliver), ``actions`` (name -> kept, generated,
    rotated, supplied or missing), ``reasons`` (name -> why it was rotated),
    ``changed`` (names whose value is new or different), ``replaced`` (names that
    had a value before and get a different one: their consumers must be
    updated), ``refused`` (name -> problems), ``cannot_rotate`` (names due for
    rotation that this role cannot regenerate), ``metadata`` (name -> set_at,
    source), ``env_content`` (the new .env text, or None to leave it alone),
    ``report`` (per secret: name, action, source, set_at, age_days, due).
    """
    defs = normalize_definitions(definitions, length=length, min_length=min_length)
    if delivery not in ("env", "files", "swarm"):
        raise PlanError("delivery must be env, files or swarm")
    supplied = {k: v for k, v in (supplied or {}).items() if v not in (None, "")}
    files = {k: v for k, v in (files or {}).items() if isinstance(v, str)}
    metadata = metadata if isinstance(metadata, dict) else {}
    names = [d["name"] for d in defs]
    unknown = sorted(set(supplied) - set(names))
    if unknown:
        raise PlanError("values were supplied for undefined secrets: %s (add them to secrets_extra)"
                        % ", ".join(unknown))
    if isinstance(rotate, (list, tuple)):
        unknown = sorted(set(rotate) - set(names))
        if unknown:
            raise PlanError("cannot rotate undefined secrets: %s" % ", ".join(unknown))
    now_dt = parse_time(now) or datetime.datetime.now(datetime.timezone.utc)
    now_str = now_dt.strftime("%Y-%m-%dT%H:%M:%SZ")
    env_values = parse_env(env_text)

    values, actions, reasons, previous, refused = {}, {}, {}, {}, {}
    cannot_rotate, due_names = [], set()
    for defn in defs:
        name = defn["name"]
        from_file = files.get(defn["file"])
        from_env = env_values.get(name)
        if delivery == "env":
            prev = from_env if from_env not in (None, "") else from_file
        else:
            prev = from_file if from_file not in (None, "") else from_env
        if prev == "":
            prev = None
        if prev is not None:
            previous[name] = prev
        set_at = parse_time((metadata.get(name) or {}).get("set_at"))
        age = (now_dt - set_at).days if set_at else None
        due = age is not None and age >= int(rotation_days)
        forced = rotate is True or (isinstance(rotate, (list, tuple)) and name in rotate)
        # rotate: false -> an existing value is never replaced (its consumer cannot follow)
        replaceable = defn["generate"] and defn["rotate"]
        if due:
            due_names.add(name)
        if name in supplied:
            values[name] = supplied[name]
            actions[name] = "supplied"
            problems = _problems(defn, supplied[name], extra_words)
            if problems:
                refused[name] = problems
            if due or forced:
                cannot_rotate.append(name)
        elif prev is not None:
            problems = _problems(defn, prev, extra_words)
            if replaceable and (forced or due or problems):
                values[name] = generate_secret(defn["length"], symbols)
                actions[name] = "rotated"
                reasons[name] = "forced" if forced else ("age" if due else "weak")
            else:
                values[name] = prev
                actions[name] = "kept"
                if problems:
                    refused[name] = ["(the value already on the host) " + p for p in problems]
                if due or forced:
                    cannot_rotate.append(name)
        elif defn["generate"]:
            values[name] = generate_secret(defn["length"], symbols)
            actions[name] = "generated"
        else:
            actions[name] = "missing"
            if defn["required"]:
                refused[name] = ["is required but was not supplied (set it in secrets_values, from the vault)"]

    # Shared values: regenerate what we may; refuse the rest, by name.
    for group in find_reused(values):
        for name in group:
            defn = defs[names.index(name)]
            if actions[name] == "kept" and defn["generate"] and defn["rotate"]:
                values[name] = generate_secret(defn["length"], symbols)
                actions[name] = "rotated"
                reasons[name] = "reused"
    for group in find_reused(values):
        for name in group:
            others = ", ".join(n for n in group if n != name)
            refused.setdefault(name, []).append("has the same value as %s (every service needs its own)" % others)

    changed = sorted(n for n in values if previous.get(n) != values[n])
    replaced = sorted(n for n in changed if n in previous)
    new_meta = {}
    report = []
    for defn in defs:
        name = defn["name"]
        if name not in values:
            report.append({"name": name, "action": actions[name], "source": "none", "set_at": None,
                           "age_days": None, "due": False})
            continue
        old = metadata.get(name) if isinstance(metadata.get(name), dict) else {}
        if name in changed or not parse_time(old.get("set_at")):
            source = {"supplied": "supplied", "kept": "existing"}.get(actions[name], "generated")
            entry = {"set_at": now_str, "source": source}
        else:
            entry = {"set_at": old["set_at"], "source": old.get("source", "existing")}
            if actions[name] == "supplied":
                entry["source"] = "supplied"
        new_meta[name] = entry
        age = (now_dt - parse_time(entry["set_at"])).days
        report.append({"name": name, "action": actions[name], "source": entry["source"], "set_at": entry["set_at"],
                       "age_days": age, "due": name in cannot_rotate or (name in due_names and name not in changed),
                       "reason": reasons.get(name, "")})

    if delivery == "env":
        env_content = _render_env(env_text, set(names), values, True)
    elif env_text is not None:
        env_content = _render_env(env_text, set(names), values, False)
    else:
        env_content = None
    return {
        "values": values,
        "actions": actions,
        "reasons": reasons,
        "changed": changed,
        "replaced": replaced,
        "refused": refused,
        "cannot_rotate": sorted(cannot_rotate),
        "metadata": new_meta,
        "env_content": env_content,
        "report": report,
        "definitions": defs,
    }


def scram_sha256(password, salt=None, iterations=4096):
    """The SCRAM-SHA-256 verifier PostgreSQL stores for ``password`` (``SCRAM-SHA-256$4096:salt$stored:server``).

    Giving PostgreSQL the verifier instead of the password keeps the password
    out of the server's logs and statistics.  PostgreSQL applies SASLprep to
    the password first, which leaves ASCII unchanged; for other text this
    function returns None (let the server hash it).
    """
    if not isinstance(password, str) or not password or not password.isascii():
        return None
    salt = os.urandom(16) if salt is None else salt
    salted = hashlib.pbkdf2_hmac("sha256", password.encode("ascii"), salt, int(iterations))
    client_key = hmac.new(salted, b"Client Key", hashlib.sha256).digest()
    stored_key = hashlib.sha256(client_key).digest()
    server_key = hmac.new(salted, b"Server Key", hashlib.sha256).digest()
    return "SCRAM-SHA-256$%d:%s$%s:%s" % (int(iterations), _b64(salt), _b64(stored_key), _b64(server_key))


def _b64(raw):
    return base64.b64encode(raw).decode("ascii")
