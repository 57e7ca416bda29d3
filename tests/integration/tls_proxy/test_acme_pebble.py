"""The tls_proxy role's ACME path end to end, against Pebble (Let's Encrypt's test ACME server, Debian package).

A Debian 12 systemd container (the project's test image) on its own podman
network runs the role with ``tls_proxy_cert_source: acme``. Pebble listens on
the network's gateway with its own HTTPS certificate (a throwaway CA the role
installs through ``tls_proxy_acme_ca_cert``) and validates the HTTP-01
challenge for real: it resolves the name through pebble-challtestsrv's DNS,
which answers with the container's address, and fetches the token from the
container's nginx on port 80. Asserted: the certificate nginx serves on 443
chains to Pebble's root, a second run changes nothing, and a renewal (more
days asked than remain) serves a new certificate after nginx reloads. Pebble
reuses valid authorizations here, as Let's Encrypt does for 30 days, so the
renewal's order comes without a challenge and must still be finalized.
"""
from __future__ import annotations

import json
import os
import shutil
import socket
import ssl
import subprocess
import sys
import time
import uuid

import pytest
import requests
import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
IMAGE = os.environ.get("PAI_IMAGE", "localhost/proxmox-ai-debian12:latest")
NAME = "n8n.acme.test"

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("podman") or not shutil.which("pebble"),
                                 reason="needs root, podman and pebble (apt-get install pebble)")]


def _run(*args, check=True, timeout=120, **kw):
    return subprocess.run(list(args), capture_output=True, text=True, timeout=timeout, check=check, **kw)


def _free_port_on(host):
    with socket.socket() as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


@pytest.fixture(name="lab", scope="module")
def fixture_lab(tmp_path_factory):
    if _run("podman", "image", "exists", IMAGE, check=False).returncode != 0:
        pytest.skip(f"{IMAGE} missing: run scripts/build-image.sh")
    tmp = tmp_path_factory.mktemp("acme")
    tag = uuid.uuid4().hex[:8]
    net, ctr = f"pai-acme-{tag}", f"pai-acme-{tag}"
    procs = []
    _run("podman", "network", "create", net)
    try:
        gateway = json.loads(_run("podman", "network", "inspect", net).stdout)[0]["subnets"][0]["gateway"]
        _run("podman", "run", "-d", "--name", ctr, "--hostname", ctr, "--network", net, "--systemd=always",
             "--cap-add=NET_ADMIN,NET_RAW,SYS_ADMIN", IMAGE, "/sbin/init")
        address = _run("podman", "inspect", "-f", "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}",
                       ctr).stdout.strip()
        deadline = time.monotonic() + 60
        while _run("podman", "exec", ctr, "systemctl", "is-system-running", check=False).stdout.strip() not in (
                "running", "degraded"):
            assert time.monotonic() < deadline, "systemd did not come up in the container"
            time.sleep(0.5)
        # Pebble's own HTTPS certificate, from a throwaway CA (what tls_proxy_acme_ca_cert installs).
        _run("openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
             "-days", "2", "-subj", "/CN=pai-acme-test-ca", "-keyout", str(tmp / "ca.key"), "-out", str(tmp / "ca.pem"))
        _run("openssl", "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-subj",
             f"/CN={gateway}", "-keyout", str(tmp / "pebble.key"), "-out", str(tmp / "pebble.csr"))
        (tmp / "san.ext").write_text(f"subjectAltName=IP:{gateway}\n")
        _run("openssl", "x509", "-req", "-in", str(tmp / "pebble.csr"), "-CA", str(tmp / "ca.pem"), "-CAkey",
             str(tmp / "ca.key"), "-CAcreateserial", "-days", "2", "-extfile", str(tmp / "san.ext"),
             "-out", str(tmp / "pebble.pem"))
        dns_port, acme_port, mgmt_port = _free_port_on(gateway), _free_port_on(gateway), _free_port_on(gateway)
        (tmp / "pebble.json").write_text(json.dumps({"pebble": {
            "listenAddress": f"{gateway}:{acme_port}", "managementListenAddress": f"{gateway}:{mgmt_port}",
            "certificate": str(tmp / "pebble.pem"), "privateKey": str(tmp / "pebble.key"),
            "httpPort": 80, "tlsPort": 443, "ocspResponderURL": "", "externalAccountBindingRequired": False}}))
        # PEBBLE_AUTHZREUSE=100: like Let's Encrypt, a valid authorization is reused,
        # so the renewal below gets an order with no challenge (a real-world path)
        env = dict(os.environ, PEBBLE_VA_NOSLEEP="1", PEBBLE_WFE_NONCEREJECT="0", PEBBLE_AUTHZREUSE="100")
        log = open(tmp / "pebble.log", "w", encoding="utf-8")  # pylint: disable=consider-using-with
        procs.append(subprocess.Popen(  # pylint: disable=consider-using-with
            ["pebble-challtestsrv", "-defaultIPv4", address, "-defaultIPv6", "", "-dns01", f"{gateway}:{dns_port}",
             "-http01", "", "-https01", "", "-tlsalpn01", "", "-management", f"{gateway}:{_free_port_on(gateway)}"],
            stdout=log, stderr=subprocess.STDOUT))
        procs.append(subprocess.Popen(  # pylint: disable=consider-using-with
            ["pebble", "-config", str(tmp / "pebble.json"), "-dnsserver", f"{gateway}:{dns_port}"],
            stdout=log, stderr=subprocess.STDOUT, env=env))
        directory = f"https://{gateway}:{acme_port}/dir"
        deadline = time.monotonic() + 30
        while True:
            try:
                requests.get(directory, verify=str(tmp / "ca.pem"), timeout=2).raise_for_status()
                break
            except requests.RequestException:
                assert time.monotonic() < deadline, (tmp / "pebble.log").read_text()
                time.sleep(0.3)
        assert all(proc.poll() is None for proc in procs), (tmp / "pebble.log").read_text()
        root = requests.get(f"https://{gateway}:{mgmt_port}/roots/0", verify=str(tmp / "ca.pem"), timeout=5).text
        (tmp / "pebble-root.pem").write_text(root)
        yield {"tmp": tmp, "ctr": ctr, "address": address, "directory": directory, "ca": tmp / "ca.pem",
               "root": tmp / "pebble-root.pem"}
    finally:
        for proc in procs:
            proc.terminate()
            proc.wait(timeout=10)
        _run("podman", "rm", "-f", "-t", "0", ctr, check=False)
        _run("podman", "network", "rm", "-f", net, check=False)


