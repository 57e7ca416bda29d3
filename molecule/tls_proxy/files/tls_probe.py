"""Probe the TLS proxy from another host with real handshakes and requests.

Usage: python3 tls_probe.py HOST SERVER_NAME CA_FILE [HTTPS_PORT [HTTP_PORT]]
Prints one JSON document; molecule/tls_proxy/verify.yml asserts on it.
"""
from __future__ import annotations

import base64
import hashlib
import json
import os
import socket
import ssl
import sys

TIMEOUT = 5.0
VERSIONS = {
    "TLSv1": ssl.TLSVersion.TLSv1,
    "TLSv1.1": ssl.TLSVersion.TLSv1_1,
    "TLSv1.2": ssl.TLSVersion.TLSv1_2,
    "TLSv1.3": ssl.TLSVersion.TLSv1_3,
}


def context(cafile, version=None, ciphers=None):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    if cafile:
        ctx.load_verify_locations(cafile)
    # Level 0 lets this client offer TLS 1.0/1.1 and weak ciphers: the refusal
    # must come from the server, not from the client's own policy.
    ctx.set_ciphers(ciphers or "ALL:@SECLEVEL=0")
    if version is not None:
        ctx.minimum_version = version
        ctx.maximum_version = version
    return ctx


def handshake(host, port, name, ctx):
    try:
        with socket.create_connection((host, port), timeout=TIMEOUT) as raw:
            with ctx.wrap_socket(raw, server_hostname=name) as tls:
                return {
                    "ok": True,
                    "version": tls.version(),
                    "cipher": tls.cipher()[0],
                    "fingerprint": hashlib.sha256(tls.getpeercert(binary_form=True)).hexdigest(),
                }
    except ssl.SSLError as exc:
        return {"ok": False, "reason": exc.reason or str(exc)}
    except OSError as exc:
        return {"ok": False, "reason": exc.__class__.__name__ + ": " + str(exc)}


def read_response(sock):
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(4096)
        if not chunk:
            break
        data += chunk
    head, _sep, rest = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines[1:]:
        key, _sep, value = line.partition(":")
        headers[key.strip().lower()] = value.strip()
    status = int(lines[0].split()[1]) if len(lines[0].split()) > 1 else 0
    length = int(headers.get("content-length", "0") or 0)
    while len(rest) < length:
        chunk = sock.recv(4096)
        if not chunk:
            break
        rest += chunk
    return status, headers, rest


def request(sock, name, method, path, extra=None):
    lines = ["%s %s HTTP/1.1" % (method, path), "Host: " + name, "Connection: close"]
    lines += extra or []
    sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
    status, headers, body = read_response(sock)
    return {"status": status, "headers": headers, "body": body.decode("utf-8", "replace")}


def https(host, port, name, cafile, method, path, extra=None):
    ctx = context(cafile)
    with socket.create_connection((host, port), timeout=TIMEOUT) as raw:
        with ctx.wrap_socket(raw, server_hostname=name) as tls:
            return request(tls, name, method, path, extra)


def http(host, port, name, path):
    with socket.create_connection((host, port), timeout=TIMEOUT) as raw:
        return request(raw, name, "GET", path)


def websocket(host, port, name, cafile):
    key = base64.b64encode(os.urandom(16)).decode()
    expected = base64.b64encode(hashlib.sha1((key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11").encode()).digest()).decode()
    ctx = context(cafile)
    with socket.create_connection((host, port), timeout=TIMEOUT) as raw:
        with ctx.wrap_socket(raw, server_hostname=name) as tls:
            tls.sendall(
                (
                    "GET /rest/push HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                    "Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n\r\n" % (name, key)
                ).encode()
            )
            status, headers, rest = read_response(tls)
            result = {"status": status, "accept_ok": headers.get("sec-websocket-accept") == expected}
            if status == 101:
                payload = b"hello"
                mask = os.urandom(4)
                tls.sendall(bytes([0x81, 0x80 | len(payload)]) + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload)))
                frame = rest
                while len(frame) < 2 or len(frame) < 2 + frame[1]:
                    chunk = tls.recv(4096)
                    if not chunk:
                        break
                    frame += chunk
                result["echo"] = frame[2:2 + frame[1]].decode() if len(frame) >= 2 else ""
            return result


def main(argv):
    host, name, cafile = argv[1], argv[2], argv[3]
    https_port = int(argv[4]) if len(argv) > 4 else 443
    http_port = int(argv[5]) if len(argv) > 5 else 80
    out = {"versions": {}, "ciphers": {}}
    for label, version in VERSIONS.items():
        out["versions"][label] = handshake(host, https_port, name, context(cafile, version))
    for cipher in ("ECDHE-ECDSA-AES128-GCM-SHA256", "AES128-SHA", "ECDHE-ECDSA-AES128-SHA", "AES256-GCM-SHA384"):
        out["ciphers"][cipher] = handshake(host, https_port, name, context(cafile, ssl.TLSVersion.TLSv1_2, cipher + ":@SECLEVEL=0"))
    out["without_ca"] = handshake(host, https_port, name, context(None))
    out["wrong_name"] = handshake(host, https_port, "other.invalid", context(cafile))
    out["redirect"] = http(host, http_port, name, "/workflow/1?x=1")
    out["acme"] = http(host, http_port, name, "/.well-known/acme-challenge/pai-probe-token")
    out["proxied"] = https(host, https_port, name, cafile, "GET", "/healthz?probe=1")
    out["too_large"] = https(host, https_port, name, cafile, "POST", "/webhook/x", ["Content-Length: 17000000"])
    out["websocket"] = websocket(host, https_port, name, cafile)
    print(json.dumps(out, sort_keys=True))


if __name__ == "__main__":
    main(sys.argv)
