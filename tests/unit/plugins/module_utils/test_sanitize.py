"""Property and example tests for plugins/module_utils/_sanitize.py.

The properties:
- for generated secrets in every supported shape, embedded in ordinary log
  text, neither the secret nor its encoded form survives sanitize_log;
- ordinary text (including "passwords are rotated", "token bucket", paths of
  *_FILE secrets, e-mail addresses, URLs without credentials) is left intact;
- sanitize_log is idempotent and never raises, whatever the input.
"""
from __future__ import annotations

import base64
import json
import re
import time
import urllib.parse

import pytest
import yaml
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st

from ansible_collections.proxmox_ai.hardening.plugins.module_utils import _sanitize
from ansible_collections.proxmox_ai.hardening.plugins.module_utils._sanitize import (
    MASK,
    is_secret_key,
    sanitize_log,
    sanitize_obj,
)

SETTINGS = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# --- strategies --------------------------------------------------------------

PRINTABLE = "".join(chr(c) for c in range(33, 127))
HEX = "0123456789abcdef"
ALNUM = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
B64 = ALNUM + "+/"

SECRET_KEYS = [
    "password", "Password", "passwd", "db_password", "POSTGRES_PASSWORD", "N8N_BASIC_AUTH_PASSWORD",
    "PROXMOX_PASSWORD", "LXC_DEFAULT_PASSWORD", "PGPASSWORD", "token", "api_key", "apiKey", "API_KEY",
    "X-API-Key", "secret", "client_secret", "token_value", "CSRFPreventionToken", "access_token",
    "auth_token", "TWILIO_AUTH_TOKEN", "SLACK_BOT_TOKEN", "smtp_pass", "private_key", "credentials",
    "APP_SECRET", "passphrase", "spring.datasource.password",
]

# Secrets that can stand unquoted after "key=": no whitespace, no quotes.
bare_secret = st.text(alphabet=PRINTABLE.replace('"', "").replace("'", ""), min_size=8, max_size=40)
# Anything printable on one line (quoted and encoded shapes).
any_secret = st.text(
    alphabet=st.characters(min_codepoint=32, max_codepoint=0x2FFF, blacklist_categories=("Cs", "Cc")),
    min_size=8, max_size=40,
).filter(lambda s: s.strip() == s and len(set(s)) > 3)


def hexs(size):
    return st.text(alphabet=HEX, min_size=size, max_size=size)


def b64s(low, high):
    return st.text(alphabet=B64, min_size=low, max_size=high)


WORDS = [
    "INFO", "WARNING", "poll", "node", "pve-node-01", "finished", "in", "0.42s", "guests=312", "user=bob",
    "status=200", "GET", "/api2/json/cluster/resources", "vmid=100", "the", "backup", "completed",
    "passwords are rotated every 90 days", "token bucket refilled", "secret santa", "api keys",
    "tokens expired", "Basic authentication failed", "Bearer token missing", "password reset link sent",
    "POSTGRES_PASSWORD_FILE=/run/secrets/postgres_password", "https://example.com/path?page=2&sort=name",
    "alice@example.com", "12:30:45", "2024-05-01T10:00:00Z", "proxmox-ai@pam!monitoring", "token_name=monitoring",
    "token_id: monitoring", "secrets:", "- postgres_password", "passwordless sudo", "keypass", "bypass=1",
    "compass", "ssh://git@github.com/org/repo.git", "postgresql://app@db:5432/prod", "ACL", "xoxb", "PVE:",
    "Authorization", "header", "[1/3]", "(retry)", "secret_file=/etc/x", "password_file: /run/secrets/x",
    "token_type=bearer", "max_tokens=100", "PVEAuthCookie", "no_log=true", "sslmode=verify-full",
]
word = st.sampled_from(WORDS) | st.from_regex(r"[a-z]{1,12}|[0-9]{1,6}|[A-Z][a-z]{2,8}[.,:;]?", fullmatch=True)
ordinary_line = st.lists(word, min_size=1, max_size=12).map(" ".join)
ordinary_text = st.lists(ordinary_line, min_size=1, max_size=5).map("\n".join)
sep = st.sampled_from(["=", ": ", " = ", "=>", ":", "= "])


