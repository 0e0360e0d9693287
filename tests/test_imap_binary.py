"""BINARY (RFC 3516) against the real server, over plain IMAP and over IMAPS (TLS)."""

from __future__ import annotations

import base64
import re

import pytest

from tests.test_imap_server import PASSWORD, Raw, deliver, reply, session, store, user

__all__ = ["store", "user"]  # fixtures, imported so pytest finds them here

PAYLOAD = bytes(range(256)) * 3  # every octet, NUL and CR/LF among them
QP_TEXT = "Zażółć gęślą jaźń = 100%, no break\r\nhere".encode()


def mime_message(payload: bytes = PAYLOAD) -> bytes:
    encoded = base64.encodebytes(payload).replace(b"\n", b"\r\n")
    return (
        b"From: a@example.test\r\nSubject: binary\r\nMIME-Version: 1.0\r\n"
        b'Content-Type: multipart/mixed; boundary="XX"\r\n\r\n'
        b"--XX\r\nContent-Type: text/plain; charset=utf-8\r\n"
        b"Content-Transfer-Encoding: quoted-printable\r\n\r\n"
        b"Za=C5=BC=C3=B3=C5=82=C4=87 g=C4=99=C5=9Bl=C4=85 ja=C5=BA=C5=84 =3D 100%=\r\n"
        b", no break\r\nhere\r\n"
        b"--XX\r\nContent-Type: application/octet-stream\r\n"
        b"Content-Transfer-Encoding: base64\r\n\r\n" + encoded + b"--XX\r\n"
        b"Content-Type: application/x-thing\r\nContent-Transfer-Encoding: x-uuencode\r\n\r\n"
        b"begin 644 x\r\nend\r\n"
        b"--XX--\r\n"
    )


def binary_value(lines: list[bytes], label: bytes) -> tuple[bytes, bytes]:
    """(the literal marker, "~" or "", and the data) of one item in a FETCH answer."""
    text = b"".join(lines)
    m = re.search(re.escape(label) + rb" (~?)\{(\d+)\}\r\n", text)
    assert m, (label, text[:300])
    start = m.end()
    return m.group(1), text[start : start + int(m.group(2))]


@pytest.fixture(params=["imap", "imaps"])
def conn(request, suite, user, store) -> Raw:
    deliver(store, user, mime_message())
    if request.param == "imap":
        return session(suite, user)
    c = Raw(suite.port("imaps"), tls=True)
    c.login(user, PASSWORD)
    c.ok("SELECT INBOX")
    return c


def test_capability_offers_binary(suite, user):
    c = session(suite, user, select=None)
    assert b"BINARY" in c.ok("CAPABILITY")[0].split()


def test_base64_part_comes_decoded_as_literal8(conn):
    """RFC 3516 4.2: BINARY[section] is the part with its content-transfer-encoding undone;
    4.3: data with NUL octets MUST be sent as literal8 (``~{n}``)."""
    marker, data = binary_value(conn.ok("FETCH 1 BINARY.PEEK[2]"), b"BINARY[2]")
    assert marker == b"~" and data == PAYLOAD


def test_quoted_printable_part_comes_decoded(conn):
    """RFC 3516 4.2 with RFC 2045 6.7: =XX octets and soft line breaks are undone."""
    marker, data = binary_value(conn.ok("FETCH 1 BINARY.PEEK[1]"), b"BINARY[1]")
    assert data == QP_TEXT and marker == b""


def test_binary_size_is_the_decoded_size(conn):
    """RFC 3516 4.3: BINARY.SIZE is the size of the section after decoding."""
    lines = conn.ok("FETCH 1 (BINARY.SIZE[1] BINARY.SIZE[2])")
    assert b"BINARY.SIZE[1] %d" % len(QP_TEXT) in lines[0]
    assert b"BINARY.SIZE[2] %d" % len(PAYLOAD) in lines[0]


def test_partial_counts_decoded_octets(conn):
    """RFC 3516 4.2: <origin.size> applies to the decoded data; the label keeps the origin."""
    marker, data = binary_value(conn.ok("FETCH 1 BINARY.PEEK[2]<10.20>"), b"BINARY[2]<10>")
    assert data == PAYLOAD[10:30] and marker == b""


def test_whole_message_is_the_stored_message(conn):
    _, data = binary_value(conn.ok("FETCH 1 BINARY.PEEK[]"), b"BINARY[]")
    assert data == mime_message()


