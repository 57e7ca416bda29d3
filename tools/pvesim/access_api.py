"""/access: roles, users, groups, tokens, ACLs, permissions and tickets."""
from __future__ import annotations

import uuid

from . import access as A
from . import params as P
from .privileges import BUILTIN_ROLES, VALID_PRIVS, is_special
from .routes import ApiError, fail, param_error, route

USERID, ROLEID, GROUPID, TOKENID = P.USERID, P.ROLEID, P.GROUPID, P.TOKENID
ALL = {"user": "all"}
SYS_MODIFY = {"check": ["perm", "/access", ["Sys.Modify"]]}
GROUP_ALLOCATE = {"check": ["perm", "/access/groups", ["Group.Allocate"]]}
USER_FIELDS = ("enable", "expire", "firstname", "lastname", "email", "comment", "keys")
TEXT_FIELDS = ("firstname", "lastname", "email", "comment", "keys")
USER_PARAMS = {
    "enable": P.opt(P.BOOL, default=1), "expire": P.EXPIRE,
    "firstname": P.opt(P.STRING, maxLength=1024), "lastname": P.opt(P.STRING, maxLength=1024),
    "email": P.opt(P.STRING, format="email-opt", maxLength=254),
    "comment": P.opt(P.STRING, maxLength=2048), "keys": P.opt(P.STRING, pattern=r"[0-9a-zA-Z!=]{0,4096}"),
    "groups": P.opt(P.STRING, format="pve-groupid-list"),
}
TOKEN_OPTS = {"expire": P.EXPIRE, "privsep": P.opt(P.BOOL, default=1), "comment": P.opt(P.STRING)}
OWN_OR_USER_MODIFY = {"check": ["or", ["userid-param", "self"], ["userid-group", ["User.Modify"]]]}
PRIVS = P.opt(P.STRING, format="pve-priv-list")


def quorate(ctx):
    """Configuration writes need quorum (cfs_lock), like on a real cluster."""
    if not ctx.state.data["cluster"]["quorate"]:
        fail("cluster not ready - no quorum?")


@route("GET", "/access", perm=ALL)
def access_index(_ctx, _params):
    return [{"subdir": s} for s in ("users", "groups", "roles", "acl", "domains", "openid", "tfa", "ticket",
                                    "password")]


# -- roles -------------------------------------------------------------------
@route("GET", "/access/roles", perm=ALL)
def roles_index(ctx, _params):
    return [{"roleid": roleid, "privs": ",".join(sorted(privs)), "special": 1 if is_special(roleid) else 0}
            for roleid, privs in sorted(A.all_roles(ctx.state.access).items())]


def _privs(text, errmsg) -> list:
    result = []
    for priv in P.split_list(text or ""):
        if priv not in VALID_PRIVS:
            fail(f"{errmsg}: invalid privilege '{priv}'")
        result.append(priv)
    return result


@route("POST", "/access/roles", params={"roleid": ROLEID, "privs": PRIVS}, perm=SYS_MODIFY, protected=1)
def role_create(ctx, params):
    role = params["roleid"]
    if role.upper().startswith("PVE"):
        param_error({"roleid": "cannot use role ID starting with the (case-insensitive) 'PVE' namespace"})
    quorate(ctx)
    roles = ctx.state.access["roles"]
    if role in roles or role in BUILTIN_ROLES:
        fail(f"create role failed: role '{role}' already exists")
    roles[role] = sorted(set(_privs(params.get("privs"), "create role failed")))
    ctx.state.touch()


@route("GET", "/access/roles/{roleid}", params={"roleid": ROLEID}, perm=ALL)
def role_read(ctx, params):
    privs = A.role_privs(ctx.state.access, params["roleid"])
    if privs is None:
        fail(f"role '{params['roleid']}' does not exist")
    return {p: 1 for p in sorted(privs)}


@route("PUT", "/access/roles/{roleid}", params={"roleid": ROLEID, "privs": PRIVS, "append": P.opt(P.BOOL, requires="privs")},
       perm=SYS_MODIFY, protected=1)
