"""Modified UTF-7 for IMAP mailbox names (RFC 3501 5.1.3).

Decoding is strict: a name that is not in the canonical encoding is refused, so two different
wire names can never reach the same folder.
"""

from __future__ import annotations

import base64

_PRINTABLE = range(0x20, 0x7F)


class MailboxNameError(ValueError):
    """The bytes are not a valid modified UTF-7 mailbox name."""


def _b64(text: str) -> bytes:
    raw = base64.b64encode(text.encode("utf-16-be"), altchars=b"+,")
    return raw.rstrip(b"=")


def encode(name: str) -> bytes:
    """Encode a Unicode mailbox name for the wire."""
    out = bytearray()
    pending: list[str] = []

    def flush() -> None:
        if pending:
            out.extend(b"&" + _b64("".join(pending)) + b"-")
            pending.clear()

    for ch in name:
        code = ord(ch)
        if code in _PRINTABLE:
            flush()
            # RFC 3501 5.1.3: "&" is represented by "&-"
            out.extend(b"&-" if ch == "&" else ch.encode("ascii"))
        else:
            pending.append(ch)
    flush()
    return bytes(out)


def decode(raw: bytes) -> str:
    """Decode a wire mailbox name; raise MailboxNameError when it is not canonical."""
    out: list[str] = []
    i = 0
    n = len(raw)
    while i < n:
        byte = raw[i]
        if byte not in _PRINTABLE:
            raise MailboxNameError("mailbox names are 7-bit (modified UTF-7)")
        if byte != 0x26:  # "&"
            out.append(chr(byte))
            i += 1
            continue
        end = raw.find(b"-", i + 1)
        if end < 0:
            raise MailboxNameError("unterminated modified UTF-7 sequence")
        chunk = raw[i + 1 : end]
        if not chunk:
            out.append("&")
        else:
            padded = chunk + b"=" * (-len(chunk) % 4)
            try:
                data = base64.b64decode(padded, altchars=b"+,", validate=True)
                text = data.decode("utf-16-be")
            except (ValueError, UnicodeDecodeError) as exc:
                raise MailboxNameError("bad modified UTF-7 sequence") from exc
            # RFC 3501 5.1.3: printable US-ASCII must not be base64-encoded
            if any(ord(c) in _PRINTABLE for c in text) or _b64(text) != chunk:
                raise MailboxNameError("non-canonical modified UTF-7 sequence")
            out.append(text)
        i = end + 1
    return "".join(out)
