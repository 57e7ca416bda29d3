"""Access control: roles, users, groups, tokens, ACLs and effective permissions."""
from __future__ import annotations

import pytest

from .helpers import raises

pytestmark = pytest.mark.pvesim

AUDIT = {"VM.Audit", "Datastore.Audit", "Sys.Audit"}


# -- roles ---------------------------------------------------------------------
def test_builtin_roles_have_the_pve9_privileges(sim):
    roles = {r["roleid"]: r for r in sim.api().access.roles.get()}
    assert {"Administrator", "NoAccess", "PVEAuditor", "PVEAdmin", "PVEVMAdmin", "PVEVMUser", "PVEUserAdmin",
            "PVEDatastoreAdmin", "PVEDatastoreUser", "PVEPoolAdmin", "PVEPoolUser", "PVESysAdmin", "PVETemplateUser",
            "PVEMappingAdmin", "PVEMappingUser", "PVESDNAdmin", "PVESDNUser"} <= set(roles)
    assert all(r["special"] == 1 for r in roles.values())
    assert roles["PVEAuditor"]["privs"] == ("Datastore.Audit,Mapping.Audit,Pool.Audit,SDN.Audit,Sys.Audit,VM.Audit,"
                                            "VM.GuestAgent.Audit".replace(",VM.GuestAgent.Audit", ""))
    assert roles["NoAccess"]["privs"] == ""
    assert roles["PVETemplateUser"]["privs"] == "VM.Audit,VM.Clone"
    admin = set(roles["Administrator"]["privs"].split(","))
    assert len(admin) == 47 and "VM.Monitor" not in admin and "VM.GuestAgent.Unrestricted" in admin
    assert "Mapping.Modify" not in roles["PVEAdmin"]["privs"].split(",")
    assert "Sys.Modify" not in roles["PVEAdmin"]["privs"].split(",")
    assert sim.api().access.roles("PVEVMUser").get()["VM.PowerMgmt"] == 1


def test_role_create_read_update_append_empty_delete(sim, uid):
    api = sim.api()
    role = f"Ops{uid}"
    api.access.roles.post(roleid=role, privs="VM.Audit,Sys.Audit")
    listed = {r["roleid"]: r for r in api.access.roles.get()}[role]
    assert listed == {"roleid": role, "privs": "Sys.Audit,VM.Audit", "special": 0}
    assert api.access.roles(role).get() == {"Sys.Audit": 1, "VM.Audit": 1}
    api.access.roles(role).put(privs="Datastore.Audit", append=1)
    assert set(api.access.roles(role).get()) == {"Sys.Audit", "VM.Audit", "Datastore.Audit"}
    api.access.roles(role).put(privs="VM.Audit")
    assert api.access.roles(role).get() == {"VM.Audit": 1}
    api.access.roles(role).put(privs="")
    assert api.access.roles(role).get() == {}
    api.access.roles(role).delete()
    exc = raises(api.access.roles(role).get)
    assert (exc.status_code, exc.content) == (500, f"role '{role}' does not exist")


def test_role_rules(sim, uid):
    api = sim.api()
    exc = raises(api.access.roles.post, roleid=f"pveX{uid}")
    assert exc.status_code == 400 and exc.errors == {
        "roleid": "cannot use role ID starting with the (case-insensitive) 'PVE' namespace"}
    exc = raises(api.access.roles.post, roleid="bad name!")
    assert exc.status_code == 400 and exc.errors == {"roleid": "invalid format - role name 'bad name!' contains invalid characters\n"}
    exc = raises(api.access.roles.post, roleid=f"R{uid}", privs="VM.Audit,VM.Monitor")
    assert exc.status_code == 400 and exc.errors == {"privs": "invalid format - invalid privilege 'VM.Monitor'\n"}
    assert not [r for r in api.access.roles.get() if r["roleid"] == f"R{uid}"], "nothing created"
    exc = raises(api.access.roles("PVEAuditor").put, privs="VM.Audit")
    assert (exc.status_code, exc.content) == (500, "auto-generated role 'PVEAuditor' cannot be modified")
    exc = raises(api.access.roles("Administrator").delete)
    assert (exc.status_code, exc.content) == (500, "auto-generated role 'Administrator' cannot be deleted")
    api.access.roles.post(roleid=f"R{uid}")
    exc = raises(api.access.roles.post, roleid=f"R{uid}")
    assert (exc.status_code, exc.content) == (500, f"create role failed: role 'R{uid}' already exists")
    exc = raises(api.access.roles(f"R{uid}").put, append=1)
    assert exc.status_code == 400 and exc.errors == {"privs": "missing property - 'append' requires this property"}