def role_update(ctx, params):
    role = params["roleid"]
    if is_special(role):
        fail(f"auto-generated role '{role}' cannot be modified")
    quorate(ctx)
    roles = ctx.state.access["roles"]
    if role not in roles:
        fail(f"update role failed: role '{role}' does not exist")
    current = set(roles[role]) if params.get("append") else set()
    current.update(_privs(params.get("privs"), "update role failed"))
    roles[role] = sorted(current)
    ctx.state.touch()


@route("DELETE", "/access/roles/{roleid}", params={"roleid": ROLEID}, perm=SYS_MODIFY, protected=1)
def role_delete(ctx, params):
    role = params["roleid"]
    if is_special(role):
        fail(f"auto-generated role '{role}' cannot be deleted")
    quorate(ctx)
    roles = ctx.state.access["roles"]
    if role not in roles:
        fail(f"delete role failed: role '{role}' does not exist")
    del roles[role]  # ACL entries naming the role stay, like on the real server
    ctx.state.touch()


# -- groups ------------------------------------------------------------------
@route("GET", "/access/groups", perm=ALL)
def groups_index(ctx, _params):
    result = []
    for gid, data in sorted(ctx.state.access["groups"].items()):
        if not ctx.check_any(f"/access/groups/{gid}", ["User.Modify", "Sys.Audit", "Group.Allocate"], noerr=True):
            continue
        entry = {"groupid": gid, "users": ",".join(sorted(data.get("users", [])))}
        if data.get("comment"):
            entry["comment"] = data["comment"]
        result.append(entry)
    return result


@route("POST", "/access/groups", params={"groupid": GROUPID, "comment": P.opt(P.STRING)}, perm=GROUP_ALLOCATE,
       protected=1)
def group_create(ctx, params):
    quorate(ctx)
    groups = ctx.state.access["groups"]
    gid = params["groupid"]
    if gid in groups:
        fail(f"create group failed: group '{gid}' already exists")
    groups[gid] = {"users": []}
    if params.get("comment"):
        groups[gid]["comment"] = params["comment"]
    ctx.state.touch()


def _group(ctx, gid, errmsg=None):
    group = ctx.state.access["groups"].get(gid)
    if group is None:
        fail(f"{errmsg}: group '{gid}' does not exist" if errmsg else f"group '{gid}' does not exist")
    return group


@route("GET", "/access/groups/{groupid}", params={"groupid": GROUPID},
       perm={"check": ["perm", "/access/groups", ["Sys.Audit", "Group.Allocate"], "any", 1]})
def group_read(ctx, params):
    group = _group(ctx, params["groupid"])
    result = {"members": sorted(group.get("users", []))}
    if group.get("comment"):
        result["comment"] = group["comment"]
    return result


@route("PUT", "/access/groups/{groupid}", params={"groupid": GROUPID, "comment": P.opt(P.STRING)},
       perm=GROUP_ALLOCATE, protected=1)
def group_update(ctx, params):
    quorate(ctx)
    group = _group(ctx, params["groupid"], "update group failed")
    if "comment" in params:
        group["comment"] = params["comment"]
    ctx.state.touch()


@route("DELETE", "/access/groups/{groupid}", params={"groupid": GROUPID}, perm=GROUP_ALLOCATE, protected=1)
def group_delete(ctx, params):
    quorate(ctx)
    gid = params["groupid"]
    _group(ctx, gid, "delete group failed")
    del ctx.state.access["groups"][gid]
    A.remove_subject_acl(ctx.state.access, "group", gid)
    ctx.state.touch()


# -- users -------------------------------------------------------------------
def _token_info(token: dict) -> dict:
    info = {"privsep": int(token.get("privsep", 1)), "expire": int(token.get("expire") or 0)}
    if token.get("comment"):
        info["comment"] = token["comment"]
    return info


def _user_entry(acc: dict, userid: str, data: dict, full: bool) -> dict:
    entry = {k: data[k] for k in USER_FIELDS if data.get(k) not in (None, "")}
    entry["enable"] = int(data.get("enable") or 0)
    entry["expire"] = int(data.get("expire") or 0)
    if full:
        entry["groups"] = A.user_groups(acc, userid)
        entry["tokens"] = {name: _token_info(tok) for name, tok in data.get("tokens", {}).items()}
    return entry