@st.composite
def embedded(draw, shape):
    """(text, [forms that must not survive]) for one secret in the given shape."""
    secret, line, forms = draw(shape)
    prefix = draw(ordinary_line)
    suffix = draw(ordinary_line)
    joiner = draw(st.sampled_from([" ", "\n", " | ", "\t"]))
    text = prefix + joiner + line + draw(st.sampled_from([" ", "\n"])) + suffix
    forms = [f for f in forms if f]
    assume(all(MASK not in f for f in forms))
    # The secret must not also be ordinary text around it (e.g. "password" as a secret).
    assume(all(f not in prefix + joiner and f not in suffix for f in forms))
    assume(all(f not in (prefix + " " + suffix) for f in forms))
    # ... nor part of the line's own text (a secret "password" after the key "password").
    assume(all(text.count(f) <= 1 for f in forms))
    return text, forms


def shape(fn):
    return st.composite(fn)()


@shape
def kv_bare(draw):
    secret = draw(bare_secret)
    key = draw(st.sampled_from(SECRET_KEYS))
    return secret, key + draw(sep) + secret, [secret]


@shape
def kv_double_quoted(draw):
    secret = draw(any_secret)
    key = draw(st.sampled_from(SECRET_KEYS))
    encoded = json.dumps(secret, ensure_ascii=draw(st.booleans()))
    return secret, '"%s": %s' % (key, encoded), [secret, encoded[1:-1]]


@shape
def json_document(draw):
    secret = draw(any_secret)
    key = draw(st.sampled_from(SECRET_KEYS))
    doc = {"node": "pve1", key: secret, "status": "ok"}
    indent = draw(st.sampled_from([None, 2, 4]))
    encoded = json.dumps(secret)[1:-1]
    return secret, json.dumps(doc, indent=indent), [secret, encoded]


@shape
def escaped_json(draw):
    # A JSON document embedded as a string in another JSON document (ansible -vvv stdout).
    secret = draw(st.text(alphabet=ALNUM + "-_.=!%^~", min_size=8, max_size=30))
    key = draw(st.sampled_from(SECRET_KEYS))
    inner = json.dumps({key: secret})
    return secret, json.dumps({"stdout": inner}), [secret]


@shape
def python_repr(draw):
    secret = draw(any_secret)
    key = draw(st.sampled_from(SECRET_KEYS))
    return secret, repr({key: secret, "user": "app"}), [secret, repr(secret)[1:-1]]


@shape
def yaml_document(draw):
    secret = draw(any_secret)
    key = draw(st.sampled_from(SECRET_KEYS))
    style = draw(st.sampled_from([None, '"', "'", "|"]))
    doc = yaml.safe_dump({"services": {"db": {"environment": {key: secret}}}}, width=10 ** 6,
                         default_style=style, allow_unicode=True)
    if style == "|":
        doc = "app:\n  %s: |\n    %s\n    second line\n  other: x\n" % (key, secret)
    forms = [secret]
    if style in ('"', "'"):
        inner = yaml.safe_dump(secret, default_style=style, width=10 ** 6, allow_unicode=True).strip()
        inner = inner.split("\n")[0].strip()[1:-1]
        forms.append(inner)
    return secret, doc, forms


@shape
def env_line(draw):
    secret = draw(any_secret)
    key = draw(st.sampled_from([k for k in SECRET_KEYS if re.fullmatch(r"[A-Z0-9_]+", k)]))
    lead = draw(st.sampled_from(["", "export ", "  - ", "    "]))
    return secret, lead + key + "=" + secret, [secret]


@shape
def libpq_dsn(draw):
    secret = draw(any_secret)
    quoted = "'" + secret.replace("\\", "\\\\").replace("'", "\\'") + "'"
    return secret, "host=db port=5432 user=app password=%s dbname=prod sslmode=require" % quoted, [secret]


