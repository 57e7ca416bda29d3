# -*- coding: utf-8 -*-
# Copyright: (c) 2025, Proxmox AI hardening maintainers
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The secret policy of the guide: 16+ characters, upper, lower, digit and symbol,
no known default or weak value, unique per service.

- ``check_secret(value, min_length=16)`` lists what is wrong with a value; the
  messages never contain the value.
- ``generate_secret(length=32, symbols=SAFE_SYMBOLS)`` draws from ``secrets``
  with all four classes guaranteed.
- ``find_reused(mapping)`` names the secrets that share a value.

Standard library only.
"""

from __future__ import annotations

import re
import secrets
import string

__all__ = [
    "SAFE_SYMBOLS", "UNSAFE_CHARACTERS", "WEAK_WORDS", "check_secret", "check_token", "find_reused",
    "generate_secret", "is_weak",
]

# Symbols used for generated secrets.  Each one is literal, without quoting or
# escaping, in: a .env file (docker compose v1/v2, python-dotenv, systemd
# EnvironmentFile), compose YAML (plain or quoted scalars, no ${} interpolation),
# libpq key/value DSNs and the userinfo of postgresql:// URLs (RFC 3986
# unreserved or sub-delims, no percent-encoding needed), an unquoted POSIX shell
# word (no globbing, expansion or history), systemd unit files (no %
# specifiers), JSON and sanitize_log's "key=value" values.  "=" is only ever
# placed after the first character, so it cannot form an assignment or option.
SAFE_SYMBOLS = "-_.="

# Characters refused in user-supplied values by default: they need quoting or
# escaping in at least one of the places above (whitespace ends a .env value or
# a DSN value, quotes and backslashes are parsed, $ and ` are expanded by
# compose and shells).
UNSAFE_CHARACTERS = frozenset(" \t\r\n\v\f\"'\\$`")

# Known default or weak values (lower case, letters/digits only); matching is
# case-insensitive, ignores symbols, common l33t substitutions and trivial
# prefixes/suffixes ("Password123!", "P@ssw0rd2024", "MyProxmox!!").
WEAK_WORDS = frozenset("""
changeme change changeit password passwd pass passw0rd admin administrator root toor secret secrets default
test testing guest user login welcome letmein qwerty qwertz azerty asdf asdfgh asdfghjkl zxcvbn qwertyuiop
abc abcd abcdef abcdefg iloveyou monkey dragon master trustno1 sunshine princess football baseball shadow
superman batman starwars hunter hello whatever freedom proxmox pve pveroot postgres postgresql pgsql psql
n8n docker compose slack twilio token apikey api key example sample dummy temp temporary foo bar foobar
xxx demo mysql oracle ubuntu debian linux server service monitor monitoring grafana prometheus database
data system manager operator support backup
""".split())
WEAK_NUMBERS = frozenset("""
123 1234 12345 123456 1234567 12345678 123456789 1234567890 0123456789 111111 000000 654321 123123 121212
666666 696969 112233 11111111 00000000 987654321
""".split())

_LEET = str.maketrans({"0": "o", "1": "i", "3": "e", "4": "a", "5": "s", "7": "t", "8": "b", "9": "g",
                       "@": "a", "$": "s", "!": "i", "|": "l", "+": "t"})
_MIN_RESIDUE = 4  # letters left after removing weak words: fewer means "built from a weak word"


def _uncovered_letters(lowered: str, words) -> tuple:
    """(letters of ``lowered`` outside every weak-word occurrence, whether any occurrence was found).

    Words are searched in four views of the value: as is and with l33t
    substitutions undone, each with and without symbols and digits in between
    ("P@ss-w0rd" holds "password"); every view keeps the index of each character
    in ``lowered`` so that coverage is counted on the original characters.
    """
    covered = [False] * len(lowered)
    leet = lowered.translate(_LEET)
    for view in (lowered, leet):
        for keep in (lambda c: True, str.isalnum, str.isalpha):
            indexes = [i for i, c in enumerate(view) if keep(c)]
            text = "".join(view[i] for i in indexes)
            for word in words:
                if len(word) < 3:
                    continue
                start = text.find(word)
                while start >= 0:
                    for pos in range(start, start + len(word)):
                        covered[indexes[pos]] = True
                    start = text.find(word, start + 1)
    left = sum(1 for i, c in enumerate(lowered) if c.isalpha() and not covered[i])
    return left, any(covered)


def _sequence_breaks(text: str) -> int:
    """How often ``text`` leaves a run of consecutive characters (ascending, descending, 9->0, or repeated)."""
    breaks = 0
    for left, right in zip(text, text[1:]):
        step = ord(right) - ord(left)
        if step not in (-1, 0, 1) and not (left == "9" and right == "0") and not (left == "0" and right == "9"):
            breaks += 1
    return breaks


def is_weak(value: str, extra_words=()) -> bool:
    """True when ``value`` is a known default or weak value or is built from one.

    Built from one: once every occurrence of a weak word is removed, fewer than
    four letters remain ("Password123!", "MyProxmox2024", "adminadmin", "P@ssw0rd").
    """
    if not isinstance(value, str):
        return True
    lowered = value.lower().strip()
    words = WEAK_WORDS | {w.lower() for w in extra_words if isinstance(w, str) and len(w) >= 3}
    alnum = re.sub(r"[^a-z0-9]", "", lowered)
    digits = re.sub(r"[^0-9]", "", lowered)
    if not alnum or alnum in WEAK_NUMBERS or (digits == alnum and len(set(digits)) <= 3):
        return True
    for number in WEAK_NUMBERS:  # "123456789!", "12345678-abc"
        if len(number) >= 6 and digits.startswith(number) and len(alnum) - len(number) < _MIN_RESIDUE:
            return True
    if len(alnum) >= 6 and _sequence_breaks(alnum) <= 2:  # "1234567890123456", "abcdefghijk"
        return True
    left, found = _uncovered_letters(lowered, words)
    return found and left < _MIN_RESIDUE


def _unsafe(value: str):
    found = sorted({c for c in value if c in UNSAFE_CHARACTERS or (ord(c) < 32 or ord(c) == 127)})
    names = {" ": "space", "\t": "tab", "\r": "carriage return", "\n": "newline", "\v": "vertical tab",
             "\f": "form feed", "\\": "backslash", "$": "$", "`": "backquote", '"': 'double quote',
             "'": "single quote"}
    return [names.get(c, "control character") for c in found]


def _unsafe_problem(value: str, allow_unsafe: bool):
    unsafe = [] if allow_unsafe else _unsafe(value)
    if not unsafe:
        return []
    return ["contains characters that break .env files, compose files, DSNs or shells (%s)" % ", ".join(unsafe)]


def check_secret(value, min_length: int = 16, extra_words=(), allow_unsafe: bool = False):
    """Return the list of policy problems of ``value`` (empty when it passes).

    Problems are short English phrases that never include the value or any part
    of it, so they can be shown in logs and error messages.
    """
    if not isinstance(value, str):
        return ["is not a string"]
    problems = []
    if len(value) < min_length:
        problems.append("is shorter than %d characters" % min_length)
    if not any(c in string.ascii_uppercase or (c.isalpha() and c.isupper()) for c in value):
        problems.append("has no upper-case letter")
    if not any(c in string.ascii_lowercase or (c.isalpha() and c.islower()) for c in value):
        problems.append("has no lower-case letter")
    if not any(c.isdigit() for c in value):
        problems.append("has no digit")
    if not any(not c.isalnum() and not c.isspace() for c in value):
        problems.append("has no symbol")
    if value and len(set(value)) < min(8, max(1, len(value) // 2)):
        problems.append("repeats too few distinct characters")
    if is_weak(value, extra_words):
        problems.append("is a known default or weak value, or is built from one")
    return problems + _unsafe_problem(value, allow_unsafe)


def check_token(value, min_length: int = 8, extra_words=(), allow_unsafe: bool = False):
    """The policy for third-party tokens (Slack, Twilio, Proxmox token secrets) that we cannot choose.

    No character-class rules, but a minimum length, no placeholders such as
    ``xoxb-your-token`` or ``<your-token>``, no weak value, no unsafe characters.
    """
    if not isinstance(value, str):
        return ["is not a string"]
    problems = []
    if len(value) < min_length:
        problems.append("is shorter than %d characters" % min_length)
    lowered = value.lower()
    if "<" in value or ">" in value or re.search(r"your|example|placeholder|replace|changeme|xxxx|\.\.\.", lowered):
        problems.append("is a placeholder, not a real token")
    elif is_weak(re.sub(r"^(xox[a-z]|xapp)-", "", lowered), extra_words):
        problems.append("is a known default or weak value, or is built from one")
    return problems + _unsafe_problem(value, allow_unsafe)


def generate_secret(length: int = 32, symbols: str = SAFE_SYMBOLS) -> str:
    """A random secret of ``length`` characters with at least one upper-case letter,
    lower-case letter, digit and symbol (from ``symbols``), starting with a letter or
    digit, drawn with the ``secrets`` module; always passes ``check_secret``
    for ``min_length <= length``."""
    if not isinstance(length, int) or isinstance(length, bool) or length < 8:
        raise ValueError("length must be an integer of at least 8")
    if not symbols or any(c.isalnum() or c.isspace() or ord(c) < 33 or ord(c) > 126 for c in symbols):
        raise ValueError("symbols must be a non-empty set of printable ASCII punctuation")
    classes = (string.ascii_uppercase, string.ascii_lowercase, string.digits, symbols)
    alphabet = "".join(classes)
    rng = secrets.SystemRandom()
    for _attempt in range(100):
        chars = [secrets.choice(cls) for cls in classes]
        chars += [secrets.choice(alphabet) for dummy in range(length - len(chars))]
        rng.shuffle(chars)
        first = next(i for i, c in enumerate(chars) if c.isalnum())
        chars[0], chars[first] = chars[first], chars[0]
        value = "".join(chars)
        if not check_secret(value, min_length=min(length, 16), allow_unsafe=True):
            return value
    raise RuntimeError("could not generate a secret that passes the policy")  # pragma: no cover


def find_reused(values):
    """Group the NAMES of secrets that share a value: ``[["A", "B"], ...]`` (sorted).

    Empty and missing values are ignored.  The values themselves are never returned.
    """
    by_value = {}
    for name, value in (values or {}).items():
        if value is None or value == "":
            continue
        by_value.setdefault(str(value), []).append(str(name))
    return sorted(sorted(names) for names in by_value.values() if len(names) > 1)