@route("GET", "/access/users", params={"enabled": P.opt(P.BOOL), "full": P.opt(P.BOOL, default=0)}, perm=ALL,
       protected=1)
def users_index(ctx, params):
    acc = ctx.state.access
    privs = ["User.Modify", "Sys.Audit"]
    can_all = ctx.check_any("/access/groups", privs, noerr=True)
    allowed = set() if can_all else ctx.group_members(ctx.filter_groups(privs))
    result = []
    for userid in sorted(acc["users"]):
        if not (can_all or userid == ctx.authid or userid in allowed):
            continue
        entry = _user_entry(acc, userid, acc["users"][userid], bool(params.get("full")))
        if "enabled" in params and bool(entry["enable"]) != bool(params["enabled"]):
            continue
        if params.get("full"):
            entry["groups"] = ",".join(entry["groups"])
            entry["tokens"] = [dict(tokenid=name, **info) for name, info in sorted(entry["tokens"].items())]
        realm = userid.rsplit("@", 1)[1]
        if realm in acc["realms"]:
            entry["realm-type"] = acc["realms"][realm]["type"]
        entry["userid"] = userid
        result.append(entry)
    return result


def _join_groups(acc, userid, groups, replace):
    if replace:
        for data in acc["groups"].values():
            if userid in data.get("users", []):
                data["users"].remove(userid)
    for group in groups:
        members = acc["groups"][group].setdefault("users", [])
        if userid not in members:
            members.append(userid)


@route("POST", "/access/users",
       params=dict(USER_PARAMS, userid=USERID, password=P.opt(P.STRING, minLength=8, maxLength=64)),
       perm={"check": ["and", ["userid-param", "Realm.AllocateUser"],
                       ["userid-group", ["User.Modify"], "groups_param", "create"]]}, protected=1)
def user_create(ctx, params):
    quorate(ctx)
    acc = ctx.state.access
    userid = params["userid"]
    realm = userid.rsplit("@", 1)[1]
    if userid in acc["users"]:
        fail(f"create user failed: user '{userid}' already exists")
    if "password" in params and realm not in acc["realms"]:
        fail(f"create user failed: auth domain '{realm}' does not exist")
    groups = P.split_list(params.get("groups") or "")
    for group in groups:
        if group not in acc["groups"]:
            fail(f"create user failed: no such group '{group}'")
    user = {"enable": params.get("enable", 1), "expire": params.get("expire") or 0, "tokens": {}}
    user.update({k: params[k] for k in TEXT_FIELDS if params.get(k)})
    if "password" in params:
        user["password"] = A.hash_password(params["password"])
    acc["users"][userid] = user
    _join_groups(acc, userid, groups, False)
    ctx.state.touch()


@route("GET", "/access/users/{userid}", params={"userid": USERID},
       perm={"check": ["userid-group", ["User.Modify", "Sys.Audit"]]})
def user_read(ctx, params):
    data = ctx.check_user_exist(params["userid"])
    return _user_entry(ctx.state.access, params["userid"], data, True)


@route("PUT", "/access/users/{userid}",
       params=dict(USER_PARAMS, userid=USERID, append=P.opt(P.BOOL, requires="groups")),
       perm={"check": ["userid-group", ["User.Modify"], "groups_param", "update"]}, protected=1)
def user_update(ctx, params):
    quorate(ctx)
    acc = ctx.state.access
    userid = params["userid"]
    user = acc["users"].get(userid)
    if user is None:
        fail(f"update user failed: no such user ('{userid}')")
    if "groups" in params:
        wanted = P.split_list(params["groups"])
        for group in wanted:
            if group not in acc["groups"]:
                fail(f"update user failed: no such group '{group}'")
        _join_groups(acc, userid, wanted, not params.get("append"))
    for key in ("enable", "expire") + TEXT_FIELDS:
        if key in params:
            user[key] = params[key]
    ctx.state.touch()