def test_booleans_must_be_0_or_1(sim, uid):
    api = sim.api()
    api.access.roles.post(roleid=f"B{uid}", privs="VM.Audit")
    exc = raises(api.access.roles(f"B{uid}").put, privs="Sys.Audit", append="true")
    assert (exc.status_code, exc.content) == (400, "Parameter verification failed.")
    assert exc.errors == {"append": "type check ('boolean') failed - got 'true'"}
    resp = sim.session().put(f"{sim.url}/access/roles/B{uid}", data={"privs": "Sys.Audit", "append": "yes"}, timeout=5)
    assert resp.status_code == 400 and resp.reason == "Parameter verification failed."
    assert resp.json() == {"data": None, "message": "Parameter verification failed.\n",
                           "errors": {"append": "type check ('boolean') failed - got 'yes'"}}
    assert api.access.roles(f"B{uid}").get() == {"VM.Audit": 1}, "a refused request changes nothing"


def test_unknown_and_missing_parameters(sim):
    exc = raises(sim.api().access.roles.post, privs="VM.Audit", colour="blue")
    assert exc.status_code == 400 and exc.errors == {
        "roleid": "property is missing and it is not optional",
        "colour": "property is not defined in schema and the schema does not allow additional properties"}
    exc = raises(sim.api().cluster.resources.get, type="vms")
    assert exc.errors == {"type": "value 'vms' does not have a value in the enumeration 'vm, storage, node, sdn'"}


def test_json_bodies_are_accepted_like_form_bodies(sim, uid):
    resp = sim.session().post(f"{sim.url}/access/roles", json={"roleid": f"J{uid}", "privs": "VM.Audit"}, timeout=5)
    assert resp.status_code == 200 and resp.json() == {"data": None}
    resp = sim.session().put(f"{sim.url}/access/roles/J{uid}", json={"privs": "Sys.Audit", "append": True}, timeout=5)
    assert resp.status_code == 200
    assert sim.api().access.roles(f"J{uid}").get() == {"Sys.Audit": 1, "VM.Audit": 1}


# -- users and groups ------------------------------------------------------------
def test_user_lifecycle_with_groups(sim, uid):
    api = sim.api()
    for group in ("ga", "gb"):
        api.access.groups.post(groupid=f"{group}{uid}", comment="test")
    userid = f"alice{uid}@pve"
    api.access.users.post(userid=userid, email="alice@example.com", comment="Alice", groups=f"ga{uid}",
                          expire=0, enable=1, firstname="Alice", password="correct-horse")
    user = api.access.users(userid).get()
    assert user == {"enable": 1, "expire": 0, "email": "alice@example.com", "comment": "Alice", "firstname": "Alice",
                    "groups": [f"ga{uid}"], "tokens": {}}
    api.access.users(userid).put(groups=f"gb{uid}", append=1, comment="changed")
    assert sorted(api.access.users(userid).get()["groups"]) == [f"ga{uid}", f"gb{uid}"]
    api.access.users(userid).put(groups=f"gb{uid}")
    assert api.access.users(userid).get()["groups"] == [f"gb{uid}"]
    assert api.access.groups(f"gb{uid}").get() == {"members": [userid], "comment": "test"}
    listed = {u["userid"]: u for u in api.access.users.get(full=1)}[userid]
    assert listed["groups"] == f"gb{uid}" and listed["tokens"] == [] and listed["realm-type"] == "pve"
    assert "groups" not in {u["userid"]: u for u in api.access.users.get()}[userid]
    api.access.users(userid).put(enable=0)
    assert userid not in {u["userid"] for u in api.access.users.get(enabled=1)}
    exc = raises(api.access.users.post, userid=userid)
    assert (exc.status_code, exc.content) == (500, f"create user failed: user '{userid}' already exists")
    exc = raises(api.access.users(userid).put, groups="nosuchgroup")
    assert (exc.status_code, exc.content) == (500, "update user failed: no such group 'nosuchgroup'")


