"""Connect to HOST on each PORT at once and tell which ones answer.

Usage: python3 probe_tcp.py HOST PORT [PORT...]
Prints JSON: {"open": {"PORT": bool}, "detail": {"PORT": "first line or error"}}.
A port is open when it sends an SSH banner or an HTTP status line back within
the timeout; dropped traffic times out, rejected traffic is refused.
"""
from __future__ import annotations

import json
import socket
import sys
import threading

TIMEOUT = 3.0


def probe(host, port, results):
    try:
        with socket.create_connection((host, int(port)), timeout=TIMEOUT) as conn:
            conn.settimeout(TIMEOUT)
            try:
                first = conn.recv(64)
            except socket.timeout:
                first = b""
            if not first.startswith(b"SSH-"):
                conn.sendall(b"GET / HTTP/1.0\r\n\r\n")
                first += conn.recv(64)
            results[port] = first.split(b"\r\n")[0].decode("ascii", "replace")
    except OSError as exc:
        results[port] = "error: %s" % (exc.__class__.__name__,)


def main(argv):
    host, ports = argv[1], argv[2:]
    results = {}
    threads = [threading.Thread(target=probe, args=(host, port, results)) for port in ports]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    opened = {port: results[port].startswith(("SSH-", "HTTP/")) for port in ports}
    print(json.dumps({"open": opened, "detail": results}, sort_keys=True))


if __name__ == "__main__":
    main(sys.argv)
