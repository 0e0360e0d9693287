"""Every TLS listener sends the whole certificate chain of `paths.tls_cert`.

A certificate from a real CA is signed by an intermediate; the client trusts only the root,
so it can verify the server only when the server sends the intermediate with its leaf.
This module makes a root CA, an intermediate CA and a leaf for mail.example.test, localhost
and 127.0.0.1, points the suite at leaf + intermediate, and checks each listener (SMTP MX
and submission with STARTTLS, submission on implicit TLS, IMAP STARTTLS and IMAPS, POP3 STLS
and POP3S, the web site over HTTPS) with a client that trusts the root alone and checks the
host name.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import socket
import ssl
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from .conftest import Suite

HOST = "mail.example.test"  # in the leaf's SAN; every socket goes to 127.0.0.1


@dataclass
class Chain:
    root: Path  # the root CA's certificate: all a client trusts
    cert: Path  # leaf, then intermediate (what `paths.tls_cert` holds)
    key: Path  # the leaf's key


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "mailsuite tests"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def _issue(
    subject: x509.Name,
    key: ec.EllipticCurvePrivateKey,
    issuer: x509.Name,
    issuer_key: ec.EllipticCurvePrivateKey,
    *,
    ca: bool,
    path_length: int | None = None,
    san: list[x509.GeneralName] | None = None,
) -> x509.Certificate:
    now = dt.datetime.now(dt.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=path_length), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=not ca,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=ca,
                crl_sign=ca,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()),
            critical=False,
        )
    )
    if san is not None:
        builder = builder.add_extension(x509.SubjectAlternativeName(san), critical=False)
        builder = builder.add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False
        )
    return builder.sign(issuer_key, hashes.SHA256())


def make_chain(folder: Path) -> Chain:
    """Root CA -> intermediate CA -> leaf; writes root.pem, chain.pem (leaf + intermediate)
    and key.pem (mode 0600)."""
    folder.mkdir(parents=True, exist_ok=True)
    root_key, inter_key, leaf_key = (ec.generate_private_key(ec.SECP256R1()) for _ in range(3))
    root_name, inter_name = _name("Test Root CA"), _name("Test Intermediate CA")
    root = _issue(root_name, root_key, root_name, root_key, ca=True, path_length=1)
    inter = _issue(inter_name, inter_key, root_name, root_key, ca=True, path_length=0)
    leaf = _issue(
        _name(HOST),
        leaf_key,
        inter_name,
        inter_key,
        ca=False,
        san=[
            x509.DNSName(HOST),
            x509.DNSName("localhost"),
            x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
        ],
    )
    pem = serialization.Encoding.PEM
    chain = Chain(folder / "root.pem", folder / "chain.pem", folder / "key.pem")
    chain.root.write_bytes(root.public_bytes(pem))
    chain.cert.write_bytes(leaf.public_bytes(pem) + inter.public_bytes(pem))
    fd = os.open(chain.key, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(
            leaf_key.private_bytes(
                pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
        )
    return chain


@pytest.fixture(scope="module")
def chain(tmp_path_factory: pytest.TempPathFactory) -> Chain:
    return make_chain(tmp_path_factory.mktemp("ca"))


@pytest.fixture(scope="module")
def chained(tmp_path_factory: pytest.TempPathFactory, chain: Chain) -> Iterator[Suite]:
    """A suite serving the leaf + intermediate on every listener, the web site over HTTPS."""
    suite = Suite(
        tmp_path_factory.mktemp("chained"),
        {
            "paths": {"tls_cert": str(chain.cert), "tls_key": str(chain.key)},
            "tls": {"self_signed": False},
            "web": {"tls": True},
        },
    )
    suite.start()
    yield suite
    suite.close()


def trusting_root(chain: Chain) -> ssl.SSLContext:
    """A client that trusts the root CA and nothing else, and checks the host name."""
    context = ssl.create_default_context(cafile=str(chain.root))
    assert context.check_hostname and context.verify_mode == ssl.CERT_REQUIRED
    assert [c["subject"] for c in context.get_ca_certs()] == [
        ((("organizationName", "mailsuite tests"),), (("commonName", "Test Root CA"),))
    ]
    return context


class Lines:
    """Reads CRLF lines from a plain or TLS socket."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buf = b""

    def line(self) -> bytes:
        while b"\r\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError(f"closed; buffered {self.buf!r}")
            self.buf += chunk
        i = self.buf.index(b"\r\n") + 2
        out, self.buf = self.buf[:i], self.buf[i:]
        return out

    def smtp_reply(self) -> list[bytes]:
        """Every line of one SMTP reply (RFC 5321 4.2.1: `250-` continues, `250 ` ends)."""
        lines = [self.line()]
        while lines[-1][3:4] == b"-":
            lines.append(self.line())
        return lines

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)


