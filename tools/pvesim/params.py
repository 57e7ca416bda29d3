"""Parameter verification like PVE::JSONSchema (the error texts are the real ones).

Each API method declares its parameters as ``{name: spec}`` where a spec is a
dict with ``type`` (string, boolean, integer, number), and optionally
``optional``, ``default``, ``pattern``, ``format``, ``enum``, ``minimum``,
``maximum``, ``minLength``, ``maxLength`` and ``requires``.  ``verify`` either
returns the converted parameters or raises :class:`ParamError` with the
``errors`` map the real server returns with a 400.
"""
from __future__ import annotations

import re

from .privileges import VALID_PRIVS

USER_RE = r"[^\s:/]+"
REALM_RE = r"[A-Za-z][A-Za-z0-9.\-_]+"
TOKEN_SUBID_RE = REALM_RE
USERID_RE = re.compile(rf"^({USER_RE})@({REALM_RE})$")
TOKENID_FULL_RE = re.compile(rf"^(({USER_RE})@({REALM_RE}))!({TOKEN_SUBID_RE})$")
USERID_OR_TOKEN_RE = re.compile(rf"^{USER_RE}@{REALM_RE}(?:!{TOKEN_SUBID_RE})?$")
ROLEID_RE = re.compile(r"^[A-Za-z0-9.\-_]+$")
GROUPID_RE = re.compile(r"^[A-Za-z0-9.\-_]+$")
NODE_RE = re.compile(r"^(?:[a-zA-Z0-9](?:[a-zA-Z0-9\-]*[a-zA-Z0-9])?)$")
CONFIGID_RE = re.compile(r"^[a-z][a-z0-9_\-]+$", re.IGNORECASE)
STORAGEID_RE = re.compile(r"^[a-z][a-z0-9\-_.]*[a-z0-9]$", re.IGNORECASE)
EMAIL_RE = re.compile(r"^[\w+\-~]+(\.[\w+\-~]+)*@[a-zA-Z0-9\-]+(\.[a-zA-Z0-9\-]+)*$")
INT_RE = re.compile(r"^-?\d+$")
NUM_RE = re.compile(r"^[+-]?(\d+\.\d*|\d*\.\d+|\d+)([eE][+-]?\d+)?$")
STORAGE_CONTENT = {"images", "rootdir", "vztmpl", "iso", "backup", "snippets", "import"}
TASK_STATES = {"ok", "error", "warning", "unknown"}


class ParamError(Exception):
    """400 Parameter verification failed."""

    def __init__(self, errors: dict):
        super().__init__("Parameter verification failed.")
        self.errors = errors


def split_list(text: str) -> list:
    """PVE::Tools::split_list: NUL separated, else comma/semicolon/whitespace separated."""
    text = text or ""
    if "\0" in text:
        return text.split("\0")
    return [v for v in re.split(r"[,;\s]+", text.strip()) if v]


def verify_username(name) -> str:
    name = name or ""
    if len(name) < 3:
        raise ValueError(f"user name '{name}' is too short\n")
    if len(name) > 64:
        raise ValueError(f"user name '{name}' is too long ({len(name)} > 64)\n")
    if not USERID_RE.match(name):
        raise ValueError(f"value '{name}' does not look like a valid user name\n")
    return name


def _fmt_userid(value):
    verify_username(value)


def _fmt_tokenid(value):
    if not TOKENID_FULL_RE.match(value):
        raise ValueError(f"value '{value}' does not look like a valid token ID\n")


def _fmt_roleid(value):
    if not ROLEID_RE.match(value):
        raise ValueError(f"role name '{value}' contains invalid characters\n")


def _fmt_groupid(value):
    if not GROUPID_RE.match(value):
        raise ValueError(f"group name '{value}' contains invalid characters\n")


def _fmt_priv(value):
    if value not in VALID_PRIVS:
        raise ValueError(f"invalid privilege '{value}'\n")


def _fmt_node(value):
    if not NODE_RE.match(value):
        raise ValueError(f"value '{value}' does not look like a valid node name\n")


def _fmt_vmid(value):
    if not re.match(r"^[1-9][0-9]{2,8}$", str(value)):
        raise ValueError(f"value '{value}' does not look like a valid VM ID\n")


def _fmt_configid(value):
    if not CONFIGID_RE.match(value):
        raise ValueError(f"invalid configuration ID '{value}'\n")


def _fmt_storageid(value):
    if not STORAGEID_RE.match(value):
        raise ValueError(f"storage ID '{value}' contains illegal characters\n")


def _fmt_content(value):
    if value not in STORAGE_CONTENT:
        raise ValueError(f"invalid content type '{value}'\n")


def _fmt_email(value):
    if value and not EMAIL_RE.match(value):
        raise ValueError(f"value '{value}' does not look like a valid email address\n")


def _fmt_realm(value):
    if not re.match(rf"^{REALM_RE}$", value):
        raise ValueError(f"value '{value}' does not look like a valid realm name\n")


