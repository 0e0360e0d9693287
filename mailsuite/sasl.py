"""SASL for SMTP AUTH, IMAP AUTHENTICATE and POP3 AUTH: the PLAIN and LOGIN exchanges and
the one rule for authorization identities.

This module owns the part of a login that is the same on every protocol: reading client
responses (base64, ``*`` to cancel, ``=`` for an empty initial response, size limits), the
grammar of each mechanism, and whether an authenticated account may act as the authorization
identity it named. It never touches a socket, never writes a protocol reply and never checks a
password: a protocol feeds it what the client sent and gets back a `Challenge` to send, a
`Failure` to answer in its own words, or `Credentials` to hand to ``ctx.auth.authenticate``;
once that succeeded, `authorize` decides the authzid.

    client line ──► Exchange.respond ──► Challenge ──► protocol sends "334 …" / "+ …"
                                     ├─► Failure ────► protocol's reply for that kind
                                     └─► Credentials ─► ctx.auth.authenticate ─► authorize
"""

from __future__ import annotations

import binascii
import enum
import logging
from base64 import b64decode, b64encode
from dataclasses import dataclass, field

from mailsuite.directory import Account, Directory

log = logging.getLogger("mailsuite.sasl")

MECHANISMS = ("PLAIN", "LOGIN")
# RFC 5034 4 and RFC 4954 4: a response line may be longer than the command line limits;
# 8192 base64 characters hold far more than RFC 4616 2's 255 octets per field.
MAX_RESPONSE = 8192
MAX_DECODED = MAX_RESPONSE // 4 * 3
LOGIN_USER_PROMPT = b"Username:"  # draft-murchison-sasl-login 2: the customary prompts
LOGIN_PASSWORD_PROMPT = b"Password:"


class FailureKind(enum.Enum):
    """Why an exchange ended without credentials; each protocol has its reply for each."""

    CANCELLED = "cancelled"  # the client sent "*"
    BAD_BASE64 = "bad-base64"  # a response that is not base64
    MALFORMED = "malformed"  # base64, but not what the mechanism expects
    TOO_LONG = "too-long"  # over MAX_RESPONSE (encoded) or MAX_DECODED (decoded)


@dataclass(frozen=True)
class Challenge:
    """Send `data` (raw bytes: the protocol base64-encodes it) and feed back the answer."""

    data: bytes


@dataclass(frozen=True)
class Failure:
    """End the command with the protocol's reply for `kind`."""

    kind: FailureKind


@dataclass(frozen=True)
class Credentials:
    """What the client claims; nothing is verified yet. The password never shows in a repr,
    so a logged exception or debug line cannot leak it."""

    authzid: str
    authcid: str
    password: str = field(repr=False)


Step = Challenge | Failure | Credentials


def supported(mechanism: str) -> bool:
    """RFC 4422 3.1: mechanism names are compared without regard to case."""
    return mechanism.upper() in MECHANISMS


def encode_challenge(data: bytes) -> bytes:
    """The challenge as it goes on the wire after "334 " or "+ "; empty stays empty
    (RFC 4954 4, RFC 3501 7.5, RFC 5034 4)."""
    return b64encode(data)


def decode_response(line: bytes, *, initial: bool = False) -> bytes | Failure:
    """A client response as sent (without or with its line ending), decoded.

    `initial` is for the initial response on the command line (RFC 4954 4, RFC 4959 3,
    RFC 5034 4), where "=" stands for an empty response; on a continuation line an empty
    response is an empty line.
    """
    text = line.strip()
    if text == b"*":
        return Failure(FailureKind.CANCELLED)  # RFC 4954 4, RFC 3501 6.2.2, RFC 5034 4
    if len(text) > MAX_RESPONSE:
        return Failure(FailureKind.TOO_LONG)
    if initial and text == b"=":
        return b""
    try:
        return b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        return Failure(FailureKind.BAD_BASE64)


