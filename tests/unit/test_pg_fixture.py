"""The throwaway PostgreSQL fixture itself: a real server, TLS verifiable, fresh databases."""
import pytest

pytestmark = pytest.mark.postgres


def test_server_answers_over_verified_tls(pg_server, pg_db):
    conn = pg_server.connect(pg_db, sslmode="verify-full", sslrootcert=pg_server.ssl_ca)
    with conn.cursor() as cur:
        cur.execute("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
        assert cur.fetchone()[0] is True
        cur.execute("SELECT current_database()")
        assert cur.fetchone()[0] == pg_db
    conn.close()


def test_each_test_gets_an_empty_database(pg_server, pg_db):
    conn = pg_server.connect(pg_db)
    with conn.cursor() as cur:
        cur.execute("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'")
        assert cur.fetchone()[0] == 0
    conn.close()
