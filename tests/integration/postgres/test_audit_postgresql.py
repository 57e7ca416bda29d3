"""The audit role's postgresql_ssl item against a real PostgreSQL 15 with TLS: real connection attempts
with and without TLS decide the result, pg_hba decides whether non-TLS is refused."""
from __future__ import annotations

import json
import os
import shutil
import subprocess

import pytest
import yaml

from tests.support.postgres import start_cluster, stop_cluster

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

pytestmark = pytest.mark.skipif(not (os.path.exists("/usr/bin/psql") and os.path.isdir("/etc/postgresql")),
                                reason="the audit looks for /usr/bin/psql and /etc/postgresql")

HBA_STRICT = ("local all all trust\n"
              "hostssl all all 127.0.0.1/32 scram-sha-256\n"
              "hostnossl all all 0.0.0.0/0 reject\n")
HBA_OPEN = ("local all all trust\n"
            "host all all 127.0.0.1/32 scram-sha-256\n")


@pytest.fixture(scope="module")
def cluster():
    server = start_cluster()
    yield server
    stop_cluster(server)


def _set_hba(server, text):
    with open(os.path.join(server.datadir, "pg_hba.conf"), "w", encoding="utf-8") as handle:
        handle.write(text)
    cmd = [os.path.join(server.bindir, "pg_ctl"), "-D", server.datadir, "reload"]
    if server.run_as:
        cmd = ["runuser", "-u", server.run_as, "--"] + cmd
    subprocess.run(cmd, check=True, capture_output=True)


def _audit(tmp_path, server, check=False):
    play = [{"name": "audit", "hosts": "localhost", "gather_facts": False,
             "vars": {"audit_checks": ["postgresql_ssl"], "audit_postgresql_port": server.port,
                      "audit_postgresql_database": "postgres", "audit_postgresql_user": "postgres",
                      "audit_report_dir": str(tmp_path), "audit_report_basename": "pg"},
             "roles": [{"role": "proxmox_ai.hardening.audit"}]}]
    (tmp_path / "play.yml").write_text(yaml.safe_dump(play))
    (tmp_path / "hosts").write_text("localhost ansible_connection=local ansible_python_interpreter=%s\n"
                                    % os.path.join(ROOT, ".venv", "bin", "python"))
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=os.path.join(ROOT, "build", "collections"),
               ANSIBLE_NOCOLOR="1", ANSIBLE_LOCAL_TEMP=str(tmp_path / "tmp"))
    env.pop("PGPASSWORD", None)
    cmd = [os.path.join(ROOT, ".venv", "bin", "ansible-playbook"), "-i", str(tmp_path / "hosts"),
           str(tmp_path / "play.yml")] + (["--check"] if check else [])
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300, check=False)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    assert "changed=0" in proc.stdout
    report = json.loads((tmp_path / "pg.json").read_text())
    assert server.password not in (tmp_path / "pg.json").read_text()
    return next(i for i in report["items"] if i["id"] == "postgresql_ssl")


@pytest.mark.skipif(shutil.which("runuser") is None, reason="runuser is missing")
def test_non_tls_refused_passes_then_open_hba_fails(cluster, tmp_path):
    _set_hba(cluster, HBA_STRICT)
    item = _audit(tmp_path, cluster)
    assert item["status"] == "pass", item
    assert "no encryption" in item["evidence"][0]
    assert _audit(tmp_path, cluster, check=True)["status"] == "pass"

    _set_hba(cluster, HBA_OPEN)
    item = _audit(tmp_path, cluster)
    assert item["status"] == "fail", item
    assert item["reason"] == "server accepts connections without TLS"


def _backup(server, path, passfile, iterations=100000):
    dump = subprocess.run([os.path.join(server.bindir, "pg_dump"), "--format=custom", server.dsn("postgres")],
                          check=True, capture_output=True).stdout
    subprocess.run(["openssl", "enc", "-aes-256-cbc", "-salt", "-pbkdf2", "-iter", str(iterations), "-md", "sha256",
                    "-pass", "file:%s" % passfile, "-out", str(path)], input=dump, check=True, capture_output=True)


def test_backups_recent_and_decryptable(cluster, tmp_path):
    subprocess.run(["psql", "-q", cluster.dsn("postgres"), "-c",
                    "CREATE TABLE IF NOT EXISTS audit_probe (id int); INSERT INTO audit_probe VALUES (1)"],
                   check=True, capture_output=True)
    backups = tmp_path / "backups"
    backups.mkdir()
    passfile = tmp_path / "backup.pass"
    passfile.write_text("Backup-Passphrase-0123456789\n")
    _backup(cluster, backups / "postgres-20260101T000000Z.i100000.dump.enc", passfile)

    def audit(timer=""):
        # No backup timer on this machine: the schedule part is skipped ("") except where tested below
        # (the sandbox test covers a real, then stopped, pai-pg-backup.timer).
        play = [{"name": "audit", "hosts": "localhost", "gather_facts": False,
                 "vars": {"audit_checks": ["backups"], "audit_backup_dir": str(backups),
                          "audit_backup_passphrase_file": str(passfile), "audit_backup_timer": timer,
                          "audit_report_dir": str(tmp_path), "audit_report_basename": "bk"},
                 "roles": [{"role": "proxmox_ai.hardening.audit"}]}]
        (tmp_path / "play.yml").write_text(yaml.safe_dump(play))
        (tmp_path / "hosts").write_text("localhost ansible_connection=local ansible_python_interpreter=%s\n"
                                        % os.path.join(ROOT, ".venv", "bin", "python"))
        env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=os.path.join(ROOT, "build", "collections"),
                   ANSIBLE_NOCOLOR="1", ANSIBLE_LOCAL_TEMP=str(tmp_path / "tmp"))
        proc = subprocess.run([os.path.join(ROOT, ".venv", "bin", "ansible-playbook"), "-i", str(tmp_path / "hosts"),
                               str(tmp_path / "play.yml")], capture_output=True, text=True, env=env, timeout=300,
                              check=False)
        assert proc.returncode == 0, proc.stdout[-3000:]
        report = json.loads((tmp_path / "bk.json").read_text())
        return next(i for i in report["items"] if i["id"] == "backups")

    item = audit()
    assert item["status"] == "pass", item
    assert "1 TABLE DATA entries" in item["evidence"][1]

    # a fresh, decryptable backup but no schedule that makes the next one: fail, naming the timer
    item = audit(timer="pai-test-no-such-backup.timer")
    assert item["status"] == "fail", item
    # "is not-found, inactive, ..." under systemd; "could not be read: ..." where systemd is not PID 1
    assert item["reason"].startswith("backup schedule pai-test-no-such-backup.timer "), item
    assert item["reason"].endswith(": no new backups will be made"), item

    # a newer backup encrypted with another passphrase does not decrypt: fail
    other = tmp_path / "other.pass"
    other.write_text("Another-Passphrase-987654321\n")
    _backup(cluster, backups / "postgres-20260102T000000Z.i100000.dump.enc", other)
    os.utime(backups / "postgres-20260102T000000Z.i100000.dump.enc")
    item = audit()
    assert item["status"] == "fail", item
    assert item["reason"].startswith("newest backup does not decrypt to a valid dump")
