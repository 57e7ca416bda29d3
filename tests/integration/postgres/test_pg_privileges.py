"""The least-privilege model of migration 002, checked by acting as each role on a real server."""
from __future__ import annotations

import os
import uuid

import psycopg2
import pytest
from psycopg2 import errors, sql

from ansible_collections.proxmox_ai.hardening.plugins.module_utils import _retention
from ansible_collections.proxmox_ai.hardening.plugins.module_utils._migrations import apply_migrations

pytestmark = pytest.mark.postgres

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
MIGRATIONS = os.path.join(ROOT, "roles", "postgresql", "files", "migrations")


@pytest.fixture()
def roles(pg_server, pg_db):
    """Schema, an app role and a maintenance role with privileges applied; yields (admin, app, maint) connections."""
    suffix = uuid.uuid4().hex[:8]
    app, maint = "app_" + suffix, "maint_" + suffix
    admin = pg_server.connect(pg_db)
    apply_migrations(admin, MIGRATIONS)
    with admin.cursor() as cur:
        for name in (app, maint):
            cur.execute(sql.SQL("CREATE ROLE {0} LOGIN PASSWORD %s").format(sql.Identifier(name)), (suffix,))
        cur.execute("SELECT apply_privileges(%s, %s)", (app, maint))
        first = cur.fetchone()[0]
        cur.execute("SELECT apply_privileges(%s, %s)", (app, maint))
        second = cur.fetchone()[0]
    admin.commit()
    assert len(first) > 20 and second == []
    conns = []

    def login(name):
        conn = psycopg2.connect(host=pg_server.host, port=pg_server.port, user=name, password=suffix,
                                dbname=pg_db)
        conns.append(conn)
        return conn
    try:
        yield admin, login(app), login(maint), (app, maint)
    finally:
        for conn in conns:
            conn.close()
        with admin.cursor() as cur:
            for name in (app, maint):
                cur.execute(sql.SQL("DROP OWNED BY {0} CASCADE").format(sql.Identifier(name)))
        admin.commit()
        admin.autocommit = True
        with admin.cursor() as cur:
            for name in (app, maint):
                cur.execute(sql.SQL("DROP ROLE {0}").format(sql.Identifier(name)))
        admin.close()


def refused(conn, query, args=None):
    with conn.cursor() as cur:
        try:
            cur.execute(query, args)
        except (errors.InsufficientPrivilege, errors.RaiseException) as exc:
            conn.rollback()
            return str(exc)
    conn.rollback()
    return None


def works(conn, query, args=None):
    with conn.cursor() as cur:
        cur.execute(query, args)
        result = cur.fetchall() if cur.description else cur.rowcount
    conn.commit()
    return result


def test_app_role_writes_what_services_need_and_nothing_more(roles):
    _admin, app, _maint, names = roles
    assert works(app, "INSERT INTO action_logs (actor, action_type, status, ip) VALUES ('n8n', 'restart', 'success', "
                      "'10.0.0.5') RETURNING id")
    assert works(app, "INSERT INTO alerts (severity, alert_type, entity, message, dedup_key) "
                      "VALUES ('critical', 'node_down', 'pve1', 'down', 'pve1:node_down')") == 1
    assert works(app, "UPDATE alerts SET status = 'resolved', resolved_at = now()") == 1
    assert works(app, "INSERT INTO node_samples (node, cpu) VALUES ('pve1', 0.3)") == 1
    assert works(app, "SELECT count(*) FROM node_samples")[0][0] == 1
    assert works(app, "DELETE FROM conversations") == 0
    # the audit trail is append-only, nothing can be dropped, altered or created
    for query in ("DELETE FROM action_logs", "UPDATE action_logs SET status = 'forged'", "TRUNCATE action_logs",
                  "DROP TABLE alerts", "ALTER TABLE alerts ADD COLUMN x int", "CREATE TABLE mine (id int)",
                  "DELETE FROM node_samples", "SELECT * FROM schema_migrations",
                  "SELECT create_daily_partitions('node_samples', 30, 0)"):
        assert refused(app, query), query
    assert "permission denied" in refused(app, "DELETE FROM action_logs")
    with app.cursor() as cur:
        cur.execute("SELECT rolsuper, rolcreaterole, rolcreatedb, rolbypassrls FROM pg_roles WHERE rolname = %s",
                    (names[0],))
        assert cur.fetchone() == (False, False, False, False)
        cur.execute("SELECT has_database_privilege(current_database(), 'TEMP'), "
                    "has_schema_privilege('public', 'CREATE')")
        assert cur.fetchone() == (False, False)
    app.rollback()


