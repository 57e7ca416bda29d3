# -*- coding: utf-8 -*-
# Copyright: Proxmox AI hardening maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Shared code of the proxmox_ai.hardening.pve_* modules (private).

One place for the connection options, the proxmoxer client, the translation
of API and transport errors into messages an operator can act on, the
encoding rules of the PVE API (booleans are "0"/"1", lists are comma
strings) and the identifier and ACL path rules of Proxmox VE.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import re
import traceback

from ansible.module_utils.basic import env_fallback, missing_required_lib

REQUESTS_IMP_ERR = None
try:
    import requests
    HAS_REQUESTS = True
except ImportError:
    HAS_REQUESTS = False
    REQUESTS_IMP_ERR = traceback.format_exc()

PROXMOXER_IMP_ERR = None
try:
    from proxmoxer import ProxmoxAPI
    from proxmoxer.core import AuthenticationError, ResourceException
    HAS_PROXMOXER = True
except ImportError:
    HAS_PROXMOXER = False
    PROXMOXER_IMP_ERR = traceback.format_exc()

# Identifier rules of Proxmox VE (pve-access-control).
ROLEID_RE = re.compile(r'^[A-Za-z0-9.\-_]+$')
USERID_RE = re.compile(r'^[^\s:/]+@[A-Za-z][A-Za-z0-9.\-_]+$')
TOKEN_NAME_RE = re.compile(r'^[A-Za-z][A-Za-z0-9.\-_]+$')
GROUPID_RE = re.compile(r'^[A-Za-z0-9.\-_]+$')
USERID_MAX_LENGTH = 64

# Roles shipped with Proxmox VE. They cannot be changed or deleted, and the
# server refuses to create a role whose name starts with "PVE".
BUILTIN_ROLES = frozenset(('Administrator', 'NoAccess'))

# ACL paths Proxmox VE accepts (PVE::AccessControl::check_path).
_SEG = r'[A-Za-z0-9.\-_]+'
ACL_PATH_RE = re.compile(
    r'^(?:/'
    r'|/access|/access/groups|/access/groups/{s}|/access/realm|/access/realm/{s}'
    r'|/cluster|/cluster/ha|/cluster/ha/groups|/cluster/ha/groups/{s}'
    r'|/cluster/ha/resources|/cluster/ha/resources/{s}'
    r'|/mapping|/mapping/{s}|/mapping/{s}/{s}'
    r'|/nodes|/nodes/{s}'
    r'|/pool|/pool/{s}(?:/{s})*'
    r'|/sdn|/sdn/controllers|/sdn/controllers/[A-Za-z0-9_\-]+'
    r'|/sdn/dns|/sdn/dns/[A-Za-z0-9]+|/sdn/ipams|/sdn/ipams/[A-Za-z0-9]+'
    r'|/sdn/zones|/sdn/zones/{s}|/sdn/zones/{s}/{s}|/sdn/zones/{s}/{s}/[1-9][0-9]{{0,3}}'
    r'|/storage|/storage/{s}'
    r'|/vms|/vms/[1-9][0-9]{{2,}}'
    r')$'.format(s=_SEG)
)

ENV_HOST = 'PROXMOX_HOST'

# What a failing request can raise besides proxmoxer's ResourceException.
if HAS_REQUESTS:
    _TRANSPORT_ERRORS = (requests.exceptions.RequestException, OSError, ValueError, KeyError)
else:
    _TRANSPORT_ERRORS = (OSError, ValueError, KeyError)


def pve_common_argument_spec():
    """Connection options shared by every pve_* module (documented in doc_fragments/pve.py)."""
    return dict(
        api_host=dict(type='str', required=True, fallback=(env_fallback, [ENV_HOST])),
        api_port=dict(type='int', default=8006, fallback=(env_fallback, ['PROXMOX_PORT'])),
        api_user=dict(type='str', fallback=(env_fallback, ['PROXMOX_USER'])),
        api_token_id=dict(type='str', no_log=False, fallback=(env_fallback, ['PROXMOX_TOKEN_ID'])),
        api_token_secret=dict(type='str', no_log=True, fallback=(env_fallback, ['PROXMOX_TOKEN_SECRET'])),
        api_password=dict(type='str', no_log=True, fallback=(env_fallback, ['PROXMOX_PASSWORD'])),
        validate_certs=dict(type='bool', default=True, fallback=(env_fallback, ['PROXMOX_VALIDATE_CERTS'])),
        ca_path=dict(type='path', fallback=(env_fallback, ['PROXMOX_CA_PATH'])),
        timeout=dict(type='int', default=30),
    )


