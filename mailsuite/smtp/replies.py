"""SMTP reply texts we send, and enhanced status codes for aiosmtpd's own replies.

RFC 2034 3: once ENHANCEDSTATUSCODES is advertised, every reply but the greeting, the
EHLO/HELO reply and AUTH challenges carries a status code. aiosmtpd writes some replies
without one; `enhance` adds the class-appropriate code to those.
"""

from __future__ import annotations

import re

_HAS_CODE = re.compile(r"^\d{3}[ -]\d\.\d{1,3}\.\d{1,3}( |$)")
_REPLY = re.compile(r"^(\d{3})([ -])(.*)$", re.DOTALL)

# Codes for aiosmtpd's replies by reply code (RFC 3463 and RFC 5248 names).
DEFAULT_ENHANCED = {
    "221": "2.0.0",
    "235": "2.7.0",
    "250": "2.0.0",
    "251": "2.1.5",
    "252": "2.0.0",
    "421": "4.3.0",
    "450": "4.2.0",
    "451": "4.3.0",
    "452": "4.3.1",
    "454": "4.7.0",
    "500": "5.5.2",
    "501": "5.5.4",
    "502": "5.5.1",
    "503": "5.5.1",
    "504": "5.5.4",
    "530": "5.7.0",
    "535": "5.7.8",
    "538": "5.7.11",
    "550": "5.0.0",
    "552": "5.3.4",
    "553": "5.1.3",
    "554": "5.0.0",
    "555": "5.5.4",
}
NO_CODE = {"220", "334", "354"}


def printable(text: str) -> str:
    """`text` from a client, fit for a reply line or a log line: control characters,
    undecodable bytes (kept by aiosmtpd as surrogates) and line breaks become `\\xNN`."""
    if text.isprintable():  # nearly every reply: one C call instead of one per character
        return text
    return "".join(ch if ch.isprintable() or ch == " " else _escaped(ch) for ch in text)


def _escaped(ch: str) -> str:
    code = ord(ch)
    if 0xDC80 <= code <= 0xDCFF:  # a byte that was not UTF-8 (errors="surrogateescape")
        return f"\\x{code - 0xDC00:02x}"
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def enhance(reply: str) -> str:
    """Add an enhanced status code to a reply line that lacks one."""
    if _HAS_CODE.match(reply):
        return reply
    match = _REPLY.match(reply)
    if not match or match.group(1) in NO_CODE:
        return reply
    code = DEFAULT_ENHANCED.get(match.group(1))
    if code is None:
        return reply
    return f"{match.group(1)}{match.group(2)}{code} {match.group(3)}".rstrip()


MAIL_OK = "250 2.1.0 Sender OK"
RCPT_OK = "250 2.1.5 Recipient OK"
NO_SUCH_USER = "550 5.1.1 {address}: no such user here"
RELAY_DENIED = "554 5.7.1 {address}: relay access denied"
TOO_MANY_RECIPIENTS = "452 4.5.3 Too many recipients"  # RFC 5321 4.5.3.1.10
BAD_ADDRESS = "501 5.1.3 Bad address syntax"
NOT_YOUR_SENDER = "553 5.7.1 {address}: sender address is not one of your addresses"
NOT_YOUR_FROM = "553 5.7.1 From or Sender names {address}: not one of your addresses"
NULL_SENDER_REFUSED = "553 5.7.1 An authenticated user may not send with an empty sender"
QUEUED = "250 2.0.0 OK: queued as {queue_id}"
TEMPORARY_FAILURE = "451 4.3.0 Temporary local problem; try again later"
# RFC 5321 4.2.2: 451 for MAIL, RCPT and DATA; the directory may answer again shortly
DIRECTORY_BUSY = "451 4.3.0 Addresses cannot be looked up now; try again later"
AUTH_OK = "235 2.7.0 Authentication successful"
AUTH_THROTTLED = "454 4.7.0 Too many failed logins; try again later"
AUTH_UNAVAILABLE = "454 4.7.0 Temporary authentication failure; try again later"  # RFC 4954 6
AUTH_FAILED = "535 5.7.8 {message}"
AUTH_UNDECODABLE = "501 5.5.2 Cannot decode the credentials"
AUTH_CANCELLED = "501 5.7.0 Authentication cancelled"  # RFC 4954 4: "*" gets a 501
AUTH_TOO_LONG = "500 5.5.6 Authentication exchange line is too long"  # RFC 4954 4
AUTHZ_FAILED = "535 5.7.8 Not allowed to act as that authorization identity"
TOO_MANY_CONNECTIONS = "421 4.7.0 Too many connections from your address; try again later"
SERVICE_FULL = "421 4.3.2 Too many connections; try again later"
HEADERS_UNREADABLE = "554 5.6.0 The message header cannot be parsed"
BAD_AUTHOR = "553 5.7.1 {reason}; the sender cannot be checked"
NUL_IN_COMMAND = "501 5.5.2 NUL is not allowed in a command"  # RFC 5321 4.1.2: in no path
# RFC 5322 3.5 and RFC 2045 2.8: no NUL in message text; RFC 3501 9: none in IMAP literals
NUL_IN_DATA = "554 5.6.0 NUL characters are not allowed in a message"
NON_ASCII_SENDER = "553 5.6.7 Non-ASCII addresses not permitted for that sender without SMTPUTF8"
NON_ASCII_RECIPIENT = (
    "553 5.6.7 Non-ASCII addresses not permitted for that recipient without SMTPUTF8"
)
VRFY_SYNTAX = "501 5.5.4 Syntax: VRFY <address>"  # RFC 5321 3.5.3: 252 when not verified
CANNOT_VRFY = "252 2.0.0 Cannot VRFY user, but will accept message and attempt delivery"
TOO_MANY_REFUSED = "421 4.7.0 Too many refused recipients; closing the connection"
NO_POSTMASTER = "450 4.2.1 postmaster: no mailbox to deliver to yet; try again later"
TOO_MANY_HOPS = "554 5.4.6 Too many hops; the message is probably looping"  # RFC 5321 6.3
