"""The SCRAM-SHA-256 verifier the secrets role gives PostgreSQL works for real logins
(a throwaway cluster with scram-sha-256 authentication, from the pg_server fixture)."""
from __future__ import annotations

import psycopg2
import pytest

from ansible_collections.proxmox_ai.hardening.plugins.filter.pg_scram_sha256 import FilterModule
from ansible_collections.proxmox_ai.hardening.plugins.module_utils._secret_policy import generate_secret

pytestmark = pytest.mark.postgres
scram = FilterModule().filters()["pg_scram_sha256"]


def test_verifier_logs_in_and_wrong_password_does_not(pg_server):
    password = generate_secret(32)
    verifier = scram(password)
    assert verifier.startswith("SCRAM-SHA-256$4096:") and password not in verifier
    assert scram(password) != verifier  # random salt
    conn = pg_server.connect()
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute("DROP ROLE IF EXISTS scram_probe")
        cur.execute("CREATE ROLE scram_probe LOGIN PASSWORD %s", (verifier,))
        cur.execute("SELECT rolpassword FROM pg_authid WHERE rolname = 'scram_probe'")
        assert cur.fetchone()[0] == verifier  # stored as given, not re-hashed
    try:
        probe = psycopg2.connect(host=pg_server.host, port=pg_server.port, user="scram_probe", password=password,
                                 dbname="postgres")
        with probe.cursor() as cur:
            cur.execute("SELECT current_user")
            assert cur.fetchone()[0] == "scram_probe"
        probe.close()
        with pytest.raises(psycopg2.OperationalError, match="password authentication failed"):
            psycopg2.connect(host=pg_server.host, port=pg_server.port, user="scram_probe", password=password + "x",
                             dbname="postgres")
    finally:
        with conn.cursor() as cur:
            cur.execute("DROP ROLE scram_probe")
        conn.close()


def test_non_ascii_passwords_are_left_to_the_server():
    assert scram("Pässwörd-1234-abcdEFG") is None
    assert scram("") is None