@shape
def url_userinfo(draw):
    secret = draw(any_secret)
    scheme = draw(st.sampled_from(["postgresql", "postgres", "https", "http", "redis", "amqp", "mysql"]))
    encoded = urllib.parse.quote(secret, safe="")
    user = draw(st.sampled_from(["app", "proxmox_user", "", "AC" + "0" * 32]))
    url = "%s://%s:%s@db.example.com:5432/prod?sslmode=require" % (scheme, user, encoded)
    return secret, url, [secret, encoded]


@shape
def query_param(draw):
    secret = draw(any_secret)
    key = draw(st.sampled_from(["password", "token", "api_key", "access_token", "client_secret"]))
    encoded = urllib.parse.quote(secret, safe="")
    return secret, "GET /api/v1?page=2&%s=%s&sort=name HTTP/1.1" % (key, encoded), [secret, encoded]


@shape
def pve_api_token(draw):
    uuid = "-".join(draw(hexs(n)) for n in (8, 4, 4, 4, 12))
    form = draw(st.sampled_from([
        "Authorization: PVEAPIToken=proxmox-ai@pam!monitoring=%s",
        "'Authorization': 'PVEAPIToken=root@pam!admin=%s'",
        "PVEAPIToken=proxmox-ai@pve!mon-1=%s",
        "token proxmox-ai@pam!monitoring=%s",
        "PROXMOX_TOKEN=proxmox-ai@pam!monitoring=%s",
    ]))
    return uuid, form % uuid, [uuid]


@shape
def pve_ticket(draw):
    sig = draw(b64s(40, 120))
    ticket = "PVE:root@pam:%s::%s" % (draw(hexs(8)).upper(), sig)
    form = draw(st.sampled_from([
        "Cookie: PVEAuthCookie=%s; path=/",
        '{"data": {"ticket": "%s", "username": "root@pam"}}',
        "PVEAuthCookie=%s",
        "url-encoded cookie PVEAuthCookie=%s",
    ]))
    if "url-encoded" in form:
        ticket = urllib.parse.quote(ticket, safe="")
    return sig, form % ticket, [sig, urllib.parse.quote(sig, safe="")]


@shape
def csrf_token(draw):
    value = "%s:%s" % (draw(hexs(8)).upper(), draw(b64s(20, 43)))
    form = draw(st.sampled_from(["CSRFPreventionToken: %s", '"CSRFPreventionToken":"%s"']))
    return value, form % value, [value, value.split(":", 1)[1]]


@shape
def slack_token(draw):
    prefix = draw(st.sampled_from(["xoxb", "xoxp", "xapp", "xoxa", "xoxe.xoxp"]))
    body = "%s-%s-%s" % (draw(st.from_regex(r"[0-9]{10,13}", fullmatch=True)),
                         draw(st.from_regex(r"[0-9A-Z]{10,13}", fullmatch=True)), draw(st.text(ALNUM, min_size=24, max_size=32)))
    token = prefix + "-" + body
    form = draw(st.sampled_from(["slack client using %s", "SLACK_BOT_TOKEN=%s", "headers={'token': '%s'}",
                                 "chat.postMessage(%s)"]))
    return token, form % token, [token, body]


@shape
def twilio(draw):
    sid = "AC" + draw(hexs(32))
    token = draw(hexs(32))
    assume(token not in sid)
    form = draw(st.sampled_from([
        "https://%s:%s@api.twilio.com/2010-04-01/Accounts",
        "curl -u %s:%s https://api.twilio.com",
        "TWILIO_ACCOUNT_SID=%s TWILIO_AUTH_TOKEN=%s",
        '{"account_sid": "%s", "auth_token": "%s"}',
    ]))
    return token, form % (sid, token), [token]


@shape
def bearer(draw):
    token = "%s.%s.%s" % (draw(b64s(10, 30)), draw(b64s(10, 60)), draw(b64s(10, 43)))
    token = token.replace("+", "-").replace("/", "_")
    form = draw(st.sampled_from(["Authorization: Bearer %s", "using Bearer %s for the call",
                                 '-H "Authorization: Bearer %s"', "Proxy-Authorization: Basic %s"]))
    return token, form % token, [token]


