"""The pure parts of POP3: command parsing and message framing, with tables of odd inputs."""

from __future__ import annotations

import pytest

from mailsuite.pop3.wire import (
    BadCommand,
    parse_command,
    parse_number,
    retr_body,
    top_body,
    uidl_of,
)
from mailsuite.store.maildir import wire_size


@pytest.mark.parametrize(
    ("line", "verb", "args", "rest"),
    [
        (b"STAT", "STAT", [], ""),
        (b"stat", "STAT", [], ""),
        (b"ReTr 12", "RETR", ["12"], "12"),
        (b"TOP 1 0", "TOP", ["1", "0"], "1 0"),
        (b"PASS pass with spaces ", "PASS", ["pass", "with", "spaces"], "pass with spaces "),
        (b"USER ala@example.test", "USER", ["ala@example.test"], "ala@example.test"),
        (b"AUTH PLAIN AGFsYQBzZWNyZXQ=", "AUTH", ["PLAIN", "AGFsYQBzZWNyZXQ="], ""),
        ("PASS Zażółć 1".encode(), "PASS", ["Zażółć", "1"], "Zażółć 1"),
    ],
)
def test_parse_command(line: bytes, verb: str, args: list[str], rest: str) -> None:
    command = parse_command(line)
    assert command.verb == verb
    assert command.args == args
    if rest:
        assert command.rest == rest


@pytest.mark.parametrize(
    "line",
    [
        b"",
        b" STAT",
        b"ST\x00AT",
        b"USER a\tb",
        b"RETR 1\x7f",
        b"\xff\xfe",
        b"US\xc5\xbbER x",
        b"A" * 41,
        b"RE-TR 1",
        b"\x1b[2J",
    ],
)
def test_parse_command_refuses(line: bytes) -> None:
    with pytest.raises(BadCommand):
        parse_command(line)


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("1", 1),
        ("0", 0),
        ("007", 7),
        ("999999999", 999999999),
        ("1000000000", None),
        ("-1", None),
        ("+1", None),
        ("1.0", None),
        ("", None),
        ("١", None),  # Arabic-Indic digit one: isdigit() but not ASCII
        ("x", None),
    ],
)
def test_parse_number(text: str, value: int | None) -> None:
    assert parse_number(text) == value


@pytest.mark.parametrize(
    ("stored", "wire"),
    [
        (b"A: b\r\n\r\nbody\r\n", b"A: b\r\n\r\nbody\r\n.\r\n"),
        (b"A: b\n\nbody\n", b"A: b\r\n\r\nbody\r\n.\r\n"),
        (b"A: b\r\rbody", b"A: b\r\n\r\nbody\r\n.\r\n"),
        (b"A: b\n\n.\n", b"A: b\r\n\r\n..\r\n.\r\n"),
        (b".starts\r\n", b"..starts\r\n.\r\n"),
        (b"A: b\r\n\r\n.\r\n..\r\n.x", b"A: b\r\n\r\n..\r\n...\r\n..x\r\n.\r\n"),
        (b"", b".\r\n"),
        (b"no newline", b"no newline\r\n.\r\n"),
        (b"mixed\r\nends\nhere\r", b"mixed\r\nends\r\nhere\r\n.\r\n"),
    ],
)
def test_retr_body(stored: bytes, wire: bytes) -> None:
    assert retr_body(stored) == wire
    unstuffed = wire[:-3].replace(b"\r\n..", b"\r\n.")
    if unstuffed.startswith(b".."):
        unstuffed = unstuffed[1:]
    assert wire_size(stored) == len(unstuffed)  # LIST counts what RETR sends, unstuffed


@pytest.mark.parametrize(
    ("stored", "lines", "wire"),
    [
        (b"A: b\r\n\r\n1\r\n2\r\n3\r\n", 0, b"A: b\r\n\r\n.\r\n"),
        (b"A: b\r\n\r\n1\r\n2\r\n3\r\n", 2, b"A: b\r\n\r\n1\r\n2\r\n.\r\n"),
        (b"A: b\n\n1\n2\n3\n", 10, b"A: b\r\n\r\n1\r\n2\r\n3\r\n.\r\n"),
        (b"A: b\r\nC: d\r\n", 5, b"A: b\r\nC: d\r\n.\r\n"),
        (b"A: b\r\n\r\n.x\r\n", 1, b"A: b\r\n\r\n..x\r\n.\r\n"),
        (b"\r\nbody\r\n", 1, b"\r\nbody\r\n.\r\n"),
        (b"A: b\r\n\r\n\r\n\r\nx\r\n", 2, b"A: b\r\n\r\n\r\n\r\n.\r\n"),
    ],
)
def test_top_body(stored: bytes, lines: int, wire: bytes) -> None:
    assert top_body(stored, lines) == wire


def test_uidl_is_the_key_or_a_stable_digest() -> None:
    key = "1763900000.M12P34Q5.mail,S=1234"
    assert uidl_of(key) == key
    long_key = "1763900000.M12P34Q5." + "h" * 80 + ",S=1"
    assert uidl_of(long_key) == uidl_of(long_key)
    assert len(uidl_of(long_key)) <= 70 and uidl_of(long_key) != uidl_of(long_key + "0")
    for odd in ("with space", "ü-key", ""):
        uidl = uidl_of(odd)
        assert 1 <= len(uidl) <= 70 and all(0x21 <= ord(c) <= 0x7E for c in uidl)
