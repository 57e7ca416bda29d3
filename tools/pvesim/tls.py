"""Certificate authority and server certificate, made with ``cryptography``.

Like ``pvecm updatecerts`` the simulator owns a CA (``pve-root-ca.pem``) and a
node certificate signed by it; clients verify the server against the CA.
"""
from __future__ import annotations

import datetime
import ipaddress
import os
import ssl
import tempfile

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

DEFAULT_SANS = ("localhost", "127.0.0.1")


def _key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _pem_key(key) -> str:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption()).decode()


def _pem_cert(cert: x509.Certificate) -> str:
    return cert.public_bytes(serialization.Encoding.PEM).decode()


def _usage(**enabled) -> x509.KeyUsage:
    names = ("digital_signature", "content_commitment", "key_encipherment", "data_encipherment", "key_agreement",
             "key_cert_sign", "crl_sign", "encipher_only", "decipher_only")
    return x509.KeyUsage(**{name: enabled.get(name, False) for name in names})


def make_ca(cluster_name: str) -> dict:
    """A self-signed CA like Proxmox VE's ``pve-root-ca.pem`` (10 years)."""
    key = _key()
    name = x509.Name([
        x509.NameAttribute(NameOID.COMMON_NAME, f"Proxmox Virtual Environment (simulator {cluster_name})"),
        x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, "pvesim"),
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, "PVE Cluster Manager CA"),
    ])
    now = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(minutes=5)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now).not_valid_after(now + datetime.timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(_usage(digital_signature=True, key_cert_sign=True, crl_sign=True), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return {"cert": _pem_cert(cert), "key": _pem_key(key)}


def _sans_list(sans) -> list:
    result = []
    for name in list(DEFAULT_SANS) + list(sans or ()):
        name = name.strip()
        if name and name not in result:
            result.append(name)
    return result


def _san_entries(sans) -> list:
    entries = []
    for name in _sans_list(sans):
        try:
            entries.append(x509.IPAddress(ipaddress.ip_address(name)))
        except ValueError:
            entries.append(x509.DNSName(name))
    return entries


def make_server_cert(ca: dict, node: str, sans) -> dict:
    """A node certificate (``pve-ssl.pem``) for localhost, 127.0.0.1 and the extra SANs."""
    ca_key = serialization.load_pem_private_key(ca["key"].encode(), password=None)
    ca_cert = x509.load_pem_x509_certificate(ca["cert"].encode())
    key = _key()
    now = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(minutes=5)
    subject = x509.Name([
        x509.NameAttribute(NameOID.COMMON_NAME, f"{node}.localdomain"),
        x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, "PVE Cluster Node"),
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Proxmox Virtual Environment"),
    ])
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject).issuer_name(ca_cert.subject).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now).not_valid_after(now + datetime.timedelta(days=730))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_usage(digital_signature=True, content_commitment=True, key_encipherment=True,
                              data_encipherment=True), critical=False)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectAlternativeName(_san_entries(sans)), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_cert.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    return {"cert": _pem_cert(cert), "key": _pem_key(key), "sans": sorted(_sans_list(sans))}


def server_cert_matches(server: dict | None, sans) -> bool:
    """True when the stored server certificate already covers exactly these SANs."""
    return bool(server) and server.get("sans") == sorted(_sans_list(sans))


def fingerprint(cert_pem: str) -> str:
    cert = x509.load_pem_x509_certificate(cert_pem.encode())
    digest = cert.fingerprint(hashes.SHA256()).hex().upper()
    return ":".join(digest[i:i + 2] for i in range(0, len(digest), 2))


def server_context(server: dict, ca: dict) -> ssl.SSLContext:
    """TLS context serving the node certificate with the CA as chain."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    # load_cert_chain needs files: write them to a private temporary folder, removed at once.
    with tempfile.TemporaryDirectory(prefix="pvesim-tls-") as folder:
        chain, keyfile = os.path.join(folder, "chain.pem"), os.path.join(folder, "key.pem")
        with open(chain, "w", encoding="ascii") as handle:
            handle.write(server["cert"] + ca["cert"])
        fd = os.open(keyfile, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="ascii") as handle:
            handle.write(server["key"])
        ctx.load_cert_chain(chain, keyfile)
    return ctx