@route("DELETE", "/access/users/{userid}", params={"userid": USERID},
       perm={"check": ["and", ["userid-param", "Realm.AllocateUser"], ["userid-group", ["User.Modify"]]]}, protected=1)
def user_delete(ctx, params):
    quorate(ctx)
    acc = ctx.state.access
    userid = params["userid"]
    user = acc["users"].get(userid)
    if user is None:
        fail(f"delete user failed: no such user ('{userid}')")
    for token in user.get("tokens", {}):
        A.remove_subject_acl(acc, "token", f"{userid}!{token}")
    del acc["users"][userid]
    _join_groups(acc, userid, [], True)
    A.remove_subject_acl(acc, "user", userid)
    ctx.state.touch()


@route("PUT", "/access/password",
       params={"userid": USERID, "password": {"type": "string", "minLength": 8, "maxLength": 64},
               "confirmation-password": P.opt(P.STRING, minLength=5, maxLength=64)},
       perm={"check": ["or", ["userid-param", "self"],
                       ["and", ["userid-param", "Realm.AllocateUser"], ["userid-group", ["User.Modify"]]]]},
       allowtoken=0, protected=1)
def change_password(ctx, params):
    quorate(ctx)
    userid = params["userid"]
    user = ctx.check_user_exist(userid)
    if ctx.authid not in (A.ROOT, userid) and (userid == A.ROOT or userid.endswith("@pam")):
        raise ApiError(403, "Permission check failed\n")
    user["password"] = A.hash_password(params["password"])
    ctx.state.touch()


# -- tokens ------------------------------------------------------------------
def _token(ctx, userid, tokenid):
    user = ctx.check_user_exist(userid)
    token = user.get("tokens", {}).get(tokenid)
    if token is None:
        fail(f"no such token '{tokenid}' for user '{userid}'")
    return token


@route("GET", "/access/users/{userid}/token", params={"userid": USERID}, perm=OWN_OR_USER_MODIFY)
def token_index(ctx, params):
    user = ctx.check_user_exist(params["userid"])
    return [dict(tokenid=name, **_token_info(tok)) for name, tok in sorted(user.get("tokens", {}).items())]


@route("GET", "/access/users/{userid}/token/{tokenid}", params={"userid": USERID, "tokenid": TOKENID},
       perm=OWN_OR_USER_MODIFY)
def token_read(ctx, params):
    return _token_info(_token(ctx, params["userid"], params["tokenid"]))


@route("POST", "/access/users/{userid}/token/{tokenid}", params=dict(TOKEN_OPTS, userid=USERID, tokenid=TOKENID),
       perm=OWN_OR_USER_MODIFY, protected=1)
def token_create(ctx, params):
    userid, tokenid = params["userid"], params["tokenid"]
    user = ctx.check_user_exist(userid)
    if tokenid in user.get("tokens", {}):
        param_error({"tokenid": "Token already exists."})
    quorate(ctx)
    value = str(uuid.uuid4())
    info = {"privsep": params.get("privsep", 1)}
    if "expire" in params:
        info["expire"] = params["expire"]
    if params.get("comment"):
        info["comment"] = params["comment"]
    user.setdefault("tokens", {})[tokenid] = dict(info, hash=A.hash_secret(value))
    ctx.state.touch()
    return {"info": info, "value": value, "full-tokenid": f"{userid}!{tokenid}"}


@route("PUT", "/access/users/{userid}/token/{tokenid}",
       params=dict(TOKEN_OPTS, userid=USERID, tokenid=TOKENID, delete=P.opt(P.STRING, format="pve-configid-list"),
                   regenerate=P.opt(P.BOOL)),
       perm=OWN_OR_USER_MODIFY, protected=1)
def token_update(ctx, params):
    userid, tokenid = params["userid"], params["tokenid"]
    token = _token(ctx, userid, tokenid)
    quorate(ctx)
    for key in P.split_list(params.get("delete") or ""):
        if key in ("comment", "expire"):
            token.pop(key, None)
    if "privsep" in params:
        token["privsep"] = params["privsep"]
    if "expire" in params:
        token["expire"] = params["expire"]
    if params.get("comment"):
        token["comment"] = params["comment"]
    result = _token_info(token)
    if params.get("regenerate"):
        value = str(uuid.uuid4())
        token["hash"] = A.hash_secret(value)
        result.update({"value": value, "full-tokenid": f"{userid}!{tokenid}"})
    ctx.state.touch()
    return result


