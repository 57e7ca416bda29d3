"""Pure helpers of module_utils/_pve.py and the write planning of pve_acl (no server needed)."""
from __future__ import annotations

import itertools

import pytest

from ansible_collections.proxmox_ai.hardening.plugins.module_utils import _pve
from ansible_collections.proxmox_ai.hardening.plugins.modules import pve_acl, pve_token


@pytest.mark.parametrize("raw, norm", [
    ("/", "/"), ("", "/"), ("//", "/"), ("vms/100", "/vms/100"), ("/vms/100/", "/vms/100"),
    ("//storage//local/", "/storage/local"), (" /pool/prod ", "/pool/prod"),
])
def test_normalize_acl_path(raw, norm):
    assert _pve.normalize_acl_path(raw) == norm


@pytest.mark.parametrize("path", ["/", "/access", "/access/groups/ops", "/access/realm/pam", "/nodes/pve1", "/vms",
                                  "/vms/100", "/vms/123456", "/storage/local-lvm", "/pool/prod", "/pool/a/b",
                                  "/sdn/zones/z1/vnet1/10", "/mapping/pci/gpu0", "/cluster/ha/groups/g"])
def test_valid_acl_paths(path):
    assert _pve.acl_path_error(path) is None


@pytest.mark.parametrize("path", ["/vms/99", "/vms/abc", "/vms/100/x", "/nodes/a/b", "/storage/a/b", "/meta/x", "/x"])
def test_invalid_acl_paths(path):
    assert _pve.acl_path_error(path).startswith(f"invalid ACL path '{path}'")


def test_parse_token_id():
    assert _pve.parse_token_id("proxmox-ai@pam!monitoring") == ("proxmox-ai@pam", "monitoring")
    for bad in ("proxmox-ai@pam", "a@pam!b!c", "nouser!tok", "a@pam!1x", "a@pam!x", "a b@pam!tok", "a@pam!"):
        with pytest.raises(ValueError, match="malformed"):
            _pve.parse_token_id(bad)


def test_bool_helpers_and_split_list():
    assert _pve.to_bool_param(True) == "1" and _pve.to_bool_param(False) == "0"
    assert _pve.from_api_bool(None, True) is True and _pve.from_api_bool(0, True) is False
    assert _pve.from_api_bool("0", True) is False and _pve.from_api_bool(1, False) is True
    assert _pve.split_list(["a,b", "c", "a", " d ;e"]) == ["a", "b", "c", "d", "e"]


def test_plan_writes_is_exactly_the_wanted_product():
    atoms = {
        ("/", "user", "u@pve", "R1"): True, ("/", "token", "u@pve!t", "R1"): True,
        ("/", "user", "u@pve", "R2"): True, ("/", "group", "g", "R2"): True,
        ("/", "user", "v@pve", "R1"): False, ("/vms/100", "user", "u@pve", "R1"): True,
    }
    calls = pve_acl.plan_writes(atoms, delete=False)
    produced = {}
    for body in calls:
        subjects = [(kind, ugid) for kind, key in pve_acl.KINDS for ugid in body.get(key, "").split(",") if ugid]
        for (kind, ugid), role in itertools.product(subjects, body["roles"].split(",")):
            key = (body["path"], kind, ugid, role)
            assert key not in produced, "each entry is written once"
            produced[key] = body["propagate"]
    assert produced == atoms
    assert len(calls) == 5  # subjects grouped by identical role sets per (path, propagate)
    deletes = pve_acl.plan_writes(atoms, delete=True)
    assert all(body["delete"] is True and "propagate" not in body for body in deletes)


def test_expand_rejects_conflicts_and_bad_subjects():
    entry = {"path": "/", "roles": ["R"], "users": ["u@pve"], "groups": None, "tokens": None, "propagate": True}
    with pytest.raises(ValueError, match="different propagate"):
        pve_acl.expand([entry, dict(entry, propagate=False)])
    with pytest.raises(ValueError, match="at least one of users, groups or tokens"):
        pve_acl.expand([dict(entry, users=None)])
    with pytest.raises(ValueError, match="malformed API token id"):
        pve_acl.expand([dict(entry, users=None, tokens=["u@pve"])])


def test_token_comment_marker_round_trip():
    stored = pve_token.join_comment("collector", 1700000000)
    assert stored == "collector [ansible:created=2023-11-14T22:13:20Z]"
    assert pve_token.split_comment(stored) == ("collector", 1700000000)
    assert pve_token.split_comment(pve_token.join_comment("", 1700000000)) == ("", 1700000000)
    assert pve_token.split_comment("by hand") == ("by hand", None)
    assert pve_token.parse_age("90d") == 90 * 86400 and pve_token.parse_age("3600") == 3600
    with pytest.raises(ValueError):
        pve_token.parse_age("1y")
