"""The sanitize_log filter plugin (plugins/filter/sanitize_log.py), through its FilterModule."""
from __future__ import annotations

from ansible_collections.proxmox_ai.hardening.plugins.filter.sanitize_log import FilterModule

sanitize = FilterModule().filters()["sanitize_log"]


def test_text_is_scrubbed_and_keys_kept():
    assert sanitize("connect postgresql://app:s3cr3t@db/prod password=x") == \
        "connect postgresql://app:********@db/prod password=********"


def test_structures_are_scrubbed_recursively_and_keep_their_shape():
    data = {"ticket": "PVE:root@pam:65A1B2C3::sig", "username": "root@pam", "items": ["token=abc", 3]}
    assert sanitize(data) == {"ticket": "********", "username": "root@pam", "items": ["token=********", 3]}
    assert sanitize(("api_key: k1", None)) == ["api_key: ********", None]


def test_other_values_become_text():
    assert sanitize(None) == "None"
    assert sanitize(42) == "42"
    assert sanitize(b"Authorization: Bearer abc") == "Authorization: Bearer ********"
