"""Privileges and built-in roles of Proxmox VE 9 (PVE::AccessControl)."""
from __future__ import annotations

# Privilege groups per category: root-only, admin, user and audit privileges.
_PRIVGROUPS = {
    "VM": {
        "root": [],
        "admin": [
            "VM.Config.Disk", "VM.Config.CPU", "VM.Config.Memory", "VM.Config.Network",
            "VM.Config.HWType", "VM.Config.Options", "VM.Allocate", "VM.Clone", "VM.Migrate",
            "VM.Replicate", "VM.Snapshot", "VM.Snapshot.Rollback", "VM.GuestAgent.FileRead",
            "VM.GuestAgent.FileWrite", "VM.GuestAgent.FileSystemMgmt", "VM.GuestAgent.Unrestricted",
        ],
        "user": [
            "VM.Config.CDROM", "VM.Config.Cloudinit", "VM.Console", "VM.Backup", "VM.PowerMgmt",
            "VM.GuestAgent.Audit",
        ],
        "audit": ["VM.Audit"],
    },
    "Sys": {
        "root": ["Sys.PowerMgmt", "Sys.Modify", "Sys.Incoming", "Sys.AccessNetwork"],
        "admin": ["Sys.Console", "Sys.Syslog"],
        "user": [],
        "audit": ["Sys.Audit"],
    },
    "Datastore": {
        "root": [],
        "admin": ["Datastore.Allocate", "Datastore.AllocateTemplate"],
        "user": ["Datastore.AllocateSpace"],
        "audit": ["Datastore.Audit"],
    },
    "SDN": {
        "root": [],
        "admin": ["SDN.Allocate", "SDN.Audit"],
        "user": ["SDN.Use"],
        "audit": ["SDN.Audit"],
    },
    "User": {
        "root": ["Realm.Allocate"],
        "admin": ["User.Modify", "Group.Allocate", "Realm.AllocateUser"],
        "user": [],
        "audit": [],
    },
    "Pool": {
        "root": [],
        "admin": ["Pool.Allocate"],
        "user": ["Pool.Audit"],
        "audit": ["Pool.Audit"],
    },
    "Mapping": {
        "root": [],
        "admin": ["Mapping.Modify"],
        "user": ["Mapping.Use"],
        "audit": ["Mapping.Audit"],
    },
}


def _build():
    valid = {"Permissions.Modify"}
    roles: dict[str, set[str]] = {"NoAccess": set(), "PVEAdmin": set(), "PVEAuditor": set()}
    for cat, groups in _PRIVGROUPS.items():
        valid.update(groups["root"] + groups["admin"] + groups["user"] + groups["audit"])
        roles[f"PVE{cat}Admin"] = set(groups["admin"] + groups["user"] + groups["audit"])
        roles["PVEAdmin"].update(groups["admin"] + groups["user"] + groups["audit"])
        if groups["user"]:
            roles[f"PVE{cat}User"] = set(groups["user"] + groups["audit"])
        roles["PVEAuditor"].update(groups["audit"])
    # Only Administrator, root@pam and PVEMappingAdmin may use Mapping.Modify.
    roles["PVEAdmin"].discard("Mapping.Modify")
    roles["PVETemplateUser"] = {"VM.Clone", "VM.Audit"}
    roles["Administrator"] = set(valid)
    return frozenset(valid), {name: frozenset(privs) for name, privs in roles.items()}


VALID_PRIVS, BUILTIN_ROLES = _build()


def is_special(roleid: str) -> bool:
    """True for the built-in roles, which can be neither changed nor deleted."""
    return roleid in BUILTIN_ROLES
