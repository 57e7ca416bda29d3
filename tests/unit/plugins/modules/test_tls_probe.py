"""tls_probe against a real loopback TLS server (openssl s_server) with chosen protocol versions."""
from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))))
COLLECTIONS = os.path.join(ROOT, "build", "collections")

pytestmark = pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl is not installed")


def _free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def cert(tmp_path_factory):
    path = tmp_path_factory.mktemp("tls")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "10", "-subj", "/CN=localhost",
                    "-addext", "subjectAltName=DNS:localhost", "-keyout", str(path / "key.pem"),
                    "-out", str(path / "cert.pem")], check=True, capture_output=True)
    return path


def _server(cert, *flags):
    port = _free_port()
    proc = subprocess.Popen(["openssl", "s_server", "-accept", "127.0.0.1:%d" % port, "-cert", str(cert / "cert.pem"),
                             "-key", str(cert / "key.pem"), "-cipher", "ALL:@SECLEVEL=0", "-quiet", "-www", *flags],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _attempt in range(50):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            break
        except OSError:
            time.sleep(0.1)
    return proc, port


def _probe(**args):
    env = dict(os.environ, PYTHONPATH=COLLECTIONS)
    out = subprocess.run([sys.executable, "-m", "ansible_collections.proxmox_ai.hardening.plugins.modules.tls_probe"],
                         input=json.dumps({"ANSIBLE_MODULE_ARGS": args}), capture_output=True, text=True, env=env,
                         check=False)
    return json.loads(out.stdout)


@pytest.mark.parametrize("flags, accepted", [
    ((), ["TLSv1", "TLSv1.1", "TLSv1.2", "TLSv1.3"]),
    (("-no_tls1", "-no_tls1_1"), ["TLSv1.2", "TLSv1.3"]),
    (("-tls1_2",), ["TLSv1.2"]),
])
def test_accepted_versions(cert, flags, accepted):
    proc, port = _server(cert, *flags)
    try:
        result = _probe(port=port, server_name="localhost", ca_file=str(cert / "cert.pem"))
    finally:
        proc.terminate()
        proc.wait()
    assert result["changed"] is False
    assert result["accepted"] == accepted
    assert sorted(result["refused"]) == sorted({"TLSv1", "TLSv1.1", "TLSv1.2", "TLSv1.3"} - set(accepted))
    assert result["certificate"]["subject"] == "CN=localhost"
    assert result["certificate"]["verified"] is True
    assert 8 <= result["certificate"]["days_left"] <= 10 and result["certificate"]["expired"] is False


def test_untrusted_certificate_and_closed_port(cert):
    proc, port = _server(cert)
    try:
        result = _probe(port=port, server_name="localhost", versions=["TLSv1.3"])
    finally:
        proc.terminate()
        proc.wait()
    assert result["accepted"] == ["TLSv1.3"]
    assert result["certificate"]["verified"] is False
    assert "certificate verify failed" in result["certificate"]["verify_error"]
    closed = _probe(port=_free_port())
    assert closed.get("failed") is True and "cannot connect" in closed["msg"]
