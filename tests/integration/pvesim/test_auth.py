"""Authentication: API tokens, tickets, CSRF, the 401 variants and TLS verification."""
from __future__ import annotations

import socket
import ssl
import time

import pytest
import requests
from proxmoxer import AuthenticationError

from .helpers import raises

pytestmark = pytest.mark.pvesim


def test_token_auth_reaches_the_api(sim):
    assert sim.api().version.get() == {"version": "9.1.3", "release": "9.1", "repoid": "a9a13b1d"}


def _handshake(sim, server_hostname, cafile=None):
    ctx = ssl.create_default_context(cafile=cafile) if cafile else ssl.create_default_context()
    with socket.create_connection((sim.host, sim.port), timeout=5) as raw:
        with ctx.wrap_socket(raw, server_hostname=server_hostname) as tls:
            return tls.getpeercert()


def test_certificate_is_signed_by_the_written_ca(sim):
    with pytest.raises(ssl.SSLCertVerificationError):
        _handshake(sim, "localhost")  # the system CAs do not know the simulator's CA
    for name in ("localhost", "127.0.0.1"):
        cert = _handshake(sim, name, sim.ca_cert)
        assert ("DNS", "localhost") in cert["subjectAltName"] and ("IP Address", "127.0.0.1") in cert["subjectAltName"]
    with pytest.raises(ssl.SSLCertVerificationError):
        _handshake(sim, "pve.example.invalid", sim.ca_cert)
    assert requests.get(f"{sim.url}/version", verify=sim.ca_cert, timeout=5).status_code == 401


def test_only_https_is_served(sim):
    with pytest.raises(requests.exceptions.ConnectionError):
        requests.get(f"http://{sim.host}:{sim.port}/api2/json/version", timeout=5)


def test_no_credentials_is_401_no_ticket(sim):
    resp = requests.get(f"{sim.url}/cluster/resources", verify=sim.ca_cert, timeout=5)
    assert (resp.status_code, resp.reason, resp.content) == (401, "No ticket", b"")


def test_wrong_token_secret_is_401_invalid_token_value(sim):
    api = sim.api_as(token_id=sim.admin_token_id, token_secret="00000000-0000-0000-0000-000000000000")
    exc = raises(api.version.get)
    assert (exc.status_code, exc.content) == (401, "invalid token value!")
    resp = requests.get(f"{sim.url}/version", verify=sim.ca_cert, timeout=5,
                        headers={"Authorization": "PVEAPIToken=root@pam!admin=wrong"})
    assert (resp.status_code, resp.reason, resp.content) == (401, "invalid token value!", b"")


def test_unknown_token_and_user_are_401(sim):
    exc = raises(sim.api_as(token_id="root@pam!nope", token_secret="x").version.get)
    assert (exc.status_code, exc.content) == (401, "no such token 'nope' for user 'root@pam'")
    exc = raises(sim.api_as(token_id="ghost@pve!tok", token_secret="x").version.get)
    assert (exc.status_code, exc.content) == (401, "no such user ('ghost@pve')")


def test_expired_token_and_disabled_user_are_401(sim, make_principal):
    who = make_principal(token_acl=[("/", "PVEAuditor", 1)], user_acl=[("/", "PVEAuditor", 1)])
    api = sim.api()
    user, token = who.token_id.split("!")
    api.access.users(user).token(token).put(expire=int(time.time()) - 10)
    exc = raises(who.token_api().version.get)
    assert (exc.status_code, exc.content) == (401, f"token '{token}' access expired")
    api.access.users(user).token(token).put(expire=0)
    assert who.token_api().version.get()["release"] == "9.1"
    api.access.users(user).put(enable=0)
    exc = raises(who.token_api().version.get)
    assert (exc.status_code, exc.content) == (401, f"user '{user}' is disabled")


