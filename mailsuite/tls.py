"""One certificate loader for every listener.

aiosmtpd and aiohttp take an `ssl.SSLContext`; Twisted takes pyOpenSSL-based options. Both are
built here from the same PEM files, so a certificate renewed on disk is picked up by all
protocols alike on the next `reload()`. On first start of the demo a self-signed certificate
for `hostname` is generated (RSA 2048, ten years, SAN with the host name, localhost and
127.0.0.1), written with the key at mode 0600.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import logging
import os
import ssl
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID
from twisted.internet.interfaces import IOpenSSLContextFactory
from zope.interface import implementer

log = logging.getLogger("mailsuite.tls")


def generate_self_signed(cert_path: Path, key_path: Path, hostname: str) -> None:
    """Write a fresh self-signed certificate and key; the key file is never world-readable."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hostname)])
    now = dt.datetime.now(dt.UTC)
    san = x509.SubjectAlternativeName(
        [
            x509.DNSName(hostname),
            x509.DNSName("localhost"),
            x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
            x509.IPAddress(ipaddress.ip_address("::1")),
        ]
    )
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=3650))
        .add_extension(san, critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    key_path.parent.mkdir(parents=True, exist_ok=True)
    cert_path.parent.mkdir(parents=True, exist_ok=True)
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(key_pem)
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    log.info("generated a self-signed certificate for %s at %s", hostname, cert_path)


class TLSMaterial:
    """The suite's certificate, as contexts for both TLS stacks."""

    def __init__(self, cert_path: Path, key_path: Path) -> None:
        self.cert_path = cert_path
        self.key_path = key_path
        self._ssl: ssl.SSLContext | None = None
        self._twisted: Any = None
        self.reload()

    @classmethod
    def for_settings(cls, settings: Any) -> TLSMaterial:
        cert, key = settings.paths.tls_cert, settings.paths.tls_key
        if settings.tls.self_signed and not (cert.exists() and key.exists()):
            generate_self_signed(cert, key, settings.hostname)
        return cls(cert, key)

    def reload(self) -> None:
        """Re-read the PEM files; every listener's next handshake uses the new certificate.

        The whole chain in `tls_cert` (leaf first, then intermediates) is served by both TLS
        stacks: a client that knows only the root must be able to verify the leaf. The
        `ssl.SSLContext` is updated in place (aiosmtpd and aiohttp keep a reference to it),
        and Twisted listeners hold a `_LiveContextFactory` that asks for the current options
        at each handshake, so nothing needs to re-listen. Both are built before either is
        replaced, so a broken file leaves the running certificate in place.
        """
        twisted_options = _twisted_options(self.cert_path, self.key_path)
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        context.load_cert_chain(self.cert_path, self.key_path)
        if self._ssl is None:
            self._ssl = context
        else:
            self._ssl.load_cert_chain(self.cert_path, self.key_path)
        self._twisted = twisted_options

    def server_context(self) -> ssl.SSLContext:
        assert self._ssl is not None
        return self._ssl

    def twisted_options(self) -> Any:
        """A Twisted context factory (pyOpenSSL) that always serves the current certificate."""
        return _LiveContextFactory(self)


def _twisted_options(cert_path: Path, key_path: Path) -> Any:
    """pyOpenSSL options serving the leaf and every intermediate after it in `cert_path`."""
    from OpenSSL import crypto
    from twisted.internet import ssl as tssl

    chain = x509.load_pem_x509_certificates(cert_path.read_bytes())
    key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
    return tssl.CertificateOptions(
        privateKey=crypto.PKey.from_cryptography_key(key),  # type: ignore[arg-type]
        certificate=crypto.X509.from_cryptography(chain[0]),
        extraCertChain=[crypto.X509.from_cryptography(c) for c in chain[1:]],
        raiseMinimumTo=tssl.TLSVersion.TLSv1_2,
    )


@implementer(IOpenSSLContextFactory)
class _LiveContextFactory:
    """Twisted context factory whose getContext() Twisted calls for each connection."""

    def __init__(self, material: TLSMaterial) -> None:
        self._material = material

    def getContext(self) -> Any:
        return self._material._twisted.getContext()
