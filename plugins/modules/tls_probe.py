#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: Proxmox AI hardening maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: tls_probe
short_description: Which TLS protocol versions a server accepts, and its certificate's validity
version_added: 0.1.0
description:
  - Makes one real TLS handshake per protocol version (TLSv1, TLSv1.1, TLSv1.2, TLSv1.3) against O(host):O(port),
    with the client pinned to that single version and every cipher allowed, and reports which versions the server
    accepted.
  - Reads the server's certificate (subject, issuer, validity, days left) and whether it verifies against the
    system trust store or O(ca_file) for O(server_name).
  - Read-only; it changes nothing and always reports RV(ignore:changed=false).
  - A version the local OpenSSL cannot offer at all is reported in RV(unsupported), not as refused.
author:
  - Proxmox AI hardening maintainers (@proxmox-ai)
options:
  host:
    description: Address to connect to.
    type: str
    default: 127.0.0.1
  port:
    description: TCP port.
    type: int
    default: 443
  server_name:
    description: SNI name and the name the certificate must match; defaults to O(host).
    type: str
  ca_file:
    description: CA bundle to verify the certificate against, instead of the system trust store.
    type: path
  timeout:
    description: Timeout of each connection, in seconds.
    type: int
    default: 5
  versions:
    description: The protocol versions to try.
    type: list
    elements: str
    default: [TLSv1, TLSv1.1, TLSv1.2, TLSv1.3]
    choices: [TLSv1, TLSv1.1, TLSv1.2, TLSv1.3]
attributes:
  check_mode:
    description: Read-only; runs the same in check mode.
    support: full
  diff_mode:
    description: Returns no diff.
    support: none
requirements:
  - python3-cryptography on the target, to read the certificate's details
seealso:
  - module: community.crypto.get_certificate
"""

EXAMPLES = r"""
- name: Probe the proxy
  proxmox_ai.hardening.tls_probe:
    host: 127.0.0.1
    port: 443
    server_name: n8n.example.org
  register: tls

- name: Only TLSv1.2 and TLSv1.3, and a certificate valid for 14 more days
  ansible.builtin.assert:
    that:
      - tls.accepted | difference(['TLSv1.2', 'TLSv1.3']) | length == 0
      - tls.certificate.days_left >= 14
"""

RETURN = r"""
accepted:
  description: The protocol versions the server completed a handshake with.
  returned: always
  type: list
  elements: str
  sample: [TLSv1.2, TLSv1.3]
refused:
  description: The protocol versions the server refused, with the error of each attempt.
  returned: always
  type: dict
  sample: {"TLSv1": "[SSL: TLSV1_ALERT_PROTOCOL_VERSION] tlsv1 alert protocol version"}
unsupported:
  description: Versions the local OpenSSL cannot offer, so their acceptance is unknown.
  returned: always
  type: list
  elements: str
  sample: []
certificate:
  description: The server's certificate, or null when no handshake succeeded.
  returned: always
  type: dict
  contains:
    subject:
      description: Subject, RFC 4514.
      type: str
    issuer:
      description: Issuer, RFC 4514.
      type: str
    not_before:
      description: Start of validity (UTC, ISO 8601).
      type: str
    not_after:
      description: End of validity (UTC, ISO 8601).
      type: str
    days_left:
      description: Whole days until O(ignore:not_after); negative when expired.
      type: int
    expired:
      description: Whether the certificate is outside its validity period.
      type: bool
    verified:
      description: Whether the chain and the name verify against the trust store or O(ca_file).
      type: bool
    verify_error:
      description: Why verification failed, or null.
      type: str
  sample: {"subject": "CN=n8n.example.org", "days_left": 396, "expired": false, "verified": true}