def test_unknown_encoding_is_no_unknown_cte(conn):
    """RFC 3516 4.2: a content-transfer-encoding the server cannot decode gets
    NO [UNKNOWN-CTE]."""
    assert reply(conn.cmd("FETCH 1 BINARY.PEEK[3]")).startswith(b"NO [UNKNOWN-CTE]")
    assert reply(conn.cmd("FETCH 1 BINARY.SIZE[3]")).startswith(b"NO [UNKNOWN-CTE]")
    conn.ok("NOOP")  # the session goes on


def test_binary_sets_seen_and_peek_does_not(conn):
    """RFC 3516 4.2: BINARY[] sets \\Seen like BODY[]; BINARY.PEEK and BINARY.SIZE do not."""
    conn.ok("FETCH 1 (BINARY.PEEK[1] BINARY.SIZE[1])")
    assert b"\\Seen" not in conn.ok("FETCH 1 FLAGS")[0]
    lines = conn.ok("FETCH 1 BINARY[1]")
    assert b"\\Seen" in b"".join(lines)


def test_bad_binary_sections_are_bad(conn):
    for bad in ("BINARY[HEADER]", "BINARY[1.TEXT]", "BINARY.SIZE[1]<0.5>", "BINARY[1."):
        assert reply(conn.cmd(f"FETCH 1 {bad}")).startswith(b"BAD"), bad


@pytest.mark.parametrize("port", ["imap", "imaps"])
def test_append_with_literal8_keeps_nul_octets(suite, user, store, port):
    """RFC 3516 4.4: APPEND takes the message as literal8, NUL octets included; the
    message is stored byte for byte."""
    c = Raw(suite.port(port), tls=port == "imaps")
    c.login(user, PASSWORD)
    message = b"Subject: nul\r\nContent-Transfer-Encoding: binary\r\n\r\na\0b\0c\r\n"
    c.send(b"a1 APPEND INBOX ~{%d}\r\n" % len(message))
    assert c.line().startswith(b"+")
    c.send(message + b"\r\n")
    assert b"a1 OK" in c.until(b"a1")[-1]
    c.send(b"a2 APPEND INBOX (\\Seen) ~{%d+}\r\n" % len(message) + message + b"\r\n")
    assert b"a2 OK" in c.until(b"a2")[-1]
    folder = store.mailbox(user).folder("INBOX")
    assert [folder.read(m.uid) for m in folder.messages()] == [message, message]
    c.ok("SELECT INBOX")
    marker, data = binary_value(c.ok("FETCH 1 BINARY.PEEK[1]"), b"BINARY[1]")
    assert marker == b"~" and data == b"a\0b\0c\r\n"


def test_literal8_announcements_are_framed_like_literals():
    """RFC 3516 4.4: ``~{n}`` and ``~{n+}`` announce n octets as ``{n}`` does."""
    from mailsuite.imap.parser import literal_at_end

    assert literal_at_end(b"a APPEND INBOX ~{5}") == (5, False)
    assert literal_at_end(b"a APPEND INBOX ~{5+}") == (5, True)


@pytest.mark.parametrize(
    "body, encoding, decoded",
    [
        (b"aGVsbG8=\r\n", b"BASE64", b"hello"),
        (b"aGVs\r\nbG8=", b"BASE64", b"hello"),
        (b"aGVsbG8", b"BASE64", b"hello"),  # padding missing
        (b"aGV*sbG8=", b"BASE64", b"hello"),  # RFC 2045 6.8: other characters are ignored
        (b"aGVsbG8=AAAA", b"BASE64", b"hello"),  # nothing after the pad counts
        (b"", b"BASE64", b""),
        (b"a=3Db=\r\nc", b"QUOTED-PRINTABLE", b"a=bc"),
        (b"x\0y", b"BINARY", b"x\0y"),
        (b"plain", b"7BIT", b"plain"),
        (b"8\xc3\xb3", b"8BIT", b"8\xc3\xb3"),
    ],
)
def test_decoding_table(body, encoding, decoded):
    from mailsuite.imap.binary import decode

    assert decode(body, encoding) == decoded


def test_unknown_encodings_raise():
    from mailsuite.imap.binary import UnknownCte, decode

    for encoding in (b"X-UUENCODE", b"BINHEX", b""):
        with pytest.raises(UnknownCte):
            decode(b"x", encoding)
