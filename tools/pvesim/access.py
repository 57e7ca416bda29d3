"""Users, groups, roles, tokens and ACLs with the semantics of PVE::AccessControl.

The data lives in plain dicts (see :func:`empty_access`) so that it can be
persisted as JSON; the functions below implement the real rules: propagation
down the path tree, the most specific ACL level overriding, users overriding
groups, NoAccess, and privilege separation for API tokens.
"""
from __future__ import annotations

import hashlib
import hmac
import os
import re

from .privileges import BUILTIN_ROLES, VALID_PRIVS

ROOT = "root@pam"
_NAME = r"[A-Za-z0-9.\-_]+"
_ACL_PATH_RE = re.compile(
    r"^(/|/access|/access/groups|/access/groups/N|/access/realm|/access/realm/N|/nodes|/nodes/N|/pool|"
    r"/pool/N|/sdn|/sdn/zones|/sdn/zones/N|/sdn/zones/N/N|/sdn/zones/N/N/[1-9][0-9]{0,3}|/storage|"
    r"/storage/N|/vms|/vms/[1-9][0-9]{2,}|/mapping|/mapping/N|/mapping/N/N)$".replace("N", _NAME))


def empty_access() -> dict:
    return {
        "users": {},      # userid -> {enable, expire, firstname, lastname, email, comment, keys, tokens, password}
        "groups": {},     # groupid -> {comment, users: [userid]}
        "roles": {},      # custom roleid -> [privs]
        "acl": {},        # normalized path -> {"user"|"group"|"token": {ugid: {roleid: propagate}}}
        "realms": {"pam": {"type": "pam"}, "pve": {"type": "pve"}},
    }


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def hash_password(password: str, salt: bytes | None = None) -> str:
    salt = salt or os.urandom(16)
    digest = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, 20000)
    return f"pbkdf2${salt.hex()}${digest.hex()}"


def check_password(stored: str | None, password: str) -> bool:
    if not stored or not stored.startswith("pbkdf2$"):
        return False
    salt = stored.split("$")[1]
    return hmac.compare_digest(hash_password(password, bytes.fromhex(salt)), stored)


def normalize_path(path: str | None) -> str | None:
    """PVE::AccessControl::normalize_path: collapse slashes, drop the trailing one, allow [[:alnum:]._-/]."""
    if not path:
        return None
    path = re.sub(r"/+", "/", path)
    if path.endswith("/"):
        path = path[:-1]
    if not path:
        path = "/"
    if not path.startswith("/"):
        path = "/" + path
    if not re.match(r"^[A-Za-z0-9.\-_/]+$", path):
        return None
    return path


def check_path(path: str) -> bool:
    """PVE::AccessControl::check_path: the ACL paths the real server accepts."""
    return bool(_ACL_PATH_RE.match(path))


def role_privs(access: dict, roleid: str):
    """The privilege set of a role, or None when the role does not exist."""
    if roleid in BUILTIN_ROLES:
        return BUILTIN_ROLES[roleid]
    privs = access["roles"].get(roleid)
    return None if privs is None else frozenset(privs)


def all_roles(access: dict) -> dict:
    roles = dict(BUILTIN_ROLES)
    roles.update({k: frozenset(v) for k, v in access["roles"].items()})
    return roles


def user_groups(access: dict, userid: str) -> list:
    return sorted(g for g, data in access["groups"].items() if userid in data.get("users", []))


def split_tokenid(tokenid: str):
    if "!" not in tokenid:
        return None, None
    user, token = tokenid.split("!", 1)
    return user, token


def _components(path) -> tuple:
    """'/vms/100' -> ('', 'vms', '100'); tuples pass through unchanged."""
    if isinstance(path, tuple):
        return path
    if path == "/":
        return ("",)
    return tuple(path.split("/"))