def test_missing_user_is_500_with_reason(sim):
    exc = raises(sim.api().access.users("ghost@pve").get)
    assert (exc.status_code, exc.content) == (500, "no such user ('ghost@pve')")
    resp = sim.session().get(f"{sim.url}/access/users/ghost@pve", timeout=5)
    assert (resp.status_code, resp.reason) == (500, "no such user ('ghost@pve')")
    assert resp.json() == {"data": None, "message": "no such user ('ghost@pve')\n"}
    # root@pam skips the permission checks, so parameter verification answers (400) ...
    root = sim.api_as(user="root@pam", password=sim.root_password)
    exc = raises(root.access.users.post, userid="no-realm")
    assert exc.errors == {"userid": "invalid format - value 'no-realm' does not look like a valid user name\n"}
    # ... while for a token the permission check parses the userid first and dies (500), like PVE does.
    exc = raises(sim.api().access.users.post, userid="no-realm")
    assert (exc.status_code, exc.content) == (500, "value 'no-realm' does not look like a valid user name")


def test_unknown_path_is_501(sim):
    resp = sim.session().get(f"{sim.url}/nodes/pve1/bogus", timeout=5)
    assert (resp.status_code, resp.reason) == (501, "Method 'GET /nodes/pve1/bogus' not implemented")
    exc = raises(sim.api().access.roles.put, roleid="x")
    assert (exc.status_code, exc.content) == (501, "Method 'PUT /access/roles' not implemented")


# -- tokens ----------------------------------------------------------------------
def test_token_secret_is_returned_once_and_can_be_regenerated(sim, uid):
    api = sim.api()
    userid = f"svc{uid}@pve"
    api.access.users.post(userid=userid)
    created = api.access.users(userid).token("monitoring").post(comment="prometheus", expire=0)
    assert created["full-tokenid"] == f"{userid}!monitoring"
    assert created["info"] == {"privsep": 1, "expire": 0, "comment": "prometheus"}
    secret = created["value"]
    assert len(secret) == 36 and secret.count("-") == 4
    shown = api.access.users(userid).token("monitoring").get()
    assert shown == {"privsep": 1, "expire": 0, "comment": "prometheus"} and secret not in str(shown)
    assert api.access.users(userid).token.get() == [dict(tokenid="monitoring", **shown)]
    token_api = sim.api_as(token_id=created["full-tokenid"], token_secret=secret)
    assert token_api.version.get()["version"] == "9.1.3"
    exc = raises(api.access.users(userid).token("monitoring").post)
    assert exc.status_code == 400 and exc.errors == {"tokenid": "Token already exists."}
    renewed = api.access.users(userid).token("monitoring").put(regenerate=1)
    assert renewed["value"] != secret and renewed["full-tokenid"] == created["full-tokenid"]
    assert raises(token_api.version.get).status_code == 401
    assert sim.api_as(token_id=created["full-tokenid"], token_secret=renewed["value"]).version.get()
    updated = api.access.users(userid).token("monitoring").put(privsep=0, comment="new")
    assert updated == {"privsep": 0, "expire": 0, "comment": "new"}
    api.access.users(userid).token("monitoring").delete()
    exc = raises(api.access.users(userid).token("monitoring").get)
    assert (exc.status_code, exc.content) == (500, f"no such token 'monitoring' for user '{userid}'")
    exc = raises(api.access.users(userid).token("x!y").post)
    assert exc.errors == {"tokenid": "value does not match the regex pattern"}