@shape
def basic_auth(draw):
    user_pass = "admin:" + draw(bare_secret)
    encoded = base64.b64encode(user_pass.encode()).decode()
    return encoded, "Authorization: Basic %s" % encoded, [encoded]


@shape
def api_key_header(draw):
    key = draw(st.text(alphabet=ALNUM + "-_", min_size=16, max_size=64))
    form = draw(st.sampled_from(["X-API-Key: %s", "curl -H 'X-API-Key: %s' http://127.0.0.1:8000/nodes",
                                 "x-api-key=%s"]))
    return key, form % key, [key]


@shape
def sql_password(draw):
    secret = draw(any_secret)
    quoted = "'" + secret.replace("'", "''") + "'"
    kw = draw(st.sampled_from(["PASSWORD", "ENCRYPTED PASSWORD", "password"]))
    return secret, "ALTER ROLE app WITH LOGIN %s %s VALID UNTIL 'infinity';" % (kw, quoted), [secret]


@shape
def cli_flag(draw):
    secret = draw(bare_secret.filter(lambda s: not s.startswith("-")))
    flag = draw(st.sampled_from(["--password", "--token", "--api-key", "--db-password"]))
    return secret, "mytool %s %s --verbose" % (flag, secret), [secret]


@shape
def pem_key(draw):
    body = "\n".join(draw(st.lists(st.text(B64, min_size=64, max_size=64), min_size=2, max_size=5)))
    kind = draw(st.sampled_from(["", "RSA ", "EC ", "OPENSSH ", "ENCRYPTED "]))
    pem = "-----BEGIN %sPRIVATE KEY-----\n%s\n-----END %sPRIVATE KEY-----" % (kind, body, kind)
    if draw(st.booleans()):
        pem = json.dumps({"private_key_content": pem})
        body = json.dumps(body)[1:-1]
    return body, pem, [body.split("\n")[0].split("\\n")[0]]


@shape
def xml_element(draw):
    secret = draw(st.text(alphabet=PRINTABLE.replace("<", "").replace("&", ""), min_size=8, max_size=30))
    tag = draw(st.sampled_from(["password", "apiKey", "token", "secret"]))
    return secret, "<config><%s>%s</%s></config>" % (tag, secret, tag), [secret]


SHAPES = {
    "kv_bare": kv_bare, "kv_double_quoted": kv_double_quoted, "json_document": json_document,
    "escaped_json": escaped_json, "python_repr": python_repr, "yaml_document": yaml_document,
    "env_line": env_line, "libpq_dsn": libpq_dsn, "url_userinfo": url_userinfo, "query_param": query_param,
    "pve_api_token": pve_api_token, "pve_ticket": pve_ticket, "csrf_token": csrf_token, "slack_token": slack_token,
    "twilio": twilio, "bearer": bearer, "basic_auth": basic_auth, "api_key_header": api_key_header,
    "sql_password": sql_password, "cli_flag": cli_flag, "pem_key": pem_key, "xml_element": xml_element,
}


# --- properties --------------------------------------------------------------

@pytest.mark.parametrize("name", sorted(SHAPES))
def test_secret_never_survives(name):
    @SETTINGS
    @given(embedded(SHAPES[name]))
    def check(case):
        text, forms = case
        out = sanitize_log(text)
        for form in forms:
            assert form not in out, "%s leaked in %r" % (name, out)
        assert MASK in out
        assert sanitize_log(out) == out

    check()


@SETTINGS
@given(ordinary_text)
@example("passwords are rotated every 90 days")
@example("token bucket refilled at 10/s")
@example("POSTGRES_PASSWORD_FILE: /run/secrets/postgres_password")
@example("secrets:\n  - postgres_password\n  - n8n_password")
@example("Basic authentication failed for alice@example.com")
@example("Bearer token missing in request")
def test_ordinary_text_is_left_intact(text):
    assert sanitize_log(text) == text