class PermissionCache:
    """Computes effective privileges for one request (like RPCEnvironment's ACL cache).

    ``privs(subject, path)`` returns ``{priv: propagate}``; a key being present
    means the privilege is granted.  ``subject`` is a userid or a full token id.
    Paths are strings or tuples of components; a component ``None`` stands for
    "a child without an ACL node of its own", so whole subtrees are checked at once.
    """

    def __init__(self, access: dict):
        self.access = access
        self.roles = all_roles(access)
        self._cache: dict = {}
        self._groups: dict = {}

    def _member_groups(self, userid: str) -> set:
        if userid not in self._groups:
            self._groups[userid] = {g for g, d in self.access["groups"].items() if userid in d.get("users", [])}
        return self._groups[userid]

    def roles_on(self, subject: str, path) -> dict:
        """PVE::AccessControl::roles for a user, or a token's own ACLs."""
        comps = _components(path)
        acl = self.access["acl"]
        is_token = "!" in subject
        groups = set() if is_token else self._member_groups(subject)
        kind = "token" if is_token else "user"
        roles: dict = {}
        current = ""
        for index, comp in enumerate(comps):
            final = index == len(comps) - 1
            if comp is None:
                continue
            current = "/" if comp == "" else (current.rstrip("/") + "/" + comp)
            node = acl.get(current)
            if not node:
                continue
            new = None
            for role, propagate in (node.get(kind, {}).get(subject) or {}).items():
                if final or propagate:
                    new = new or {}
                    new[role] = propagate
            if new is not None:
                roles = new  # user (or token) entries always override group entries
                continue
            if is_token:
                continue
            for group, entry in node.get("group", {}).items():
                if group not in groups:
                    continue
                for role, propagate in entry.items():
                    if final or propagate:
                        new = new or {}
                        new[role] = propagate
            if new is not None:
                roles = new
        if "NoAccess" in roles:
            return {"NoAccess": roles["NoAccess"]}
        return roles

    def privs(self, subject: str, path) -> dict:
        key = (subject, _components(path))
        if key not in self._cache:
            self._cache[key] = self._compute(subject, key[1])
        return self._cache[key]

    def _compute(self, subject: str, comps: tuple) -> dict:
        users = self.access["users"]
        if subject == ROOT:
            return {p: 1 for p in VALID_PRIVS}
        if "!" in subject:
            userid, token = split_tokenid(subject)
            info = users.get(userid, {}).get("tokens", {}).get(token)
            if info is None:
                return {}
            user_privs = self.privs(userid, comps)
            if not info.get("privsep", 1):
                return user_privs
            own = self._privs_from_roles(self.roles_on(subject, comps))
            if userid == ROOT:
                return own  # root@pam has every privilege: the token's own ACLs decide
            return {p: (1 if (user_privs[p] and prop) else 0) for p, prop in own.items() if p in user_privs}
        if subject not in users:
            return {}
        return self._privs_from_roles(self.roles_on(subject, comps))

    def _privs_from_roles(self, roles: dict) -> dict:
        privs: dict = {}
        for role, propagate in roles.items():
            for priv in self.roles.get(role, ()):
                privs[priv] = 1 if (privs.get(priv) or propagate) else 0
        return privs

    def check(self, subject: str, path, privs) -> bool:
        have = self.privs(subject, path)
        return all(p in have for p in privs)

    def check_any(self, subject: str, path, privs) -> bool:
        have = self.privs(subject, path)
        return any(p in have for p in privs)


def acl_list(access: dict) -> list:
    """GET /access/acl entries (path, type, ugid, roleid, propagate)."""
    result = []
    for path in sorted(access["acl"]):
        node = access["acl"][path]
        for kind in ("user", "group", "token"):
            for ugid in sorted(node.get(kind, {})):
                for roleid in sorted(node[kind][ugid]):
                    result.append({"path": path, "type": kind, "ugid": ugid, "roleid": roleid,
                                   "propagate": int(node[kind][ugid][roleid])})
    return result


def remove_subject_acl(access: dict, kind: str, ugid: str) -> None:
    for path in list(access["acl"]):
        node = access["acl"][path]
        node.get(kind, {}).pop(ugid, None)
        if not any(node.get(k) for k in ("user", "group", "token")):
            del access["acl"][path]