@route("DELETE", "/access/users/{userid}/token/{tokenid}", params={"userid": USERID, "tokenid": TOKENID},
       perm=OWN_OR_USER_MODIFY, protected=1)
def token_delete(ctx, params):
    userid, tokenid = params["userid"], params["tokenid"]
    _token(ctx, userid, tokenid)
    quorate(ctx)
    del ctx.state.access["users"][userid]["tokens"][tokenid]
    A.remove_subject_acl(ctx.state.access, "token", f"{userid}!{tokenid}")
    ctx.state.touch()


# -- ACLs --------------------------------------------------------------------
@route("GET", "/access/acl", perm=ALL)
def acl_read(ctx, _params):
    audit = ctx.check("/access", ["Sys.Audit"], noerr=True)
    return [e for e in A.acl_list(ctx.state.access) if audit or ctx.check_perm_modify(e["path"], noerr=True)]


def _acl_set(node, kind, ugid, role, propagate, delete):
    entries = node.setdefault(kind, {})
    if delete:
        entries.get(ugid, {}).pop(role, None)
        if ugid in entries and not entries[ugid]:
            del entries[ugid]
    else:
        entries.setdefault(ugid, {})[role] = propagate


def _acl_prune(acc, path):
    node = acc["acl"].get(path)
    if node is not None:
        for kind in [k for k, v in node.items() if not v]:
            del node[kind]
        if not node:
            del acc["acl"][path]


def _acl_subjects(acc, params, errmsg):
    """(kind, ugid) pairs in the order the real server checks them, failing on the first unknown one."""
    subjects = []
    for group in P.split_list(params.get("groups") or ""):
        if group not in acc["groups"]:
            fail(f"{errmsg}: group '{group}' does not exist")
        subjects.append(("group", group))
    for userid in P.split_list(params.get("users") or ""):
        if userid not in acc["users"]:
            fail(f"{errmsg}: user '{userid}' does not exist")
        subjects.append(("user", userid))
    for tokenid in P.split_list(params.get("tokens") or ""):
        user, token = A.split_tokenid(tokenid)
        if user not in acc["users"]:
            fail(f"{errmsg}: no such user ('{user}')")
        if token not in acc["users"][user].get("tokens", {}):
            fail(f"{errmsg}: no such token '{token}' for user '{user}'")
        subjects.append(("token", tokenid))
    return subjects


@route("PUT", "/access/acl",
       params={"path": P.STRING, "roles": {"type": "string", "format": "pve-roleid-list"},
               "users": P.opt(P.STRING, format="pve-userid-list"), "groups": P.opt(P.STRING, format="pve-groupid-list"),
               "tokens": P.opt(P.STRING, format="pve-tokenid-list"), "propagate": P.opt(P.BOOL, default=1),
               "delete": P.opt(P.BOOL)},
       perm={"check": ["perm-modify", "{path}"]}, protected=1)
def acl_update(ctx, params):
    if not (params.get("users") or params.get("groups") or params.get("tokens")):
        param_error({k: "either 'users', 'groups' or 'tokens' is required." for k in ("users", "groups", "tokens")})
    path = A.normalize_path(params["path"])
    if not path or (not params.get("delete") and not A.check_path(path)):
        param_error({"path": f"invalid ACL path '{params['path']}'"})
    quorate(ctx)
    acc = ctx.state.access
    propagate = 0 if params.get("propagate") == 0 else 1
    errmsg = "ACL update failed"
    roles = A.all_roles(acc)
    changes = []  # applied only when every role and subject checked out, like the locked config write
    for role in P.split_list(params["roles"]):
        if role not in roles:
            fail(f"{errmsg}: role '{role}' does not exist")
        changes.extend((kind, ugid, role) for kind, ugid in _acl_subjects(acc, params, errmsg))
    node = acc["acl"].setdefault(path, {})
    for kind, ugid, role in changes:
        _acl_set(node, kind, ugid, role, propagate, params.get("delete"))
    _acl_prune(acc, path)
    ctx.state.touch()


