"""Pure parts of _pg, _retention and _migrations (no server needed)."""
from __future__ import annotations

import pytest

from ansible_collections.proxmox_ai.hardening.plugins.module_utils import _migrations, _pg, _retention


def test_connect_kwargs_maps_options_and_leaves_empty_ones_to_libpq():
    params = {"login_user": "app", "login_password": "s3cret", "login_host": "db.example.org",
              "login_unix_socket": "", "login_port": 5433, "login_db": "proxmox_ai", "ssl_mode": "verify-full",
              "ssl_rootcert": "/etc/ca.crt", "ssl_cert": None, "ssl_key": "", "connect_timeout": 5,
              "connect_params": {"application_name": "x", "options": "-c search_path=public"}}
    assert _pg.connect_kwargs(params) == {
        "user": "app", "password": "s3cret", "host": "db.example.org", "port": 5433, "dbname": "proxmox_ai",
        "sslmode": "verify-full", "sslrootcert": "/etc/ca.crt", "connect_timeout": 5, "application_name": "x",
        "options": "-c search_path=public"}


def test_unix_socket_wins_over_host_and_password_is_never_described():
    params = {"login_user": "postgres", "login_password": "hunter2", "login_host": "ignored",
              "login_unix_socket": "/var/run/postgresql", "login_port": 5432, "login_db": ""}
    assert _pg.connect_kwargs(params)["host"] == "/var/run/postgresql"
    assert "dbname" not in _pg.connect_kwargs(params)
    assert "hunter2" not in _pg.describe_target(params)


def test_common_spec_marks_the_password_secret_and_the_key_path_not():
    spec = _pg.pg_common_argument_spec()
    assert spec["login_password"]["no_log"] is True
    assert spec["ssl_key"]["no_log"] is False
    assert "verify-full" in spec["ssl_mode"]["choices"]


@pytest.mark.parametrize("value, text", [
    (90, "90 days"), (1.5, "1.5 days"), ("30", "30 days"), (" 7 ", "7 days"), ("12 months", "12 months"),
    ("-3", "-3 days"), ("", None), (None, None), (True, None),
])
def test_max_age_numbers_are_days(value, text):
    assert _retention._age_text(value) == text


@pytest.mark.parametrize("bound, upper", [
    ("FOR VALUES FROM ('2025-01-01 00:00:00+00') TO ('2025-01-02 00:00:00+00')", "2025-01-02 00:00:00+00"),
    ("FOR VALUES FROM (MINVALUE) TO ('2025-01-02')", "2025-01-02"),
    ("FOR VALUES FROM ('2025-01-01') TO (MAXVALUE)", None),
    ("FOR VALUES FROM ('it''s') TO ('o''k')", "o'k"),
])
def test_range_bounds_are_read_from_the_catalog_text(bound, upper):
    match = _retention.RANGE_BOUND_RE.match(bound)
    assert _retention._unquote_bound(match.group("upper")) == upper
    assert _retention.RANGE_BOUND_RE.match("DEFAULT") is None


def test_policy_error_keeps_every_problem():
    exc = _retention.PolicyError(["policy 1 (a): x", "policy 2 (b): y"])
    assert exc.errors == ["policy 1 (a): x", "policy 2 (b): y"]
    assert str(exc) == "policy 1 (a): x; policy 2 (b): y"


def test_discover_orders_by_version_and_refuses_bad_sets(tmp_path):
    (tmp_path / "010_later.sql").write_text("SELECT 2;")
    (tmp_path / "002_first.sql").write_text("SELECT 1;")
    (tmp_path / "README.md").write_text("not sql")
    found = _migrations.discover(str(tmp_path))
    assert [(m.version, m.name) for m in found] == [(2, "002_first"), (10, "010_later")]
    (tmp_path / "10_dup.sql").write_text("SELECT 3;")
    with pytest.raises(_migrations.MigrationError, match="NNN_name.sql"):
        _migrations.discover(str(tmp_path))
    (tmp_path / "10_dup.sql").unlink()
    (tmp_path / "0010_dup.sql").write_text("SELECT 3;")
    with pytest.raises(_migrations.MigrationError, match="same version 10"):
        _migrations.discover(str(tmp_path))
    with pytest.raises(_migrations.MigrationError, match="does not exist"):
        _migrations.discover(str(tmp_path / "nope"))
