# -*- coding: utf-8 -*-
# Copyright: (c) 2025, Proxmox AI hardening maintainers
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Secret scrubbing for log lines and data structures: the one implementation.

This file is used by the ``proxmox_ai.hardening.sanitize_log`` filter, by the
``action_log`` callback and, unchanged, by the Python collector that the
monitoring role installs.  Keep it standard-library only and compatible with
Python 3.8+ (ansible-core targets) and 3.9+ (the collector).

``sanitize_log(text)`` replaces the *value* of every secret it recognises with
``MASK`` and keeps the key, header or scheme in front of it, so that lines stay
readable::

    password=hunter2                       -> password=********
    {"api_key": "abc"}                     -> {"api_key": "********"}
    postgresql://app:s3cr3t@db/prod         -> postgresql://app:********@db/prod
    Authorization: PVEAPIToken=u@pam!mon=<uuid>
                                           -> Authorization: PVEAPIToken=u@pam!mon=********
    xoxb-123-456-abc                        -> xoxb-********

All patterns are compiled once, into a single left-to-right scanner (like
``re.sub``: the earliest match wins, then scanning resumes after it), so each
character is consumed by one rule only and ``sanitize_log(sanitize_log(x)) ==
sanitize_log(x)``.  Words without any trigger (``pass``, ``token``, ``key``,
``://...@``...) are skipped with ``str.find``, which makes clean text cost
almost nothing; the unit tests check that this gives exactly the output of the
plain scan.  The function never raises: on any unexpected error it returns a
fully masked string rather than the input.

Known limits: a secret with no recognisable key around it (a bare 32-hex
Twilio token, a password alone on a line) cannot be told from other text; an
unquoted value with spaces after ``key=`` in the middle of a line is masked up
to the first space (at line start, ``KEY=`` and ``key:`` lines are masked to
the end of the line).

``sanitize_obj(obj)`` walks dicts, lists and tuples: values under keys that
look secret (``password``, ``*_token``, ``api_key``, ``authorization``...)
are replaced by ``MASK``; every other string goes through ``sanitize_log``.
"""

from __future__ import annotations

import re

__all__ = ["MASK", "SECRET_KEY_RE", "is_secret_key", "sanitize_log", "sanitize_obj"]

MASK = "********"

# Names whose value is a secret, matched at the END of a key (case-insensitive):
# password, db_password, POSTGRES_PASSWORD, CSRFPreventionToken, X-API-Key,
# client_secret, token_value...  Keys ending in _file, _name, _id, _path and
# plurals (passwords, tokens, secrets) are not secret keys.
_KEYWORDS = (
    r"(?:password|passwd|passphrase|secret|token|token[_.-]?value|api[_-]?key|"
    r"access[_-]?key|private[_-]?key|signing[_-]?key|credentials?|[_.-]pass|[_.-]pwd)"
)
# Env-style names (upper case) whose assignment at line start is masked to the end of the line.
_ENV_KEYWORDS = (
    r"(?:PASSWORD|PASSWD|PASSPHRASE|SECRET|TOKEN|TOKEN_VALUE|API_KEY|APIKEY|ACCESS_KEY|PRIVATE_KEY|"
    r"SIGNING_KEY|CREDENTIALS?|_PASS|_PWD)"
)

# Value shapes after "key=" / "key: ".
_DQ = r'"(?:[^"\\\n]|\\.)*"'  # "double \" quoted"
_SQ = r"'(?:[^'\\\n]|\\.|'')*'(?!')"  # 'single \' or '' quoted' (Python repr, libpq, SQL)
_EDQ = r'\\"(?:[^"\\\n]|\\[^"\n])*\\"'  # \"escaped quotes\" inside an outer JSON string
_ESQ = r"\\'(?:[^'\\\n]|\\[^'\n])*\\'"
# Unquoted: up to whitespace or a quote; at most two trailing ,;)]} are left to the surrounding text
# ("f(password=x), next").
_BARE = r"""[^\s"']+?(?=[,;)\]}]{0,2}(?:[\s"']|$))"""
_OPEN = r"""["'][^\r\n]*"""  # a quote that never closes on its line: mask to the end of the line

# Every alternative that can span lines (PEM, YAML block scalars) must also match when the text
# is cut at the end of its first line: _scrub() searches one line first and only searches on
# when the match reaches the cut.
_SCANNER = re.compile(
    r"""
    # 1. PEM private keys (also when newlines are escaped inside JSON)
      (?P<pem_b>-----BEGIN\ (?:[A-Z0-9]+\ )*PRIVATE\ KEY-----)(?P<pem_v>(?s:.*?))
      (?P<pem_e>-----END\ (?:[A-Z0-9]+\ )*PRIVATE\ KEY-----|\Z)
    # 2. env-file / compose-list assignment at line start: mask to the end of the line
    | (?P<env_k>^[ \t]*(?:-[ \t]+)?(?:export[ \t]+)?(?-i:(?:[A-Z_][A-Z0-9_]*)?""" + _ENV_KEYWORDS + r""")[ \t]*=)
        (?P<env_v>[^\r\n]+)
    # 2b. YAML mapping / header line "key: value": a plain value runs to the end of the line (before
    #     a " #" comment); a block scalar (| or >) takes its more-indented lines with it
    | (?P<yml_k>^(?P<yml_i>[ \t]*)(?:-[ \t]+)?["']?[\w.-]*?""" + _KEYWORDS + r"""(?![\w-])["']?[ \t]*:[ \t]+)
        (?P<yml_v>[|>][-+0-9]*[ \t]*(?:\r?\n(?P=yml_i)[ \t]+[^\r\n]*)+|[|>][-+0-9]*[ \t]*\r?$
          |""" + _DQ + "|" + _SQ + r"""|[^\s"'#|>][^\r\n]*?(?=[ \t]+\#|[ \t]*$))
    # 3. URL userinfo: scheme://user:PASSWORD@host (password up to the last @ of the authority)
    | (?P<url_k>(?<![\w+.-])[a-z][a-z0-9+.-]*://[^\s/?#@:"'<>]*:)(?P<url_v>[^\s/?#"'<>]+)(?=@)
    # 4. Authorization / Proxy-Authorization headers, keeping the scheme and a PVE token id
    | (?P<auth_k>(?<![\w.-])(?:proxy-)?authorization["']?[ \t]*[:=][ \t]*["']?
        (?:(?:bearer|basic|token|digest|negotiate|apikey)[ \t]+
          |pveapitoken[ \t]*[= ][ \t]*[^\s=!"']+![^\s="']+[=:])?)(?P<auth_v>[^\s"']+)
    # 5. PVE API token anywhere: PVEAPIToken=user@realm!tokenid=SECRET, user@realm!tokenid=SECRET
    | (?P<pvet_k>(?<![\w.-])pveapitoken[ \t]*[= ][ \t]*[^\s=!"']+![^\s="']+[=:])(?P<pvet_v>[^\s"',;&]+)
    | (?P<tid_k>(?<![\w.@!-])[\w.-]+@[\w.-]+![\w.-]+=)(?P<tid_v>[^\s"',;&]+)
    # 6. PVE ticket cookie and bare PVE tickets (login response, URL-encoded cookies)
    | (?P<ck_k>(?<![\w.-])PVE(?:AuthCookie|__?CSRF[\w-]*)[ \t]*=[ \t]*)(?P<ck_v>[^\s;"',&]+)
    | (?P<tk_k>(?<![\w%])(?-i:PVE[A-Z]*)(?::|%3A)[^\s:%"']+(?::|%3A)[0-9A-Fa-f]{8}(?:::|%3A%3A))
        (?P<tk_v>[A-Za-z0-9+/=%]+)
    # 7. Slack tokens and incoming-webhook URLs
    | (?P<sl_k>(?<![\w-])(?:xox[abposre]|xapp|xoxe\.xox[bp])-)(?P<sl_v>[A-Za-z0-9-]+)
    | (?P<wh_k>hooks\.slack\.com/(?:services|workflows|triggers)/(?:[A-Za-z0-9]+/)+)
        (?P<wh_v>[A-Za-z0-9]+)(?![A-Za-z0-9/])
    # 8. Twilio Account SID / API key SID followed by its auth token or secret
    | (?P<tw_k>(?<![\w])(?-i:AC|SK)[0-9a-fA-F]{32}:)(?P<tw_v>[^\s@"'/,;&]+)
    # 9. query parameters: ?password=...&next (value stops at &)
    | (?P<q_k>(?<=[?&;])[\w.-]*?""" + _KEYWORDS + r"""=)(?P<q_v>[^&\s#"']+)
    # 10. command-line flags: --password VALUE, --api-key VALUE
    | (?P<cli_k>(?<![\w-])--[\w-]*(?:password|passwd|secret|token|api-key|apikey)[ \t]+)
        (?P<cli_v>(?!-)(?:""" + _DQ + "|" + _SQ + "|" + _BARE + r"""))
    # 11. SQL: [ENCRYPTED] PASSWORD 'value'
    | (?P<sql_k>(?<![\w.-])password[ \t]+)(?P<sql_v>E?""" + _SQ + "|" + _DQ + r""")
    # 12. XML elements: <password>value</password>
    | (?P<xml_k><(?P<xml_t>[\w:.-]*(?:password|passwd|secret|token|api_?key))>)
        (?P<xml_v>[^<\n]+)(?=</(?P=xml_t)>)
    # 13. key/value in any notation: password=, "password": , db_password: , X-API-Key: , PGPASSWORD=
    | (?P<kv_k>(?<![\w.-])[\w.-]*?""" + _KEYWORDS + r"""(?![\w-])(?:\\?["'])?[ \t]*(?:=>|[:=])[ \t]*)
        (?P<kv_v>""" + "|".join((_EDQ, _ESQ, _DQ, _SQ, _BARE, _OPEN)) + r""")
    # 14. a Bearer/Basic credential outside a header: 16+ characters and not a plain (hyphenated) word
    | (?P<br_k>(?<![\w-])(?-i:Bearer|Basic)[ \t]+)
        (?P<br_v>(?-i:(?![A-Za-z][a-z]*(?:[-_][a-z]+)*(?=[\s"',;)\]}]|$))(?!--)[\w+/-][\w.~+/-]{15,}=*))
        (?=[\s"',;)\]}]|$)
    """,
    re.IGNORECASE | re.MULTILINE | re.VERBOSE,
)


def _replace_value(value: str) -> str:
    """Mask a value, keeping its quoting so that JSON/YAML stay well-formed."""
    for quote in ('\\"', "\\'"):
        if len(value) >= 4 and value.startswith(quote) and value.endswith(quote):
            return quote + MASK + quote
    if value[:2] in ("E'", "e'") and value.endswith("'") and len(value) >= 3:
        return "'" + MASK + "'"
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
        return value[0] + MASK + value[0]
    if value[:1] in "\"'":
        return value[0] + MASK
    return MASK


def _substitute(match) -> str:
    rule = (match.lastgroup or "")[:-2]
    if rule == "pem":
        return match.group("pem_b") + "\n" + MASK + "\n" + match.group("pem_e")
    key = match.group(rule + "_k")
    if rule in ("kv", "cli", "sql", "yml"):
        return key + _replace_value(match.group(rule + "_v"))
    return key + MASK


# Every match of _SCANNER contains one of these needles in the whitespace-delimited word where
# it starts (or, for the line-start rules, in the first word of the line).  Text without them is
# skipped with str.find (memchr speed) instead of trying every alternative at every position.
# (needle, search the original text instead of the lowered one, confirming pattern)
_TRIGGERS = (
    ("pass", False, None), ("secret", False, None), ("token", False, None), ("key", False, None),
    ("credential", False, None), ("pwd", False, None), ("authoriz", False, None),
    ("pveauthcookie", False, None), ("pve_", False, None), ("xox", False, None), ("xapp", False, None),
    ("hooks.slack.com", False, None), ("bearer", False, None), ("basic", False, None),
    ("-----begin", False, None),
    ("://", False, re.compile(r"://[^\s/?#\"'<>]*@")),
    ("!", False, re.compile(r"![\w.-]+=")),
    ("PVE", True, re.compile(r"PVE[A-Z]*(?::|%3A)")),
    ("AC", True, re.compile(r"AC[0-9a-fA-F]{32}:")),
    ("SK", True, re.compile(r"SK[0-9a-fA-F]{32}:")),
)


_LINE_PREFIX = re.compile(r"[ \t]*(?:-[ \t]+)?(?:export[ \t]+)?")


def _find(hay: str, needle: str, confirm, start: int) -> int:
    idx = hay.find(needle, start)
    while idx >= 0 and confirm is not None and confirm.match(hay, idx) is None:
        idx = hay.find(needle, idx + 1)
    return idx


def _next_trigger(low: str, text: str, start: int, cache: list) -> int:
    best = -1
    for number, (needle, cased, confirm) in enumerate(_TRIGGERS):
        idx = cache[number]
        if idx != -1 and idx < start:
            idx = cache[number] = _find(text if cased else low, needle, confirm, start)
        if idx != -1 and (best == -1 or idx < best):
            best = idx
    return best


def _scrub(text: str) -> str:
    low = text.lower()
    if len(low) != len(text):  # a character changed length when lowered: indexes would not line up
        return _SCANNER.sub(_substitute, text)
    out = []
    emit = scan = 0
    size = len(text)
    cache = [-2] * len(_TRIGGERS)
    while True:
        trigger = _next_trigger(low, text, scan, cache)
        if trigger < 0:
            break
        line_start = max(text.rfind("\n", 0, trigger) + 1, emit)
        line_end = text.find("\n", trigger)
        if line_end < 0:
            line_end = size
        # Start at the word holding the trigger, or at the line start for "  - KEY=" / "export KEY=" lines.
        start = max(text.rfind(" ", line_start, trigger), text.rfind("\t", line_start, trigger),
                    text.rfind("\r", line_start, trigger), text.rfind("\f", line_start, trigger),
                    text.rfind("\v", line_start, trigger)) + 1
        if start <= line_start or _LINE_PREFIX.fullmatch(text, line_start, start) is not None:
            start = line_start
        match = _SCANNER.search(text, start, line_end)
        if match is not None and match.end() >= line_end and line_end < size:
            match = _SCANNER.search(text, start)  # may continue past the line (PEM, YAML block)
        if match is None or match.end() == match.start():
            scan = line_end + 1
            continue
        out.append(text[emit:match.start()])
        out.append(_substitute(match))
        emit = scan = match.end()
    out.append(text[emit:])
    return "".join(out)


def sanitize_log(text) -> str:
    """Return ``text`` with every recognised password, token and credential replaced by ``MASK``.

    Non-string input is converted with ``str()`` (bytes are decoded as UTF-8
    with replacement).  Never raises.
    """
    try:
        if isinstance(text, bytes):
            text = text.decode("utf-8", "replace")
        elif not isinstance(text, str):
            text = str(text)
        return _scrub(text)
    except Exception:  # pylint: disable=broad-except  # never let scrubbing break logging
        return MASK


# Dict keys whose whole value is secret (sanitize_obj).  Stricter than the text
# rules: a dict key is an explicit name, so "authorization", "cookie" and
# "ticket" qualify as well.
SECRET_KEY_RE = re.compile(
    r"^(?:[\w.-]*?" + _KEYWORDS + r"|(?:proxy-)?authorization|(?:set-)?cookie|ticket|pveauthcookie|dsn|"
    r"(?:database|db)[_-]?url)$",
    re.IGNORECASE,
)


def is_secret_key(key) -> bool:
    """True when a mapping key names a secret (``password``, ``POSTGRES_PASSWORD``, ``api_key``...)."""
    return isinstance(key, str) and SECRET_KEY_RE.match(key) is not None


def _walk(obj, depth: int, seen: set):
    if isinstance(obj, str):
        return sanitize_log(obj)
    if isinstance(obj, bytes):
        return sanitize_log(obj)
    if isinstance(obj, (dict, list, tuple, set, frozenset)):
        if id(obj) in seen or depth > 64:
            return MASK
        seen = seen | {id(obj)}
        if isinstance(obj, dict):
            result = {}
            for key, value in obj.items():
                if is_secret_key(key) and value not in (None, "", True, False) and not isinstance(value, (int, float)):
                    result[key] = MASK
                elif is_secret_key(key) and isinstance(value, (int, float)) and not isinstance(value, bool):
                    result[key] = MASK
                else:
                    result[key] = _walk(value, depth + 1, seen)
            return result
        items = [_walk(item, depth + 1, seen) for item in obj]
        if isinstance(obj, list):
            return items
        if isinstance(obj, tuple):
            return tuple(items)
        return items  # sets become lists: masked members may collide
    return obj


def sanitize_obj(obj):
    """Return a scrubbed copy of ``obj`` (dicts, lists, tuples, sets, strings; other values unchanged).

    Values under secret-looking keys become ``MASK`` (``None``, empty strings
    and booleans are kept so that "not set" stays visible); strings elsewhere
    go through :func:`sanitize_log`.  Never raises and never modifies ``obj``.
    """
    try:
        return _walk(obj, 0, set())
    except Exception:  # pylint: disable=broad-except
        return MASK