def _fmt_task_status(value):
    if value not in TASK_STATES:
        raise ValueError(f"invalid task status '{value}'\n")


FORMATS = {
    "pve-userid": _fmt_userid, "pve-tokenid": _fmt_tokenid, "pve-roleid": _fmt_roleid,
    "pve-groupid": _fmt_groupid, "pve-priv": _fmt_priv, "pve-node": _fmt_node, "pve-vmid": _fmt_vmid,
    "pve-configid": _fmt_configid, "pve-storage-id": _fmt_storageid, "pve-storage-content": _fmt_content,
    "email-opt": _fmt_email, "pve-realm": _fmt_realm, "pve-task-status-type": _fmt_task_status,
}


def check_format(fmt: str, value: str) -> None:
    if fmt.endswith("-list"):
        check = FORMATS[fmt[:-5]]
        for item in split_list(value):
            check(item)
    else:
        FORMATS[fmt](value)


def _scalar(value):
    """Values from JSON bodies: booleans become 1/0, numbers their text (like Perl)."""
    if value is True:
        return "1"
    if value is False:
        return "0"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, (int, float)):
        return str(value)
    return value


def _check_one(name: str, spec: dict, raw, errors: dict):  # pylint: disable=too-many-return-statements,too-many-branches
    value = _scalar(raw)
    kind = spec["type"]
    if not isinstance(value, str):
        errors[name] = f"type check ('{kind}') failed - got {type(raw).__name__.upper()}"
        return None
    if kind == "boolean":
        if value not in ("0", "1"):
            errors[name] = f"type check ('boolean') failed - got '{value}'"
            return None
        return int(value)
    if kind == "integer":
        if not INT_RE.match(value):
            errors[name] = f"type check ('integer') failed - got '{value}'"
            return None
        converted = int(value)
    elif kind == "number":
        if not NUM_RE.match(value):
            errors[name] = f"type check ('number') failed - got '{value}'"
            return None
        converted = float(value)
    else:
        converted = value
    if kind in ("integer", "number"):
        if "minimum" in spec and converted < spec["minimum"]:
            errors[name] = f"value must have a minimum value of {spec['minimum']}"
            return None
        if "maximum" in spec and converted > spec["maximum"]:
            errors[name] = f"value must have a maximum value of {spec['maximum']}"
            return None
    else:
        if "maxLength" in spec and len(value) > spec["maxLength"]:
            errors[name] = f"value may only be {spec['maxLength']} characters long"
            return None
        if "minLength" in spec and len(value) < spec["minLength"]:
            errors[name] = f"value must be at least {spec['minLength']} characters long"
            return None
    if "enum" in spec and value not in spec["enum"]:
        errors[name] = f"value '{value}' does not have a value in the enumeration '{', '.join(spec['enum'])}'"
        return None
    if "pattern" in spec and not re.fullmatch(spec["pattern"], value):
        errors[name] = "value does not match the regex pattern"
        return None
    if "format" in spec:
        try:
            check_format(spec["format"], value)
        except ValueError as exc:
            errors[name] = f"invalid format - {exc}"
            return None
    return converted


def verify(specs: dict, params: dict) -> dict:
    """Check ``params`` (strings, as received) against ``specs``; return converted values."""
    errors: dict = {}
    result: dict = {}
    for name, spec in specs.items():
        if name not in params or params[name] is None:
            if not spec.get("optional"):
                errors[name] = "property is missing and it is not optional"
            continue
        converted = _check_one(name, spec, params[name], errors)
        if name not in errors:
            result[name] = converted
        requires = spec.get("requires")
        if requires and params.get(requires) is None:
            errors[requires] = f"missing property - '{name}' requires this property"
    for name in params:
        if name not in specs:
            errors[name] = "property is not defined in schema and the schema does not allow additional properties"
    if errors:
        raise ParamError(errors)
    return result


def opt(spec: dict, **extra) -> dict:
    """An optional variant of a shared spec."""
    merged = dict(spec, optional=1)
    merged.update(extra)
    return merged


# Shared parameter specs (names, types and formats as in the PVE 9 schema).
STRING = {"type": "string"}
BOOL = {"type": "boolean"}
INT = {"type": "integer"}
NODE = {"type": "string", "format": "pve-node"}
VMID = {"type": "integer", "format": "pve-vmid", "minimum": 100, "maximum": 999999999}
USERID = {"type": "string", "format": "pve-userid", "maxLength": 64}
ROLEID = {"type": "string", "format": "pve-roleid"}
GROUPID = {"type": "string", "format": "pve-groupid"}
TOKENID = {"type": "string", "pattern": rf"(?:{TOKEN_SUBID_RE})"}
SNAPNAME = {"type": "string", "format": "pve-configid", "maxLength": 40}
EXPIRE = {"type": "integer", "minimum": 0, "optional": 1}
