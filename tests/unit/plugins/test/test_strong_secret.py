"""The strong_secret test plugin, through its TestModule and through a real ansible-playbook run
(together with the sanitize_log filter), including a vault-encrypted value."""
from __future__ import annotations

import os
import subprocess

import pytest
import yaml

from ansible.errors import AnsibleFilterError
from ansible_collections.proxmox_ai.hardening.plugins.test.strong_secret import TestModule as _StrongSecretPlugin

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))))
strong_secret = _StrongSecretPlugin().tests()["strong_secret"]

STRONG = "Vq7-mK2_xR9.tL4=wZ8p"


def test_policy_through_the_plugin():
    assert strong_secret(STRONG)
    assert not strong_secret("Password123!")
    assert not strong_secret(STRONG, 24)
    assert strong_secret(STRONG, "20")
    assert strong_secret("9f1c2e7a4b6d80e3c5a7f9b2d4e6a8c0", policy="token")
    assert not strong_secret("9f1c2e7a4b6d80e3c5a7f9b2d4e6a8c0")
    assert not strong_secret("xoxb-your-token", policy="token")
    assert not strong_secret(None)


def test_bad_arguments_fail_clearly():
    with pytest.raises(AnsibleFilterError, match="policy"):
        strong_secret(STRONG, policy="other")
    with pytest.raises(AnsibleFilterError, match="min_length"):
        strong_secret(STRONG, "long")


def _env():
    env = dict(os.environ)
    env["ANSIBLE_COLLECTIONS_PATH"] = os.path.join(ROOT, "build", "collections")
    env["ANSIBLE_NOCOLOR"] = "1"
    env["ANSIBLE_LOCALHOST_WARNING"] = "0"
    env["ANSIBLE_INVENTORY_UNPARSED_WARNING"] = "0"
    return env


def test_plugins_in_a_real_playbook_with_a_vaulted_value(tmp_path):
    bindir = os.path.join(ROOT, ".venv", "bin")
    (tmp_path / "vault-pass").write_text("test-vault-password\n")
    vaulted = subprocess.run(
        [os.path.join(bindir, "ansible-vault"), "encrypt_string", "--vault-password-file", str(tmp_path / "vault-pass"),
         STRONG, "--name", "vault_api_key"],
        check=True, capture_output=True, text=True, env=_env(), cwd=str(tmp_path)).stdout
    (tmp_path / "vars.yml").write_text(vaulted)
    play = [{
        "name": "plugins", "hosts": "localhost", "gather_facts": False,
        "vars_files": ["vars.yml"],
        "vars": {"weak": "Password123!", "line": "login password=%s ok" % STRONG},
        "tasks": [
            {"name": "Check the vaulted value and a weak one",
             "ansible.builtin.assert": {"that": [
                 "vault_api_key is proxmox_ai.hardening.strong_secret",
                 "vault_api_key is proxmox_ai.hardening.strong_secret(20)",
                 "vault_api_key is not proxmox_ai.hardening.strong_secret(21)",
                 "weak is not proxmox_ai.hardening.strong_secret",
                 "weak is not proxmox_ai.hardening.strong_secret(policy='token')",
             ]}},
            {"name": "Print the scrubbed line",
             "ansible.builtin.debug": {"msg": "{{ line | proxmox_ai.hardening.sanitize_log }}"}},
            {"name": "Print a scrubbed structure",
             "ansible.builtin.debug": {"msg": "{{ {'api_key': vault_api_key, 'n': 1} | proxmox_ai.hardening.sanitize_log }}"}},
        ],
    }]
    (tmp_path / "play.yml").write_text(yaml.safe_dump(play, sort_keys=False))
    proc = subprocess.run(
        [os.path.join(bindir, "ansible-playbook"), "-i", "localhost,", "-c", "local", "-v",
         "--vault-password-file", str(tmp_path / "vault-pass"), "play.yml"],
        capture_output=True, text=True, env=_env(), cwd=str(tmp_path), timeout=300, check=False)
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output
    assert "login password=******** ok" in output
    assert "'api_key': '********'" in output or '"api_key": "********"' in output
    assert STRONG not in output
    assert "ok=3" in output and "failed=0" in output