def test_password_login_gives_ticket_cookie_and_csrf(sim):
    resp = requests.post(f"{sim.url}/access/ticket", verify=sim.ca_cert, timeout=5,
                         data={"username": "root@pam", "password": sim.root_password})
    assert resp.status_code == 200
    data = resp.json()["data"]
    assert data["username"] == "root@pam" and data["clustername"] == "pvesim"
    assert data["ticket"].startswith("PVE:root@pam:") and data["CSRFPreventionToken"]
    assert data["cap"]["access"]["Permissions.Modify"] == 1
    cookies = {"PVEAuthCookie": data["ticket"]}
    assert requests.get(f"{sim.url}/version", cookies=cookies, verify=sim.ca_cert, timeout=5).status_code == 200
    # a write without the CSRF header is refused, with it accepted
    resp = requests.post(f"{sim.url}/access/roles", cookies=cookies, data={"roleid": "CsrfTest"},
                         verify=sim.ca_cert, timeout=5)
    assert (resp.status_code, resp.reason) == (401, "Permission denied - invalid csrf token")
    resp = requests.post(f"{sim.url}/access/roles", cookies=cookies, data={"roleid": "CsrfTest"}, verify=sim.ca_cert,
                         timeout=5, headers={"CSRFPreventionToken": data["CSRFPreventionToken"]})
    assert resp.status_code == 200 and resp.json() == {"data": None}


def test_proxmoxer_password_auth_reads_and_writes(sim):
    api = sim.api_as(user="root@pam", password=sim.root_password)
    api.access.roles.post(roleid="TicketWrite", privs="VM.Audit")
    assert api.access.roles("TicketWrite").get() == {"VM.Audit": 1}


def test_ticket_can_be_renewed_with_the_ticket_as_password(sim):
    first = requests.post(f"{sim.url}/access/ticket", verify=sim.ca_cert, timeout=5,
                          data={"username": "root@pam", "password": sim.root_password}).json()["data"]
    again = requests.post(f"{sim.url}/access/ticket", verify=sim.ca_cert, timeout=5,
                          data={"username": "root@pam", "password": first["ticket"]})
    assert again.status_code == 200 and again.json()["data"]["ticket"].startswith("PVE:root@pam:")


def test_wrong_password_is_401_authentication_failure(sim):
    with pytest.raises(AuthenticationError):
        sim.api_as(user="root@pam", password="wrong-password")
    resp = requests.post(f"{sim.url}/access/ticket", verify=sim.ca_cert, timeout=5,
                         data={"username": "nobody@pve", "password": "whatever1"})
    assert (resp.status_code, resp.reason, resp.content) == (401, "authentication failure", b"")


def test_forged_ticket_is_401(sim):
    resp = requests.get(f"{sim.url}/version", cookies={"PVEAuthCookie": "PVE:root@pam:6530E5C0::Zm9yZ2Vk"},
                        verify=sim.ca_cert, timeout=5)
    assert (resp.status_code, resp.reason) == (401, "permission denied - invalid PVE ticket")


def test_ticket_request_with_api_token_is_403(sim):
    session = sim.session()
    resp = session.post(f"{sim.url}/access/ticket", data={"username": "root@pam", "password": sim.root_password},
                        timeout=5)
    assert resp.status_code == 403
    assert resp.reason == "Permission check failed (URI '/access/ticket' not available with API token, need proper ticket."


def test_user_password_login(sim, make_principal):
    who = make_principal(user_acl=[("/", "PVEAuditor", 1)])
    api = who.user_api()
    assert {e["type"] for e in api.cluster.resources.get()} >= {"node", "qemu", "storage"}
    exc = raises(api.access.roles.post, roleid="Nope")
    assert (exc.status_code, exc.content) == (403, "Permission check failed (/access, Sys.Modify)")


def test_extra_sans_and_pve_manager_node_listing(pvesim_factory):
    sim = pvesim_factory(nodes=2, guests_per_node=2,
                         extra_args=["--san", "pve.example.test", "--san", "10.1.2.3", "--list-nodes-without-audit"])
    cert = _handshake(sim, "pve.example.test", sim.ca_cert)
    assert ("DNS", "pve.example.test") in cert["subjectAltName"] and ("IP Address", "10.1.2.3") in cert["subjectAltName"]
    api = sim.api()
    api.access.users.post(userid="bare@pve")
    token = api.access.users("bare@pve").token("none").post()
    bare = sim.api_as(token_id=token["full-tokenid"], token_secret=token["value"])
    nodes = bare.cluster.resources.get()
    assert [n["id"] for n in nodes] == ["node/pve1", "node/pve2"]
    assert set(nodes[0]) == {"id", "node", "type", "status", "level", "cgroup-mode"}, "no figures without Sys.Audit"