def test_maintenance_role_runs_retention_and_nothing_else(roles):
    admin, _app, maint, _names = roles
    with admin.cursor() as cur:
        cur.execute("SELECT create_daily_partitions('node_samples', 1, 6)")
        cur.execute("INSERT INTO node_samples (node, created_at) SELECT 'pve1', now() - make_interval(hours => g) "
                    "FROM generate_series(0, 143) g")
        cur.execute("INSERT INTO feedback (user_email, user_name, comment, created_at) VALUES "
                    "('a@b', 'A', 'fine', now() - interval '400 days')")
        cur.execute("INSERT INTO action_logs (actor, action_type, status, created_at) VALUES "
                    "('x', 'y', 'success', now() - interval '3 years')")
    admin.commit()
    assert works(maint, "UPDATE feedback SET user_email = 'anonymized@localhost'") == 1
    assert refused(maint, "UPDATE feedback SET comment = 'rewritten'")
    assert refused(maint, "INSERT INTO alerts (severity, alert_type, entity, message, dedup_key) "
                          "VALUES ('info', 'x', 'e', 'm', 'k')")
    assert refused(maint, "DROP TABLE alerts")
    assert works(maint, "SELECT create_daily_partitions('node_samples', 9, 0)")[0][0] == 2
    outcome = _retention.apply(maint, [
        {"table": "action_logs", "max_age": "24 months"},
        {"table": "node_samples", "max_age": "3 days"},
        {"table": "feedback", "max_age": "12 months",
         "anonymise": {"user_email": "anonymized@localhost", "user_name": "anonymized"}},
    ])
    counts = {p["name"]: p["rows"] for p in outcome["policies"]}
    assert counts["action_logs"] == 1 and counts["feedback:anonymise"] == 1
    dropped = outcome["policies"][1]["partitions"]
    assert len(dropped) >= 2 and not outcome["policies"][1]["warnings"]
    with admin.cursor() as cur:
        cur.execute("SELECT count(*) FROM pg_class WHERE relname = ANY(%s)", ([d.split(".")[1] for d in dropped],))
        assert cur.fetchone()[0] == 0
        cur.execute("SELECT count(*) FROM node_samples WHERE created_at < now() - interval '3 days'")
        assert cur.fetchone()[0] == 0
        cur.execute("SELECT user_email, user_name, comment FROM feedback")
        assert cur.fetchall() == [("anonymized@localhost", "anonymized", "fine")]
    admin.commit()


def test_drifted_grants_are_put_back(roles):
    admin, app, _maint, (app_name, maint_name) = roles
    with admin.cursor() as cur:
        cur.execute(sql.SQL("GRANT UPDATE, DELETE ON action_logs TO {0}").format(sql.Identifier(app_name)))
        cur.execute("GRANT CREATE ON SCHEMA public TO PUBLIC")
        cur.execute("SELECT apply_privileges(%s, %s)", (app_name, maint_name))
        changes = cur.fetchone()[0]
    admin.commit()
    assert sorted(changes) == sorted([
        "REVOKE DELETE ON TABLE action_logs FROM %s" % app_name,
        "REVOKE UPDATE ON TABLE action_logs FROM %s" % app_name,
        "REVOKE CREATE ON SCHEMA public FROM PUBLIC"])
    assert refused(app, "DELETE FROM action_logs")