def test_deleting_a_user_removes_its_tokens_and_acls(sim, make_principal):
    who = make_principal(user_acl=[("/", "PVEAuditor", 1)], token_acl=[("/vms", "PVEAuditor", 1)])
    api = sim.api()
    assert {a["ugid"] for a in api.access.acl.get()} >= {who.userid, who.token_id}
    api.access.users(who.userid).delete()
    assert not [a for a in api.access.acl.get() if a["ugid"] in (who.userid, who.token_id)]
    assert raises(who.token_api().version.get).status_code == 401
    exc = raises(api.access.users(who.userid).delete)
    assert (exc.status_code, exc.content) == (500, f"no such user ('{who.userid}')")


def test_deleting_a_role_leaves_acl_entries(sim, uid, make_principal):
    api = sim.api()
    role = f"Gone{uid}"
    api.access.roles.post(roleid=role, privs="VM.Audit")
    who = make_principal(user_acl=[("/vms", role, 1)])
    api.access.roles(role).delete()
    entries = [a for a in api.access.acl.get() if a["ugid"] == who.userid]
    assert entries == [{"path": "/vms", "type": "user", "ugid": who.userid, "roleid": role, "propagate": 1}]
    assert api.access.permissions.get(userid=who.userid, path="/vms/100") == {"/vms/100": {}}
    api.access.roles.post(roleid=role, privs="VM.Audit")
    assert api.access.permissions.get(userid=who.userid, path="/vms/100") == {"/vms/100": {"VM.Audit": 1}}


# -- ACLs and effective permissions ------------------------------------------------
def test_acl_put_delete_and_errors(sim, make_principal):
    who = make_principal()
    api = sim.api()
    api.access.acl.put(path="/storage/local/", roles="PVEDatastoreUser,PVEAuditor", users=who.userid, propagate=0)
    mine = sorted((a["path"], a["roleid"], a["propagate"]) for a in api.access.acl.get() if a["ugid"] == who.userid)
    assert mine == [("/storage/local", "PVEAuditor", 0), ("/storage/local", "PVEDatastoreUser", 0)]
    api.access.acl.put(path="/storage/local", roles="PVEAuditor", users=who.userid, delete=1)
    mine = [a["roleid"] for a in api.access.acl.get() if a["ugid"] == who.userid]
    assert mine == ["PVEDatastoreUser"]
    exc = raises(api.access.acl.put, path="/bogus/x", roles="PVEAuditor", users=who.userid)
    assert exc.errors == {"path": "invalid ACL path '/bogus/x'"}
    exc = raises(api.access.acl.put, path="/", roles="PVEAuditor")
    assert exc.errors == {k: "either 'users', 'groups' or 'tokens' is required." for k in ("users", "groups", "tokens")}
    exc = raises(api.access.acl.put, path="/", roles="NoSuchRole", users=who.userid)
    assert (exc.status_code, exc.content) == (500, "ACL update failed: role 'NoSuchRole' does not exist")
    exc = raises(api.access.acl.put, path="/", roles="PVEAuditor", users="ghost@pve")
    assert (exc.status_code, exc.content) == (500, "ACL update failed: user 'ghost@pve' does not exist")
    exc = raises(api.access.acl.put, path="/", roles="PVEAuditor", tokens="root@pam!ghost")
    assert (exc.status_code, exc.content) == (500, "ACL update failed: no such token 'ghost' for user 'root@pam'")


def test_propagation_and_the_most_specific_path_wins(sim, make_principal):
    who = make_principal(user_acl=[("/", "PVEAuditor", 1), ("/vms/100", "NoAccess", 1), ("/vms/101", "PVEVMUser", 0),
                                   ("/storage", "PVEDatastoreAdmin", 0)])
    perms = sim.api().access.permissions

    def privs(path):
        return set(perms.get(userid=who.userid, path=path)[path])

    assert AUDIT <= privs("/vms/102")
    assert privs("/vms/100") == set(), "NoAccess on the more specific path"
    assert "VM.PowerMgmt" in privs("/vms/101") and "VM.Allocate" not in privs("/vms/101")
    assert "Datastore.Allocate" in privs("/storage"), "propagate=0 applies on the path itself"
    assert "Datastore.Allocate" not in privs("/storage/local") and "Datastore.Audit" in privs("/storage/local")
    full = perms.get(userid=who.userid)
    assert "/vms/100" not in full and full["/"]["Sys.Audit"] == 1 and full["/storage"]["Datastore.Allocate"] == 0


