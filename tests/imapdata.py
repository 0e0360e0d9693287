"""IMAP response data read back into Python values, for tests that compare answers.

Strings and atoms become bytes, NIL becomes None, parenthesised lists become lists
(RFC 3501 9: string, literal, NIL, atom, list). Enough for FETCH responses; not a client.
"""

from __future__ import annotations

import re
from typing import Any

Value = Any  # bytes, None or a list of Values

_LITERAL = re.compile(rb"\{(\d+)\}\r\n")
_ATOM = re.compile(rb"[^ ()\[]+(\[[^\]]*\](<\d+>)?)?")


def value(data: bytes, pos: int = 0) -> tuple[Value, int]:
    """The value starting at `pos` (after any spaces) and the position after it."""
    while data[pos : pos + 1] == b" ":
        pos += 1
    c = data[pos : pos + 1]
    if c == b"(":
        items: list[Value] = []
        pos += 1
        while True:
            while data[pos : pos + 1] == b" ":
                pos += 1
            if data[pos : pos + 1] == b")":
                return items, pos + 1
            item, pos = value(data, pos)
            items.append(item)
    if c == b'"':
        out = bytearray()
        pos += 1
        while data[pos : pos + 1] != b'"':
            if data[pos : pos + 1] == b"\\":
                pos += 1
            out += data[pos : pos + 1]
            pos += 1
        return bytes(out), pos + 1
    if c == b"{":
        m = _LITERAL.match(data, pos)
        assert m, data[pos : pos + 20]
        start = m.end()
        return data[start : start + int(m.group(1))], start + int(m.group(1))
    m = _ATOM.match(data, pos)
    assert m, data[pos : pos + 20]
    atom = m.group(0)
    return (None if atom == b"NIL" else atom), m.end()


def fetch_items(response: bytes) -> dict[str, Value]:
    """The items of one ``* n FETCH (...)`` response, by upper-cased name."""
    m = re.match(rb"\* \d+ FETCH ", response)
    assert m, response[:80]
    items, _ = value(response, m.end())
    return {items[i].decode().upper(): items[i + 1] for i in range(0, len(items), 2)}