def _converge(lab, **extra):
    tmp = lab["tmp"]
    role_vars = {"tls_proxy_server_name": NAME, "tls_proxy_cert_source": "acme",
                 "tls_proxy_acme_directory": lab["directory"], "tls_proxy_acme_email": "ops@example.com",
                 "tls_proxy_acme_terms_agreed": True, "tls_proxy_acme_ca_cert": str(lab["ca"])}
    role_vars.update(extra)
    play = [{"name": "acme", "hosts": lab["ctr"], "gather_facts": True,
             "roles": [{"role": "proxmox_ai.hardening.tls_proxy", "vars": role_vars}]}]
    (tmp / "play.yml").write_text(yaml.safe_dump(play))
    (tmp / "hosts.ini").write_text(f"{lab['ctr']} ansible_connection=containers.podman.podman "
                                   "ansible_python_interpreter=/usr/bin/python3\n")
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=os.path.join(ROOT, "build", "collections"), ANSIBLE_NOCOLOR="1",
               ANSIBLE_RETRY_FILES_ENABLED="0")
    proc = subprocess.run([os.path.join(os.path.dirname(sys.executable), "ansible-playbook"), "-i",
                           str(tmp / "hosts.ini"), str(tmp / "play.yml")], capture_output=True, text=True,
                          env=env, timeout=900, check=False)
    assert proc.returncode == 0, proc.stdout[-5000:] + proc.stderr[-2000:] + (tmp / "pebble.log").read_text()[-2000:]
    # the account is handled by acme_account: no deprecated account handling in acme_certificate
    assert "modify_account" not in proc.stdout + proc.stderr, proc.stderr[-2000:]
    recap = proc.stdout[proc.stdout.rindex("PLAY RECAP"):]
    return int(recap.split("changed=")[1].split()[0])


def _served(lab):
    """The certificate nginx serves for NAME, verified against Pebble's root: (serial, issuer CN)."""
    ctx = ssl.create_default_context(cafile=str(lab["root"]))
    with socket.create_connection((lab["address"], 443), timeout=10) as sock:
        with ctx.wrap_socket(sock, server_hostname=NAME) as tls:
            cert = tls.getpeercert()
    issuer = dict(item[0] for item in cert["issuer"])
    return cert["serialNumber"], issuer.get("commonName", "")


def test_acme_issues_serves_keeps_and_renews(lab):
    assert _converge(lab) > 0
    serial, issuer = _served(lab)  # raises ssl.SSLCertVerificationError unless it chains to Pebble's root
    assert issuer.startswith("Pebble Intermediate CA"), issuer
    # second run: valid certificate, nothing to do
    assert _converge(lab) == 0
    assert _served(lab)[0] == serial
    # renewal: ask for more days than remain; a new certificate is issued and nginx reloads
    assert _converge(lab, tls_proxy_renew_days=100000) > 0
    # nginx's reload is asynchronous: old workers finish their connections while new ones start
    deadline = time.monotonic() + 20
    renewed, issuer = _served(lab)
    while renewed == serial and time.monotonic() < deadline:
        time.sleep(0.5)
        renewed, issuer = _served(lab)
    assert renewed != serial and issuer.startswith("Pebble Intermediate CA")
    # the challenge files are gone from the webroot
    left = subprocess.run(["podman", "exec", lab["ctr"], "find", "/var/www/acme", "-type", "f"], capture_output=True,
                          text=True, check=True).stdout.split()
    assert left == []
