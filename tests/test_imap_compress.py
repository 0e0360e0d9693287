"""IMAP COMPRESS=DEFLATE (RFC 4978): raw DEFLATE both ways after the OK, over TLS too."""

from __future__ import annotations

import zlib

import pytest

from mailsuite.store import Store
from tests.test_imap_server import PASSWORD, Raw, deliver


class Deflated:
    """The client side of a compressed IMAP stream over a `Raw` connection."""

    def __init__(self, raw: Raw) -> None:
        self.raw = raw
        self.out = zlib.compressobj(6, zlib.DEFLATED, -15)
        self.inp = zlib.decompressobj(-15)
        self.buf = raw.buf  # anything already read after the OK is compressed
        raw.buf = b""
        self.plain = self.inp.decompress(self.buf)
        self.n = 0

    def send(self, data: bytes) -> None:
        self.raw.sock.sendall(self.out.compress(data) + self.out.flush(zlib.Z_SYNC_FLUSH))

    def until(self, tag: bytes) -> list[bytes]:
        lines: list[bytes] = []
        while True:
            while b"\r\n" not in self.plain:
                chunk = self.raw.sock.recv(65536)
                if not chunk:
                    raise ConnectionError(f"closed; got {lines!r} {self.plain!r}")
                self.plain += self.inp.decompress(chunk)
            i = self.plain.index(b"\r\n") + 2
            line, self.plain = self.plain[:i], self.plain[i:]
            lines.append(line)
            if line.startswith(tag + b" "):
                return lines

    def cmd(self, text: str) -> list[bytes]:
        self.n += 1
        tag = b"z%d" % self.n
        self.send(tag + b" " + text.encode() + b"\r\n")
        return self.until(tag)


def _compressed(suite, address: str, *, tls: bool) -> Deflated:  # type: ignore[no-untyped-def]
    raw = Raw(suite.port("imaps" if tls else "imap"), tls=tls)
    raw.login(address, PASSWORD)
    caps = b"".join(raw.ok("CAPABILITY"))
    assert b"COMPRESS=DEFLATE" in caps
    reply = raw.cmd("COMPRESS DEFLATE")
    assert reply[-1].split(b" ", 2)[1] == b"OK", reply
    return Deflated(raw)


@pytest.mark.parametrize("tls", [False, True], ids=["plain", "imaps"])
def test_a_compressed_session_reads_mail(suite, tls: bool) -> None:  # type: ignore[no-untyped-def]
    """After `OK DEFLATE active` both directions are DEFLATE (RFC 4978 3, 4); a message
    fetched through it is byte-exact, and COMPRESS is no longer advertised."""
    address = f"zip-{'tls' if tls else 'plain'}@example.test"
    suite.add_user(address, PASSWORD)
    body = b"Subject: zipped\r\n\r\n" + b"line of text\r\n" * 2000
    deliver(Store(suite.config["paths"]["maildirs"]), address, body)
    z = _compressed(suite, address, tls=tls)
    assert z.cmd("SELECT INBOX")[-1].split(b" ")[1] == b"OK"
    lines = z.cmd("FETCH 1 BODY[]")
    joined = b"".join(lines)
    assert body in joined
    caps = b"".join(z.cmd("CAPABILITY"))
    assert b"COMPRESS=DEFLATE" not in caps
    # RFC 4978 3: a second COMPRESS is refused with COMPRESSIONACTIVE
    assert b"NO [COMPRESSIONACTIVE]" in z.cmd("COMPRESS DEFLATE")[-1]
    assert z.cmd("LOGOUT")[-1].split(b" ")[1] == b"OK"


def test_compress_is_refused_before_login_and_for_other_mechanisms(suite) -> None:  # type: ignore[no-untyped-def]
    """COMPRESS is valid only once authenticated; an unknown mechanism is BAD (RFC 4978 3)."""
    address = "zip-refused@example.test"
    suite.add_user(address, PASSWORD)
    raw = Raw(suite.port("imap"))
    assert raw.cmd("COMPRESS DEFLATE")[-1].split(b" ")[1] == b"BAD"
    raw.login(address, PASSWORD)
    assert raw.cmd("COMPRESS LZW")[-1].split(b" ")[1] == b"BAD"
    assert raw.cmd("NOOP")[-1].split(b" ")[1] == b"OK"


def test_a_compressed_bomb_is_refused_line_by_line(suite) -> None:  # type: ignore[no-untyped-def]
    """A few KB that inflate to a 50 MB line get the line-limit answer in turn, and the
    session goes on: compressed input is framed as it is inflated, never held whole."""
    address = "zip-bomb@example.test"
    suite.add_user(address, PASSWORD)
    z = _compressed(suite, address, tls=False)
    line = b"a1 NOOP " + b"x" * 50_000_000 + b"\r\n"
    z.send(line)
    reply = z.until(b"a1")
    assert b"[LIMIT]" in reply[-1]
    assert z.cmd("NOOP")[-1].split(b" ")[1] == b"OK"


def test_broken_deflate_data_closes_the_connection(suite) -> None:  # type: ignore[no-untyped-def]
    """Input that is not DEFLATE cannot be framed; the connection is closed, not stuck."""
    address = "zip-broken@example.test"
    suite.add_user(address, PASSWORD)
    z = _compressed(suite, address, tls=False)
    z.raw.sock.sendall(b"\xff" * 64)
    z.raw.sock.settimeout(5)
    assert z.raw.sock.recv(100) == b""
