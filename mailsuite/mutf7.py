"""Modified UTF-7 for IMAP mailbox names (RFC 3501 5.1.3), shared by every package.

The IMAP server reads names off the wire, the store writes them as Maildir++ folder names
(as Dovecot does), and the remote clients read other servers' listings: one codec serves
all three. `decode` is strict, so two different wire names can never reach the same
folder; `decode_lenient` is for names other servers send, which are shown as-is where they
are not valid.
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
    return _decode(raw, strict=True)


def decode_lenient(raw: bytes) -> str:
    """Decode a name another server sent; runs that are not valid stay as they were."""
    return _decode(raw, strict=False)


def _decode(raw: bytes, *, strict: bool) -> str:
    out: list[str] = []
    i = 0
    n = len(raw)
    while i < n:
        byte = raw[i]
        if byte not in _PRINTABLE and strict:
            raise MailboxNameError("mailbox names are 7-bit (modified UTF-7)")
        end = raw.find(b"-", i + 1) if byte == 0x26 else -1  # "&"
        if byte != 0x26 or (end < 0 and not strict):
            out.append(chr(byte) if byte < 0x80 else "\ufffd")
            i += 1
            continue
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
                if strict:
                    raise MailboxNameError("bad modified UTF-7 sequence") from exc
                text = raw[i : end + 1].decode("ascii", "replace")
            else:
                # RFC 3501 5.1.3: printable US-ASCII must not be base64-encoded
                if strict and (any(ord(c) in _PRINTABLE for c in text) or _b64(text) != chunk):
                    raise MailboxNameError("non-canonical modified UTF-7 sequence")
            out.append(text)
        i = end + 1
    return "".join(out)
