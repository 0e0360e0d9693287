"""Header values as text for the readers that compare text (SEARCH, SORT, the full-text index).

The rest of this package keeps values as written; these readers need them decoded, and must
agree on how, so that a message SORT puts under a name is the one SEARCH finds by it.
"""

from __future__ import annotations

import email.errors
import email.header
import functools


@functools.lru_cache(maxsize=8192)  # senders and thread subjects repeat
def decode_words(raw: bytes) -> str:
    """A header value as text: RFC 2047 encoded words decoded, raw 8-bit read as UTF-8
    (RFC 6532), anything undecodable left as written rather than failing the caller."""
    text = raw.decode("utf-8", "replace")
    if "=?" not in text:
        return text
    try:
        return str(email.header.make_header(email.header.decode_header(text)))
    except (LookupError, ValueError, email.errors.HeaderParseError):
        return text