def test_user_acl_overrides_group_acl_on_the_same_path(sim, make_principal, uid):
    api = sim.api()
    api.access.groups.post(groupid=f"ops{uid}")
    who = make_principal()
    api.access.users(who.userid).put(groups=f"ops{uid}")
    api.access.acl.put(path="/vms", roles="PVEVMAdmin", groups=f"ops{uid}")
    assert "VM.Allocate" in api.access.permissions.get(userid=who.userid, path="/vms/100")["/vms/100"]
    api.access.acl.put(path="/vms", roles="PVEAuditor", users=who.userid)
    got = api.access.permissions.get(userid=who.userid, path="/vms/100")["/vms/100"]
    assert "VM.Allocate" not in got and "VM.Audit" in got


def test_privsep_token_gets_the_intersection(sim, make_principal):
    who = make_principal(user_acl=[("/", "PVEAuditor", 1), ("/vms", "PVEVMAdmin", 1)],
                         token_acl=[("/", "PVEAdmin", 1)])
    got = sim.api().access.permissions.get(userid=who.token_id, path="/vms/100")["/vms/100"]
    assert "VM.Allocate" in got and "VM.Audit" in got
    got = sim.api().access.permissions.get(userid=who.token_id, path="/nodes/pve1")["/nodes/pve1"]
    assert "Sys.Audit" in got and "Sys.Console" not in got, "the user lacks Sys.Console"
    full = make_principal(user_acl=[("/", "PVEAdmin", 1)], token_acl=[], privsep=0)
    got = sim.api().access.permissions.get(userid=full.token_id, path="/")["/"]
    assert "VM.Allocate" in got, "privsep=0: the user's privileges"
    none = make_principal(user_acl=[("/", "PVEAdmin", 1)], token_acl=[], privsep=1)
    assert sim.api().access.permissions.get(userid=none.token_id, path="/") == {"/": {}}


def test_permissions_of_others_need_sys_audit(sim, make_principal):
    nosy = make_principal(user_acl=[("/vms", "PVEVMUser", 1)])
    exc = raises(nosy.user_api().access.permissions.get, userid="root@pam")
    assert (exc.status_code, exc.content) == (403, "Permission check failed (/access, Sys.Audit)")
    own = nosy.user_api().access.permissions.get()
    assert "VM.PowerMgmt" in own["/vms"]
    assert nosy.user_api().access.permissions.get(userid=nosy.token_id) == {}, "own token: allowed, no ACLs"


def test_read_only_token_gets_403_on_writes(sim, make_principal, uid):
    reader = make_principal(user_acl=[("/", "PVEAuditor", 1)], token_acl=[("/", "PVEAuditor", 1)])
    api = reader.token_api()
    assert api.access.roles.get() and api.cluster.status.get()
    exc = raises(api.access.roles.post, roleid=f"Evil{uid}", privs="Sys.Modify")
    assert (exc.status_code, exc.content) == (403, "Permission check failed (/access, Sys.Modify)")
    exc = raises(api.nodes("pve1").qemu(100).status.stop.post)
    assert (exc.status_code, exc.content) == (403, "Permission check failed (/vms/100, VM.PowerMgmt)")
    exc = raises(api.access.acl.put, path="/", roles="Administrator", tokens=reader.token_id)
    assert (exc.status_code, exc.content) == (403, "Permission check failed (/, Permissions.Modify)")
    exc = raises(api.access.users(reader.userid).token("other").post)
    assert (exc.status_code, exc.content) == (403, "Permission check failed")
    resp = sim.session().get(f"{sim.url}/version", timeout=5)
    assert resp.status_code == 200
    assert not [r for r in sim.api().access.roles.get() if r["roleid"] == f"Evil{uid}"]


def test_user_can_manage_own_tokens_but_not_others(sim, make_principal):
    who = make_principal()
    api = who.user_api()
    created = api.access.users(who.userid).token("second").post()
    assert created["full-tokenid"] == f"{who.userid}!second"
    exc = raises(api.access.users("root@pam").token.get)
    assert (exc.status_code, exc.content) == (403, "Permission check failed")
