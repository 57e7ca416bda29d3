# -*- coding: utf-8 -*-
# Copyright: (c) 2025, Proxmox AI hardening maintainers
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Which API keys the service refuses to start with: missing, default/placeholder, short, weak or low-entropy keys.

The rules are the collection's secret policy (``_secret_policy.py`` next to this
file, copied unchanged from ``plugins/module_utils/`` by the role): an API key
is a random token (``openssl rand -hex 32``), so ``check_token`` applies - no
character-class rules, but a minimum length, no placeholder, no weak value -
plus an entropy floor.
"""

from __future__ import annotations

import math
import re

from ._secret_policy import check_token

# Placeholders seen in guides, .env examples and defaults (compared case-insensitively, separators removed).
PLACEHOLDERS = frozenset((
    "changeme", "change_me", "default", "secret", "password", "apikey", "api_key", "admin", "test", "example",
    "none", "null", "xxx", "todo", "fixme", "generatestrongrandomkey", "generate-strong-random-key",
    "yourapikey", "your-api-key", "replaceme", "insecure", "letmein", "proxmox", "proxmoxai",
))
_NORMALISE = re.compile(r"[\s_\-<>.]+")


def _entropy_bits(key: str) -> float:
    counts = {}
    for char in key:
        counts[char] = counts.get(char, 0) + 1
    length = len(key)
    per_char = -sum(c / length * math.log2(c / length) for c in counts.values())
    return per_char * length


def key_problem(key, min_length: int = 32):
    """None if ``key`` is acceptable, otherwise why it is refused (never includes the key)."""
    if key is None or not str(key).strip():
        return "no API key is configured"
    key = str(key).strip()
    flat = _NORMALISE.sub("", key.lower())
    if flat in {_NORMALISE.sub("", p) for p in PLACEHOLDERS} or "changeme" in flat:
        return "the API key is a default or placeholder value"
    problems = check_token(key, min_length=int(min_length))
    if not problems and (len(set(key)) < 8 or _entropy_bits(key) < 96):
        problems = ["is not random enough (use e.g. `openssl rand -hex 32`)"]
    return "the API key " + "; ".join(problems) if problems else None