def _text(raw: bytes) -> str | None:
    """A field as UTF-8 text (RFC 4616 2), or None when it is not."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return None


def parse_plain(message: bytes) -> Credentials | Failure:
    """RFC 4616 2: message = [authzid] UTF8NUL authcid UTF8NUL passwd.

    authcid and passwd are 1*SAFE and no field holds a NUL, so exactly two NULs and two
    non-empty last fields are required; every field must be UTF-8.
    """
    if len(message) > MAX_DECODED:
        return Failure(FailureKind.TOO_LONG)
    parts = message.split(b"\0")
    if len(parts) != 3 or not parts[1] or not parts[2]:
        return Failure(FailureKind.MALFORMED)
    authzid, authcid, password = (_text(p) for p in parts)
    if authzid is None or authcid is None or password is None:
        return Failure(FailureKind.MALFORMED)
    return Credentials(authzid, authcid, password)


def _login_field(data: bytes) -> str | Failure:
    """One LOGIN answer: non-empty UTF-8 without NUL (a NUL can belong to no login)."""
    if len(data) > MAX_DECODED:
        return Failure(FailureKind.TOO_LONG)
    text = _text(data)
    if not text or "\0" in text:
        return Failure(FailureKind.MALFORMED)
    return text


class Exchange:
    """One run of a mechanism, from the command that names it to credentials or a failure.

    Call `begin` once with the initial response (None when the command had none), then
    `respond` with each answer to a `Challenge`, until a `Failure` or `Credentials` comes
    back. The `_decoded` variants take what a library already base64-decoded (aiosmtpd's
    ``challenge_auth`` handles "*" and bad base64 itself).
    """

    def __init__(self, mechanism: str) -> None:
        if not supported(mechanism):
            raise ValueError(f"unsupported SASL mechanism {mechanism!r}")
        self.mechanism = mechanism.upper()
        self.user: str | None = None
        self.done = False
        self.started = False

    def begin(self, initial: bytes | None) -> Step:
        if initial is None:
            return self.begin_decoded(None)
        decoded = decode_response(initial, initial=True)
        return (
            self._finish(decoded) if isinstance(decoded, Failure) else self.begin_decoded(decoded)
        )

    def begin_decoded(self, initial: bytes | None) -> Step:
        if self.started:
            raise RuntimeError("the exchange has already begun")
        self.started = True
        if initial is None:
            # RFC 4422 5: no initial response, so the server starts with a challenge
            if self.mechanism == "PLAIN":
                return Challenge(b"")  # RFC 4616 2: PLAIN's challenge is empty
            return Challenge(LOGIN_USER_PROMPT)
        return self.respond_decoded(initial)

    def respond(self, line: bytes) -> Step:
        decoded = decode_response(line)
        return (
            self._finish(decoded) if isinstance(decoded, Failure) else self.respond_decoded(decoded)
        )

    def respond_decoded(self, data: bytes) -> Step:
        if self.done or not self.started:
            raise RuntimeError("no challenge is waiting for an answer")
        if self.mechanism == "PLAIN":
            return self._finish(parse_plain(data))
        answer = _login_field(data)
        if isinstance(answer, Failure):
            return self._finish(answer)
        if self.user is None:
            self.user = answer
            return Challenge(LOGIN_PASSWORD_PROMPT)
        return self._finish(Credentials("", self.user, answer))

    def _finish(self, step: Failure | Credentials) -> Step:
        self.done = True
        return step


def authorize(directory: Directory, account: Account, authzid: str) -> bool:
    """Whether `account`, whose password was just verified, may act as `authzid`.

    The one authorization rule of every protocol. Call it only after authentication
    succeeded, so that a refusal tells nothing about a password that was wrong. RFC 4616 2
    lets the server decide: an empty authzid means the account itself (RFC 4422 3.4.1), and
    any name the directory resolves to this same account (its address in any letter case,
    one of its aliases, its legacy login) is accepted. Nobody may act for another account.
    """
    if not authzid:
        return True
    if authzid == authzid.strip():
        named = directory.resolve_login(authzid)
        if named is not None and named.id == account.id:
            return True
    log.info("authorization identity %r refused for %s", authzid, account.address)
    return False