class PveApiError(Exception):
    """An API call or the connection failed; ``str()`` is the operator-facing message."""

    def __init__(self, msg, status=None, reason=None, errors=None):
        super(PveApiError, self).__init__(msg)
        self.msg = msg
        self.status = status
        self.reason = reason
        self.errors = errors or {}


def to_bool_param(value):
    """The API accepts exactly "0" or "1" for booleans."""
    return '1' if value else '0'


def from_api_bool(value, default):
    """Booleans come back as 0/1 (sometimes strings); a missing value means the documented default."""
    if value is None or value == '':
        return default
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        return value.strip().lower() not in ('0', 'false', 'no', 'off')
    return bool(int(value))


def split_list(values):
    """Flatten a list whose items may themselves be comma/space separated; keep order, drop duplicates."""
    out = []
    for value in values or []:
        for part in re.split(r'[,;\s]+', str(value)):
            if part and part not in out:
                out.append(part)
    return out


def normalize_acl_path(path):
    """The same normalisation the server applies: one leading slash, no doubled or trailing slashes."""
    path = re.sub(r'/+', '/', '/' + (path or '').strip())
    if len(path) > 1:
        path = path.rstrip('/')
    return path or '/'


def acl_path_error(path):
    """None when Proxmox VE accepts ``path`` (already normalised) as ACL path, else a message."""
    if ACL_PATH_RE.match(path):
        return None
    return ("invalid ACL path '%s': Proxmox VE accepts /, /access[/groups/<group>|/realm/<realm>], /nodes[/<node>], "
            "/vms[/<vmid>] (vmid >= 100), /storage[/<storage>], /pool[/<pool>], /sdn/..., /mapping/... and /cluster/ha/..."
            % path)


def parse_token_id(token_id):
    """Split ``user@realm!name`` into (userid, name); raise ValueError with a clear message when malformed."""
    if token_id.count('!') != 1:
        raise ValueError("malformed API token id '%s': expected 'user@realm!tokenname', e.g. 'proxmox-ai@pam!monitoring'"
                         % token_id)
    userid, name = token_id.split('!')
    check_userid(userid, what="user part of token id '%s'" % token_id)
    check_token_name(name, what="token name in '%s'" % token_id)
    return userid, name


def check_userid(userid, what='user id'):
    if not USERID_RE.match(userid or '') or len(userid) > USERID_MAX_LENGTH:
        raise ValueError("malformed %s '%s': expected 'name@realm' (e.g. 'proxmox-ai@pam'), at most %d characters, "
                         "no whitespace, ':' or '/'" % (what, userid, USERID_MAX_LENGTH))


def check_token_name(name, what='token name'):
    if not TOKEN_NAME_RE.match(name or ''):
        raise ValueError("malformed %s '%s': it must start with a letter, be at least 2 characters long and contain "
                         "only letters, digits, '.', '-' and '_'" % (what, name))


def _errno_reason(text):
    """The useful tail of a requests/urllib3 connection error."""
    match = re.search(r'\[Errno -?\d+\][^\'")]*', text)
    if match:
        return match.group(0).strip()
    match = re.search(r'(certificate verify failed[^\'")]*|Read timed out[^\'")]*|timed out)', text)
    if match:
        return match.group(0).strip()
    return text