def _upgrade(lines: Lines, context: ssl.SSLContext) -> Lines:
    """Handshake on the socket, verifying the chain and the name; raises if either fails."""
    assert not lines.buf, "nothing may be pipelined before the TLS handshake"
    return Lines(context.wrap_socket(lines.sock, server_hostname=HOST))


def smtp_starttls(lines: Lines, context: ssl.SSLContext) -> None:
    assert lines.smtp_reply()[-1].startswith(b"220 ")
    lines.send(b"EHLO client.example.test\r\n")
    assert b"250-STARTTLS\r\n" in lines.smtp_reply()
    lines.send(b"STARTTLS\r\n")
    assert lines.smtp_reply()[-1].startswith(b"220 ")
    secure = _upgrade(lines, context)
    secure.send(b"EHLO client.example.test\r\n")
    assert secure.smtp_reply()[-1].startswith(b"250 ")


def smtp_implicit(lines: Lines, context: ssl.SSLContext) -> None:
    secure = _upgrade(lines, context)
    assert secure.smtp_reply()[-1].startswith(b"220 ")
    secure.send(b"EHLO client.example.test\r\n")
    assert secure.smtp_reply()[-1].startswith(b"250 ")


def imap_starttls(lines: Lines, context: ssl.SSLContext) -> None:
    assert lines.line().startswith(b"* OK")
    lines.send(b"a STARTTLS\r\n")
    assert lines.line().startswith(b"a OK")
    secure = _upgrade(lines, context)
    secure.send(b"b NOOP\r\n")
    assert secure.line().startswith(b"b OK")


def imap_implicit(lines: Lines, context: ssl.SSLContext) -> None:
    secure = _upgrade(lines, context)
    assert secure.line().startswith(b"* OK")
    secure.send(b"b NOOP\r\n")
    assert secure.line().startswith(b"b OK")


def pop3_stls(lines: Lines, context: ssl.SSLContext) -> None:
    assert lines.line().startswith(b"+OK")
    lines.send(b"STLS\r\n")
    assert lines.line().startswith(b"+OK")
    secure = _upgrade(lines, context)
    secure.send(b"CAPA\r\n")
    assert secure.line().startswith(b"+OK")


def pop3_implicit(lines: Lines, context: ssl.SSLContext) -> None:
    secure = _upgrade(lines, context)
    assert secure.line().startswith(b"+OK")
    secure.send(b"CAPA\r\n")
    assert secure.line().startswith(b"+OK")


def https(lines: Lines, context: ssl.SSLContext) -> None:
    secure = _upgrade(lines, context)
    secure.send(f"HEAD / HTTP/1.1\r\nHost: {HOST}\r\nConnection: close\r\n\r\n".encode())
    assert secure.line().startswith(b"HTTP/1.1 ")


LISTENERS = {
    # id: (listen key, how the client gets to TLS there)
    "smtp-starttls": ("smtp", smtp_starttls),
    "submission-starttls": ("submission", smtp_starttls),
    "submissions": ("submissions", smtp_implicit),
    "imap-starttls": ("imap", imap_starttls),
    "imaps": ("imaps", imap_implicit),
    "pop3-stls": ("pop3", pop3_stls),
    "pop3s": ("pop3s", pop3_implicit),
    "web-https": ("web", https),
}


@pytest.mark.parametrize("listener", list(LISTENERS))
def test_listener_verifies_against_the_root_alone(
    chained: Suite, chain: Chain, listener: str
) -> None:
    """A client that trusts only the root CA completes the handshake, with the host name
    checked, and the session goes on over TLS: the server sent leaf and intermediate."""
    key, reach_tls = LISTENERS[listener]
    context = trusting_root(chain)
    with socket.create_connection(("127.0.0.1", chained.port(key)), timeout=10) as sock:
        reach_tls(Lines(sock), context)
