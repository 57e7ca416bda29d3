"""Every role's meta/argument_specs.yml matches its defaults/main.yml.

Names, types and default values must agree, every variable carries the role's
name as prefix, and every option is described, so the documentation generated
from the specs can never drift from what the role really does.
"""
from __future__ import annotations

import os

import pytest
import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
ROLES_DIR = os.path.join(ROOT, "roles")
ROLES = sorted(d for d in os.listdir(ROLES_DIR) if os.path.isdir(os.path.join(ROLES_DIR, d))) if os.path.isdir(ROLES_DIR) else []

TYPES = {
    "str": (str,),
    "path": (str,),
    "bool": (bool,),
    "int": (int,),
    "float": (float, int),
    "list": (list,),
    "dict": (dict,),
}


def _load(path):
    if not os.path.exists(path):
        return None
    with open(path, encoding="utf-8") as handle:
        return yaml.safe_load(handle)


def _check_option(role, name, spec, defaults, problems):
    if not name.startswith(role + "_"):
        problems.append(f"{name}: variable does not start with the role name '{role}_'")
    if not spec.get("description"):
        problems.append(f"{name}: no description")
    typ = spec.get("type", "str")
    if name not in defaults:
        if not spec.get("required"):
            problems.append(f"{name}: in argument_specs but not in defaults/main.yml and not required")
        if "default" in spec:
            problems.append(f"{name}: argument_specs has a default but defaults/main.yml has none")
        return
    value = defaults[name]
    if value is None:
        if spec.get("default") is not None:
            problems.append(f"{name}: defaults/main.yml is null but argument_specs default is {spec.get('default')!r}")
        return
    if "default" not in spec:
        problems.append(f"{name}: defaults/main.yml sets {value!r} but argument_specs has no default")
    elif spec["default"] != value:
        problems.append(f"{name}: argument_specs default {spec['default']!r} != defaults/main.yml {value!r}")
    if typ != "raw":
        allowed = TYPES.get(typ)
        if allowed is None:
            problems.append(f"{name}: unknown type {typ!r}")
        elif not isinstance(value, allowed) or (typ in ("int", "float") and isinstance(value, bool)):
            problems.append(f"{name}: type {typ} but defaults/main.yml value is {type(value).__name__}")
        elif typ == "list" and spec.get("elements") in TYPES and spec.get("elements") != "raw":
            bad = [v for v in value if not isinstance(v, TYPES[spec["elements"]])]
            if bad:
                problems.append(f"{name}: elements {spec['elements']} but defaults hold {bad!r}")
    if "choices" in spec and value not in spec["choices"]:
        problems.append(f"{name}: default {value!r} not in choices {spec['choices']!r}")


@pytest.mark.parametrize("role", ROLES)
def test_argument_specs_match_defaults(role):
    base = os.path.join(ROLES_DIR, role)
    specs = _load(os.path.join(base, "meta", "argument_specs.yml"))
    defaults = _load(os.path.join(base, "defaults", "main.yml")) or {}
    assert specs, f"roles/{role}/meta/argument_specs.yml is missing or empty"
    main = specs["argument_specs"]["main"]
    assert main.get("short_description"), f"roles/{role}: argument_specs main has no short_description"
    options = main.get("options") or {}
    problems: list[str] = []
    for name, spec in options.items():
        _check_option(role, name, spec, defaults, problems)
    for name in defaults:
        if name not in options:
            problems.append(f"{name}: in defaults/main.yml but not described in meta/argument_specs.yml")
    assert not problems, f"roles/{role}:\n  " + "\n  ".join(problems)


def test_checker_catches_drift():
    """The comparison itself must fail on drift (a checker that cannot fail is worthless)."""
    problems: list[str] = []
    _check_option("demo", "demo_port", {"type": "int", "default": 80, "description": "x"}, {"demo_port": 8080}, problems)
    _check_option("demo", "demo_flag", {"type": "bool", "default": "yes", "description": "x"}, {"demo_flag": "yes"}, problems)
    _check_option("demo", "other_name", {"type": "str", "default": "a", "description": "x"}, {"other_name": "a"}, problems)
    _check_option("demo", "demo_missing", {"type": "str", "default": "a", "description": "x"}, {}, problems)
    assert len(problems) == 5, problems
    assert any("other_name" in p and "role name" in p for p in problems)