class PveClient(object):
    """proxmoxer client for one module run: connection, request counting, error translation."""

    def __init__(self, module):
        self.module = module
        self.calls = []
        self._api = None
        params = module.params
        self.host = params['api_host']
        self.port = params['api_port']
        self.timeout = params['timeout']
        self.base_url = 'https://%s:%s/api2/json' % (
            '[%s]' % self.host if ':' in self.host and not self.host.startswith('[') else self.host, self.port)
        self.identity = None

    # -- connection -------------------------------------------------------
    def _verify(self):
        params = self.module.params
        if not params['validate_certs']:
            return False
        ca_path = params.get('ca_path')
        if ca_path:
            if not os.path.isfile(ca_path):
                raise PveApiError("ca_path '%s' does not exist or is not a file on the host that runs the module" % ca_path)
            return ca_path
        return True

    def _auth_kwargs(self):
        params = self.module.params
        token_id = params.get('api_token_id')
        if token_id:
            if '!' in token_id:
                try:
                    user, name = parse_token_id(token_id)
                except ValueError as exc:
                    raise PveApiError('api_token_id: %s' % exc)
            else:
                user, name = params.get('api_user'), token_id
                if not user:
                    raise PveApiError("api_token_id '%s' is a bare token name: give the full id 'user@realm!%s' or set "
                                      "api_user (PROXMOX_USER)" % (token_id, token_id))
            if not params.get('api_token_secret'):
                raise PveApiError("api_token_id is set but api_token_secret (PROXMOX_TOKEN_SECRET) is missing")
            self.identity = 'API token %s!%s' % (user, name)
            return dict(user=user, token_name=name, token_value=params['api_token_secret'])
        if params.get('api_password'):
            if not params.get('api_user'):
                raise PveApiError('api_password is set but api_user (PROXMOX_USER) is missing')
            self.identity = 'user %s' % params['api_user']
            return dict(user=params['api_user'], password=params['api_password'])
        raise PveApiError('no credentials: set api_token_id and api_token_secret (preferred; PROXMOX_TOKEN_ID, '
                          'PROXMOX_TOKEN_SECRET) or api_user and api_password (PROXMOX_USER, PROXMOX_PASSWORD)')

    def connect(self):
        if self._api is not None:
            return self._api
        kwargs = self._auth_kwargs()
        verify = self._verify()
        try:
            self._api = ProxmoxAPI(self.host, backend='https', service='PVE', port=self.port,
                                   verify_ssl=verify, timeout=self.timeout, **kwargs)
        except AuthenticationError as exc:
            status = re.search(r'code: (\d+)', str(exc))
            raise PveApiError('password authentication of %s at %s failed (HTTP %s): check api_user and api_password'
                              % (self.identity, self.base_url, status.group(1) if status else '?'),
                              status=int(status.group(1)) if status else None)
        except _TRANSPORT_ERRORS as exc:
            raise self._transport_error(exc, 'POST', '/access/ticket')
        return self._api

    # -- requests ---------------------------------------------------------
    # The API path is the positional ``endpoint``: ``path`` is a common API parameter (ACLs, permissions).
    def get(self, endpoint, **params):
        return self.request('GET', endpoint, **params)

    def post(self, endpoint, **params):
        return self.request('POST', endpoint, **params)

    def put(self, endpoint, **params):
        return self.request('PUT', endpoint, **params)

    def delete(self, endpoint, **params):
        return self.request('DELETE', endpoint, **params)

    def request(self, method, endpoint, **params):
        """One API call; ``endpoint`` is below /api2/json, e.g. ``/access/roles``. Raises PveApiError."""
        api = self.connect()
        data = {}
        for key, value in params.items():
            if value is None:
                continue
            if isinstance(value, bool):
                value = to_bool_param(value)
            data[key] = value
        self.calls.append('%s %s' % (method, endpoint))
        resource = api(endpoint.strip('/')) if endpoint.strip('/') else api
        try:
            return getattr(resource, method.lower())(**data)
        except ResourceException as exc:
            raise self._api_error(exc, method, endpoint)
        except _TRANSPORT_ERRORS as exc:
            raise self._transport_error(exc, method, endpoint)

    # -- error translation ------------------------------------------------
    def _api_error(self, exc, method, path):
        status = exc.status_code
        reason = (exc.content or '').strip()
        errors = exc.errors if isinstance(exc.errors, dict) else {}
        errors = dict((k, v) for k, v in errors.items() if isinstance(v, str) and v)
        call = '%s %s' % (method, path)
        if status == 401:
            msg = ("authentication to the Proxmox VE API at %s failed (401 %s) for %s: check api_token_id and "
                   "api_token_secret (or api_user and api_password)" % (self.base_url, reason, self.identity))
        elif status == 403:
            missing = re.search(r'\(([^,()]+),\s*([^()]+)\)', reason)
            if missing:
                acl_path, privilege = missing.group(1).strip(), missing.group(2).strip()
                msg = ("permission denied (403 %s): %s lacks the privilege %s on %s needed for %s; grant it with an ACL "
                       "or use a more privileged API user/token" % (reason, self.identity, privilege, acl_path, call))
            else:
                msg = 'permission denied (403 %s): %s may not %s' % (reason, self.identity, call)
        elif status == 400:
            detail = '; '.join('%s: %s' % (k, str(v).strip()) for k, v in sorted(errors.items()))
            msg = 'the API rejected the parameters of %s (400 %s)%s' % (call, reason, ': ' + detail if detail else '')
        elif status == 501:
            msg = '%s is not implemented by this server (501 %s)' % (call, reason)
        else:
            msg = '%s failed (%s %s)' % (call, status, reason)
        return PveApiError(msg, status=status, reason=reason, errors=errors)

    def _transport_error(self, exc, method, path):
        if isinstance(exc, PveApiError):
            return exc
        text = str(exc)
        if HAS_REQUESTS and isinstance(exc, requests.exceptions.SSLError):
            if 'CERTIFICATE_VERIFY_FAILED' in text or 'certificate verify failed' in text:
                ca_path = self.module.params.get('ca_path')
                msg = ('TLS certificate verification failed for %s (%s): the certificate is not signed by %s. Set ca_path '
                       '(PROXMOX_CA_PATH) to the CA that signed the Proxmox VE certificate (e.g. a copy of '
                       '/etc/pve/pve-root-ca.pem); use validate_certs=false only on a trusted lab network'
                       % (self.base_url, _errno_reason(text),
                          "the CA in ca_path '%s'" % ca_path if ca_path else 'a CA of the system trust store'))
            else:
                msg = 'TLS handshake with %s failed: %s' % (self.base_url, _errno_reason(text))
        elif HAS_REQUESTS and isinstance(exc, requests.exceptions.ConnectTimeout):
            msg = 'cannot reach the Proxmox VE API at %s: no connection within %ss' % (self.base_url, self.timeout)
        elif HAS_REQUESTS and isinstance(exc, requests.exceptions.Timeout):
            msg = 'the Proxmox VE API at %s did not answer %s %s within %ss' % (self.base_url, method, path, self.timeout)
        elif HAS_REQUESTS and isinstance(exc, requests.exceptions.ConnectionError):
            msg = ('cannot reach the Proxmox VE API at %s: %s; check api_host/api_port and that pveproxy listens there'
                   % (self.base_url, _errno_reason(text)))
        else:
            msg = '%s %s at %s failed: %s: %s' % (method, path, self.base_url, type(exc).__name__, text)
        return PveApiError(msg)


def pve_module_init(module):
    """Fail early when a Python dependency is missing; return a PveClient."""
    if not HAS_PROXMOXER:
        module.fail_json(msg=missing_required_lib('proxmoxer'), exception=PROXMOXER_IMP_ERR)
    if not HAS_REQUESTS:
        module.fail_json(msg=missing_required_lib('requests'), exception=REQUESTS_IMP_ERR)
    return PveClient(module)


def pve_fail(module, client, error, **result):
    """Report a PveApiError (or a message) with the calls made so far."""
    result.setdefault('changed', False)
    if isinstance(error, PveApiError):
        if error.status is not None:
            result['status'] = error.status
        if error.errors:
            result['errors'] = error.errors
        msg = error.msg
    else:
        msg = str(error)
    module.fail_json(msg=msg, api_calls=list(client.calls) if client else [], **result)