STRUCTURAL = "password=:\"' \n\t\\token@/xoxb-AC0123456789abcdef!?&#<>{}[],;PVE:%|-_API_KEYs"


@settings(max_examples=1500, deadline=None)
@given(st.text(alphabet=st.sampled_from(list(STRUCTURAL)) | st.characters(), max_size=120))
def test_idempotent_and_never_raises(text):
    once = sanitize_log(text)
    assert isinstance(once, str)
    assert sanitize_log(once) == once


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(["password=", "token: ", '"api_key": "', "xoxb-", "postgresql://u:", "@h/",
                                 "Authorization: Bearer ", "\n", " ", "'", '"', "PVEAuthCookie=PVE:", "abc",
                                 "-----BEGIN PRIVATE KEY-----", "  - SECRET_KEY=", "pass: |\n   x", "\\\""]),
                max_size=25).map("".join))
def test_idempotent_on_structured_noise(text):
    once = sanitize_log(text)
    assert sanitize_log(once) == once


NOISE_PIECES = ["password=", "token: ", '"api_key": "', "xoxb-", "postgresql://u:", "@h/", "Authorization: Bearer ",
                "\n", " ", "\t", "'", '"', "PVEAuthCookie=PVE:", "PVE:root@pam:65A1B2C3::", "abc", "x" * 20,
                "-----BEGIN PRIVATE KEY-----", "-----END PRIVATE KEY-----", "  - SECRET_KEY=", "export A_TOKEN=",
                "pass: |\n   x", "\\\"", "u@pam!t=", "AC" + "0" * 32 + ":", "?", "&", "<token>", "</token>",
                "--password ", "PASSWORD '", "Basic ", "hooks.slack.com/services/T1/B2/", "key", ",", ")"]


@settings(max_examples=1000, deadline=None)
@given(st.lists(st.sampled_from(NOISE_PIECES) | st.text(max_size=3), max_size=30).map("".join))
def test_word_skipping_matches_the_plain_scanner(text):
    """The str.find fast path must give exactly what the full left-to-right scan gives."""
    assert _sanitize._scrub(text) == _sanitize._SCANNER.sub(_sanitize._substitute, text)


# --- examples: exact output keeps the key name --------------------------------

@pytest.mark.parametrize("raw, expected", [
    ("password=hunter2 user=bob", "password=******** user=bob"),
    ('{"password": "a\\"b", "user": "x"}', '{"password": "********", "user": "x"}'),
    ("{'api_key': 'k1', 'n': 1}", "{'api_key': '********', 'n': 1}"),
    ("postgresql://app:s3cr3t@db:5432/prod", "postgresql://app:********@db:5432/prod"),
    ("Authorization: PVEAPIToken=proxmox-ai@pam!monitoring=0b7a2c3e-1111-2222-3333-444455556666",
     "Authorization: PVEAPIToken=proxmox-ai@pam!monitoring=********"),
    ("Cookie: PVEAuthCookie=PVE:root@pam:65A1B2C3::c2ln; lang=en", "Cookie: PVEAuthCookie=********; lang=en"),
    ("CSRFPreventionToken: 65A1B2C3:abc+/def", "CSRFPreventionToken: ********"),
    ("bot xoxb-1234-5678-abcdef", "bot xoxb-********"),
    ("https://AC0123456789abcdef0123456789abcdef:f00@api.twilio.com",
     "https://AC0123456789abcdef0123456789abcdef:********@api.twilio.com"),
    ("host=db password='a b\\'c' dbname=x", "host=db password='********' dbname=x"),
    ("X-API-Key: abc123", "X-API-Key: ********"),
    ("POSTGRES_PASSWORD=abc def", "POSTGRES_PASSWORD=********"),
    ("  - N8N_BASIC_AUTH_PASSWORD=x y", "  - N8N_BASIC_AUTH_PASSWORD=********"),
    ("token_value: 'uuid'", "token_value: '********'"),
    ("db:\n  password: two words # vault\n  user: app", "db:\n  password: ******** # vault\n  user: app"),
    ("key: |\npassword: |\n  line1\n  line2\nuser: app", "key: |\npassword: ********\nuser: app"),
    ("ALTER ROLE app PASSWORD 'x''y'", "ALTER ROLE app PASSWORD '********'"),
    ("f(password=abc), next", "f(password=********), next"),
    ("POSTGRES_PASSWORD_FILE=/run/secrets/postgres_password", "POSTGRES_PASSWORD_FILE=/run/secrets/postgres_password"),
])
def test_examples_keep_key_names(raw, expected):
    assert sanitize_log(raw) == expected


