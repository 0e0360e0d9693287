"""DKIM for our domains: key files under `paths.dkim_keys` and signing of outbound mail.

One RSA key per domain, `<dkim_keys>/<domain>.key` (PEM, mode 0600), published under the
configured selector. A domain without a key file is sent unsigned (and logged once), so a
fresh install works before DNS is set up.
"""

from __future__ import annotations

import base64
import logging
import os
from pathlib import Path

import dkim
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

log = logging.getLogger("mailsuite.smtp")

# RFC 6376 5.4.1: From is required; these are the headers whose change would mislead a reader.
SIGNED_HEADERS = [
    b"from",
    b"to",
    b"cc",
    b"subject",
    b"date",
    b"message-id",
    b"reply-to",
    b"in-reply-to",
    b"references",
    b"mime-version",
    b"content-type",
    b"content-transfer-encoding",
]


def key_path(keys_dir: Path, domain: str) -> Path:
    return keys_dir / f"{domain.lower()}.key"


def generate_key(keys_dir: Path, domain: str, *, bits: int = 2048) -> Path:
    """Create the domain's private key; refuses to overwrite one already published."""
    path = key_path(keys_dir, domain)
    if path.exists():
        raise FileExistsError(f"{path} already exists; remove it first to make a new key")
    key = rsa.generate_private_key(public_exponent=65537, key_size=bits)
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    )
    keys_dir.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(pem)
    return path


def dns_record(keys_dir: Path, domain: str, selector: str) -> str:
    """The TXT record to publish (RFC 6376 3.6.1), as a zone-file line."""
    key = serialization.load_pem_private_key(key_path(keys_dir, domain).read_bytes(), None)
    public = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    value = f"v=DKIM1; k=rsa; p={base64.b64encode(public).decode()}"
    # A TXT string holds at most 255 characters; longer values are split into several.
    chunks = " ".join(f'"{value[i : i + 250]}"' for i in range(0, len(value), 250))
    return f"{selector}._domainkey.{domain}. IN TXT ( {chunks} )"


def sign(data: bytes, domain: str, selector: str, keys_dir: Path) -> bytes:
    """The `DKIM-Signature:` header line(s) for `data`, or b"" when the domain has no key."""
    path = key_path(keys_dir, domain)
    try:
        private = path.read_bytes()
    except FileNotFoundError:
        log.debug("no DKIM key for %s at %s; sending unsigned", domain, path)
        return b""
    header = dkim.sign(
        data,
        selector.encode(),
        domain.encode(),
        private,
        include_headers=SIGNED_HEADERS,
        canonicalize=(b"relaxed", b"relaxed"),
    )
    return header.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
