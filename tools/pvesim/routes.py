"""Route table, request context, errors and the permission checks of PVE::RPCEnvironment."""
from __future__ import annotations

import re

from . import params as P
from .access import PermissionCache, ROOT, normalize_path


class ApiError(Exception):
    """An error answer: HTTP status, message (its first line is the reason phrase), errors map."""

    def __init__(self, status: int, message: str, errors: dict | None = None, body: bool = True):
        super().__init__(message)
        self.status = status
        self.message = message
        self.errors = errors
        self.body = body


def raise_perm(what: str | None = None):
    msg = "Permission check failed"
    if what:
        msg += f" ({what})"
    raise ApiError(403, msg + "\n")


def fail(message: str):
    """A handler error: HTTP 500 with the message as reason phrase."""
    raise ApiError(500, message if message.endswith("\n") else message + "\n")


def param_error(errors: dict):
    raise ApiError(400, "Parameter verification failed.\n", errors)


class Route:  # pylint: disable=too-few-public-methods,too-many-instance-attributes
    def __init__(self, method, path, handler, params, perm, allowtoken=1, proxyto=None, protected=0):  # pylint: disable=too-many-arguments
        self.method = method
        self.path = path
        self.handler = handler
        self.params = params or {}
        self.perm = perm
        self.allowtoken = allowtoken
        self.proxyto = proxyto
        self.protected = protected
        pattern = re.sub(r"\\\{(\w+)\\\}", r"(?P<\1>[^/]+)", re.escape(path))
        self.regex = re.compile(f"^{pattern}$")


_BY_METHOD: dict = {}


def route(method: str, path: str, params=None, perm=None, **flags):
    """Register a handler; ``perm`` is the schema's ``permissions`` (user=all/world or a check list)."""
    def wrap(func):
        _BY_METHOD.setdefault(method, []).append(Route(method, path, func, params, perm, **flags))
        return func
    return wrap


def find(method: str, path: str):
    for entry in _BY_METHOD.get(method, ()):
        match = entry.regex.match(path)
        if match:
            return entry, dict(match.groupdict())
    return None, None


def _template(tmpl: str, param: dict) -> str:
    return re.sub(r"\{(\w+)\}", lambda m: str(param.get(m.group(1), "")), tmpl)


class Context:
    """One request: the simulator, who is asking, and a permission cache."""

    def __init__(self, sim, authid: str | None, is_token: bool):
        self.sim = sim
        self.state = sim.state
        self.authid = authid
        self.is_token = is_token
        self.perms = PermissionCache(sim.state.access)

    def check(self, path: str, privs, noerr=False) -> bool:
        if self.authid == ROOT or self.perms.check(self.authid, path, privs):
            return True
        if noerr:
            return False
        for priv in privs:
            if not self.perms.check(self.authid, path, [priv]):
                raise_perm(f"{path}, {priv}")
        return True

    def check_any(self, path: str, privs, noerr=False) -> bool:
        if self.authid == ROOT or self.perms.check_any(self.authid, path, privs):
            return True
        if noerr:
            return False
        raise_perm(f"{path}, " + "|".join(privs))
        return False

    def check_user_exist(self, userid, noerr=False):
        try:
            userid = P.verify_username(userid)
        except ValueError as exc:
            if noerr:
                return None
            fail(str(exc))
        user = self.state.access["users"].get(userid)
        if user is None and not noerr:
            fail(f"no such user ('{userid}')")
        return user

    def filter_groups(self, privs) -> set:
        return {g for g in self.state.access["groups"] if self.check_any(f"/access/groups/{g}", privs, noerr=True)}

    def group_members(self, groups) -> set:
        members = set()
        for group in groups:
            members.update(self.state.access["groups"].get(group, {}).get("users", []))
        return members

    def check_perm_modify(self, path: str | None, noerr=False) -> bool:
        if not path:
            return self.check("/access", ["Permissions.Modify"], noerr)
        privs = ["Permissions.Modify"]
        if re.match(r"^/storage/.+$", path):
            privs.append("Datastore.Allocate")
        elif re.match(r"^/vms/.+$", path):
            privs.append("VM.Allocate")
        elif re.match(r"^/pool/.+$", path):
            privs.append("Pool.Allocate")
        return self.check_any(path, privs, noerr)

    def _userid_group(self, check: list, param: dict, noerr: bool) -> bool:
        privs = check[1]
        opts = dict(zip(check[2::2], check[3::2]))
        userid = param.get("userid")
        check_existing = opts.get("groups_param") != "create"
        if check_existing and not self.check_user_exist(userid, noerr):
            return False
        if not self.check_any("/access/groups", privs, noerr=True):
            groups = self.filter_groups(privs)
            if opts.get("groups_param"):
                wanted = P.split_list(param.get("groups") or "")
                if not wanted:
                    raise_perm("/access/groups, " + "|".join(privs))
                for group in wanted:
                    if group not in groups:
                        raise_perm(f"/access/groups/{group}, " + "|".join(privs))
            if check_existing and userid not in self.group_members(groups):
                if noerr:
                    return False
                raise_perm()
        return True

    def _userid_param(self, check: list, param: dict, noerr: bool) -> bool:
        try:
            userid = P.verify_username(param.get("userid"))
        except ValueError as exc:
            fail(str(exc))
        if check[1] == "self":
            if not self.check_user_exist(userid, noerr):
                return False
            if self.authid == userid:
                return True
            if noerr:
                return False
            raise_perm()
        realm = userid.rsplit("@", 1)[1]
        return self.check(f"/access/realm/{realm}", ["Realm.AllocateUser"], noerr)

    def perm_check(self, check: list, param: dict, noerr=False) -> bool:  # pylint: disable=too-many-return-statements
        """RPCEnvironment::exec_api2_perm_check."""
        test = check[0]
        if test == "and":
            for sub in check[1:]:
                self.perm_check(sub, param)
            return True
        if test == "or":
            for sub in check[1:]:
                if self.perm_check(sub, param, True):
                    return True
            if noerr:
                return False
            raise_perm()
        if test == "perm":
            opts = dict(zip(check[3::2], check[4::2]))
            path = normalize_path(_template(check[1], param))
            if opts.get("any"):
                return self.check_any(path, check[2], noerr)
            return self.check(path, check[2], noerr)
        if test == "userid-group":
            return self._userid_group(check, param, noerr)
        if test == "userid-param":
            return self._userid_param(check, param, noerr)
        if test == "perm-modify":
            path = normalize_path(_template(check[1], param))
            if path is None:
                return False
            return self.check_perm_modify(path, noerr)
        raise ApiError(500, "unknown permission test\n")

    def check_api2_permissions(self, perm: dict, param: dict) -> None:
        if not self.authid and perm.get("user") == "world":
            return
        if not self.authid:
            raise_perm("user != null")
        if self.authid == ROOT or perm.get("user") in ("all", "world"):
            return
        if perm.get("check"):
            self.perm_check(perm["check"], param)
            return
        raise_perm()


def validate(entry: Route, params: dict) -> dict:
    try:
        return P.verify(entry.params, params)
    except P.ParamError as exc:
        param_error(exc.errors)
    return {}