def test_non_string_input_never_raises():
    assert sanitize_log(b"password=abc") == "password=********"
    assert sanitize_log(None) == "None"
    assert sanitize_log(12) == "12"

    class Broken:
        def __str__(self):
            raise ValueError("boom")

    assert sanitize_log(Broken()) == MASK


def test_fast_on_large_and_pathological_input():
    line = "2024-05-01 INFO poll node=pve-node-01 guests=312 took=0.42s user=bob status=200 url=https://x/y?a=b\n"
    big = line * 20000  # ~2 MB
    start = time.perf_counter()
    assert sanitize_log(big) == big
    clean = time.perf_counter() - start
    nasty = "a" * 100000 + " " + "x." * 50000 + " " + "password" * 10000 + " " + "-" * 100000
    start = time.perf_counter()
    sanitize_log(nasty)
    patho = time.perf_counter() - start
    assert clean < 5.0, clean
    assert patho < 5.0, patho


# --- sanitize_obj ------------------------------------------------------------

def test_sanitize_obj_masks_secret_keys_and_walks_structures():
    data = {
        "password": "hunter2", "POSTGRES_PASSWORD": "x", "api_key": 12345, "Authorization": "Bearer abc",
        "ticket": "PVE:root@pam:65A1B2C3::sig", "n": None, "empty_password": "", "enabled": True,
        "POSTGRES_PASSWORD_FILE": "/run/secrets/postgres_password", "token_name": "monitoring",
        "nested": [{"client_secret": ["a", "b"]}, ("dsn=x", "postgresql://u:pw@h/db"), {"msg": "token=abc"}],
    }
    before = json.dumps(data, default=list, sort_keys=True)
    out = sanitize_obj(data)
    assert json.dumps(data, default=list, sort_keys=True) == before  # input untouched
    assert out["password"] == out["POSTGRES_PASSWORD"] == out["api_key"] == MASK
    assert out["Authorization"] == out["ticket"] == MASK
    assert out["n"] is None and out["empty_password"] == "" and out["enabled"] is True
    assert out["POSTGRES_PASSWORD_FILE"] == "/run/secrets/postgres_password"
    assert out["token_name"] == "monitoring"
    assert out["nested"][0]["client_secret"] == MASK
    assert out["nested"][1] == ("dsn=x", "postgresql://u:********@h/db")
    assert out["nested"][2]["msg"] == "token=********"


def test_sanitize_obj_survives_cycles_and_odd_values():
    cyc = {"a": []}
    cyc["a"].append(cyc)
    out = sanitize_obj(cyc)
    assert out["a"][0] == MASK
    assert sanitize_obj(3.5) == 3.5
    assert sanitize_obj({"passwords": ["kept"]}) == {"passwords": ["kept"]}
    assert sanitize_obj({1: "password=x"}) == {1: "password=********"}


@pytest.mark.parametrize("key, secret", [
    ("password", True), ("DB_PASSWORD", True), ("CSRFPreventionToken", True), ("X-API-Key", True),
    ("token_value", True), ("authorization", True), ("secret", True), ("passwords", False),
    ("token_name", False), ("POSTGRES_PASSWORD_FILE", False), ("tokenid", False), ("bypass", False), (3, False),
])
def test_is_secret_key(key, secret):
    assert is_secret_key(key) is secret
