"""Helpers for the simulator's own tests: users and tokens with chosen ACLs."""
from __future__ import annotations

import uuid

import pytest


@pytest.fixture
def sim(pve_sim_fresh):
    """The session simulator, reset to its generated cluster before the test."""
    return pve_sim_fresh


@pytest.fixture
def uid() -> str:
    return uuid.uuid4().hex[:8]


class Principal:  # pylint: disable=too-few-public-methods
    """A user with a token, both usable as proxmoxer clients."""

    def __init__(self, sim, userid, password, token_id, secret):  # pylint: disable=too-many-arguments
        self.sim = sim
        self.userid = userid
        self.password = password
        self.token_id = token_id
        self.secret = secret

    def token_api(self):
        return self.sim.api_as(token_id=self.token_id, token_secret=self.secret)

    def user_api(self):
        return self.sim.api_as(user=self.userid, password=self.password)


@pytest.fixture
def make_principal(sim, uid):
    """``make_principal(user_acl=[(path, role, propagate)], token_acl=[...], privsep=1)``."""
    counter = [0]

    def factory(user_acl=(), token_acl=(), privsep=1, realm="pve"):
        counter[0] += 1
        api = sim.api()
        userid = f"u{uid}{counter[0]}@{realm}"
        password = f"pw-{uid}-secret"
        api.access.users.post(userid=userid, password=password)
        created = api.access.users(userid).token("tok").post(privsep=privsep)
        token_id = created["full-tokenid"]
        for path, role, propagate in user_acl:
            api.access.acl.put(path=path, roles=role, users=userid, propagate=propagate)
        for path, role, propagate in token_acl:
            api.access.acl.put(path=path, roles=role, tokens=token_id, propagate=propagate)
        return Principal(sim, userid, password, token_id, created["value"])

    return factory