"""

import datetime
import socket
import ssl
import warnings

from ansible.module_utils.basic import AnsibleModule

try:
    from cryptography import x509
    HAS_CRYPTOGRAPHY = True
except ImportError:  # pragma: no cover
    HAS_CRYPTOGRAPHY = False

VERSIONS = {
    "TLSv1": "TLSv1",
    "TLSv1.1": "TLSv1_1",
    "TLSv1.2": "TLSv1_2",
    "TLSv1.3": "TLSv1_3",
}


def _context(version):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    tls = getattr(ssl.TLSVersion, VERSIONS[version])
    with warnings.catch_warnings():  # TLSv1 and TLSv1.1 are deprecated: probing them is the point
        warnings.simplefilter("ignore", DeprecationWarning)
        ctx.minimum_version = tls
        ctx.maximum_version = tls
    if version != "TLSv1.3":
        ctx.set_ciphers("ALL:@SECLEVEL=0")
    return ctx


def _handshake(ctx, host, port, server_name, timeout):
    with socket.create_connection((host, port), timeout=timeout) as sock:
        with ctx.wrap_socket(sock, server_hostname=server_name) as tls:
            return tls.version(), tls.getpeercert(binary_form=True)


def _utc(cert, name):
    value = getattr(cert, name + "_utc", None)
    if value is None:  # cryptography < 42
        value = getattr(cert, name).replace(tzinfo=datetime.timezone.utc)
    return value


def _certificate(der, host, port, server_name, ca_file, timeout):
    info = {"subject": None, "issuer": None, "not_before": None, "not_after": None, "days_left": None,
            "expired": None, "verified": False, "verify_error": None}
    if HAS_CRYPTOGRAPHY and der:
        cert = x509.load_der_x509_certificate(der)
        now = datetime.datetime.now(datetime.timezone.utc)
        before, after = _utc(cert, "not_valid_before"), _utc(cert, "not_valid_after")
        info.update(subject=cert.subject.rfc4514_string(), issuer=cert.issuer.rfc4514_string(),
                    not_before=before.strftime("%Y-%m-%dT%H:%M:%SZ"), not_after=after.strftime("%Y-%m-%dT%H:%M:%SZ"),
                    days_left=(after - now).days, expired=not before <= now <= after)
    ctx = ssl.create_default_context(cafile=ca_file)
    try:
        _handshake(ctx, host, port, server_name, timeout)
        info["verified"] = True
    except (ssl.SSLError, ssl.CertificateError, OSError) as exc:
        info["verify_error"] = str(exc)
    return info


def main():
    module = AnsibleModule(
        argument_spec=dict(
            host=dict(type="str", default="127.0.0.1"),
            port=dict(type="int", default=443),
            server_name=dict(type="str"),
            ca_file=dict(type="path"),
            timeout=dict(type="int", default=5),
            versions=dict(type="list", elements="str", default=list(VERSIONS), choices=list(VERSIONS)),
        ),
        supports_check_mode=True,
    )
    params = module.params
    host, port, timeout = params["host"], params["port"], params["timeout"]
    server_name = params["server_name"] or host
    accepted, refused, unsupported, der = [], {}, [], None
    for version in params["versions"]:
        try:
            ctx = _context(version)
        except (ValueError, ssl.SSLError, AttributeError):
            unsupported.append(version)
            continue
        try:
            negotiated, cert = _handshake(ctx, host, port, server_name, timeout)
        except ssl.SSLError as exc:
            if "NO_PROTOCOLS_AVAILABLE" in str(exc) or "no protocols available" in str(exc):
                unsupported.append(version)
            else:
                refused[version] = str(exc)
            continue
        except (ConnectionResetError, ConnectionAbortedError, BrokenPipeError, socket.timeout) as exc:
            refused[version] = str(exc)
            continue
        except OSError as exc:  # refused connection, no route: nothing listens there
            module.fail_json(msg="cannot connect to %s:%s: %s" % (host, port, exc), accepted=accepted,
                             refused=refused, unsupported=unsupported, certificate=None)
        if negotiated == version:
            accepted.append(version)
            der = der or cert
        else:
            refused[version] = "server negotiated %s" % negotiated
    certificate = None
    if accepted:
        certificate = _certificate(der, host, port, server_name, params["ca_file"], timeout)
    module.exit_json(changed=False, accepted=accepted, refused=refused, unsupported=unsupported,
                     certificate=certificate)


if __name__ == "__main__":
    main()
