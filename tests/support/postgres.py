"""Throwaway PostgreSQL clusters for tests that talk to a database.

``pg_server`` (session scope) runs ``initdb`` in a temporary folder, starts the
server on a free loopback port, and removes everything afterwards.  As root the
cluster runs as the ``postgres`` system user (initdb refuses root).  The
cluster can serve TLS: ``pg_server.ssl_ca`` is the CA that signed its
certificate (CN/SAN ``localhost``), so ``sslmode=verify-full`` works.

``pg_db`` (function scope) gives each test a fresh, empty database.
"""
from __future__ import annotations

import dataclasses
import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import uuid

import pytest


def _pg_bindir() -> str:
    env = os.environ.get("PAI_PG_BINDIR")
    if env:
        return env
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=lambda p: int(p.split("/")[-2]))
    if not candidates:
        raise RuntimeError("PostgreSQL server binaries not found: run scripts/bootstrap.sh (installs postgresql-15)")
    return candidates[-1]


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _make_tls(folder: str) -> tuple[str, str, str]:
    """CA + server certificate for localhost, made with the openssl CLI."""
    ca_key, ca_crt = os.path.join(folder, "ca.key"), os.path.join(folder, "ca.crt")
    key, csr, crt = (os.path.join(folder, n) for n in ("server.key", "server.csr", "server.crt"))
    ext = os.path.join(folder, "san.ext")
    with open(ext, "w", encoding="utf-8") as handle:
        handle.write("subjectAltName=DNS:localhost,IP:127.0.0.1\n")

    def run(*args):
        subprocess.run(args, check=True, capture_output=True)

    run("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=pai-test-ca",
        "-keyout", ca_key, "-out", ca_crt)
    run("openssl", "req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=localhost", "-keyout", key, "-out", csr)
    run("openssl", "x509", "-req", "-in", csr, "-CA", ca_crt, "-CAkey", ca_key, "-CAcreateserial", "-days", "2",
        "-extfile", ext, "-out", crt)
    os.chmod(key, 0o600)
    return ca_crt, crt, key


@dataclasses.dataclass
class PgServer:
    host: str
    port: int
    user: str
    password: str
    datadir: str
    socket_dir: str
    ssl_ca: str
    bindir: str
    run_as: str | None

    def dsn(self, dbname: str = "postgres", **extra: str) -> str:
        parts = {"host": self.host, "port": str(self.port), "user": self.user, "password": self.password,
                 "dbname": dbname}
        parts.update(extra)
        return " ".join(f"{k}={v}" for k, v in parts.items())

    def connect(self, dbname: str = "postgres", **extra):
        import psycopg2  # pylint: disable=import-outside-toplevel

        conn = psycopg2.connect(self.dsn(dbname, **extra))
        return conn

    def ctl(self, action: str) -> None:
        """Stop or start the server (for outage tests): action is 'stop' or 'start'."""
        cmd = [os.path.join(self.bindir, "pg_ctl"), "-D", self.datadir, "-w", "-l",
               os.path.join(self.datadir, "server.log"), action]
        if action == "stop":
            cmd += ["-m", "fast"]
        _run_as(cmd, self.run_as)


def _run_as(cmd: list[str], user: str | None) -> subprocess.CompletedProcess:
    if user:
        cmd = ["runuser", "-u", user, "--"] + cmd
    return subprocess.run(cmd, check=True, capture_output=True, text=True)


def start_cluster() -> PgServer:
    bindir = _pg_bindir()
    run_as = None
    if os.geteuid() == 0:
        run_as = "postgres"
        pwd.getpwnam(run_as)  # fails clearly if the package did not create it
    base = tempfile.mkdtemp(prefix="pai-pg-")
    os.chmod(base, 0o755)
    datadir, sockdir = os.path.join(base, "data"), os.path.join(base, "sock")
    os.makedirs(sockdir)
    password = uuid.uuid4().hex
    pwfile = os.path.join(base, "pw")
    with open(pwfile, "w", encoding="utf-8") as handle:
        handle.write(password)
    ca, crt, key = _make_tls(base)
    if run_as:
        uid = pwd.getpwnam(run_as).pw_uid
        for path in (base, sockdir, pwfile, crt, key, ca):
            os.chown(path, uid, -1)
    _run_as([os.path.join(bindir, "initdb"), "-D", datadir, "-U", "postgres", "--auth=scram-sha-256",
             f"--pwfile={pwfile}", "-E", "UTF8", "--locale=C.UTF-8"], run_as)
    os.unlink(pwfile)
    port = free_port()
    conf = os.path.join(datadir, "postgresql.conf")
    with open(conf, "a", encoding="utf-8") as handle:
        handle.write(
            f"\nport = {port}\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = '{sockdir}'\n"
            f"ssl = on\nssl_cert_file = '{crt}'\nssl_key_file = '{key}'\nfsync = off\n"
            "synchronous_commit = off\nfull_page_writes = off\nmax_connections = 100\n"
        )
    _run_as([os.path.join(bindir, "pg_ctl"), "-D", datadir, "-w", "-l", os.path.join(datadir, "server.log"),
             "start"], run_as)
    return PgServer("127.0.0.1", port, "postgres", password, datadir, sockdir, ca, bindir, run_as)


def stop_cluster(server: PgServer) -> None:
    try:
        server.ctl("stop")
    except subprocess.CalledProcessError:
        pass
    shutil.rmtree(os.path.dirname(server.datadir), ignore_errors=True)


@pytest.fixture(scope="session")
def pg_server():
    server = start_cluster()
    try:
        yield server
    finally:
        stop_cluster(server)


@pytest.fixture()
def pg_db(pg_server):  # pylint: disable=redefined-outer-name
    """A fresh database for one test; yields its name."""
    name = "t_" + uuid.uuid4().hex[:12]
    conn = pg_server.connect()
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute(f'CREATE DATABASE "{name}"')
    conn.close()
    try:
        yield name
    finally:
        conn = pg_server.connect()
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.close()
