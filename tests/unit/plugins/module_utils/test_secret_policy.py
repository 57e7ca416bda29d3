"""Tests for plugins/module_utils/_secret_policy.py: the policy check, generation and reuse detection."""
from __future__ import annotations

import shlex
import string
import urllib.parse

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from ansible_collections.proxmox_ai.hardening.plugins.module_utils._sanitize import sanitize_log
from ansible_collections.proxmox_ai.hardening.plugins.module_utils._secret_policy import (
    SAFE_SYMBOLS,
    check_secret,
    check_token,
    find_reused,
    generate_secret,
    is_weak,
)

STRONG = "Vq7-mK2_xR9.tL4=wZ8p"


def test_a_strong_value_passes():
    assert check_secret(STRONG) == []
    assert check_secret(STRONG, min_length=20) == []


@pytest.mark.parametrize("value, expected", [
    ("Ab1-", "is shorter than 16 characters"),
    ("abcdefgh1234-_.=xyz", "has no upper-case letter"),
    ("ABCDEFGH1234-_.=XYZ", "has no lower-case letter"),
    ("ABCDefgh-_.=XYZwvu", "has no digit"),
    ("ABCDefgh12345678XYZ", "has no symbol"),
    ("Aa1-Aa1-Aa1-Aa1-Aa1-", "repeats too few distinct characters"),
])
def test_each_missing_property_is_reported(value, expected):
    assert expected in check_secret(value)


@pytest.mark.parametrize("value", [
    "changeme", "ChangeMe", "CHANGEME!!!!!!!!!!!!", "Password123!", "P@ssw0rd2024!xyz", "password",
    "admin", "Admin123!Admin123!", "secret", "123456", "1234567890123456", "proxmox", "Proxmox2024!!!!!",
    "postgres", "Postgres-2024-Pw", "n8n", "N8n2024!N8n2024!", "letmein", "LetMeIn!2024abcd", "qwerty",
    "Qwerty123456789!", "MyPassword123!!!", "adminadminadmin1A!", "Welcome1!Welcome1!", "Xy-Password-2024!", "1234567890123456", "abcdefghijklmnop1!",
    "p4$$w0rd", "Changeme_Changeme_1",
])
def test_known_defaults_and_trivial_variants_are_weak(value):
    assert is_weak(value)
    assert "is a known default or weak value, or is built from one" in check_secret(value)


@pytest.mark.parametrize("value", [STRONG, "correct-Horse-battery-staple-42", "Zq8.Lm3-Xt7_Nv2=Rb5", "N8nx-7Qk2_vW9.pL3"])
def test_strong_values_are_not_weak(value):
    assert not is_weak(value)


def test_extra_words_make_a_value_weak():
    assert not is_weak("Kestrel-2024-x9Q")
    assert is_weak("Kestrel-2024-x9Q", extra_words=["kestrel"])


@pytest.mark.parametrize("char, label", [(" ", "space"), ('"', "double quote"), ("'", "single quote"),
                                         ("\\", "backslash"), ("$", "$"), ("`", "backquote"), ("\n", "newline")])
def test_unsafe_characters_are_refused_by_name(char, label):
    value = "Vq7-mK2_" + char + "xR9.tL4=wZ8p"
    problems = check_secret(value)
    assert any(label in p for p in problems)
    assert check_secret(value, allow_unsafe=True) == []


@settings(max_examples=200, deadline=None)
@given(st.text(min_size=0, max_size=40))
def test_messages_never_contain_the_value(value):
    for problem in check_secret(value) + check_token(value):
        if len(value) >= 3:
            assert value not in problem
    assert isinstance(check_secret(value), list)


def test_non_strings_are_refused():
    assert check_secret(None) == ["is not a string"]
    assert check_secret(12345678901234567) == ["is not a string"]
    assert check_token(None) == ["is not a string"]


@pytest.mark.parametrize("value, ok", [
    ("xoxb-2294716503-3318264055-Kq8ZtR2mWv7XyP4nLs9BcD3f", True),
    ("9f1c2e7a4b6d80e3c5a7f9b2d4e6a8c0", True),  # Twilio auth token: 32 hex, no classes needed
    ("xoxb-your-token", False), ("<your-token>", False), ("changeme", False), ("short", False),
    ("xoxb-...", False), ("token with space", False),
])
def test_token_policy(value, ok):
    assert (check_token(value) == []) is ok


@settings(max_examples=300, deadline=None)
@given(st.integers(min_value=16, max_value=128))
def test_generated_secrets_pass_the_policy(length):
    value = generate_secret(length)
    assert len(value) == length
    assert check_secret(value, min_length=16) == []
    assert value[0].isalnum()
    assert set(value) <= set(string.ascii_letters + string.digits + SAFE_SYMBOLS)
    assert any(c in SAFE_SYMBOLS for c in value)


def test_generated_secrets_are_safe_everywhere_they_go():
    for dummy in range(200):
        value = generate_secret(32)
        assert urllib.parse.quote(value, safe="=") == value  # URL userinfo without encoding
        assert shlex.quote(value) == value  # an unquoted shell word
        assert yaml.safe_load("k: %s" % value)["k"] == value  # plain YAML scalar
        assert sanitize_log("password=%s" % value) == "password=********"  # fully masked
        assert sanitize_log("postgresql://u:%s@h/db" % value) == "postgresql://u:********@h/db"
        assert sanitize_log("host=h password=%s dbname=x" % value) == "host=h password=******** dbname=x"


def test_generated_secrets_differ_and_use_the_whole_alphabet():
    values = {generate_secret(32) for dummy in range(500)}
    assert len(values) == 500
    assert set("".join(values)) == set(string.ascii_letters + string.digits + SAFE_SYMBOLS)


def test_custom_symbols_and_bad_arguments():
    value = generate_secret(20, symbols="#%")
    assert any(c in "#%" for c in value)
    for bad in (dict(length=7), dict(length="32"), dict(length=True), dict(symbols=""), dict(symbols="a-"),
                dict(symbols="- ")):
        with pytest.raises(ValueError):
            generate_secret(**dict(dict(length=32), **bad))


def test_find_reused_returns_names_only():
    values = {"A": "same-Value-1234567", "B": "other-Value-98765", "C": "same-Value-1234567", "D": "",
              "E": None, "F": "other-Value-98765", "G": "unique-Value-55555"}
    assert find_reused(values) == [["A", "C"], ["B", "F"]]
    assert find_reused({}) == []
    assert find_reused(None) == []