# -- permissions -------------------------------------------------------------
@route("GET", "/access/permissions",
       params={"userid": P.opt(P.STRING, pattern=P.USERID_OR_TOKEN_RE.pattern[1:-1]), "path": P.opt(P.STRING)},
       perm=ALL)
def permissions(ctx, params):
    userid = params.get("userid") or ctx.authid
    owner = userid.split("!", 1)[0] if "!" in userid else None
    if not (userid == ctx.authid or owner == ctx.authid):
        ctx.check("/access", ["Sys.Audit"])
    if params.get("path"):
        path = params["path"]
        return {path: dict(sorted(ctx.perms.privs(userid, A.normalize_path(path) or path).items()))}
    paths = {"/", "/access", "/access/groups", "/nodes", "/pool", "/sdn", "/storage", "/vms"}
    paths.update(ctx.state.access["acl"])
    result = {}
    for path in sorted(paths):
        privs = ctx.perms.privs(userid, path)
        if privs:
            result[path] = dict(sorted(privs.items()))
    return result


# -- tickets -----------------------------------------------------------------
@route("GET", "/access/ticket", perm={"user": "world"})
def ticket_dummy(_ctx, _params):
    return None


@route("POST", "/access/ticket",
       params={"username": {"type": "string", "maxLength": 64}, "password": P.STRING,
               "realm": P.opt(P.STRING, format="pve-realm", maxLength=32), "otp": P.opt(P.STRING),
               "path": P.opt(P.STRING, maxLength=64, requires="privs"),
               "privs": P.opt(P.STRING, format="pve-priv-list", maxLength=64, requires="path"),
               "new-format": P.opt(P.BOOL, default=1), "tfa-challenge": P.opt(P.STRING)},
       perm={"user": "world"}, allowtoken=0, protected=1)
def ticket_create(ctx, params):
    username = params["username"]
    if params.get("realm"):
        username += "@" + params["realm"]
    sim = ctx.sim
    try:
        user = ctx.check_user_exist(username)
        sim.check_user_enabled(username)
        ticket_user = sim.verify_ticket(params["password"])
        if ticket_user is None or ticket_user not in (A.ROOT, username):
            if not A.check_password(user.get("password"), params["password"]):
                raise ApiError(401, "authentication failure\n")
        if params.get("path"):
            norm = A.normalize_path(params["path"])
            privs = P.split_list(params.get("privs") or "")
            if not (norm and privs and ctx.perms.check(username, norm, privs)):
                raise ApiError(401, "authentication failure\n")
            return {"username": username}
    except ApiError as exc:
        raise ApiError(401, "authentication failure\n", body=False) from exc
    result = {"username": username, "ticket": sim.make_ticket(username),
              "CSRFPreventionToken": sim.make_csrf(username), "cap": _cap(ctx, username)}
    if ctx.perms.check(username, "/", ["Sys.Audit"]):
        result["clustername"] = ctx.state.data["meta"]["cluster_name"]
    return result


def _cap(ctx, username) -> dict:
    prefixes = {
        "vms": ("VM.", "Permissions.Modify"), "access": ("User.", "Group.", "Permissions.Modify"),
        "storage": ("Datastore.", "Permissions.Modify"), "nodes": ("Sys.", "Permissions.Modify"),
        "sdn": ("SDN.", "Permissions.Modify"), "dc": ("Sys.Audit", "Sys.Modify", "SDN."),
        "mapping": ("Mapping.", "Permissions.Modify"),
    }
    result = {k: {} for k in prefixes}
    paths = ["/", "/nodes", "/access/groups", "/vms", "/storage", "/sdn", "/mapping"] + sorted(ctx.state.access["acl"])
    for path in dict.fromkeys(paths):
        top = path.split("/")[1] if path != "/" else "dc"
        if top not in prefixes:
            continue
        for priv in ctx.perms.privs(username, path):
            if priv.startswith(prefixes[top]):
                result[top][priv] = 1
    return result
